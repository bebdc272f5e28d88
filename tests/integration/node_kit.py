"""A trading node on its own uvloop thread, against a RunningSim, for end-to-end tests."""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path

from abidance.config import parse_config
from abidance.core import topics
from abidance.runtime.node import TradingNode
from tests.integration.conftest import LoopThread


def node_config(sim, state_dir: Path, body: str, node: str = "", **env):
    """A node config pointing at `sim`; `body` holds the [risk]/[[strategies]] tables, `node` more
    [node] keys (e.g. strategies_dir)."""
    text = f"""
config_version = 1
[node]
name = "e2e"
mode = "live"
state_dir = "{state_dir}"
heartbeat_s = 0.5
{node}
[binance]
venue = "sim"
rest_url = "{sim.rest_url}"
ws_url = "{sim.ws_url}"
client_order_prefix = "e2e"
reconnect_initial_s = 0.05
{body}
"""
    return parse_config(text, state_dir, env=dict(env))


class RunningNode(LoopThread):
    """TradingNode.start()/stop() on a private loop thread; events recorded by topic."""

    RECORDED = (topics.RISK_DECISIONS, topics.ORDER_EVENTS, topics.FILLS, topics.TRADING_STATE, topics.ALERTS,
                topics.SIGNALS, topics.RECONCILIATION)

    def __init__(self, config, topics_to_record=RECORDED):
        super().__init__("node")
        self.events: dict[str, list] = {t: [] for t in topics_to_record}
        self.timeline: list[tuple[str, object]] = []      # every recorded event, in bus order
        self.node = None
        self._config = config

        async def make_and_start():
            self.node = TradingNode(config)
            for topic, sink in self.events.items():
                self.node.bus.subscribe(topic, lambda ev, sink=sink, topic=topic: (
                    sink.append(ev), self.timeline.append((topic, ev))))
            await self.node.start()

        self.call(make_and_start(), 30)

    def wait_for(self, predicate, timeout: float = 20.0, what: str = "condition"):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.run(predicate):
                return
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}")

    def stop(self) -> None:
        try:
            self.call(self.node.stop(), 30)
        finally:
            self.shutdown()


def sim_balances(sim) -> dict[str, Decimal]:
    venue = sim.server.venue
    account = sim.run(lambda: venue.exchange.account_info(venue.account))
    return {b["asset"]: Decimal(b["free"]) + Decimal(b["locked"]) for b in account["balances"]}
