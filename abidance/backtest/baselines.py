"""Baselines a strategy is judged against, run on the engine like any strategy.

`BuyAndHold` buys each of its symbols on the first closed bar it sees, so the market order
fills at the next bar's open, and holds to the end. The risk engine sizes the buy from the
config (e.g. fixed_fraction of the equity), the exchange filters apply, the BacktestVenue
fills it with the run's fees and slippage: the rules of every strategy it is compared with,
not a copy of them. While a symbol is not held (a buy denied or not yet affordable) it asks
again on the next bar, like the RL environments' action "long" on every bar.

    result = buy_and_hold(config, {"ETHBTC": bars}, balances={"BTC": Decimal(1)}, taker_bps=Decimal(10))
"""

from __future__ import annotations

from dataclasses import replace

from abidance.backtest.engine import Backtest
from abidance.strategy.base import Strategy

BUY_AND_HOLD = "buy_and_hold"


class BuyAndHold(Strategy):
    name = BUY_AND_HOLD

    def on_bar(self, bar) -> None:
        if self.position(bar.symbol) == 0:
            self.buy(bar.symbol, 1.0, reason="buy and hold")


def buy_and_hold_backtest(config, bars_by_symbol: dict, **backtest_options):
    """A Backtest (not yet run) of BuyAndHold over `bars_by_symbol` ({symbol: [Bar]}, one
    interval) with `config`'s risk and sizing (its own strategies left out); the keyword
    options are Backtest's (instruments, balances, taker_bps, slippage_bps, ...)."""
    intervals = {b.interval for bars in bars_by_symbol.values() for b in bars}
    if len(intervals) != 1:
        raise ValueError(f"buy_and_hold: the bars must share one interval, got {sorted(intervals) or 'no bars'}")
    strategy = BuyAndHold(BUY_AND_HOLD, list(bars_by_symbol), timeframe=intervals.pop())
    return Backtest(replace(config, strategies=()), bars_by_symbol, strategies=[strategy], **backtest_options)


def buy_and_hold(config, bars_by_symbol: dict, **backtest_options):
    """The BacktestResult of buy_and_hold_backtest(...)."""
    return buy_and_hold_backtest(config, bars_by_symbol, **backtest_options).run()
