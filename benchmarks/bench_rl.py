"""RL environment throughput: the vectorised env, the engine-backed env, and a pandas baseline.

Data: the real ETH/BTC 5-minute candles in ../shared/data/market (5760 bars, the
environments' warm window is 5725 of them); without them a seeded random walk of the same
length. Settings as training uses them: 1 BTC, 10 bps taker fee, 5 bps slippage, 98 % sizing.

Figures (steps = one environment transition; see conftest.report):
  1. TradingVecEnv.step, steps/s over all sub-environments, 1024 sub-environments (target
     >= 1M steps/s), and 16 / 256 beside it (what a per-step Python call costs at small N).
     Actions: uniformly random every step (half the sub-environments trade each step: the
     costliest case for the masked buy/sell code).
  2. EngineTradingEnv.step (the live node's engines under Backtest, one episode over the
     whole series, reset included), target >= 100k steps/s, for three policies: hold long
     (1 trade), long/flat spells of 20 bars on average (~290 trades), random every step
     (~2900 trades); each trade runs the full signal -> risk -> order -> fill -> portfolio path.
  Baseline of all: a naive environment that reads a DataFrame row with .iloc on every step
  (same decisions and fee/slippage maths in floats), measured in the same run.
"""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np
import pytest

from abidance.backtest.data import bars_from_frame
from abidance.backtest.engine import sim_instruments
from abidance.core.events import Bar
from abidance.ml.rl.bars import BarArrays
from abidance.ml.rl.env import EngineTradingEnv
from abidance.ml.rl.vec_env import TradingVecEnv
from tests.kit import SHARED_DATA

SEED = 20240601
SETTINGS = dict(starting_cash=Decimal(1), taker_bps=Decimal(10), slippage_bps=Decimal(5), fraction=0.98)
PANDAS = "pandas .iloc row-per-step env"


@pytest.fixture(scope="module")
def market():
    inst = sim_instruments()["ETHBTC"]
    path = SHARED_DATA / "market" / "ETH_BTC-5m.feather"
    if path.exists():
        import pandas as pd

        return bars_from_frame(pd.read_feather(path), "ETHBTC", "5m", inst), inst
    rng = np.random.default_rng(SEED)
    close = np.maximum(1, np.round(5000 * np.exp(np.cumsum(rng.normal(0, 2e-3, 5760))))).astype(int)
    bars, prev, ns = [], int(close[0]), 300_000_000_000
    for i, c in enumerate(close.tolist()):
        bars.append(Bar("ETHBTC", "5m", i * ns, (i + 1) * ns, prev, max(prev, c) + 2, min(prev, c) - 2, c, 1000, 0))
        prev = c
    return bars, inst


class PandasRowEnv:
    """The naive baseline: one DataFrame row per step via .iloc, floats for money."""

    def __init__(self, bars, fee_bps=10.0, slippage_bps=5.0, fraction=0.98, tick=1e-5, step=1e-3):
        import pandas as pd

        arr = BarArrays.from_bars(bars)
        close = arr.close * tick
        self.df = pd.DataFrame({"open": arr.open * tick, "close": close,
                                "ret": np.r_[0.0, np.diff(np.log(close))]})
        self.fee, self.slip, self.fraction, self.step_size = fee_bps / 1e4, slippage_bps / 1e4, fraction, step

    def reset(self):
        self.t, self.cash, self.base, self.equity = 0, 1.0, 0.0, 1.0
        return self.df.iloc[0][["ret", "close"]].to_numpy()

    def step(self, action):
        row, nxt = self.df.iloc[self.t], self.df.iloc[self.t + 1]
        held = math.floor(self.base / self.step_size)
        if action == 1 and held == 0:
            qty = math.floor(min(self.equity * self.fraction, self.cash) / row["close"] / self.step_size)
            price = nxt["open"] * (1 + self.slip)
            self.cash -= qty * self.step_size * price
            self.base += qty * self.step_size * (1 - self.fee)
        elif action == 0 and held > 0:
            price = nxt["open"] * (1 - self.slip)
            self.cash += held * self.step_size * price * (1 - self.fee)
            self.base -= held * self.step_size
        self.t += 1
        equity = self.cash + self.base * nxt["close"]
        reward, self.equity = 100 * math.log(equity / self.equity), equity
        done = self.t >= len(self.df) - 1
        return nxt[["ret", "close"]].to_numpy(), reward, False, done, {}


_PANDAS: dict[str, float] = {}


def pandas_steps_per_s(market, disabled: bool) -> float:
    """Measured once per session: steps/s of the naive env over random actions."""
    if "rate" not in _PANDAS:
        import time

        env = PandasRowEnv(market[0])
        n = 300 if disabled else 3000
        actions = np.random.default_rng(SEED).integers(0, 2, n).tolist()
        best = float("inf")
        for _ in range(1 if disabled else 3):
            env.reset()
            t0 = time.perf_counter_ns()
            for a in actions:
                env.step(a)
            best = min(best, time.perf_counter_ns() - t0)
        _PANDAS["rate"] = n / best * 1e9
    return _PANDAS["rate"]


@pytest.mark.parametrize("num_envs", [1024, 256, 16])
def test_vec_env_steps_per_second(benchmark, report, measure, market, num_envs):
    bars, inst = market
    env = TradingVecEnv(bars, inst, num_envs=num_envs, episode_bars=512, **SETTINGS)
    calls = 20 if benchmark.disabled else 400
    actions = np.random.default_rng(SEED).integers(0, 2, (calls, num_envs))
    env.reset(seed=SEED)

    def run():
        for a in actions:
            env.step(a)

    ns = measure(benchmark, run, ops=calls * num_envs, rounds=7)
    report(f"TradingVecEnv.step, {num_envs} sub-environments, random actions", 1e9 / ns, "steps/s",
           target=1_000_000.0 if num_envs == 1024 else None, target_kind="min",
           baseline=(PANDAS, pandas_steps_per_s(market, benchmark.disabled)), benchmark=benchmark)


def spells(n: int, mean: float) -> np.ndarray:
    rng = np.random.default_rng(SEED)
    return (np.cumsum(rng.random(n) < 1.0 / mean) % 2).astype(np.int64)


@pytest.mark.parametrize("policy", ["hold", "spells20", "random"])
def test_engine_env_steps_per_second(benchmark, report, measure, market, policy):
    bars, inst = market
    env = EngineTradingEnv(bars, inst, **SETTINGS)
    n = env.window[1] - env.window[0]
    actions = {"hold": np.ones(n, dtype=np.int64), "spells20": spells(n, 20.0),
               "random": np.random.default_rng(SEED).integers(0, 2, n)}[policy].tolist()
    trades = []

    def episode():
        env.reset()
        step = env.step
        for a in actions:
            step(a)
        trades.append(len(env.result.fills))

    ns = measure(benchmark, episode, ops=n, rounds=5)
    report(f"EngineTradingEnv.step (Backtest engine), policy {policy} ({trades[-1]} trades in {n} steps)",
           1e9 / ns, "steps/s", target=100_000.0, target_kind="min",
           baseline=(PANDAS, pandas_steps_per_s(market, benchmark.disabled)), benchmark=benchmark)
