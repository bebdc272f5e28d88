"""The synthetic depth stream is a valid Binance-like diff stream."""

from abidance._core.book import BookStatus, OrderBook, _bench_apply_diffs
from abidance.data.synthetic import SyntheticDepth


def test_diffs_chain_and_rebuild_the_generators_book_exactly():
    market = SyntheticDepth(seed=3, depth=200)
    bids, asks, last_id = market.snapshot()
    book = OrderBook("SYN")
    assert book.apply_snapshot(bids, asks, last_id) == BookStatus.APPLIED
    batch = market.diffs(300)
    assert _bench_apply_diffs(book, *batch.arrays()) == 300
    assert book.ready
    assert book.top_bids(1000).tolist() == [[p, market.bids[p]] for p in sorted(market.bids, reverse=True)]
    assert book.top_asks(1000).tolist() == [[p, market.asks[p]] for p in sorted(market.asks)]


def test_same_seed_same_stream_and_diff_size_near_target():
    a, b = SyntheticDepth(seed=11).diffs(50), SyntheticDepth(seed=11).diffs(50)
    assert a.diff(7) == b.diff(7)
    assert 18 <= a.level_count / len(a) <= 20
