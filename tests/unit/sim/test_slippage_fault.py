"""The simulator's slippage fault: a user's MARKET order is charged `market_slippage_bps` worse than
each book level it takes (rounded to the tick against it), and every account, report and print
agrees on the price charged; the simulator keeps the book's price of each such fill."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from abidance.exchange.sim.faults import Faults, FaultSettings, SlippedFill, slipped_ticks
from tests.unit.sim.kit import SYMBOL, Env, totals


def _env(bps: int) -> Env:
    faults = Faults(FaultSettings(market_slippage_bps=bps))          # the venue's `venue.faults`
    env = Env(faults=faults)
    env.faults = faults
    env.ex.mm_quote(SYMBOL, "SELL", env.ticks("30000"), env.steps("0.1"))
    env.ex.mm_quote(SYMBOL, "SELL", env.ticks("30010"), env.steps("0.1"))
    env.ex.mm_quote(SYMBOL, "BUY", env.ticks("29990"), env.steps("0.1"))
    return env


def test_slipped_ticks_when_rounded_then_against_the_taker_and_never_below_one_tick():
    assert slipped_ticks("BUY", 3_001_000, 50) == 3_016_005          # 30010.00 * 1.005 exactly
    assert slipped_ticks("BUY", 101, 50) == 102                        # 101.505 rounds up for a BUY
    assert slipped_ticks("SELL", 101, 50) == 100                       # 100.495 rounds down for a SELL
    assert slipped_ticks("SELL", 1, 5_000) == 1


def test_market_buy_when_slipped_then_fills_reports_balances_and_tape_carry_the_price_charged():
    env = _env(50)
    before = totals(env)
    resp = env.market(env.bob, "BUY", "0.15")
    # 0.1 @ 30000 and 0.05 @ 30010 on the book, charged 0.5 % more: 30150.00 and 30160.05.
    assert [(f["price"], f["qty"]) for f in resp["fills"]] == [("30150.00000000", "0.10000000"),
                                                               ("30160.05000000", "0.05000000")]
    assert resp["cummulativeQuoteQty"] == "4523.00250000"
    reports = [r for r in env.rec.events(env.bob.account_id, "executionReport") if r["x"] == "TRADE"]
    assert [r["L"] for r in reports] == ["30150.00000000", "30160.05000000"]
    assert reports[-1]["Z"] == "4523.00250000"
    assert [t["price"] for _, t in env.rec.trades[-2:]] == ["30150.00000000", "30160.05000000"]
    # The lock covered the charged cost; bob paid it exactly and nothing stays locked.
    assert env.balances(env.bob) == {"USDT": (D("95476.9975"), D("0")), "BTC": (D("2.14985"), D("0"))}
    assert totals(env) == before
    first, second = env.ex.my_trades(env.bob, SYMBOL)
    assert (first["price"], second["price"]) == ("30150.00000000", "30160.05000000")
    assert env.faults.slipped == [
        SlippedFill(SYMBOL, int(first["id"]), resp["orderId"], "BUY", env.steps("0.1"), 3_000_000, 3_015_000),
        SlippedFill(SYMBOL, int(second["id"]), resp["orderId"], "BUY", env.steps("0.05"), 3_001_000, 3_016_005)]


def test_market_sell_and_quote_amount_when_slipped_then_charged_and_within_the_quote_amount():
    env = _env(100)
    sell = env.market(env.bob, "SELL", "0.01")
    assert sell["fills"][0]["price"] == "29690.10000000"                # 29990 * 0.99
    buy = env.market(env.alice, "BUY", quote="3030")
    # 30000 * 1.01 = 30300 a BTC: 3030 buys 0.1 exactly, at the charged price.
    assert (buy["executedQty"], buy["cummulativeQuoteQty"]) == ("0.10000000", "3030.00000000")
    assert env.alice.locked("USDT") == 0 and env.alice.free("USDT") == D("96970")


def test_limit_orders_and_a_fault_of_zero_when_filled_then_at_the_book():
    env = _env(50)
    resp = env.limit(env.bob, "BUY", "0.05", "30000.00")
    assert resp["fills"][0]["price"] == "30000.00000000"
    env.faults.update({"market_slippage_bps": 0})                    # the admin endpoint's path
    resp = env.market(env.bob, "BUY", "0.05")
    assert resp["fills"][0]["price"] == "30000.00000000" and env.faults.slipped == []


@pytest.mark.parametrize("value", [-1, 5_001, 1.5e300])
def test_market_slippage_bps_when_out_of_range_then_error_names_it(value):
    with pytest.raises(ValueError, match="market_slippage_bps"):
        FaultSettings(market_slippage_bps=value).validate()
