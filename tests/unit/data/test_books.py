"""The data engine's books follow Binance's local-book procedure, with the connector's snapshot
fetcher answering their requests over the bus, driven by hand (no sockets)."""

from __future__ import annotations

import asyncio

import orjson
import pytest
import uvloop

from abidance._core.wire import InstrumentCodec, MarketParser
from abidance.core import topics
from abidance.core.bus import MessageBus
from abidance.core.clock import LiveClock
from abidance.data.books import Books
from abidance.exchange.binance.backoff import Backoff
from abidance.exchange.binance.book_sync import SnapshotError, SnapshotFetcher, snapshot_levels

CODEC = InstrumentCodec("BTCUSDT", "0.01", "0.00001")
PARSER = MarketParser([CODEC])


def diff(first: int, final: int, bids=(), asks=()):
    raw = orjson.dumps({"e": "depthUpdate", "E": 1, "s": "BTCUSDT", "U": first, "u": final,
                        "b": [list(level) for level in bids], "a": [list(level) for level in asks]})
    ev = PARSER.parse(raw, 0)
    assert ev is not None, PARSER.last_error
    return ev


def snapshot(last_id: int, bids=(("100.00", "1"),), asks=(("101.00", "1"),)):
    return {"lastUpdateId": last_id, "bids": [list(b) for b in bids], "asks": [list(a) for a in asks]}


class Snapshots:
    """Answers depth requests from a queue and records them."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.calls = 0

    async def __call__(self, symbol: str, limit: int):
        self.calls += 1
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


class Sync:
    """One symbol's book in the data engine (Books) and the connector's fetcher, on one bus."""

    def __init__(self, snaps, changes=None):
        self.bus = MessageBus()
        clock = LiveClock()
        self.fetcher = SnapshotFetcher(self.bus, {"BTCUSDT": CODEC}.get, snaps, clock.time_ns,
                                       backoff=lambda: Backoff(0.001, 0.01, 0.0), first_wait_s=0.05)
        self.books = Books(self.bus, clock, ["BTCUSDT"])
        self.keeper = self.books.keepers["BTCUSDT"]
        self.published = []
        self.bus.subscribe(topics.BOOKS, self.published.append)
        if changes is not None:
            self.bus.subscribe(topics.BOOK_STATUS, lambda c: changes.append((c.ready, c.reason)))
        self.fetcher.start()
        self.books.start()          # asks for the first snapshot: before the stream is up, as in the node
        self.fetcher.add_symbol("BTCUSDT")

    def on_diff(self, ev) -> bool:
        """As the connector feeds a diff: True when it changed a ready book (a BookView went out)."""
        before = len(self.published)
        self.fetcher.on_diff(ev.symbol)
        self.bus.publish(topics.DEPTH_DIFFS, ev)
        return len(self.published) > before

    @property
    def ready(self) -> bool:
        return self.keeper.ready

    @property
    def book(self):
        return self.keeper.book

    def __getattr__(self, name):
        return getattr(self.keeper, name)       # resyncs, stale_diffs, last_reason


def make(snaps, changes=None):
    return Sync(snaps, changes)


async def settle(sync: Sync, timeout: float = 3.0):
    end = asyncio.get_running_loop().time() + timeout
    while not sync.ready:
        assert asyncio.get_running_loop().time() < end, sync.last_reason
        await asyncio.sleep(0.005)


def test_buffered_diffs_are_applied_after_the_snapshot():
    async def main():
        changes = []
        sync = make(Snapshots(snapshot(10)), changes)
        sync.on_diff(diff(9, 11, bids=[("100.00", "2")]))      # straddles the snapshot: applied
        sync.on_diff(diff(12, 12, asks=[("101.50", "3")]))
        await settle(sync)
        assert sync.book.last_update_id == 12
        assert sync.book.best_bid() == (10000, 200000)
        assert sync.book.top_asks(2).tolist() == [[10100, 100000], [10150, 300000]]
        assert changes == [(True, "")]
        assert sync.on_diff(diff(13, 13, bids=[("100.00", "0")])) is True
        assert sync.book.best_bid() == (0, 0) or sync.book.bid_count == 0

    uvloop.run(main())


def test_diffs_older_than_the_snapshot_are_dropped():
    async def main():
        sync = make(Snapshots(snapshot(20)))
        sync.on_diff(diff(5, 8, bids=[("99.00", "5")]))
        sync.on_diff(diff(9, 20, bids=[("98.00", "5")]))
        sync.on_diff(diff(21, 21))
        await settle(sync)
        assert sync.book.last_update_id == 21
        assert sync.book.bid_count == 1

    uvloop.run(main())


def test_snapshot_older_than_the_first_diff_is_fetched_again():
    async def main():
        snaps = Snapshots(snapshot(3), snapshot(15))
        sync = make(snaps)
        sync.on_diff(diff(10, 12))
        await settle(sync)
        assert snaps.calls == 2
        assert sync.book.last_update_id == 15

    uvloop.run(main())


def test_gap_marks_the_book_not_ready_and_resyncs():
    async def main():
        changes = []
        snaps = Snapshots(snapshot(10), snapshot(40))
        sync = make(snaps, changes)
        sync.on_diff(diff(11, 11))
        await settle(sync)
        assert sync.on_diff(diff(30, 31)) is False                 # 12..29 missed
        assert not sync.ready and sync.resyncs == 1
        assert changes[-1][0] is False and "BTCUSDT" in changes[-1][1]
        sync.on_diff(diff(32, 41))
        await settle(sync)
        assert sync.book.last_update_id == 41 and changes[-1] == (True, "")

    uvloop.run(main())


def test_duplicates_are_counted_as_stale_and_change_nothing():
    async def main():
        sync = make(Snapshots(snapshot(10)))
        sync.on_diff(diff(11, 11, bids=[("100.00", "4")]))
        await settle(sync)
        assert sync.on_diff(diff(11, 11, bids=[("100.00", "9")])) is False
        assert sync.stale_diffs == 1 and sync.book.best_bid() == (10000, 400000)

    uvloop.run(main())


def test_crossed_book_triggers_a_resync():
    async def main():
        sync = make(Snapshots(snapshot(10), snapshot(20)))
        sync.on_diff(diff(11, 11))
        await settle(sync)
        sync.on_diff(diff(12, 12, bids=[("102.00", "1")]))         # bid above the ask
        assert not sync.ready and sync.resyncs == 1
        await settle(sync)

    uvloop.run(main())


def test_failed_snapshot_requests_are_retried_with_backoff():
    async def main():
        snaps = Snapshots(ConnectionError("down"), {"lastUpdateId": "x"}, snapshot(10))
        sync = make(snaps)
        await settle(sync)
        assert snaps.calls == 3 and sync.fetcher.failures == 2

    uvloop.run(main())


@pytest.mark.parametrize("payload, message", [
    ({"bids": [], "asks": []}, "lastUpdateId"),
    ({"lastUpdateId": 1, "bids": [["1.001", "1"]], "asks": []}, "bids[0]"),
    ({"lastUpdateId": 1, "bids": [], "asks": [["1.00"]]}, "asks[0]"),
    ({"lastUpdateId": 1, "bids": "x", "asks": []}, "bids"),
])
def test_bad_snapshots_are_refused_naming_the_field(payload, message):
    with pytest.raises(SnapshotError, match=message.replace("[", r"\[")):
        snapshot_levels(CODEC, payload)
