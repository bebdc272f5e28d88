"""The node on Binance as it is today: no listenKey, user data and orders over the WebSocket API.

Before 2026-02-20 user data came from a listenKey stream; Binance now answers the listenKey
endpoints 410 Gone, and a node built on them exits at start-up. These tests run the node
against a simulator that answers exactly that way.
"""

from __future__ import annotations

import json
import signal
from decimal import Decimal
from urllib.error import HTTPError
from urllib.request import Request, urlopen

import pytest

from abidance.core import topics
from abidance.exchange.sim.config import SimConfig
from tests.e2e.node_process import STRATEGY, config_text, start_node, wait
from tests.integration.sim_kit import admin
from tests.integration.conftest import RunningSim
from tests.integration.node_kit import RunningNode, node_config


def listen_key_status(sim) -> int:
    try:
        urlopen(Request(sim.rest_url + "/api/v3/userDataStream", method="POST"), timeout=5)
    except HTTPError as exc:
        return exc.code
    return 200


@pytest.mark.parametrize("transport", ["ws_api", "rest"])
def test_abidance_run_trades_while_the_listen_key_endpoints_answer_410(tmp_path, transport):
    sim = RunningSim(SimConfig(seed=17))
    venue = sim.server.venue
    strategies = tmp_path / "strategies"
    strategies.mkdir()
    (strategies / "oneshot.py").write_text(STRATEGY)
    cfg = tmp_path / "node.toml"
    cfg.write_text(config_text(sim, tmp_path / "state", strategies, enabled=True,
                               binance_extra=f'order_transport = "{transport}"'))
    proc = start_node(cfg)
    lines: list[dict] = []
    try:
        assert listen_key_status(sim) == 410
        # The strategy buys at market, then rests a limit order: both placed, both reported.
        wait(lambda: len(sim.run(lambda: venue.exchange.open_orders(venue.account, "ETHUSDT"))) == 1, 30,
             "the resting order")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
        for line in proc.stdout.read().splitlines():
            if line.startswith("{"):
                lines.append(json.loads(line))
    finally:
        if proc.poll() is None:
            proc.kill()
        sim.close()
    messages = [entry["msg"] for entry in lines]
    assert any("user data subscribed (start" in m for m in messages), messages
    assert any("reconciled (start)" in m for m in messages)
    assert not [e for e in lines if e["level"] in ("ERROR", "CRITICAL")], lines


def test_node_finds_fills_missed_while_the_ws_api_was_down_by_reconciliation(tmp_path):
    """The WebSocket API connection drops and stays refused while the node's resting order
    fills on the exchange: the node re-subscribes on reconnect and reconciliation finds the fill."""
    sim = RunningSim(SimConfig(seed=19))
    venue = sim.server.venue
    strategies = tmp_path / "strategies"
    strategies.mkdir()
    (strategies / "oneshot.py").write_text(STRATEGY)
    body = """
[risk]
quote_asset = "USDT"
max_order_notional = "100"
max_gross_exposure = "1000"
price_band_bps = 1000
sizing = "fixed_quote"
fixed_quote = "30"
min_confidence = 0.0
[data]
depth = true
[[strategies]]
id = "one-shot"
class = "oneshot:OneShot"
symbols = ["ETHUSDT"]
timeframe = "1m"
"""
    config = node_config(sim, tmp_path / "state", body, ABIDANCE__NODE__STRATEGIES_DIR=str(strategies))
    node = RunningNode(config)
    try:
        execution = node.node.execution
        node.wait_for(lambda: any(o.order_type == "LIMIT" and o.status == "NEW" for o in execution.orders.values()),
                      30, "the resting limit order acknowledged")
        resting = next(o for o in execution.orders.values() if o.order_type == "LIMIT")
        user = node.node.connector.user
        subscriptions = user.subscriptions
        admin(sim, "/admin/close-connections?kind=ws-api&refuse_s=2")
        node.wait_for(lambda: not node.node.connector.ws_api.is_connected, 5, "the WebSocket API down")

        on_venue = sim.run(lambda: venue.exchange.query_order(venue.account, "ETHUSDT",
                                                              orig_client_order_id=resting.client_order_id))

        def fill_it():
            spec = venue.exchange.spec("ETHUSDT")
            return venue.exchange.mm_take("ETHUSDT", "SELL", spec.price_to_ticks(on_venue["price"]),
                                          spec.qty_to_steps(on_venue["origQty"]))
        assert sim.run(fill_it) > 0
        node.wait_for(lambda: resting.status == "FILLED", 20, "the missed fill found by reconciliation")
        assert user.subscriptions == subscriptions + 1
        recs = node.events[topics.RECONCILIATION]
        assert [r.reason for r in recs][-1] == "reconnect"
        fills = [f for f in node.events[topics.FILLS] if f.client_order_id == resting.client_order_id]
        assert sum(f.quantity for f in fills) == Decimal(on_venue["origQty"])
    finally:
        node.stop()
        sim.close()
