"""NodeMetrics: the node's Prometheus metrics, kept from the bus and a few read-only probes.

Names follow Prometheus' conventions: an `abidance_` prefix, base units in the name (`_seconds`,
`_bytes`), `_total` for counters; money is in the account's quote asset (label `quote`). Labels
are bounded: strategies and symbols come from the config, reasons and alert kinds are capped
(`MAX_LABELS` each; more fold into "other").

Bus handlers run on the node's loop and only update numbers (O(1)). Values the node holds
elsewhere (store writer backlog and spool, bus counters, alert delivery) are read by a custom
collector at scrape time, in the HTTP server's thread, so no file is listed on the loop. The
event-loop lag is measured by a timer on the loop: how late it fires.
"""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from abidance.core import topics
from abidance.core.component import Component
from abidance.reports.fills import book_fill

MAX_LABELS = 50
LATENCY_BUCKETS = (5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 0.1, 0.5)
ACK_BUCKETS = (1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
LOOP_BUCKETS = (1e-4, 5e-4, 1e-3, 5e-3, 1e-2, 5e-2, 0.1, 0.5, 1.0, 5.0)
STATES = ("ACTIVE", "REDUCING", "HALTED")
MARKET = (topics.TRADES, topics.DEPTH_DIFFS, topics.BOOK_TICKERS, topics.BOOKS)


class _Bounded:
    """At most MAX_LABELS distinct values; the rest become "other"."""

    def __init__(self):
        self.seen: set[str] = set()

    def __call__(self, value: str) -> str:
        value = value or "none"
        if value in self.seen:
            return value
        if len(self.seen) < MAX_LABELS:
            self.seen.add(value)
            return value
        return "other"


def reason_code(reason: str) -> str:
    """'-2010: Account has insufficient balance' -> '-2010'; 'not sent: timeout' -> 'not sent'."""
    return (reason or "none").split(":", 1)[0].strip()[:40] or "none"


class NodeMetrics(Component):
    def __init__(self, bus, clock, registry=None, quote: str = "USDT", sample_s: float = 1.0, probes=None):
        super().__init__("NodeMetrics", bus, clock)
        self.registry = registry if registry is not None else CollectorRegistry()
        r, q = self.registry, quote
        self.quote = q
        self.sample_s = sample_s
        self.probes = probes or {}        # name -> callable returning a dict (read in the scrape thread)
        self.tick_to_order = Histogram("abidance_tick_to_order_seconds", "Market message received to order "
                                       "decided (risk accepted), for decisions made while handling it",
                                       buckets=LATENCY_BUCKETS, registry=r)
        self.order_ack = Histogram("abidance_order_ack_seconds", "Order submitted to the venue's first answer "
                                   "(NEW, FILLED, REJECTED...)", buckets=ACK_BUCKETS, registry=r)
        self.loop_lag = Histogram("abidance_event_loop_lag_seconds", "How late a timer on the event loop fires",
                                  buckets=LOOP_BUCKETS, registry=r)
        self.loop_lag_last = Gauge("abidance_event_loop_lag_last_seconds", "The last event-loop lag measured",
                                   registry=r)
        self.stream_rate = Gauge("abidance_stream_messages_per_second", "Messages per second per market stream "
                                 "(last health interval)", ["stream"], registry=r)
        self.stream_lag_mean = Gauge("abidance_stream_lag_mean_seconds", "Mean receive time minus exchange time "
                                     "per stream", ["stream"], registry=r)
        self.stream_lag_max = Gauge("abidance_stream_lag_max_seconds", "Largest receive time minus exchange time "
                                    "per stream", ["stream"], registry=r)
        self.stream_age = Gauge("abidance_stream_last_message_age_seconds", "Seconds since a stream's last "
                                "message", ["stream"], registry=r)
        self.books_ready = Gauge("abidance_books_ready", "Order books in sync", registry=r)
        self.connections = Gauge("abidance_stream_connections_up", "Market-stream connections up", registry=r)
        self.orders = Counter("abidance_orders_total", "Order state changes by the state entered", ["status"],
                              registry=r)
        self.fills = Counter("abidance_fills_total", "Fills", ["strategy", "symbol"], registry=r)
        self.rejections = Counter("abidance_order_rejections_total", "Orders rejected, by reason code",
                                  ["reason"], registry=r)
        self.denials = Counter("abidance_risk_denials_total", "Signals the risk engine denied, by reason",
                               ["reason"], registry=r)
        self.equity = Gauge("abidance_equity", "Account equity in the quote asset", ["quote"], registry=r)
        self.drawdown = Gauge("abidance_drawdown", "Equity below its peak, in the quote asset", ["quote"],
                              registry=r)
        self.fees = Gauge("abidance_fees_paid", "Fees paid this run, in the quote asset", ["quote"], registry=r)
        self.pnl = Gauge("abidance_strategy_realized_pnl", "Realised PnL per strategy this run (fees included), "
                         "in the quote asset", ["strategy", "quote"], registry=r)
        self.trading_state = Gauge("abidance_trading_state", "1 for the current trading state", ["state"], registry=r)
        self.alerts = Counter("abidance_alerts_total", "Alerts raised", ["level", "source"], registry=r)
        self.anomalies = Counter("abidance_anomalies_total", "Anomalies detected", ["detector"], registry=r)
        self._health = None                 # the latest ConnectorHealth (replaced whole: safe to read anywhere)
        self._reasons, self._denials, self._sources = _Bounded(), _Bounded(), _Bounded()
        self._pending: dict[str, int] = {}  # client order id -> submitted ns
        self._books: dict[tuple[str, str], dict] = {}
        self._tick_ns = 0
        self._clear_pending = False
        self._timer = None
        self._loop_handle = None
        self._collector = _Sampled(self)
        for s in STATES:
            self.trading_state.labels(s).set(0)
        self._subs = [(t, self.handle_market) for t in MARKET] + [
            (topics.RISK_DECISIONS, self.handle_decision), (topics.ORDER_EVENTS, self.handle_order_event),
            (topics.FILLS, self.handle_fill), (topics.EQUITY, self.handle_equity),
            (topics.TRADING_STATE, self.handle_state), (topics.ALERTS, self.handle_alert),
            (topics.CONNECTOR_HEALTH, self.handle_health)]

    # ---- lifecycle --------------------------------------------------------------------------

    def on_start(self) -> None:
        for topic, handler in self._subs:
            self.bus.subscribe(topic, handler)
        self.registry.register(self._collector)
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._expected = loop.time() + self.sample_s
        self._loop_handle = loop.call_at(self._expected, self._loop_tick)

    def on_stop(self) -> None:
        for topic, handler in self._subs:
            self.bus.unsubscribe(topic, handler)
        if self._loop_handle is not None:
            self._loop_handle.cancel()
        try:
            self.registry.unregister(self._collector)
        except KeyError:
            pass

    def _loop_tick(self) -> None:
        now = self._loop.time()
        lag = max(0.0, now - self._expected)
        self.loop_lag.observe(lag)
        self.loop_lag_last.set(lag)
        self._expected = now + self.sample_s
        self._loop_handle = self._loop.call_at(self._expected, self._loop_tick)

    # ---- the bus ----------------------------------------------------------------------------

    def handle_market(self, ev) -> None:
        # The message being handled now; forgotten once this loop iteration ends, so a decision made
        # later (a timer closing a bar) is not timed against it.
        self._tick_ns = getattr(ev, "ts_init", 0) or self.clock.time_ns()
        if not self._clear_pending:
            self._clear_pending = True
            self._loop.call_soon(self._clear_tick)

    def _clear_tick(self) -> None:
        self._tick_ns = 0
        self._clear_pending = False

    def handle_decision(self, d) -> None:
        if not d.accepted:
            self.denials.labels(self._denials(d.reason)).inc()
            return
        if self._tick_ns and d.ts_event >= self._tick_ns:      # decided while handling that market message
            self.tick_to_order.observe((d.ts_event - self._tick_ns) / 1e9)

    def handle_order_event(self, ev) -> None:
        self.orders.labels(ev.status).inc()
        if ev.status == "PENDING_NEW":
            if len(self._pending) >= 10_000:
                self._pending.pop(next(iter(self._pending)))
            self._pending[ev.client_order_id] = ev.ts_event
        else:
            sent = self._pending.pop(ev.client_order_id, None)
            if sent is not None and ev.previous == "PENDING_NEW":
                self.order_ack.observe(max(0, ev.ts_event - sent) / 1e9)
        if ev.status == "REJECTED":
            self.rejections.labels(self._reasons(reason_code(ev.reason))).inc()

    def handle_fill(self, f) -> None:
        self.fills.labels(f.strategy_id or "none", f.symbol).inc()
        key = (f.strategy_id or "none", f.symbol)
        b = self._books.get(key)
        if b is None:
            b = self._books[key] = {"qty": Decimal(0), "cost": Decimal(0), "realized": Decimal(0),
                                    "fees": Decimal(0)}
        book_fill(b, f.symbol, f.side, Decimal(f.quantity), Decimal(f.price), Decimal(f.commission or 0),
                  f.commission_asset or "")
        total = sum((v["realized"] for (s, _), v in self._books.items() if s == key[0]), Decimal(0))
        self.pnl.labels(key[0], self.quote).set(float(total))

    def handle_equity(self, p) -> None:
        self.equity.labels(self.quote).set(float(p.equity))
        self.drawdown.labels(self.quote).set(float(p.drawdown))
        self.fees.labels(self.quote).set(float(p.fees))

    def handle_state(self, ev) -> None:
        for s in STATES:
            self.trading_state.labels(s).set(1 if s == ev.state else 0)

    def handle_alert(self, a) -> None:
        self.alerts.labels(a.level, self._sources(a.source)).inc()
        if a.source == "anomaly":
            self.anomalies.labels(a.code).inc()

    def handle_health(self, h) -> None:
        self._health = h
        for s in h.streams:
            self.stream_rate.labels(s.stream).set(s.rate_per_s)
            self.stream_lag_mean.labels(s.stream).set(s.lag_ms_mean / 1e3)
            self.stream_lag_max.labels(s.stream).set(s.lag_ms_max / 1e3)
            if s.last_message_age_s != float("inf"):
                self.stream_age.labels(s.stream).set(s.last_message_age_s)
        self.books_ready.set(h.books_ready)
        self.connections.set(h.connected)


class _Sampled:
    """Counters and gauges read from the node at scrape time (in the HTTP server's thread)."""

    def __init__(self, metrics: NodeMetrics):
        self.m = metrics

    def describe(self):
        return []

    def collect(self):
        m = self.m
        h = m._health
        if h is not None:
            yield CounterMetricFamily("abidance_stream_reconnects", "Stream reconnects", value=h.reconnects)
            yield CounterMetricFamily("abidance_book_resyncs", "Order book resyncs", value=h.resyncs)
            messages = CounterMetricFamily("abidance_stream_messages", "Market messages received per stream "
                                           "(rate() of it is messages per second)", labels=["stream"])
            for st in h.streams:
                messages.add_metric([st.stream], st.messages)
            yield messages
            dropped = CounterMetricFamily("abidance_stream_dropped_messages", "Malformed market messages dropped",
                                          labels=["reason"])
            for reason, n in dict(h.dropped).items():
                dropped.add_metric([reason], n)
            yield dropped
        bus = m.bus
        yield CounterMetricFamily("abidance_bus_messages", "Messages published on the bus", value=bus.published)
        yield CounterMetricFamily("abidance_bus_handler_errors", "Bus subscribers that raised",
                                  value=bus.handler_errors)
        for name, probe in m.probes.items():
            try:
                values = _retry(probe)
            except Exception:  # noqa: BLE001 - a probe must never break a scrape
                continue
            for key, (kind, help_text, value, labels) in values.items():
                family = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
                if labels:
                    metric = family(key, help_text, labels=list(labels[0]))
                    for label_values, v in value:
                        metric.add_metric(list(label_values), v)
                    yield metric
                else:
                    yield family(key, help_text, value=value)


def _retry(probe):
    for _ in range(3):
        try:
            return probe()
        except RuntimeError:        # a dict changed size while the loop wrote it: read again
            time.sleep(0)
    return probe()


def store_probe(writer):
    """Store writer backlog (rows accepted, not yet written) and the spool on disk."""
    def read() -> dict:
        accepted = sum(list(writer.accepted.values()))
        written = sum(list(writer.written.values()))
        files = list(writer.spool_dir.glob("*.arrow"))
        size = 0
        for f in files:
            try:
                size += f.stat().st_size
            except OSError:
                pass
        return {"abidance_store_writer_lag_rows": ("gauge", "Rows accepted by the store writer, not yet written",
                                                   max(0, accepted - written), ()),
                "abidance_store_spool_files": ("gauge", "Batches spooled on disk while the store is down",
                                               len(files), ()),
                "abidance_store_spool_bytes": ("gauge", "Bytes spooled on disk", size, ()),
                "abidance_store_up": ("gauge", "1 while the store takes writes", 1 if writer.up else 0, ())}
    return read


def alerts_probe(service):
    """Alert delivery per channel: alerts delivered, waiting, and whether the channel is reachable."""
    def read() -> dict:
        stats = service.stats()
        ch = stats["channels"]
        return {"abidance_alerts_delivered": ("counter", "Alerts delivered per channel (grouped messages count "
                                              "each alert they carry)",
                                              [((n,), c["delivered_alerts"]) for n, c in ch.items()], (("channel",),)),
                "abidance_alert_messages_sent": ("counter", "Messages sent per channel",
                                                 [((n,), c["delivered_messages"]) for n, c in ch.items()],
                                                 (("channel",),)),
                "abidance_alerts_waiting": ("gauge", "Alerts waiting per channel (grouping, rate limit, retries)",
                                            [((n,), c["waiting"]) for n, c in ch.items()], (("channel",),)),
                "abidance_alert_channel_up": ("gauge", "0 while a channel is unreachable",
                                              [((n,), 0 if c["unreachable"] else 1) for n, c in ch.items()],
                                              (("channel",),)),
                "abidance_alert_queue_overflow": ("counter", "Alerts that did not fit in the delivery queue",
                                                  stats["overflow"], ())}
    return read


def serve(registry, host: str, port: int):
    """The /metrics endpoint in a daemon thread (prometheus_client's WSGI server); returns (server, port)."""
    server, _thread = start_http_server(port, addr=host, registry=registry)
    return server, server.server_address[1]
