"""The venue's order book: price levels holding FIFO queues of resting orders (price-time priority).

Prices are int ticks and quantities int steps. Each side keeps a dict price -> Level and a sorted
list of sort keys arranged so that the best level is always the *last* element (bids store the
price, asks store -price): the matching engine works at the top of the book, and popping from the
end of a list is O(1) where popping from its front is O(n).

Every mutation is one book event: it takes the next `update_id` and reports the level it changed
(side "b"/"a", price ticks, new total steps — 0 when the level is gone) to the callback, so that
the depth stream is exactly the book's changes and a snapshot's lastUpdateId is the last event.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import deque
from typing import Callable, Iterator

LevelCallback = Callable[[str, int, int, int], None]   # (side "b"|"a", price_ticks, total_steps, update_id)


class Level:
    """One price: its resting orders oldest first and the sum of their remaining steps."""

    __slots__ = ("price", "orders", "total")

    def __init__(self, price: int):
        self.price = price
        self.orders: deque = deque()
        self.total = 0


class BookSide:
    """One side of the book. `keys` is sorted ascending with the best level last."""

    __slots__ = ("code", "is_bid", "levels", "keys", "_sign")

    def __init__(self, is_bid: bool):
        self.is_bid = is_bid
        self.code = "b" if is_bid else "a"
        self.levels: dict[int, Level] = {}
        self.keys: list[int] = []
        self._sign = 1 if is_bid else -1    # key = sign * price puts the best price last

    def best(self) -> Level | None:
        keys = self.keys
        return self.levels[keys[-1] * self._sign] if keys else None

    def best_price(self) -> int | None:
        keys = self.keys
        return keys[-1] * self._sign if keys else None

    def iter_levels(self) -> Iterator[Level]:
        """Levels best first."""
        levels, sign = self.levels, self._sign
        for key in reversed(self.keys):
            yield levels[key * sign]

    def __len__(self) -> int:
        return len(self.keys)

    def _open_level(self, price: int) -> Level:
        level = Level(price)
        self.levels[price] = level
        insort(self.keys, price * self._sign)
        return level

    def _close_level(self, price: int) -> None:
        del self.levels[price]
        keys, key = self.keys, price * self._sign
        if keys[-1] == key:
            keys.pop()
        else:
            del keys[bisect_left(keys, key)]


class Book:
    """Both sides plus the update-id sequence. Orders need `.side` ("BUY"/"SELL"), `.price_ticks`
    and their remaining quantity passed in; the book never reads or changes order quantities."""

    __slots__ = ("bids", "asks", "update_id", "_on_change")

    def __init__(self, on_change: LevelCallback | None = None):
        self.bids = BookSide(True)
        self.asks = BookSide(False)
        self.update_id = 0
        self._on_change = on_change or _ignore

    def side_of(self, order_side: str) -> BookSide:
        """The side an order of that side rests on."""
        return self.bids if order_side == "BUY" else self.asks

    def opposite_of(self, order_side: str) -> BookSide:
        """The side an order of that side takes from."""
        return self.asks if order_side == "BUY" else self.bids

    # ---- mutations: each is one event ---------------------------------------------------------

    def add(self, order, remaining: int) -> int:
        """Rest `order` at the back of its price level. Returns the event's update id."""
        side = self.bids if order.side == "BUY" else self.asks
        price = order.price_ticks
        level = side.levels.get(price) or side._open_level(price)
        level.orders.append(order)
        level.total += remaining
        return self._emit(side.code, price, level.total)

    def remove(self, order, remaining: int) -> int:
        """Take a resting order out of its level (cancel / expire). Returns the event's update id."""
        side = self.bids if order.side == "BUY" else self.asks
        price = order.price_ticks
        level = side.levels[price]
        level.orders.remove(order)          # identity: Order compares by identity (eq=False)
        level.total -= remaining
        if not level.orders:
            side._close_level(price)
        return self._emit(side.code, price, level.total)

    def reduce(self, order, qty: int) -> int:
        """A resting order keeps its place but rests `qty` less (amend, self-trade decrement).
        Returns the event's update id."""
        side = self.bids if order.side == "BUY" else self.asks
        level = side.levels[order.price_ticks]
        level.total -= qty
        return self._emit(side.code, level.price, level.total)

    def fill_front(self, side: BookSide, level: Level, qty: int, done: bool) -> int:
        """The level's first order traded `qty`; `done` pops it. Returns the event's update id."""
        level.total -= qty
        if done:
            level.orders.popleft()
            if not level.orders:
                side._close_level(level.price)
        return self._emit(side.code, level.price, level.total)

    def _emit(self, code: str, price: int, total: int) -> int:
        self.update_id += 1
        self._on_change(code, price, total, self.update_id)
        return self.update_id

    # ---- queries ------------------------------------------------------------------------------

    def top(self) -> tuple[int | None, int | None, int | None, int | None]:
        """(bid ticks, bid steps, ask ticks, ask steps); None for an empty side."""
        bid, ask = self.bids.best(), self.asks.best()
        return (bid.price if bid else None, bid.total if bid else None,
                ask.price if ask else None, ask.total if ask else None)

    def depth(self, side: BookSide, limit: int) -> list[tuple[int, int]]:
        """Up to `limit` (price ticks, total steps) best first."""
        out = []
        for level in side.iter_levels():
            if len(out) >= limit:
                break
            out.append((level.price, level.total))
        return out


def _ignore(code: str, price: int, total: int, update_id: int) -> None:
    pass
