"""EMA crossover: long when the fast EMA crosses above the slow one, flat when below."""

from __future__ import annotations

from abidance._core.fused import IndicatorSet
from abidance._core.indicators import EMA
from abidance.strategy.base import Param, Strategy


class EmaCross(Strategy):
    name = "ema_cross"
    params = {
        "fast": Param(12, 2, 200, "fast EMA period (bars)"),
        "slow": Param(26, 3, 400, "slow EMA period (bars)"),
        "min_gap_bps": Param(0.0, 0.0, 50.0, "ignore crosses closer than this gap (bps of price)"),
    }

    def on_start(self) -> None:
        if self.p.fast >= self.p.slow:
            raise ValueError(f"{self.id}: fast ({self.p.fast}) must be below slow ({self.p.slow})")
        # Both EMAs in one call per bar (IndicatorSet): the call, not the EMA, is most of the cost.
        self.emas = {s: IndicatorSet([EMA(self.p.fast), EMA(self.p.slow)]) for s in self.traded_symbols}
        self.above = {s: None for s in self.traded_symbols}

    def on_bar(self, bar) -> None:
        fast, slow = self.emas[bar.symbol].update(self.price(bar.symbol, bar.close))
        if slow != slow:        # NaN: the slow EMA is not ready yet (finite closes make finite EMAs)
            return
        gap_bps = (fast - slow) / slow * 1e4
        above = gap_bps > 0
        was = self.above[bar.symbol]
        self.above[bar.symbol] = above
        if was is None or above == was or abs(gap_bps) < self.p.min_gap_bps:
            return
        confidence = min(1.0, 0.5 + abs(gap_bps) / 100.0)
        if above and self.position(bar.symbol) == 0:
            self.buy(bar.symbol, confidence, reason=f"EMA{self.p.fast} crossed above EMA{self.p.slow} ({gap_bps:.1f} bps)")
        elif not above and self.position(bar.symbol) > 0:
            self.sell(bar.symbol, confidence, reason=f"EMA{self.p.fast} crossed below EMA{self.p.slow} ({gap_bps:.1f} bps)")
