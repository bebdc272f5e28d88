"""Changing and cancelling working orders: amend keep priority, cancel-replace with its modes,
cancelRestrictions, and the orderId/origClientOrderId pair."""

from decimal import Decimal as D

import pytest

from abidance.exchange.sim.errors import BinanceError
from abidance.exchange.sim.symbols import default_symbols
from tests.unit.sim.kit import SYMBOL, Env, error_of
from tests.unit.sim.test_order_lists import OTO, SELL_OCO

AMENDED_KEYS = ["symbol", "orderId", "orderListId", "origClientOrderId", "clientOrderId", "price", "qty",
                "executedQty", "preventedQty", "quoteOrderQty", "cumulativeQuoteQty", "status", "timeInForce", "type",
                "side", "workingTime", "selfTradePreventionMode"]


pytestmark = pytest.mark.usefixtures("last_trade")


# ---- amend keep priority --------------------------------------------------------------------------

def test_amend_when_quantity_reduced_then_keeps_priority_and_frees_the_lock(env):
    mine = env.limit(env.alice, "BUY", "0.05", "29000.00", new_client_order_id="mine")
    theirs = env.limit(env.bob, "BUY", "0.05", "29000.00")
    env.tick()
    out = env.ex.amend_order(env.alice, SYMBOL, order_id=mine["orderId"], new_client_order_id="smaller",
                             new_qty="0.02")
    assert list(out) == ["transactTime", "executionId", "amendedOrder"]
    amended = out["amendedOrder"]
    assert list(amended) == AMENDED_KEYS
    assert (amended["qty"], amended["origClientOrderId"], amended["clientOrderId"], amended["status"]) == (
        "0.02000000", "mine", "smaller", "NEW")
    assert out["transactTime"] == env.clock.t
    assert env.alice.locked("USDT") == D("580")
    report = env.rec.events(env.alice.account_id, "executionReport")[-1]
    assert (report["x"], report["X"], report["q"], report["c"], report["C"]) == (
        "REPLACED", "NEW", "0.02000000", "smaller", "mine")
    assert out["executionId"] == report["I"]
    carol = env.ex.create_account("carol", "s", {"BTC": "1"})
    env.limit(carol, "SELL", "0.03", "29000.00")              # alice first, still: her 0.02, then bob's
    assert env.query(env.alice, mine["orderId"])["status"] == "FILLED"
    assert env.query(env.bob, theirs["orderId"])["executedQty"] == "0.01000000"
    assert env.ex.query_order(env.alice, SYMBOL, orig_client_order_id="smaller")["orderId"] == mine["orderId"]


def test_amend_when_no_new_client_id_then_one_is_generated_and_the_order_answers_to_it(env):
    mine = env.limit(env.alice, "SELL", "0.05", "31000.00", new_client_order_id="mine")
    out = env.ex.amend_order(env.alice, SYMBOL, orig_client_order_id="mine", new_qty="0.01")
    cid = out["amendedOrder"]["clientOrderId"]
    assert cid != "mine" and len(cid) == 22
    assert env.alice.locked("BTC") == D("0.01")
    assert error_of(lambda: env.ex.query_order(env.alice, SYMBOL, orig_client_order_id="mine")).code == -2013
    assert env.ex.query_order(env.alice, SYMBOL, orig_client_order_id=cid)["orderId"] == mine["orderId"]


@pytest.mark.parametrize("qty,msg", [("0.05", "The requested action would change no state; rejecting"),
                                     ("0.06", "Order amend (quantity increase) is not supported.")])
def test_amend_when_not_a_reduction_then_2038(env, qty, msg):
    mine = env.limit(env.alice, "BUY", "0.05", "29000.00")
    err = error_of(lambda: env.ex.amend_order(env.alice, SYMBOL, order_id=mine["orderId"], new_qty=qty))
    assert (err.code, err.msg) == (-2038, msg)


def test_amend_when_order_unknown_or_closed_then_2038_unknown_order(env):
    err = error_of(lambda: env.ex.amend_order(env.alice, SYMBOL, order_id=999, new_qty="0.01"))
    assert (err.code, err.msg) == (-2038, "Unknown order sent.")
    assert error_of(lambda: env.ex.amend_order(env.alice, SYMBOL, new_qty="0.01")).code == -1102
    assert error_of(lambda: env.ex.amend_order(env.alice, SYMBOL, order_id=1)).code == -1102


def test_amend_when_ten_amends_made_then_the_eleventh_is_refused(env):
    mine = env.limit(env.alice, "BUY", "0.2", "29000.00")
    for i in range(10):
        env.ex.amend_order(env.alice, SYMBOL, order_id=mine["orderId"], new_qty=f"0.{19 - i}")
    err = error_of(lambda: env.ex.amend_order(env.alice, SYMBOL, order_id=mine["orderId"], new_qty="0.05"))
    assert (err.code, err.msg) == (-2038, "Filter failure: MAX_NUM_ORDER_AMENDS")


def test_amend_when_reduced_to_the_executed_quantity_then_the_order_ends(env):
    mine = env.limit(env.alice, "BUY", "0.05", "29000.00")
    env.limit(env.bob, "SELL", "0.02", "29000.00")
    out = env.ex.amend_order(env.alice, SYMBOL, order_id=mine["orderId"], new_qty="0.02")
    assert out["amendedOrder"]["status"] == "EXPIRED"
    assert env.alice.locked("USDT") == 0 and env.ex.open_orders(env.alice) == []


def test_amend_when_oco_leg_then_both_legs_reduced_one_lock_shrinks_and_list_status_updated(env):
    resp = env.oco(env.alice, **SELL_OCO)
    stop, limit = resp["orders"]
    out = env.ex.amend_order(env.alice, SYMBOL, order_id=limit["orderId"], new_client_order_id="tp", new_qty="0.04")
    assert out["listStatus"] == {"orderListId": resp["orderListId"], "contingencyType": "OCO",
                                 "listOrderStatus": "EXECUTING", "listClientOrderId": resp["listClientOrderId"],
                                 "symbol": SYMBOL, "orders": [stop, {**limit, "clientOrderId": "tp"}]}
    assert env.query(env.alice, stop["orderId"])["origQty"] == "0.04000000"
    assert env.alice.locked("BTC") == D("0.04")
    status = env.rec.events(env.alice.account_id, "listStatus")[-1]
    assert (status["l"], status["L"]) == ("UPDATED", "EXECUTING")


def test_amend_when_oto_pending_leg_then_reduced_before_it_goes_live(env):
    resp = env.oto(env.alice, **OTO)
    pending = resp["orders"][1]
    out = env.ex.amend_order(env.alice, SYMBOL, order_id=pending["orderId"], new_qty="0.05")
    assert out["amendedOrder"]["status"] == "PENDING_NEW" and "workingTime" not in out["amendedOrder"]
    env.limit(env.bob, "SELL", "0.1", "29500.00")
    assert env.alice.locked("BTC") == D("0.05")


# ---- cancel restrictions and the two ids ------------------------------------------------------------

def test_cancel_restrictions_when_status_differs_then_2011_else_cancelled(env):
    mine = env.limit(env.alice, "BUY", "0.05", "29000.00")
    err = error_of(lambda: env.ex.cancel_order(env.alice, SYMBOL, order_id=mine["orderId"],
                                               cancel_restrictions="ONLY_PARTIALLY_FILLED"))
    assert (err.code, err.msg) == (-2011, "Order was not canceled due to cancel restrictions.")
    err = error_of(lambda: env.ex.cancel_order(env.alice, SYMBOL, order_id=mine["orderId"],
                                               cancel_restrictions="ANYTIME"))
    assert (err.code, err.msg) == (-1145, "Invalid cancelRestrictions")
    env.limit(env.bob, "SELL", "0.01", "29000.00")
    out = env.ex.cancel_order(env.alice, SYMBOL, order_id=mine["orderId"], cancel_restrictions="ONLY_PARTIALLY_FILLED")
    assert out["status"] == "CANCELED"


def test_query_and_cancel_when_both_ids_disagree_then_2039(env):
    mine = env.limit(env.alice, "BUY", "0.05", "29000.00", new_client_order_id="mine")
    for call in (env.ex.query_order, env.ex.cancel_order):
        err = error_of(lambda: call(env.alice, SYMBOL, order_id=mine["orderId"], orig_client_order_id="other"))
        assert (err.code, err.msg) == (-2039, "Client order ID is not correct for this order ID.")
    assert env.ex.cancel_order(env.alice, SYMBOL, order_id=mine["orderId"], orig_client_order_id="mine")["orderId"]


# ---- cancel-replace ---------------------------------------------------------------------------------

def replace(env, account, counter=None, **params):
    base = dict(symbol=SYMBOL, cancelReplaceMode="STOP_ON_FAILURE", side="BUY", type="LIMIT", timeInForce="GTC",
                quantity="0.05", price="29100.00")
    env.tick()
    return env.ex.cancel_replace(account, {k: v for k, v in {**base, **params}.items() if v is not None}, counter)


def test_cancel_replace_when_both_succeed_then_both_answers_and_the_funds_move(env):
    old = env.limit(env.alice, "BUY", "0.05", "29000.00", new_client_order_id="a1")
    out = replace(env, env.alice, cancelOrderId=str(old["orderId"]), newClientOrderId="a1")
    assert list(out) == ["cancelResult", "newOrderResult", "cancelResponse", "newOrderResponse"]
    assert (out["cancelResult"], out["newOrderResult"]) == ("SUCCESS", "SUCCESS")
    assert out["cancelResponse"]["status"] == "CANCELED" and out["cancelResponse"]["orderId"] == old["orderId"]
    assert out["newOrderResponse"]["clientOrderId"] == "a1" and "fills" in out["newOrderResponse"]
    assert env.alice.locked("USDT") == D("1455")


def test_cancel_replace_when_cancel_fails_with_stop_on_failure_then_2022_and_nothing_placed(env):
    err = error_of(lambda: replace(env, env.alice, cancelOrderId="999"))
    assert (err.http_status, err.code, err.msg) == (400, -2022, "Order cancel-replace failed.")
    assert err.body()["data"] == {"cancelResult": "FAILURE", "newOrderResult": "NOT_ATTEMPTED",
                                  "cancelResponse": {"code": -2011, "msg": "Unknown order sent."},
                                  "newOrderResponse": None}
    assert env.ex.open_orders(env.alice) == []


def test_cancel_replace_when_cancel_fails_with_allow_failure_then_409_and_the_new_order_placed(env):
    err = error_of(lambda: replace(env, env.alice, cancelReplaceMode="ALLOW_FAILURE", cancelOrigClientOrderId="nope"))
    assert (err.http_status, err.code) == (409, -2021)
    data = err.data
    assert (data["cancelResult"], data["newOrderResult"]) == ("FAILURE", "SUCCESS")
    assert data["newOrderResponse"]["status"] == "NEW" and len(env.ex.open_orders(env.alice)) == 1


def test_cancel_replace_when_new_order_refused_by_engine_then_409_with_cancel_done(env):
    old = env.limit(env.alice, "SELL", "0.05", "31000.00")
    env.limit(env.bob, "SELL", "0.05", "30500.00")
    err = error_of(lambda: replace(env, env.alice, cancelOrderId=old["orderId"], type="LIMIT_MAKER", timeInForce=None,
                                   price="30600.00"))
    assert (err.http_status, err.code) == (409, -2021)
    assert err.data["cancelResponse"]["status"] == "CANCELED"
    assert err.data["newOrderResponse"] == {"code": -2010, "msg": "Order would immediately match and take."}


def test_cancel_replace_when_both_fail_with_allow_failure_then_2022_with_both_errors(env):
    err = error_of(lambda: replace(env, env.alice, cancelReplaceMode="ALLOW_FAILURE", cancelOrderId="999",
                                   quantity="5"))
    assert (err.http_status, err.code) == (400, -2022)
    assert (err.data["cancelResult"], err.data["newOrderResult"]) == ("FAILURE", "FAILURE")
    assert err.data["newOrderResponse"]["code"] == -2010


def test_cancel_replace_when_new_order_fails_a_filter_then_plain_error_and_nothing_cancelled(env):
    old = env.limit(env.alice, "BUY", "0.05", "29000.00")
    err = error_of(lambda: replace(env, env.alice, cancelOrderId=old["orderId"], price="29000.001"))
    assert (err.code, err.msg, err.data) == (-1013, "Filter failure: PRICE_FILTER", None)
    assert env.query(env.alice, old["orderId"])["status"] == "NEW"


def test_cancel_replace_when_mode_missing_or_wrong_then_1102_or_1100(env):
    assert error_of(lambda: replace(env, env.alice, cancelReplaceMode=None, cancelOrderId="1")).code == -1102
    assert error_of(lambda: replace(env, env.alice, cancelReplaceMode="MAYBE", cancelOrderId="1")).code == -1100
    assert error_of(lambda: replace(env, env.alice)).code == -1102


def limit_reached():
    raise BinanceError(-1015, "Too many new orders; current limit is 100 orders per 10 SECOND.", 429, 3)


def test_cancel_replace_when_order_limit_hit_and_do_nothing_then_1015_and_nothing_cancelled(env):
    old = env.limit(env.alice, "BUY", "0.05", "29000.00")
    err = error_of(lambda: replace(env, env.alice, limit_reached, cancelOrderId=old["orderId"]))
    assert (err.http_status, err.code) == (429, -1015)
    assert env.query(env.alice, old["orderId"])["status"] == "NEW"


@pytest.mark.parametrize("mode,status", [("STOP_ON_FAILURE", 429), ("ALLOW_FAILURE", 409)])
def test_cancel_replace_when_order_limit_hit_and_cancel_only_then_cancelled_and_new_order_refused(env, mode, status):
    old = env.limit(env.alice, "BUY", "0.05", "29000.00")
    err = error_of(lambda: replace(env, env.alice, limit_reached, cancelReplaceMode=mode,
                                   orderRateLimitExceededMode="CANCEL_ONLY", cancelOrderId=old["orderId"]))
    assert (err.http_status, err.code) == (status, -2021)
    assert (err.data["cancelResult"], err.data["newOrderResult"]) == ("SUCCESS", "FAILURE")
    assert err.data["newOrderResponse"] == {"code": -1015,
                                            "msg": "Too many new orders; current limit is 100 orders per 10 SECOND."}
    assert env.ex.open_orders(env.alice) == []


def test_cancel_replace_when_cancel_restricted_then_cancel_fails(env):
    old = env.limit(env.alice, "BUY", "0.05", "29000.00")
    err = error_of(lambda: replace(env, env.alice, cancelOrderId=old["orderId"], cancelRestrictions="ONLY_PARTIALLY_FILLED"))
    assert err.data["cancelResponse"] == {"code": -2011, "msg": "Order was not canceled due to cancel restrictions."}


def test_cancel_replace_when_cancelling_a_list_leg_then_the_list_is_cancelled(env):
    lst = env.oco(env.alice, **SELL_OCO)
    out = replace(env, env.alice, cancelOrderId=lst["orders"][1]["orderId"])
    assert out["cancelResponse"]["listStatusType"] == "ALL_DONE" and len(out["cancelResponse"]["orderReports"]) == 2


def test_amend_allowed_when_symbol_spec_default_then_exchange_info_says_so():
    assert Env([default_symbols()[0]]).ex.exchange_info()["symbols"][0]["amendAllowed"] is True
