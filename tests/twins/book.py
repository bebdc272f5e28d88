"""Pure-Python reference twin of abidance._core.book.OrderBook (tests only).

Plain dicts and sorted lists, written for obviousness rather than speed. Same API and
the same Binance Spot sequencing rules; parity tests require identical results.
"""

from __future__ import annotations

import bisect
from fractions import Fraction

from abidance._core.book import BookStatus, Side


class OrderBookTwin:
    def __init__(self, symbol: str = ""):
        self.symbol = symbol
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}
        self.bid_prices: list[int] = []   # ascending
        self.ask_prices: list[int] = []   # ascending
        self.last_update_id = -1
        self.resync_reason = BookStatus.NOT_READY
        self.updates_applied = 0
        self.resyncs_needed = 0

    @property
    def ready(self) -> bool:
        return self.resync_reason == BookStatus.APPLIED

    def _fail(self, reason: BookStatus) -> BookStatus:
        if self.resync_reason == BookStatus.APPLIED:
            self.resyncs_needed += 1
        self.resync_reason = reason
        return reason

    def invalidate(self) -> None:
        self._fail(BookStatus.NOT_READY)

    def _set(self, side: Side, px: int, qty: int) -> None:
        book, prices = (self.bids, self.bid_prices) if side == Side.BID else (self.asks, self.ask_prices)
        if qty == 0:
            if px in book:
                del book[px]
                prices.remove(px)
            return
        if px not in book:
            bisect.insort(prices, px)
        book[px] = qty

    def apply_snapshot(self, bids, asks, last_update_id: int) -> BookStatus:
        self.bids, self.asks, self.bid_prices, self.ask_prices = {}, {}, [], []
        if last_update_id < 0:
            return self._fail(BookStatus.INVALID_IDS)
        for px, qty in list(bids) + list(asks):
            if px <= 0 or qty <= 0:
                return self._fail(BookStatus.INVALID_VALUE)
        for px, qty in reversed(list(bids)):
            self._set(Side.BID, int(px), int(qty))
        for px, qty in reversed(list(asks)):
            self._set(Side.ASK, int(px), int(qty))
        self.last_update_id = last_update_id
        if self.bid_prices and self.ask_prices and self.bid_prices[-1] >= self.ask_prices[0]:
            return self._fail(BookStatus.CROSSED)
        self.resync_reason = BookStatus.APPLIED
        return BookStatus.APPLIED

    def apply_diff_levels(self, first_id: int, final_id: int, bids, asks) -> BookStatus:
        if not self.ready:
            return BookStatus.NOT_READY
        if first_id < 0 or first_id > final_id:
            return self._fail(BookStatus.INVALID_IDS)
        if final_id <= self.last_update_id:
            return BookStatus.STALE
        if first_id > self.last_update_id + 1:
            return self._fail(BookStatus.GAP)
        for px, qty in list(bids) + list(asks):
            if px <= 0 or qty < 0:
                return self._fail(BookStatus.INVALID_VALUE)
        for px, qty in bids:
            self._set(Side.BID, int(px), int(qty))
        for px, qty in asks:
            self._set(Side.ASK, int(px), int(qty))
        self.last_update_id = final_id
        self.updates_applied += len(bids) + len(asks)
        if self.bid_prices and self.ask_prices and self.bid_prices[-1] >= self.ask_prices[0]:
            return self._fail(BookStatus.CROSSED)
        return BookStatus.APPLIED

    # ---- queries ---------------------------------------------------------------------

    @property
    def bid_count(self) -> int:
        return len(self.bids)

    @property
    def ask_count(self) -> int:
        return len(self.asks)

    def best_bid(self):
        return (self.bid_prices[-1], self.bids[self.bid_prices[-1]]) if self.bids else None

    def best_ask(self):
        return (self.ask_prices[0], self.asks[self.ask_prices[0]]) if self.asks else None

    def spread(self):
        if not self.bids or not self.asks:
            return None
        return self.ask_prices[0] - self.bid_prices[-1]

    def mid(self):
        if not self.bids or not self.asks:
            return None
        return (self.bid_prices[-1] + self.ask_prices[0]) / 2

    def microprice(self):
        if not self.bids or not self.asks:
            return None
        (b, bq), (a, aq) = self.best_bid(), self.best_ask()
        return float(Fraction(b * aq + a * bq, aq + bq))

    def top(self, side: Side, n: int = 10) -> list[tuple[int, int]]:
        if side == Side.BID:
            prices = list(reversed(self.bid_prices))[:n]
            return [(p, self.bids[p]) for p in prices]
        return [(p, self.asks[p]) for p in self.ask_prices[:n]]

    def imbalance(self, depth: int = 5) -> float:
        b = sum(q for _, q in self.top(Side.BID, depth))
        a = sum(q for _, q in self.top(Side.ASK, depth))
        return 0.0 if a + b == 0 else (b - a) / (b + a)

    def cumulative_qty(self, side: Side, limit_px: int) -> int:
        if side == Side.BID:
            return sum(q for p, q in self.bids.items() if p >= limit_px)
        return sum(q for p, q in self.asks.items() if p <= limit_px)

    def fill_cost(self, side: Side, qty: int) -> tuple[int, int]:
        levels = self.top(Side.ASK if side == Side.BID else Side.BID, len(self.bids) + len(self.asks))
        left, cost = qty, 0
        for px, avail in levels:
            if left == 0:
                break
            take = min(avail, left)
            cost += px * take
            left -= take
        return qty - left, cost
