"""Exit orders kept locally: stop loss, take profit, trailing stop, as one-cancels-other.

Binance Spot has native STOP_LOSS_LIMIT / TAKE_PROFIT_LIMIT / OCO and trailingDelta,
but the simulator does not, and a local exit can follow any price feed: so exits are
emulated here (documented in docs/execution.md). When an entry with exits fills, a
bracket is armed for that strategy's position in the symbol (one bracket per (strategy,
symbol): two strategies on one symbol each protect their own); every trade of the symbol
is checked against it; the first level hit sends a SELL signal in that strategy's name
(through the risk engine like any order, sized from that strategy's position) and disarms
the whole bracket. The trailing stop follows the highest trade since entry.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from abidance.core import topics
from abidance.core.bus import Priority
from abidance.core.component import Component
from abidance.core.events import Signal

log = logging.getLogger("abidance.exits")


@dataclass
class Bracket:
    strategy_id: str
    symbol: str
    stop_loss: int          # ticks, 0 = none
    take_profit: int
    trailing_bps: int
    high: int = 0           # highest trade price since armed (for the trailing stop)

    def trigger(self, price: int) -> str:
        """The reason to exit at this trade price, or ""."""
        if price > self.high:
            self.high = price
        if self.stop_loss and price <= self.stop_loss:
            return f"stop loss {self.stop_loss} hit at {price}"
        if self.take_profit and price >= self.take_profit:
            return f"take profit {self.take_profit} hit at {price}"
        if self.trailing_bps and price * 10_000 <= self.high * (10_000 - self.trailing_bps):
            return f"trailing stop {self.trailing_bps} bps below high {self.high} hit at {price}"
        return ""


class ExitManager(Component):
    def __init__(self, bus, clock, execution):
        super().__init__("ExitManager", bus, clock)
        self.execution = execution
        self.brackets: dict[tuple[str, str], Bracket] = {}    # (strategy id, symbol) -> the armed bracket
        self._firing: dict[tuple[str, str], Bracket] = {}     # exits sent to the risk engine, not yet decided
        self.triggered = 0
        self.rearmed = 0

    def describe(self) -> dict:
        return {"brackets": "per (strategy, symbol)"}

    def on_start(self) -> None:
        self.bus.subscribe(topics.FILLS, self.handle_fill)
        # Exits react to a trade before strategies do (a stop is the first to sell).
        self.bus.subscribe(topics.TRADES, self.handle_trade, Priority.ENGINE)
        self.bus.subscribe(topics.RISK_DECISIONS, self.handle_decision)

    def on_stop(self) -> None:
        self.bus.unsubscribe(topics.FILLS, self.handle_fill)
        self.bus.unsubscribe(topics.TRADES, self.handle_trade)
        self.bus.unsubscribe(topics.RISK_DECISIONS, self.handle_decision)

    def handle_decision(self, decision) -> None:
        key = (decision.strategy_id, decision.symbol)
        bracket = self._firing.pop(key, None)
        if bracket is None or decision.side != "SELL":
            return
        if not decision.accepted and decision.reason != "NO_POSITION" and key not in self.brackets:
            # The exit was refused (halted, no price...): keep protecting the position.
            self.brackets[key] = bracket
            self.rearmed += 1
            log.warning("%s exit refused (%s): bracket armed again", decision.symbol, decision.reason)

    def handle_fill(self, fill) -> None:
        key = (fill.strategy_id, fill.symbol)
        if fill.side == "SELL":
            self.disarm(fill.symbol, fill.strategy_id)     # spot strategies sell the whole position
            return
        levels = self.execution.exits.get(fill.client_order_id)
        if levels and key not in self.brackets:
            self.execution.exits.pop(fill.client_order_id, None)    # armed once per entry
            stop, take, trail = levels
            price = self.execution.instruments[fill.symbol].filters.price_fp.to_units(fill.price) if fill.price else 0
            self.brackets[key] = Bracket(fill.strategy_id, fill.symbol, stop, take, trail, price)
            log.info("%s %s exits armed: stop %s, take %s, trailing %s bps", fill.strategy_id, fill.symbol, stop,
                     take, trail)

    def handle_trade(self, trade) -> None:
        if not self.brackets:
            return
        for key, bracket in list(self.brackets.items()):
            if bracket.symbol != trade.symbol:
                continue
            reason = bracket.trigger(trade.price)
            if reason:
                del self.brackets[key]      # one cancels the others
                self._firing[key] = bracket
                self.triggered += 1
                log.warning("%s %s exit: %s", bracket.strategy_id, trade.symbol, reason)
                self.bus.publish(topics.SIGNALS, Signal(bracket.strategy_id, trade.symbol, "SELL", 1.0,
                                                        self.clock.time_ns(), reason=reason))

    def disarm(self, symbol: str, strategy_id: str | None = None) -> None:
        """Disarm one strategy's bracket in symbol, or every bracket of the symbol (None)."""
        for key in [k for k in self.brackets if k[1] == symbol and (strategy_id is None or k[0] == strategy_id)]:
            del self.brackets[key]

    def to_state(self) -> list:
        return [[b.strategy_id, b.symbol, b.stop_loss, b.take_profit, b.trailing_bps, b.high]
                for b in self.brackets.values()]

    def load_state(self, state) -> None:
        """A to_state() list; an older state ({symbol: [strategy, stop, take, trail, high]}) reads too."""
        rows = [[sid, sym, *rest] for sym, (sid, *rest) in state.items()] if isinstance(state, dict) else state
        for sid, symbol, stop, take, trail, high in rows:
            self.brackets[(sid, symbol)] = Bracket(sid, symbol, stop, take, trail, high)
