"""Order book: applying real-sized Binance diffs to a 1000-level book.

Targets (issue 2): <= 40 ns per level update and >= 30x the pure-Python twin.

Data: abidance.data.synthetic.SyntheticDepth, seed 7: 1000 levels a side, diffs of
~20 changed levels (geometric distance from the top, mean 40 levels; 55% quantity
changes, the rest removals and new levels), consecutive update ids as on Binance Spot.
The same diffs go through the Cython book from a C loop (the connector's path), the
Cython book's Python API, and the pure-Python twin, in the same run.
"""

import pytest

from abidance._core.book import OrderBook, _bench_apply_diffs
from abidance.data.synthetic import SyntheticDepth
from tests.twins.book import OrderBookTwin

N_DIFFS = 2000


@pytest.fixture(scope="module")
def market():
    gen = SyntheticDepth(seed=7, depth=1000, levels_per_diff=20)
    snapshot = gen.snapshot()
    batch = gen.diffs(N_DIFFS)
    return snapshot, batch


def fresh_book(snapshot):
    book = OrderBook("SYN")
    book.apply_snapshot(*snapshot)
    return book


def test_book_apply_diff(benchmark, measure, report, timer, market):
    snapshot, batch = market
    levels = batch.level_count

    def setup():
        return (fresh_book(snapshot), *batch.arrays()), {}

    ns_c = measure(benchmark, _bench_apply_diffs, ops=levels, setup=setup, rounds=30)

    def python_api():
        book = fresh_book(snapshot)
        apply = book.apply_diff
        for i in range(len(batch)):
            b0, b1, a0, a1 = batch.bid_off[i], batch.bid_off[i + 1], batch.ask_off[i], batch.ask_off[i + 1]
            apply(batch.first_ids[i], batch.final_ids[i], batch.bid_px[b0:b1], batch.bid_qty[b0:b1],
                  batch.ask_px[a0:a1], batch.ask_qty[a0:a1])

    diffs = [batch.diff(i) for i in range(len(batch))]

    def twin():
        book = OrderBookTwin("SYN")
        book.apply_snapshot(*snapshot)
        for first, final, bids, asks in diffs:
            book.apply_diff_levels(first, final, bids, asks)

    snapshot_ns = timer(lambda: fresh_book(snapshot), repeat=5)
    twin_snapshot_ns = timer(lambda: OrderBookTwin("SYN").apply_snapshot(*snapshot), repeat=3)
    ns_py = (timer(python_api, repeat=3) - snapshot_ns) / levels
    ns_twin = (timer(twin, repeat=3) - twin_snapshot_ns) / levels

    report("book.apply_diff (C loop, 1000-level book, ~20 levels/diff)", ns_c, "ns/level",
           target=40.0, baseline=("pure-Python twin", ns_twin), min_ratio=30.0, benchmark=benchmark)
    report("book.apply_diff (one Python call per diff)", ns_py, "ns/level",
           baseline=("pure-Python twin", ns_twin))


def _one_side(n: int, order: str):
    import numpy as np

    px = np.arange(1, n + 1, dtype=np.int64)              # bids: ascending price is worst first
    if order == "best_first":
        px = px[::-1]
    elif order == "shuffled":
        px = np.random.default_rng(16).permutation(px)
    return np.ascontiguousarray(np.stack([px, np.ones(n, dtype=np.int64)], axis=1))


@pytest.mark.parametrize("order", ["worst_first", "shuffled"])
@pytest.mark.parametrize("n", [200_000, 1_000_000])
def test_book_snapshot_any_order(benchmark, measure, report, timer, n, order):
    """Issue 16: a snapshot given worst price first was quadratic (200k levels 8.7 s, 1M over 120 s).
    The baseline is the same snapshot best first (Binance's order), measured in the same run; the target
    is a bound of O(n log n) work: 150 ns per level."""
    levels, best = _one_side(n, order), _one_side(n, "best_first")
    empty = _one_side(0, "best_first")

    def apply(side):
        book = OrderBook("SYN")
        book.apply_snapshot(side, empty, 1)
        return book

    assert apply(levels).top_bids(n).tolist() == apply(best).top_bids(n).tolist()
    ms = measure(benchmark, lambda: apply(levels), rounds=5) / 1e6
    ms_best = timer(lambda: apply(best), repeat=5) / 1e6
    report(f"book.apply_snapshot ({n:,} levels, {order.replace('_', ' ')})", ms, "ms", target=n * 150 / 1e6,
           baseline=(f"the same {n:,} levels best first", ms_best), benchmark=benchmark)
