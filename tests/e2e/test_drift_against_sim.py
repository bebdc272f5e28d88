"""`abidance report drift` on what a real node recorded trading the simulator over sockets.

The node trades ETHBTC (real 5-minute candles replayed as trades at 300x; 1-minute bars built
from them) with every event going to a served store. Two runs, each shared by the checks on it:

- **with faults**: the simulator charges every MARKET fill 100 bps worse than the book level it
  takes (`market_slippage_bps`, recording each fill's book price), answers every order call 20 ms
  late (6 s of market time at 300x), and its streams stall for 5 minutes of market time (one
  second of wall time): the trades of those minutes never reach the node. Right after, the trades
  of the stall are downloaded from the simulator (`abidance download --trades`) and the report
  fills the hole with them. The report must find the hole, name every order the runs do not share
  (no "unexplained"), add up to the PnL difference to the last digit, and its slippage line must
  be the slippage the simulator says it charged, within 5 %;
- **without faults**: no order is unexplained, the residual is zero, and every line that is not
  zero is one of the causes docs/drift.md names ("Against the simulator"): the simulator fills
  MARKET orders from its book, level by level, the replay at the next trade.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from abidance.core import topics
from abidance.exchange.sim.config import MarketConfig, SimConfig
from abidance.exchange.sim.faults import FaultSettings, SlippedFill
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
SPEED = 300.0
STALL_MARKET_S = 300.0
SLIPPAGE_BPS = 100
# The market moves every 20 ms of wall time (6 s of market time at 300x): a minute bar closes
# live at the first trade after the minute, well within the report's pairing window (30 s).
STEP_MS = 20
# Causes a run without faults may differ by (docs/drift.md, "Against the simulator").
SIM_CAUSES = {"slippage", "partial fills and unfilled limits", "latency", "fees"}


@dataclass
class Run:
    report: dict
    stdout: str
    fills: int                       # the node's fills
    slipped: list[SlippedFill]       # what the simulator's slippage fault charged, fill by fill
    spec: object                     # ETHBTC's grid, to read the simulator's ticks and steps

    @property
    def drift(self) -> dict:
        return self.report["strategies"]["eth-ema"]

    @property
    def lines(self) -> dict[str, Decimal]:
        return {k: Decimal(v) for k, v in self.drift["lines"].items()}


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M")


def _accepted(node) -> int:
    return sum(1 for d in node.events[topics.RISK_DECISIONS] if d.accepted)


def _trade_and_report(tmp, faults: FaultSettings, stall: bool, decisions: int) -> Run:
    """A node trades the simulator until it has made `decisions` accepted decisions (with a stall:
    that many before it, two after it), then `report drift` reads back the node's store."""
    candles = shared_data("market", "ETH_BTC-5m.feather")
    args = []
    with ServedStore(tmp / "store") as store:
        sim = RunningSim(SimConfig(seed=41, speed=SPEED, step_ms=STEP_MS, balances={"BTC": Decimal("1")},
                                   markets=[MarketConfig("ETHBTC", "candles", str(candles))], faults=faults))
        venue = sim.server.venue
        cfg = node_config(sim, tmp / "state", BODY, ABIDANCE__STORE__URL=store.url)
        start = time.time_ns()
        node = None
        try:
            node = RunningNode(cfg)
            node.wait_for(lambda: _accepted(node) >= decisions, 60, f"{decisions} accepted live decisions")
            if stall:
                stall_ms = sim.run(venue.clock.now_ms)
                sim.run(lambda: venue.faults.stall(STALL_MARKET_S, venue.clock.now_ms()))
                before = _accepted(node)
                node.wait_for(lambda: _accepted(node) >= before + 2, 60, "two decisions after the stall")
                # The simulator keeps its last 1000 trades: fetch the stall's now, as a user would from Binance.
                now_ms = sim.run(venue.clock.now_ms)
                got = subprocess.run([sys.executable, "-m", "abidance.cli", "download", "--trades", "--symbols",
                                      "ETHBTC", "--start", _iso(stall_ms - 3_600_000), "--end",
                                      _iso(now_ms + 3_600_000), "--venue", "sim", "--rest-url", sim.rest_url,
                                      "--out", str(tmp / "dl")],
                                     cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
                assert got.returncode == 0, got.stderr
                args = ["--trades", f"ETHBTC={tmp / 'dl'}"]
        finally:
            if node is not None:
                node.stop()
            sim.close()
        end = time.time_ns()
        out = tmp / "drift.json"
        run = subprocess.run([sys.executable, "-m", "abidance.cli", "report", "drift", "--store", store.url,
                              "--from", str(start), "--to", str(end), *args, "--json", str(out)],
                             cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return Run(json.loads(out.read_text()), run.stdout, len(node.events[topics.FILLS]),
               list(venue.faults.slipped), venue.exchange.spec("ETHBTC"))


@pytest.fixture(scope="module")
def faulted(tmp_path_factory) -> Run:
    return _trade_and_report(tmp_path_factory.mktemp("faulted"),
                             FaultSettings(rest_latency_ms=20, market_slippage_bps=SLIPPAGE_BPS), True, 3)


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> Run:
    return _trade_and_report(tmp_path_factory.mktemp("clean"), FaultSettings(), False, 4)


def _adds_up(run: Run) -> None:
    d = run.drift
    assert Decimal(d["live_pnl"]) - Decimal(d["replay_pnl"]) == Decimal(d["difference"]) == sum(run.lines.values())
    assert Decimal(d["residual"]) == 0


def _every_difference_named(run: Run) -> None:
    d = run.drift
    assert d["counts"]["paired"] >= 3
    assert all(p["reason"] not in ("", "unexplained") for p in d["pairs"] if "-" in (p["live"], p["replay"]))


def test_drift_of_a_faulted_node_names_every_difference_and_adds_up(faulted):
    report = faulted.report
    assert report["config"].startswith("version 0 by node")           # the config the node recorded at start
    assert report["balances"] == {"BTC": "1.00000000"}                  # and its balances then (the venue's)
    # The node's own fills printed on the tape are not the replay's market.
    assert report["own_trades"]["ETHBTC"] == faulted.fills > 0
    _adds_up(faulted)
    # The stall: one hole of at least its 5 minutes, filled from the download.
    holes = [(a, b) for a, b in report["gaps"]["ETHBTC"] if b - a >= STALL_MARKET_S * 1e9]
    assert len(holes) == 1 and "the replay used" in faulted.stdout
    a, b = holes[0]
    assert all(p["reason"] == "data gap" for p in faulted.drift["pairs"] if a <= p["decided"] < b and p["live"] == "-")
    _every_difference_named(faulted)


def test_drift_slippage_line_is_the_slippage_the_simulator_charged_within_5_percent(faulted):
    spec = faulted.spec
    # The truth from the simulator's own record: what each fill cost against the book level it took.
    truth = sum((spec.qty_dec(f.qty_steps) * (spec.price_dec(f.book_ticks) - spec.price_dec(f.charged_ticks))
                 * (1 if f.side == "BUY" else -1) for f in faulted.slipped), Decimal(0))
    assert len(faulted.slipped) >= faulted.fills > 0       # every fill of the node was charged the fault
    line = faulted.lines["slippage"]
    assert truth < 0 and abs(line - truth) <= abs(truth) * Decimal("0.05"), (line, truth)


def test_drift_without_faults_is_explained_by_the_documented_causes_only(clean):
    assert clean.slipped == [] and clean.fills > 0
    _adds_up(clean)
    _every_difference_named(clean)
    assert not any(p["reason"] for p in clean.drift["pairs"]), clean.drift["pairs"]   # no order in one run only
    assert {k for k, v in clean.lines.items() if v} <= SIM_CAUSES, clean.lines
