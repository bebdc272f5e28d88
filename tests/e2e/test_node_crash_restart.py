"""kill -9 the node while it has an open order; the restarted node reconciles within
5 s, places no duplicate order, its position matches the exchange; SIGTERM then stops
it cleanly, cancelling its orders."""

from __future__ import annotations

import json
import signal
import socket
import time
from decimal import Decimal

from abidance.exchange.sim.config import SimConfig
from tests.e2e.node_process import STRATEGY, config_text, start_node, wait
from tests.integration.conftest import RunningSim
from tests.integration.node_kit import sim_balances

def test_node_killed_with_an_open_order_reconciles_on_restart_without_duplicates(tmp_path):
    sim = RunningSim(SimConfig(seed=13))
    venue = sim.server.venue
    open_orders = lambda: sim.run(lambda: venue.exchange.open_orders(venue.account, "ETHUSDT"))   # noqa: E731
    all_orders = lambda: sim.run(lambda: venue.exchange.all_orders(venue.account, "ETHUSDT"))     # noqa: E731
    strategies = tmp_path / "strategies"
    strategies.mkdir()
    (strategies / "oneshot.py").write_text(STRATEGY)
    state = tmp_path / "state"
    cfg = tmp_path / "node.toml"
    proc = None
    try:
        cfg.write_text(config_text(sim, state, strategies, enabled=True))
        proc = start_node(cfg)
        wait(lambda: len(open_orders()) == 1, 30, "the resting order on the exchange")
        wait(lambda: (state / "node-state.json").exists() and json.loads(
            (state / "node-state.json").read_text())["execution"]["orders"], 5, "the order in the state file")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        before = all_orders()
        assert len(before) == 2 and [o["type"] for o in before] == ["MARKET", "LIMIT"]

        # Restart (the strategy is off: any new order would be a duplicate).
        cfg.write_text(config_text(sim, state, strategies, enabled=False))
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(str(tmp_path / "notify.sock"))
        notify.settimeout(0.05)
        t0 = time.monotonic()
        proc = start_node(cfg, str(tmp_path / "notify.sock"))
        lines: list[dict] = []

        def reconciled():
            line = proc.stdout.readline()
            if line.startswith("{"):
                lines.append(json.loads(line))
            return any("reconciled (start)" in entry["msg"] for entry in lines)

        wait(reconciled, 10, "the start reconciliation")
        assert time.monotonic() - t0 < 5.0 + 3.0        # + interpreter start and imports
        time.sleep(1.0)
        assert all_orders() == before                                        # nothing placed again
        resting = open_orders()
        assert len(resting) == 1 and resting[0]["clientOrderId"] == before[1]["clientOrderId"]
        saved = wait(lambda: json.loads((state / "node-state.json").read_text()), 5, "state")
        orders = saved["execution"]["orders"]
        assert [o["client_order_id"] for o in orders] == [before[1]["clientOrderId"]]
        assert orders[0]["status"] == "NEW" and orders[0]["order_id"] == before[1]["orderId"]
        eth = sum(Decimal(p["quantity"]) for p in saved["portfolio"]["positions"] if p["symbol"] == "ETHUSDT")
        assert eth == sim_balances(sim)["ETH"] - Decimal(SimConfig().balances.get("ETH", 0))
        assert not [e for e in lines if e["level"] in ("ERROR", "CRITICAL")], lines

        # systemd's view: READY once up, WATCHDOG on heartbeats, STOPPING on SIGTERM.
        messages = []

        def drain_notify():
            try:
                while True:
                    messages.append(notify.recv(4096).decode())
            except (socket.timeout, BlockingIOError):
                return
        wait(lambda: drain_notify() or "WATCHDOG=1" in messages, 5, "a watchdog heartbeat")
        assert "READY=1" in messages and messages.index("READY=1") < messages.index("WATCHDOG=1")

        # SIGTERM: a clean stop that cancels the open order.
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
        assert open_orders() == []
        drain_notify()
        assert "STOPPING=1" in messages
        notify.close()
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
        sim.close()
