"""ema_cross with its rule compiled (EmaCrossKernel): the same decisions as ema_cross,
and backtests that fast-forward through the bars where nothing crosses."""

from __future__ import annotations

from abidance._core.barloop import Action, EmaCrossKernel
from abidance.strategy.builtin.ema_cross import EmaCross
from abidance.strategy.compiled import CompiledBarStrategy


class EmaCrossCompiled(CompiledBarStrategy):
    name = "ema_cross_c"
    params = EmaCross.params

    def make_kernel(self, symbol: str) -> EmaCrossKernel:
        return EmaCrossKernel(self.p.fast, self.p.slow, self._abd_ctx.instruments[symbol], self.p.min_gap_bps)

    def on_action(self, bar, action: int, kernel: EmaCrossKernel) -> None:
        gap_bps = kernel.gap_bps
        confidence = min(1.0, 0.5 + abs(gap_bps) / 100.0)
        if action == Action.BUY and self.position(bar.symbol) == 0:
            self.buy(bar.symbol, confidence, reason=f"EMA{self.p.fast} crossed above EMA{self.p.slow} ({gap_bps:.1f} bps)")
        elif action == Action.SELL and self.position(bar.symbol) > 0:
            self.sell(bar.symbol, confidence, reason=f"EMA{self.p.fast} crossed below EMA{self.p.slow} ({gap_bps:.1f} bps)")
