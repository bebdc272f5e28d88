"""Order-book imbalance: buy when bids outweigh asks near the touch, exit when asks do.

Runs on every book update (tick level), with a cooldown so one burst of updates gives
one signal.
"""

from __future__ import annotations

from abidance.strategy.base import Param, Strategy


class BookImbalance(Strategy):
    name = "book_imbalance"
    wants_book = True
    params = {
        "depth": Param(5, 1, 50, "levels per side in the imbalance"),
        "threshold": Param(0.3, 0.01, 0.99, "act when |imbalance| exceeds this (imbalance in [-1, 1])"),
        "cooldown_s": Param(5.0, 0.0, 3600.0, "minimum seconds between signals per symbol"),
    }

    def on_start(self) -> None:
        self.cooldown_ns = int(self.p.cooldown_s * 1e9)
        self.last_signal = {s: -self.cooldown_ns - 1 for s in self.traded_symbols}

    def on_book(self, book) -> None:
        symbol = book.symbol
        now = self.now_ns()
        if now - self.last_signal[symbol] < self.cooldown_ns:
            return
        imbalance = book.imbalance(self.p.depth)
        if imbalance > self.p.threshold:
            if self.position(symbol) == 0:
                self.last_signal[symbol] = now
                self.buy(symbol, min(1.0, imbalance), reason=f"book imbalance {imbalance:+.2f}")
        elif imbalance < -self.p.threshold and self.position(symbol) > 0:
            self.last_signal[symbol] = now
            self.sell(symbol, min(1.0, -imbalance), reason=f"book imbalance {imbalance:+.2f}")
