"""Local order books in the data engine, kept consistent by Binance's procedure, for any feed.

Per symbol a `BookKeeper` holds a Cython OrderBook and follows Binance's local-book rules,
whoever supplies the data: diffs (topics.DEPTH_DIFFS) are applied in order; a gap, a
crossed book or a feed interruption (topics.DEPTH_GAPS) marks the book not ready, drops it
and asks for a snapshot (topics.BOOK_REQUESTS); diffs arriving meanwhile are buffered; a
snapshot (topics.BOOK_SNAPSHOTS) must reach the first buffered diff, stale diffs are dropped,
the rest applied, and the book is ready again.

Who answers a request is the feed's business: live, the Binance connector fetches a REST
depth snapshot (abidance/exchange/binance/book_sync.py); in a backtest on recorded depth
nobody does, and the book waits for the recording's next snapshot. Either way the book and
its rules are the same.

Strategies and the risk engine get a `BookView`: the book's reads, no way to change it.
"""

from __future__ import annotations

import logging
from collections import deque

from abidance._core.book import BookStatus, OrderBook
from abidance.core import topics
from abidance.core.bus import Priority
from abidance.core.events import BookRequest, BookStatusChanged

log = logging.getLogger("abidance.data.books")

APPLIED = int(BookStatus.APPLIED)
STALE = int(BookStatus.STALE)
MAX_BUFFER = 20_000         # diffs kept while waiting for a snapshot; older ones are dropped (and counted)

_READS = ("best_bid", "best_ask", "spread", "mid", "microprice", "imbalance", "cumulative_qty", "top",
          "top_bids", "top_asks", "fill_cost", "average_fill_price")


class BookView:
    """A read-only face of one OrderBook (the same object for the book's whole life)."""

    __slots__ = ("_book", "symbol") + _READS

    def __init__(self, book: OrderBook):
        object.__setattr__(self, "_book", book)
        object.__setattr__(self, "symbol", book.symbol)        # read on every update: a plain slot
        for name in _READS:
            object.__setattr__(self, name, getattr(book, name))

    @property
    def ready(self) -> bool:
        return self._book.ready

    @property
    def last_update_id(self) -> int:
        return self._book.last_update_id

    @property
    def bid_count(self) -> int:
        return self._book.bid_count

    @property
    def ask_count(self) -> int:
        return self._book.ask_count

    def __setattr__(self, name, value):
        raise AttributeError(f"a book view is read-only (cannot set {name})")

    def __repr__(self) -> str:
        return f"BookView({self.symbol}, ready={self.ready}, update {self.last_update_id})"


class BookKeeper:
    """One symbol's book and its sync state (no I/O: snapshots are asked for, not fetched)."""

    def __init__(self, symbol: str, request, on_ready_change, max_buffer: int = MAX_BUFFER):
        self.symbol = symbol
        self.book = OrderBook(symbol)
        self.view = BookView(self.book)
        self.request = request                  # request(symbol, reason): ask the feed for a snapshot
        self.on_ready_change = on_ready_change  # on_ready_change(keeper, ready, reason)
        self.max_buffer = max_buffer
        self.buffer: deque = deque()
        self.live = False
        self.snapshots = 0
        self.resyncs = 0                        # times a ready book was lost
        self.stale_diffs = 0
        self.buffer_overflows = 0
        self.last_reason = "no snapshot yet"

    @property
    def ready(self) -> bool:
        return self.live and self.book.ready

    def on_diff(self, ev) -> bool:
        """Feed one diff; True when it changed a ready book."""
        if self.live:
            status = ev.apply_to(self.book)
            if status == APPLIED:
                return True
            if status == STALE:
                self.stale_diffs += 1           # duplicates and late arrivals: already in the book
                return False
            self.invalidate(self.book.resync_message)
            return False
        if len(self.buffer) >= self.max_buffer:
            self.buffer.popleft()               # the snapshot will see the hole and be asked for again
            self.buffer_overflows += 1
        self.buffer.append(ev)
        return False

    def on_snapshot(self, bids, asks, last_update_id: int) -> bool:
        """A full book; True when the book became ready with it."""
        self.snapshots += 1
        if self.live:
            if last_update_id <= self.book.last_update_id:
                return False                    # older than what we hold
            self.book.invalidate()              # a newer full book (a recording's next snapshot)
            self.live = False
        if self.buffer and last_update_id < self.buffer[0].first_id - 1:
            self.request(self.symbol, "snapshot older than the first buffered diff")
            return False
        if self.book.apply_snapshot(bids, asks, last_update_id) != BookStatus.APPLIED:
            reason = self.book.resync_message
            self.buffer.clear()
            self.request(self.symbol, f"snapshot refused: {reason}")
            return False
        while self.buffer:
            status = self.buffer.popleft().apply_to(self.book)
            if status != APPLIED and status != STALE:
                reason = self.book.resync_message
                self.book.invalidate()
                self.buffer.clear()
                self.request(self.symbol, f"buffered diffs do not chain: {reason}")
                return False
        self.live = True
        self.last_reason = ""
        log.info("%s book ready at update %d", self.symbol, self.book.last_update_id)
        self.on_ready_change(self, True, "")
        return True

    def invalidate(self, reason: str) -> None:
        """Drop the book and ask for a snapshot (gap, crossed book, feed interrupted)."""
        was_live, self.live = self.live, False
        self.book.invalidate()
        self.buffer.clear()
        self.last_reason = reason
        if was_live:
            self.resyncs += 1
            log.warning("%s book not ready: %s; resyncing", self.symbol, reason)
            self.on_ready_change(self, False, reason)
        self.request(self.symbol, reason)


class Books:
    """The data engine's books: one BookKeeper per symbol, wired to the bus."""

    def __init__(self, bus, clock, symbols, snapshot_limit: int = 1000):
        self.bus = bus
        self.clock = clock
        self.symbols = list(symbols)
        self.snapshot_limit = snapshot_limit
        self.keepers = {s: BookKeeper(s, self._request, self._ready_change) for s in self.symbols}
        self.requests = 0
        self._handlers = ((topics.DEPTH_DIFFS, self.handle_diff), (topics.BOOK_SNAPSHOTS, self.handle_snapshot),
                          (topics.DEPTH_GAPS, self.handle_gap))

    def start(self) -> None:
        if not self.keepers:
            return
        for topic, handler in self._handlers:
            self.bus.subscribe(topic, handler, Priority.DATA)
        for symbol in self.keepers:
            self._request(symbol, "start")

    def stop(self) -> None:
        for topic, handler in self._handlers:
            self.bus.unsubscribe(topic, handler)

    def view(self, symbol: str) -> BookView | None:
        keeper = self.keepers.get(symbol)
        return keeper.view if keeper is not None and keeper.ready else None

    def health(self) -> tuple[int, int, int]:
        """(books ready, books kept, resyncs)."""
        ks = self.keepers.values()
        return sum(1 for k in ks if k.ready), len(self.keepers), sum(k.resyncs for k in ks)

    # ---- inputs --------------------------------------------------------------------------

    def handle_diff(self, ev) -> None:
        keeper = self.keepers.get(ev.symbol)
        if keeper is not None and keeper.on_diff(ev):
            self.bus.publish(topics.BOOKS, keeper.view)

    def handle_snapshot(self, snap) -> None:
        keeper = self.keepers.get(snap.symbol)
        if keeper is not None:
            keeper.on_snapshot(snap.bids, snap.asks, snap.last_update_id)

    def handle_gap(self, gap) -> None:
        keeper = self.keepers.get(gap.symbol)
        if keeper is not None:
            keeper.invalidate(gap.reason)

    # ---- outputs -------------------------------------------------------------------------

    def _request(self, symbol: str, reason: str) -> None:
        self.requests += 1
        self.bus.publish(topics.BOOK_REQUESTS, BookRequest(symbol, self.snapshot_limit, reason, self.clock.time_ns()))

    def _ready_change(self, keeper: BookKeeper, ready: bool, reason: str) -> None:
        self.bus.publish(topics.BOOK_STATUS, BookStatusChanged(keeper.symbol, ready, reason, self.clock.time_ns()))
        if ready:
            self.bus.publish(topics.BOOKS, keeper.view)
