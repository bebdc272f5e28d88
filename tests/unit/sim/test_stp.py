"""Self-trade prevention on the venue: the symbol's modes, EXPIRED_IN_MATCH outcomes, the
TRADE_PREVENTION reports, the prevented fields of responses and views, and the funds."""

from decimal import Decimal as D

import pytest

from abidance.exchange.sim.symbols import STP_MODES, default_symbols
from tests.unit.sim.kit import Env


def test_mode_when_not_given_then_the_symbols_default_expire_maker_everywhere(env):
    resp = env.limit(env.alice, "BUY", "0.01", "29000.00")
    assert resp["selfTradePreventionMode"] == "EXPIRE_MAKER"
    assert env.rec.events(env.alice.account_id, "executionReport")[-1]["V"] == "EXPIRE_MAKER"
    assert env.query(env.alice, resp["orderId"])["selfTradePreventionMode"] == "EXPIRE_MAKER"


def test_expire_maker_when_own_order_crossed_then_maker_expired_in_match_and_lock_released(env):
    maker = env.limit(env.alice, "BUY", "0.01", "30000.00")
    assert env.alice.locked("USDT") == D("300")
    taker = env.limit(env.alice, "SELL", "0.03", "30000.00", new_order_resp_type="FULL")
    assert (taker["status"], taker["fills"]) == ("NEW", [])
    assert taker["preventedMatches"] == [{"preventedMatchId": 0, "makerOrderId": maker["orderId"],
                                          "price": "30000.00000000", "makerPreventedQuantity": "0.01000000"}]
    assert "preventedQuantity" not in taker
    q = env.query(env.alice, maker["orderId"])
    assert (q["status"], q["preventedMatchId"], q["preventedQuantity"]) == ("EXPIRED_IN_MATCH", 0, "0.01000000")
    assert env.alice.locked("USDT") == 0 and env.alice.locked("BTC") == D("0.03")
    assert env.rec.trades == []


def test_trade_prevention_report_when_maker_expired_then_binance_stp_fields(env):
    maker = env.limit(env.alice, "BUY", "0.01", "30000.00")
    env.limit(env.alice, "SELL", "0.03", "30000.00")
    report = [r for r in env.rec.events(env.alice.account_id, "executionReport") if r["x"] == "TRADE_PREVENTION"]
    assert len(report) == 1
    r = report[0]
    assert (r["i"], r["X"], r["v"], r["A"], r["B"], r["u"], r["Cs"]) == (
        maker["orderId"], "EXPIRED_IN_MATCH", 0, "0.01000000", "0.01000000", -1, "BTCUSDT")
    assert (r["l"], r["L"], r["Y"]) == ("0.00000000", "0.00000000", "0.00000000")
    assert (r["pl"], r["pL"], r["pY"]) == ("0.01000000", "30000.00000000", "300.00000000")
    assert r["U"] == maker["orderId"] + 1 and r["w"] is False
    assert list(r)[list(r).index("t") + 1] == "v"            # where Binance's sample puts it


def test_expire_taker_when_crossing_own_order_then_taker_expired_in_match_and_maker_untouched(env):
    maker = env.limit(env.alice, "BUY", "0.01", "30000.00")
    taker = env.limit(env.alice, "SELL", "0.03", "30000.00", self_trade_prevention_mode="EXPIRE_TAKER")
    assert (taker["status"], taker["preventedQuantity"]) == ("EXPIRED_IN_MATCH", "0.03000000")
    assert taker["preventedMatches"] == [{"preventedMatchId": 0, "makerOrderId": maker["orderId"],
                                          "price": "30000.00000000", "takerPreventedQuantity": "0.03000000"}]
    assert env.query(env.alice, maker["orderId"])["status"] == "NEW"
    assert env.alice.locked("BTC") == 0 and env.alice.locked("USDT") == D("300")
    report = env.rec.events(env.alice.account_id, "executionReport")[-1]
    assert (report["i"], report["x"], report["B"], report["pl"]) == (
        taker["orderId"], "TRADE_PREVENTION", "0.03000000", "0.01000000")     # what would have traded: 0.01


def test_expire_both_when_crossing_own_order_then_both_expired_in_match(env):
    maker = env.limit(env.alice, "BUY", "0.01", "30000.00")
    taker = env.limit(env.alice, "SELL", "0.03", "30000.00", self_trade_prevention_mode="EXPIRE_BOTH")
    assert taker["preventedMatches"][0]["takerPreventedQuantity"] == "0.03000000"
    assert taker["preventedMatches"][0]["makerPreventedQuantity"] == "0.01000000"
    assert env.query(env.alice, maker["orderId"])["status"] == taker["status"] == "EXPIRED_IN_MATCH"
    assert env.alice.locked("BTC") == env.alice.locked("USDT") == 0


@pytest.mark.parametrize("mode", ["DECREMENT", "TRANSFER"])
def test_decrement_when_taker_smaller_then_maker_keeps_the_rest_and_its_lock_shrinks(env, mode):
    maker = env.limit(env.alice, "BUY", "0.06", "30000.00", self_trade_prevention_mode=mode)
    taker = env.limit(env.alice, "SELL", "0.02", "30000.00", self_trade_prevention_mode=mode)
    assert (taker["status"], taker["preventedQuantity"]) == ("EXPIRED_IN_MATCH", "0.02000000")
    q = env.query(env.alice, maker["orderId"])
    assert (q["status"], q["preventedQuantity"], q["preventedMatchId"]) == ("NEW", "0.02000000", 0)
    assert env.alice.locked("USDT") == D("1200")              # 0.04 left at 30,000
    report = [r for r in env.rec.events(env.alice.account_id, "executionReport")
              if r["x"] == "TRADE_PREVENTION" and r["i"] == maker["orderId"]][0]
    assert (report["X"], report["A"], report["B"]) == ("NEW", "0.02000000", "0.02000000")
    env.limit(env.bob, "SELL", "0.05", "30000.00")
    q = env.query(env.alice, maker["orderId"])
    assert (q["status"], q["executedQty"]) == ("FILLED", "0.04000000")
    assert env.alice.locked("USDT") == 0 and env.alice.free("USDT") == D("100000") - D("1200")


def test_other_accounts_when_crossing_then_trade_normally(env):
    env.limit(env.alice, "BUY", "0.01", "30000.00")
    resp = env.limit(env.bob, "SELL", "0.01", "30000.00")
    assert resp["status"] == "FILLED" and "preventedMatches" not in resp


def test_mode_none_when_the_symbol_allows_it_then_the_account_trades_with_itself():
    spec = default_symbols()[0]
    spec.allowed_stp_modes = STP_MODES
    env = Env([spec])
    env.limit(env.alice, "BUY", "0.01", "30000.00", self_trade_prevention_mode="NONE")
    resp = env.limit(env.alice, "SELL", "0.01", "30000.00", self_trade_prevention_mode="NONE")
    assert resp["status"] == "FILLED" and resp["selfTradePreventionMode"] == "NONE"


def test_market_maker_when_its_quotes_meet_then_still_never_prevented_nor_reported(env):
    env.ex.mm_quote("BTCUSDT", "SELL", env.ticks("30000"), env.steps("0.5"))
    env.ex.mm_take("BTCUSDT", "BUY", None, env.steps("1"))
    assert env.rec.user == [] and env.rec.trades == []
