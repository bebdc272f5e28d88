"""kill -9 the node again and again while its limit orders rest (issue 16): the restarted node
counts the orders it left on the exchange, so the venue never holds more than max_open_orders
of them, whatever the number of restarts."""

from __future__ import annotations

import signal
import time

from abidance.exchange.sim.config import SimConfig
from tests.e2e.node_process import RESTER, config_text, start_node, wait
from tests.integration.conftest import RunningSim

MAX_OPEN = 4
RESTARTS = 4


def test_node_killed_repeatedly_never_holds_more_than_max_open_orders_on_the_venue(tmp_path):
    sim = RunningSim(SimConfig(seed=21))
    venue = sim.server.venue
    open_orders = lambda: sim.run(lambda: venue.exchange.open_orders(venue.account, "ETHUSDT"))   # noqa: E731
    strategies = tmp_path / "strategies"
    strategies.mkdir()
    (strategies / "rester.py").write_text(RESTER)
    state = tmp_path / "state"
    cfg = tmp_path / "node.toml"
    cfg.write_text(config_text(sim, state, strategies, enabled=True, strategy_class="rester:Rester",
                               risk_extra=f"max_open_orders = {MAX_OPEN}\norders_per_10s = 50"))
    most, proc = 0, None

    def count() -> int:
        nonlocal most
        n = len(open_orders())
        most = max(most, n)
        return n

    try:
        for run in range(RESTARTS + 1):
            proc = start_node(cfg)
            if run == 0:
                wait(lambda: count() >= MAX_OPEN, 40, f"{MAX_OPEN} resting orders")
            # Give a node that does not count its old orders time to add new ones.
            end = time.monotonic() + 4.0
            while time.monotonic() < end:
                count()
                time.sleep(0.02)
            assert proc.poll() is None, proc.stdout.read()
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            count()
        assert most == MAX_OPEN, f"{most} open orders on the venue with max_open_orders = {MAX_OPEN}"
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
        sim.close()
