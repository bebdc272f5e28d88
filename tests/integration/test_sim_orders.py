"""Order lists, amend and cancel-replace over the simulator's REST API (signed HTTP, a live market)."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from abidance.exchange.sim.config import SimConfig
from abidance.exchange.sim.limits import RateLimitConfig
from tests.integration.conftest import RunningSim
from tests.integration.sim_kit import call


def touch(sim) -> tuple[Decimal, Decimal]:
    body = call(sim, "GET", "/api/v3/ticker/bookTicker", {"symbol": "BTCUSDT"})[1]
    return Decimal(body["bidPrice"]), Decimal(body["askPrice"])


def px(value: Decimal) -> str:
    return f"{value:.2f}"


def sell_oco(sim, **extra) -> dict:
    bid, ask = touch(sim)
    return {"symbol": "BTCUSDT", "side": "SELL", "quantity": "0.001", "aboveType": "LIMIT_MAKER",
            "abovePrice": px(ask * Decimal("1.2")), "belowType": "STOP_LOSS_LIMIT",
            "belowStopPrice": px(bid * Decimal("0.8")), "belowPrice": px(bid * Decimal("0.79")),
            "belowTimeInForce": "GTC", **extra}


def test_oco_over_rest_when_placed_queried_and_cancelled_then_binance_shapes_and_order_counts(sim):
    status, body, headers = call(sim, "POST", "/api/v3/orderList/oco", sell_oco(sim, listClientOrderId="restOco"),
                                 signed=True)
    assert status == 200, body
    assert (body["contingencyType"], body["listStatusType"], len(body["orderReports"])) == ("OCO", "EXEC_STARTED", 2)
    assert int(headers["X-MBX-ORDER-COUNT-10S"]) >= 2
    list_id = body["orderListId"]
    status, got, _ = call(sim, "GET", "/api/v3/orderList", {"orderListId": list_id}, signed=True)
    assert status == 200 and got["listClientOrderId"] == "restOco" and "orderReports" not in got
    status, opened, _ = call(sim, "GET", "/api/v3/openOrderList", signed=True)
    assert [x["orderListId"] for x in opened] == [list_id]
    status, cancelled, _ = call(sim, "DELETE", "/api/v3/orderList", {"symbol": "BTCUSDT", "orderListId": list_id},
                                signed=True)
    assert status == 200 and cancelled["listOrderStatus"] == "ALL_DONE"
    assert {r["status"] for r in cancelled["orderReports"]} == {"CANCELED"}
    status, every, _ = call(sim, "GET", "/api/v3/allOrderList", {"fromId": list_id}, signed=True)
    assert every[0]["orderListId"] == list_id and every[0]["listStatusType"] == "ALL_DONE"
    status, body, _ = call(sim, "GET", "/api/v3/orderList", {"orderListId": 999999}, signed=True)
    assert (status, body) == (400, {"code": -2018, "msg": "Order list does not exist."})


def test_oco_over_rest_when_prices_wrong_then_binance_error(sim):
    bid, ask = touch(sim)
    params = sell_oco(sim, abovePrice=px(bid * Decimal("0.9")))
    status, body, _ = call(sim, "POST", "/api/v3/orderList/oco", params, signed=True)
    assert status == 400 and body["code"] in (-2010, -1013), body      # relationship, or PERCENT_PRICE first


def test_otoco_over_rest_when_a_leg_is_cancelled_then_the_list_goes(sim):
    bid, ask = touch(sim)
    params = {"symbol": "BTCUSDT", "workingType": "LIMIT", "workingSide": "BUY", "workingPrice": px(bid * Decimal("0.9")),
              "workingQuantity": "0.001", "workingTimeInForce": "GTC", "pendingSide": "SELL",
              "pendingQuantity": "0.001", "pendingAboveType": "LIMIT_MAKER", "pendingAbovePrice": px(ask * Decimal("1.2")),
              "pendingBelowType": "STOP_LOSS", "pendingBelowStopPrice": px(bid * Decimal("0.85"))}
    status, body, _ = call(sim, "POST", "/api/v3/orderList/otoco", params, signed=True)
    assert status == 200, body
    assert [r["status"] for r in body["orderReports"]] == ["NEW", "PENDING_NEW", "PENDING_NEW"]
    pending = body["orders"][2]["orderId"]
    status, out, _ = call(sim, "DELETE", "/api/v3/order", {"symbol": "BTCUSDT", "orderId": pending}, signed=True)
    assert status == 200 and out["orderListId"] == body["orderListId"] and len(out["orderReports"]) == 3


def test_amend_and_cancel_replace_over_rest(sim):
    bid, _ = touch(sim)
    order = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.002",
             "price": px(bid * Decimal("0.9"))}
    status, placed, _ = call(sim, "POST", "/api/v3/order", order, signed=True)
    assert status == 200, placed
    status, amended, _ = call(sim, "PUT", "/api/v3/order/amend/keepPriority",
                              {"symbol": "BTCUSDT", "orderId": placed["orderId"], "newQty": "0.001"}, signed=True)
    assert status == 200 and amended["amendedOrder"]["qty"] == "0.00100000", amended
    status, replaced, headers = call(sim, "POST", "/api/v3/order/cancelReplace", {
        **order, "cancelReplaceMode": "STOP_ON_FAILURE", "cancelOrderId": placed["orderId"],
        "cancelRestrictions": "ONLY_NEW", "selfTradePreventionMode": "EXPIRE_BOTH"}, signed=True)
    assert status == 200 and replaced["cancelResult"] == replaced["newOrderResult"] == "SUCCESS", replaced
    assert replaced["newOrderResponse"]["selfTradePreventionMode"] == "EXPIRE_BOTH"
    assert "X-MBX-ORDER-COUNT-10S" in headers
    status, failed, _ = call(sim, "POST", "/api/v3/order/cancelReplace", {
        **order, "cancelReplaceMode": "STOP_ON_FAILURE", "cancelOrderId": placed["orderId"]}, signed=True)
    assert status == 400 and failed == {"code": -2022, "msg": "Order cancel-replace failed.", "data": {
        "cancelResult": "FAILURE", "newOrderResult": "NOT_ATTEMPTED",
        "cancelResponse": {"code": -2011, "msg": "Unknown order sent."}, "newOrderResponse": None}}
    call(sim, "DELETE", "/api/v3/openOrders", {"symbol": "BTCUSDT"}, signed=True)


def test_trailing_stop_and_stop_market_over_rest(sim):
    deadline = time.monotonic() + 5                          # a trailing stop starts from the last trade
    while Decimal(call(sim, "GET", "/api/v3/ticker/price", {"symbol": "BTCUSDT"})[1]["price"]) == 0:
        assert time.monotonic() < deadline, "no trade printed"
        time.sleep(0.05)
    status, body, _ = call(sim, "POST", "/api/v3/order", {
        "symbol": "BTCUSDT", "side": "SELL", "type": "STOP_LOSS", "quantity": "0.001", "trailingDelta": "500",
        "newOrderRespType": "RESULT"}, signed=True)
    assert status == 200 and body["trailingDelta"] == 500 and body["trailingTime"] > 0, body
    status, body, _ = call(sim, "DELETE", "/api/v3/order", {"symbol": "BTCUSDT", "orderId": body["orderId"],
                                                            "cancelRestrictions": "ONLY_PARTIALLY_FILLED"},
                           signed=True)
    assert (status, body["code"]) == (400, -2011)
    call(sim, "DELETE", "/api/v3/openOrders", {"symbol": "BTCUSDT"}, signed=True)


@pytest.fixture(scope="module")
def tight():
    """A simulator allowing two new orders per 10 s."""
    running = RunningSim(SimConfig(seed=5, limits=RateLimitConfig(orders_per_10s=2)))
    yield running
    running.close()


def test_cancel_replace_when_order_limit_reached_then_modes_decide(tight):
    bid, _ = touch(tight)
    order = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.001",
             "price": px(bid * Decimal("0.9"))}
    first = call(tight, "POST", "/api/v3/order", order, signed=True)[1]
    call(tight, "POST", "/api/v3/order", order, signed=True)
    replace = {**order, "cancelReplaceMode": "STOP_ON_FAILURE", "cancelOrderId": first["orderId"]}
    status, body, headers = call(tight, "POST", "/api/v3/order/cancelReplace", replace, signed=True)
    assert status == 429 and body["code"] == -1015 and "data" not in body
    assert call(tight, "GET", "/api/v3/order", {"symbol": "BTCUSDT", "orderId": first["orderId"]},
                signed=True)[1]["status"] == "NEW"
    status, body, headers = call(tight, "POST", "/api/v3/order/cancelReplace",
                                 {**replace, "cancelReplaceMode": "ALLOW_FAILURE",
                                  "orderRateLimitExceededMode": "CANCEL_ONLY"}, signed=True)
    assert status == 409 and body["code"] == -2021
    assert (body["data"]["cancelResult"], body["data"]["newOrderResult"]) == ("SUCCESS", "FAILURE")
    assert body["data"]["newOrderResponse"]["code"] == -1015
