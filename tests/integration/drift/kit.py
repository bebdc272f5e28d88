"""A recorded run for drift reports: the kernel trading real XRP/ETH trades with a venue that slips,
lags, fills in parts and misses a stretch of the feed, every event written to a served store."""

from __future__ import annotations

import asyncio
import bisect
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


def market(n: int | None = TRADES):
    """The first `n` real trades (None: all of them), the config, the sim's instruments."""
    instruments = sim_instruments()
    trades = load_trade_args([f"XRPETH={trades_file()}"], instruments)["XRPETH"][:n]
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


def truths(result, trades, instruments, slippage_bps: Decimal) -> dict[str, Decimal]:
    """Slippage, latency and partial-fill amounts of the live run, from the injected model and the
    real trades (all of them: the market moved during the stall too): each fill's market price is
    the trade it filled at (before the slippage moved it), the market at a decision the next trade."""
    tick = instruments["XRPETH"].filters.price_fp.increment
    slip = slippage_bps / 10_000
    by_ts: dict[int, list[Decimal]] = {}
    for t in trades:
        by_ts.setdefault(t.ts_trade, []).append(tick * t.price)
    times = sorted(by_ts)

    def unslipped(fill) -> Decimal:
        moved = lambda m: (m * (1 + slip if fill.side == "BUY" else 1 - slip)).quantize(tick)   # noqa: E731
        return next(m for m in by_ts[fill.ts_event] if moved(m) == fill.price)

    def next_price(ts: int) -> Decimal:
        return by_ts[times[bisect.bisect_left(times, ts)]][0]

    decided = {d.client_order_id: d.ts_event for d in result.decisions if d.accepted}
    orders: dict[str, list] = {}
    for f in result.fills:
        orders.setdefault(f.client_order_id, []).append(f)
    out = {"slippage": Decimal(0), "latency": Decimal(0), "partial": Decimal(0)}
    for cid, fills in orders.items():
        s = 1 if fills[0].side == "BUY" else -1
        m = [unslipped(f) for f in fills]
        q = sum((f.quantity for f in fills), Decimal(0))
        out["slippage"] += sum((s * f.quantity * (mi - f.price) for f, mi in zip(fills, m)), Decimal(0))
        out["latency"] += s * q * (next_price(decided[cid]) - m[0])
        out["partial"] += sum((s * f.quantity * (m[0] - mi) for f, mi in zip(fills, m)), Decimal(0))
    return out
