"""The node's metrics from bus events, scraped over HTTP on loopback and read with Prometheus' own text parser."""

from __future__ import annotations

import asyncio
import urllib.request
from decimal import Decimal as D

import pytest

from abidance.core import topics
from abidance.core.bus import MessageBus
from abidance.core.clock import TestClock
from abidance.core.events import (Alert, ConnectorHealth, EquityPoint, Fill, OrderEvent, RiskDecision, StreamHealth,
                                  TradingStateChanged)
from abidance._core.wire import trade_event

pytest.importorskip("prometheus_client")
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from abidance.metrics.node_metrics import NodeMetrics, serve  # noqa: E402

T0 = 1_700_000_000 * 1_000_000_000


def order(cid, status, previous, ts, reason=""):
    return OrderEvent(cid, "ema", "BTCUSDT", "BUY", "LIMIT", status, previous, 10, 0, 100, 0, reason, ts)


def scrape(port: int) -> dict:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_metrics_follow_the_bus_and_parse_as_prometheus_text():
    async def run():
        bus, clock = MessageBus(), TestClock(T0)
        m = NodeMetrics(bus, clock, quote="USDT", sample_s=0.01,
                        probes={"x": lambda: {"abidance_store_spool_files": ("gauge", "spool", 3, ())}})
        m.start()
        bus.publish(topics.TRADES, trade_event("BTCUSDT", 1, 100, 1, False, T0, T0, T0))
        bus.publish(topics.RISK_DECISIONS, RiskDecision("ema", "BTCUSDT", "BUY", True, "ACCEPTED", "", 10, 100, "c1",
                                                        1.0, T0 + 20_000))
        bus.publish(topics.RISK_DECISIONS, RiskDecision("ema", "BTCUSDT", "BUY", False, "MAX_POSITION", "", 0, 0, "",
                                                        1.0, T0))
        bus.publish(topics.ORDER_EVENTS, order("c1", "PENDING_NEW", "", T0))
        bus.publish(topics.ORDER_EVENTS, order("c1", "NEW", "PENDING_NEW", T0 + 3_000_000))
        bus.publish(topics.ORDER_EVENTS, order("c2", "PENDING_NEW", "", T0))
        bus.publish(topics.ORDER_EVENTS, order("c2", "REJECTED", "PENDING_NEW", T0 + 1_000_000,
                                               "-2010: Account has insufficient balance"))
        bus.publish(topics.FILLS, Fill("c1", "ema", "BTCUSDT", "BUY", D("1"), D("100"), D("0.1"), "USDT", 1, False, T0))
        bus.publish(topics.FILLS, Fill("c3", "ema", "BTCUSDT", "SELL", D("1"), D("110"), D("0.1"), "USDT", 2, False,
                                       T0))
        bus.publish(topics.EQUITY, EquityPoint(D("10009.8"), D(0), D(0), D(0), D(0), D("0.2"), D("1.5"), T0))
        bus.publish(topics.TRADING_STATE, TradingStateChanged("REDUCING", "ACTIVE", "x", "operator", T0))
        bus.publish(topics.ALERTS, Alert("warning", "anomaly", "spread", "wide", T0))
        bus.publish(topics.CONNECTOR_HEALTH, ConnectorHealth("sim", 2, 2, 3, 1, {"bad_field": 2}, 1, 2, 10, (
            StreamHealth("btcusdt@trade", 500, 12.5, 4.0, 9.0, 0.2),), T0))
        await asyncio.sleep(0.05)
        server, port = serve(m.registry, "127.0.0.1", 0)
        try:
            got = await asyncio.to_thread(scrape, port)
        finally:
            server.shutdown()
        m.stop()
        return got

    got = asyncio.run(run())
    assert got[("abidance_tick_to_order_seconds_count", ())] == 1
    assert got[("abidance_tick_to_order_seconds_sum", ())] == pytest.approx(20e-6)
    assert got[("abidance_order_ack_seconds_count", ())] == 2
    assert got[("abidance_orders_total", (("status", "REJECTED"),))] == 1
    assert got[("abidance_order_rejections_total", (("reason", "-2010"),))] == 1
    assert got[("abidance_risk_denials_total", (("reason", "MAX_POSITION"),))] == 1
    assert got[("abidance_fills_total", (("strategy", "ema"), ("symbol", "BTCUSDT")))] == 2
    assert got[("abidance_strategy_realized_pnl", (("quote", "USDT"), ("strategy", "ema")))] == pytest.approx(9.8)
    assert got[("abidance_equity", (("quote", "USDT"),))] == pytest.approx(10009.8)
    assert got[("abidance_trading_state", (("state", "REDUCING"),))] == 1
    assert got[("abidance_trading_state", (("state", "ACTIVE"),))] == 0
    assert got[("abidance_anomalies_total", (("detector", "spread"),))] == 1
    assert got[("abidance_stream_messages_per_second", (("stream", "btcusdt@trade"),))] == 12.5
    assert got[("abidance_stream_lag_max_seconds", (("stream", "btcusdt@trade"),))] == pytest.approx(0.009)
    assert got[("abidance_stream_reconnects_total", ())] == 3 and got[("abidance_book_resyncs_total", ())] == 1
    assert got[("abidance_stream_messages_total", (("stream", "btcusdt@trade"),))] == 500
    assert got[("abidance_stream_dropped_messages_total", (("reason", "bad_field"),))] == 2
    assert got[("abidance_store_spool_files", ())] == 3
    assert got[("abidance_event_loop_lag_seconds_count", ())] >= 1
    for (name, _), _v in got.items():
        assert name.startswith("abidance_") or name.startswith(("python_", "process_")), name
