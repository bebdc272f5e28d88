"""The vectorised environment against the real engine: same bars, same actions, same fills and equity.

Real Binance candles (ETH/BTC and LTC/BTC, 5 minutes, 20 days). Each test plays a seeded
action sequence (long/flat spells of random length, so both long holds and rapid flips
occur) through a TradingVecEnv sub-environment and through EngineTradingEnv (the live node's
strategy, risk, execution and portfolio classes under the Backtest engine), and requires,
step by step: the same fill (steps and price in ticks), the same reward and observation bits,
and, at the end, the same balances and final equity to the unit.
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from abidance.backtest.data import bars_from_frame
from abidance.backtest.engine import sim_instruments
from abidance.ml.rl.env import EngineTradingEnv
from abidance.ml.rl.fill_model import E8
from abidance.ml.rl.vec_env import TradingVecEnv
from tests.kit import shared_data

FILES = {"ETHBTC": "ETH_BTC-5m", "LTCBTC": "LTC_BTC-5m"}


@pytest.fixture(scope="module")
def market():
    instruments = sim_instruments()
    out = {}
    for symbol, name in FILES.items():
        frame = pd.read_feather(shared_data("market", f"{name}.feather"))
        out[symbol] = (bars_from_frame(frame, symbol, "5m", instruments[symbol]), instruments[symbol])
    return out


def spells(seed: int, n: int, mean_spell: float) -> np.ndarray:
    """0/1 actions in spells of geometric length (mean `mean_spell` bars)."""
    rng = np.random.default_rng(seed)
    flips = rng.random(n) < 1.0 / mean_spell
    return (np.cumsum(flips) + rng.integers(0, 2)) % 2


def play_both(vec: TradingVecEnv, engine: EngineTradingEnv, actions: np.ndarray, i: int = 0,
              others=None) -> int:
    """Step both with the same actions (sub-environment i of vec); returns the number of fills."""
    fills = 0
    for k, a in enumerate(actions):
        batch = np.array([a] if others is None else [a if j == i else others[j][k] for j in range(vec.num_envs)])
        vobs, vrew, vterm, vtrunc, vinfo = vec.step(batch)
        eobs, erew, eterm, etrunc, einfo = engine.step(int(a))
        assert (vinfo["fill_steps"][i], vinfo["fill_price"][i]) == (einfo["fill_steps"], einfo["fill_price"]), k
        assert vrew[i] == erew, k
        assert (bool(vterm[i]), bool(vtrunc[i])) == (eterm, etrunc), k
        fills += einfo["fill_steps"] != 0
        if etrunc:
            assert np.array_equal(vinfo["final_obs"][i], eobs)
            cash, base = int(vinfo["final_cash"][i]), int(vinfo["final_base"][i])
            fm = vec.fills_model
            assert engine.result.balances.get(fm.quote_asset, Decimal(0)) == cash * E8
            assert engine.result.balances.get(fm.base_asset, Decimal(0)) == base * E8
            close = vec.bars.close[engine.t]
            assert fm.equity_decimal(cash, base, close) == engine.result.final_equity
            return fills
        assert np.array_equal(vobs[i], eobs), k
        assert vec.equity_decimal(i) == engine.equity_decimal(), k
    raise AssertionError("the episode did not end")


def test_whole_eth_btc_series_same_fills_and_final_equity(market):
    bars, inst = market["ETHBTC"]
    vec = TradingVecEnv(bars, inst, num_envs=1, episode_bars=None)
    engine = EngineTradingEnv(bars, inst, observation=vec.observation_spec)
    vec.reset()
    engine.reset()
    n = vec.window[1] - vec.window[0]
    fills = play_both(vec, engine, spells(1, n, mean_spell=20.0))
    assert fills == len(engine.result.fills) > 200


def test_ltc_btc_with_slippage_odd_fee_and_half_sizing_on_a_seeded_window(market):
    bars, inst = market["LTCBTC"]
    settings = dict(taker_bps=Decimal("7.5"), slippage_bps=Decimal(5), fraction=0.5, starting_cash=Decimal("0.37"))
    vec = TradingVecEnv(bars, inst, num_envs=1, episode_bars=1500, **settings)
    engine = EngineTradingEnv(bars, inst, episode_bars=1500, observation=vec.observation_spec, **settings)
    vec.reset(seed=5)
    engine.reset(seed=5)
    assert vec.t[0] == engine.t != vec.window[0]              # the same seeded start, not the first bar
    fills = play_both(vec, engine, spells(2, 1500, mean_spell=3.0))
    assert fills == len(engine.result.fills) > 300


def test_each_sub_environment_of_a_batch_matches_its_own_engine_run(market):
    bars, inst = market["ETHBTC"]
    vec = TradingVecEnv(bars, inst, num_envs=3, episode_bars=600, slippage_bps=Decimal(3))
    paths = [spells(10 + j, 600, mean_spell=m) for j, m in enumerate((2.0, 15.0, 80.0))]
    for i in range(3):
        engine = EngineTradingEnv(bars, inst, episode_bars=600, slippage_bps=Decimal(3),
                                  observation=vec.observation_spec)
        vec.reset(options={"start": 2000})
        engine.reset(options={"start": 2000})
        play_both(vec, engine, paths[i], i=i, others=paths)
