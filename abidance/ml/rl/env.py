"""EngineTradingEnv: one trading episode on the real backtest engine (a Gymnasium Env).

The live node's strategy, risk, execution and portfolio classes run the episode
(`abidance.backtest.engine.Backtest`, stepped bar by bar); the agent trades through an
`AgentStrategy` registered in the engine's StrategyEngine, so each action becomes a signal
sized by the risk engine and filled by the BacktestVenue at the next bar's open.

Same actions, observations, rewards, episodes and info keys as one sub-environment of
`TradingVecEnv` (see vec_env.py): on the same bars and actions both give the same fills
and the same equity to the unit (tests/unit/ml/test_rl_env_parity.py). This one is the
reference; the vectorised one is for training speed.
"""

from __future__ import annotations

from decimal import Decimal

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from abidance.backtest.engine import Backtest
from abidance.backtest.research_config import research_config
from abidance.core import topics
from abidance.ml.rl.agent_strategy import AgentStrategy
from abidance.ml.rl.bars import BarArrays
from abidance.ml.rl.fill_model import E8, FixedPointFills
from abidance.ml.rl.observations import PNL_CLIP, ObservationSpec, observed_window
from abidance.ml.rl.vec_env import LONG, cash_units, check_reward_scale

AGENT_ID = "rl-agent"


def check_action(action) -> bool:
    """One action as a bool (True = long); ValueError naming it when it is not 0 or 1."""
    if action.__class__ is int or action.__class__ is bool:         # the common case, cheaply
        if action == 0 or action == 1:
            return action == LONG
    else:
        a = np.asarray(action)
        if a.shape in ((), (1,)) and a.dtype.kind in "biuf":
            v = a.reshape(()).item()
            if v == 0 or v == 1:                 # NaN is neither
                return v == LONG
    raise ValueError(f"action {action!r} is not an action (0 = flat, 1 = long)")


class EngineTradingEnv(gym.Env):
    metadata = {"render_modes": []}

    def __init__(self, bars, instrument, *, episode_bars: int | None = None, window: tuple[int, int] | None = None,
                 starting_cash=Decimal(1), taker_bps=Decimal(10), slippage_bps=Decimal(0),
                 fraction=Decimal("0.98"), reward_scale: float = 100.0, observation: ObservationSpec | None = None):
        self.bar_list = list(bars)
        self.bars = BarArrays.from_bars(self.bar_list)
        if self.bars.symbol != instrument.symbol:
            raise ValueError(f"bars are {self.bars.symbol} but the instrument is {instrument.symbol}")
        check_reward_scale(reward_scale)
        self.instrument = instrument
        self.fills_model = fm = FixedPointFills(instrument, taker_bps=taker_bps, slippage_bps=slippage_bps,
                                          fraction=fraction)
        self.cash0 = cash_units(starting_cash)
        self.config = research_config(fm.quote_asset, fm.fraction)
        self.observation_spec, self.market, self.window = observed_window(self.bars, window, observation,
                                                                          episode_bars)
        self.episode_bars, self.reward_scale = episode_bars, float(reward_scale)
        self.action_space = spaces.Discrete(2)
        self.observation_space = self.observation_spec.space()
        self.backtest: Backtest | None = None
        self.result = None
        self.t = self.end = 0
        self.entry = 0
        self._open_time = self.bars.open_time.tolist()         # Python ints: cheap to compare per step
        self._close, self._holding, self._cash, self._base = 0, False, 0, 0
        rows = self.market.rows
        self._obs_rows = np.concatenate([rows, np.zeros((len(rows), 2), dtype=np.float32)], axis=1)
        self._fills: list = []
        self._done = True

    # ---- episodes -----------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        start, end = self.window
        lo, hi = (start, start) if self.episode_bars is None else (start, end - self.episode_bars)
        if options and "start" in options:
            first = int(options["start"])
            if not lo <= first <= hi:
                raise ValueError(f"options['start'] must be within [{lo}, {hi}], got {options['start']!r}")
        else:
            # The draw TradingVecEnv makes for one sub-environment: same seed, same start.
            first = int(self.np_random.integers(lo, hi + 1, size=1, dtype=np.int64)[0]) if hi > lo else lo
        if self.backtest is not None:
            self.backtest.finish()
        last = end if self.episode_bars is None else first + self.episode_bars
        fm = self.fills_model
        self.agent = AgentStrategy(AGENT_ID, [fm.symbol], timeframe=self.bars.interval)
        bt = Backtest(self.config, {fm.symbol: self.bar_list[first:last + 1]}, instruments={fm.symbol: self.instrument},
                      balances={fm.quote_asset: Decimal(self.cash0) * E8}, taker_bps=fm.taker_bps,
                      slippage_bps=fm.slippage_bps, strategies=[self.agent])
        bt.bus.subscribe(topics.FILLS, self._fills.append)
        bt.start()
        self.backtest, self.result = bt, None
        self.t, self.end, self.entry = first, last, 0
        self._fills.clear()
        self._advance()
        self._read_account()
        self.equity = self._equity()
        self._done = False
        return self._observe(), {}

    def _advance(self) -> None:
        bar = self.backtest.step()
        if bar is None or bar.open_time != self._open_time[self.t]:
            raise RuntimeError(f"the engine's bar {bar!r} is not bar {self.t} of the series")
        self._close = bar.close

    def _read_account(self) -> None:
        """Cash and holdings in integer units; they change only on fills, so read only then."""
        pf, fm = self.backtest.portfolio, self.fills_model
        self._cash, self._base = int(pf.cash(fm.quote_asset).scaleb(8)), int(pf.position(fm.symbol).scaleb(8))
        self._holding = self._base >= fm.sbu

    def _equity(self) -> float:
        """fills_model.equity() for one account, in Python scalars: the same IEEE operations
        (exact int sum, one conversion, one division), so the same bits as the vectorised env."""
        fm = self.fills_model
        return float(self._cash * fm.sbu + self._base * self._close * fm.mul) / float(fm.sbu)

    def _observe(self) -> np.ndarray:
        out = self._obs_rows[self.t].copy()          # features, then holding = 0, unrealized = 0
        if self._holding:
            n = len(out) - 2
            pnl = 100.0 * np.log(np.float64(self._close) / np.float64(self.entry or self._close))
            out[n], out[n + 1] = 1.0, min(max(pnl, -PNL_CLIP), PNL_CLIP)
        return out

    # ---- one step -----------------------------------------------------------------------

    def step(self, action):
        if self._done:
            raise RuntimeError("EngineTradingEnv.step() before reset() or after the episode ended")
        long = check_action(action)
        fills = self._fills
        fills.clear()
        if long != self._holding:                    # else the strategy would do nothing: skip asking it
            self.agent.act(self.fills_model.symbol, long)    # at bar t's close: fills at bar t+1's open
        self.t += 1
        self._advance()
        fill_steps = fill_price = 0
        if fills:
            qty_fp, price_fp = self.instrument.filters.qty_fp, self.instrument.filters.price_fp
            for f in fills:
                steps = qty_fp.to_units(f.quantity)
                fill_price = price_fp.to_units(f.price)
                if f.side == "BUY":
                    fill_steps += steps
                    self.entry = fill_price
                else:
                    fill_steps -= steps
            self._read_account()
        equity = self._equity()
        if equity == self.equity:
            reward = 0.0                             # ln(1) = 0 exactly, as the vectorised env computes it
        elif equity > 0:
            reward = self.reward_scale * float(np.log(np.float64(equity / self.equity)))
        else:
            reward = -100.0 * self.reward_scale
        self.equity = equity
        terminated = equity <= 0
        truncated = self.t >= self.end and not terminated
        info = {"fill_steps": fill_steps, "fill_price": fill_price, "equity": equity * float(E8)}
        if terminated or truncated:
            self._done = True
            self.result = self.backtest.finish()
        return self._observe(), reward, terminated, truncated, info

    def equity_decimal(self) -> Decimal:
        """The portfolio's exact equity at the current bar's close."""
        return self.backtest.portfolio.equity()

    def close(self) -> None:
        if self.backtest is not None:
            self.backtest.finish()
