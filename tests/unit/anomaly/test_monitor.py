"""The detectors on the bus: anomalies become alerts, and documented actions move risk through its endpoint."""

from __future__ import annotations

import dataclasses
from decimal import Decimal as D

from abidance._core.wire import trade_event
from abidance.anomaly.detectors import BalanceDrift, FeedStall, RollingMedian, VolumeSpike
from abidance.anomaly.monitor import AnomalyMonitor
from abidance.config.ops_sections import AnomalySection
from abidance.core import topics
from abidance.core.bus import MessageBus
from abidance.core.clock import TestClock
from abidance.core.events import EquityPoint, Fill, OrderEvent, RiskDecision
from tests.unit.node_kit import INSTRUMENTS, S, T0, ticks

NS = S


def monitor(**over):
    bus, clock = MessageBus(), TestClock(T0)
    m = AnomalyMonitor(bus, clock, dataclasses.replace(AnomalySection(), **over), INSTRUMENTS, "USDT")
    alerts, commands = [], []
    bus.subscribe(topics.ALERTS, alerts.append)
    bus.register(topics.RISK_COMMAND, commands.append)
    m.start()
    return bus, clock, m, alerts, commands


def trade(price: str, ts: int, qty: int = 1000, lag_ns: int = 10_000_000):
    return trade_event("BTCUSDT", 1, ticks(price), qty, False, ts - lag_ns, ts - lag_ns, ts)


def test_a_price_jump_is_an_alert_and_no_risk_command_by_default():
    bus, clock, m, alerts, commands = monitor()
    for i in range(30):
        bus.publish(topics.TRADES, trade("40000", T0 + i * NS))
    assert alerts == []
    bus.publish(topics.TRADES, trade("42000", T0 + 31 * NS))
    assert [(a.source, a.code, a.level) for a in alerts] == [("anomaly", "price_jump", "warning")]
    assert "+500 bps" in alerts[0].message and commands == []


def test_a_feed_stall_moves_risk_to_reducing_through_the_endpoint_and_its_end_is_announced():
    bus, clock, m, alerts, commands = monitor(stall_s=5, feed_action="reduce")
    bus.publish(topics.TRADES, trade("40000", T0))
    clock.advance_to(T0 + 6 * NS)
    assert [a.code for a in alerts] == ["feed_stall"] and alerts[0].level == "error"
    assert [(c.action, c.source) for c in commands] == [("reduce", "anomaly:feed_stall")]
    clock.advance_to(T0 + 20 * NS)
    assert len(alerts) == 1                     # once per silence
    bus.publish(topics.TRADES, trade("40000", T0 + 21 * NS))
    assert alerts[-1].code == "feed_resumed"


def test_a_rejection_burst_reduces_and_slippage_against_the_decision_price_alerts():
    bus, clock, m, alerts, commands = monitor(rejections=3, rejection_window_s=10, rejection_action="reduce")
    bus.publish(topics.TRADES, trade("40000", T0))
    bus.publish(topics.RISK_DECISIONS, RiskDecision("s", "BTCUSDT", "BUY", True, "ACCEPTED", "", 10, 0, "c1", 1.0, T0))
    bus.publish(topics.FILLS, Fill("c1", "s", "BTCUSDT", "BUY", D("0.001"), D("40800"), D(0), "", 1, False, T0))
    assert [a.code for a in alerts] == ["slippage"] and "200 bps worse" in alerts[0].message
    for i in range(3):
        bus.publish(topics.ORDER_EVENTS, OrderEvent(f"r{i}", "s", "BTCUSDT", "BUY", "LIMIT", "REJECTED", "PENDING_NEW",
                                                    1, 0, 1, 0, "-2010: insufficient balance", T0 + i * NS))
    assert alerts[-1].code == "rejections" and "-2010" in alerts[-1].message
    assert [c.action for c in commands] == ["reduce"]


def test_drawdown_velocity_in_exact_decimals_and_halt_when_configured():
    bus, clock, m, alerts, commands = monitor(drawdown_velocity_bps=0, drawdown_velocity=D("100"),
                                              drawdown_action="halt")
    for i, eq in enumerate(("10000", "10050", "9990", "9950.00000001")):
        bus.publish(topics.EQUITY, EquityPoint(D(eq), D(eq), D(0), D(0), D(0), D(0), D(0), T0 + i * NS))
    assert alerts == []
    bus.publish(topics.EQUITY, EquityPoint(D("9950"), D(0), D(0), D(0), D(0), D(0), D(0), T0 + 5 * NS))
    assert [(a.code, a.level) for a in alerts] == [("drawdown", "critical")]
    assert commands[0].action == "halt"


def test_balance_drift_fires_only_when_a_difference_persists_over_two_reports():
    det = BalanceDrift(D(0), 10)
    assert det.report({"BTC": D("1"), "USDT": D("100")}, True, 0) == []
    det.apply("BTC", D("0.1"))                                      # a fill booked
    assert det.report({"BTC": D("1.1")}, False, 1) == []
    assert det.report({"BTC": D("1.2")}, False, 2) == []            # suspected (a fill may be in flight)
    det.apply("BTC", D("0.1"))
    assert det.report({"BTC": D("1.2")}, False, 3) == []            # it was: cleared
    assert det.report({"BTC": D("1.0")}, False, 4) == []
    (a,) = det.report({"BTC": D("1.0")}, False, 5)
    assert a.detector == "balance" and "diff -0.2" in a.message
    assert det.report({"BTC": D("1.0")}, False, 6) == []            # the exchange's figure was adopted


def test_volume_spike_on_a_robust_log_z_score_and_no_baseline_in_an_empty_market():
    det = VolumeSpike(4.0, 60, 20, cooldown_s=0)
    fired = []
    for i in range(40):
        fired.append(det.update("X", 100.0 + (i % 7) * 10, T0 + i * 60 * NS))
    assert not any(fired)
    det.update("X", 100.0 * 300, T0 + 40 * 60 * NS)
    assert det.update("X", 100.0, T0 + 41 * 60 * NS).detector == "volume"
    empty = VolumeSpike(4.0, 60, 20, cooldown_s=0)
    assert not any(empty.update("Y", 1.0, T0 + i * 600 * NS) for i in range(60))   # mostly empty buckets


def test_rolling_median_and_mad_keep_a_bounded_window():
    r = RollingMedian(5)
    for x in (5, 1, 4, 2, 3, 100, 100):
        r.add(x)
    assert len(r) == 5 and r.median() == 4 and r.mad() == 2      # window 4 2 3 100 100


def test_a_lag_from_another_clock_is_not_a_slow_feed():
    bus, clock, m, alerts, commands = monitor()
    for i in range(10):
        bus.publish(topics.TRADES, trade("40000", T0 + i * NS, lag_ns=400 * 86_400 * NS))    # a replay of 2025 data
    assert alerts == [] and m.lag.implausible == 10


def test_stall_detector_is_silent_when_disabled():
    det = FeedStall(0)
    det.seen("X", 0)
    assert det.check(10**15) == []
