"""Behaviour of the Cython L2 order book under Binance Spot sequencing."""

import numpy as np
import pytest

from abidance._core.book import BookStatus, OrderBook, Side
from abidance._core.fixed import FixedPoint
from tests.kit import shared_data


def make_book(last_update_id=100):
    book = OrderBook("BTCUSDT")
    status = book.apply_snapshot([[1000, 5], [999, 3], [998, 1]], [[1001, 2], [1002, 7], [1005, 4]],
                                 last_update_id)
    assert status == BookStatus.APPLIED
    return book


def test_new_book_is_not_ready_until_snapshot():
    book = OrderBook("BTCUSDT")
    assert not book.ready
    assert book.resync_reason == BookStatus.NOT_READY
    assert book.apply_diff_levels(1, 2, [[1, 1]], []) == BookStatus.NOT_READY
    assert book.best_bid() is None and book.mid() is None and book.spread() is None


def test_snapshot_then_queries():
    book = make_book()
    assert book.ready and book.resync_message == ""
    assert book.best_bid() == (1000, 5)
    assert book.best_ask() == (1001, 2)
    assert book.spread() == 1
    assert book.mid() == 1000.5
    assert book.microprice() == pytest.approx((1000 * 2 + 1001 * 5) / 7)
    assert book.top_bids(2).tolist() == [[1000, 5], [999, 3]]
    assert book.top_asks(10).tolist() == [[1001, 2], [1002, 7], [1005, 4]]
    assert book.imbalance(2) == pytest.approx((8 - 9) / 17)
    assert book.cumulative_qty(Side.BID, 999) == 8
    assert book.cumulative_qty(Side.ASK, 1002) == 9
    assert book.bid_count == 3 and book.ask_count == 3


def test_snapshot_accepts_levels_in_any_order_and_keeps_them_sorted():
    book = OrderBook("X")
    book.apply_snapshot([[5, 1], [9, 1], [7, 1]], [[20, 1], [11, 1], [15, 1]], 1)
    assert book.top_bids(5)[:, 0].tolist() == [9, 7, 5]
    assert book.top_asks(5)[:, 0].tolist() == [11, 15, 20]


def test_first_diff_must_straddle_snapshot_id():
    book = make_book(last_update_id=100)
    assert book.apply_diff_levels(90, 100, [[1000, 9]], []) == BookStatus.STALE
    assert book.best_bid() == (1000, 5)
    assert book.apply_diff_levels(95, 105, [[1000, 9]], []) == BookStatus.APPLIED
    assert book.best_bid() == (1000, 9)
    assert book.last_update_id == 105


def test_first_diff_after_the_snapshot_id_is_a_gap():
    book = make_book(last_update_id=100)
    assert book.apply_diff_levels(102, 110, [[1000, 9]], []) == BookStatus.GAP
    assert not book.ready
    assert "expected first update id <= 101 but got 102" in book.resync_message
    assert book.best_bid() == (1000, 5), "a refused diff must not change the book"


def test_each_diff_must_follow_the_previous():
    book = make_book(last_update_id=100)
    assert book.apply_diff_levels(101, 103, [], []) == BookStatus.APPLIED
    assert book.apply_diff_levels(104, 104, [], []) == BookStatus.APPLIED
    assert book.apply_diff_levels(106, 107, [], []) == BookStatus.GAP
    assert book.resyncs_needed == 1
    # Every later diff is refused until a new snapshot.
    assert book.apply_diff_levels(105, 105, [], []) == BookStatus.NOT_READY
    assert make_book(last_update_id=200).ready


def test_zero_quantity_removes_level_and_unknown_removal_is_harmless():
    book = make_book()
    assert book.apply_diff_levels(101, 101, [[1000, 0], [950, 0]], [[1001, 0]]) == BookStatus.APPLIED
    assert book.best_bid() == (999, 3)
    assert book.best_ask() == (1002, 7)
    assert book.bid_count == 2 and book.ask_count == 2


def test_insert_new_levels_at_top_middle_and_bottom():
    book = make_book()
    book.apply_diff_levels(101, 101, [[1000, 1], [998, 2], [997, 8], [990, 1]], [[1003, 6], [1001, 1]])
    assert book.top_bids(10).tolist() == [[1000, 1], [999, 3], [998, 2], [997, 8], [990, 1]]
    assert book.top_asks(10).tolist() == [[1001, 1], [1002, 7], [1003, 6], [1005, 4]]


def test_crossed_book_after_diff_needs_resync():
    book = make_book()
    assert book.apply_diff_levels(101, 101, [[1001, 1]], []) == BookStatus.CROSSED
    assert not book.ready
    assert "best bid 1001 >= best ask 1001" in book.resync_message


def test_crossed_snapshot_is_refused():
    book = OrderBook("X")
    assert book.apply_snapshot([[10, 1]], [[9, 1]], 1) == BookStatus.CROSSED
    assert not book.ready


@pytest.mark.parametrize("bids,asks", [
    ([[0, 1]], []), ([[-5, 1]], []), ([[1000, -1]], []), ([], [[1001, -3]]), ([], [[0, 3]]),
])
def test_invalid_values_in_diff_mark_resync_without_changing_the_book(bids, asks):
    book = make_book()
    before = (book.top_bids(10).tolist(), book.top_asks(10).tolist())
    assert book.apply_diff_levels(101, 101, bids, asks) == BookStatus.INVALID_VALUE
    assert not book.ready
    assert "invalid level" in book.resync_message
    assert (book.top_bids(10).tolist(), book.top_asks(10).tolist()) == before


def test_zero_quantity_in_snapshot_is_invalid():
    book = OrderBook("X")
    assert book.apply_snapshot([[10, 0]], [[11, 1]], 1) == BookStatus.INVALID_VALUE


def test_invalid_update_ids():
    book = make_book()
    assert book.apply_diff_levels(110, 105, [], []) == BookStatus.INVALID_IDS
    assert not book.ready
    assert OrderBook("X").apply_snapshot([], [], -1) == BookStatus.INVALID_IDS


def test_float_levels_are_rejected_at_the_python_edge():
    with pytest.raises(ValueError, match="integer ticks"):
        OrderBook("X").apply_snapshot([[10.5, 1]], [], 1)


def test_mismatched_array_lengths_mark_invalid():
    book = make_book()
    status = book.apply_diff(101, 101, np.array([999], dtype=np.int64), np.array([], dtype=np.int64),
                             np.array([], dtype=np.int64), np.array([], dtype=np.int64))
    assert status == BookStatus.INVALID_VALUE and not book.ready


def test_fill_cost_walks_the_book_exactly():
    book = make_book()
    assert book.fill_cost(Side.BID, 5) == (5, 1001 * 2 + 1002 * 3)
    assert book.fill_cost(Side.ASK, 10) == (9, 1000 * 5 + 999 * 3 + 998 * 1)  # runs out
    assert book.average_fill_price(Side.BID, 2) == 1001
    with pytest.raises(ValueError):
        book.fill_cost(Side.BID, 0)


def test_fill_cost_beyond_int64_is_exact():
    book = OrderBook("X")
    big_px, big_qty = 4_000_000_000_000_000, 3_000_000_000
    book.apply_snapshot([[1, 1]], [[big_px, big_qty]], 1)
    assert book.fill_cost(Side.BID, big_qty) == (big_qty, big_px * big_qty)


def test_imbalance_depth_must_be_positive():
    with pytest.raises(ValueError, match="depth"):
        make_book().imbalance(0)


def test_invalidate_marks_not_ready():
    book = make_book()
    book.invalidate()
    assert not book.ready and book.resync_reason == BookStatus.NOT_READY


def test_book_grows_beyond_initial_capacity():
    book = OrderBook("X")
    bids = [[10_000 - i, i + 1] for i in range(3000)]
    asks = [[10_001 + i, i + 1] for i in range(3000)]
    assert book.apply_snapshot(bids, asks, 1) == BookStatus.APPLIED
    assert book.bid_count == 3000 and book.top_bids(1).tolist() == [[10_000, 1]]
    assert book.top_asks(3000)[-1].tolist() == [13_000, 3000]


def test_real_binance_snapshot_and_diffs():
    """The real BTCUSDT snapshot loads exactly; the recorded diff does not chain to it.

    The sample snapshot holds the top 100 bids only, and the diff (77 ask and 23 bid
    levels) was captured ~10 minutes later from the futures stream, so the book must
    report a gap rather than apply it. Re-based on a snapshot id that does chain, it
    applies and leaves a consistent, uncrossed book.
    """
    pd = pytest.importorskip("pandas")
    snap = pd.read_csv(shared_data("binance-nt", "btcusdt-depth-snap.csv"), dtype=str)
    diffs = pd.read_csv(shared_data("binance-nt", "btcusdt-depth-update.csv"), dtype=str)
    px, qty = FixedPoint("0.01"), FixedPoint("0.001")

    def levels(frame, side):
        rows = frame[frame.side == side]
        return [[px.to_units(p), qty.to_units(q)] for p, q in zip(rows.price, rows.qty)]

    book = OrderBook("BTCUSDT")
    last_id = int(snap.last_update_id.iloc[0])
    assert book.apply_snapshot(levels(snap, "b"), levels(snap, "a"), last_id) == BookStatus.APPLIED
    assert book.bid_count == 100 and book.ask_count == 0
    assert px.to_str(book.best_bid()[0]) == "20377.00"
    assert qty.to_str(book.best_bid()[1]) == "1.770"

    first, final = int(diffs.first_update_id.iloc[0]), int(diffs.last_update_id.iloc[0])
    bids, asks = levels(diffs, "b"), levels(diffs, "a")
    assert book.apply_diff_levels(first, final, bids, asks) == BookStatus.GAP
    assert "expected first update id <= 2098021528333" in book.resync_message

    book.apply_snapshot(levels(snap, "b"), levels(snap, "a"), first - 1)
    assert book.apply_diff_levels(first, final, bids, asks) == BookStatus.APPLIED
    assert book.ready and book.last_update_id == final
    live_asks = [a for a in asks if a[1] > 0]
    assert book.ask_count == len({p for p, _ in live_asks})
    assert book.best_bid()[0] < book.best_ask()[0]


def _levels(n, start, step):
    return np.array([[start + step * i, 1 + i % 7] for i in range(n)], dtype=np.int64)


@pytest.mark.parametrize("order", ["best_first", "worst_first", "shuffled"])
def test_snapshot_in_any_order_gives_the_same_book(order):
    bids, asks = _levels(500, 10_000, -1), _levels(500, 10_001, 1)      # best first, as Binance sends
    if order == "worst_first":
        bids, asks = bids[::-1], asks[::-1]
    elif order == "shuffled":
        rng = np.random.default_rng(3)
        bids, asks = rng.permutation(bids), rng.permutation(asks)
    book = OrderBook("X")
    assert book.apply_snapshot(bids, asks, 1) == BookStatus.APPLIED
    assert book.bid_count == 500 and book.ask_count == 500
    assert book.top_bids(500).tolist() == _levels(500, 10_000, -1).tolist()
    assert book.top_asks(500).tolist() == _levels(500, 10_001, 1).tolist()


def test_snapshot_duplicate_price_keeps_the_first_given_in_any_order():
    book = OrderBook("X")
    assert book.apply_snapshot([[5, 1], [9, 2], [5, 3], [7, 4], [9, 5]], [[20, 1], [11, 2], [20, 3]], 1) \
        == BookStatus.APPLIED
    assert book.top_bids(10).tolist() == [[9, 2], [7, 4], [5, 1]]
    assert book.top_asks(10).tolist() == [[11, 2], [20, 1]]


def test_snapshot_worst_first_is_not_quadratic():
    # issue 16: 200k levels worst-price-first took 8.7 s (an insert at the front for each level)
    import time

    n = 200_000
    bids = np.stack([np.arange(1, n + 1, dtype=np.int64), np.ones(n, dtype=np.int64)], axis=1)   # worst first
    asks = np.stack([np.arange(2 * n, n, -1, dtype=np.int64), np.ones(n, dtype=np.int64)], axis=1)
    book = OrderBook("X")
    t0 = time.perf_counter()
    assert book.apply_snapshot(bids, asks, 1) == BookStatus.APPLIED
    elapsed = time.perf_counter() - t0
    assert book.best_bid() == (n, 1) and book.best_ask() == (n + 1, 1) and book.bid_count == n
    assert elapsed < 1.5, f"200k worst-first levels took {elapsed:.2f} s"


def test_cumulative_qty_is_exact_beyond_int64():
    # issue 16: the sum of huge levels wrapped silently to a negative number
    big = 2**62
    book = OrderBook("X")
    assert book.apply_snapshot([[10, big], [9, big], [8, big]], [[11, big], [12, big]], 1) == BookStatus.APPLIED
    assert book.cumulative_qty(Side.BID, 8) == 3 * big
    assert book.cumulative_qty(Side.ASK, 12) == 2 * big
