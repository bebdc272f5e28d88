"""The node against the simulator with injected faults, its alerts delivered to local Telegram, Discord, Slack,
webhook and SMTP servers: a market-data stall (the feed-stall detector moves risk to REDUCING), a 418 IP ban and
the rejection burst it causes. Each alert arrives once per channel, repeats grouped, within its latency target;
the metrics endpoint is scraped and parsed with Prometheus' text parser."""

from __future__ import annotations

import time
import urllib.request

import pytest

pytest.importorskip("prometheus_client")
pytest.importorskip("aiosmtpd")

from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from abidance.core import topics  # noqa: E402
from abidance.core.events import TradingCommand  # noqa: E402
from abidance.exchange.sim.config import SimConfig  # noqa: E402
from tests.integration.alerts_kit import (FakeDiscord, FakeSlack, FakeTelegram, FakeWebhook, SmtpServer,  # noqa: E402
                                          channel_env, channel_tables)
from tests.integration.conftest import RunningSim  # noqa: E402
from tests.integration.node_kit import RunningNode, node_config  # noqa: E402
from tests.integration.sim_kit import admin  # noqa: E402

STRATEGY = '''
from abidance.strategy.base import Strategy


class EveryBar(Strategy):
    """Buys on one closed 1-second bar and sells on the next: an order every second."""

    timeframe = "1s"

    def on_bar(self, bar):
        if self.position(bar.symbol) > 0:
            self.sell(bar.symbol, 1.0, reason="flip")
        else:
            self.buy(bar.symbol, 1.0, reason="flop")
'''

KINDS = ["anomaly.feed_stall", "anomaly.rejections", "binance.rest.ip_banned"]
FIRST_S = 2.0           # an alert's first message: delivered within 2 s of the alert
GROUP_WINDOW_S = 3.0    # repeats: within the group window plus 2 s


def body(servers) -> str:
    tables = channel_tables(servers["telegram"], servers["discord"], servers["slack"], servers["webhook"],
                            servers["smtp"], kinds=KINDS, rate_per_minute=600, burst=20)
    return f"""
[risk]
quote_asset = "USDT"
max_order_notional = "100"
max_gross_exposure = "1000"
sizing = "fixed_quote"
fixed_quote = "12"
price_band_bps = 1000
orders_per_10s = 20
max_errors_per_minute = 0
stale_data_s = 0
[data]
depth = false
book_ticker = false
[alerts]
group_window_s = {GROUP_WINDOW_S}
daily_report = false
weekly_report = false
{tables}
[anomaly]
stall_s = 2.0
feed_action = "reduce"
rejections = 3
rejection_window_s = 30
rejection_action = "alert"
cooldown_s = 0
price_jump_bps = 0
spread_bps = 0
volume_z = 0
[metrics]
enabled = true
port = 0
[[strategies]]
id = "flipper"
class = "every_bar:EveryBar"
symbols = ["ETHUSDT"]
timeframe = "1s"
"""


@pytest.fixture()
def servers(tmp_path):
    s = {"telegram": FakeTelegram(), "discord": FakeDiscord(), "slack": FakeSlack(), "webhook": FakeWebhook(),
         "smtp": SmtpServer(tmp_path)}
    yield s
    for server in s.values():
        server.close()


def kinds_at(server, name: str) -> list[tuple[str, int, float]]:
    """(kind, count, received at) of every message a channel server took."""
    if name == "smtp":
        out = []
        for m in server.mails:
            subject = m["message"]["Subject"].split(": ", 1)[1]
            out.append((subject.split()[1], int(subject.split("×")[1].split()[0]) if "×" in subject else 1, m["at"]))
        return out
    out = []
    for r in server.received:
        if name == "webhook":
            out.append((r["kind"], r["count"], r["at"]))
            continue
        first = r["text"].splitlines()[0]
        out.append((first.split()[1], int(first.split("×")[1].split()[0]) if "×" in first else 1, r["at"]))
    return out


def test_faults_on_the_simulator_reach_every_channel_once_grouped_and_in_time(servers, tmp_path, monkeypatch):
    strategies = tmp_path / "strategies"
    strategies.mkdir()
    (strategies / "every_bar.py").write_text(STRATEGY)
    sim = RunningSim(SimConfig(seed=21))
    node = None
    try:
        for var, secret in channel_env().items():
            monkeypatch.setenv(var, secret)
        node = RunningNode(node_config(sim, tmp_path / "state", body(servers),
                                       ABIDANCE__NODE__STRATEGIES_DIR=str(strategies),
                                       ABIDANCE__BINANCE__ORDER_TRANSPORT="rest"),
                           topics_to_record=(*RunningNode.RECORDED, topics.CONNECTOR_HEALTH))
        ev = node.events
        node.wait_for(lambda: len(ev[topics.FILLS]) >= 2, 30, "the strategy trading")

        # 1. A stall of the market streams: the feed-stall detector fires and moves risk to REDUCING.
        admin(sim, "/admin/stall?seconds=4")
        node.wait_for(lambda: any(a.code == "feed_stall" for a in ev[topics.ALERTS]), 10, "the stall alert")
        node.wait_for(lambda: any(s.source == "anomaly:feed_stall" and s.state == "REDUCING"
                                  for s in ev[topics.TRADING_STATE]), 5, "REDUCING")
        node.wait_for(lambda: any(a.code == "feed_resumed" for a in ev[topics.ALERTS]), 15, "the feed back")
        node.run(lambda: node.node.bus.send(topics.RISK_COMMAND, TradingCommand("resume", "test", "operator")))

        # 2. A 418: the IP is banned, every order after it is refused locally: a rejection burst.
        admin(sim, "/admin/faults", {"rest_418_rate": 1.0})
        node.wait_for(lambda: any(a.code == "ip_banned" for a in ev[topics.ALERTS]), 20, "the ban alert")
        node.wait_for(lambda: sum(a.code == "rejections" for a in ev[topics.ALERTS]) >= 4, 20, "rejection bursts")
        admin(sim, "/admin/faults", {"rest_418_rate": 0.0})
        metrics_url = node.node.ops.metrics.url
        scraped = urllib.request.urlopen(metrics_url, timeout=5).read().decode()
        node.stop()           # the alert service delivers what waits before it stops
        node_stopped = True
        alerts = [a for a in ev[topics.ALERTS] if f"{a.source}.{a.code}" in KINDS]
        raised = {k: sum(1 for a in alerts if f"{a.source}.{a.code}" == k) for k in KINDS}
        first_ts = {k: min(a.ts_event for a in alerts if f"{a.source}.{a.code}" == k) / 1e9 for k in KINDS}
        assert raised["anomaly.feed_stall"] == 1 and raised["binance.rest.ip_banned"] == 1
        assert raised["anomaly.rejections"] >= 4

        for name, server in servers.items():
            got = kinds_at(server, name)
            for kind in KINDS:
                msgs = [(n, at) for k, n, at in got if k == kind]
                # Every alert arrives, once: the counts of its messages add up to the alerts raised.
                assert sum(n for n, _ in msgs) == raised[kind], (name, kind, msgs, raised)
                assert msgs[0][1] - first_ts[kind] < FIRST_S, (name, kind, msgs[0][1] - first_ts[kind])
            rejections = [(n, at) for k, n, at in got if k == "anomaly.rejections"]
            assert rejections[0][0] == 1 and any(n > 1 for n, _ in rejections[1:]), (name, rejections)
            for (_, a), (_, b) in zip(rejections, rejections[1:]):
                assert b - a < GROUP_WINDOW_S + 2.0, (name, rejections)
        ids = [r["id"] for r in servers["webhook"].received]
        assert len(ids) == len(set(ids))

        samples = {s.name: s for f in text_string_to_metric_families(scraped) for s in f.samples}
        assert samples["abidance_fills_total"].value >= 2
        # One health publisher (the connector, every health_interval_s): a second one (the node's heartbeat
        # used to be) empties the per-stream windows, and messages/s read as a fraction of the real pace.
        health = [h.ts_event for h in ev[topics.CONNECTOR_HEALTH]]
        assert len(health) >= 2 and min(b - a for a, b in zip(health, health[1:])) >= 0.9 * 5e9, health
        rates = [s.value for f in text_string_to_metric_families(scraped) for s in f.samples
                 if s.name == "abidance_stream_messages_per_second" and s.labels["stream"] == "ETHUSDT@trade"]
        assert rates and rates[0] > 0, rates
        assert samples["abidance_order_rejections_total"].value >= 3
        assert samples["abidance_order_ack_seconds_count"].value >= 2
        assert samples["abidance_anomalies_total"].value >= 1
        assert "abidance_event_loop_lag_seconds_bucket" in samples and "abidance_alerts_delivered_total" in samples
    finally:
        if node is not None and not locals().get("node_stopped"):
            node.stop()
        sim.close()
