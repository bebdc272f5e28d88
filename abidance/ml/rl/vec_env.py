"""TradingVecEnv: N trading episodes at once over recorded bars, in numpy (Gymnasium VectorEnv).

Actions (per sub-environment, each step): 0 = flat, 1 = long. The agent decides after bar t
closed: "long" while flat is a market BUY sized like the risk engine (fraction of equity,
capped by cash), "flat" while holding sells every whole lot step held; otherwise nothing.
The order fills at bar t+1's open (plus slippage) with the taker fee in the asset received:
the backtester's fill model (fill_model.py), so `EngineTradingEnv` on the real engine gives
the same fills and equity to the unit (tests/unit/ml/test_rl_env_parity.py).

Account state is int64 fixed point: cash in quote units (1e-8), holdings in base units (1e-8),
prices in ticks. Observations (observations.py) and rewards are floats:
reward = reward_scale x ln(equity after bar t+1 / equity after bar t), equity at the close.

Episodes: `episode_bars` steps from a random start inside `window` (seeded by reset(seed));
None runs the whole window from its first bar. An episode is truncated at its last bar and
terminated if equity reaches 0. Autoreset is Gymnasium's SAME_STEP mode: the step that ends an
episode returns the next episode's first observation, the last one is in info["final_obs"]
(rows flagged by info["_final_obs"]), with info["episode_return"], ["episode_length"] and the
exact account at the end, ["final_cash"] (quote units) and ["final_base"] (base units).
Every step's info also has "fill_steps" (signed: + bought, - sold, 0 none), "fill_price"
(ticks) and "equity" (quote asset, float).
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from abidance.ml.rl.bars import BarArrays
from abidance.ml.rl.fill_model import E8, FixedPointFills
from abidance.ml.rl.observations import ObservationSpec, observed_window

FLAT, LONG = 0, 1


def log_reward(equity: np.ndarray, previous: np.ndarray, scale: float) -> np.ndarray:
    """scale x ln(equity / previous); a non-positive equity counts as a total loss of 100 (x scale)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.log(equity / previous)
    return np.where(equity > 0, r, -100.0) * scale


def check_actions(actions, n: int) -> np.ndarray:
    """Actions as a bool array (True = long); ValueError naming the first bad one."""
    a = np.asarray(actions)
    if a.shape != (n,):
        raise ValueError(f"actions must have shape ({n},) (one per sub-environment), got {a.shape}")
    if a.dtype.kind == "b":
        return a
    if a.dtype.kind not in "iuf":
        raise ValueError(f"actions must be integers 0 (flat) or 1 (long), got dtype {a.dtype}")
    bad = (a != FLAT) & (a != LONG)          # NaN fails both comparisons: refused too
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"actions[{i}] = {a[i]!r} is not an action (0 = flat, 1 = long)")
    return a == LONG


def check_reward_scale(value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value) or value <= 0:
        raise ValueError(f"reward_scale must be a finite number > 0, got {value!r}")


def cash_units(amount, what: str = "starting_cash") -> int:
    """A positive quote amount as whole 1e-8 units; ValueError when it is not."""
    try:
        d = Decimal(str(amount))
    except Exception:  # noqa: BLE001 - any unparsable input gets the same clear message
        raise ValueError(f"{what} must be a decimal amount, got {amount!r}") from None
    if not d.is_finite() or d <= 0 or d % E8 != 0:
        raise ValueError(f"{what} must be > 0 with at most 8 decimals, got {amount!r}")
    return int(d / E8)


class TradingVecEnv(VectorEnv):
    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP}

    def __init__(self, bars, instrument, *, num_envs: int = 16, episode_bars: int | None = 512,
                 window: tuple[int, int] | None = None, starting_cash=Decimal(1), taker_bps=Decimal(10),
                 slippage_bps=Decimal(0), fraction=Decimal("0.98"), reward_scale: float = 100.0,
                 observation: ObservationSpec | None = None, max_growth: int = 1000):
        self.bars = bars if isinstance(bars, BarArrays) else BarArrays.from_bars(bars)
        if self.bars.symbol != instrument.symbol:
            raise ValueError(f"bars are {self.bars.symbol} but the instrument is {instrument.symbol}")
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ValueError(f"num_envs must be an integer >= 1, got {num_envs!r}")
        check_reward_scale(reward_scale)
        self.fills_model = FixedPointFills(instrument, taker_bps=taker_bps, slippage_bps=slippage_bps,
                                           fraction=fraction)
        self.cash0 = cash_units(starting_cash)
        self._max_cash = self.cash0 * int(max_growth)
        self.fills_model.check_headroom(int(self.bars.high.max()) * 2, self._max_cash)
        self.observation_spec, self.market, self.window = observed_window(self.bars, window, observation,
                                                                          episode_bars)
        self.episode_bars = episode_bars
        self.reward_scale = float(reward_scale)
        self.num_envs = int(num_envs)
        self.single_action_space = spaces.Discrete(2)
        self.single_observation_space = self.observation_spec.space()
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        n_envs = self.num_envs
        self.t = np.zeros(n_envs, dtype=np.int64)          # current bar index
        self.end = np.zeros(n_envs, dtype=np.int64)        # last bar of the episode
        self.cash = np.zeros(n_envs, dtype=np.int64)       # quote units
        self.base = np.zeros(n_envs, dtype=np.int64)       # base units
        self.entry = np.zeros(n_envs, dtype=np.int64)      # last buy fill price, ticks
        self.fills = np.zeros(n_envs, dtype=np.int64)      # fills this episode
        self.equity = np.zeros(n_envs)                     # float, quote units, at the last close
        self.episode_return = np.zeros(n_envs)
        self.episode_length = np.zeros(n_envs, dtype=np.int64)
        self._started = False

    # ---- episodes -----------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self._np_random, self._np_random_seed = seeding.np_random(seed)
        fixed = None
        if options and "start" in options:
            fixed = int(options["start"])
            lo, hi = self._start_range()
            if not lo <= fixed <= hi:
                raise ValueError(f"options['start'] must be within [{lo}, {hi}], got {options['start']!r}")
        every = np.ones(self.num_envs, dtype=bool)
        self._begin(every, fixed)
        self._started = True
        return self._observe(self.t), {}

    def _start_range(self) -> tuple[int, int]:
        start, end = self.window
        return (start, start) if self.episode_bars is None else (start, end - self.episode_bars)

    def _begin(self, which: np.ndarray, fixed: int | None = None) -> None:
        k = int(which.sum())
        lo, hi = self._start_range()
        starts = np.full(k, fixed if fixed is not None else lo, dtype=np.int64)
        if fixed is None and hi > lo:
            starts = self.np_random.integers(lo, hi + 1, size=k, dtype=np.int64)
        self.t[which] = starts
        self.end[which] = self.window[1] if self.episode_bars is None else starts + self.episode_bars
        self.cash[which] = self.cash0
        self.base[which] = 0
        self.entry[which] = 0
        self.fills[which] = 0
        self.equity[which] = float(self.cash0)
        self.episode_return[which] = 0.0
        self.episode_length[which] = 0

    def _observe(self, t: np.ndarray) -> np.ndarray:
        holding = self.base >= self.fills_model.sbu
        return self.market.build(t, holding, self.bars.close[t], self.entry)

    # ---- one step for every sub-environment ----------------------------------------------

    def step(self, actions):
        if not self._started:
            raise RuntimeError("TradingVecEnv.step() before reset()")
        long = check_actions(actions, self.num_envs)
        fm, bars = self.fills_model, self.bars
        t, cash, base = self.t, self.cash, self.base
        close = bars.close[t]
        next_open = bars.open[t + 1]
        held = base // fm.sbu
        fill_steps = np.zeros(self.num_envs, dtype=np.int64)
        fill_price = np.zeros(self.num_envs, dtype=np.int64)

        buy = long & (held == 0)
        if buy.any():
            qty = fm.entry_steps(cash, base, close)
            buy &= fm.allowed(qty, close)
            price = fm.buy_price(next_open)
            buy &= qty * price * fm.mul <= cash          # the venue refuses what the cash cannot pay (-2010)
            qty = np.where(buy, qty, 0)
            cash -= qty * price * fm.mul
            base += qty * fm.sbu - fm.buy_fee(qty)
            self.entry = np.where(buy, price, self.entry)
            fill_steps += qty
            fill_price = np.where(buy, price, fill_price)
        sell = ~long & (held > 0)
        if sell.any():
            sell &= fm.allowed(held, close)
            qty = np.where(sell, held, 0)
            price = fm.sell_price(next_open)
            notional = qty * price * fm.mul
            cash += notional - fm.sell_fee(notional)
            base -= qty * fm.sbu
            fill_steps -= qty
            fill_price = np.where(sell, price, fill_price)
            if cash.max() > self._max_cash:
                raise OverflowError(f"cash grew beyond {self._max_cash} quote units (max_growth x starting cash): "
                                    "the int64 headroom checked at construction no longer holds")
        self.fills += fill_steps != 0

        t += 1
        equity = fm.equity(cash, base, bars.close[t])
        reward = log_reward(equity, self.equity, self.reward_scale)
        self.equity = equity
        self.episode_return += reward
        self.episode_length += 1
        terminated = equity <= 0
        truncated = (t >= self.end) & ~terminated
        obs = self._observe(t)
        info = {"fill_steps": fill_steps, "fill_price": fill_price, "equity": equity * float(E8)}
        done = terminated | truncated
        if done.any():
            info["final_obs"] = np.where(done[:, None], obs, 0.0).astype(np.float32)
            info["_final_obs"] = done
            info["episode_return"] = np.where(done, self.episode_return, 0.0)
            info["episode_length"] = np.where(done, self.episode_length, 0)
            info["_episode"] = done
            info["final_cash"] = np.where(done, self.cash, 0)      # the exact account at the end
            info["final_base"] = np.where(done, self.base, 0)
            self._begin(done)
            obs[done] = self._observe(self.t)[done]
        return obs, reward, terminated, truncated, info

    # ---- exact account values (tests, evaluation) ------------------------------------------

    def equity_decimal(self, i: int) -> Decimal:
        """Sub-environment i's equity at its current bar's close, exact, in the quote asset."""
        return self.fills_model.equity_decimal(self.cash[i], self.base[i], self.bars.close[self.t[i]])

    def balances(self, i: int) -> dict[str, Decimal]:
        fm = self.fills_model
        return {fm.quote_asset: Decimal(int(self.cash[i])) * E8, fm.base_asset: Decimal(int(self.base[i])) * E8}
