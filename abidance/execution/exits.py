"""Exits: stop loss, take profit, trailing stop, as one-cancels-other, native or emulated.

Native (execution.exits = "native", or "auto" when trading live): the exit rests on the
exchange and fires without the node (native_exits.py). Emulated (paper trading, backtests,
"emulated", or an exit the symbol cannot carry natively): the node watches trades. When an
entry with exits fills, a bracket is armed for that strategy's position in the symbol (one bracket per (strategy,
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
from abidance.core.events import Alert, Signal
from abidance.execution.native_exits import NativeExits
from abidance.execution.orders import TERMINAL

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
    def __init__(self, bus, clock, execution, mode: str = "emulated", ids=None):
        super().__init__("ExitManager", bus, clock)
        if mode not in ("emulated", "native"):
            raise ValueError(f"exit mode must be 'emulated' or 'native', got {mode!r}")
        if mode == "native" and not hasattr(execution.client, "place_exit"):
            raise ValueError(f"native exits need a venue that keeps them; {type(execution.client).__name__} "
                             "does not (use execution.exits = \"emulated\")")
        self.mode = mode
        self.execution = execution
        self.native = NativeExits(bus, clock, execution, ids, self._emulate) if mode == "native" else None
        self._unavailable: set[str] = set()     # reasons already alerted
        self.brackets: dict[tuple[str, str], Bracket] = {}    # (strategy id, symbol) -> the armed bracket
        self._firing: dict[tuple[str, str], Bracket] = {}     # exits sent to the risk engine, not yet decided
        self.triggered = 0
        self.rearmed = 0

    def describe(self) -> dict:
        return {"brackets": "per (strategy, symbol)", "mode": self.mode}

    def on_start(self) -> None:
        if self.native is not None:
            self.bus.subscribe(topics.ORDER_EVENTS, self.handle_order_event)
            self.execution.sell_gate = self.native.before_sell
        self.bus.subscribe(topics.FILLS, self.handle_fill)
        # Exits react to a trade before strategies do (a stop is the first to sell).
        self.bus.subscribe(topics.TRADES, self.handle_trade, Priority.ENGINE)
        self.bus.subscribe(topics.RISK_DECISIONS, self.handle_decision)

    def on_stop(self) -> None:
        if self.native is not None:
            self.bus.unsubscribe(topics.ORDER_EVENTS, self.handle_order_event)
            self.execution.sell_gate = None
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

    def handle_order_event(self, ev) -> None:
        """Native mode: an entry with exit levels that ended with a fill gets its protection."""
        if ev.status not in TERMINAL:
            return          # most events (submitted, NEW): nothing ended, for native exits either
        self.native.on_order_event(ev)
        if ev.side != "BUY" or not ev.filled:
            return
        levels = self.execution.exits.pop(ev.client_order_id, None)
        if levels is None:
            return
        key = (ev.strategy_id, ev.symbol)
        problem = self.native.problem(ev.symbol, levels)
        if problem:
            self._emulate(key, levels, problem)
            return
        self.brackets.pop(key, None)
        self.native.protect(ev.strategy_id, ev.symbol, levels)

    def _emulate(self, key, levels, reason: str) -> None:
        """An exit the venue cannot keep: watched by the node, as in emulated mode."""
        if reason not in self._unavailable:
            self._unavailable.add(reason)
            self.bus.publish(topics.ALERTS, Alert("warning", "exits", "native_exit_unavailable",
                                                  f"{key[0]} {key[1]}: exits emulated in the node: {reason}",
                                                  self.clock.time_ns()))
        if key not in self.brackets:
            high = self.execution.account.mark(key[1]) if self.execution.account is not None else None
            price = self.execution.instruments[key[1]].filters.price_fp.to_units(high) if high else 0
            self.brackets[key] = Bracket(key[0], key[1], *levels, price)

    def handle_fill(self, fill) -> None:
        key = (fill.strategy_id, fill.symbol)
        if fill.side == "SELL":
            self.disarm(fill.symbol, fill.strategy_id)     # spot strategies sell the whole position
            return
        if self.native is not None:
            return          # native: protected when the entry ends (handle_order_event)
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

    def to_state(self) -> dict:
        return {"brackets": [[b.strategy_id, b.symbol, b.stop_loss, b.take_profit, b.trailing_bps, b.high]
                             for b in self.brackets.values()],
                "native": self.native.to_state() if self.native is not None else []}

    def load_state(self, state) -> None:
        """A to_state() dict; older states (a list of brackets, or {symbol: [strategy, stop, take, trail,
        high]}) read too."""
        if isinstance(state, dict) and ("brackets" in state or "native" in state):
            native, rows = state.get("native", []), state.get("brackets", [])
            if self.native is not None:
                self.native.load_state(native)
            elif native:
                # Switched to emulated with exits resting on the venue: they stay there, followed as orders.
                log.warning("%d native exits from before the restart still rest on the venue (exits are now "
                            "emulated): cancel them on the venue if they are not wanted", len(native))
        else:
            rows = [[sid, sym, *rest] for sym, (sid, *rest) in state.items()] if isinstance(state, dict) else state
        for sid, symbol, stop, take, trail, high in rows:
            self.brackets[(sid, symbol)] = Bracket(sid, symbol, stop, take, trail, high)
