"""Binance's side of a local order book: REST depth snapshots, fetched when the data engine asks.

The book and Binance's procedure for keeping it (buffer the diffs, fetch a snapshot that
reaches them, drop stale diffs, apply the rest; a gap, a crossed book or a reconnect starts
again) live in the data engine (abidance/data/books.py), so that a backtest on recorded
depth keeps its books by the same code. Here: parsing a REST depth answer into levels, and
fetching one per request, with backoff. Each symbol's fetch is its own task.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

import numpy as np

from abidance._core.wire import InstrumentCodec
from abidance.core import topics
from abidance.core.events import BookSnapshot
from abidance.exchange.binance.backoff import Backoff

log = logging.getLogger("abidance.binance.books")

Snapshot = Callable[[str, int], Awaitable[dict]]


class SnapshotError(ValueError):
    pass


def snapshot_levels(codec: InstrumentCodec, payload: dict) -> tuple[np.ndarray, np.ndarray, int]:
    """REST depth -> (bids, asks) as (n, 2) int64 arrays and lastUpdateId; ValueError naming the field."""
    if not isinstance(payload, dict):
        raise SnapshotError(f"{codec.symbol} depth snapshot is not an object")
    last_id = payload.get("lastUpdateId")
    if type(last_id) is not int or last_id < 0:
        raise SnapshotError(f"{codec.symbol} depth snapshot lastUpdateId is invalid: {last_id!r}")
    sides = []
    for key in ("bids", "asks"):
        levels = payload.get(key)
        if not isinstance(levels, list):
            raise SnapshotError(f"{codec.symbol} depth snapshot {key} is not a list")
        px = np.empty(len(levels), dtype=np.int64)
        qty = np.empty(len(levels), dtype=np.int64)
        n = codec.price.parse_levels(codec.qty, levels, px, qty)
        if n < 0:
            raise SnapshotError(f"{codec.symbol} depth snapshot {key}[{-n - 1}] is not a valid "
                                f"[price, quantity]: {levels[-n - 1]!r}")
        sides.append(np.column_stack((px, qty)))
    return sides[0], sides[1], last_id


class SnapshotFetcher:
    """Answers the data engine's book requests (topics.BOOK_REQUESTS) with REST depth snapshots
    (topics.BOOK_SNAPSHOTS): the venue's part of Binance's local-book procedure. The procedure
    itself (buffer diffs, check the snapshot reaches them, apply) is the data engine's
    (abidance/data/books.py). One fetch per symbol at a time; failures retry with backoff; a
    quiet market is given a moment to send its first diff before the first fetch, so the
    snapshot is newer than the diffs buffered meanwhile."""

    def __init__(self, bus, codecs: Callable[[str], InstrumentCodec | None], fetch_snapshot: Snapshot,
                 clock_ns: Callable[[], int], backoff: Callable[[], Backoff] | None = None, first_wait_s: float = 1.0):
        self.bus = bus
        self.codecs = codecs
        self.fetch_snapshot = fetch_snapshot
        self.clock_ns = clock_ns
        self.new_backoff = backoff or (lambda: Backoff(0.2, 30.0, 0.25))
        self.first_wait_s = first_wait_s
        self.symbols: set[str] = set()           # symbols whose depth stream this connector carries
        self.tasks: dict[str, asyncio.Task] = {}
        self.backoffs: dict[str, Backoff] = {}
        self.diff_seen: dict[str, asyncio.Event] = {}
        self.waiting: dict[str, object] = {}     # requests for symbols whose depth stream is not up yet
        self.snapshots = 0
        self.failures = 0
        self._stopped = False

    def start(self) -> None:
        self.bus.subscribe(topics.BOOK_REQUESTS, self.handle_request)
        self.bus.subscribe(topics.BOOK_STATUS, self.handle_status)

    def stop(self) -> None:
        self._stopped = True
        self.bus.unsubscribe(topics.BOOK_REQUESTS, self.handle_request)
        self.bus.unsubscribe(topics.BOOK_STATUS, self.handle_status)
        for task in self.tasks.values():
            task.cancel()
        self.tasks.clear()

    def on_diff(self, symbol: str) -> None:
        seen = self.diff_seen.get(symbol)
        if seen is not None and not seen.is_set():
            seen.set()

    def handle_status(self, change) -> None:
        if change.ready and change.symbol in self.backoffs:
            self.backoffs[change.symbol].reset()

    def add_symbol(self, symbol: str) -> None:
        """This connector now carries the symbol's depth stream: answer a request made before."""
        self.symbols.add(symbol)
        req = self.waiting.pop(symbol, None)
        if req is not None:
            self.handle_request(req)

    def handle_request(self, req) -> None:
        if req.symbol not in self.symbols:
            self.waiting[req.symbol] = req        # the data engine may start before the streams
            return
        if self._stopped or req.symbol in self.tasks:
            return
        backoff = self.backoffs.setdefault(req.symbol, self.new_backoff())
        first = req.symbol not in self.diff_seen
        self.diff_seen.setdefault(req.symbol, asyncio.Event())
        task = asyncio.get_running_loop().create_task(self._fetch(req, backoff, first), name=f"depth-{req.symbol}")
        self.tasks[req.symbol] = task
        task.add_done_callback(lambda t, s=req.symbol: self.tasks.pop(s, None) if self.tasks.get(s) is t else None)

    async def _fetch(self, req, backoff: Backoff, first: bool) -> None:
        symbol = req.symbol
        if first:
            # Binance: buffer diffs first, then fetch the snapshot. A quiet market may send none for
            # a while; then the snapshot alone starts the book.
            try:
                await asyncio.wait_for(self.diff_seen[symbol].wait(), self.first_wait_s)
            except asyncio.TimeoutError:
                pass
        elif req.reason != "start":
            await asyncio.sleep(backoff.next_delay())      # a repeated request: do not hammer REST
        while not self._stopped:
            codec = self.codecs(symbol)
            try:
                if codec is None:
                    raise SnapshotError(f"{symbol}: no instrument to parse its depth")
                bids, asks, last_id = snapshot_levels(codec, await self.fetch_snapshot(symbol, req.limit))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - REST errors and bad snapshots alike: retry later
                self.failures += 1
                delay = backoff.next_delay()
                log.warning("%s depth snapshot failed (%s); retry in %.2fs", symbol, exc, delay)
                await asyncio.sleep(delay)
                continue
            self.snapshots += 1
            if self.tasks.get(symbol) is asyncio.current_task():
                del self.tasks[symbol]      # done: the book may ask again while it handles this one
            self.bus.publish(topics.BOOK_SNAPSHOTS, BookSnapshot(symbol, bids, asks, last_id, self.clock_ns()))
            return
