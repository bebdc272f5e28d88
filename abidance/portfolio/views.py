"""Read-only views of the portfolio, for strategies and the risk engine.

A view exposes the portfolio's read methods and nothing else: no `apply_fill`, no `set_mark`,
no `from_state`, no attribute to assign. User code holds a view, never the portfolio, so it
cannot change the books every other component reads.
"""

from __future__ import annotations

from decimal import Decimal

READS = ("position", "tradable_position", "avg_price", "positions", "strategy_positions", "holdings", "mark",
         "cash", "balances", "positions_value", "equity", "unmarked", "realized_pnl", "unrealized_pnl",
         "fees_paid", "strategy_pnl", "drawdown", "stats")


class PortfolioView:
    """The portfolio's reads (see READS). `consecutive_losses` and `peak_equity` are read-only properties."""

    __slots__ = READS + ("_consecutive", "_peak")

    def __init__(self, portfolio):
        for name in READS:
            object.__setattr__(self, name, getattr(portfolio, name))
        # Counters are plain attributes of the portfolio: read through a getter, not copied.
        object.__setattr__(self, "_consecutive", lambda: portfolio.consecutive_losses)
        object.__setattr__(self, "_peak", lambda: portfolio.peak_equity)

    @property
    def consecutive_losses(self) -> int:
        return self._consecutive()

    @property
    def peak_equity(self) -> Decimal:
        return self._peak()

    def __setattr__(self, name, value):
        raise AttributeError(f"the portfolio view is read-only (cannot set {name})")

    def __repr__(self) -> str:
        return "PortfolioView()"
