"""Stop orders on the venue: STOP_LOSS / TAKE_PROFIT (market on trigger), trailing stops,
their funds, filters and reports, and the expiry reasons of expired orders."""

from decimal import Decimal as D

import pytest

from abidance.exchange.binance.instruments import parse_exchange_info
from abidance.exchange.sim.symbols import default_symbols
from tests.unit.sim.kit import SYMBOL, Env, error_of


pytestmark = pytest.mark.usefixtures("last_trade")


def test_stop_loss_sell_when_placed_then_locks_base_and_reports_untriggered(env):
    resp = env.order(env.alice, "SELL", "STOP_LOSS", "0.1", stop_price="29000.00", new_order_resp_type="RESULT")
    assert (resp["type"], resp["status"], resp["stopPrice"], resp["workingTime"]) == (
        "STOP_LOSS", "NEW", "29000.00000000", -1)
    assert resp["timeInForce"] == "GTC" and resp["price"] == "0.00000000"
    assert (env.alice.free("BTC"), env.alice.locked("BTC")) == (D("1.9"), D("0.1"))


def test_stop_loss_sell_when_triggered_then_fills_as_market_and_expires_the_rest(env):
    resp = env.order(env.alice, "SELL", "STOP_LOSS", "0.1", stop_price="29000.00")
    env.limit(env.bob, "BUY", "0.03", "29000.00")
    env.limit(env.bob, "BUY", "0.02", "28000.00")
    env.sweep("SELL", "29000.00", "0.01")                    # a print at 29,000 triggers the stop
    q = env.query(env.alice, resp["orderId"])
    assert (q["status"], q["executedQty"], q["expiryReason"]) == ("EXPIRED", "0.04000000", "INSUFFICIENT_LIQUIDITY")
    assert env.rec.reports(env.alice.account_id, resp["orderId"]) == [
        ("NEW", "NEW"), ("NEW", "NEW"), ("TRADE", "PARTIALLY_FILLED"), ("TRADE", "PARTIALLY_FILLED"),
        ("EXPIRED", "EXPIRED")]
    last = env.rec.events(env.alice.account_id, "executionReport")[-1]
    assert last["eR"] == "INSUFFICIENT_LIQUIDITY" and last["o"] == "STOP_LOSS"
    assert env.alice.locked("BTC") == 0 and env.alice.free("BTC") == D("1.96")


def test_stop_loss_buy_when_placed_then_locks_quote_at_the_last_price(env):
    # A BUY market stop has no price of its own: Binance locks its quantity at the current price.
    env.order(env.alice, "BUY", "STOP_LOSS", "0.1", stop_price="31000.00")
    assert env.alice.locked("USDT") == D("3000")


def test_stop_loss_buy_when_triggered_dearer_then_lock_topped_up_and_only_the_cost_spent(env):
    resp = env.order(env.alice, "BUY", "STOP_LOSS", "0.1", stop_price="31000.00")
    env.limit(env.bob, "SELL", "0.1", "31500.00")
    env.last_at("31000.00")
    q = env.query(env.alice, resp["orderId"])
    assert (q["status"], q["cummulativeQuoteQty"]) == ("FILLED", "3150.00000000")
    assert env.alice.locked("USDT") == 0 and env.alice.free("USDT") == D("100000") - D("3150")
    assert env.alice.free("BTC") == D("2") + D("0.1") - D("0.0001")


def test_stop_loss_buy_when_triggered_and_funds_short_then_expires_rejected(env):
    poor = env.ex.create_account("poor", "s", {"USDT": "3100"})
    resp = env.order(poor, "BUY", "STOP_LOSS", "0.1", stop_price="31000.00")
    assert poor.locked("USDT") == D("3000")
    env.limit(env.bob, "SELL", "0.1", "32000.00")
    env.last_at("31000.00")
    q = env.query(poor, resp["orderId"])
    assert (q["status"], q["executedQty"], q["expiryReason"]) == ("EXPIRED", "0.00000000", "REJECTED")
    assert (poor.free("USDT"), poor.locked("USDT")) == (D("3100"), D("0"))


def test_take_profit_sell_when_price_rises_to_stop_then_market_sell(env):
    resp = env.order(env.alice, "SELL", "TAKE_PROFIT", "0.05", stop_price="31000.00")
    env.limit(env.bob, "BUY", "0.05", "30900.00")
    env.last_at("31000.00")
    assert env.query(env.alice, resp["orderId"])["status"] == "FILLED"


@pytest.mark.parametrize("side,type_,stop", [("SELL", "STOP_LOSS", "30100.00"), ("BUY", "STOP_LOSS", "29900.00"),
                                             ("SELL", "TAKE_PROFIT", "29900.00"), ("BUY", "TAKE_PROFIT", "30100.00")])
def test_market_stop_when_it_would_trigger_at_once_then_2010(env, side, type_, stop):
    err = error_of(lambda: env.order(env.alice, side, type_, "0.01", stop_price=stop))
    assert (err.code, err.msg) == (-2010, "Stop price would trigger immediately.")


def test_trailing_stop_when_placed_then_reports_delta_and_tracking_time(env):
    resp = env.order(env.alice, "SELL", "STOP_LOSS_LIMIT", "0.1", price="28000.00", time_in_force="GTC",
                     trailing_delta="200", new_order_resp_type="RESULT")
    assert (resp["trailingDelta"], resp["trailingTime"], resp["stopPrice"]) == (200, env.clock.t, "0.00000000")
    new = env.rec.events(env.alice.account_id, "executionReport")[-1]
    assert (new["d"], new["D"], new["w"]) == (200, env.clock.t, False)
    q = env.query(env.alice, resp["orderId"])
    assert (q["trailingDelta"], q["trailingTime"]) == (200, env.clock.t)


def test_trailing_stop_loss_sell_when_price_falls_delta_from_the_high_then_triggers(env):
    resp = env.order(env.alice, "SELL", "STOP_LOSS", "0.1", trailing_delta="100")      # 1 %
    env.last_at("31000.00")                                  # new high
    env.limit(env.bob, "BUY", "0.2", "30600.00")
    env.last_at("30691.00")                                  # 31,000 * 0.99 = 30,690: not yet
    assert env.query(env.alice, resp["orderId"])["isWorking"] is False
    env.last_at("30690.00")
    q = env.query(env.alice, resp["orderId"])
    assert (q["status"], q["isWorking"]) == ("FILLED", True)


def test_trailing_stop_with_stop_price_when_condition_not_met_then_waits_to_track(env):
    resp = env.order(env.alice, "BUY", "TAKE_PROFIT_LIMIT", "0.01", price="29500.00", time_in_force="GTC",
                     stop_price="29000.00", trailing_delta="100", new_order_resp_type="RESULT")
    assert resp["trailingTime"] == -1
    env.limit(env.bob, "BUY", "0.01", "29000.00")
    env.sweep("SELL", "29000.00", "0.01")                    # 29,000 <= stop: tracking starts
    assert env.query(env.alice, resp["orderId"])["trailingTime"] == env.clock.t


@pytest.mark.parametrize("side,type_,delta,ok", [
    ("BUY", "STOP_LOSS_LIMIT", "10", True), ("BUY", "STOP_LOSS_LIMIT", "9", False),
    ("SELL", "TAKE_PROFIT_LIMIT", "2000", True), ("SELL", "TAKE_PROFIT_LIMIT", "2001", False),
    ("SELL", "STOP_LOSS_LIMIT", "5", True), ("BUY", "TAKE_PROFIT_LIMIT", "1501", False)])
def test_trailing_delta_filter_when_above_and_below_bounds_differ_then_each_side_uses_its_own(side, type_, delta, ok):
    spec = default_symbols()[0]
    spec.min_trailing_below_delta, spec.max_trailing_below_delta = 5, 1500
    env = Env([spec])
    env.last_at("30000.00")
    price = "31000.00" if side == "BUY" else "29000.00"
    place = lambda: env.order(env.alice, side, type_, "0.01", price=price, time_in_force="GTC",  # noqa: E731
                              trailing_delta=delta)
    if ok:
        assert place()["orderId"]
    else:
        assert (error_of(place).code, error_of(place).msg) == (-1013, "Filter failure: TRAILING_DELTA")


def test_trailing_stop_when_symbol_does_not_allow_it_then_2010():
    spec = default_symbols()[0]
    spec.allow_trailing_stop = False
    env = Env([spec])
    err = error_of(lambda: env.order(env.alice, "SELL", "STOP_LOSS", "0.01", trailing_delta="100"))
    assert (err.code, err.msg) == (-2010, "Trailing stop orders are not supported for this symbol.")


def test_order_type_when_symbol_does_not_enable_it_then_2010():
    spec = default_symbols()[0]
    spec.order_types = ("LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT")
    env = Env([spec])
    err = error_of(lambda: env.order(env.alice, "SELL", "TAKE_PROFIT", "0.01", stop_price="40000.00"))
    assert (err.code, err.msg) == (-2010, "Take profit orders are not supported for this symbol.")
    assert "TAKE_PROFIT" not in env.ex.exchange_info()["symbols"][0]["orderTypes"]


@pytest.mark.parametrize("tif,reason", [("IOC", "UNFILLED_IOC_QUANTITY_EXPIRED"), ("FOK", "UNFILLED_FOK_ORDER_EXPIRED")])
def test_expired_order_when_ioc_or_fok_then_expiry_reason_in_result_and_report(env, tif, reason):
    env.limit(env.bob, "SELL", "0.01", "30000.00")
    resp = env.limit(env.alice, "BUY", "0.03", "30000.00", tif=tif, new_order_resp_type="RESULT")
    assert (resp["status"], resp["expiryReason"]) == ("EXPIRED", reason)
    assert env.rec.events(env.alice.account_id, "executionReport")[-1]["eR"] == reason
    assert env.query(env.alice, resp["orderId"])["expiryReason"] == reason


def test_expiry_reason_when_order_not_expired_or_ack_then_absent(env):
    assert "expiryReason" not in env.limit(env.alice, "BUY", "0.01", "29000.00", new_order_resp_type="RESULT")
    ack = env.limit(env.alice, "BUY", "0.01", "29000.00", tif="IOC", new_order_resp_type="ACK")
    assert "expiryReason" not in ack
    assert all("eR" not in r for r in env.rec.events(env.alice.account_id, "executionReport")
               if r["X"] != "EXPIRED")


def test_exchange_info_when_parsed_by_the_bot_then_every_symbol_accepted():
    env = Env()
    problems = []
    instruments = parse_exchange_info(env.ex.exchange_info(), problems)
    assert problems == [] and set(instruments) == {s.symbol for s in default_symbols()}
    assert "STOP_LOSS" in instruments[SYMBOL].order_types
