"""After a restart no limit starts afresh (issue 16): orders restored from the state file or
adopted at reconciliation count as open orders, and the order-rate buckets, the equity peak,
the day's start, the marks and the losing streak carry over."""

from __future__ import annotations

from decimal import Decimal as D

from abidance.core import topics
from abidance.core.events import EquityPoint, Reconciliation
from abidance.exchange.binance.ids import ClientOrderIds
from abidance.execution.orders import Order
from abidance.risk.engine import DAY_NS, RiskEngine
from tests.unit.node_kit import (SYMBOL, T0, USDT_INSTRUMENTS, FakePortfolio, Recorder, new_bus_clock,
                                 order_event, risk_settings, signal, ticks, trade)
from tests.unit.system.test_kernel import node_kernel

LIMIT_PRICE = ticks("49900.00")


class Rig:
    """A started RiskEngine (optionally restored from another's state) with a fake execution endpoint."""

    def __init__(self, tmp_path, state: dict | None = None, portfolio=None, start_ns: int = T0, **settings):
        self.bus, self.clock = new_bus_clock(start_ns)
        self.rec = Recorder(self.bus, topics.RISK_DECISIONS, topics.TRADING_STATE)
        self.requests = []
        self.bus.register(topics.EXECUTE, self.requests.append)
        self.bus.register(topics.CANCEL, lambda target: None)
        self.risk = RiskEngine(self.bus, self.clock, risk_settings(**settings), USDT_INSTRUMENTS,
                               portfolio or FakePortfolio(), ClientOrderIds("t", seed=7), 0.0, tmp_path)
        if state is not None:
            self.risk.load_state(state)
        self.risk.start()
        self.bus.publish(topics.TRADES, trade("50000.00", ts_ns=self.clock.time_ns()))

    def later(self, seconds: float) -> None:
        """Time passes, with market data (no stale-data breaker)."""
        self.clock.advance(int(seconds * 10**9))
        self.bus.publish(topics.TRADES, trade("50000.00", ts_ns=self.clock.time_ns()))

    def buy_limit(self):
        self.bus.publish(topics.SIGNALS, signal("BUY", price=LIMIT_PRICE))
        return self.rec[topics.RISK_DECISIONS][-1]

    def equity(self, value: str) -> None:
        v = D(value)
        self.bus.publish(topics.EQUITY, EquityPoint(v, v, D(0), D(0), D(0), D(0), D(0), self.clock.time_ns()))


def test_orders_adopted_at_reconciliation_count_against_max_open_orders(tmp_path):
    r = Rig(tmp_path, max_open_orders=3)
    for cid in ("t-old-1", "t-old-2", "t-old-3"):          # the execution engine's "adopted" events
        r.bus.publish(topics.ORDER_EVENTS, order_event(cid, "NEW"))
    assert r.risk.pre_trade.open_orders == 3
    decision = r.buy_limit()
    assert (decision.accepted, decision.reason) == (False, "MAX_OPEN_ORDERS")
    r.bus.publish(topics.ORDER_EVENTS, order_event("t-old-1", "CANCELED"))
    assert r.buy_limit().accepted


def test_a_restored_order_counts_only_what_is_left_of_it_and_leaves_when_it_ends(tmp_path):
    r = Rig(tmp_path, max_open_orders=1)
    assert r.risk.restore_order("t-old-1", "s1", SYMBOL, "BUY", 40, 15, LIMIT_PRICE)
    assert not r.risk.restore_order("t-old-1", "s1", SYMBOL, "BUY", 40, 15, LIMIT_PRICE)     # counted once
    assert r.risk.pre_trade.slot_state(0)["open_buy_qty"] == 25
    assert r.buy_limit().reason == "MAX_OPEN_ORDERS"
    r.bus.publish(topics.ORDER_EVENTS, order_event("t-old-1", "CANCELED", filled=15))
    assert r.risk.pre_trade.open_orders == 0 and r.risk.pre_trade.slot_state(0)["open_buy_qty"] == 0


def test_kernel_restore_hands_the_state_files_open_orders_to_the_risk_engine(tmp_path):
    kernel = node_kernel(tmp_path)
    orders = [Order(f"kt-old-{i}", "btc-ema", SYMBOL, "BUY", "LIMIT", 40, LIMIT_PRICE, "GTC", T0, status="NEW",
                    order_id=i).to_state() for i in range(1, 5)]
    kernel.restore({"execution": {"orders": orders, "exits": {}}})
    assert len(kernel.execution.open_orders()) == 4
    assert kernel.risk.pre_trade.open_orders == 4


def test_order_rate_per_10s_and_per_day_carry_over_a_restart(tmp_path):
    first = Rig(tmp_path, orders_per_10s=2, orders_per_day=3)
    assert first.buy_limit().accepted and first.buy_limit().accepted
    state = first.risk.to_state()
    again = Rig(tmp_path, state, orders_per_10s=2, orders_per_day=3)      # restarted a moment later
    assert again.buy_limit().reason == "ORDER_RATE_10S"
    again.later(11)
    assert again.buy_limit().accepted
    assert again.buy_limit().reason in ("ORDER_RATE_10S", "ORDER_RATE_DAY")
    again.later(11)
    assert again.buy_limit().reason == "ORDER_RATE_DAY"          # 3 a day: 2 before the restart, 1 after


def test_drawdown_is_measured_from_the_peak_before_the_restart(tmp_path):
    first = Rig(tmp_path, max_drawdown="500", daily_loss_limit="0")
    first.equity("10000")
    first.equity("9700")
    again = Rig(tmp_path, first.risk.to_state(), max_drawdown="500", daily_loss_limit="0")
    again.equity("9450")            # 550 below the peak of 10000, 250 below the first value seen
    assert again.risk.trading_state == "HALTED"
    assert again.risk.pre_trade.halt_reason.name == "DRAWDOWN_LIMIT"


def test_daily_loss_counts_from_the_days_start_before_the_restart_but_not_the_next_day(tmp_path):
    first = Rig(tmp_path, daily_loss_limit="300", max_drawdown="0")
    first.equity("10000")
    first.equity("9800")
    state = first.risk.to_state()
    same_day = Rig(tmp_path, state, daily_loss_limit="300", max_drawdown="0")
    same_day.equity("9690")
    assert same_day.risk.pre_trade.halt_reason.name == "DAILY_LOSS_LIMIT"
    next_day = Rig(tmp_path, state, start_ns=T0 + DAY_NS, daily_loss_limit="300", max_drawdown="0")
    next_day.equity("9690")
    assert next_day.risk.trading_state == "ACTIVE"
    assert next_day.risk.pre_trade.day_start_equity == 9690 * 10**8


def test_gross_exposure_values_other_symbols_at_their_saved_marks(tmp_path):
    first = Rig(tmp_path)
    state = first.risk.to_state()
    assert state["marks"] == {SYMBOL: ticks("50000.00")}
    bus, clock = new_bus_clock()
    risk = RiskEngine(bus, clock, risk_settings(), USDT_INSTRUMENTS, FakePortfolio(positions={SYMBOL: "0.1"}),
                      ClientOrderIds("t", seed=7), 0.0, tmp_path)
    risk.load_state(state)
    risk.start()
    assert risk.pre_trade.gross_exposure == 5000 * 10**8         # 0.1 BTC at 50000, before any trade


def test_a_losing_streak_at_the_limit_before_the_restart_halts_at_start(tmp_path):
    r = Rig(tmp_path, portfolio=FakePortfolio(consecutive_losses=3), max_consecutive_losses=3)
    assert r.risk.trading_state == "HALTED"


def test_a_live_start_denies_new_orders_until_the_first_reconciliation(tmp_path):
    r = Rig(tmp_path, max_open_orders=2)
    r.risk.hold_until_reconciled()
    assert r.buy_limit().reason == "NOT_RECONCILED"
    r.bus.publish(topics.RECONCILIATION, Reconciliation((), (), "start", T0))
    assert r.buy_limit().accepted


def test_a_malformed_risk_state_is_refused_naming_it(tmp_path):
    bus, clock = new_bus_clock()
    risk = RiskEngine(bus, clock, risk_settings(), USDT_INSTRUMENTS, FakePortfolio(), ClientOrderIds("t"), 0.0,
                      tmp_path)
    try:
        risk.load_state({"rate_10s": "nonsense"})
    except ValueError as exc:
        assert "risk state" in str(exc)
    else:
        raise AssertionError("a malformed risk state was accepted")
