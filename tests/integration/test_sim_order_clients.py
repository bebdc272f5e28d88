"""Clients we did not write trade stops, order lists, amends and cancel-replaces on the simulator:
Binance's official REST SDK (binance-sdk-spot), whose response models know every field Binance
documents (anything else lands in `additional_properties`), and ccxt."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from tests.integration.conftest import API_KEY, API_SECRET
from tests.integration.sim_kit import call
from tests.integration.test_sim_clients import ccxt_client

spot = pytest.importorskip("binance_sdk_spot.spot")
configuration = pytest.importorskip("binance_common.configuration")


def sdk(sim):
    config = configuration.ConfigurationRestAPI(api_key=API_KEY, api_secret=API_SECRET, base_path=sim.rest_url)
    return spot.Spot(config_rest_api=config).rest_api


def touch(sim) -> tuple[Decimal, Decimal]:
    deadline = time.monotonic() + 5          # trades must have printed: OCO prices are judged against the last
    while Decimal(call(sim, "GET", "/api/v3/ticker/price", {"symbol": "BTCUSDT"})[1]["price"]) == 0:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    body = call(sim, "GET", "/api/v3/ticker/bookTicker", {"symbol": "BTCUSDT"})[1]
    return Decimal(body["bidPrice"]), Decimal(body["askPrice"])


def price(value: Decimal) -> float:
    return float(round(value, 2))


# Keys Binance documents that some of the SDK's models have no field for: the "Conditional fields in
# Order Responses" table of rest-api.md, and selfTradePreventionMode, which its DELETE /api/v3/orderList
# example shows in every orderReport.
DOCUMENTED_ELSEWHERE = {"icebergQty", "preventedMatchId", "preventedQuantity", "stopPrice", "strategyId",
                        "strategyType", "trailingDelta", "trailingTime", "usedSor", "workingFloor", "pegPriceType",
                        "pegOffsetType", "pegOffsetValue", "peggedPrice", "expiryReason", "selfTradePreventionMode"}


def no_unknown_fields(model) -> None:
    """Every key we answer is one the SDK's model knows (pydantic keeps the others in
    additional_properties) or one Binance documents for that kind of answer."""
    extra = set(model.additional_properties) - DOCUMENTED_ELSEWHERE
    assert not extra, (type(model).__name__, model.additional_properties)
    for name in type(model).model_fields:
        value = getattr(model, name)
        for item in value if isinstance(value, list) else [value]:
            if hasattr(item, "additional_properties"):
                no_unknown_fields(item)


def test_official_sdk_places_amends_queries_and_cancels_an_oco(sim):
    api = sdk(sim)
    bid, ask = touch(sim)
    placed = api.order_list_oco(symbol="BTCUSDT", side="SELL", quantity=0.002, above_type="LIMIT_MAKER",
                                above_price=price(ask * Decimal("1.2")), below_type="STOP_LOSS_LIMIT",
                                below_stop_price=price(bid * Decimal("0.8")), below_price=price(bid * Decimal("0.79")),
                                below_time_in_force="GTC", list_client_order_id="sdkOco").data()
    no_unknown_fields(placed)
    assert (placed.contingency_type, placed.list_status_type, placed.list_client_order_id) == (
        "OCO", "EXEC_STARTED", "sdkOco")
    assert [r.type for r in placed.order_reports] == ["STOP_LOSS_LIMIT", "LIMIT_MAKER"]
    stop_id, limit_id = (o.order_id for o in placed.orders)

    amended = api.order_amend_keep_priority(symbol="BTCUSDT", new_qty=0.001, order_id=limit_id).data()
    no_unknown_fields(amended)
    assert (amended.amended_order.qty, amended.list_status.contingency_type) == ("0.00100000", "OCO")

    got = api.get_order_list(order_list_id=placed.order_list_id).data()
    no_unknown_fields(got)
    assert [o.order_id for o in got.orders] == [stop_id, limit_id]
    assert any(x.order_list_id == placed.order_list_id for x in api.open_order_list().data())

    cancelled = api.delete_order_list(symbol="BTCUSDT", order_list_id=placed.order_list_id).data()
    no_unknown_fields(cancelled)
    assert cancelled.list_order_status == "ALL_DONE"
    assert {r.status for r in cancelled.order_reports} == {"CANCELED"}
    assert [x.list_status_type for x in api.all_order_list(from_id=placed.order_list_id).data()][0] == "ALL_DONE"


def test_official_sdk_places_an_otoco_and_a_trailing_stop_and_cancel_replaces(sim):
    api = sdk(sim)
    bid, ask = touch(sim)
    placed = api.order_list_otoco(
        symbol="BTCUSDT", working_type="LIMIT", working_side="BUY", working_price=price(bid * Decimal("0.9")),
        working_quantity=0.001, working_time_in_force="GTC", pending_side="SELL", pending_quantity=0.001,
        pending_above_type="LIMIT_MAKER", pending_above_price=price(ask * Decimal("1.2")),
        pending_below_type="STOP_LOSS", pending_below_stop_price=price(bid * Decimal("0.85"))).data()
    no_unknown_fields(placed)
    assert placed.contingency_type == "OTO"
    assert [r.status for r in placed.order_reports] == ["NEW", "PENDING_NEW", "PENDING_NEW"]

    trailing = api.new_order(symbol="BTCUSDT", side="SELL", type="STOP_LOSS", quantity=0.001, trailing_delta=300,
                             new_order_resp_type="RESULT").data()
    no_unknown_fields(trailing)
    assert trailing.status == "NEW" and trailing.additional_properties["trailingDelta"] == 300

    limit = api.new_order(symbol="BTCUSDT", side="BUY", type="LIMIT", time_in_force="GTC", quantity=0.001,
                          price=price(bid * Decimal("0.8"))).data()
    replaced = api.order_cancel_replace(symbol="BTCUSDT", side="BUY", type="LIMIT", cancel_replace_mode="STOP_ON_FAILURE",
                                        time_in_force="GTC", quantity=0.001, price=price(bid * Decimal("0.81")),
                                        cancel_order_id=limit.order_id).data()
    no_unknown_fields(replaced)
    assert (replaced.cancel_result, replaced.new_order_result) == ("SUCCESS", "SUCCESS")
    assert replaced.cancel_response.order_id == limit.order_id
    api.delete_open_orders(symbol="BTCUSDT")


def test_ccxt_places_stop_orders_edits_by_cancel_replace_and_cancels_an_oco_leg(sim):
    ex = ccxt_client(sim)
    ex.load_markets()
    bid, ask = (float(x) for x in touch(sim))
    stop_limit = ex.create_order("BTC/USDT", "STOP_LOSS_LIMIT", "sell", 0.001, round(bid * 0.9, 2),
                                 {"stopPrice": round(bid * 0.95, 2)})
    assert (stop_limit["status"], stop_limit["info"]["type"]) == ("open", "STOP_LOSS_LIMIT")
    stop_market = ex.create_order("BTC/USDT", "market", "sell", 0.001, None, {"stopLossPrice": round(bid * 0.95, 2)})
    assert (stop_market["status"], stop_market["info"]["type"]) == ("open", "STOP_LOSS")
    trailing = ex.create_order("BTC/USDT", "market", "sell", 0.001, None,
                               {"trailingPercent": 2, "stopLossOrTakeProfit": "stopLoss"})
    assert trailing["info"]["trailingDelta"] == 200
    resting = ex.create_order("BTC/USDT", "limit", "buy", 0.001, round(bid * 0.9, 2))
    edited = ex.edit_order(resting["id"], "BTC/USDT", "limit", "buy", 0.001, round(bid * 0.91, 2))
    assert edited["id"] != resting["id"] and edited["price"] == round(bid * 0.91, 2)
    assert ex.fetch_order(resting["id"], "BTC/USDT")["status"] == "canceled"
    oco = ex.private_post_orderlist_oco({"symbol": "BTCUSDT", "side": "SELL", "quantity": "0.001",
                                         "aboveType": "LIMIT_MAKER", "abovePrice": str(round(ask * 1.2, 2)),
                                         "belowType": "STOP_LOSS", "belowStopPrice": str(round(bid * 0.8, 2))})
    ex.cancel_order(str(oco["orders"][0]["orderId"]), "BTC/USDT")
    assert ex.fetch_order(str(oco["orders"][1]["orderId"]), "BTC/USDT")["status"] == "canceled"
    ex.cancel_all_orders("BTC/USDT")
    assert ex.fetch_open_orders("BTC/USDT") == []
