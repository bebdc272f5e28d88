"""What unattended operation adds to the node's event loop, per message.

- the anomaly monitor on one trade (feed lag, stall bookkeeping, price jump, volume bucket):
  target <= 5 us, against the tick-to-order budget of tens of microseconds;
- the metrics' market handler (marks the message for tick-to-order): target <= 1 us;
- the alert service taking one alert off the loop (append to the bounded queue, wake the
  delivery thread once): target <= 5 us. Baseline for it: sending the same alert inline over
  loopback HTTP (what delivery on the loop would cost), measured in the same run.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time

import pytest

from abidance._core.wire import trade_event
from abidance.anomaly.monitor import AnomalyMonitor
from abidance.config.ops_sections import AnomalySection
from abidance.core import topics
from abidance.core.bus import MessageBus
from abidance.core.clock import TestClock
from abidance.core.events import Alert
from tests.unit.node_kit import INSTRUMENTS, T0, ticks

N = 100_000


def test_bench_anomaly_monitor_per_trade(benchmark, measure, report):
    bus, clock = MessageBus(), TestClock(T0)
    m = AnomalyMonitor(bus, clock, AnomalySection(), INSTRUMENTS, "USDT")
    n = 1_000 if benchmark.disabled else N
    base = ticks("40000")
    events = [trade_event("BTCUSDT", i, base + (i % 50), 1000 + i % 7, False, T0 + i * 10_000_000,
                          T0 + i * 10_000_000, T0 + i * 10_000_000 + 5_000_000) for i in range(n)]
    handle = m.handle_trade

    def run():
        for ev in events:
            handle(ev)

    measured = measure(benchmark, run, ops=n, rounds=5)
    report("anomaly monitor, one trade (lag, stall, price jump, volume)", measured, "ns/trade", target=5_000.0,
           benchmark=benchmark)


def test_bench_metrics_market_handler(benchmark, measure, report):
    pytest.importorskip("prometheus_client")
    from abidance.metrics.node_metrics import NodeMetrics

    async def setup():
        m = NodeMetrics(MessageBus(), TestClock(T0))
        m._loop = asyncio.get_running_loop()
        return m

    loop = asyncio.new_event_loop()
    try:
        m = loop.run_until_complete(setup())
        n = 1_000 if benchmark.disabled else N
        ev = trade_event("BTCUSDT", 1, 100, 1, False, T0, T0, T0)
        handle = m.handle_market

        def run():
            for _ in range(n):
                handle(ev)

        measured = measure(benchmark, run, ops=n, rounds=5)
    finally:
        loop.close()
    report("metrics market handler, one message", measured, "ns/message", target=1_000.0, benchmark=benchmark)


def test_bench_alert_service_enqueue_vs_inline_http(benchmark, measure, report):
    from abidance.alerts.service import AlertService
    from tests.integration.alerts_kit import FakeWebhook, RunningAlerts, alert_settings, channel_tables

    hook = FakeWebhook()
    settings = dataclasses.replace(alert_settings("[alerts]\n" + channel_tables(webhook=hook)), queue_size=10**7)
    running = RunningAlerts(settings)
    try:
        service: AlertService = running.service
        n = 100 if benchmark.disabled else 20_000
        alerts = [Alert("error", "execution", "order_rejected", f"#{i}", time.time_ns()) for i in range(n)]

        async def enqueue_all():
            t0 = time.perf_counter_ns()
            for a in alerts:
                service.handle_alert(a)
            return time.perf_counter_ns() - t0

        def run():
            running.call(enqueue_all(), 60)

        measured = measure(benchmark, run, ops=n, rounds=3)
        # Baseline: one blocking HTTP POST of an alert over loopback, what sending on the loop would cost.
        import urllib.request

        t0 = time.perf_counter_ns()
        k = 20 if benchmark.disabled else 200
        for _ in range(k):
            request = urllib.request.Request(hook.url + "/x", data=b'{"text": "x"}', method="POST",
                                             headers={"Content-Type": "application/json"})
            urllib.request.urlopen(request, timeout=5).read()
        inline = (time.perf_counter_ns() - t0) / k
    finally:
        running.stop()
        hook.close()
    report("alert service: one alert off the loop (enqueue)", measured, "ns/alert", target=5_000.0,
           baseline=("inline HTTP POST over loopback", inline), min_ratio=10.0, benchmark=benchmark)
