"""The Strategy base class: declarative attributes plus a few hooks.

    class MyStrategy(Strategy):
        timeframe = "1m"
        params = {"fast": Param(12, 2, 200, "fast EMA period"), ...}

        def on_start(self):
            self.fast = EMA(self.p.fast)

        def on_bar(self, bar):
            ...
            self.buy(bar.symbol, confidence=0.7, reason="fast crossed above slow")

Hooks (all optional): on_start, on_bar(bar) for closed bars of `timeframe`,
on_trade(trade), on_book(book) (ready books only: set `wants_book = True`),
on_fill(fill), on_stop. Signals go through `buy()` / `sell()`; the risk engine sizes
and may deny them. Read state with `position(symbol)`, `equity()`, `book(symbol)`,
`price(symbol, ticks)`. Names starting with `_abd_` belong to the framework.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from abidance.core.events import Signal


@dataclass(frozen=True)
class Param:
    """A tunable parameter: its default, its range (for validation and optimisation), a description."""

    default: Any
    low: Any = None
    high: Any = None
    doc: str = ""
    choices: tuple = ()

    def validate(self, name: str, value: Any) -> Any:
        kind = type(self.default)
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if type(value) is not kind:
            raise ValueError(f"{name} must be {kind.__name__}, got {value!r}")
        if kind is float and not math.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value!r}")
        if self.choices and value not in self.choices:
            raise ValueError(f"{name} must be one of {', '.join(map(repr, self.choices))}, got {value!r}")
        if self.low is not None and value < self.low or self.high is not None and value > self.high:
            raise ValueError(f"{name} must be within [{self.low}, {self.high}], got {value!r}")
        return value


# The hooks of an ML strategy (abidance/ml/ml_signal.py), through which a model
# deployment (abidance/ml/model_deployment.py) runs it in shadow or live.
ML_HOOKS = ("predict_only", "on_features", "on_shadow_signal", "last_p")


def is_ml_strategy(strategy) -> bool:
    return all(hasattr(strategy, a) for a in ML_HOOKS)


class StrategyContext:
    """What the engine gives a strategy: read-only views and the signal outlet. `owner` is the
    strategy id whose positions `position()` reads (a hosted strategy reads its host's: the
    host's id is on the signals it passes on); None: the strategy's own."""

    def __init__(self, emit, clock, portfolio=None, books=None, instruments=None, owner: str | None = None):
        self.emit = emit
        self.clock = clock
        self.portfolio = portfolio
        self.books = books if books is not None else {}
        self.instruments = instruments or {}
        self.owner = owner


class Strategy:
    name: str = ""                      # registry name of built-ins
    timeframe: str = "1m"
    symbols: tuple[str, ...] = ()       # defaults; the config usually sets them
    params: dict[str, Param] = {}
    wants_book: bool = False
    wants_trades: bool = False

    def __init__(self, strategy_id: str, symbols, params: dict | None = None, timeframe: str | None = None):
        self._abd_id = strategy_id
        self._abd_symbols = tuple(symbols or self.symbols)
        if not self._abd_symbols:
            raise ValueError(f"strategy {strategy_id!r} has no symbols")
        self.timeframe = timeframe or self.timeframe
        self.p = SimpleNamespace(**self.resolve_params(params or {}, prefix=f"strategies.{strategy_id}.params"))
        self._abd_ctx: StrategyContext | None = None

    @classmethod
    def resolve_params(cls, given: dict, prefix: str = "params") -> dict:
        """Declared defaults overridden by `given`; unknown or invalid values name the key."""
        unknown = sorted(set(given) - set(cls.params))
        if unknown:
            raise ValueError(f"{prefix}.{unknown[0]} is not a parameter of {cls.__name__} "
                             f"(known: {', '.join(sorted(cls.params)) or 'none'})")
        out = {}
        for name, spec in cls.params.items():
            out[name] = spec.validate(f"{prefix}.{name}", given.get(name, spec.default))
        return out

    # ---- identity and views ----------------------------------------------------------

    @property
    def id(self) -> str:
        return self._abd_id

    @property
    def traded_symbols(self) -> tuple[str, ...]:
        return self._abd_symbols

    def position(self, symbol: str):
        """This strategy's base-asset quantity held, in whole lot steps (Decimal; fee dust below
        one step is not a position: it cannot be sold); 0 when there is no portfolio view. What
        other strategies hold in the symbol is theirs: `account_position(symbol)` reads the sum."""
        ctx = self._abd_ctx
        if ctx.portfolio is None:
            return 0
        return ctx.portfolio.tradable_position(symbol, ctx.owner or self._abd_id)

    def account_position(self, symbol: str):
        """The account's position in symbol: every strategy's together."""
        pf = self._abd_ctx.portfolio
        return pf.tradable_position(symbol) if pf is not None else 0

    def equity(self):
        pf = self._abd_ctx.portfolio
        return pf.equity() if pf is not None else 0

    def book(self, symbol: str):
        """The symbol's OrderBook when it is ready, else None."""
        return self._abd_ctx.books.get(symbol)

    def price(self, symbol: str, ticks: int) -> float:
        """Ticks as a float price, for indicator maths (orders stay in exact ticks)."""
        return ticks * self._abd_ctx.instruments[symbol]

    def now_ns(self) -> int:
        return self._abd_ctx.clock.time_ns()

    # ---- signals ---------------------------------------------------------------------

    def buy(self, symbol: str, confidence: float = 1.0, *, price: int = 0, reason: str = "",
            stop_loss: int = 0, take_profit: int = 0, trailing_bps: int = 0) -> None:
        ctx = self._abd_ctx
        ctx.emit(self, Signal(self._abd_id, symbol, "BUY", confidence, ctx.clock.time_ns(), price, reason,
                              stop_loss, take_profit, trailing_bps))

    def sell(self, symbol: str, confidence: float = 1.0, *, price: int = 0, reason: str = "") -> None:
        ctx = self._abd_ctx
        ctx.emit(self, Signal(self._abd_id, symbol, "SELL", confidence, ctx.clock.time_ns(), price, reason))

    # ---- hooks -----------------------------------------------------------------------

    def on_start(self) -> None: ...
    def on_bar(self, bar) -> None: ...
    def on_trade(self, trade) -> None: ...
    def on_book(self, book) -> None: ...
    def on_fill(self, fill) -> None: ...
    def on_stop(self) -> None: ...
