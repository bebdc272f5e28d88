"""Scheduled reports: at the configured local time, a message plus an HTML attachment (equity chart, PnL and
fees per strategy, incidents) goes out as an alert of kind report.daily / report.weekly."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal as D

from abidance.alerts.outbox import Outbox
from abidance.alerts.reports import ReportScheduler, next_time
from abidance.alerts.service import Attached
from abidance.config.ops_sections import AlertsSection
from abidance.core import topics
from abidance.core.bus import MessageBus
from abidance.core.clock import TestClock
from abidance.core.events import Alert, EquityPoint, Fill, TradingStateChanged

NS = 1_000_000_000


def utc(*args) -> int:
    return int(dt.datetime(*args, tzinfo=dt.timezone.utc).timestamp()) * NS


def test_next_report_time_in_the_configured_zone_and_weekday():
    now = utc(2026, 3, 4, 12, 0)             # a Wednesday
    assert next_time(now, "00:05", "UTC") == utc(2026, 3, 5, 0, 5)
    assert next_time(now, "00:05", "UTC", "monday") == utc(2026, 3, 9, 0, 5)
    assert next_time(now, "18:00", "Asia/Tokyo") == utc(2026, 3, 5, 9, 0)     # 18:00 JST = 09:00 UTC


def test_daily_report_carries_equity_chart_pnl_per_strategy_fees_and_incidents():
    start = utc(2026, 3, 4, 12, 0)
    bus, clock = MessageBus(), TestClock(start)
    sent = []
    bus.subscribe(topics.ALERTS, lambda a: sent.append(a) if isinstance(a, Attached) else None)
    settings = dataclasses.replace(AlertsSection(), weekly_report=False)
    sched = ReportScheduler(bus, clock, settings, "node-1", "USDT")
    sched.start()
    for i in range(120):
        bus.publish(topics.EQUITY, EquityPoint(D(10000) + i, D(0), D(0), D(0), D(0), D(0), D(0), start + i * 60 * NS))
    bus.publish(topics.FILLS, Fill("a", "ema", "BTCUSDT", "BUY", D("0.1"), D("40000"), D("4"), "USDT", 1, False, start))
    bus.publish(topics.FILLS, Fill("b", "ema", "BTCUSDT", "SELL", D("0.1"), D("41000"), D("4.1"), "USDT", 2, False,
                                   start + NS))
    for _ in range(3):
        bus.publish(topics.ALERTS, Alert("error", "execution", "order_rejected", "x", start))
    bus.publish(topics.ALERTS, Alert("info", "store", "store_recovered", "x", start))
    bus.publish(topics.TRADING_STATE, TradingStateChanged("REDUCING", "ACTIVE", "feed stall", "anomaly", start))
    clock.advance_to(utc(2026, 3, 5, 0, 4))
    assert sent == []
    clock.advance_to(utc(2026, 3, 5, 0, 5))
    (report,) = sent
    assert (report.source, report.code, report.level) == ("report", "daily", "info")
    assert "realised PnL 91.9" in report.message and "fees 8.1" in report.message and "3 incidents" in report.message
    page = report.data.decode()
    assert report.filename == "daily-report-2026-03-05.html" and report.content_type == "text/html"
    assert "<svg" in page and "polyline" in page and "<td>ema</td><td>91.9</td><td>8.1</td>" in page
    assert "execution.order_rejected</td><td>3" in page and "store_recovered" not in page and "feed stall" in page
    clock.advance_to(utc(2026, 3, 6, 0, 5))
    assert len(sent) == 2 and "0 fills" in sent[1].message        # the next day starts afresh


def test_reports_reach_channels_taking_their_kind_whatever_their_min_level():
    report = Alert("info", "report", "daily", "r", 0)
    assert Outbox("c", min_level="critical").accepts(report)
    assert not Outbox("c", min_level="critical", kinds=["anomaly.*"]).accepts(report)
    assert not Outbox("c", min_level="critical").accepts(Alert("info", "store", "x", "r", 0))
