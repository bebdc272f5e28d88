"""`abidance backtest`: the node's config and strategies over recorded candles, trades or depth."""

from __future__ import annotations

import sys
import tempfile
from decimal import Decimal, InvalidOperation
from pathlib import Path

from abidance.backtest.data import load_candle_args, load_depth_args, load_trade_args, parse_balances
from abidance.backtest.engine import run_backtest
from abidance.backtest.grid_cli import grid_main
from abidance.backtest.instruments import add_exchange_info_argument, command_instruments
from abidance.backtest.lookahead import lookahead_check
from abidance.backtest.preflight import input_problems, no_fill_reason
from abidance.config import ConfigError, load_config
from abidance.core import topics
from abidance.core.loop import run
from abidance.exchange.backtest.venue import FillModel
from abidance.extras import require
from abidance.store.client import connect
from abidance.store.migrations import apply_migrations


def add_parser(sub) -> None:
    p = sub.add_parser("backtest", help="run the node's strategies over recorded candles (the live engines)",
                       description="Backtest on the live engines: strategies, risk, execution and portfolio under "
                                   "a simulated clock and venue (docs/backtest.md).")
    p.add_argument("--config", required=True, help="node config TOML (strategies, risk)")
    p.add_argument("--candles", action="append", metavar="SYMBOL=FILE",
                   help="candles for a symbol (feather/parquet/csv with date, open, high, low, close, volume)")
    p.add_argument("--trades", action="append", metavar="SYMBOL=FILE",
                   help="recorded trades for a symbol (timestamp ms, id, side, price, amount): bars are built "
                        "from them as live and orders fill at the next trade")
    p.add_argument("--depth", action="append", metavar="SYMBOL=FOLDER",
                   help="recorded order-book depth for a symbol (FOLDER/<symbol>-depth-snap.csv and "
                        "-depth-update.csv, with <symbol>-trades.csv when present, as `abidance stream --record` "
                        "writes them): the data engine keeps the book as live and orders fill on it")
    p.add_argument("--interval", help="the candles' interval (default: the file's own, from its dates; "
                   "a different one is refused)")
    p.add_argument("--off-grid", choices=("round", "refuse"), default="round",
                   help="candle values off the instrument's tick or step: round them and say how many (default), "
                        "or refuse naming the row")
    p.add_argument("--nan", choices=("refuse", "drop"), default="refuse",
                   help="candle rows with a missing value: refuse naming the row (default) or drop them")
    p.add_argument("--balance", action="append", default=[], metavar="ASSET=AMOUNT",
                   help="starting balance (default 10000 of the quote asset)")
    # The fill model comes from the config's [backtest] section; these flags override it.
    p.add_argument("--fee-bps", help="taker and maker fee in bps for every symbol (config: backtest.taker_bps, "
                   "maker_bps and the per-symbol tables; default 10 = 0.1 %%)")
    p.add_argument("--slippage-bps", help="market-order slippage in bps (config: backtest.slippage_bps)")
    p.add_argument("--participation", help="fill at most this share of a bar's volume per bar (partial fills)")
    p.add_argument("--latency-ms", type=int, help="orders reach only bars opening this long after")
    p.add_argument("--spread-bps", help="market orders also pay half this spread")
    p.add_argument("--report", help="write an HTML report here")
    p.add_argument("--to-store", metavar="URL", help="also write every event into this store (an `abidance store` "
                   "or a ClickHouse server), in the database given by --store-database")
    p.add_argument("--store-database", default="backtest", help="database for --to-store (default 'backtest'; "
                   "view it with ABIDANCE_STORE_DATABASE=... abidance dashboard)")
    p.add_argument("--lookahead-check", type=int, nargs="?", const=-1, default=0, metavar="CUTS",
                   help="also re-run on the data cut at each bar where a signal changes (CUTS: at most that many "
                        "of them, spread evenly) and flag any signal that changes; strategy code reaching files, "
                        "sockets or programs also fails it (docs/backtest.md, 'No look-ahead')")
    add_exchange_info_argument(p)
    g = p.add_argument_group("parameter grid (docs/backtest.md)")
    g.add_argument("--grid", action="append", metavar="PARAM=V1,V2,...",
                   help="backtest every combination of these values of one strategy's parameters (repeatable; "
                        "on candles); prints one row per combination")
    g.add_argument("--strategy", help="the strategy the grid varies (default: the config's only strategy)")
    g.add_argument("--jobs", type=int, default=1, help="run the grid's backtests in this many worker processes")
    g.add_argument("--cluster", metavar="dask://HOST:PORT",
                   help="run the grid on a Dask cluster's workers instead (the grid extra)")
    g.add_argument("--out", help="also write the grid's rows here, one JSON object per line")
    p.set_defaults(func=main)


def _dec(text):
    return Decimal(text) if text is not None else None


def main(args) -> int:
    require("backtest", "backtest")
    # Lazy: the report draws with plotly (the backtest extra, checked just above).
    from abidance.backtest.report import html_report, summarize
    try:
        config = load_config(args.config)
        balances = parse_balances(args.balance)
        fee = Decimal(args.fee_bps) if args.fee_bps is not None else None
        fill = FillModel.from_config(
            config.backtest, slippage_bps=_dec(args.slippage_bps), spread_bps=_dec(args.spread_bps),
            participation=_dec(args.participation), latency_ms=args.latency_ms,
            **({"taker_bps": fee, "maker_bps": fee, "taker_by_symbol": {}, "maker_by_symbol": {}} if fee is not None
               else {}))
    except ConfigError as exc:
        print("abidance backtest: bad config:\n  " + "\n  ".join(exc.errors), file=sys.stderr)
        return 2
    except InvalidOperation as exc:
        print(f"abidance backtest: not a decimal: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"abidance backtest: {exc}", file=sys.stderr)
        return 2
    config, instruments = command_instruments("backtest", config, args.exchange_info)
    if instruments is None:
        return 2
    if bool(args.candles) + bool(args.trades or args.depth) != 1:
        print("abidance backtest: give --candles, or --trades and/or --depth (candles are bars already: not both)",
              file=sys.stderr)
        return 2
    try:
        depth = None
        if args.depth:
            depth, recorded = load_depth_args(args.depth, instruments)
            trades = {**recorded, **(load_trade_args(args.trades, instruments) if args.trades else {})}
            bars = None
        elif args.trades:
            trades, bars = load_trade_args(args.trades, instruments), None
        else:
            trades, bars = None, load_candle_args(args.candles, args.interval, instruments, off_grid=args.off_grid,
                                                  nan=args.nan)
    except ValueError as exc:
        print(f"abidance backtest: {exc}", file=sys.stderr)
        return 2
    for symbol, series in (bars or {}).items():
        if getattr(series, "rounded", 0):
            grid = instruments[symbol].filters
            print(f"note: {series.rounded} candle values of {symbol} rounded to its grid (tick "
                  f"{grid.price_fp.increment}, step {grid.qty_fp.increment}); --off-grid refuse refuses them",
                  file=sys.stderr)
    interval = next((b[0].interval for b in bars.values() if b), None) if bars else None
    problems = input_problems(config, list(depth or trades or bars), instruments, interval)
    if problems:
        print("abidance backtest: this run could not trade:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 2

    if args.grid or args.jobs != 1 or args.cluster:
        return grid_main(args, config, bars, fill, balances)
    unit = "events" if depth else "trades" if trades else "bars"

    def progress(done: int, total: int) -> None:
        if sys.stderr.isatty() and (done == total or done % max(1, total // 50) == 0):
            filled = 40 * done // total
            print(f"\r[{'#' * filled}{'.' * (40 - filled)}] {done}/{total} {unit}", end="", file=sys.stderr,
                  flush=True)

    store = None
    if args.to_store:
        try:
            apply_migrations(connect(args.to_store, "default").command, args.store_database)
        except Exception as exc:  # noqa: BLE001 - report the store problem, do not trace
            print(f"abidance backtest: store {args.to_store}: {exc}", file=sys.stderr)
            return 2
        store = (lambda: connect(args.to_store, args.store_database), args.store_database,
                 Path(tempfile.mkdtemp(prefix="abidance-backtest-spool-")))
    built: dict[str, list] = {}        # on trades: the bars the engines built, for the report's chart

    def collect(bus) -> None:
        bus.subscribe(topics.BARS, lambda bar: built.setdefault(bar.symbol, []).append(bar))

    result = run(run_backtest(config, bars, trades=trades if trades or not depth else None, depth=depth,
                              instruments=instruments, balances=balances or None, store=store, fill=fill,
                              progress=progress, on_bus=collect if trades or depth else None))
    symbols = list(depth or trades or bars)
    chart_bars = bars or {s: [b for b in built.get(s, []) if b.interval == config.strategies[0].timeframe]
                          for s in symbols} if config.strategies else bars or built
    if sys.stderr.isatty():
        print(file=sys.stderr)
    for access in result.outside_access:
        print(f"OUTSIDE THE ENGINE: strategy code at {access.describe()}", file=sys.stderr)
    why = no_fill_reason(result)
    if why:
        print(f"abidance backtest: {why}", file=sys.stderr)
        return 2
    summary = summarize(result)
    for key, value in summary.items():
        print(f"{key:>16}: {value if not isinstance(value, float) else f'{value:.4f}'}")
    if args.report:
        html_report(result, chart_bars, summary, args.report, instruments)
        print(f"report: {args.report}")
    if args.lookahead_check and (trades or depth):
        print("look-ahead check: runs on candles (--candles), not on trades", file=sys.stderr)
        return 2
    if args.lookahead_check:
        checked: list[int] = []
        changed = run(lookahead_check(config, bars, cuts=None if args.lookahead_check < 0 else args.lookahead_check,
                                      checked=checked, instruments=instruments, balances=balances or None, fill=fill))
        for c in changed:
            print(f"LOOK-AHEAD: with data cut at {c.cut_ns} the signal at {c.ts_event} changed: {c.full} -> "
                  f"{c.truncated}")
        print(f"look-ahead check: {len(changed)} of {len(checked)} cuts (bars where a signal changes) changed a past "
              f"signal; {len(result.outside_access)} accesses outside the engine")
        if changed or result.outside_access:
            return 1
    return 0
