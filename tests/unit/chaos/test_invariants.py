"""The chaos report's checks catch what they are for: each fails on a record that breaks it."""

from __future__ import annotations

from decimal import Decimal as D

from abidance.chaos import invariants as inv


def order(cid, oid, t, end, status="CANCELED"):
    return {"clientOrderId": cid, "orderId": oid, "time": t, "updateTime": end, "status": status}


def test_balances_differing_from_the_venue_fail_naming_the_asset():
    assert inv.balances_match({"USDT": D("10"), "BTC": D("1")}, {"USDT": D("10"), "BTC": D("1")}).ok
    check = inv.balances_match({"USDT": D("10")}, {"USDT": D("9.99999999")})
    assert not check.ok and "USDT" in check.detail


def test_a_client_order_id_used_twice_fails():
    assert inv.unique_client_order_ids([order("a", 1, 0, 1), order("b", 2, 0, 1)]).ok
    assert not inv.unique_client_order_ids([order("a", 1, 0, 1), order("a", 2, 0, 1)]).ok


def test_a_fill_stored_twice_or_missing_fails_and_a_catch_up_fill_stands_for_its_trades():
    orders = [order("a", 1, 0, 5, "FILLED")]
    trades = [{"id": 7, "orderId": 1, "qty": "0.1"}, {"id": 8, "orderId": 1, "qty": "0.2"}]
    assert inv.fills_stored_once(trades, orders, [("a", 7, "0.1"), ("a", 8, "0.2")]).ok
    assert inv.fills_stored_once(trades, orders, [("a", -1, "0.3")]).ok                # booked at the average
    assert not inv.fills_stored_once(trades, orders, [("a", 7, "0.1"), ("a", 7, "0.1"), ("a", 8, "0.2")]).ok
    assert not inv.fills_stored_once(trades, orders, [("a", 7, "0.1")]).ok


def test_overlapping_open_intervals_above_the_limit_fail():
    back_to_back = [order("a", 1, 0, 10), order("b", 2, 10, 20)]
    assert inv.venue_open_intervals_within(back_to_back, 1, 30).ok
    overlapping = [order("a", 1, 0, 10), order("b", 2, 5, 20), order("c", 3, 6, 7, "NEW")]
    check = inv.venue_open_intervals_within(overlapping, 2, 30)
    assert not check.ok and check.figures["most_open_on_venue"] == 3


def test_position_above_the_limit_and_a_crossed_book_fail():
    assert inv.position_within([(1, "BUY", "0.5"), (2, "SELL", "0.5"), (3, "BUY", "0.5")], D("0.5")).ok
    assert not inv.position_within([(1, "BUY", "0.5"), (2, "BUY", "0.1")], D("0.5")).ok
    assert inv.books_never_crossed([(1, "100.0", "100.1")]).ok
    assert not inv.books_never_crossed([(1, "100.1", "100.1")]).ok


def test_store_replay_counts_orders_whose_end_was_lost():
    check = inv.store_order_events([(1, "a", "NEW"), (2, "b", "NEW"), (3, "a", "CANCELED")], 5)
    assert check.figures == {"most_open_in_store_replay": 2, "orders_without_end": 1}
