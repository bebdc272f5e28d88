"""StrategyEngine: feeds strategies their data and passes their signals on.

Closed bars go to strategies of that symbol and timeframe; ready books to those with
`wants_book`; fills to the strategy that owns the order. Strategies see read-only views:
the portfolio through PortfolioView (their own positions by default), books through the
data engine's BookView, events that cannot be changed. The engine subscribes at
Priority.STRATEGY: whatever a strategy reads was updated by the engines before it is called,
and strategies are called in the config's order. Every call into user code goes
through `_call`: an exception disables that strategy (the others keep running), raises
an alert and is counted. A signal with a bad confidence, side or symbol is refused with
an alert; the strategy keeps running.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict

from abidance.core import topics
from abidance.core.bus import Priority
from abidance.core.component import Component
from abidance.core.events import Alert, Signal
from abidance.strategy.base import Strategy, StrategyContext

log = logging.getLogger("abidance.strategy")


class StrategyEngine(Component):
    def __init__(self, bus, clock, strategies: list[Strategy], portfolio=None, tick_sizes: dict | None = None):
        super().__init__("StrategyEngine", bus, clock)
        self.strategies = {s.id: s for s in strategies}
        self.books: dict = {}                       # symbol -> ready OrderBook
        self.ctx = StrategyContext(self._emit, clock, portfolio, self.books, tick_sizes or {})
        self.disabled: dict[str, str] = {}          # strategy id -> why
        self.errors: dict[str, int] = defaultdict(int)
        self.signals = 0
        self.refused_signals = 0
        self._by_bar: dict[tuple[str, str], list[Strategy]] = defaultdict(list)
        self._by_book: dict[str, list[Strategy]] = defaultdict(list)
        self._by_trade: dict[str, list[Strategy]] = defaultdict(list)

    def describe(self) -> dict:
        return {"strategies": [{"id": s.id, "class": type(s).__name__, "symbols": list(s.traded_symbols),
                                "timeframe": s.timeframe, "params": dict(sorted(vars(s.p).items())),
                                "wants_book": s.wants_book, "wants_trades": s.wants_trades}
                               for s in self.strategies.values()]}

    # ---- lifecycle -------------------------------------------------------------------

    def on_start(self) -> None:
        for s in self.strategies.values():
            s._abd_ctx = self.ctx
            if not self._call(s, "on_start"):
                continue
            for sym in s.traded_symbols:
                self._by_bar[(sym, s.timeframe)].append(s)
                if s.wants_book:
                    self._by_book[sym].append(s)
                if s.wants_trades:
                    self._by_trade[sym].append(s)
        for topic, handler in self._handlers():
            self.bus.subscribe(topic, handler, Priority.STRATEGY)

    def _handlers(self):
        return ((topics.BARS, self.handle_bar), (topics.BOOKS, self.handle_book),
                (topics.BOOK_STATUS, self.handle_book_status), (topics.TRADES, self.handle_trade),
                (topics.FILLS, self.handle_fill))

    def on_stop(self) -> None:
        for topic, handler in self._handlers():
            self.bus.unsubscribe(topic, handler)
        for s in self.strategies.values():
            if s.id not in self.disabled:
                self._call(s, "on_stop")

    # ---- inputs ----------------------------------------------------------------------

    def handle_bar(self, bar) -> None:
        for s in self._by_bar.get((bar.symbol, bar.interval), ()):
            if s.id not in self.disabled:
                self._call(s, "on_bar", bar)

    def handle_book(self, book) -> None:
        # The connector publishes a book only while it is consistent.
        self.books[book.symbol] = book
        for s in self._by_book.get(book.symbol, ()):
            if s.id not in self.disabled:
                try:        # _call(s, "on_book", book), inlined: every tick
                    s.on_book(book)
                except Exception as exc:  # noqa: BLE001 - user code: contain anything
                    self._failed(s, "on_book", exc)

    def handle_book_status(self, change) -> None:
        if not change.ready:
            self.books.pop(change.symbol, None)     # strategies must not read a book being resynced

    def handle_trade(self, trade) -> None:
        for s in self._by_trade.get(trade.symbol, ()):
            if s.id not in self.disabled:
                self._call(s, "on_trade", trade)

    def handle_fill(self, fill) -> None:
        s = self.strategies.get(fill.strategy_id)     # the order's owner: the fill carries it
        if s is not None and s.id not in self.disabled:
            self._call(s, "on_fill", fill)

    # ---- user code -------------------------------------------------------------------

    def _call(self, s: Strategy, hook: str, *args) -> bool:
        try:
            getattr(s, hook)(*args)
            return True
        except Exception as exc:  # noqa: BLE001 - user code: contain anything
            self._failed(s, hook, exc)
            return False

    def _failed(self, s: Strategy, hook: str, exc: Exception) -> None:
        """Called from within the except block (log.exception shows the traceback)."""
        self.errors[s.id] += 1
        self.disable(s.id, f"{hook} raised {type(exc).__name__}: {exc}")
        log.exception("strategy %s: %s failed; strategy disabled", s.id, hook)

    def disable(self, strategy_id: str, why: str) -> None:
        if strategy_id in self.disabled:
            return
        self.disabled[strategy_id] = why
        self.bus.publish(topics.ALERTS, Alert("error", f"strategy.{strategy_id}", "strategy_disabled",
                                              f"strategy {strategy_id} disabled: {why}", self.clock.time_ns()))

    def enable(self, strategy_id: str) -> None:
        self.disabled.pop(strategy_id, None)

    def _emit(self, s: Strategy, signal: Signal) -> None:
        # The common, valid signal in one expression; anything else gets the checks that name the problem.
        c = signal.confidence
        if type(c) is float and 0.0 <= c <= 1.0 and type(signal.price) is int and signal.price >= 0 \
                and not (signal.stop_loss or signal.take_profit or signal.trailing_bps) \
                and signal.symbol in s.traded_symbols:
            self.signals += 1
            self.bus.publish(topics.SIGNALS, signal)
            return
        problem = None
        if not isinstance(signal.confidence, (int, float)) or not math.isfinite(signal.confidence) \
                or not 0.0 <= signal.confidence <= 1.0:
            problem = f"confidence must be a finite number in [0, 1], got {signal.confidence!r}"
        elif signal.symbol not in s.traded_symbols:
            problem = f"symbol {signal.symbol!r} is not one of its symbols {s.traded_symbols}"
        else:
            # Exits too: the risk engine multiplies them by a Decimal tick size (a float there raises).
            for name in ("price", "stop_loss", "take_profit", "trailing_bps"):
                value = getattr(signal, name)
                if type(value) is not int or value < 0:
                    unit = "basis points" if name == "trailing_bps" else "ticks"
                    problem = f"{name} must be whole {unit} >= 0, got {value!r}"
                    break
        if problem is not None:
            self.refused_signals += 1
            log.error("strategy %s: signal refused: %s", s.id, problem)
            self.bus.publish(topics.ALERTS, Alert("warning", f"strategy.{s.id}", "invalid_signal",
                                                  f"strategy {s.id}: signal refused: {problem}", signal.ts_event))
            return
        self.signals += 1
        self.bus.publish(topics.SIGNALS, signal)
