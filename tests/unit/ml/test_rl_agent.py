"""PPO on real ETH/BTC candles: a short seeded training run, its held-out evaluation, save/load.

Training uses the first 4000 bars (~14 days), evaluation the remaining 1760 on the backtest
engine, beside buy-and-hold and ema_cross. 4096 timesteps only: the run must complete and
be reproducible, not make money (docs/rl.md reports a longer run honestly).
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from abidance.backtest.data import bars_from_frame
from abidance.backtest.engine import sim_instruments
from abidance.ml.rl.agent import load_agent, train_agent
from abidance.ml.rl.evaluation import ROWS, evaluate
from abidance.ml.rl.vec_env import TradingVecEnv
from tests.kit import shared_data

SPLIT = 4000
TRAIN = dict(timesteps=4096, num_envs=8, episode_bars=256, seed=7)


@pytest.fixture(scope="module")
def market():
    inst = sim_instruments()["ETHBTC"]
    frame = pd.read_feather(shared_data("market", "ETH_BTC-5m.feather"))
    return bars_from_frame(frame, "ETHBTC", "5m", inst), inst


@pytest.fixture(scope="module")
def agent(market):
    bars, inst = market
    return train_agent(bars, inst, window=(0, SPLIT - 1), **TRAIN)


@pytest.fixture(scope="module")
def evaluation(market, agent):
    bars, inst = market
    return evaluate(agent, bars, inst, window=(SPLIT, len(bars) - 1))


def parameters(agent) -> list[np.ndarray]:
    return [p.detach().numpy().copy() for p in agent.model.policy.parameters()]


def test_training_with_the_same_seed_gives_the_same_network_and_curve(market, agent):
    bars, inst = market
    again = train_agent(bars, inst, window=(0, SPLIT - 1), **TRAIN)
    assert all(np.array_equal(a, b) for a, b in zip(parameters(agent), parameters(again)))
    pd.testing.assert_frame_equal(agent.learning_curve, again.learning_curve)


def test_learning_curve_has_one_row_per_training_episode(agent):
    curve = agent.learning_curve
    # 4096 steps of 8 sub-environments with 256-bar episodes: every sub-environment ends 2 episodes.
    assert len(curve) == 4096 // 256 == 16
    assert (curve["episode_length"] == 256).all()
    assert curve["timesteps"].is_monotonic_increasing
    assert np.isfinite(curve["episode_return"]).all() and (curve["final_equity"] > 0).all()
    assert agent.meta["window"][1] < SPLIT                     # trained on the first part only


def test_evaluation_table_has_agent_buy_and_hold_and_ema_cross_on_the_held_out_bars(market, evaluation):
    bars, _ = market
    table = evaluation.table
    assert list(table.index) == list(ROWS) == ["agent", "buy_and_hold", "ema_cross"]
    assert list(table.columns) == ["final_equity", "total_return", "max_drawdown", "trades"]
    assert evaluation.window == (SPLIT, len(bars) - 1)
    for name in ROWS:
        row = table.loc[name]
        assert isinstance(row["final_equity"], Decimal)
        assert row["total_return"] == pytest.approx(float(row["final_equity"]) - 1.0, abs=1e-12)
        assert 0.0 <= row["max_drawdown"] < 1.0
        curve = evaluation.curves[name]
        assert len(curve) == len(bars) - SPLIT and curve["equity"].iloc[-1] == row["final_equity"]
    assert table.loc["buy_and_hold", "trades"] == 1
    assert table.loc["ema_cross", "trades"] > 10


def test_buy_and_hold_and_agent_rows_agree_with_the_vectorised_env(market, agent, evaluation):
    # The same greedy actions replayed in the training environment end with the same equity.
    bars, inst = market
    for name, policy in (("buy_and_hold", lambda obs: np.ones(1, dtype=np.int64)),
                         ("agent", lambda obs: np.array([agent.act(obs[0])]))):
        vec = TradingVecEnv(bars, inst, num_envs=1, episode_bars=None, window=(SPLIT, len(bars) - 1),
                            observation=agent.observation, **agent.settings.kwargs())
        obs, _ = vec.reset()
        fills = 0
        while True:
            obs, _, _, truncated, info = vec.step(policy(obs))
            fills += info["fill_steps"][0] != 0
            if truncated[0]:
                break
        final = vec.fills_model.equity_decimal(info["final_cash"][0], info["final_base"][0], bars[-1].close)
        assert final == evaluation.table.loc[name, "final_equity"], name
        assert fills == evaluation.table.loc[name, "trades"], name


def test_saved_agent_loads_and_acts_the_same(tmp_path, market, agent, evaluation):
    bars, inst = market
    folder = agent.save(tmp_path / "eth-ppo")
    loaded = load_agent(folder)
    assert loaded.observation == agent.observation and loaded.settings == agent.settings
    pd.testing.assert_frame_equal(loaded.learning_curve, agent.learning_curve, check_dtype=False)
    again = evaluate(loaded, bars, inst, window=(SPLIT, len(bars) - 1))
    pd.testing.assert_frame_equal(again.table, evaluation.table)


def test_tampered_or_missing_agent_is_refused(tmp_path, agent):
    with pytest.raises(ValueError, match="is not a saved agent"):
        load_agent(tmp_path / "nothing-here")
    folder = agent.save(tmp_path / "eth-ppo")
    (folder / "policy.zip").write_bytes((folder / "policy.zip").read_bytes() + b"x")
    with pytest.raises(ValueError, match="policy.zip refused: its sha256 is [0-9a-f]{64}, expected"):
        load_agent(folder)


@pytest.mark.parametrize("key, value, message", [
    ("taker_bps", "abc", "taker_bps must be a decimal number"),
    ("starting_cash", "1e", "starting_cash must be a decimal number"),
    ("slippage_bps", 0.5, "slippage_bps must be a decimal number"),
    ("fraction", "most", "fraction must be a finite number"),
])
def test_agent_with_bad_settings_is_refused_naming_the_key(tmp_path, agent, key, value, message):
    import json

    folder = agent.save(tmp_path / "eth-ppo")
    meta = json.loads((folder / "agent.json").read_text())
    meta["settings"][key] = value
    (folder / "agent.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=f"agent.json: ValueError: env settings: {message}"):
        load_agent(folder)
    (folder / "agent.json").write_text("{not json")
    with pytest.raises(ValueError, match="agent.json is not readable JSON"):
        load_agent(folder)


def test_bad_training_arguments_are_refused(market):
    bars, inst = market
    with pytest.raises(ValueError, match="timesteps must be an integer >= 1"):
        train_agent(bars, inst, timesteps=0)
    with pytest.raises(ValueError, match="episode_bars must be within"):
        train_agent(bars, inst, window=(0, 200), episode_bars=500, timesteps=10)
