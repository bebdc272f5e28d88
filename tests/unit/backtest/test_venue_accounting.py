"""The backtest and paper venue keeps the account as the simulator (and Binance) does: known answers.

Free and locked balances, -2010 when they do not cover an order, sizing that allows for the
fill price. Each figure is computed by hand in the comment beside it.
"""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from abidance.backtest.engine import Backtest
from abidance.core import topics
from abidance.core.bus import MessageBus
from abidance.core.clock import TestClock
from abidance.core.errors import OrderRejected
from abidance.exchange.backtest.venue import BacktestVenue, FillModel
from abidance.exchange.sim import errors as sim_errors
from abidance.execution.orders import Order
from tests.unit.backtest.kit import T0, bar, config, flat_bars, scripted
from tests.unit.node_kit import INSTRUMENTS

REFUSED = sim_errors.insufficient_balance()        # the simulator's own -2010: code and text
ALL_IN = 'sizing = "fixed_fraction"\nfraction = 1.0'


def run(cfg, bars, balances=None, on_bus=None):
    bt = Backtest(cfg, {"BTCUSDT": bars}, balances=balances or {"USDT": D("10000")}, on_bus=on_bus)
    return bt, bt.run()


def test_all_in_buy_sized_with_room_for_the_fill_price_fills_within_that_room(tmp_path):
    # max_slippage_bps 30: the BUY is sized at 100.00 x 1.003 = 100.30: 10000 / 100.30 = 99.700897.. BTC,
    # 99.70089 in steps of 0.00001. The next open is 100.20 (inside the room): 99.70089 x 100.20 =
    # 9990.029178 USDT spent, 9.970822 left; the fee is 0.1 % of the BTC received.
    cfg = config(tmp_path, "[execution]\nmax_slippage_bps = 30", risk=ALL_IN, strategies=scripted("all", "1:BUY"))
    bt, result = run(cfg, [bar(0, "100", "100", "100", "100"), bar(1, "100.20", "101", "100", "101")])
    [buy] = result.fills
    assert (buy.quantity, buy.price) == (D("99.70089"), D("100.20"))
    assert result.balances["USDT"] == D("9.970822")
    assert result.balances["BTC"] == D("99.70089") - D("0.09970089")
    assert bt.venue.balances()["USDT"] == (D("9.970822"), D(0))        # the venue agrees, nothing locked


def test_all_in_buy_after_a_gap_up_is_refused_with_binances_error_and_never_overdraws(tmp_path):
    # Sized as above (99.70089 BTC), but the next open gaps to 110.00: 99.70089 x 110 = 10967.0979 USDT
    # is more than the 10000 there is. Binance (and the simulator) refuse it: -2010. Before the venue
    # kept balances, the backtest bought 100 BTC at 110 and left cash at -1000 USDT.
    cfg = config(tmp_path, "[execution]\nmax_slippage_bps = 30", risk=ALL_IN, strategies=scripted("all", "1:BUY"))
    bt, result = run(cfg, [bar(0, "100", "100", "100", "100"), bar(1, "110", "111", "109", "110"),
                           bar(2, "110", "110", "110", "110")])
    assert result.fills == []
    rejected = [o for o in result.orders if o.status == "REJECTED"]
    assert [o.reason for o in rejected] == [f"{REFUSED.code}: {REFUSED.msg}"]
    assert REFUSED.code == -2010 and REFUSED.msg == "Account has insufficient balance for requested action."
    assert result.balances == {"USDT": D("10000")} and result.final_equity == D("10000")
    assert bt.venue.refused == 1 and all(point.cash >= 0 for point in result.equity)


def test_a_resting_limit_buy_locks_its_funds_and_releases_the_difference_when_it_fills_lower(tmp_path):
    # fixed_quote 1000 at a limit of 90.00: 1000 / 90 = 11.11111 BTC, locking 11.11111 x 90 = 999.9999 USDT.
    # It rests through bars 1-2 (lows above 90), then bar 3 opens at 89.00: filled there, at the better
    # price, as a taker: 11.11111 x 89 = 988.88879 spent, the 11.11111 USDT of lock above it released.
    cfg = config(tmp_path, "[execution]\nlimit_timeout_s = 0", strategies=scripted("lim", "1:BUY@9000"))
    seen = []
    bt = Backtest(cfg, {"BTCUSDT": [bar(0, "100", "100", "100", "100"), bar(1, "95", "96", "91", "95"),
                                    bar(2, "95", "96", "91", "95"), bar(3, "89", "90", "88", "89")]},
                  balances={"USDT": D("10000")})
    bt.start()
    for _ in range(2):
        bt.step()
        seen.append(bt.venue.balances()["USDT"])
    assert seen == [(D("9000.0001"), D("999.9999"))] * 2                  # free, locked while it rests
    assert bt.portfolio.cash("USDT") == D("10000")                       # the wallet total is unchanged
    while bt.step() is not None:
        pass
    result = bt.finish()
    [buy] = result.fills
    assert (buy.quantity, buy.price, buy.is_maker) == (D("11.11111"), D("89.00"), False)
    assert bt.venue.balances()["USDT"] == (D("9011.11121"), D(0))      # 10000 - 988.88879
    assert result.balances["USDT"] == D("9011.11121")


def test_a_limit_buy_the_free_balance_cannot_lock_is_refused_at_once_and_locks_nothing():
    # 500 USDT cannot lock 11.11111 x 90 = 999.9999: the venue raises the simulator's -2010 when the
    # order is placed; a SELL of more BTC than is free is refused the same way.
    venue = BacktestVenue(MessageBus(), TestClock(T0), {"BTCUSDT": INSTRUMENTS["BTCUSDT"]}, FillModel(),
                          {"USDT": D("500"), "BTC": D("1")})
    with pytest.raises(OrderRejected) as refused:
        venue.submit_now(order("c1", "BUY", 1_111_111, 9000))
    assert (refused.value.code, refused.value.msg) == (REFUSED.code, REFUSED.msg)
    with pytest.raises(OrderRejected):
        venue.submit_now(order("c2", "SELL", 100_001, 10000))       # 1.00001 BTC of 1
    assert venue.balances() == {"USDT": (D("500"), D(0)), "BTC": (D("1"), D(0))} and venue.resting == {}
    assert venue.submit_now(order("c3", "SELL", 100_000, 10000))["status"] == "NEW"
    assert venue.balances()["BTC"] == (D(0), D("1"))                   # the whole BTC locked by the SELL


def order(cid: str, side: str, steps: int, price_ticks: int) -> Order:
    return Order(cid, "s", "BTCUSDT", side, "LIMIT", steps, price_ticks, "GTC", T0)


def test_two_strategies_competing_for_the_same_cash_never_spend_it_twice(tmp_path):
    # Both go all in after bar 1. The first decision commits the cash (99.70089 BTC at up to 100.30); the
    # second is sized from what is left uncommitted (0.000... USDT): less than one step, SIZE_ZERO. One
    # fill, no -2010, no overdraft, and each strategy holds what it bought.
    cfg = config(tmp_path, "[execution]\nmax_slippage_bps = 30", risk=ALL_IN,
                 strategies=scripted("first", "1:BUY") + scripted("second", "1:BUY"))
    bt, result = run(cfg, [bar(0, "100", "100", "100", "100"), bar(1, "100", "100", "100", "100")])
    assert [(d.strategy_id, d.accepted, d.reason) for d in result.decisions] == [
        ("first", True, "ACCEPTED"), ("second", False, "SIZE_ZERO")]
    [buy] = result.fills
    assert buy.strategy_id == "first" and buy.quantity == D("99.70089")
    pf = bt.portfolio
    assert (pf.position("BTCUSDT", "first"), pf.position("BTCUSDT", "second")) == (D("99.60118911"), D(0))
    assert result.balances["USDT"] == D("10000") - D("99.70089") * 100 and bt.venue.refused == 0


def test_two_strategies_a_resting_limit_leaves_the_other_only_the_free_cash(tmp_path):
    # "first" rests an all-in limit BUY at 90.00: 10000 / 90 = 111.11111 BTC, locking 9999.9999 USDT (it
    # never fills: the market stays at 100). "second" goes all in with a market BUY a bar later: what is
    # not committed is 0.0001 USDT, less than one step: SIZE_ZERO. Nothing is refused, nothing overdrawn.
    cfg = config(tmp_path, "[execution]\nmax_slippage_bps = 30\nlimit_timeout_s = 0", risk=ALL_IN,
                 strategies=scripted("first", "1:BUY@9000") + scripted("second", "2:BUY"))
    bt, result = run(cfg, flat_bars(["100", "100", "100", "100"]))
    assert [(d.strategy_id, d.accepted, d.reason, d.quantity) for d in result.decisions] == [
        ("first", True, "ACCEPTED", 11_111_111), ("second", False, "SIZE_ZERO", 0)]
    assert bt.venue.balances()["USDT"] == (D("0.0001"), D("9999.9999")) and bt.venue.refused == 0
    assert result.fills == [] and result.balances == {"USDT": D("10000")}


def test_the_portfolio_agrees_with_the_venue_after_every_fill(tmp_path):
    # The venue publishes its balances after each fill (as Binance's outboundAccountPosition); the
    # portfolio compares them with its own books: not one drift alert over a round trip.
    cfg = config(tmp_path)
    alerts = []
    _, result = run(cfg, [bar(0, "100", "101", "99", "100"), bar(1, "100", "105", "99", "104"),
                          bar(2, "104", "111", "103", "110"), bar(3, "110", "112", "108", "109"),
                          bar(4, "109", "109", "109", "109")],
                    on_bus=lambda bus: bus.subscribe(topics.ALERTS, alerts.append))
    assert len(result.fills) == 2 and [a for a in alerts if a.code == "balance_drift"] == []
