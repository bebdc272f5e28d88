"""Client order ids: Binance's format, unique within a session, different across sessions."""

from __future__ import annotations

import pytest

from abidance.core.clock import TestClock
from abidance.exchange.binance.ids import CLIENT_ORDER_ID_RE, ClientOrderIds, base36


def test_ids_match_binance_format_and_carry_the_prefix():
    ids = ClientOrderIds("abd")
    for _ in range(1000):
        cid = ids.next()
        assert CLIENT_ORDER_ID_RE.match(cid) and cid.startswith("abd-")
        assert ids.is_ours(cid)


def test_100k_ids_are_unique_and_stay_within_36_chars_with_the_longest_prefix():
    ids = ClientOrderIds("ab_-CD12")
    seen = {ids() for _ in range(100_000)}
    assert len(seen) == 100_000
    assert max(map(len, seen)) <= 36 and all(CLIENT_ORDER_ID_RE.match(c) for c in seen)


def test_two_sessions_started_at_the_same_instant_differ():
    clock = TestClock(1_700_000_000 * 10**9)
    a, b = ClientOrderIds("abd", clock), ClientOrderIds("abd", clock)
    assert a.session != b.session and a.next() != b.next()
    assert not a.is_this_session(b.next())
    assert a.is_ours(b.next())                  # same node prefix: ours from an earlier session
    assert not a.is_ours(ClientOrderIds("xyz", clock).next()) and not a.is_ours("web_1a2b3c")


def test_sessions_at_different_times_differ_in_the_time_part():
    a = ClientOrderIds("abd", TestClock(1_700_000_000 * 10**9))
    b = ClientOrderIds("abd", TestClock(1_700_000_001 * 10**9))
    assert a.session[:4] != b.session[:4]


def test_seeded_ids_are_deterministic():
    a, b = ClientOrderIds("bt", seed=42), ClientOrderIds("bt", seed=42)
    assert [a() for _ in range(5)] == [b() for _ in range(5)]
    assert ClientOrderIds("bt", seed=43).session != a.session


@pytest.mark.parametrize("prefix", ["", "toolongprefix", "a b", "ä"])
def test_bad_prefix_is_refused(prefix):
    with pytest.raises(ValueError, match="prefix"):
        ClientOrderIds(prefix)


def test_base36():
    assert [base36(n) for n in (0, 35, 36, 36**4 - 1)] == ["0", "z", "10", "zzzz"]


def test_an_exit_lists_legs_are_ours_and_never_another_orders_id():
    from abidance.exchange.binance.order_lists import ABOVE, BELOW

    ids = ClientOrderIds("abd", seed=3)
    list_id = ids.next()
    legs = {list_id + ABOVE, list_id + BELOW}
    assert all(ids.is_ours(leg) for leg in legs)
    later = {ids.next() for _ in range(50_000)}         # every counter value after it, past "…a"/"…b" suffixes
    assert not legs & later
    assert not ClientOrderIds("abd", seed=3).is_ours(list_id + "_c")
