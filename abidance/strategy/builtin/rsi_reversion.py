"""RSI mean reversion: buy oversold, sell overbought."""

from __future__ import annotations

from abidance._core.indicators import RSI
from abidance.strategy.base import Param, Strategy


class RsiReversion(Strategy):
    name = "rsi_reversion"
    params = {
        "period": Param(14, 2, 100, "RSI period (bars)"),
        "oversold": Param(30.0, 1.0, 49.0, "buy when RSI falls below this"),
        "overbought": Param(70.0, 51.0, 99.0, "sell when RSI rises above this"),
    }

    def on_start(self) -> None:
        self.rsi = {s: RSI(self.p.period) for s in self.traded_symbols}

    def on_bar(self, bar) -> None:
        value = self.rsi[bar.symbol].update(self.price(bar.symbol, bar.close))
        if not self.rsi[bar.symbol].ready:
            return
        held = self.position(bar.symbol) > 0
        if value < self.p.oversold and not held:
            self.buy(bar.symbol, min(1.0, (self.p.oversold - value) / self.p.oversold + 0.5),
                     reason=f"RSI {value:.1f} < {self.p.oversold:g}")
        elif value > self.p.overbought and held:
            self.sell(bar.symbol, min(1.0, (value - self.p.overbought) / (100 - self.p.overbought) + 0.5),
                      reason=f"RSI {value:.1f} > {self.p.overbought:g}")
