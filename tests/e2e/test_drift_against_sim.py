"""`abidance report drift` on what a real node recorded trading the simulator over sockets.

The node trades ETHBTC (real 5-minute candles replayed as trades at 300x; 1-minute bars built
from them) with every event going to a served store. The simulator answers every order call
20 ms late (6 s of market time at 300x) and its streams stall for 5 minutes of market time (one
second of wall time): the trades of those minutes never reach the node. Right after, the trades
of the stall are downloaded from the simulator (`abidance download --trades`) and the report
fills the hole with them. The report must find the hole, name every order the runs do not share
(no "unexplained"), and add up to the PnL difference to the last digit. The simulator fills
market orders from its book, level by level, and the replay at the next trade: the differences
of a run without faults are those named lines (docs/drift.md, "Against the simulator").
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import datetime, timezone
from decimal import Decimal

from abidance.core import topics
from abidance.exchange.sim.config import MarketConfig, SimConfig
from abidance.exchange.sim.faults import FaultSettings
from tests.integration.conftest import RunningSim
from tests.integration.node_kit import RunningNode, node_config
from tests.kit import PROJECT_ROOT, ServedStore, shared_data

BODY = """
[risk]
quote_asset = "BTC"
max_order_notional = "0.05"
max_gross_exposure = "0.5"
price_band_bps = 1000
sizing = "fixed_quote"
fixed_quote = "0.01"
min_confidence = 0.0
stale_data_s = 0
[data]
depth = true
book_ticker = false
bar_intervals = ["1m"]
[[strategies]]
id = "eth-ema"
class = "ema_cross"
symbols = ["ETHBTC"]
timeframe = "1m"
params = { fast = 2, slow = 4 }
"""
STALL_MARKET_S = 300.0


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M")


def _accepted(node) -> int:
    return sum(1 for d in node.events[topics.RISK_DECISIONS] if d.accepted)


def test_drift_of_a_node_against_the_simulator_names_every_difference_and_adds_up(tmp_path):
    candles = shared_data("market", "ETH_BTC-5m.feather")
    with ServedStore(tmp_path / "store") as store:
        sim = RunningSim(SimConfig(seed=41, speed=300.0, balances={"BTC": Decimal("1")},
                                   markets=[MarketConfig("ETHBTC", "candles", str(candles))],
                                   faults=FaultSettings(rest_latency_ms=20)))
        venue = sim.server.venue
        cfg = node_config(sim, tmp_path / "state", BODY, ABIDANCE__STORE__URL=store.url)
        start = time.time_ns()
        node = None
        try:
            node = RunningNode(cfg)
            node.wait_for(lambda: _accepted(node) >= 3, 60, "three accepted live decisions")
            stall_ms = sim.run(venue.clock.now_ms)
            sim.run(lambda: venue.faults.stall(STALL_MARKET_S, venue.clock.now_ms()))
            before = _accepted(node)
            node.wait_for(lambda: _accepted(node) >= before + 2, 60, "two decisions after the stall")
            # The simulator keeps its last 1000 trades: fetch the stall's now, as a user would from Binance.
            now_ms = sim.run(venue.clock.now_ms)
            got = subprocess.run([sys.executable, "-m", "abidance.cli", "download", "--trades", "--symbols", "ETHBTC",
                                  "--start", _iso(stall_ms - 3_600_000), "--end", _iso(now_ms + 3_600_000),
                                  "--venue", "sim", "--rest-url", sim.rest_url, "--out", str(tmp_path / "dl")],
                                 cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
            assert got.returncode == 0, got.stderr
        finally:
            if node is not None:
                node.stop()
            sim.close()
        end = time.time_ns()
        out = tmp_path / "drift.json"
        run = subprocess.run([sys.executable, "-m", "abidance.cli", "report", "drift", "--store", store.url,
                              "--from", str(start), "--to", str(end), "--trades", f"ETHBTC={tmp_path / 'dl'}",
                              "--json", str(out)], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    report = json.loads(out.read_text())
    assert report["config"].startswith("version 0 by node")           # the config the node recorded at start
    assert report["balances"] == {"BTC": "1.00000000"}                  # and its balances then (the venue's)
    # The node's own fills printed on the tape are not the replay's market.
    assert report["own_trades"]["ETHBTC"] == len(node.events[topics.FILLS]) > 0
    d = report["strategies"]["eth-ema"]
    lines = {k: Decimal(v) for k, v in d["lines"].items()}
    assert Decimal(d["live_pnl"]) - Decimal(d["replay_pnl"]) == Decimal(d["difference"]) == sum(lines.values())
    assert Decimal(d["residual"]) == 0
    # The stall: one hole of at least its 5 minutes, filled from the download.
    holes = [(a, b) for a, b in report["gaps"]["ETHBTC"] if b - a >= STALL_MARKET_S * 1e9]
    assert len(holes) == 1 and "the replay used" in run.stdout
    a, b = holes[0]
    assert all(p["reason"] == "data gap" for p in d["pairs"] if a <= p["decided"] < b and p["live"] == "-")
    # Every order the two runs do not share has a named cause.
    assert d["counts"]["paired"] >= 3
    assert all(p["reason"] not in ("", "unexplained") for p in d["pairs"] if "-" in (p["live"], p["replay"]))
