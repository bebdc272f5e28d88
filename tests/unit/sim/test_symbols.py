"""SymbolSpec: grid conversions, Binance's errors for off-grid values, exchangeInfo format."""

import json
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from abidance.exchange.sim.errors import BinanceError
from abidance.exchange.sim.symbols import (SymbolSpec, default_symbols, fmt8, fmt_units, parse_units,
                                           units_to_dec)
from tests.kit import shared_data


def btc() -> SymbolSpec:
    return default_symbols()[0]


def error_of(call) -> BinanceError:
    with pytest.raises(BinanceError) as info:
        call()
    return info.value


def test_default_symbols_when_listed_then_btc_eth_bnb_with_binance_grids_and_fees():
    specs = {s.symbol: s for s in default_symbols()}
    assert list(specs) == ["BTCUSDT", "ETHUSDT", "BNBUSDT", "ETHBTC", "LTCBTC", "XRPETH"]
    assert (specs["BTCUSDT"].tick_size, specs["BTCUSDT"].step_size) == (Decimal("0.01"), Decimal("0.00001"))
    assert (specs["ETHUSDT"].tick_size, specs["ETHUSDT"].step_size) == (Decimal("0.01"), Decimal("0.0001"))
    assert specs["BTCUSDT"].min_notional == Decimal("5")
    for spec in specs.values():
        assert spec.maker_fee == spec.taker_fee == Decimal("0.001")
        assert spec.base_precision == spec.quote_precision == 8 and spec.max_num_orders == 200


def test_price_to_ticks_when_on_grid_then_exact_int_ticks():
    spec = btc()
    assert spec.price_to_ticks("30000.01") == 3_000_001
    assert spec.price_to_ticks("30000.0100") == 3_000_001
    assert spec.price_to_ticks("0.01") == 1
    assert spec.price_to_ticks(Decimal("12.5")) == 1250


def test_price_to_ticks_when_off_tick_then_1013_price_filter():
    err = error_of(lambda: btc().price_to_ticks("30000.015"))
    assert (err.code, err.msg) == (-1013, "Filter failure: PRICE_FILTER")


def test_price_to_ticks_when_out_of_range_then_1013_price_filter():
    assert error_of(lambda: btc().price_to_ticks("0")).msg == "Filter failure: PRICE_FILTER"
    assert error_of(lambda: btc().price_to_ticks("1000000.01")).msg == "Filter failure: PRICE_FILTER"


def test_price_to_ticks_when_more_than_8_decimals_then_1111_too_much_precision():
    err = error_of(lambda: btc().price_to_ticks("1.000000001"))
    assert (err.code, err.msg) == (-1111, "Parameter 'price' has too much precision.")


@pytest.mark.parametrize("bad", ["abc", "-1", "1e5", "1.", ".5", "", " 1", "1,5"])
def test_price_to_ticks_when_malformed_then_1100_illegal_characters(bad):
    err = error_of(lambda: btc().price_to_ticks(bad))
    assert err.code == -1100 and "'price'" in err.msg


def test_qty_to_steps_when_on_grid_then_exact_steps():
    assert btc().qty_to_steps("0.00123") == 123
    assert btc().qty_to_steps("1") == 100_000


def test_qty_to_steps_when_off_step_or_out_of_range_then_1013_lot_size():
    for bad in ("0.000015", "0", "9000.00001"):
        err = error_of(lambda: btc().qty_to_steps(bad))
        assert (err.code, err.msg) == (-1013, "Filter failure: LOT_SIZE")


def test_qty_to_steps_when_market_above_market_max_then_1013_market_lot_size():
    assert btc().qty_to_steps("150", market=False) == 15_000_000
    err = error_of(lambda: btc().qty_to_steps("150", market=True))
    assert err.msg == "Filter failure: MARKET_LOT_SIZE"


def test_qty_to_steps_when_too_precise_then_1111_for_quantity():
    err = error_of(lambda: btc().qty_to_steps("0.123456789"))
    assert (err.code, err.msg) == (-1111, "Parameter 'quantity' has too much precision.")


def test_spec_when_tick_times_step_below_1e8_then_rejected():
    with pytest.raises(ValueError):
        SymbolSpec("XY", "X", "Y", tick_size=Decimal("0.00000001"), step_size=Decimal("0.01"),
                   min_price=Decimal("0.00000001"), max_price=Decimal("1"), min_qty=Decimal("0.01"),
                   max_qty=Decimal("10"))


def test_quote_units_when_price_times_qty_then_exact_notional():
    spec = btc()
    # 30000.01 * 0.00123 = 36.9000123
    assert units_to_dec(spec.quote_units(3_000_001, 123)) == Decimal("36.9000123")


def test_renderers_when_formatting_then_8_decimal_strings():
    spec = btc()
    assert spec.price_str(3_000_001) == "30000.01000000"
    assert spec.qty_str(123) == "0.00123000"
    assert spec.qty_str(0) == "0.00000000"
    assert fmt_units(5) == "0.00000005" and fmt_units(-5) == "-0.00000005"
    assert fmt8(Decimal("1.5")) == "1.50000000" and fmt8(Decimal("-0")) == "0.00000000"


@given(st.integers(min_value=0, max_value=10**20))
def test_fmt_units_when_parsed_back_then_same_units(units):
    assert parse_units("x", fmt_units(units)) == units
    assert Decimal(fmt_units(units)) == units_to_dec(units)


def test_exchange_info_entry_when_rendered_then_keys_match_binance_current_format():
    sample = json.loads(shared_data("binance-nt", "http", "exchange_info_response.json").read_text())
    entry = btc().exchange_info_entry()
    assert list(entry) == list(sample["symbols"][0])
    assert entry["status"] == "TRADING" and entry["orderTypes"] == [
        "LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT"]
    assert entry["quoteOrderQtyMarketAllowed"] is True


def test_exchange_info_entry_when_rendered_then_features_and_stp_modes_as_binance_lists_them_today():
    entry = btc().exchange_info_entry()
    assert {k: entry[k] for k in ("ocoAllowed", "otoAllowed", "allowTrailingStop", "cancelReplaceAllowed",
                                  "amendAllowed", "icebergAllowed", "opoAllowed")} == {
        "ocoAllowed": True, "otoAllowed": True, "allowTrailingStop": True, "cancelReplaceAllowed": True,
        "amendAllowed": True, "icebergAllowed": False, "opoAllowed": False}
    assert entry["defaultSelfTradePreventionMode"] == "EXPIRE_MAKER"
    assert entry["allowedSelfTradePreventionModes"] == ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH", "DECREMENT",
                                                        "TRANSFER"]


def test_spec_when_default_stp_mode_not_allowed_then_rejected():
    with pytest.raises(ValueError):
        SymbolSpec("X", "A", "B", tick_size=Decimal("0.01"), step_size=Decimal("0.01"), min_price=Decimal("0.01"),
                   max_price=Decimal("10"), min_qty=Decimal("0.01"), max_qty=Decimal("10"),
                   default_stp_mode="NONE")


def test_exchange_info_filters_when_rendered_then_same_keys_as_real_btcusdt_filters():
    sample = json.loads(shared_data("binance-nt", "http", "http_spot_market_exchange_info.json").read_text())
    real = {f["filterType"]: f for f in sample["symbols"][0]["filters"]}
    ours = {f["filterType"]: f for f in btc().filters()}
    assert list(ours) == ["PRICE_FILTER", "LOT_SIZE", "MARKET_LOT_SIZE", "TRAILING_DELTA", "PERCENT_PRICE_BY_SIDE",
                          "NOTIONAL", "MAX_NUM_ORDERS", "MAX_NUM_ORDER_LISTS", "MAX_NUM_ALGO_ORDERS",
                          "MAX_NUM_ORDER_AMENDS"]
    for name in ("PRICE_FILTER", "LOT_SIZE", "MARKET_LOT_SIZE", "MAX_NUM_ORDERS", "MAX_NUM_ALGO_ORDERS"):
        assert list(ours[name]) == list(real[name])
    assert ours["PRICE_FILTER"] == {"filterType": "PRICE_FILTER", "minPrice": "0.01000000",
                                    "maxPrice": "1000000.00000000", "tickSize": "0.01000000"}
    assert ours["LOT_SIZE"]["stepSize"] == "0.00001000"
    assert ours["NOTIONAL"] == {"filterType": "NOTIONAL", "minNotional": "5.00000000", "applyMinToMarket": True,
                                "maxNotional": "9000000.00000000", "applyMaxToMarket": False, "avgPriceMins": 5}
    assert ours["PERCENT_PRICE_BY_SIDE"] == {"filterType": "PERCENT_PRICE_BY_SIDE", "bidMultiplierUp": "5",
                                             "bidMultiplierDown": "0.2", "askMultiplierUp": "5",
                                             "askMultiplierDown": "0.2", "avgPriceMins": 5}
    assert ours["MAX_NUM_ORDERS"]["maxNumOrders"] == 200
    # As Binance's spot symbols publish them since 2025-08-28 (filters.md formats).
    assert ours["TRAILING_DELTA"] == {"filterType": "TRAILING_DELTA", "minTrailingAboveDelta": 10,
                                      "maxTrailingAboveDelta": 2000, "minTrailingBelowDelta": 10,
                                      "maxTrailingBelowDelta": 2000}
    assert ours["MAX_NUM_ORDER_LISTS"] == {"filterType": "MAX_NUM_ORDER_LISTS", "maxNumOrderLists": 20}
    assert ours["MAX_NUM_ORDER_AMENDS"] == {"filterType": "MAX_NUM_ORDER_AMENDS", "maxNumOrderAmends": 10}
