"""TradingVecEnv / EngineTradingEnv on a six-bar series computed by hand, and bad input refused.

ETHBTC (tick 0.00001 BTC, step 0.001 ETH, min notional 0.0001 BTC); 1 BTC of cash; taker fee
7.5 bps in the asset received; slippage 10 bps; each entry spends 50 % of equity (capped by
cash). Units below: prices in ticks, cash in 1e-8 BTC, holdings in 1e-8 ETH.

  bar 2 close 5400, action long: budget 0.5 BTC / (5400 x 1e-8 BTC a step) = 9259.26 -> 9259 steps
  bar 3 open 5500: buy at 5500 x 1.001 = 5505.5, a tie, half-even -> 5506
        cash 100_000_000 - 9259 x 5506 = 49_019_946; fee 9.259 ETH x 0.00075 = 694_425
        base 925_900_000 - 694_425 = 925_205_575; equity at 5550 = 1.003688554125 BTC
        action flat: 925_205_575 // 100_000 = 9252 whole steps to sell (dust stays)
  bar 4 open 4500: sell at 4500 x 0.999 = 4495.5, a tie -> 4496; notional 9252 x 4496 = 41_596_992
        fee 41_596_992 x 0.00075 = 31_197.744 -> 31_198; cash 90_585_740; base 5_575 (dust)
        equity at 4550 = 90_585_740 + 5_575 x 4550 / 100_000 = 0.905859936625 BTC
        action long (dust is flat): budget = equity / 2 = 45_292_996.83 units / 4550 = 9954 steps
  bar 5 open 4550: buy at 4554.55 -> 4555; cash 90_585_740 - 9954 x 4555 = 45_245_270
        fee 9954 x 75 = 746_550; base 5_575 + 995_400_000 - 746_550 = 994_659_025
        equity at 4560 = 0.9060172154 BTC; the window ends: truncated
"""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np
import pytest

from abidance.backtest.engine import sim_instruments
from abidance.core.events import Bar
from abidance.ml.features import FeatureSpec
from abidance.ml.rl.env import EngineTradingEnv
from abidance.ml.rl.observations import ObservationSpec
from abidance.ml.rl.vec_env import TradingVecEnv

BAR_NS = 300_000_000_000
ROWS = [(5400, 5400, 5400, 5400), (5400, 5400, 5400, 5400), (5400, 5420, 5390, 5400),
        (5500, 5600, 5480, 5550), (4500, 4600, 4400, 4550), (4550, 4560, 4540, 4560)]
# Short indicator periods: the features are warm from bar 2 on, so the six bars are enough.
SPEC = FeatureSpec(return_horizons=(1,), ema_periods=(2,), rsi_period=2, bb_period=2, atr_period=1, vol_period=2,
                   volume_period=2, macd=(1, 2, 1), range_period=1)
OBS = ObservationSpec(SPEC, (0.0,) * len(SPEC.names), (1.0,) * len(SPEC.names))
SETTINGS = dict(starting_cash=Decimal(1), taker_bps=Decimal("7.5"), slippage_bps=Decimal(10), fraction=0.5,
                observation=OBS)
# (action, fill steps, fill price, cash, base, equity) after each step, from the docstring.
EXPECTED = [(1, 9259, 5506, 49_019_946, 925_205_575, Decimal("1.003688554125")),
            (0, -9252, 4496, 90_585_740, 5_575, Decimal("0.905859936625")),
            (1, 9954, 4555, 45_245_270, 994_659_025, Decimal("0.9060172154"))]


@pytest.fixture(scope="module")
def instrument():
    return sim_instruments()["ETHBTC"]


def tiny_bars(rows=ROWS):
    return [Bar("ETHBTC", "5m", i * BAR_NS, (i + 1) * BAR_NS, o, h, lo, c, 1000, 0)
            for i, (o, h, lo, c) in enumerate(rows)]


def test_vec_env_fills_fees_and_equity_match_the_hand_computation(instrument):
    env = TradingVecEnv(tiny_bars(), instrument, num_envs=1, episode_bars=None, **SETTINGS)
    env.reset()
    assert env.t[0] == 2                                    # first bar with warm features
    equity = Decimal(1)
    for k, (action, steps, price, cash, base, expected_equity) in enumerate(EXPECTED):
        if k < len(EXPECTED) - 1:
            _, reward, terminated, truncated, info = env.step(np.array([action]))
            assert (env.cash[0], env.base[0]) == (cash, base)
            assert env.equity_decimal(0) == expected_equity
        else:                                                # the last step ends the episode: autoreset
            _, reward, terminated, truncated, info = env.step(np.array([action]))
            assert (info["final_cash"][0], info["final_base"][0]) == (cash, base)
            assert truncated[0] and not terminated[0] and info["_final_obs"][0]
            assert env.cash[0] == 100_000_000 and env.base[0] == 0 and env.t[0] == 2
        assert (info["fill_steps"][0], info["fill_price"][0]) == (steps, price)
        assert reward[0] == pytest.approx(100 * math.log(expected_equity / equity), rel=1e-12)
        equity = expected_equity


def test_engine_env_gives_the_same_fills_and_equity_on_the_hand_computed_bars(instrument):
    env = EngineTradingEnv(tiny_bars(), instrument, **SETTINGS)
    env.reset()
    for action, steps, price, cash, base, expected_equity in EXPECTED:
        _, _, _, truncated, info = env.step(action)
        assert (info["fill_steps"], info["fill_price"]) == (steps, price)
        assert env.equity_decimal() == expected_equity
    assert truncated
    assert env.result.final_equity == Decimal("0.9060172154")
    assert env.result.balances == {"BTC": Decimal("0.45245270"), "ETH": Decimal("9.94659025")}
    fees = [f.commission for f in env.result.fills]
    assert fees == [Decimal("0.00694425"), Decimal("0.00031198"), Decimal("0.00746550")]


def test_sub_environments_trade_independently(instrument):
    # Three copies, three different action paths in the same steps: each ends as if alone.
    env = TradingVecEnv(tiny_bars(), instrument, num_envs=3, episode_bars=None, **SETTINGS)
    env.reset()
    env.step(np.array([1, 0, 1]))
    env.step(np.array([0, 0, 1]))
    assert list(env.cash) == [90_585_740, 100_000_000, 49_019_946]
    assert list(env.base) == [5_575, 0, 925_205_575]
    assert list(env.fills) == [2, 0, 1]


def test_order_below_min_notional_is_not_placed(instrument):
    # Half of 0.0002 BTC buys 1 step at 0.054 (0.000054 BTC): below the 0.0001 BTC minimum notional.
    env = TradingVecEnv(tiny_bars(), instrument, num_envs=1, episode_bars=None,
                        **{**SETTINGS, "starting_cash": Decimal("0.0002")})
    env.reset()
    _, reward, _, _, info = env.step(np.array([1]))
    assert info["fill_steps"][0] == 0 and env.cash[0] == 20_000 and reward[0] == 0.0
    engine = EngineTradingEnv(tiny_bars(), instrument, **{**SETTINGS, "starting_cash": Decimal("0.0002")})
    engine.reset()
    _, _, _, _, info = engine.step(1)
    assert info["fill_steps"] == 0
    assert [d.reason for d in engine.backtest.result.decisions] == ["NOTIONAL_BELOW_MIN"]


def test_random_episode_starts_follow_the_seed(instrument):
    rows = ROWS[:3] + [(5400 + i, 5420 + i, 5390 + i, 5400 + i) for i in range(40)]
    bars = tiny_bars(rows)
    a = TradingVecEnv(bars, instrument, num_envs=4, episode_bars=5, **SETTINGS)
    b = TradingVecEnv(bars, instrument, num_envs=4, episode_bars=5, **SETTINGS)
    a.reset(seed=11)
    b.reset(seed=11)
    assert list(a.t) == list(b.t) and len(set(a.t.tolist())) > 1
    assert all(2 <= t <= len(bars) - 1 - 5 for t in a.t)
    for _ in range(5):
        _, _, _, truncated, _ = a.step(np.ones(4, dtype=np.int64))
    assert truncated.all()


# ---- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize("actions, message", [
    (np.array([np.nan, 1.0]), r"actions\[0\] = .*nan.* is not an action"),
    (np.array([1, 2]), r"actions\[1\] = .*2.* is not an action \(0 = flat, 1 = long\)"),
    (np.array([0, -1]), r"actions\[1\] = .*-1"),
    (np.array([0.5, 1.0]), r"actions\[0\] = .*0.5"),
    (np.array([1, 0, 1]), r"shape \(2,\)"),
    (np.array(["long", "flat"]), r"integers 0 \(flat\) or 1 \(long\)"),
])
def test_vec_env_refuses_invalid_actions(instrument, actions, message):
    env = TradingVecEnv(tiny_bars(), instrument, num_envs=2, episode_bars=None, **SETTINGS)
    env.reset()
    with pytest.raises(ValueError, match=message):
        env.step(actions)
    assert list(env.cash) == [100_000_000, 100_000_000] and list(env.t) == [2, 2]     # nothing moved


@pytest.mark.parametrize("action", [float("nan"), 2, -1, 0.5, "long", None, [0, 1]])
def test_engine_env_refuses_invalid_actions(instrument, action):
    env = EngineTradingEnv(tiny_bars(), instrument, **SETTINGS)
    env.reset()
    with pytest.raises(ValueError, match="is not an action"):
        env.step(action)


def test_step_before_reset_is_refused(instrument):
    with pytest.raises(RuntimeError, match="before reset"):
        TradingVecEnv(tiny_bars(), instrument, num_envs=1, **{**SETTINGS}, episode_bars=None).step(np.array([1]))
    with pytest.raises(RuntimeError, match="before reset"):
        EngineTradingEnv(tiny_bars(), instrument, **SETTINGS).step(1)


@pytest.mark.parametrize("change, message", [
    ({"starting_cash": Decimal(0)}, "starting_cash must be > 0"),
    ({"starting_cash": "nan"}, "starting_cash must be > 0"),
    ({"starting_cash": Decimal("0.000000001")}, "at most 8 decimals"),
    ({"fraction": 0.0}, r"fraction must be within \(0, 1\]"),
    ({"fraction": 1.5}, r"fraction must be within"),
    ({"fraction": float("nan")}, "fraction must be a decimal number"),
    ({"taker_bps": Decimal(-1)}, "taker_bps must be within"),
    ({"slippage_bps": "abc"}, "slippage_bps must be a decimal number"),
    ({"reward_scale": float("inf")}, "reward_scale must be a finite number"),
    ({"window": (4, 2)}, "window must be"),
    ({"window": (0, 9)}, "window must be"),
    ({"episode_bars": 9}, r"episode_bars must be within \[1, 3\]"),
])
def test_bad_settings_are_refused_naming_them(instrument, change, message):
    kwargs = {**SETTINGS, "episode_bars": None, **change}
    with pytest.raises(ValueError, match=message):
        TradingVecEnv(tiny_bars(), instrument, num_envs=1, **kwargs)
    with pytest.raises(ValueError, match=message):
        EngineTradingEnv(tiny_bars(), instrument, **kwargs)


def test_bad_bars_are_refused_naming_the_bar(instrument):
    rows = list(ROWS)
    rows[3] = (5500, 5400, 5480, 5550)                       # high below open and low
    with pytest.raises(ValueError, match="bar 3: invalid prices"):
        TradingVecEnv(tiny_bars(rows), instrument, num_envs=1, **SETTINGS)
    bars = tiny_bars()
    bars[2], bars[3] = bars[3], bars[2]
    with pytest.raises(ValueError, match="bar 3: open_time .* is not after"):
        EngineTradingEnv(bars, instrument, **SETTINGS)
    with pytest.raises(ValueError, match="bars are ETHBTC but the instrument is LTCBTC"):
        TradingVecEnv(tiny_bars(), sim_instruments()["LTCBTC"], num_envs=1, **SETTINGS)
