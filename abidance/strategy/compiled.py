"""Strategies whose per-bar rule is a compiled kernel (abidance._core.barloop).

A `CompiledBarStrategy` keeps one kernel per symbol and, on each closed bar, asks it
for an action; `on_action` turns an action into a signal (checking the position, setting
the confidence). The backtester may run the kernels itself over many quiet bars at C
speed (`Backtest` fast-forward) and hand back only the bar that acted: `take_action`
then gives the strategy that precomputed action instead of feeding the bar twice.
"""

from __future__ import annotations

from abidance._core.barloop import BarKernel
from abidance.strategy.base import Strategy


class CompiledBarStrategy(Strategy):
    def make_kernel(self, symbol: str) -> BarKernel:
        raise NotImplementedError

    def on_action(self, bar, action: int, kernel: BarKernel) -> None:
        raise NotImplementedError

    def on_start(self) -> None:
        self.kernels = {s: self.make_kernel(s) for s in self.traded_symbols}
        self._precomputed: dict[str, int] = {}     # symbol -> close_time of a bar the kernel has seen

    def take_action(self, symbol: str, close_time: int) -> None:
        """The backtester ran this symbol's kernel up to the bar closing at close_time."""
        self._precomputed[symbol] = close_time

    def on_bar(self, bar) -> None:
        kernel = self.kernels[bar.symbol]
        if self._precomputed.get(bar.symbol) == bar.close_time:
            del self._precomputed[bar.symbol]
            action = kernel.action
        else:
            action = kernel.on_bar(bar.open, bar.high, bar.low, bar.close, bar.volume)
        if action:
            self.on_action(bar, action, kernel)
