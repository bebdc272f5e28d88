"""Backtest grid: 2 worker processes against the same grid run serially in the same run (issue 20).

A 4 x 4 grid of the EMA crossover (`ema_cross`, fast x slow) over 200,000 one-minute bars
(bench_backtest's seeded random walk), each point a full backtest on the live engines (about
half a second each: a grid of points much shorter than the workers' start gains nothing).
The parallel time includes starting the workers (a forkserver importing the engines), as a
user pays it. Measured: grid points per second with `jobs=2`; baseline: serially, in this
process, in the same run; the ratio is the speed-up (target >= 1.5x on 2 cores; the best is
2x). Both runs must give the same rows, byte for byte.
With --benchmark-disable (the test suite's smoke run): a 2-point grid on 5,000 bars.
"""

from __future__ import annotations

import time
from pathlib import Path

from abidance.backtest.grid import grid_points, run_grid
from abidance.config import parse_config
from benchmarks.bench_backtest import CONFIG, random_walk


def test_grid_speedup_of_two_workers(benchmark, report, tmp_path):
    smoke = benchmark.disabled
    n = 5_000 if smoke else 200_000
    bars = {"BTCUSDT": random_walk(n)[0]}
    cfg = parse_config(CONFIG.format(cls="ema_cross", fast=12, slow=26), Path(tmp_path), env={})
    grid = {"fast": [8, 12], "slow": [26]} if smoke else {"fast": [6, 9, 12, 16], "slow": [26, 40, 60, 90]}
    points = len(grid_points(grid))

    # the serial baseline first: the workers' server process is then started by the parallel run itself
    t0 = time.perf_counter()
    serial = run_grid(cfg, "ema", grid, bars)
    serial_s = time.perf_counter() - t0
    out = {}

    def parallel():
        t0 = time.perf_counter()
        out["rows"] = run_grid(cfg, "ema", grid, bars, jobs=2)
        out["seconds"] = time.perf_counter() - t0
    benchmark.pedantic(parallel, rounds=1, iterations=1)      # one round: it includes starting the workers
    parallel_s = out["seconds"]
    assert [r.to_json() for r in out["rows"]] == [r.to_json() for r in serial]
    report(f"backtest grid, {points} points x {n:,} bars, 2 worker processes", points / parallel_s,
           "points/s", target_kind="min", baseline=("serial, same run", points / serial_s), min_ratio=1.5,
           benchmark=benchmark)
