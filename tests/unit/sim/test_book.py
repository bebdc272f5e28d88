"""The simulator's venue book: FIFO levels, sorted sides, one update id per event."""

from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from abidance.exchange.sim.book import Book


@dataclass(eq=False)
class O:
    side: str
    price_ticks: int
    qty: int


def recording_book():
    changes = []
    book = Book(lambda side, price, total, uid: changes.append((side, price, total, uid)))
    return book, changes


def test_add_when_orders_rest_then_best_levels_and_fifo_queue():
    book, _ = recording_book()
    first, second = O("BUY", 100, 5), O("BUY", 100, 3)
    book.add(first, 5)
    book.add(second, 3)
    book.add(O("BUY", 99, 1), 1)
    book.add(O("SELL", 102, 2), 2)
    book.add(O("SELL", 101, 4), 4)
    assert book.bids.best_price() == 100 and book.asks.best_price() == 101
    assert list(book.bids.levels[100].orders) == [first, second]
    assert book.bids.levels[100].total == 8
    assert book.top() == (100, 8, 101, 4)
    assert book.depth(book.bids, 10) == [(100, 8), (99, 1)]
    assert book.depth(book.asks, 1) == [(101, 4)]


def test_mutations_when_applied_then_each_reports_its_level_with_the_next_update_id():
    book, changes = recording_book()
    a, b = O("SELL", 101, 4), O("SELL", 101, 2)
    assert book.add(a, 4) == 1
    book.add(b, 2)
    book.remove(a, 4)
    book.fill_front(book.asks, book.asks.levels[101], 2, True)
    assert changes == [("a", 101, 4, 1), ("a", 101, 6, 2), ("a", 101, 2, 3), ("a", 101, 0, 4)]
    assert book.update_id == 4 and len(book.asks) == 0 and book.top() == (None, None, None, None)


def test_remove_when_order_in_middle_of_queue_then_others_keep_their_priority():
    book, _ = recording_book()
    orders = [O("BUY", 50, 1) for _ in range(3)]
    for o in orders:
        book.add(o, 1)
    book.remove(orders[1], 1)
    assert list(book.bids.levels[50].orders) == [orders[0], orders[2]]


def test_fill_front_when_partial_then_order_stays_first_and_total_drops():
    book, changes = recording_book()
    o = O("BUY", 50, 10)
    book.add(o, 10)
    book.fill_front(book.bids, book.bids.levels[50], 4, False)
    assert list(book.bids.levels[50].orders) == [o] and book.bids.levels[50].total == 6
    assert changes[-1] == ("b", 50, 6, 2)


def test_equal_orders_when_removed_then_identity_decides_not_equality():
    book, _ = recording_book()
    x, y = O("SELL", 10, 1), O("SELL", 10, 1)
    book.add(x, 1)
    book.add(y, 1)
    book.remove(y, 1)
    assert list(book.asks.levels[10].orders)[0] is x


ops = st.lists(st.tuples(st.booleans(), st.sampled_from(["BUY", "SELL"]), st.integers(1, 30), st.integers(1, 9)),
               max_size=80)


@given(ops)
def test_random_mutations_when_replayed_from_callbacks_then_rebuilt_book_equals_depth(steps):
    book, changes = recording_book()
    resting = []
    for is_add, side, price, qty in steps:
        if is_add or not resting:
            o = O(side, price if side == "BUY" else price + 30, qty)
            book.add(o, qty)
            resting.append(o)
        else:
            o = resting.pop(price % len(resting))
            book.remove(o, o.qty)
    rebuilt = {"b": {}, "a": {}}
    last = 0
    for side, price, total, uid in changes:
        assert uid == last + 1
        last = uid
        if total:
            rebuilt[side][price] = total
        else:
            rebuilt[side].pop(price, None)
    assert sorted(rebuilt["b"].items(), reverse=True) == book.depth(book.bids, 1000)
    assert sorted(rebuilt["a"].items()) == book.depth(book.asks, 1000)
    assert book.update_id == last
    assert book.bids.keys == sorted(book.bids.keys) and book.asks.keys == sorted(book.asks.keys)
