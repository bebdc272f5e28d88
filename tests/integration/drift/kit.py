"""A recorded run for drift reports: the kernel trading real XRP/ETH trades with a venue that slips,
lags, fills in parts and misses a stretch of the feed, every event written to a served store."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from decimal import Decimal

from abidance.backtest.data import load_trade_args
from abidance.backtest.engine import Backtest, run_backtest, sim_instruments
from abidance.config import parse_config
from abidance.store.client import connect
from abidance.store.migrations import apply_migrations
from tests.kit import PROJECT_ROOT, shared_data

# The shipped XRPETH example (docs/backtest.md) with a replay model of no slippage (the injected
# effects are then the whole drift), a faster EMA pair and small orders (more of them, each filled
# within seconds).
CONFIG = (PROJECT_ROOT / "config" / "backtest-xrpeth-1m.toml").read_text() \
    .replace('slippage_bps = "2"', 'slippage_bps = "0"').replace("fast = 12, slow = 26", "fast = 3, slow = 8") \
    .replace('fixed_quote = "1"', 'fixed_quote = "0.05"')
BALANCES = {"ETH": Decimal(10)}
TRADES = 3000                  # the first 3000 real trades (about 13 hours)
STALL_NS = 300_000_000_000     # the feed stall: 5 minutes of trades the node never received


def trades_file():
    return shared_data("market", "XRP_ETH-trades.feather")


def market():
    """The real trades, the config, the sim's instruments."""
    instruments = sim_instruments()
    trades = load_trade_args([f"XRPETH={trades_file()}"], instruments)["XRPETH"][:TRADES]
    return trades, parse_config(CONFIG, PROJECT_ROOT), instruments


def stall_window(config, trades, instruments) -> tuple[int, int]:
    """Five minutes starting one minute before a decision in the middle of the clean run."""
    clean = Backtest(config, trades={"XRPETH": trades}, instruments=instruments, balances=BALANCES).run()
    accepted = [d.ts_event for d in clean.decisions if d.accepted]
    start = accepted[len(accepted) // 2] - 60_000_000_000
    return start, start + STALL_NS


def record(url: str, database: str, config, trades, instruments, spool, **faults):
    """The run as the node records it: every event into `database` of the store at `url`."""
    apply_migrations(connect(url, "default").command, database)
    return asyncio.run(run_backtest(config, trades={"XRPETH": trades}, instruments=instruments,
                                    balances=BALANCES, store=(lambda: connect(url, database), database, spool),
                                    **faults))


def report_drift(url: str, database: str, trades, tmp_path, *extra: str) -> tuple[dict, str]:
    """`abidance report drift` as a user runs it; its JSON and its printed text."""
    cfg = tmp_path / "node.toml"
    cfg.write_text(CONFIG)
    out = tmp_path / f"{database}.json"
    start, end = trades[0].ts_trade, trades[-1].ts_trade + 1
    run = subprocess.run([sys.executable, "-m", "abidance.cli", "report", "drift", "--store", url, "--database",
                          database, "--from", _iso(start), "--to", _iso(end), "--config", str(cfg),
                          "--balance", "ETH=10", "--json", str(out), *extra],
                         cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return json.loads(out.read_text()), run.stdout


def _iso(ns: int) -> str:
    """ISO time with nanoseconds (the report's --from/--to)."""
    from datetime import datetime, timezone

    whole = datetime.fromtimestamp(ns // 1_000_000_000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{whole}.{ns % 1_000_000_000:09d}Z"
