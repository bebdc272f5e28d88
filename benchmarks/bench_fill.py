"""Backtest fill path: the cost of one fill (issue 17, target <= 5 us per fill).

The same bars (benchmarks/bench_backtest.py's seeded random walk) through the engine twice:
a strategy that trades at every bar (buys when flat, sells what it holds: one fill per bar,
each through the live path: signal, risk decision, order events, venue fill, booking) and
the same strategy told never to trade. The difference, per fill, is what an order costs;
the never-trading run's cost per bar is printed beside it, from the same run.
"""

from __future__ import annotations

import time
from decimal import Decimal

from abidance.backtest.engine import Backtest, sim_instruments
from benchmarks.bench_backtest import random_walk
from tests.unit.backtest.kit import config

STRATEGY = '''
[[strategies]]
id = "every"
class = "kit_strategies:EveryBar"
symbols = ["BTCUSDT"]
timeframe = "1m"
params = {{ trade = {trade} }}
'''


RISK = 'sizing = "fixed_quote"\nfixed_quote = "1000"\norders_per_10s = 0\norders_per_day = 0'      # a fill every bar


def run(cfg, bars) -> tuple[float, object]:
    t0 = time.perf_counter()
    result = Backtest(cfg, {"BTCUSDT": bars}, instruments=sim_instruments(),
                      balances={"USDT": Decimal(100_000_000)}).run()     # fees never run it out
    return time.perf_counter() - t0, result


def test_backtest_cost_per_fill(benchmark, report, tmp_path):
    n = 2_000 if benchmark.disabled else 200_000
    bars, _ = random_walk(n)
    trading, quiet = (config(tmp_path, strategies=STRATEGY.format(trade=t), risk=RISK) for t in (1, 0))
    best = {}
    for _ in range(1 if benchmark.disabled else 3):        # best of 3, each pair in the same turn
        for name, cfg in (("trading", trading), ("quiet", quiet)):
            seconds, result = run(cfg, bars)
            if name not in best or seconds < best[name][0]:
                best[name] = (seconds, result)
    (t_trade, traded), (t_quiet, silent) = best["trading"], best["quiet"]
    fills = len(traded.fills)
    assert not silent.fills and fills >= n - 2, f"{fills} fills over {n} bars: the strategy should fill every bar"
    per_fill_us = (t_trade - t_quiet) / fills * 1e6
    benchmark.extra_info.update(bars=n, fills=fills, trading_s=t_trade, quiet_s=t_quiet)
    report(f"backtest cost per fill ({fills:,} fills over {n:,} bars)", per_fill_us, "us", target=5.0,
           baseline=("a bar without a fill", t_quiet / n * 1e6), benchmark=benchmark)
    benchmark.pedantic(lambda: None, rounds=1)
