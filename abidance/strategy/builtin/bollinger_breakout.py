"""Bollinger breakout: buy a close above the upper band, exit below the middle band."""

from __future__ import annotations

from abidance._core.indicators import BollingerBands
from abidance.strategy.base import Param, Strategy


class BollingerBreakout(Strategy):
    name = "bollinger_breakout"
    params = {
        "period": Param(20, 5, 200, "band period (bars)"),
        "k": Param(2.0, 0.5, 5.0, "band width in standard deviations"),
    }

    def on_start(self) -> None:
        self.bands = {s: BollingerBands(self.p.period, self.p.k, self.p.k) for s in self.traded_symbols}

    def on_bar(self, bar) -> None:
        close = self.price(bar.symbol, bar.close)
        bands = self.bands[bar.symbol]
        bands.update(close)
        if not bands.ready:
            return
        upper, middle = bands.upper, bands.middle
        held = self.position(bar.symbol) > 0
        if close > upper and not held:
            width = upper - middle
            self.buy(bar.symbol, min(1.0, 0.5 + (close - upper) / width) if width > 0 else 0.5,
                     reason=f"close {close:g} above upper band {upper:g}")
        elif close < middle and held:
            self.sell(bar.symbol, 0.8, reason=f"close {close:g} below middle band {middle:g}")
