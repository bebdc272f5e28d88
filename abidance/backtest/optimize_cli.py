"""`abidance optimize`: search a strategy's declared parameter ranges on recorded candles (Optuna)."""

from __future__ import annotations

import json
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path

from abidance.backtest.data import load_candle_args, parse_balances
from abidance.backtest.instruments import add_exchange_info_argument, command_instruments
from abidance.backtest.optimize import (RunSettings, format_pruned, format_walk_forward, optimize, search_space,
                                        strategy_class, study_storage, walk_forward)
from abidance.config import ConfigError, load_config
from abidance.extras import require


def add_parser(sub) -> None:
    p = sub.add_parser("optimize", help="search a strategy's parameter ranges over recorded candles (Optuna)",
                       description="Optimise one strategy of the config: each trial is a backtest on the live "
                                   "engines; random or TPE (Bayesian) search inside the ranges the strategy declares; "
                                   "resumable with --study-db; walk-forward with --walk-forward.")
    p.add_argument("--config", required=True, help="node config TOML (strategies, risk)")
    p.add_argument("--strategy", required=True, metavar="ID", help="the id of the strategy to optimise")
    p.add_argument("--candles", action="append", required=True, metavar="SYMBOL=FILE",
                   help="candles for a symbol (feather/parquet/csv with date, open, high, low, close, volume)")
    p.add_argument("--interval", help="the candles' interval (default: the file's own, from its dates; "
                   "a different one is refused)")
    p.add_argument("--trials", type=int, default=50, help="trials to run (added to a resumed study; default 50)")
    p.add_argument("--sampler", choices=("tpe", "random"), default="tpe", help="search (default tpe: Bayesian)")
    p.add_argument("--objective", choices=("sharpe", "sortino", "calmar", "return_dd"), default="sharpe",
                   help="maximised: sharpe, sortino, calmar (CAGR / max drawdown), return_dd "
                        "(total return - penalty x max drawdown); default sharpe")
    p.add_argument("--dd-penalty", type=float, default=1.0, help="drawdown penalty of return_dd (default 1.0)")
    p.add_argument("--jobs", type=int, default=1, help="backtests run in parallel processes (default 1)")
    p.add_argument("--study-db", help="SQLite file holding the study: a second run resumes it")
    p.add_argument("--storage", metavar="URL",
                   help="where the study lives, shared by every worker that names it: journal:///FILE (no server), "
                        "sqlite:///FILE, or postgresql://USER:PASSWORD@HOST/DB for workers on many machines "
                        "(instead of --study-db)")
    p.add_argument("--study-name", help="study name in --study-db (default STRATEGY-OBJECTIVE)")
    p.add_argument("--seed", type=int, default=0, help="sampler seed (default 0)")
    p.add_argument("--balance", action="append", default=[], metavar="ASSET=AMOUNT",
                   help="starting balance (default 10000 of the quote asset)")
    p.add_argument("--fee-bps", default="10", help="taker and maker fee in bps (default 10 = 0.1 %%)")
    p.add_argument("--slippage-bps", default="0", help="market-order slippage in bps (default 0)")
    p.add_argument("--min-trades", type=int, default=1, metavar="N",
                   help="a trial with fewer fills is pruned, never best (default 1)")
    p.add_argument("--min-round-trips", type=int, default=1, metavar="N",
                   help="a trial with fewer closed round trips is pruned, never best (default 1)")
    p.add_argument("--out", help="write the best parameters (or the walk-forward rows) here as JSON")
    p.add_argument("--walk-forward", metavar="TRAIN_BARS:TEST_BARS[:anchored]",
                   help="walk-forward: optimise --trials on each train window, score on the next test window")
    add_exchange_info_argument(p)
    p.set_defaults(func=main)


def _walk_spec(text: str) -> tuple[int, int, bool]:
    parts = text.split(":")
    if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] not in ("anchored", "rolling")):
        raise ValueError(f"--walk-forward {text!r}: expected TRAIN_BARS:TEST_BARS[:anchored]")
    train, test = int(parts[0]), int(parts[1])
    if train <= 0 or test <= 0:
        raise ValueError(f"--walk-forward {text!r}: bar counts must be positive")
    return train, test, len(parts) == 3 and parts[2] == "anchored"


def main(args) -> int:
    require("optimize", "optimize")

    try:
        config = load_config(args.config)
        balances = parse_balances(args.balance)
        fee, slip = Decimal(args.fee_bps), Decimal(args.slippage_bps)
        walk = _walk_spec(args.walk_forward) if args.walk_forward else None
        if args.trials <= 0 or args.jobs <= 0:
            raise ValueError("--trials and --jobs must be positive")
        if args.min_trades < 0 or args.min_round_trips < 0:
            raise ValueError("--min-trades and --min-round-trips must be >= 0")
        space = search_space(strategy_class(config, args.strategy))
    except ConfigError as exc:
        print("abidance optimize: bad config:\n  " + "\n  ".join(exc.errors), file=sys.stderr)
        return 2
    except InvalidOperation as exc:
        print(f"abidance optimize: not a decimal: {exc}", file=sys.stderr)
        return 2
    except (KeyError, ValueError) as exc:
        print(f"abidance optimize: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return 2
    if not space:
        print(f"abidance optimize: strategy {args.strategy!r} declares no parameter range", file=sys.stderr)
        return 2
    config, instruments = command_instruments("optimize", config, args.exchange_info)
    if instruments is None:
        return 2
    try:
        bars = load_candle_args(args.candles, args.interval, instruments)
    except ValueError as exc:
        print(f"abidance optimize: {exc}", file=sys.stderr)
        return 2
    settings = RunSettings(args.objective, args.dd_penalty, balances or None, fee, slip, args.min_trades,
                           args.min_round_trips)
    print(f"searching {args.strategy}: " + ", ".join(f"{n} in [{s.low}, {s.high}]" if not s.choices else
                                                      f"{n} in {list(s.choices)}" for n, s in space.items()))
    if walk:
        train, test, anchored = walk
        rows = walk_forward(config, args.strategy, bars, train, test, anchored, args.trials, args.objective,
                            sampler=args.sampler, jobs=args.jobs, seed=args.seed, settings=settings,
                            instruments=instruments)
        if not rows:
            print("abidance optimize: not enough bars for one train + test window", file=sys.stderr)
            return 2
        print(format_walk_forward(rows, args.objective))
        if args.out:
            _write(args.out, {"strategy": args.strategy, "objective": args.objective, "anchored": anchored,
                              "train_bars": train, "test_bars": test, "windows": [r.as_dict() for r in rows]})
        return 0
    if args.storage and args.study_db:
        print("abidance optimize: give --storage or --study-db, not both", file=sys.stderr)
        return 2
    try:
        storage = study_storage(args.storage or (f"sqlite:///{Path(args.study_db).resolve()}" if args.study_db
                                                 else None))
    except ValueError as exc:
        print(f"abidance optimize: {exc}", file=sys.stderr)
        return 2
    result = optimize(config, args.strategy, bars, n_trials=args.trials, sampler=args.sampler,
                      objective=args.objective, jobs=args.jobs, storage=storage, study_name=args.study_name,
                      seed=args.seed, settings=settings, instruments=instruments)
    print(f"study {result.study_name}: {result.trials} trials ({result.complete} complete, {result.pruned} pruned, "
          f"{result.failed} failed)")
    if result.pruned_reasons:
        print(f"pruned: {format_pruned(result.pruned_reasons)}")
    if result.best_params is None:
        print("no trial produced a score: see the pruning reasons above")
    else:
        best = result.best_summary or {}
        print(f"best {args.objective}: {result.best_value:.4f} ({best.get('fills')} fills, "
              f"{best.get('round_trips')} round trips, total return {best.get('total_return')})")
        print(f"best params: {json.dumps(result.best_params)}")
    if args.out:
        _write(args.out, {"strategy": args.strategy, "study_db": args.study_db, **result.as_dict()})
    return 0 if result.best_params is not None else 1


def _write(path: str, data: dict) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, default=str)
    print(f"written: {path}")
