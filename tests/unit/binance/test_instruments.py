"""exchangeInfo -> Instrument on Binance's real samples; malformed entries skipped with reasons."""

from __future__ import annotations

import copy
import logging
from decimal import Decimal as D

import orjson
import pytest

from abidance._core.risk import SymbolFilters
from abidance.exchange.binance.instruments import Instrument, parse_exchange_info
from tests.kit import shared_data


def sample(name: str) -> dict:
    return orjson.loads(shared_data("binance-nt", "http", name).read_bytes())


def test_spot_market_sample_btcusdt_and_ethusdt():
    problems: list[str] = []
    out = parse_exchange_info(sample("http_spot_market_exchange_info.json"), problems)
    assert list(out) == ["BTCUSDT", "ETHUSDT"] and problems == []
    btc = out["BTCUSDT"]
    assert isinstance(btc, Instrument) and btc.is_trading
    assert (btc.base_asset, btc.quote_asset, btc.base_precision, btc.quote_precision) == ("BTC", "USDT", 8, 8)
    assert (btc.tick_size, btc.step_size) == (D("0.01"), D("0.00001"))
    assert (btc.min_price, btc.max_price) == (D("0.01"), D("1000000"))
    assert (btc.min_qty, btc.max_qty) == (D("0.00001"), D("9000"))
    assert (btc.market_min_qty, btc.market_max_qty) == (D("0"), D("112.21108820"))
    assert (btc.min_notional, btc.max_notional) == (D("10"), D("0"))     # MIN_NOTIONAL (older symbols)
    assert btc.order_types == ("LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT")
    assert isinstance(btc.filters, SymbolFilters)
    assert btc.filters.units["min_notional"] == 10 * 10**8 // 10    # notional unit 0.01 * 0.00001 = 1e-7
    assert btc.filters.units["max_num_orders"] == 200
    assert out["ETHUSDT"].step_size == D("0.0001") and out["ETHUSDT"].qty.increment == D("0.0001")


def test_price_and_qty_units_round_trip_in_binance_request_format():
    btc = parse_exchange_info(sample("http_spot_market_exchange_info.json"))["BTCUSDT"]
    assert btc.to_price_units("65000.12") == 6_500_012
    assert btc.to_price_units("65000.12000000") == 6_500_012
    assert btc.to_price_units(D("65000.1")) == 6_500_010
    assert btc.price_str(6_500_012) == "65000.12"
    assert btc.to_qty_units("0.00123") == 123 and btc.qty_str(123) == "0.00123"
    with pytest.raises(ValueError):
        btc.to_price_units("65000.125")       # off the tick: never rounded silently
    with pytest.raises(ValueError):
        btc.to_qty_units(0.1)                 # floats are refused


def test_symbol_without_filters_uses_precision_units():
    out = parse_exchange_info(sample("exchange_info_response.json"))
    eth = out["ETHBTC"]
    assert eth.tick_size == eth.step_size == eth.min_notional == D(0)
    assert eth.price.increment == D("1E-8") and eth.qty.increment == D("1E-8")
    assert eth.price_str(12345) == "0.00012345"
    assert "STOP_LOSS" in eth.order_types


def broken(mutate) -> dict:
    payload = copy.deepcopy(sample("http_spot_market_exchange_info.json"))
    mutate(payload["symbols"][0])       # BTCUSDT
    return payload


def filt(entry: dict, kind: str) -> dict:
    return next(f for f in entry["filters"] if f["filterType"] == kind)


@pytest.mark.parametrize("mutate,field", [
    (lambda e: filt(e, "PRICE_FILTER").update(tickSize="abc"), "PRICE_FILTER.tickSize"),
    (lambda e: filt(e, "LOT_SIZE").update(minQty="-1"), "LOT_SIZE.minQty"),
    (lambda e: filt(e, "LOT_SIZE").update(stepSize="NaN"), "LOT_SIZE.stepSize"),
    (lambda e: filt(e, "MIN_NOTIONAL").update(minNotional=None), "MIN_NOTIONAL.minNotional"),
    (lambda e: filt(e, "PERCENT_PRICE").update(multiplierUp="Infinity"), "PERCENT_PRICE.multiplierUp"),
    (lambda e: filt(e, "MAX_NUM_ORDERS").update(maxNumOrders="200"), "MAX_NUM_ORDERS.maxNumOrders"),
    (lambda e: e.pop("baseAsset"), "baseAsset"),
    (lambda e: e.update(status=None), "status"),
    (lambda e: e.update(baseAssetPrecision="8"), "baseAssetPrecision"),
    (lambda e: e.update(orderTypes="LIMIT"), "orderTypes"),
    (lambda e: e.update(filters={"filterType": "PRICE_FILTER"}), "filters"),
    (lambda e: e["filters"].append({"minQty": "1"}), "filters"),
    # a market step the quantity unit cannot express: SymbolFilters refuses, named as the filters' problem
    (lambda e: filt(e, "MARKET_LOT_SIZE").update(stepSize="0.000015"), "filters"),
])
def test_malformed_entry_is_skipped_with_a_named_reason_and_others_survive(mutate, field, caplog):
    problems: list[str] = []
    with caplog.at_level(logging.WARNING, logger="abidance"):
        out = parse_exchange_info(broken(mutate), problems)
    assert list(out) == ["ETHUSDT"]
    assert len(problems) == 1 and problems[0].startswith(f"BTCUSDT: {field}")
    assert "BTCUSDT" in caplog.text and field in caplog.text


def test_entry_without_a_symbol_or_not_an_object_is_named_by_position():
    payload = sample("http_spot_market_exchange_info.json")
    payload["symbols"] = [{"status": "TRADING"}, "junk"] + payload["symbols"]
    problems: list[str] = []
    out = parse_exchange_info(payload, problems)
    assert list(out) == ["BTCUSDT", "ETHUSDT"]
    assert problems[0].startswith("symbols[0]: symbol") and problems[1].startswith("symbols[1]: entry")


def test_duplicate_symbol_keeps_the_first():
    payload = sample("http_spot_market_exchange_info.json")
    payload["symbols"].append(copy.deepcopy(payload["symbols"][0]))
    problems: list[str] = []
    assert len(parse_exchange_info(payload, problems)) == 2 and "listed twice" in problems[0]


def test_answer_without_symbols_is_an_error():
    with pytest.raises(ValueError, match="symbols"):
        parse_exchange_info({"code": -1000})


def test_flags_and_2025_filters_of_a_real_symbol_are_read():
    """exchangeInfo as Binance sends it today: order-list, amend and trailing flags, the
    MAX_NUM_ORDER_LISTS / MAX_NUM_ORDER_AMENDS filters (2025-08-28) and the STP modes."""
    entry = {
        "symbol": "BTCUSDT", "status": "TRADING", "baseAsset": "BTC", "baseAssetPrecision": 8, "quoteAsset": "USDT",
        "quoteAssetPrecision": 8, "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT",
                                                  "TAKE_PROFIT", "TAKE_PROFIT_LIMIT"],
        "ocoAllowed": True, "otoAllowed": True, "amendAllowed": True, "cancelReplaceAllowed": True,
        "allowTrailingStop": True, "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH", "DECREMENT"],
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": "0.01", "maxPrice": "1000000.00", "tickSize": "0.01"},
            {"filterType": "LOT_SIZE", "minQty": "0.00001", "maxQty": "9000.00000000", "stepSize": "0.00001"},
            {"filterType": "TRAILING_DELTA", "minTrailingAboveDelta": 10, "maxTrailingAboveDelta": 2000,
             "minTrailingBelowDelta": 10, "maxTrailingBelowDelta": 2000},
            {"filterType": "MAX_NUM_ORDER_LISTS", "maxNumOrderLists": 20},
            {"filterType": "MAX_NUM_ORDER_AMENDS", "maxNumOrderAmends": 10},
        ]}
    inst = parse_exchange_info({"symbols": [entry]})["BTCUSDT"]
    assert (inst.oco_allowed, inst.oto_allowed, inst.amend_allowed, inst.allow_trailing_stop) == (True,) * 4
    assert inst.max_num_order_lists == 20 and inst.max_num_order_amends == 10
    assert inst.trailing_delta_bips == (10, 2000, 10, 2000) and inst.default_stp_mode == "EXPIRE_MAKER"
    assert inst.supports("STOP_LOSS") and "DECREMENT" in inst.stp_modes
    problems = []
    bad = {**entry, "filters": entry["filters"] + [{"filterType": "MAX_NUM_ORDER_LISTS", "maxNumOrderLists": -1}]}
    assert parse_exchange_info({"symbols": [bad]}, problems) == {}
    assert problems == ["BTCUSDT: MAX_NUM_ORDER_LISTS.maxNumOrderLists: must be a non-negative integer, got -1"]
