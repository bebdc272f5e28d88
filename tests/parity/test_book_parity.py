"""The Cython order book and its pure-Python twin agree on random update sequences."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from abidance._core.book import OrderBook, Side
from tests.twins.book import OrderBookTwin

@st.composite
def side_levels(draw, lo, hi):
    """Levels inside [lo, hi], with a rare invalid value or crossing price mixed in."""
    out = []
    for _ in range(draw(st.integers(0, 10))):
        roll = draw(st.integers(0, 99))
        if roll < 1:
            out.append((draw(st.integers(-2, 0)), draw(st.integers(0, 5))))       # bad price
        elif roll < 2:
            out.append((draw(st.integers(lo, hi)), -1))                            # bad quantity
        elif roll < 5:
            out.append((draw(st.integers(lo - 5, hi + 5)), draw(st.integers(1, 5))))  # may cross or touch
        else:
            out.append((draw(st.integers(lo, hi)), draw(st.integers(0, 20))))     # 0 removes
    return out


@st.composite
def operations(draw):
    ops = []
    next_id = draw(st.integers(0, 5))
    mid = 40
    for i in range(draw(st.integers(1, 40))):
        kind = "snapshot" if i == 0 else draw(st.sampled_from(
            ["diff"] * 10 + ["snapshot"] * 2 + ["odd_ids"] * 2 + ["invalidate"]))
        if kind == "snapshot":
            mid = draw(st.integers(20, 60))
            n = draw(st.integers(0, 15))
            bids = [(mid - draw(st.integers(0, 19)), draw(st.integers(1, 20))) for _ in range(n)]
            asks = [(mid + 1 + draw(st.integers(0, 19)), draw(st.integers(1, 20))) for _ in range(n)]
            if draw(st.integers(0, 19)) == 0:
                bids.append((draw(st.integers(0, 80)), draw(st.integers(0, 3))))  # bad or crossing
            ops.append(("snapshot", bids, asks, next_id))
            next_id += draw(st.integers(0, 2))
            continue
        bids = draw(side_levels(mid - 19, mid))
        asks = draw(side_levels(mid + 1, mid + 20))
        if kind == "odd_ids":
            first = -1 if draw(st.booleans()) and draw(st.booleans()) else next_id + draw(st.integers(-3, 3))
            final = first + draw(st.integers(-2, 3))
            ops.append(("diff", first, final, bids, asks))
        elif kind == "invalidate":
            ops.append(("invalidate",))
        else:
            first = next_id + 1 - draw(st.integers(0, 2))
            final = first + draw(st.integers(0, 3))
            ops.append(("diff", first, final, bids, asks))
            next_id = max(next_id, final)
    return ops


def state(book, probe_px, probe_qty):
    return (
        book.ready, book.last_update_id, book.bid_count, book.ask_count,
        book.best_bid(), book.best_ask(), book.spread(), book.mid(), book.microprice(),
        [tuple(x) for x in book.top(Side.BID, 100).tolist()],
        [tuple(x) for x in book.top(Side.ASK, 100).tolist()],
        book.imbalance(3), book.cumulative_qty(Side.BID, probe_px), book.cumulative_qty(Side.ASK, probe_px),
        book.fill_cost(Side.BID, probe_qty), book.fill_cost(Side.ASK, probe_qty),
        book.updates_applied, book.resyncs_needed,
    )


def twin_state(twin, probe_px, probe_qty):
    return (
        twin.ready, twin.last_update_id, twin.bid_count, twin.ask_count,
        twin.best_bid(), twin.best_ask(), twin.spread(), twin.mid(), twin.microprice(),
        twin.top(Side.BID, 100), twin.top(Side.ASK, 100),
        twin.imbalance(3), twin.cumulative_qty(Side.BID, probe_px), twin.cumulative_qty(Side.ASK, probe_px),
        twin.fill_cost(Side.BID, probe_qty), twin.fill_cost(Side.ASK, probe_qty),
        twin.updates_applied, twin.resyncs_needed,
    )


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=operations(), probe_px=st.integers(0, 81), probe_qty=st.integers(1, 200))
def test_cython_book_matches_twin(ops, probe_px, probe_qty):
    book, twin = OrderBook("T"), OrderBookTwin("T")
    for op in ops:
        if op[0] == "snapshot":
            _, bids, asks, last_id = op
            got, want = book.apply_snapshot(bids, asks, last_id), twin.apply_snapshot(bids, asks, last_id)
        elif op[0] == "invalidate":
            book.invalidate()
            twin.invalidate()
            got = want = None
        else:
            _, first, final, bids, asks = op
            got = book.apply_diff_levels(first, final, bids, asks)
            want = twin.apply_diff_levels(first, final, bids, asks)
        assert got == want, op
        assert book.resync_reason == twin.resync_reason, op
        assert state(book, probe_px, probe_qty) == twin_state(twin, probe_px, probe_qty), op
