"""`abidance run` against a venue that answers badly at first (issue 16): transient 503/429 on
exchangeInfo, the account and the user-data subscription are retried with backoff until the
node comes up and trades; a refused key exits 2 quickly with one line naming the cause; the
simulator's own key (ABIDANCE_SIM_API_KEY / _SECRET) is the one the node uses."""

from __future__ import annotations

import json
import time
from decimal import Decimal

from abidance.exchange.sim.config import SimConfig
from tests.e2e.node_process import STRATEGY, config_text, start_node, wait
from tests.integration.conftest import RunningSim
from tests.integration.sim_kit import admin

NO_BINANCE_KEY = {"ABIDANCE_BINANCE_API_KEY": "", "ABIDANCE_BINANCE_API_SECRET": "", "ABIDANCE_BINANCE_KEY_FILE": ""}


def setup(tmp_path, sim, binance_extra: str = "reconnect_max_s = 2.0"):
    strategies = tmp_path / "strategies"
    strategies.mkdir()
    (strategies / "oneshot.py").write_text(STRATEGY)
    cfg = tmp_path / "node.toml"
    cfg.write_text(config_text(sim, tmp_path / "state", strategies, enabled=True, binance_extra=binance_extra))
    return cfg


def test_transient_503_and_429_at_start_are_retried_until_the_node_trades(tmp_path):
    sim = RunningSim(SimConfig(seed=5))
    venue = sim.server.venue
    proc = None
    try:
        cfg = setup(tmp_path, sim)
        admin(sim, "/admin/faults", {"rest_fail_next": 7})
        proc = start_node(cfg, extra_env=NO_BINANCE_KEY)
        wait(lambda: sim.run(lambda: venue.exchange.all_orders(venue.account, "ETHUSDT")), 60,
             "an order from the node after the failed starts")
        assert proc.poll() is None
        proc.terminate()
        out = proc.communicate(timeout=20)[0]
        attempts = [json.loads(line)["msg"] for line in out.splitlines()
                    if line.startswith("{") and "starting:" in line]
        assert len(attempts) >= 3, out[-3000:]
        assert all("retry in" in a for a in attempts)
        assert "Traceback" not in out
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
        sim.close()


def test_a_refused_key_exits_2_quickly_with_one_line(tmp_path):
    sim = RunningSim(SimConfig(seed=5))
    proc = None
    try:
        cfg = setup(tmp_path, sim)
        t0 = time.monotonic()
        proc = start_node(cfg, extra_env={**NO_BINANCE_KEY, "ABIDANCE_SIM_API_KEY": "not-a-key",
                                          "ABIDANCE_SIM_API_SECRET": "not-a-secret"})
        out = proc.communicate(timeout=30)[0]
        assert proc.returncode == 2, out[-3000:]
        assert time.monotonic() - t0 < 15
        assert "Traceback" not in out
        [line] = [x for x in out.splitlines() if x.startswith("abidance run:")]
        assert "refused the API key" in line and "-2015" in line
        assert "not-a-secret" not in out
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
        sim.close()


def test_the_node_trades_on_the_simulator_account_named_by_the_sim_key_variables(tmp_path):
    sim = RunningSim(SimConfig(seed=5))
    exchange = sim.server.venue.exchange
    own = sim.run(lambda: exchange.create_account("team-key", "team-secret", {"USDT": Decimal("500")}))
    proc = None
    try:
        cfg = setup(tmp_path, sim)
        proc = start_node(cfg, extra_env={**NO_BINANCE_KEY, "ABIDANCE_SIM_API_KEY": "team-key",
                                          "ABIDANCE_SIM_API_SECRET": "team-secret"})
        wait(lambda: proc.poll() is not None or sim.run(lambda: exchange.all_orders(own, "ETHUSDT")), 40,
             "an order on the team account")
        assert proc.poll() is None, proc.stdout.read()[-3000:]
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
        sim.close()
