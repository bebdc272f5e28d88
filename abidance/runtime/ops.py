"""The node's unattended-operation components, built from [alerts], [anomaly], [chat] and [metrics].

    ops = build_ops(config, bus, clock, instruments, node)    # after the engines exist
    components = [*ops.first, <the node's own>, *ops.last]

`first` starts before the engines and stops after them: the metrics (their market handlers must
see a message before the strategies react to it, for tick-to-order) and the alert service (it
sends what the others raise while starting and stopping). `last` starts after them: the anomaly
monitor, the report scheduler and chat control, which read what the engines publish.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from abidance.alerts.reports import ReportScheduler
from abidance.alerts.secrets import load_secret
from abidance.alerts.service import AlertService
from abidance.anomaly.monitor import AnomalyMonitor
from abidance.chat.telegram import ChatControl
from abidance.chat.view import BusCommands, NodeView, StoreCommands
from abidance.core.component import Component
from abidance.drift.daily import DailyDrift
from abidance.extras import require
from abidance.store.client import connect as store_connect

log = logging.getLogger("abidance.ops")


class MetricsEndpoint(Component):
    """NodeMetrics plus its /metrics HTTP server (a daemon thread) on metrics.host:metrics.port."""

    def __init__(self, metrics, host: str, port: int):
        super().__init__("MetricsEndpoint", metrics.bus, metrics.clock)
        self.metrics = metrics
        self.host, self.port = host, port
        self.server = None
        self.url = ""

    def on_start(self) -> None:
        # Lazy: the metrics need prometheus_client (the ops extra).
        from abidance.metrics.node_metrics import serve

        self.metrics.start()
        self.server, self.port = serve(self.metrics.registry, self.host, self.port)
        self.url = f"http://{self.host}:{self.port}/metrics"
        log.info("Prometheus metrics at %s", self.url)

    def on_stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        self.metrics.stop()


@dataclass
class Ops:
    first: list = field(default_factory=list)
    last: list = field(default_factory=list)
    alerts: object = None
    anomaly: object = None
    reports: object = None
    drift: object = None
    chat: object = None
    metrics: object = None


def build_ops(config, bus, clock, instruments: dict, node=None, store_writer=None, env=None) -> Ops:
    """The components the config asks for; `node` (the TradingNode) answers chat's /status and /balance."""
    ops = Ops()
    cfg = config
    if cfg.metrics.enabled:
        require("run (metrics.enabled = true)", "ops")
        # Lazy: the metrics need prometheus_client (the ops extra, checked just above).
        from abidance.metrics.node_metrics import NodeMetrics, store_probe

        probes = {"store": store_probe(store_writer)} if store_writer is not None else {}
        ops.metrics = MetricsEndpoint(NodeMetrics(bus, clock, quote=cfg.risk.quote_asset, sample_s=cfg.metrics.sample_s,
                                                  probes=probes), cfg.metrics.host, cfg.metrics.port)
        ops.first.append(ops.metrics)
    if cfg.alerts.enabled and cfg.alerts.channels:
        ops.alerts = AlertService(bus, clock, cfg.alerts, cfg.node.name, env=env)
        ops.first.append(ops.alerts)
        if ops.metrics is not None:
            # Lazy: the metrics need prometheus_client (the ops extra).
            from abidance.metrics.node_metrics import alerts_probe

            ops.metrics.metrics.probes["alerts"] = alerts_probe(ops.alerts)
    if cfg.anomaly.enabled:
        ops.anomaly = AnomalyMonitor(bus, clock, cfg.anomaly, instruments, cfg.risk.quote_asset)
        ops.last.append(ops.anomaly)
    if ops.alerts is not None and (cfg.alerts.daily_report or cfg.alerts.weekly_report):
        ops.reports = ReportScheduler(bus, clock, cfg.alerts, cfg.node.name, cfg.risk.quote_asset)
        ops.last.append(ops.reports)
    if cfg.alerts.drift_report and cfg.store.url:
        ops.drift = DailyDrift(bus, clock, cfg.alerts, lambda: store_connect(cfg.store.url, cfg.store.database),
                               cfg.store.database, instruments)
        ops.last.append(ops.drift)
    if cfg.chat.enabled and node is not None:
        ops.chat = build_chat(cfg, bus, clock, node, env)
        ops.last.append(ops.chat)
    return ops


def build_chat(cfg, bus, clock, node, env=None):
    channel = next(c for c in cfg.alerts.channels if c.name == cfg.chat.channel)
    connect = (lambda: store_connect(cfg.store.url, cfg.store.database)) if cfg.store.url else None
    view = NodeView(node.status_line,
                    node.portfolio, cfg.risk.quote_asset, connect, cfg.store.database)
    # The dashboard's operator command path when there is a store; the same effects on the bus otherwise.
    commands = StoreCommands(connect, cfg.store.database) if connect is not None else BusCommands(bus)
    return ChatControl(bus, clock, cfg.chat, channel, load_secret(channel.name, True, env), view, commands)
