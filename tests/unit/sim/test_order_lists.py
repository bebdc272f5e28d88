"""Order lists on the venue: OCO, OTO and OTOCO placement, their legs' fate, funds, events,
cancels, queries and filters, as Binance's REST docs and user-data-stream docs describe them."""

from decimal import Decimal as D

import pytest

from abidance.exchange.sim.symbols import default_symbols
from tests.unit.sim.kit import SYMBOL, Env, error_of

SELL_OCO = dict(side="SELL", quantity="0.1", aboveType="LIMIT_MAKER", abovePrice="31000.00",
                belowType="STOP_LOSS_LIMIT", belowPrice="28900.00", belowStopPrice="29000.00",
                belowTimeInForce="GTC")
BUY_OCO = dict(side="BUY", quantity="0.1", aboveType="STOP_LOSS_LIMIT", abovePrice="31100.00",
               aboveStopPrice="31000.00", aboveTimeInForce="GTC", belowType="LIMIT_MAKER", belowPrice="29000.00")
OTO = dict(workingType="LIMIT", workingSide="BUY", workingPrice="29500.00", workingQuantity="0.1",
           workingTimeInForce="GTC", pendingType="LIMIT", pendingSide="SELL", pendingPrice="31000.00",
           pendingQuantity="0.1", pendingTimeInForce="GTC")
OTOCO = dict(workingType="LIMIT", workingSide="BUY", workingPrice="29500.00", workingQuantity="0.1",
             workingTimeInForce="GTC", pendingSide="SELL", pendingQuantity="0.1", pendingAboveType="LIMIT_MAKER",
             pendingAbovePrice="31000.00", pendingBelowType="STOP_LOSS", pendingBelowStopPrice="29000.00")
LIST_KEYS = ["orderListId", "contingencyType", "listStatusType", "listOrderStatus", "listClientOrderId",
             "transactionTime", "symbol", "orders", "orderReports"]


pytestmark = pytest.mark.usefixtures("last_trade")


def user_events(env, account, kinds=("executionReport", "listStatus")):
    out = []
    for p in env.rec.events(account.account_id):
        if p["e"] == "executionReport" and p["e"] in kinds:
            out.append(("report", p["i"], p["x"], p["X"]))
        elif p["e"] == "listStatus" and p["e"] in kinds:
            out.append(("list", p["g"], p["l"], p["L"]))
    return out


# ---- OCO --------------------------------------------------------------------------------------

def test_oco_when_placed_then_binance_list_shape_stop_leg_first_and_one_lock(env):
    resp = env.oco(env.alice, listClientOrderId="myOco", **SELL_OCO)
    assert list(resp) == LIST_KEYS
    assert (resp["contingencyType"], resp["listStatusType"], resp["listOrderStatus"], resp["listClientOrderId"]) == (
        "OCO", "EXEC_STARTED", "EXECUTING", "myOco")
    stop, limit = resp["orderReports"]
    assert [o["orderId"] for o in resp["orders"]] == [stop["orderId"], limit["orderId"]] and \
        stop["orderId"] < limit["orderId"]
    assert (stop["type"], stop["stopPrice"], stop["workingTime"]) == ("STOP_LOSS_LIMIT", "29000.00000000", -1)
    assert (limit["type"], limit["workingTime"], "stopPrice" in limit) == ("LIMIT_MAKER", env.clock.t, False)
    assert {o["orderListId"] for o in resp["orderReports"]} == {resp["orderListId"]}
    assert stop["transactTime"] == resp["transactionTime"] == env.clock.t and "fills" not in stop
    assert (env.alice.free("BTC"), env.alice.locked("BTC")) == (D("1.9"), D("0.1"))   # one lock for both legs
    events = user_events(env, env.alice)
    assert events == [("report", stop["orderId"], "NEW", "NEW"), ("report", limit["orderId"], "NEW", "NEW"),
                      ("list", resp["orderListId"], "EXEC_STARTED", "EXECUTING")]
    status = env.rec.events(env.alice.account_id, "listStatus")[0]
    assert list(status) == ["e", "E", "s", "g", "c", "l", "L", "r", "C", "T", "O"]
    assert status["O"] == [{"s": SYMBOL, "i": o["orderId"], "c": o["clientOrderId"]} for o in resp["orders"]]
    assert {r["g"] for r in env.rec.events(env.alice.account_id, "executionReport")} == {resp["orderListId"]}


def test_oco_when_limit_leg_partly_fills_then_stop_leg_expires_with_oco_trigger(env):
    resp = env.oco(env.alice, **SELL_OCO)
    stop, limit = (o["orderId"] for o in resp["orders"])
    env.limit(env.bob, "BUY", "0.04", "31000.00")
    assert user_events(env, env.alice)[-2:] == [("report", limit, "TRADE", "PARTIALLY_FILLED"),
                                                ("report", stop, "EXPIRED", "EXPIRED")]
    expired = env.rec.events(env.alice.account_id, "executionReport")[-1]
    assert expired["eR"] == "OCO_TRIGGER"
    assert env.query(env.alice, stop)["expiryReason"] == "OCO_TRIGGER"
    assert env.alice.locked("BTC") == D("0.06")                # the shared lock now serves the limit leg
    assert env.ex.open_order_lists(env.alice)[0]["listOrderStatus"] == "EXECUTING"
    env.limit(env.bob, "BUY", "0.06", "31000.00")
    assert user_events(env, env.alice)[-1] == ("list", resp["orderListId"], "ALL_DONE", "ALL_DONE")
    assert env.alice.locked("BTC") == 0 and env.alice.free("BTC") == D("1.9")
    assert env.ex.open_order_lists(env.alice) == []


def test_oco_when_stop_leg_triggers_then_limit_leg_expires_before_the_stop_works(env):
    resp = env.oco(env.alice, **SELL_OCO)
    stop, limit = (o["orderId"] for o in resp["orders"])
    env.limit(env.bob, "BUY", "0.2", "28950.00")
    env.sweep("SELL", "29000.00", "0.01")                      # nothing: no trade at or below 29,000 yet
    env.limit(env.bob, "BUY", "0.01", "29000.00")
    env.sweep("SELL", "29000.00", "0.01")                      # prints 29,000: the stop fires
    assert user_events(env, env.alice)[-4:] == [
        ("report", limit, "EXPIRED", "EXPIRED"), ("report", stop, "NEW", "NEW"),
        ("report", stop, "TRADE", "FILLED"), ("list", resp["orderListId"], "ALL_DONE", "ALL_DONE")]
    assert env.alice.locked("BTC") == 0 and env.alice.free("BTC") == D("1.9")


def test_oco_buy_when_placed_then_one_lock_for_the_dearer_leg(env):
    env.oco(env.alice, **BUY_OCO)
    assert env.alice.locked("USDT") == D("3110")               # 0.1 x 31,100 (the other leg needs 2,900)


def test_oco_buy_when_cheaper_leg_fills_then_pays_its_price_and_the_rest_of_the_lock_returns(env):
    env.oco(env.alice, **BUY_OCO)
    env.limit(env.bob, "SELL", "0.1", "29000.00")
    assert env.alice.locked("USDT") == 0 and env.alice.free("USDT") == D("100000") - D("2900")
    assert env.alice.free("BTC") == D("2") + D("0.1") - D("0.0001")


def test_oco_buy_when_stop_leg_fills_below_its_limit_then_pays_the_fill_price(env):
    resp = env.oco(env.alice, **BUY_OCO)
    env.limit(env.bob, "SELL", "0.1", "31050.00")
    env.last_at("31000.00")                                    # triggers the stop: it buys bob's 31,050
    assert env.query(env.alice, resp["orders"][0]["orderId"])["status"] == "FILLED"
    assert env.alice.locked("USDT") == 0 and env.alice.free("USDT") == D("100000") - D("3105")


@pytest.mark.parametrize("change,code,msg", [
    (dict(aboveType="STOP_LOSS_LIMIT", abovePrice="31000.00", aboveStopPrice="31000.00", aboveTimeInForce="GTC"),
     -1197, "A stop loss order in a sell OCO must be below."),
    (dict(aboveType="TAKE_PROFIT", aboveStopPrice="31000.00", abovePrice=None, belowType="LIMIT_MAKER",
          belowPrice="29000.00", belowStopPrice=None, belowTimeInForce=None), -1166,
     "A limit order in a sell OCO must be above."),
    (dict(belowType="LIMIT_MAKER", belowPrice="29000.00", belowStopPrice=None, belowTimeInForce=None), -1168,
     "At least one OCO order must be contingent."),
    (dict(belowType="TAKE_PROFIT", belowStopPrice="29000.00", belowPrice=None, belowTimeInForce=None), -1199,
     "A take profit order in a sell OCO must be above."),
    (dict(aboveType="MARKET", abovePrice=None), -1158, "Order type not supported in OCO."),
    (dict(aboveType="PEGGED"), -1116, "Invalid orderType."),
    (dict(abovePrice=None), -1102, "Mandatory parameter 'abovePrice' was not sent, was empty/null, or malformed."),
    (dict(belowTimeInForce=None), -1102,
     "Mandatory parameter 'belowTimeInForce' was not sent, was empty/null, or malformed."),
    (dict(belowStopPrice=None), -1102,
     "Mandatory parameter 'belowStopPrice' was not sent, was empty/null, or malformed."),
    (dict(quantity=None), -1102, "Mandatory parameter 'quantity' was not sent, was empty/null, or malformed."),
    (dict(abovePrice="29999.00"), -2010, "The relationship of the prices for the orders is not correct."),
    (dict(belowStopPrice="30000.00", belowPrice="29900.00"), -2010,
     "The relationship of the prices for the orders is not correct."),
    (dict(quantity="5"), -2010, "Account has insufficient balance for requested action."),
    (dict(belowTrailingDelta="5"), -1013, "Filter failure: TRAILING_DELTA"),
])
def test_oco_when_sell_legs_wrong_then_binance_error_and_nothing_placed(env, change, code, msg):
    params = {k: v for k, v in {**SELL_OCO, **change}.items() if v is not None}
    err = error_of(lambda: env.oco(env.alice, **params))
    assert (err.code, err.msg) == (code, msg)
    assert env.ex.open_orders(env.alice) == [] and env.alice.locked("BTC") == 0


@pytest.mark.parametrize("change,code", [
    (dict(belowType="STOP_LOSS", belowStopPrice="31000.00", belowPrice=None), -1196),
    (dict(aboveType="LIMIT_MAKER", abovePrice="29000.00", aboveStopPrice=None, aboveTimeInForce=None,
          belowType="STOP_LOSS", belowStopPrice="31000.00", belowPrice=None), -1196),
    (dict(aboveType="TAKE_PROFIT", aboveStopPrice="29000.00", abovePrice=None, aboveTimeInForce=None), -1198),
    (dict(aboveType="LIMIT_MAKER", aboveStopPrice=None, aboveTimeInForce=None, abovePrice="31000.00"), -1168),
    (dict(belowPrice="30000.00"), -2010),
])
def test_oco_when_buy_legs_wrong_then_binance_error(env, change, code):
    params = {k: v for k, v in {**BUY_OCO, **change}.items() if v is not None}
    assert error_of(lambda: env.oco(env.alice, **params)).code == code


def test_oco_with_take_profit_legs_when_one_triggers_then_the_other_expires(env):
    resp = env.oco(env.alice, side="SELL", quantity="0.1", aboveType="TAKE_PROFIT", aboveStopPrice="31000.00",
                   belowType="STOP_LOSS", belowStopPrice="29000.00")
    stop, profit = (o["orderId"] for o in resp["orders"])
    env.limit(env.bob, "BUY", "0.1", "30950.00")
    env.last_at("31000.00")
    assert env.query(env.alice, profit)["status"] == "FILLED"
    assert env.query(env.alice, stop)["status"] == "EXPIRED"


def test_cancel_of_one_leg_when_oco_then_whole_list_cancelled_and_answered_as_a_list(env):
    resp = env.oco(env.alice, **SELL_OCO)
    stop, limit = resp["orders"]
    out = env.ex.cancel_order(env.alice, SYMBOL, order_id=limit["orderId"], new_client_order_id="bye")
    assert (out["listStatusType"], out["listOrderStatus"]) == ("ALL_DONE", "ALL_DONE")
    assert [(r["orderId"], r["status"], r["clientOrderId"], r["origClientOrderId"]) for r in out["orderReports"]] == [
        (stop["orderId"], "CANCELED", "bye", stop["clientOrderId"]),
        (limit["orderId"], "CANCELED", "bye", limit["clientOrderId"])]
    assert out["orderReports"][0]["stopPrice"] == "29000.00000000"
    assert user_events(env, env.alice)[-3:] == [("report", stop["orderId"], "CANCELED", "CANCELED"),
                                                ("report", limit["orderId"], "CANCELED", "CANCELED"),
                                                ("list", resp["orderListId"], "ALL_DONE", "ALL_DONE")]
    assert env.alice.locked("BTC") == 0 and env.alice.free("BTC") == D("2")


def test_cancel_order_list_when_by_id_or_client_id_then_cancelled_else_2011(env):
    first = env.oco(env.alice, listClientOrderId="one", **SELL_OCO)
    env.oco(env.alice, listClientOrderId="two", **{**SELL_OCO, "quantity": "0.2"})
    out = env.ex.cancel_order_list(env.alice, SYMBOL, order_list_id=str(first["orderListId"]))
    assert out["listClientOrderId"] == "one" and len(out["orderReports"]) == 2
    out = env.ex.cancel_order_list(env.alice, SYMBOL, list_client_order_id="two")
    assert out["listOrderStatus"] == "ALL_DONE"
    assert error_of(lambda: env.ex.cancel_order_list(env.alice, SYMBOL, list_client_order_id="two")).code == -2011
    assert error_of(lambda: env.ex.cancel_order_list(env.alice, SYMBOL)).code == -1102
    env.oco(env.alice, listClientOrderId="three", **SELL_OCO)
    err = error_of(lambda: env.ex.cancel_order_list(env.alice, SYMBOL, order_list_id=2, list_client_order_id="one"))
    assert err.code == -2039


def test_list_client_order_id_when_reused_while_open_then_2010_after_done_accepted(env):
    env.oco(env.alice, listClientOrderId="same", **SELL_OCO)
    assert error_of(lambda: env.oco(env.alice, listClientOrderId="same", **SELL_OCO)).msg == "Duplicate order sent."
    env.ex.cancel_order_list(env.alice, SYMBOL, list_client_order_id="same")
    assert env.oco(env.alice, listClientOrderId="same", **SELL_OCO)["listClientOrderId"] == "same"


# ---- OTO / OTOCO --------------------------------------------------------------------------------

def test_oto_when_placed_then_pending_leg_pending_new_and_only_the_working_order_locked(env):
    resp = env.oto(env.alice, **OTO)
    assert list(resp) == LIST_KEYS and resp["contingencyType"] == "OTO"
    working, pending = resp["orderReports"]
    assert (working["status"], working["type"], working["side"]) == ("NEW", "LIMIT", "BUY")
    assert (pending["status"], pending["workingTime"], pending["side"]) == ("PENDING_NEW", -1, "SELL")
    assert env.alice.locked("USDT") == D("2950") and env.alice.locked("BTC") == 0
    assert user_events(env, env.alice) == [("report", working["orderId"], "NEW", "NEW"),
                                           ("report", pending["orderId"], "NEW", "PENDING_NEW"),
                                           ("list", resp["orderListId"], "EXEC_STARTED", "EXECUTING")]
    listed = {o["orderId"]: o["status"] for o in env.ex.open_orders(env.alice)}
    assert listed == {working["orderId"]: "NEW", pending["orderId"]: "PENDING_NEW"}


def test_oto_when_working_order_partly_filled_then_pending_waits_and_goes_live_once_fully_filled(env):
    resp = env.oto(env.alice, **OTO)
    working, pending = (o["orderId"] for o in resp["orders"])
    env.limit(env.bob, "SELL", "0.06", "29500.00")
    assert env.query(env.alice, pending)["status"] == "PENDING_NEW"
    env.limit(env.bob, "SELL", "0.04", "29500.00")
    q = env.query(env.alice, pending)
    assert (q["status"], q["isWorking"], q["workingTime"]) == ("NEW", True, env.clock.t)
    assert q["time"] == resp["transactionTime"] < q["workingTime"]
    assert env.alice.locked("BTC") == D("0.1") and env.alice.locked("USDT") == 0
    assert user_events(env, env.alice)[-3:] == [("report", working, "TRADE", "FILLED"),
                                                ("report", pending, "NEW", "NEW"),
                                                ("list", resp["orderListId"], "EXEC_STARTED", "EXECUTING")]
    env.limit(env.bob, "BUY", "0.1", "31000.00")
    assert user_events(env, env.alice)[-1] == ("list", resp["orderListId"], "ALL_DONE", "ALL_DONE")


def test_oto_when_working_order_fills_at_once_then_answer_shows_pending_new_and_it_is_live_after(env):
    env.limit(env.bob, "SELL", "0.1", "29500.00")
    resp = env.oto(env.alice, **OTO)
    working, pending = resp["orderReports"]
    assert (working["status"], pending["status"]) == ("FILLED", "PENDING_NEW")
    assert env.query(env.alice, pending["orderId"])["status"] == "NEW"


def test_oto_when_working_order_expires_then_pending_expires_phase_one(env):
    resp = env.oto(env.alice, **{**OTO, "workingTimeInForce": "IOC"})
    working, pending = resp["orderReports"]
    assert working["status"] == "EXPIRED"
    q = env.query(env.alice, pending["orderId"])
    assert (q["status"], q["expiryReason"]) == ("EXPIRED", "OTO_PHASE_ONE_EXPIRED")
    assert user_events(env, env.alice)[-1] == ("list", resp["orderListId"], "ALL_DONE", "ALL_DONE")
    assert env.alice.locked("USDT") == 0


def test_oto_when_pending_cannot_be_funded_then_it_expires_rejected(env):
    resp = env.oto(env.alice, **{**OTO, "pendingQuantity": "5"})       # alice will hold 2.1 BTC
    env.limit(env.bob, "SELL", "0.1", "29500.00")
    q = env.query(env.alice, resp["orders"][1]["orderId"])
    assert (q["status"], q["expiryReason"]) == ("EXPIRED", "REJECTED")
    assert env.ex.open_order_lists(env.alice) == [] and env.alice.locked("BTC") == 0


def test_oto_when_pending_order_cancelled_then_working_cancelled_too(env):
    resp = env.oto(env.alice, **OTO)
    working, pending = resp["orders"]
    out = env.ex.cancel_order(env.alice, SYMBOL, order_id=pending["orderId"])
    assert [r["status"] for r in out["orderReports"]] == ["CANCELED", "CANCELED"]
    assert env.alice.locked("USDT") == 0


def test_otoco_when_working_fills_then_the_oco_pair_goes_live_with_one_lock_and_stop_expires_limit(env):
    resp = env.otoco(env.alice, **OTOCO)
    assert resp["contingencyType"] == "OTO" and len(resp["orderReports"]) == 3
    working, stop, limit = resp["orderReports"]
    assert (stop["type"], limit["type"], stop["status"], limit["status"]) == (
        "STOP_LOSS", "LIMIT_MAKER", "PENDING_NEW", "PENDING_NEW")
    env.limit(env.bob, "SELL", "0.1", "29500.00")
    assert [env.query(env.alice, o["orderId"])["status"] for o in (working, stop, limit)] == ["FILLED", "NEW", "NEW"]
    assert env.alice.locked("BTC") == D("0.1")
    env.limit(env.bob, "BUY", "0.1", "28000.00")
    env.limit(env.bob, "BUY", "0.01", "29000.00")
    env.sweep("SELL", "29000.00", "0.01")
    assert env.query(env.alice, limit["orderId"])["status"] == "EXPIRED"
    assert env.query(env.alice, stop["orderId"])["status"] == "FILLED"
    assert env.ex.open_order_lists(env.alice) == [] and env.alice.locked("BTC") == 0


def test_otoco_when_pending_legs_wrongly_placed_then_leg_position_error(env):
    err = error_of(lambda: env.otoco(env.alice, **{**OTOCO, "pendingAboveType": "STOP_LOSS",
                                                   "pendingAboveStopPrice": "29000.00", "pendingAbovePrice": None}))
    assert err.code == -1197


def test_oto_when_working_type_not_limit_then_1116(env):
    assert error_of(lambda: env.oto(env.alice, **{**OTO, "workingType": "MARKET"})).code == -1116


# ---- filters, queries ---------------------------------------------------------------------------

def test_max_num_order_lists_when_reached_then_1013():
    spec = default_symbols()[0]
    spec.max_num_order_lists = 2
    env = Env([spec])
    env.last_at("30000.00")
    env.oco(env.alice, **SELL_OCO)
    env.otoco(env.alice, **OTOCO)                              # an OTOCO counts as one list
    err = error_of(lambda: env.oco(env.alice, **SELL_OCO))
    assert (err.code, err.msg) == (-1013, "Filter failure: MAX_NUM_ORDER_LISTS")


def test_max_num_orders_when_a_list_would_exceed_it_then_1013_counting_every_leg():
    spec = default_symbols()[0]
    spec.max_num_orders = 3
    env = Env([spec])
    env.last_at("30000.00")
    env.limit(env.alice, "BUY", "0.01", "29000.00")
    env.limit(env.alice, "BUY", "0.01", "29000.00")
    assert error_of(lambda: env.oco(env.alice, **SELL_OCO)).msg == "Filter failure: MAX_NUM_ORDERS"
    env.ex.cancel_open_orders(env.alice, SYMBOL)
    env.limit(env.alice, "BUY", "0.01", "29000.00")
    assert error_of(lambda: env.otoco(env.alice, **OTOCO)).msg == "Filter failure: MAX_NUM_ORDERS"


def test_query_order_list_when_by_id_or_client_id_then_list_without_reports_else_2018(env):
    resp = env.oco(env.alice, listClientOrderId="q1", **SELL_OCO)
    by_id = env.ex.query_order_list(env.alice, order_list_id=str(resp["orderListId"]))
    assert list(by_id) == LIST_KEYS[:-1] and by_id["orders"] == resp["orders"]
    assert env.ex.query_order_list(env.alice, orig_client_order_id="q1") == by_id
    err = error_of(lambda: env.ex.query_order_list(env.alice, order_list_id="99"))
    assert (err.code, err.msg) == (-2018, "Order list does not exist.")
    assert error_of(lambda: env.ex.query_order_list(env.bob, order_list_id=str(resp["orderListId"]))).code == -2018


def test_all_order_lists_when_paged_then_oldest_first_from_id(env):
    ids = [env.oco(env.alice, **SELL_OCO)["orderListId"] for _ in range(3)]
    env.ex.cancel_order_list(env.alice, SYMBOL, order_list_id=ids[0])
    assert [x["orderListId"] for x in env.ex.all_order_lists(env.alice)] == ids
    assert [x["orderListId"] for x in env.ex.all_order_lists(env.alice, from_id=ids[1], limit=1)] == [ids[1]]
    assert [x["orderListId"] for x in env.ex.open_order_lists(env.alice)] == ids[1:]
    assert env.ex.all_order_lists(env.alice)[0]["listStatusType"] == "ALL_DONE"


def test_cancel_open_orders_when_lists_open_then_each_list_once_beside_single_orders(env):
    single = env.limit(env.alice, "BUY", "0.01", "29000.00")
    lst = env.oco(env.alice, **SELL_OCO)
    out = env.ex.cancel_open_orders(env.alice, SYMBOL)
    assert out[0]["orderId"] == single["orderId"] and out[1]["orderListId"] == lst["orderListId"]
    assert len(out) == 2 and env.ex.open_orders(env.alice) == []


def test_my_trades_and_views_when_order_in_a_list_then_carry_its_order_list_id(env):
    resp = env.oco(env.alice, **SELL_OCO)
    env.limit(env.bob, "BUY", "0.1", "31000.00")
    assert env.ex.my_trades(env.alice, SYMBOL)[-1]["orderListId"] == resp["orderListId"]
    assert {o["orderListId"] for o in env.ex.all_orders(env.alice, SYMBOL)} >= {resp["orderListId"]}
