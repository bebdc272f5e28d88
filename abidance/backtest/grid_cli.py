"""`abidance backtest ... --grid PARAM=V1,V2 --jobs N`: the grid part of the backtest command."""

from __future__ import annotations

import sys

from abidance.backtest.grid import parse_grid, run_grid
from abidance.backtest.optimize import strategy_class
from abidance.extras import require

COLUMNS = ("total_return", "sharpe", "max_drawdown", "round_trips")


def _fail(message: str) -> int:
    print(f"abidance backtest: {message}", file=sys.stderr)
    return 2


def grid_main(args, config, bars, fill, balances) -> int:
    if not args.grid:
        return _fail("--jobs and --cluster run a grid: give --grid PARAM=v1,v2,...")
    if bars is None:
        return _fail("--grid runs on candles (--candles)")
    if args.report or args.to_store or args.lookahead_check:
        return _fail("--grid writes rows, not a report, a store or a look-ahead check: run the chosen "
                     "parameters alone for those")
    ids = [s.id for s in config.strategies]
    sid = args.strategy or (ids[0] if len(ids) == 1 else None)
    if sid is None:
        return _fail(f"--grid needs --strategy: the config has {len(ids)} strategies ({', '.join(ids) or 'none'})")
    if sid not in ids:
        return _fail(f"--strategy {sid!r}: not in the config (has: {', '.join(ids) or 'none'})")
    if args.cluster:
        require("backtest --cluster", "grid")
    try:
        grid = parse_grid(args.grid, strategy_class(config, sid))
        rows = run_grid(config, sid, grid, bars, jobs=args.jobs, cluster=args.cluster, fill=fill,
                        balances=balances or None)
    except (ValueError, OSError) as exc:
        return _fail(str(exc))
    names = list(grid)
    print("  ".join([f"{n:>10}" for n in names] + [f"{'final_equity':>22}"] + [f"{c:>12}" for c in COLUMNS]))
    for row in rows:
        cells = [f"{row.params[n]!s:>10}" for n in names]
        if row.invalid:
            print("  ".join(cells) + f"  invalid: {row.invalid}")
            continue
        values = [row.summary.get(c) for c in COLUMNS]
        print("  ".join(cells + [f"{row.final_equity!s:>22}"] +
                        [f"{'-' if v is None else (f'{v:.4f}' if isinstance(v, float) else v)!s:>12}" for v in values]))
    if args.out:
        with open(args.out, "wb") as f:
            for row in rows:
                f.write(row.to_json() + b"\n")
        print(f"rows: {args.out}")
    return 0
