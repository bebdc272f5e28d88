"""`abidance report drift`: live against a replay of the same window, explained (docs/drift.md)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from abidance.backtest.data import load_candle_args, load_trade_args, parse_balances, trades_from_frame
from abidance.backtest.engine import sim_instruments
from abidance.backtest.instruments import research_instruments
from abidance.config import ConfigError, load_config
from abidance.drift.calibrate import config_snippet
from abidance.drift.figures import html_report
from abidance.drift.report import drift_report
from abidance.extras import require
from abidance.store.client import connect, redact
from abidance.store.reader import to_ns


def add_parser(sub) -> None:
    report = sub.add_parser("report", help="reports over what the node recorded (drift: live against backtest)")
    kinds = report.add_subparsers(dest="report", required=True, metavar="REPORT")
    p = kinds.add_parser("drift", help="replay a window the node traded and explain live minus replay PnL",
                         description=__doc__)
    p.add_argument("--store", required=True, metavar="URL", help="the store the node wrote (http://..., chdb:///dir)")
    p.add_argument("--database", default="abidance", help="its database (default abidance)")
    p.add_argument("--from", dest="start", required=True, metavar="T0",
                   help="window start: ISO time (UTC) or ns since the epoch")
    p.add_argument("--to", dest="end", required=True, metavar="T1", help="window end, exclusive (ISO time, UTC)")
    p.add_argument("--strategy", metavar="ID", help="only this strategy")
    p.add_argument("--config", metavar="FILE", help="the node's config (default: the version recorded in the store)")
    p.add_argument("--candles", action="append", metavar="SYMBOL=FILE",
                   help="candles to fill holes in the recorded bars with (repeatable); the report names each hole")
    p.add_argument("--trades", action="append", metavar="SYMBOL=FILE",
                   help="trades to fill holes in the recorded trades with (repeatable): a file in the recorded-trades "
                        "layout, or the folder `abidance download --trades --out DIR` wrote")
    p.add_argument("--balance", action="append", metavar="ASSET=AMOUNT",
                   help="starting balances of the replay (default: the node's recorded snapshot, else the config's)")
    p.add_argument("--match-window-s", type=float, metavar="S",
                   help="decisions this close pair up (default: half the shortest strategy timeframe)")
    p.add_argument("--calibrate", metavar="FILE", help="also fit the backtest's fill model to the live fills, "
                   "replay again with it, and write the fitted [backtest] section to FILE")
    p.add_argument("--html", metavar="FILE", help="also write the report as one HTML file (the waterfall, both "
                   "PnL curves, the lines, the orders side by side; needs plotly)")
    p.add_argument("--json", metavar="FILE", help="also write the report as JSON (amounts as exact strings)")
    p.set_defaults(func=main)


def _time(text: str) -> int:
    """An ISO time (UTC unless it says otherwise), or integer nanoseconds since the epoch."""
    return int(text) if text.isdigit() else to_ns(text)


def given_trades(items, instruments: dict) -> dict[str, list]:
    """--trades SYMBOL=FILE (the backtester's recorded-trades files) or SYMBOL=DIR (a download folder)."""
    out, files = {}, []
    for item in items:
        symbol, _, path = item.partition("=")
        symbol = symbol.strip().upper()
        if symbol in instruments and Path(path).is_dir():
            # Lazy: the downloaded day files are Parquet (pyarrow, the store extra); only this path reads them.
            from abidance.download.trades import load_trades

            out[symbol] = trades_from_frame(load_trades(path, symbol), symbol, instruments[symbol])
        else:
            files.append(item)
    return {**out, **(load_trade_args(files, instruments) if files else {})}


def main(args) -> int:
    require("report drift", "store")
    try:
        config = load_config(args.config) if args.config else None
        # The config's own instruments (exchangeInfo file, [[instruments]]) beside the simulator's.
        instruments = research_instruments(config)[0] if config is not None else sim_instruments()
        start, end = _time(args.start), _time(args.end)
        if end <= start:
            raise ValueError(f"--to ({args.end}) must be after --from ({args.start})")
        candles = load_candle_args(args.candles, None, instruments) if args.candles else None
        trades = given_trades(args.trades, instruments) if args.trades else None
        balances = parse_balances(args.balance) if args.balance else None
    except ConfigError as exc:
        print("abidance report drift: bad config:\n  " + "\n  ".join(exc.errors), file=sys.stderr)
        return 2
    except (ValueError, FileNotFoundError) as exc:
        print(f"abidance report drift: {exc}", file=sys.stderr)
        return 2
    try:
        client = connect(args.store, args.database)
        window = None if args.match_window_s is None else int(args.match_window_s * 1e9)
        report = drift_report(client, args.database, start, end, config=config, strategy=args.strategy,
                              instruments=instruments, candles=candles, trades=trades, balances=balances,
                              tolerance_ns=window, calibrate=bool(args.calibrate))
    except ValueError as exc:
        print(f"abidance report drift: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - a store that cannot be read (or a row it holds) is named, not traced
        print(f"abidance report drift: reading {redact(args.store)} ({args.database}): {type(exc).__name__}: {exc}",
              file=sys.stderr)
        return 2
    print(report.text(), end="")
    if args.json:
        Path(args.json).write_text(json.dumps(report.as_json(), indent=1))
    if args.html:
        Path(args.html).write_text(html_report(report))
    if args.calibrate:
        Path(args.calibrate).write_text(config_snippet(report.fits))
    return 0
