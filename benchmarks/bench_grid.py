"""Backtest grid: 2 worker processes against the same grid run serially in the same run (issue 20).

A 4 x 4 grid of the EMA crossover (`ema_cross`, fast x slow) over real ETH/BTC 5-minute
candles (../shared/data/market, 5760 bars), each point a full backtest on the live engines.
The parallel time includes starting the workers (spawned interpreters importing abidance),
as a user pays it. Measured: grid points per second with `jobs=2`; baseline: serially, in
this process, in the same run; the ratio is the speed-up (target >= 1.5x on 2 cores; the
best is 2x). Both runs must give the same rows, byte for byte.
With --benchmark-disable (the test suite's smoke run): a 2-point grid on 1500 bars.
"""

from __future__ import annotations

import time
from decimal import Decimal

import pandas as pd

from abidance.backtest.data import bars_from_frame
from abidance.backtest.engine import sim_instruments
from abidance.backtest.grid import grid_points, run_grid
from abidance.config import parse_config
from tests.kit import shared_data
from tests.unit.backtest.test_cli import CONFIG

BALANCES = {"BTC": Decimal(1)}


def test_grid_speedup_of_two_workers(benchmark, report, tmp_path):
    smoke = benchmark.disabled
    frame = pd.read_feather(shared_data("market", "ETH_BTC-5m.feather"))
    frame = frame.iloc[:1500] if smoke else frame
    bars = {"ETHBTC": bars_from_frame(frame, "ETHBTC", "5m", sim_instruments()["ETHBTC"])}
    cfg = parse_config(CONFIG, tmp_path, env={})
    grid = {"fast": [8, 12], "slow": [26]} if smoke else {"fast": [6, 9, 12, 16], "slow": [26, 40, 60, 90]}
    points = len(grid_points(grid))

    # the serial baseline first: the workers' server process is then started by the parallel run itself
    t0 = time.perf_counter()
    serial = run_grid(cfg, "ema", grid, bars, balances=BALANCES)
    serial_s = time.perf_counter() - t0
    out = {}

    def parallel():
        t0 = time.perf_counter()
        out["rows"] = run_grid(cfg, "ema", grid, bars, jobs=2, balances=BALANCES)
        out["seconds"] = time.perf_counter() - t0
    benchmark.pedantic(parallel, rounds=1, iterations=1)      # one round: it includes starting the workers
    parallel_s = out["seconds"]
    assert [r.to_json() for r in out["rows"]] == [r.to_json() for r in serial]
    report(f"backtest grid, {points} points x {len(frame):,} bars, 2 worker processes", points / parallel_s,
           "points/s", target_kind="min", baseline=("serial, same run", points / serial_s), min_ratio=1.5,
           benchmark=benchmark)
