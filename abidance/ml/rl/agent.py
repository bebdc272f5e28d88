"""A PPO agent (stable-baselines3, PyTorch, CPU) trained on the vectorised environment.

    agent = train_agent(bars, instrument, window=(0, 3999), timesteps=20_000, seed=7)
    table = evaluate(agent, bars, instrument, window=(4000, len(bars) - 1)).table
    agent.save("models/eth-ppo");  agent = load_agent("models/eth-ppo")

Deterministic for a seed: SB3 seeds Python, numpy and torch from it, the environment draws
its episode starts from it, and training runs on one torch thread (restored afterwards), so
two runs give the same network bit for bit. `learning_curve` has one row per finished training
episode (timesteps so far, episode return, length, final equity) for a chart.
A saved agent is a folder: policy.zip (SB3) and agent.json (observation scaling, settings,
training window, learning curve, and the policy file's sha256). Both files are written
atomically; on load the policy's bytes are hashed and those same bytes loaded
(abidance.ml.artifacts): the zip holds pickles, so an altered file is never unpickled.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback

from abidance.ml.artifacts import read_verified, sha256_bytes, write_atomic
from abidance.ml.rl.bars import BarArrays
from abidance.ml.rl.evaluation import Evaluation, evaluate
from abidance.ml.rl.observations import ObservationSpec
from abidance.ml.rl.sb3_adapter import Sb3TradingVecEnv
from abidance.ml.rl.settings import EnvSettings
from abidance.ml.rl.vec_env import TradingVecEnv

__all__ = ["Evaluation", "TrainedAgent", "evaluate", "load_agent", "train_agent"]

AGENT_FORMAT = "abidance.rl-agent/1"
CURVE_COLUMNS = ["timesteps", "episode_return", "episode_length", "final_equity"]


@dataclass
class TrainedAgent:
    model: PPO
    observation: ObservationSpec
    settings: EnvSettings
    symbol: str
    interval: str
    meta: dict = field(default_factory=dict)        # seed, timesteps, training window, hyper-parameters
    learning_curve: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=CURVE_COLUMNS))

    def act(self, obs: np.ndarray) -> int:
        """The greedy action (0 flat, 1 long) for one observation."""
        action, _ = self.model.predict(obs, deterministic=True)
        return int(action)

    def save(self, path: str | Path) -> Path:
        folder = Path(path)
        buf = io.BytesIO()
        self.model.save(buf)
        policy = buf.getvalue()
        meta = {"format": AGENT_FORMAT, "symbol": self.symbol, "interval": self.interval,
                "observation": self.observation.to_dict(), "settings": self.settings.to_dict(), "meta": self.meta,
                "learning_curve": self.learning_curve[CURVE_COLUMNS].values.tolist(),
                "policy_sha256": sha256_bytes(policy)}
        # The policy first: a reader between the two renames sees a hash mismatch, never a mix.
        write_atomic(folder / "policy.zip", policy)
        write_atomic(folder / "agent.json", json.dumps(meta, indent=1).encode())
        return folder


def load_agent(path: str | Path) -> TrainedAgent:
    """An agent saved by TrainedAgent.save; ValueError naming what is missing or does not match."""
    folder = Path(path)
    meta_file, policy = folder / "agent.json", folder / "policy.zip"
    if not meta_file.is_file() or not policy.is_file():
        raise ValueError(f"{folder} is not a saved agent (needs agent.json and policy.zip)")
    try:
        meta = json.loads(meta_file.read_bytes())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{meta_file} is not readable JSON: {exc}") from None
    if not isinstance(meta, dict) or meta.get("format") != AGENT_FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise ValueError(f"{meta_file}: format {found!r} is not {AGENT_FORMAT!r}")
    missing = [k for k in ("policy_sha256", "observation", "settings", "symbol", "interval", "learning_curve")
               if k not in meta]
    if missing:
        raise ValueError(f"{meta_file}: missing {', '.join(missing)}")
    data, _ = read_verified(policy, str(meta["policy_sha256"]), what="agent policy")
    try:
        settings = EnvSettings.from_dict(meta["settings"])
        observation = ObservationSpec.from_dict(meta["observation"])
        curve = pd.DataFrame(meta["learning_curve"], columns=CURVE_COLUMNS)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{meta_file}: {type(exc).__name__}: {exc}") from None
    model = PPO.load(io.BytesIO(data), device="cpu")
    return TrainedAgent(model, observation, settings, meta["symbol"], meta["interval"], meta.get("meta", {}), curve)


class _Progress(BaseCallback):
    def __init__(self, report, total: int):
        super().__init__()
        self.report, self.total = report, total

    def _on_step(self) -> bool:
        self.report(min(self.num_timesteps, self.total), self.total)
        return True


def train_agent(bars, instrument, *, window: tuple[int, int] | None = None, timesteps: int = 20_000,
                num_envs: int = 8, episode_bars: int = 256, seed: int = 0, settings: EnvSettings | None = None,
                net_arch: tuple[int, ...] = (32, 32), n_steps: int = 128, batch_size: int = 256, n_epochs: int = 4,
                learning_rate: float = 3e-4, gamma: float = 0.99, ent_coef: float = 0.01,
                progress=None) -> TrainedAgent:
    """PPO on TradingVecEnv over bars[window] (inclusive indices; default all). `progress(done, total)`
    is called as timesteps go by (for a progress bar)."""
    if isinstance(timesteps, bool) or not isinstance(timesteps, int) or timesteps < 1:
        raise ValueError(f"timesteps must be an integer >= 1, got {timesteps!r}")
    settings = settings or EnvSettings()
    bars = bars if isinstance(bars, BarArrays) else BarArrays.from_bars(bars)
    vec = TradingVecEnv(bars, instrument, num_envs=num_envs, episode_bars=episode_bars, window=window,
                        **settings.kwargs())
    env = Sb3TradingVecEnv(vec)
    hyper = {"n_steps": n_steps, "batch_size": batch_size, "n_epochs": n_epochs, "learning_rate": learning_rate,
             "gamma": gamma, "ent_coef": ent_coef}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)            # one thread: reproducible sums, and faster for a net this small
    try:
        model = PPO("MlpPolicy", env, seed=seed, device="cpu", verbose=0,
                    policy_kwargs={"net_arch": list(net_arch)}, **hyper)
        model.learn(total_timesteps=timesteps, callback=_Progress(progress, timesteps) if progress else None)
    finally:
        torch.set_num_threads(threads)
    curve = pd.DataFrame(env.episodes, columns=CURVE_COLUMNS)
    t = bars.open_time
    meta = {"seed": seed, "timesteps": timesteps, "num_envs": num_envs, "episode_bars": episode_bars,
            "net_arch": list(net_arch), "window": list(vec.window),
            "window_open_time_ns": [int(t[vec.window[0]]), int(t[vec.window[1]])], **hyper}
    return TrainedAgent(model, vec.observation_spec, settings, bars.symbol, bars.interval, meta, curve)
