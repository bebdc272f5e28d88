"""Judge an agent on a held-out period on the real backtester, beside buy-and-hold and ema_cross.

All three run on the engine (Backtest) over the same bars with the same account, fees,
slippage and sizing (EnvSettings, abidance.backtest.research_config): the agent through
EngineTradingEnv (greedy actions), buy-and-hold (abidance.backtest.baselines: bought at the
second bar's open and held, what the action "long" on every bar does), and the ema_cross
rule strategy configured like the node would run it. ema_cross starts cold on
the period (its slow EMA needs `ema_slow` bars), while the agent's features may use bars
before it: both only ever see the past.

`table`: one row per strategy with final_equity (Decimal, quote asset), total_return and
max_drawdown (fractions, from the per-bar equity, abidance.reports.metrics) and trades (filled
orders). `curves`: per strategy, the per-bar equity (ts, equity) for a chart.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from abidance.backtest.baselines import buy_and_hold
from abidance.backtest.engine import Backtest
from abidance.backtest.research_config import research_config
from abidance.ml.rl.env import EngineTradingEnv
from abidance.ml.rl.fill_model import E8
from abidance.ml.rl.settings import EnvSettings
from abidance.reports.metrics import max_drawdown, total_return

ROWS = ("agent", "buy_and_hold", "ema_cross")


@dataclass
class Evaluation:
    table: pd.DataFrame                 # index: ROWS
    curves: dict[str, pd.DataFrame]     # name -> ts (datetime), equity (Decimal)
    window: tuple[int, int]             # bar indices evaluated (inclusive)


def _row(result) -> dict:
    equity = result.equity.equity
    return {"final_equity": result.final_equity, "total_return": total_return(equity),
            "max_drawdown": max_drawdown(equity).fraction, "trades": len(result.fills)}


def _curve(result) -> pd.DataFrame:
    return pd.DataFrame({"ts": pd.to_datetime(result.equity.ts, unit="ns", utc=True), "equity": result.equity.equity})


def _run_env(env: EngineTradingEnv, policy) -> object:
    obs, _ = env.reset()
    while True:
        obs, _, terminated, truncated, _ = env.step(policy(obs))
        if terminated or truncated:
            return env.result


def evaluate(agent, bars, instrument, *, window: tuple[int, int] | None = None, settings: EnvSettings | None = None,
             ema_fast: int = 12, ema_slow: int = 26) -> Evaluation:
    """`agent`: a TrainedAgent (or anything with act(obs) -> 0/1 and .observation). `bars`: the Bar
    list (with history before the window if the features need it); `window`: inclusive indices."""
    settings = settings or getattr(agent, "settings", None) or EnvSettings()
    bars = list(bars)
    env = EngineTradingEnv(bars, instrument, window=window, observation=agent.observation, **settings.kwargs())
    first, last = env.window
    results = {"agent": _run_env(env, agent.act)}
    symbol, quote = instrument.symbol, instrument.quote_asset
    account = dict(instruments={symbol: instrument}, balances={quote: env.cash0 * E8},
                   taker_bps=settings.taker_bps, slippage_bps=settings.slippage_bps)
    held_out = {symbol: bars[first:last + 1]}
    results["buy_and_hold"] = buy_and_hold(research_config(quote, settings.fraction), held_out, **account)
    rule = f"""
[[strategies]]
id = "ema_cross"
class = "ema_cross"
symbols = ["{symbol}"]
timeframe = "{bars[0].interval}"
params = {{ fast = {int(ema_fast)}, slow = {int(ema_slow)} }}
"""
    config = research_config(quote, settings.fraction, rule)
    results["ema_cross"] = Backtest(config, held_out, **account).run()
    table = pd.DataFrame([_row(results[name]) for name in ROWS], index=list(ROWS))
    return Evaluation(table, {name: _curve(results[name]) for name in ROWS}, (first, last))
