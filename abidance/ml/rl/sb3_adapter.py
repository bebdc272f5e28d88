"""TradingVecEnv as a stable-baselines3 VecEnv (SB3 has its own vector API, not Gymnasium's).

SB3 wants: reset() -> obs only, seeds through seed(); step_wait() -> obs, rewards, dones, a list
of info dicts with "terminal_observation" and "TimeLimit.truncated" for the sub-environments
whose episode just ended (SB3 bootstraps the value of a truncated one), and "episode"
({"r": return, "l": length}) for its logger. Every finished episode is also kept in
`episodes` as (timesteps so far, return, length, final equity): the learning curve.
"""

from __future__ import annotations

import numpy as np
from stable_baselines3.common.vec_env import VecEnv


class Sb3TradingVecEnv(VecEnv):
    def __init__(self, env):
        self.env = env
        super().__init__(env.num_envs, env.single_observation_space, env.single_action_space)
        self.episodes: list[tuple[int, float, int, float]] = []
        self.timesteps = 0
        self._actions = None

    def reset(self):
        obs, _ = self.env.reset(seed=self._seeds[0])
        self._reset_seeds()
        self._reset_options()
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self):
        obs, reward, terminated, truncated, info = self.env.step(self._actions)
        self.timesteps += self.num_envs
        dones = terminated | truncated
        infos = [{} for _ in range(self.num_envs)]
        if dones.any():
            for i in np.flatnonzero(dones):
                ret, length = float(info["episode_return"][i]), int(info["episode_length"][i])
                infos[i] = {"terminal_observation": info["final_obs"][i],
                            "TimeLimit.truncated": bool(truncated[i] and not terminated[i]),
                            "episode": {"r": ret, "l": length, "t": float(self.timesteps)}}
                self.episodes.append((self.timesteps, ret, length, float(info["equity"][i])))
        return obs, reward.astype(np.float32), dones, infos

    def close(self) -> None:
        self.env.close()

    # SB3 asks sub-environments for attributes; there are none to give beyond these.
    def get_attr(self, attr_name, indices=None):
        if attr_name == "render_mode":
            return [None] * len(list(self._get_indices(indices)))
        raise AttributeError(f"Sb3TradingVecEnv has no per-environment attribute {attr_name!r}")

    def set_attr(self, attr_name, value, indices=None) -> None:
        raise AttributeError(f"Sb3TradingVecEnv cannot set {attr_name!r} on its sub-environments")

    def env_method(self, method_name, *method_args, indices=None, **method_kwargs):
        raise AttributeError(f"Sb3TradingVecEnv has no per-environment method {method_name!r}")

    def env_is_wrapped(self, wrapper_class, indices=None):
        return [False] * len(list(self._get_indices(indices)))
