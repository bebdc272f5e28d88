"""What user code is given cannot change what the engines read: events are immutable, the portfolio
and books are read-only views."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from abidance._core.book import OrderBook
from abidance.core.bus import MessageBus
from abidance.core.clock import TestClock
from abidance.core.events import Bar, Fill, OrderEvent, RiskDecision, Signal
from abidance.data.books import BookView
from abidance.portfolio import Portfolio
from abidance.portfolio.views import PortfolioView
from tests.unit.node_kit import INSTRUMENTS, T0, bar, fill, signal


@pytest.mark.parametrize("event, field", [
    (fill("BUY", "0.001", "50000"), "quantity"),
    (signal(), "confidence"),
    (bar(5_000_000), "close"),
    (OrderEvent("c", "s", "BTCUSDT", "BUY", "MARKET", "NEW", "", 1, 0, 0, 1, "", T0), "status"),
    (RiskDecision("s", "BTCUSDT", "BUY", True, "ACCEPTED", "", 1, 0, "c", 1.0, T0), "quantity"),
])
def test_events_handed_to_user_code_cannot_be_changed(event, field):
    with pytest.raises(AttributeError):
        setattr(event, field, 0)
    assert isinstance(event, (Fill, Signal, Bar, OrderEvent, RiskDecision))


def test_the_portfolio_view_reads_and_cannot_write():
    pf = Portfolio(MessageBus(), TestClock(T0), "USDT", INSTRUMENTS, {"USDT": D("1000")})
    pf.apply_fill(fill("BUY", "0.001", "50000", strategy_id="s1"))
    view = PortfolioView(pf)
    assert view.position("BTCUSDT", "s1") == D("0.001") and view.cash() == D("950")
    for name in ("apply_fill", "set_mark", "from_state", "handle_balances", "snapshot", "_positions"):
        assert not hasattr(view, name), name
    with pytest.raises(AttributeError, match="read-only"):
        view.position = lambda *a: D(1)


def test_a_book_view_reads_and_cannot_write():
    book = OrderBook("BTCUSDT")
    book.apply_snapshot([(100, 5)], [(101, 7)], 1)
    view = BookView(book)
    assert view.best_bid() == (100, 5) and view.ready and view.symbol == "BTCUSDT"
    for name in ("apply_diff", "apply_snapshot", "invalidate", "apply_diff_levels"):
        assert not hasattr(view, name), name
    with pytest.raises(AttributeError, match="read-only"):
        view.symbol = "ETHUSDT"
