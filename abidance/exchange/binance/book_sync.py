"""One symbol's local order book, kept consistent per Binance's procedure.

Diffs are buffered while a REST snapshot is fetched; the snapshot must reach the first
buffered diff, stale diffs are dropped, the rest applied in order. A gap, a crossed
book or a reconnect marks the book not ready and starts a new sync; other symbols are
not affected (each sync is its own task). Strategies must only trade on ready books.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Awaitable, Callable

import numpy as np

from abidance._core.book import BookStatus, OrderBook
from abidance._core.wire import DepthDiffEvent, InstrumentCodec
from abidance.exchange.binance.backoff import Backoff

log = logging.getLogger("abidance.binance.books")

APPLIED = int(BookStatus.APPLIED)
STALE = int(BookStatus.STALE)

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


class BookSync:
    def __init__(self, codec: InstrumentCodec, fetch_snapshot: Snapshot, limit: int,
                 on_ready_change: Callable[["BookSync", bool, str], None] | None = None,
                 max_buffer: int = 20_000, backoff: Backoff | None = None):
        self.symbol = codec.symbol
        self.codec = codec
        self.book = OrderBook(codec.symbol)
        self.fetch_snapshot = fetch_snapshot
        self.limit = limit
        self.on_ready_change = on_ready_change or (lambda sync, ready, reason: None)
        self.max_buffer = max_buffer
        self.backoff = backoff or Backoff(0.2, 30.0, 0.25)
        self.buffer: deque[DepthDiffEvent] = deque()
        self.resyncs = 0            # syncs started after the first one
        self.snapshots = 0
        self.stale_diffs = 0
        self.last_reason = "not synced yet"
        self._task: asyncio.Task | None = None
        self._diff_arrived = asyncio.Event()
        self._stopped = False
        self._live = False           # synced and applying diffs as they come

    @property
    def ready(self) -> bool:
        return self._live and self.book.ready

    def on_diff(self, ev: DepthDiffEvent) -> bool:
        """Feed one diff; True when it changed a ready book."""
        if self._live:
            status = ev.apply_to(self.book)
            if status == APPLIED:
                return True
            if status == STALE:
                self.stale_diffs += 1     # duplicates and late arrivals: already in the book
                return False
            self.resync(self.book.resync_message)
            return False
        if self._task is None and not self._stopped:
            self.resync(self.last_reason)
        if len(self.buffer) >= self.max_buffer:
            self.buffer.popleft()         # the sync will see the hole and start again
        self.buffer.append(ev)
        self._diff_arrived.set()
        return False

    def seed(self, bids, asks, last_update_id: int) -> None:
        """Start from a snapshot given directly (backtests, benchmarks): no REST fetch."""
        if self.book.apply_snapshot(bids, asks, last_update_id) != BookStatus.APPLIED:
            raise SnapshotError(f"{self.symbol}: {self.book.resync_message}")
        self._live = True
        self.on_ready_change(self, True, "")

    def resync(self, reason: str) -> None:
        """Discard the book and sync again (gap, crossed book, reconnect)."""
        was_ready, self._live = self._live, False
        self.book.invalidate()
        self.last_reason = reason
        if self.snapshots:
            self.resyncs += 1
        if was_ready:
            log.warning("%s book not ready: %s; resyncing", self.symbol, reason)
            self.on_ready_change(self, False, reason)
        if self._task is not None:
            self._task.cancel()
        self.buffer.clear()
        self._diff_arrived.clear()
        if not self._stopped:
            self._task = asyncio.get_running_loop().create_task(self._sync(), name=f"book-sync-{self.symbol}")

    def stop(self) -> None:
        self._stopped = True
        self._live = False
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _sync(self) -> None:
        try:
            first_attempt = True
            while True:
                # Binance: buffer diffs first, then fetch the snapshot. A quiet market may
                # send none for a while; then the snapshot alone starts the book.
                if first_attempt and not self.buffer:
                    try:
                        await asyncio.wait_for(self._diff_arrived.wait(), 1.0)
                    except asyncio.TimeoutError:
                        pass
                first_attempt = False
                try:
                    payload = await self.fetch_snapshot(self.symbol, self.limit)
                    bids, asks, last_id = snapshot_levels(self.codec, payload)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - REST errors and bad snapshots alike: retry later
                    delay = self.backoff.next_delay()
                    log.warning("%s depth snapshot failed (%s); retry in %.2fs", self.symbol, exc, delay)
                    await asyncio.sleep(delay)
                    continue
                self.snapshots += 1
                if self.buffer and last_id < self.buffer[0].first_id - 1:
                    # The snapshot is older than our first diff: fetch a newer one.
                    await asyncio.sleep(self.backoff.next_delay())
                    continue
                status = self.book.apply_snapshot(bids, asks, last_id)
                if status != BookStatus.APPLIED:
                    log.warning("%s snapshot refused: %s", self.symbol, self.book.resync_message)
                    await asyncio.sleep(self.backoff.next_delay())
                    continue
                failed = False
                while self.buffer:
                    status = self.buffer.popleft().apply_to(self.book)
                    if status != APPLIED and status != STALE:
                        failed = True
                        break
                if failed:
                    log.warning("%s buffered diffs do not chain: %s; fetching again",
                                self.symbol, self.book.resync_message)
                    self.buffer.clear()
                    self._diff_arrived.clear()
                    await asyncio.sleep(self.backoff.next_delay())
                    continue
                self._task = None
                self._live = True
                self.backoff.reset()
                self.last_reason = ""
                log.info("%s book ready at update %d", self.symbol, self.book.last_update_id)
                self.on_ready_change(self, True, "")
                return
        except asyncio.CancelledError:
            pass
