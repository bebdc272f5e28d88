"""SimExchange facade: Binance-shaped responses and events, errors, exact money, stream consistency."""

import re
from decimal import Decimal as D

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from abidance.exchange.sim.errors import BinanceError
from abidance.exchange.sim.symbols import default_symbols
from tests.unit.sim.kit import SYMBOL, Env, error_of, sample, totals

DECIMAL_8 = re.compile(r"^-?\d+\.\d{8}$")


# ---- JSON shapes against the real samples -----------------------------------------------------

def test_new_order_full_when_market_fills_then_keys_order_and_types_match_binance_sample(env):
    env.limit(env.bob, "SELL", "0.1", "30000.00")
    resp = env.market(env.alice, "BUY", "0.05")
    real = sample("http", "new_order_full_response.json")
    assert list(resp) == list(real)
    assert list(resp["fills"][0]) == list(real["fills"][0])
    assert resp["fills"] == [{"price": "30000.00000000", "qty": "0.05000000", "commission": "0.00005000",
                              "commissionAsset": "BTC", "tradeId": 1}]
    assert (resp["status"], resp["type"], resp["timeInForce"], resp["price"]) == ("FILLED", "MARKET", "GTC",
                                                                                  "0.00000000")
    assert resp["cummulativeQuoteQty"] == "1500.00000000" and resp["transactTime"] == env.clock.t


def test_query_open_all_orders_when_listed_then_keys_in_each_samples_order(env):
    resp = env.limit(env.alice, "BUY", "0.01", "29000.00", new_client_order_id="myOrder1")
    query = env.ex.query_order(env.alice, SYMBOL, order_id=resp["orderId"])
    assert list(query) == list(sample("http", "order_response.json"))
    assert list(env.ex.open_orders(env.alice, SYMBOL)[0]) == list(sample("http", "open_orders_response.json")[0])
    assert list(env.ex.all_orders(env.alice, SYMBOL)[0]) == list(sample("http", "all_orders_response.json")[0])
    assert query["clientOrderId"] == "myOrder1" and query["isWorking"] is True
    assert query["price"] == "29000.00000000" and query["origQty"] == "0.01000000"
    assert query["time"] == query["updateTime"] == query["workingTime"] == env.clock.t


def test_cancel_when_open_then_response_keys_match_sample_and_ids_are_binance_like(env):
    resp = env.limit(env.alice, "BUY", "0.01", "29000.00", new_client_order_id="myOrder1")
    env.tick()
    cancel = env.ex.cancel_order(env.alice, SYMBOL, orig_client_order_id="myOrder1",
                                 new_client_order_id="cancelMyOrder1")
    assert list(cancel) == list(sample("http", "cancel_order_response.json"))
    assert (cancel["origClientOrderId"], cancel["clientOrderId"], cancel["orderId"]) == (
        "myOrder1", "cancelMyOrder1", resp["orderId"])
    assert cancel["status"] == "CANCELED" and cancel["transactTime"] == env.clock.t
    report = env.rec.events(env.alice.account_id, "executionReport")[-1]
    assert (report["x"], report["X"], report["c"], report["C"]) == ("CANCELED", "CANCELED", "cancelMyOrder1",
                                                                    "myOrder1")


def test_cancel_open_orders_when_several_then_each_like_the_sample_sharing_one_cancel_id(env):
    env.limit(env.alice, "BUY", "0.01", "29000.00")
    env.limit(env.alice, "BUY", "0.01", "29001.00")
    out = env.ex.cancel_open_orders(env.alice, SYMBOL)
    real = sample("http", "cancel_open_orders_response.json")[0]
    assert [list(o) for o in out] == [list(real)] * 2
    assert out[0]["clientOrderId"] == out[1]["clientOrderId"]
    assert env.ex.open_orders(env.alice) == []
    assert env.alice.locked("USDT") == 0 and env.alice.free("USDT") == D("100000")


def test_account_info_when_rendered_then_keys_match_sample(env):
    info = env.ex.account_info(env.alice)
    real = sample("http", "account_response.json")
    assert list(info) == list(real)
    assert list(info["commissionRates"]) == list(real["commissionRates"])
    assert list(info["balances"][0]) == list(real["balances"][0])
    assert info["makerCommission"] == 10 and info["commissionRates"]["maker"] == "0.00100000"
    assert info["balances"] == [{"asset": "USDT", "free": "100000.00000000", "locked": "0.00000000"},
                                {"asset": "BTC", "free": "2.00000000", "locked": "0.00000000"}]
    assert info["uid"] == env.alice.account_id


def test_account_info_when_rates_overridden_then_shown(env):
    vip = env.ex.create_account("vip", "s", {"USDT": "1"}, maker_rate="0.0002", taker_rate="0.0004")
    info = env.ex.account_info(vip)
    assert (info["makerCommission"], info["takerCommission"]) == (2, 4)
    assert info["commissionRates"]["taker"] == "0.00040000"


def test_my_trades_and_recent_trades_when_filled_then_keys_match_samples(env):
    env.limit(env.bob, "SELL", "0.1", "30000.00")
    env.market(env.alice, "BUY", "0.05")
    mine = env.ex.my_trades(env.alice, SYMBOL)
    assert list(mine[0]) == list(sample("http", "account_trades_response.json")[0])
    assert mine[0]["isBuyer"] is True and mine[0]["isMaker"] is False and mine[0]["quoteQty"] == "1500.00000000"
    theirs = env.ex.my_trades(env.bob, SYMBOL)[0]
    assert (theirs["isBuyer"], theirs["isMaker"], theirs["commission"], theirs["commissionAsset"]) == (
        False, True, "1.50000000", "USDT")
    recent = env.ex.recent_trades(SYMBOL)
    assert list(recent[0]) == list(sample("http", "trades_response.json")[0])
    assert recent[0]["isBuyerMaker"] is False and recent[0]["id"] == 1


def test_market_data_when_rendered_then_keys_match_samples(env):
    env.limit(env.bob, "SELL", "0.1", "30000.00")
    env.limit(env.alice, "BUY", "0.2", "29999.00")
    depth = env.ex.depth(SYMBOL)
    assert list(depth) == list(sample("http", "depth_response.json"))
    assert depth["bids"] == [["29999.00000000", "0.20000000"]] and depth["asks"] == [["30000.00000000",
                                                                                      "0.10000000"]]
    ticker = env.ex.book_ticker(SYMBOL)
    assert list(ticker) == list(sample("http", "book_ticker_response.json"))
    assert ticker == {"symbol": SYMBOL, "bidPrice": "29999.00000000", "bidQty": "0.20000000",
                      "askPrice": "30000.00000000", "askQty": "0.10000000"}
    assert list(env.ex.avg_price(SYMBOL)) == list(sample("http", "avg_price_response.json"))
    assert env.ex.last_price(SYMBOL) == "0.00000000"
    info = env.ex.exchange_info()
    real = sample("http", "http_spot_market_exchange_info.json")
    assert list(info) == list(real)
    assert list(info["rateLimits"][0]) == list(real["rateLimits"][0])
    assert [(r["rateLimitType"], r["intervalNum"], r["limit"]) for r in info["rateLimits"]] == [
        ("REQUEST_WEIGHT", 1, 6000), ("ORDERS", 10, 100), ("ORDERS", 1, 200000), ("RAW_REQUESTS", 5, 300000)]   # raised on 2026-04-02
    assert [s["symbol"] for s in env.ex.exchange_info(["ETHUSDT"])["symbols"]] == ["ETHUSDT"]


def test_execution_reports_when_order_lives_then_keys_order_and_types_match_ws_samples(env):
    env.limit(env.bob, "SELL", "0.01", "30000.00")
    env.limit(env.alice, "BUY", "0.03", "30000.00")
    reports = env.rec.events(env.alice.account_id, "executionReport")
    assert [(r["x"], r["X"]) for r in reports] == [("NEW", "NEW"), ("TRADE", "PARTIALLY_FILLED")]
    real_new = sample("ws", "ws_spot_execution_report_trade_l_zero_new.json")
    real_trade = sample("ws", "ws_spot_execution_report_trade.json")
    for ours in reports:
        assert list(ours) == list(real_new)
        for key, value in real_trade.items():
            if key not in ("N",):
                assert type(ours[key]) is type(value), key
    new, trade = reports
    assert (new["n"], new["N"], new["t"], new["L"], new["w"]) == ("0", None, -1, "0.00000000", True)
    assert (trade["l"], trade["z"], trade["L"], trade["n"], trade["N"], trade["t"], trade["m"]) == (
        "0.01000000", "0.01000000", "30000.00000000", "0.00001000", "BTC", 1, False)
    assert trade["Z"] == trade["Y"] == "300.00000000" and trade["W"] == trade["O"]
    maker = env.rec.events(env.bob.account_id, "executionReport")[-1]
    assert (maker["X"], maker["m"], maker["n"], maker["N"]) == ("FILLED", True, "0.30000000", "USDT")
    for r in reports + [maker]:
        for key in ("q", "p", "P", "F", "l", "z", "L", "Z", "Y", "Q"):
            assert DECIMAL_8.match(r[key]), (key, r[key])


def test_account_position_when_order_changes_funds_then_outbound_account_position_follows(env):
    env.limit(env.alice, "BUY", "0.01", "29000.00")
    pos = env.rec.user[-1]
    assert pos[0] == env.alice.account_id
    assert pos[1] == {"e": "outboundAccountPosition", "E": env.clock.t, "u": env.clock.t,
                      "B": [{"a": "BTC", "f": "2.00000000", "l": "0.00000000"},
                            {"a": "USDT", "f": "99710.00000000", "l": "290.00000000"}]}


def test_deposit_when_credited_then_balance_update_and_position(env):
    env.ex.deposit(env.alice, "ETH", "1.5")
    (_, upd), (_, pos) = env.rec.user[-2:]
    assert upd == {"e": "balanceUpdate", "E": env.clock.t, "a": "ETH", "d": "1.50000000", "T": env.clock.t}
    assert pos["B"] == [{"a": "ETH", "f": "1.50000000", "l": "0.00000000"}]
    assert env.alice.free("ETH") == D("1.5")


# ---- response types ---------------------------------------------------------------------------

def test_resp_type_when_not_given_then_full_for_limit_and_market_ack_otherwise(env):
    assert "fills" in env.limit(env.alice, "BUY", "0.01", "29000.00")
    env.tick()
    maker = env.ex.new_order(env.alice, symbol=SYMBOL, side="BUY", type="LIMIT_MAKER", quantity="0.01",
                             price="29000.00")
    assert list(maker) == ["symbol", "orderId", "orderListId", "clientOrderId", "transactTime"]
    result = env.limit(env.alice, "BUY", "0.01", "29000.00", new_order_resp_type="RESULT")
    assert "fills" not in result and result["status"] == "NEW"


def test_stop_order_when_result_requested_then_stop_price_and_working_time_minus_one(env):
    env.limit(env.bob, "SELL", "0.01", "30000.00")
    env.market(env.alice, "BUY", "0.01")
    resp = env.ex.new_order(env.alice, symbol=SYMBOL, side="SELL", type="STOP_LOSS_LIMIT", time_in_force="GTC",
                            quantity="0.01", price="29000.00", stop_price="29500.00", new_order_resp_type="RESULT")
    assert resp["stopPrice"] == "29500.00000000" and resp["workingTime"] == -1 and resp["status"] == "NEW"
    query = env.ex.query_order(env.alice, SYMBOL, order_id=resp["orderId"])
    assert query["isWorking"] is False and query["workingTime"] == -1
    new = env.rec.events(env.alice.account_id, "executionReport")[-1]
    assert new["w"] is False and "W" not in new and new["P"] == "29500.00000000"


def test_test_order_when_valid_then_empty_object_and_nothing_placed(env):
    out = env.ex.test_order(env.alice, symbol=SYMBOL, side="BUY", type="LIMIT", time_in_force="GTC",
                            quantity="0.01", price="29000.00")
    assert out == {} and env.ex.open_orders(env.alice) == [] and env.alice.locked("USDT") == 0
    assert error_of(lambda: env.ex.test_order(env.alice, symbol=SYMBOL, side="BUY", type="LIMIT",
                                              time_in_force="GTC", quantity="0.01",
                                              price="29000.001")).code == -1013


# ---- money: exact balances and fees -------------------------------------------------------------

def test_limit_fill_when_buyer_crosses_above_ask_then_balances_and_fees_exact(env):
    env.limit(env.alice, "SELL", "0.5", "30000.01")
    assert (env.alice.free("BTC"), env.alice.locked("BTC")) == (D("1.5"), D("0.5"))
    resp = env.limit(env.bob, "BUY", "0.2", "30001.00")
    assert resp["status"] == "FILLED" and resp["fills"][0]["price"] == "30000.01000000"
    # bob: locked 0.2 * 30001 = 6000.2, paid 0.2 * 30000.01 = 6000.002, fee 0.2 * 0.001 BTC
    assert env.balances(env.bob) == {"USDT": (D("93999.998"), D("0")), "BTC": (D("2.1998"), D("0"))}
    # alice: received 6000.002 - 6.000002 fee; 0.3 BTC still locked for the rest of her order
    assert env.balances(env.alice) == {"USDT": (D("105994.001998"), D("0")), "BTC": (D("1.5"), D("0.3"))}
    assert env.ex.fees_collected == {"BTC": D("0.0002"), "USDT": D("6.000002")}


def test_market_quote_order_qty_when_buying_then_whole_steps_within_the_quote_amount(env):
    env.ex.mm_quote(SYMBOL, "SELL", env.ticks("30000"), env.steps("0.1"))
    env.ex.mm_quote(SYMBOL, "SELL", env.ticks("30010"), env.steps("0.1"))
    resp = env.market(env.bob, "BUY", quote="4500")
    # 0.1 @ 30000 = 3000; 1500 more buys floor(1500 / 0.3001) = 4998 steps @ 30010 = 1499.8998
    assert (resp["status"], resp["origQty"], resp["executedQty"]) == ("FILLED", "0.14998000", "0.14998000")
    assert (resp["cummulativeQuoteQty"], resp["origQuoteOrderQty"]) == ("4499.89980000", "4500.00000000")
    assert [f["commission"] for f in resp["fills"]] == ["0.00010000", "0.00004998"]
    assert env.balances(env.bob) == {"USDT": (D("95500.1002"), D("0")), "BTC": (D("2.14983002"), D("0"))}


def test_market_quote_order_qty_when_selling_then_receives_at_most_the_quote_amount(env):
    env.ex.mm_quote(SYMBOL, "BUY", env.ticks("20000"), env.steps("1"))
    resp = env.market(env.bob, "SELL", quote="100.00001")
    # 0.005 BTC = 100.00; one more step would pay 100.20
    assert (resp["executedQty"], resp["cummulativeQuoteQty"]) == ("0.00500000", "100.00000000")
    assert env.bob.free("BTC") == D("1.995") and env.bob.free("USDT") == D("100000") + D("100") - D("0.1")


def test_market_buy_when_book_thin_then_fills_available_and_expires_releasing_the_lock(env):
    env.limit(env.bob, "SELL", "0.01", "30000.00")
    resp = env.market(env.alice, "BUY", "0.05")
    assert (resp["status"], resp["executedQty"]) == ("EXPIRED", "0.01000000")
    assert env.alice.locked("USDT") == 0 and env.alice.free("USDT") == D("99700")


def test_ioc_when_remainder_unfilled_then_expired_and_lock_released(env):
    env.limit(env.bob, "SELL", "0.01", "30000.00")
    resp = env.limit(env.alice, "BUY", "0.03", "30000.00", tif="IOC")
    assert (resp["status"], resp["executedQty"]) == ("EXPIRED", "0.01000000")
    assert env.alice.locked("USDT") == 0 and env.alice.free("USDT") == D("99700")
    xs = [(r["x"], r["X"]) for r in env.rec.events(env.alice.account_id, "executionReport")]
    assert xs == [("NEW", "NEW"), ("TRADE", "PARTIALLY_FILLED"), ("EXPIRED", "EXPIRED")]


def test_fok_when_not_fillable_then_expired_with_no_trade(env):
    env.limit(env.bob, "SELL", "0.01", "30000.00")
    resp = env.limit(env.alice, "BUY", "0.03", "30000.00", tif="FOK")
    assert (resp["status"], resp["executedQty"], resp["fills"]) == ("EXPIRED", "0.00000000", [])
    assert env.rec.trades == [] and env.alice.locked("USDT") == 0


def test_stop_loss_when_market_maker_sweeps_through_then_user_gets_new_new_trade(env):
    env.ex.mm_quote(SYMBOL, "BUY", env.ticks("30000"), env.steps("1"))
    env.market(env.alice, "SELL", "0.01")                                   # last 30000
    stop = env.ex.new_order(env.alice, symbol=SYMBOL, side="SELL", type="STOP_LOSS_LIMIT", time_in_force="GTC",
                            quantity="0.02", price="29800.00", stop_price="29900.00")
    assert env.alice.locked("BTC") == D("0.02")
    env.limit(env.bob, "BUY", "0.01", "29850.00")
    env.limit(env.bob, "BUY", "0.05", "29810.00")
    # The sweep expires the MM bid at 30000 and fills bob at 29850: the stop (29900) fires and its
    # SELL limit 29800 takes bob's 29810 bid.
    assert env.ex.mm_take(SYMBOL, "SELL", env.ticks("29850"), env.steps("2")) == env.steps("0.01")
    q = env.ex.query_order(env.alice, SYMBOL, order_id=stop["orderId"])
    reports = [r for r in env.rec.events(env.alice.account_id, "executionReport") if r["i"] == stop["orderId"]]
    assert [(r["x"], r["X"], r["w"], "W" in r) for r in reports] == [
        ("NEW", "NEW", False, False), ("NEW", "NEW", True, True), ("TRADE", "FILLED", False, True)]
    assert reports[-1]["L"] == "29810.00000000" and reports[-1]["m"] is False
    assert (q["status"], q["isWorking"], q["workingTime"]) == ("FILLED", True, env.clock.t)
    assert env.alice.locked("BTC") == 0
    assert env.ex.last_price(SYMBOL) == "29810.00000000"


def test_stop_when_it_would_trigger_immediately_then_2010(env):
    env.limit(env.bob, "SELL", "0.01", "30000.00")
    env.market(env.alice, "BUY", "0.01")
    err = error_of(lambda: env.ex.new_order(env.alice, symbol=SYMBOL, side="SELL", type="STOP_LOSS_LIMIT",
                                            time_in_force="GTC", quantity="0.01", price="30000.00",
                                            stop_price="30100.00"))
    assert (err.code, err.msg) == (-2010, "Stop price would trigger immediately.")
    assert env.alice.locked("BTC") == 0


# ---- market maker -----------------------------------------------------------------------------

def test_mm_take_when_users_and_mm_rest_at_a_price_then_users_fill_in_time_priority_and_mm_quotes_expire(env):
    mm_id = env.ex.mm_quote(SYMBOL, "SELL", env.ticks("30000"), env.steps("0.5"))
    first = env.limit(env.alice, "SELL", "0.01", "30000.00")
    second = env.limit(env.bob, "SELL", "0.01", "30000.00")
    filled = env.ex.mm_take(SYMBOL, "BUY", env.ticks("30000"), env.steps("0.015"))
    assert filled == env.steps("0.015")
    assert env.ex.query_order(env.alice, SYMBOL, order_id=first["orderId"])["status"] == "FILLED"
    assert env.ex.query_order(env.bob, SYMBOL, order_id=second["orderId"])["status"] == "PARTIALLY_FILLED"
    assert env.ex.mm_orders(SYMBOL) == [] and mm_id
    assert env.ex.depth(SYMBOL)["asks"] == [["30000.00000000", "0.00500000"]]


def test_mm_when_trading_with_itself_only_then_no_user_events_and_no_trades(env):
    env.ex.mm_quote(SYMBOL, "SELL", env.ticks("30000"), env.steps("0.5"))
    env.ex.mm_quote(SYMBOL, "BUY", env.ticks("29990"), env.steps("0.5"))
    assert env.ex.mm_take(SYMBOL, "BUY", None, env.steps("1")) == 0
    assert env.rec.user == [] and env.rec.trades == []
    assert [o.side for o in env.ex.mm_orders(SYMBOL)] == ["BUY"]
    assert env.ex.book_top(SYMBOL) == (env.ticks("29990"), env.steps("0.5"), None, None)


def test_mm_cancel_when_quote_resting_then_removed_from_book(env):
    oid = env.ex.mm_quote(SYMBOL, "BUY", env.ticks("29990"), env.steps("0.5"))
    assert env.ex.mm_orders(SYMBOL)[0].qty_steps == env.steps("0.5")
    assert env.ex.mm_cancel(SYMBOL, oid) and not env.ex.mm_cancel(SYMBOL, oid)
    assert env.ex.book_top(SYMBOL) == (None, None, None, None)


# ---- market data values ---------------------------------------------------------------------------

def test_avg_price_when_trades_in_window_then_volume_weighted_else_mid(env):
    env.ex.mm_quote(SYMBOL, "SELL", env.ticks("100"), env.steps("1"))
    env.ex.mm_quote(SYMBOL, "SELL", env.ticks("200"), env.steps("1"))
    env.ex.mm_quote(SYMBOL, "BUY", env.ticks("50"), env.steps("1"))
    assert env.ex.avg_price(SYMBOL)["price"] == "75.00000000"                  # mid of 50 / 100
    env.market(env.alice, "BUY", "1.5")                                       # 1 @ 100 + 0.5 @ 200
    assert env.ex.avg_price(SYMBOL) == {"mins": 5, "price": "133.33333333", "closeTime": env.clock.t}
    env.tick(5 * 60_000 + 1)
    assert env.ex.avg_price(SYMBOL)["price"] == "125.00000000"                # window empty: mid 50 / 200
    assert env.ex.last_price(SYMBOL) == "200.00000000"


def test_depth_when_limit_given_then_best_levels_first_truncated(env):
    for i in range(5):
        env.ex.mm_quote(SYMBOL, "BUY", env.ticks("100") - i, env.steps("1"))
        env.ex.mm_quote(SYMBOL, "SELL", env.ticks("101") + i, env.steps("1"))
    depth = env.ex.depth(SYMBOL, limit=2)
    assert [p for p, _ in depth["bids"]] == ["100.00000000", "99.99000000"]
    assert [p for p, _ in depth["asks"]] == ["101.00000000", "101.01000000"]
    assert depth["lastUpdateId"] == 10


def test_all_orders_and_my_trades_when_paged_then_binance_semantics(env):
    ids = [env.limit(env.alice, "BUY", "0.01", f"{29000 + i}.00")["orderId"] for i in range(5)]
    assert [o["orderId"] for o in env.ex.all_orders(env.alice, SYMBOL, limit=2)] == ids[-2:]
    assert [o["orderId"] for o in env.ex.all_orders(env.alice, SYMBOL, order_id=ids[1], limit=2)] == ids[1:3]
    for _ in range(3):
        env.market(env.bob, "SELL", "0.01")
    trades = env.ex.my_trades(env.alice, SYMBOL)
    assert [t["id"] for t in trades] == [1, 2, 3]
    assert [t["id"] for t in env.ex.my_trades(env.alice, SYMBOL, from_id=2, limit=1)] == [2]
    assert [t["orderId"] for t in env.ex.my_trades(env.alice, SYMBOL, order_id=ids[4])] == [ids[4]]


def test_client_order_id_when_reused_after_the_order_closed_then_accepted(env):
    env.limit(env.alice, "BUY", "0.01", "29000.00", new_client_order_id="dup")
    err = error_of(lambda: env.limit(env.alice, "BUY", "0.01", "29000.00", new_client_order_id="dup"))
    assert (err.code, err.msg) == (-2010, "Duplicate order sent.")
    env.ex.cancel_order(env.alice, SYMBOL, orig_client_order_id="dup")
    again = env.limit(env.alice, "BUY", "0.01", "29000.00", new_client_order_id="dup")
    assert env.ex.query_order(env.alice, SYMBOL, orig_client_order_id="dup")["orderId"] == again["orderId"]


# ---- errors -------------------------------------------------------------------------------------

LIMIT_OK = dict(symbol=SYMBOL, side="BUY", type="LIMIT", time_in_force="GTC", quantity="0.01", price="29000.00")

ORDER_ERRORS = [
    (dict(symbol=None), -1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed."),
    (dict(symbol="NOPE"), -1121, "Invalid symbol."),
    (dict(side=""), -1102, "Mandatory parameter 'side' was not sent, was empty/null, or malformed."),
    (dict(side="HOLD"), -1117, "Invalid side."),
    (dict(type=None), -1102, "Mandatory parameter 'type' was not sent, was empty/null, or malformed."),
    (dict(type="ICEBERG"), -1116, "Invalid orderType."),
    (dict(type="STOP_LOSS", stop_price="1"), -1106, "Parameter 'timeInForce' sent when not required."),
    (dict(type="STOP_LOSS", time_in_force=None, stop_price="1"), -1106, "Parameter 'price' sent when not required."),
    (dict(trailing_delta="100"), -1106, "Parameter 'trailingDelta' sent when not required."),
    (dict(type="STOP_LOSS_LIMIT", trailing_delta="1.5"), -1100, None),
    (dict(type="STOP_LOSS_LIMIT", side="SELL", quantity="0.01", trailing_delta="9"), -1013,
     "Filter failure: TRAILING_DELTA"),
    (dict(type="STOP_LOSS_LIMIT", trailing_delta="2001"), -1013, "Filter failure: TRAILING_DELTA"),
    (dict(self_trade_prevention_mode="SOMETIMES"), -1100, None),
    (dict(self_trade_prevention_mode="NONE"), -1013,
     "This symbol does not allow the specified self-trade prevention mode."),
    (dict(time_in_force=None), -1102,
     "Mandatory parameter 'timeInForce' was not sent, was empty/null, or malformed."),
    (dict(time_in_force="GTX"), -1115, "Invalid timeInForce."),
    (dict(type="MARKET", price=None), -1106, "Parameter 'timeInForce' sent when not required."),
    (dict(type="MARKET", time_in_force=None), -1106, "Parameter 'price' sent when not required."),
    (dict(price=None), -1102, "Mandatory parameter 'price' was not sent, was empty/null, or malformed."),
    (dict(type="STOP_LOSS_LIMIT"), -1102,
     "Mandatory parameter 'stopPrice' was not sent, was empty/null, or malformed."),
    (dict(stop_price="29000.00"), -1106, "Parameter 'stopPrice' sent when not required."),
    (dict(quantity=None), -1102, "Mandatory parameter 'quantity' was not sent, was empty/null, or malformed."),
    (dict(quote_order_qty="100"), -1106, "Parameter 'quoteOrderQty' sent when not required."),
    (dict(type="MARKET", time_in_force=None, price=None, quantity=None), -1102,
     "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!"),
    (dict(type="MARKET", time_in_force=None, price=None, quote_order_qty="100"), -1106,
     "Parameter 'quoteOrderQty' sent when not required."),
    (dict(price="29,000"), -1100, None),
    (dict(price="29000.000000001"), -1111, "Parameter 'price' has too much precision."),
    (dict(quantity="0.0100000001"), -1111, "Parameter 'quantity' has too much precision."),
    (dict(price="29000.001"), -1013, "Filter failure: PRICE_FILTER"),
    (dict(quantity="0.000015"), -1013, "Filter failure: LOT_SIZE"),
    (dict(type="MARKET", time_in_force=None, price=None, quantity="101"), -1013,
     "Filter failure: MARKET_LOT_SIZE"),
    (dict(quantity="0.0001"), -1013, "Filter failure: NOTIONAL"),
    (dict(type="MARKET", time_in_force=None, price=None, quantity=None, quote_order_qty="4.99"), -1013,
     "Filter failure: NOTIONAL"),
    (dict(new_order_resp_type="ALL"), -1100, None),
    (dict(new_client_order_id="has space"), -1100, None),
    (dict(quantity="4"), -2010, "Account has insufficient balance for requested action."),
]


@pytest.mark.parametrize("change,code,msg", ORDER_ERRORS)
def test_new_order_when_parameters_wrong_then_binance_error(env, change, code, msg):
    err = error_of(lambda: env.ex.new_order(env.alice, **{**LIMIT_OK, **change}))
    assert err.code == code
    if msg:
        assert err.msg == msg
    assert err.http_status == 400
    assert env.ex.open_orders(env.alice) == [] and env.alice.locked("USDT") == 0


def test_limit_maker_when_it_would_take_then_2010_and_no_funds_locked(env):
    env.limit(env.bob, "SELL", "0.01", "30000.00")
    err = error_of(lambda: env.ex.new_order(env.alice, symbol=SYMBOL, side="BUY", type="LIMIT_MAKER",
                                            quantity="0.01", price="30000.00"))
    assert (err.code, err.msg) == (-2010, "Order would immediately match and take.")
    assert env.alice.locked("USDT") == 0 and env.rec.events(env.alice.account_id) == []


def test_percent_price_by_side_when_buy_far_above_average_then_1013(env):
    env.limit(env.bob, "SELL", "0.1", "100.00")
    env.market(env.alice, "BUY", "0.1")                                       # average price 100
    err = error_of(lambda: env.limit(env.alice, "BUY", "0.01", "500.01"))     # above 100 * bidMultiplierUp 5
    assert (err.code, err.msg) == (-1013, "Filter failure: PERCENT_PRICE_BY_SIDE")
    assert env.limit(env.alice, "BUY", "0.01", "500.00")["status"] == "NEW"
    err = error_of(lambda: env.limit(env.bob, "SELL", "1", "19.99"))          # below 100 * askMultiplierDown 0.2
    assert err.msg == "Filter failure: PERCENT_PRICE_BY_SIDE"


def test_max_num_orders_when_limits_reached_then_1013():
    spec = default_symbols()[0]
    spec.max_num_orders, spec.max_num_algo_orders = 2, 1
    env = Env([spec])
    env.ex.mm_quote(SYMBOL, "SELL", env.ticks("30000"), 1)
    env.ex.mm_take(SYMBOL, "BUY", None, 1)
    env.ex.new_order(env.alice, symbol=SYMBOL, side="SELL", type="STOP_LOSS_LIMIT", time_in_force="GTC",
                     quantity="0.01", price="29000.00", stop_price="29000.00")
    err = error_of(lambda: env.ex.new_order(env.alice, symbol=SYMBOL, side="SELL", type="TAKE_PROFIT_LIMIT",
                                            time_in_force="GTC", quantity="0.01", price="31000.00",
                                            stop_price="31000.00"))
    assert err.msg == "Filter failure: MAX_NUM_ALGO_ORDERS"
    env.limit(env.alice, "BUY", "0.01", "29000.00")
    assert error_of(lambda: env.limit(env.alice, "BUY", "0.01", "29000.00")).msg == "Filter failure: MAX_NUM_ORDERS"


def test_account_when_trading_disabled_then_2010(env):
    locked = env.ex.create_account("frozen", "s", {"USDT": "1000"}, can_trade=False)
    err = error_of(lambda: env.ex.new_order(locked, **LIMIT_OK))
    assert (err.code, err.msg) == (-2010, "This action is disabled on this account.")


def test_cancel_and_query_when_order_unknown_or_closed_then_2011_and_2013(env):
    assert error_of(lambda: env.ex.cancel_order(env.alice, SYMBOL, order_id=99)).code == -2011
    assert error_of(lambda: env.ex.cancel_order(env.alice, SYMBOL)).code == -1102
    assert error_of(lambda: env.ex.cancel_order(env.alice, SYMBOL, order_id="x1")).code == -1100
    assert error_of(lambda: env.ex.query_order(env.alice, SYMBOL, order_id=99)).code == -2013
    assert error_of(lambda: env.ex.query_order(env.alice, SYMBOL)).code == -1102
    resp = env.limit(env.alice, "BUY", "0.01", "29000.00")
    assert error_of(lambda: env.ex.cancel_order(env.bob, SYMBOL, order_id=resp["orderId"])).code == -2011
    env.ex.cancel_order(env.alice, SYMBOL, order_id=str(resp["orderId"]))
    err = error_of(lambda: env.ex.cancel_order(env.alice, SYMBOL, order_id=resp["orderId"]))
    assert (err.code, err.msg) == (-2011, "Unknown order sent.")
    assert error_of(lambda: env.ex.cancel_open_orders(env.alice, SYMBOL)).code == -2011
    err = error_of(lambda: env.ex.query_order(env.alice, SYMBOL, order_id=123456))
    assert (err.code, err.msg) == (-2013, "Order does not exist.")


def test_lookups_when_unknown_key_or_symbol_then_2015_and_1121(env):
    assert error_of(lambda: env.ex.account_by_key("nobody")).code == -2015
    assert env.ex.account_by_key("alice-key") is env.alice
    assert error_of(lambda: env.ex.depth("NOPE")).code == -1121
    assert error_of(lambda: env.ex.exchange_info(["NOPE"])).code == -1121
    with pytest.raises(ValueError):
        env.ex.create_account("alice-key", "x", {})


# ---- stream consistency and conservation (properties) --------------------------------------------

OPS = st.lists(st.tuples(
    st.sampled_from(["limit", "ioc", "fok", "market", "quote", "maker", "stop", "tp", "cancel",
                     "mm_quote", "mm_take", "mm_cancel", "tick", "sl", "trail", "oco", "oto", "amend", "replace",
                     "stp"]),
    st.sampled_from([0, 1]),                 # alice / bob
    st.sampled_from(["BUY", "SELL"]),
    st.integers(-20, 20),                    # price offset in ticks * 100 (1 USDT)
    st.integers(1, 60),                      # quantity in 0.001 BTC
), min_size=10, max_size=60)


def run_ops(env, ops):
    ex, spec = env.ex, env.ex.spec(SYMBOL)
    users = [env.alice, env.bob]
    base = 3_000_000
    for k in range(1, 6):                     # some market-maker liquidity to trade against
        ex.mm_quote(SYMBOL, "BUY", base - k * 100, 1000)
        ex.mm_quote(SYMBOL, "SELL", base + k * 100, 1000)
    for kind, who, side, off, q in ops:
        acct = users[who]
        price = f"{(base + off * 100) / 100:.2f}"
        qty = f"{q / 1000:.3f}"
        env.tick()
        try:
            if kind in ("limit", "ioc", "fok"):
                env.limit(acct, side, qty, price, tif={"limit": "GTC", "ioc": "IOC", "fok": "FOK"}[kind])
            elif kind == "market":
                env.market(acct, side, qty)
            elif kind == "quote":
                env.market(acct, side, quote=str(q * 10))
            elif kind == "maker":
                ex.new_order(acct, symbol=SYMBOL, side=side, type="LIMIT_MAKER", quantity=qty, price=price)
            elif kind in ("stop", "tp"):
                ex.new_order(acct, symbol=SYMBOL, side=side,
                             type="STOP_LOSS_LIMIT" if kind == "stop" else "TAKE_PROFIT_LIMIT",
                             time_in_force="GTC", quantity=qty, price=price,
                             stop_price=f"{(base + (off + (2 if side == 'BUY' else -2)) * 100) / 100:.2f}")
            elif kind == "cancel":
                opened = ex.open_orders(acct, SYMBOL)
                if opened:
                    ex.cancel_order(acct, SYMBOL, order_id=opened[off % len(opened)]["orderId"])
            elif kind == "sl":                       # market stop, a step away from the market
                ex.new_order(acct, symbol=SYMBOL, side=side, type="STOP_LOSS", quantity=qty,
                             stop_price=f"{(base + (off + (2 if side == 'BUY' else -2)) * 100) / 100:.2f}")
            elif kind == "trail":
                ex.new_order(acct, symbol=SYMBOL, side=side, type="STOP_LOSS_LIMIT", time_in_force="GTC",
                             quantity=qty, price=price, trailing_delta=str(10 + q))
            elif kind == "oco":
                far, near = (base + 2000, base - 500 - abs(off) * 100) if side == "SELL" else \
                    (base + 500 + abs(off) * 100, base - 2000)
                above, below = (("LIMIT_MAKER", far), ("STOP_LOSS", near)) if side == "SELL" else \
                    (("STOP_LOSS", far), ("LIMIT_MAKER", near))
                ex.new_oco(acct, {"symbol": SYMBOL, "side": side, "quantity": qty, "aboveType": above[0],
                                  ("abovePrice" if above[0] == "LIMIT_MAKER" else "aboveStopPrice"):
                                      f"{above[1] / 100:.2f}",
                                  "belowType": below[0],
                                  ("belowPrice" if below[0] == "LIMIT_MAKER" else "belowStopPrice"):
                                      f"{below[1] / 100:.2f}"})
            elif kind == "oto":
                other = "SELL" if side == "BUY" else "BUY"
                ex.new_oto(acct, {"symbol": SYMBOL, "workingType": "LIMIT", "workingSide": side,
                                  "workingPrice": price, "workingQuantity": qty, "workingTimeInForce": "GTC",
                                  "pendingType": "MARKET", "pendingSide": other, "pendingQuantity": qty})
            elif kind == "amend":
                opened = ex.open_orders(acct, SYMBOL)
                if opened:
                    target = opened[off % len(opened)]
                    smaller = spec.steps_of(D(target["origQty"])) * q // 61
                    ex.amend_order(acct, SYMBOL, order_id=target["orderId"], new_qty=spec.qty_str(smaller))
            elif kind == "replace":
                opened = ex.open_orders(acct, SYMBOL)
                if opened:
                    try:
                        ex.cancel_replace(acct, {"symbol": SYMBOL, "cancelReplaceMode": "ALLOW_FAILURE",
                                                 "cancelOrderId": str(opened[off % len(opened)]["orderId"]),
                                                 "side": side, "type": "LIMIT", "timeInForce": "GTC",
                                                 "quantity": qty, "price": price})
                    except BinanceError as err:
                        assert err.code in (-2021, -2022), err.msg
            elif kind == "stp":
                env.limit(acct, side, qty, price, self_trade_prevention_mode=["EXPIRE_TAKER", "EXPIRE_BOTH",
                                                                             "DECREMENT", "TRANSFER"][q % 4])
            elif kind == "mm_quote":
                ex.mm_quote(SYMBOL, side, base + off * 100, q * 100)
            elif kind == "mm_take":
                ex.mm_take(SYMBOL, side, base + off * 100, q * 100)
            elif kind == "mm_cancel":
                mine = ex.mm_orders(SYMBOL)
                if mine:
                    ex.mm_cancel(SYMBOL, mine[off % len(mine)].order_id)
            else:
                env.tick(60_000)
        except BinanceError as err:
            assert err.code in (-2010, -1013, -2038, -1013, -1111), err.msg
        bid, _, ask, _ = ex.book_top(SYMBOL)
        assert bid is None or ask is None or bid < ask, "book crossed"
    return spec


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(OPS)
def test_random_order_flow_when_run_then_balances_conserved_and_locks_match_open_orders(ops):
    env = Env(USDT="3000", BTC="0.1")
    before = totals(env)
    spec = run_ops(env, ops)
    assert totals(env) == before
    for acct in (env.alice, env.bob):
        locks = {}
        for order in acct.open_orders_of(SYMBOL):
            if order.status == "PENDING_NEW":        # an OTO's pending leg locks nothing until it goes live
                continue
            own_key = (SYMBOL, order.order_id)
            lock = acct.lock_of(own_key)
            locks[acct.lock_key(own_key)] = ("USDT" if order.side == "BUY" else "BTC", lock)
            need = spec.qty_dec(order.remaining_steps) if order.side == "SELL" else \
                spec.price_dec(order.lock_ticks) * spec.qty_dec(order.remaining_steps)
            if acct.lock_key(own_key) == own_key:
                assert lock == need, order             # exactly what it may still spend
            else:
                assert lock >= need, order             # an OCO pair's lock covers either leg
        expected = {"USDT": D(0), "BTC": D(0)}
        for asset, lock in locks.values():
            expected[asset] += lock
        for asset, (free, locked) in acct.balances.items():
            assert free >= 0 and locked == expected.get(asset, D(0)), asset


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(OPS)
def test_depth_callbacks_when_replayed_then_equal_depth_snapshot_with_increasing_ids(ops):
    env = Env(USDT="3000", BTC="0.1")
    run_ops(env, ops)
    book = {"b": {}, "a": {}}
    last = 0
    for symbol, uid, side, price, qty in env.rec.depth:
        assert symbol == SYMBOL and uid > last
        last = uid
        if D(qty):
            book[side][price] = qty
        else:
            book[side].pop(price, None)
    snap = env.ex.depth(SYMBOL, limit=5000)
    assert snap["lastUpdateId"] == last
    assert [[p, q] for p, q in sorted(book["b"].items(), key=lambda kv: -D(kv[0]))] == snap["bids"]
    assert [[p, q] for p, q in sorted(book["a"].items(), key=lambda kv: D(kv[0]))] == snap["asks"]
    ticker_ids = [t[1] for t in env.rec.tickers]
    assert ticker_ids == sorted(ticker_ids) and len(set(ticker_ids)) == len(ticker_ids)
    if env.rec.tickers:
        _, _, bp, bq, ap, aq = env.rec.tickers[-1]
        assert env.ex.book_ticker(SYMBOL) == {"symbol": SYMBOL, "bidPrice": bp, "bidQty": bq, "askPrice": ap,
                                              "askQty": aq}
    trade_ids = [t["id"] for _, t in env.rec.trades]
    assert trade_ids == list(range(1, len(trade_ids) + 1))
