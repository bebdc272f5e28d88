"""The order state machine, and the ExecutionEngine against a scripted venue: fills counted once,
partial fills, rejections, unknown outcomes settled by reconciliation, cancels (all, refused,
after the ack), limit timeouts, restart state, and open orders found on the exchange."""

from __future__ import annotations

import json
from decimal import Decimal as D

import pytest

from abidance.core import topics
from abidance.core.events import Reconciliation
from abidance.exchange.binance.errors import OrderStatusUnknown, RateLimited, TransportError
from abidance.exchange.binance.ids import ClientOrderIds
from abidance.execution.engine import CLOSED_KEPT, ExecutionEngine
from abidance.execution.orders import (ALLOWED, CANCELED, EXPIRED, FILLED, NEW, PARTIALLY_FILLED, PENDING_CANCEL,
                                       PENDING_NEW, REJECTED, TERMINAL, Order, TransitionError)
from tests.unit.node_kit import (INSTRUMENTS, S, SYMBOL, T0, FakeClient, Recorder, answer, api_error, async_test,
                                 new_bus_clock, request, settle, steps, ticks, update)

STATES = [PENDING_NEW, NEW, PARTIALLY_FILLED, FILLED, PENDING_CANCEL, CANCELED, REJECTED, EXPIRED]

# The table as specified: fills may race a cancel; a refused cancel falls back; terminal is final.
SPEC = {
    PENDING_NEW: {NEW, PARTIALLY_FILLED, FILLED, REJECTED, EXPIRED, CANCELED, PENDING_CANCEL},
    NEW: {PARTIALLY_FILLED, FILLED, PENDING_CANCEL, CANCELED, EXPIRED},
    PARTIALLY_FILLED: {PARTIALLY_FILLED, FILLED, PENDING_CANCEL, CANCELED, EXPIRED},
    PENDING_CANCEL: {NEW, PARTIALLY_FILLED, FILLED, CANCELED, EXPIRED},
    FILLED: set(), CANCELED: set(), REJECTED: set(), EXPIRED: set(),
}


def make_order(status: str = PENDING_NEW, **kw) -> Order:
    o = Order(kw.pop("cid", "c1"), "s1", SYMBOL, "BUY", "LIMIT", 40, ticks("50000.00"), "GTC", T0, **kw)
    o.status = status
    return o


# ---- the transition table ---------------------------------------------------------------------


def test_table_is_the_specified_one():
    assert {k: set(v) for k, v in ALLOWED.items()} == SPEC
    assert TERMINAL == {FILLED, CANCELED, REJECTED, EXPIRED}


@pytest.mark.parametrize("old, new", [(o, n) for o in STATES for n in sorted(SPEC[o])])
def test_allowed_transition_moves_and_returns_the_previous_state(old, new):
    order = make_order(old)
    assert order.can_move(new)
    assert order.move(new, "why") == old
    assert order.status == new and order.reason == "why"


@pytest.mark.parametrize("old, new", [
    (NEW, PENDING_NEW), (NEW, REJECTED), (PARTIALLY_FILLED, NEW), (PARTIALLY_FILLED, PENDING_NEW),
    (PARTIALLY_FILLED, REJECTED), (PENDING_CANCEL, PENDING_NEW), (PENDING_CANCEL, REJECTED),
])
def test_refused_transition_raises_and_leaves_the_order_as_it_was(old, new):
    order = make_order(old, reason="before")
    assert not order.can_move(new)
    with pytest.raises(TransitionError, match=f"order c1: {old} -> {new} is not allowed"):
        order.move(new, "after")
    assert (order.status, order.reason) == (old, "before")


@pytest.mark.parametrize("terminal", sorted(TERMINAL))
def test_terminal_state_never_changes(terminal):
    order = make_order(terminal)
    assert not order.is_open
    for new in STATES:
        if new == terminal:
            assert order.move(new) == terminal       # a repeat is a no-op, not an error
        else:
            with pytest.raises(TransitionError):
                order.move(new)
        assert order.status == terminal


def test_pending_cancel_remembers_where_to_fall_back_to():
    order = make_order(PARTIALLY_FILLED)
    order.move(PENDING_CANCEL, "timeout")
    assert order.before_cancel == PARTIALLY_FILLED
    order.move(order.before_cancel, "cancel refused")
    assert order.status == PARTIALLY_FILLED


def test_order_state_round_trips_through_json_without_the_signed_request():
    order = make_order(PARTIALLY_FILLED, order_id=77, filled=10, parent_id="p", reduce_only=True)
    order.trade_ids.update({5, 3})
    order.request = "signed"
    state = json.loads(json.dumps(order.to_state()))
    back = Order.from_state(state)
    assert back == Order(**{**order.__dict__, "request": None})
    assert back.trade_ids == {3, 5} and back.remaining == 30


# ---- the engine --------------------------------------------------------------------------------


class Rig:
    def __init__(self, *, cancel_replace: bool = False, is_ours=None):
        self.bus, self.clock = new_bus_clock()
        self.client = FakeClient()
        self.rec = Recorder(self.bus, topics.ORDER_EVENTS, topics.FILLS, topics.ALERTS, topics.REPLACE)
        self.engine = ExecutionEngine(self.bus, self.clock, self.client, INSTRUMENTS, cancel_replace=cancel_replace,
                                      is_ours=is_ours)
        self.engine.start()

    def statuses(self, cid: str = "c1", collapse: bool = True) -> list[str]:
        out = []
        for e in self.rec[topics.ORDER_EVENTS]:
            if e.client_order_id == cid and not (collapse and out and out[-1] == e.status):
                out.append(e.status)
        return out

    @property
    def fills(self):
        return self.rec[topics.FILLS]

    def order(self, cid: str = "c1") -> Order:
        order = self.engine.order(cid)        # open, or one of the last closed ones
        assert order is not None, cid
        return order

    def reconcile(self, *open_orders) -> None:
        self.bus.publish(topics.RECONCILIATION, Reconciliation(tuple(open_orders), (), "reconnect", T0))


def full_fill(price: str = "50000.00000000", qty: str = "0.00040000", trade_id: int = 11):
    quote = str(D(price) * D(qty))
    return lambda o: answer(o, "FILLED", qty, quote, fills=[(price, qty, trade_id)])


@async_test
async def test_market_full_answer_fills_once_even_when_the_stream_reports_the_same_trade():
    r = Rig()
    r.client.script("submit", full_fill())
    order = r.engine.execute(request("c1"))
    assert order.status == PENDING_NEW and order.request == "signed-query-for-c1"
    await settle(r.engine)
    r.bus.publish(topics.ORDER_UPDATES, update("c1", FILLED, "TRADE", last_qty="0.0004", last_price="50000",
                                               cum_qty="0.0004", cum_quote="20", trade_id=11))
    [f] = r.fills
    assert (f.client_order_id, f.strategy_id, f.side, f.quantity, f.price, f.trade_id) == \
        ("c1", "s1", "BUY", D("0.0004"), D("50000"), 11)
    assert r.statuses() == [PENDING_NEW, FILLED] and r.engine.fills == 1
    assert (order.filled, order.order_id, order.is_open) == (40, 1, False)


@async_test
async def test_stream_fill_before_the_rest_answer_is_not_counted_twice():
    r = Rig()
    r.client.script("submit", full_fill())
    r.engine.execute(request("c1"))
    r.bus.publish(topics.ORDER_UPDATES, update("c1", FILLED, "TRADE", last_qty="0.0004", last_price="50000",
                                               cum_qty="0.0004", cum_quote="20", trade_id=11))
    await settle(r.engine)
    assert len(r.fills) == 1 and r.statuses() == [PENDING_NEW, FILLED]


@async_test
async def test_partial_fills_then_filled():
    r = Rig()
    r.engine.execute(request("c1", order_type="LIMIT", price=ticks("50000.00")))
    await settle(r.engine)
    r.bus.publish(topics.ORDER_UPDATES, update("c1", NEW, order_type="LIMIT"))
    r.bus.publish(topics.ORDER_UPDATES, update("c1", PARTIALLY_FILLED, "TRADE", order_type="LIMIT", last_qty="0.0001",
                                               last_price="50000", cum_qty="0.0001", trade_id=1))
    assert r.order().filled == 10 and r.order().status == PARTIALLY_FILLED
    r.bus.publish(topics.ORDER_UPDATES, update("c1", FILLED, "TRADE", order_type="LIMIT", last_qty="0.0003",
                                               last_price="49999.99", cum_qty="0.0004", trade_id=2))
    assert r.statuses() == [PENDING_NEW, NEW, PARTIALLY_FILLED, FILLED]
    assert [(f.quantity, f.trade_id) for f in r.fills] == [(D("0.0001"), 1), (D("0.0003"), 2)]
    assert r.order().filled == 40


@pytest.mark.parametrize("error, reason", [
    (api_error(-2010, "Account has insufficient balance for requested action."),
     "-2010: Account has insufficient balance for requested action."),
    (RateLimited(-1015, "Too many new orders."), "-1015: Too many new orders."),
    (TransportError("connection refused", sent=False), "not sent: connection refused"),
    (RuntimeError("client bug"), "submit failed: RuntimeError: client bug"),
])
@async_test
async def test_refused_submit_rejects_the_order_with_an_alert(error, reason):
    r = Rig()
    r.client.script("submit", error)
    r.engine.execute(request("c1"))
    await settle(r.engine)
    assert r.statuses() == [PENDING_NEW, REJECTED] and r.order().reason == reason
    [alert] = r.rec.alerts("order_rejected")
    assert alert.source == "execution" and reason in alert.message


@async_test
async def test_request_that_cannot_be_prepared_is_rejected_without_sending():
    r = Rig()
    r.client.prepare = lambda order: (_ for _ in ()).throw(ValueError("no API secret"))
    r.engine.execute(request("c1"))
    await settle(r.engine)
    assert r.statuses() == [PENDING_NEW, REJECTED] and r.client.calls == []
    assert r.order().reason == "not sent: ValueError: no API secret"


def unknown(cid: str = "c1") -> OrderStatusUnknown:
    return OrderStatusUnknown(-1007, "Timeout waiting for response from backend server.", 503, client_order_id=cid)


@async_test
async def test_unknown_outcome_stays_pending_until_reconciliation_finds_it_open():
    r = Rig()
    r.client.script("submit", unknown())
    r.engine.execute(request("c1", order_type="LIMIT", price=ticks("50000.00")))
    await settle(r.engine)
    assert r.statuses() == [PENDING_NEW]
    [alert] = r.rec.alerts("order_status_unknown")
    assert alert.level == "error"
    r.reconcile(update("c1", NEW, order_type="LIMIT", price="50000", order_id=77))
    await settle(r.engine)
    assert r.statuses() == [PENDING_NEW, NEW] and r.order().order_id == 77
    assert r.rec[topics.ORDER_EVENTS][-1].reason == "found open on the exchange" and r.fills == []


@async_test
async def test_reconciliation_books_fills_missed_while_away_at_the_average_price():
    r = Rig()
    r.client.script("submit", unknown())
    r.engine.execute(request("c1", order_type="LIMIT", price=ticks("50000.00")))
    await settle(r.engine)
    r.reconcile(update("c1", PARTIALLY_FILLED, order_type="LIMIT", cum_qty="0.0001", cum_quote="4.99"))
    [f] = r.fills
    assert (f.quantity, f.price, f.trade_id) == (D("0.0001"), D("49900"), -1)
    assert r.order().status == PARTIALLY_FILLED and r.order().filled == 10


@async_test
async def test_unknown_outcome_not_on_the_exchange_is_queried_and_settled_filled():
    r = Rig()
    r.client.script("submit", unknown())
    r.client.script("query", lambda o: answer(o, "FILLED", "0.00040000", "20.20000000"))
    r.engine.execute(request("c1"))
    await settle(r.engine)
    r.reconcile()
    await settle(r.engine)
    assert r.rec.alerts("reconcile_order") and ("query", "c1") in r.client.calls
    [f] = r.fills
    assert (f.quantity, f.price, f.trade_id, f.commission) == (D("0.0004"), D("50500"), -1, D(0))
    assert r.statuses() == [PENDING_NEW, FILLED]


@async_test
async def test_unknown_outcome_that_never_reached_the_exchange_is_rejected():
    r = Rig()
    r.client.script("submit", unknown())
    r.client.script("query", api_error(-2013, "Order does not exist."))
    r.engine.execute(request("c1"))
    await settle(r.engine)
    r.reconcile()
    await settle(r.engine)
    assert r.statuses() == [PENDING_NEW, REJECTED] and r.order().reason == "never reached the exchange"


@async_test
async def test_cancel_all_cancels_acknowledged_orders_and_those_still_in_flight():
    r = Rig()
    for cid in ("c1", "c2"):
        r.engine.execute(request(cid, order_type="LIMIT", price=ticks("49000.00")))
    await settle(r.engine)
    r.engine.execute(request("c3", order_type="LIMIT", price=ticks("49000.00")))     # not acknowledged yet
    assert r.bus.send(topics.CANCEL, "*") == 3
    assert [r.order(c).status for c in ("c1", "c2", "c3")] == [PENDING_CANCEL, PENDING_CANCEL, PENDING_NEW]
    await settle(r.engine)
    for cid in ("c1", "c2"):
        assert r.statuses(cid) == [PENDING_NEW, NEW, PENDING_CANCEL, CANCELED]
    assert r.statuses("c3") == [PENDING_NEW, NEW, PENDING_CANCEL, CANCELED]
    assert [c for c in r.client.calls if c[0] == "cancel"] == [("cancel", "c1"), ("cancel", "c2"), ("cancel", "c3")]
    assert r.engine.open_orders() == [] and r.bus.send(topics.CANCEL, "*") == 0


@async_test
async def test_cancel_one_by_id_and_unknown_ids_do_nothing():
    r = Rig()
    r.engine.execute(request("c1", order_type="LIMIT", price=ticks("49000.00")))
    await settle(r.engine)
    assert r.bus.send(topics.CANCEL, "nope") == 0
    assert r.bus.send(topics.CANCEL, "c1") == 1
    assert r.bus.send(topics.CANCEL, "c1") == 1          # already PENDING_CANCEL: not sent twice
    await settle(r.engine)
    assert [c for c in r.client.calls if c[0] == "cancel"] == [("cancel", "c1")]
    assert r.order().status == CANCELED


@async_test
async def test_refused_cancel_queries_the_order_and_takes_its_final_state():
    r = Rig()
    r.client.script("cancel", api_error(-2011, "Unknown order sent."))
    r.client.script("query", lambda o: answer(o, "FILLED", "0.00040000", "20.00000000"))
    r.engine.execute(request("c1", order_type="LIMIT", price=ticks("50000.00")))
    await settle(r.engine)
    r.engine.cancel_request("c1")
    await settle(r.engine)
    assert r.statuses() == [PENDING_NEW, NEW, PENDING_CANCEL, FILLED]
    [f] = r.fills
    assert (f.quantity, f.price) == (D("0.0004"), D("50000"))


@async_test
async def test_fill_racing_a_refused_cancel_is_booked_once():
    r = Rig()
    r.client.script("cancel", api_error(-2011, "Unknown order sent."))
    r.client.script("query", lambda o: answer(o, "FILLED", "0.00040000", "20.00000000"))
    r.engine.execute(request("c1", order_type="LIMIT", price=ticks("50000.00")))
    await settle(r.engine)
    r.engine.cancel_request("c1")
    r.bus.publish(topics.ORDER_UPDATES, update("c1", FILLED, "TRADE", order_type="LIMIT", last_qty="0.0004",
                                               last_price="50000", cum_qty="0.0004", trade_id=9))
    await settle(r.engine)
    assert len(r.fills) == 1 and r.fills[0].trade_id == 9 and r.order().status == FILLED


@async_test
async def test_refused_cancel_whose_query_fails_falls_back_to_the_previous_state():
    r = Rig()
    r.client.script("cancel", api_error(-2011, "Unknown order sent."))
    r.client.script("query", api_error(-1003, "Too much request weight used.", 429))
    r.engine.execute(request("c1", order_type="LIMIT", price=ticks("50000.00")))
    await settle(r.engine)
    r.engine.cancel_request("c1")
    await settle(r.engine)
    assert r.statuses() == [PENDING_NEW, NEW, PENDING_CANCEL, NEW] and r.order().reason == "cancel refused"


@async_test
async def test_resting_limit_order_is_cancelled_after_its_timeout():
    r = Rig()
    r.engine.execute(request("c1", order_type="LIMIT", price=ticks("49000.00"), timeout_s=30.0))
    await settle(r.engine)
    r.clock.advance(29 * S)
    assert r.order().status == NEW
    r.clock.advance(S)
    assert r.order().status == PENDING_CANCEL and r.order().reason == "timeout"
    await settle(r.engine)
    assert r.order().status == CANCELED and r.rec[topics.REPLACE] == []


@async_test
async def test_timeout_with_cancel_replace_hands_the_rest_to_the_risk_engine():
    r = Rig(cancel_replace=True)
    r.engine.execute(request("c1", order_type="LIMIT", price=ticks("49000.00"), timeout_s=30.0))
    await settle(r.engine)
    r.bus.publish(topics.ORDER_UPDATES, update("c1", PARTIALLY_FILLED, "TRADE", order_type="LIMIT",
                                               last_qty="0.0001", last_price="49000", trade_id=1))
    r.clock.advance(30 * S)
    await settle(r.engine)
    [order] = r.rec[topics.REPLACE]
    assert order is r.order() and order.status == CANCELED and order.remaining == 30


@async_test
async def test_filled_limit_order_is_not_cancelled_at_its_timeout():
    r = Rig()
    r.client.script("submit", full_fill())
    r.engine.execute(request("c1", order_type="LIMIT", price=ticks("50000.00"), timeout_s=30.0))
    await settle(r.engine)
    r.clock.advance(60 * S)
    await settle(r.engine)
    assert r.order().status == FILLED and [c for c in r.client.calls if c[0] == "cancel"] == []
    assert r.clock.next_timer_ns() is None


@pytest.mark.parametrize("cancel_replace", [False, True])
@async_test
async def test_timeout_of_an_order_not_yet_acknowledged_cancels_it_once_found_open(cancel_replace):
    r = Rig(cancel_replace=cancel_replace)
    r.client.script("submit", unknown())
    r.engine.execute(request("c1", order_type="LIMIT", price=ticks("49000.00"), timeout_s=30.0))
    await settle(r.engine)
    r.clock.advance(30 * S)
    r.reconcile(update("c1", NEW, order_type="LIMIT", price="49000"))
    await settle(r.engine)
    assert ("cancel", "c1") in r.client.calls and r.order().status == CANCELED


@async_test
async def test_state_round_trip_keeps_open_orders_and_their_exits():
    r = Rig()
    r.client.script("submit", lambda o: answer(o, "NEW", order_id=501), full_fill())
    r.engine.execute(request("c1", order_type="LIMIT", price=ticks("49000.00"), stop_loss=ticks("47000.00"),
                             take_profit=ticks("52000.00"), trailing_bps=100))
    r.engine.execute(request("c2"))
    await settle(r.engine)
    r.bus.publish(topics.ORDER_UPDATES, update("c1", PARTIALLY_FILLED, "TRADE", order_type="LIMIT", last_qty="0.0001",
                                               last_price="49000", trade_id=4, order_id=501))
    state = json.loads(json.dumps(r.engine.to_state()))
    assert [o["client_order_id"] for o in state["orders"]] == ["c1"]          # c2 is done: not kept

    again = Rig()
    again.engine.load_state(state)
    restored = again.order("c1")
    assert restored.to_state() == r.order("c1").to_state()
    assert (restored.status, restored.filled, restored.order_id, restored.trade_ids) == (PARTIALLY_FILLED, 10, 501, {4})
    assert again.engine.exits["c1"] == (4_700_000, 5_200_000, 100)
    # it carries on where it was: the repeated trade is not booked again, the next one is
    again.bus.publish(topics.ORDER_UPDATES, update("c1", PARTIALLY_FILLED, "TRADE", order_type="LIMIT",
                                                   last_qty="0.0001", last_price="49000", trade_id=4, order_id=501))
    again.bus.publish(topics.ORDER_UPDATES, update("c1", FILLED, "TRADE", order_type="LIMIT", last_qty="0.0003",
                                                   last_price="49000", trade_id=5, order_id=501))
    assert [f.trade_id for f in again.fills] == [5] and restored.status == FILLED


@async_test
async def test_open_order_of_ours_found_on_the_exchange_is_adopted():
    ids = ClientOrderIds("abd", seed=11)
    r = Rig(is_ours=ids.is_ours)
    cid = ids.next()
    r.reconcile(update(cid, PARTIALLY_FILLED, side="SELL", order_type="LIMIT", qty="0.002", price="51000.5",
                       cum_qty="0.0005", cum_quote="25.5", order_id=901))
    [alert] = r.rec.alerts("unknown_open_order")
    assert alert.level == "warning" and "ours" in alert.message
    order = r.order(cid)
    assert (order.side, order.order_type, order.quantity, order.price, order.filled, order.order_id, order.status) == \
        ("SELL", "LIMIT", steps("0.002"), ticks("51000.50"), steps("0.0005"), 901, PARTIALLY_FILLED)
    assert r.rec[topics.ORDER_EVENTS][-1].reason == "adopted from the exchange"
    r.bus.publish(topics.ORDER_UPDATES, update(cid, CANCELED, side="SELL", order_type="LIMIT", order_id=901))
    assert order.status == CANCELED


@async_test
async def test_open_order_placed_by_someone_else_is_only_reported():
    ids = ClientOrderIds("abd", seed=11)
    r = Rig(is_ours=ids.is_ours)
    r.reconcile(update("web_1a2b3c", NEW, order_type="LIMIT", price="40000"),
                update(ClientOrderIds("xyz", seed=12).next(), NEW, order_type="LIMIT", price="40000"))
    alerts = r.rec.alerts("unknown_open_order")
    assert len(alerts) == 2 and all("not placed by this bot" in a.message for a in alerts)
    assert r.engine.orders == {} and r.rec[topics.ORDER_EVENTS] == []
    r.bus.publish(topics.ORDER_UPDATES, update("web_1a2b3c", FILLED, "TRADE", last_qty="0.0004",
                                               last_price="40000", trade_id=3))
    assert r.engine.unknown_updates == 1 and r.fills == []


@async_test
async def test_update_the_table_refuses_is_counted_not_applied():
    r = Rig()
    r.client.script("submit", full_fill())
    r.engine.execute(request("c1"))
    await settle(r.engine)
    r.bus.publish(topics.ORDER_UPDATES, update("c1", CANCELED))
    assert r.order().status == FILLED and r.engine.refused_updates == 1


@async_test
async def test_stopped_engine_ignores_order_updates():
    r = Rig()
    r.engine.execute(request("c1", order_type="LIMIT", price=ticks("49000.00")))
    await settle(r.engine)
    r.engine.stop()
    r.bus.publish(topics.ORDER_UPDATES, update("c1", CANCELED, order_type="LIMIT"))
    assert r.order().status == NEW


# ---- bounded memory ------------------------------------------------------------------------


@async_test
async def test_closed_orders_leave_memory_and_a_late_report_of_a_recent_one_is_still_recognised():
    # A 24/7 node must not keep every order it ever placed: the store has their events.
    r = Rig()
    n = CLOSED_KEPT + 500
    for i in range(n):
        r.client.script("submit", full_fill(trade_id=i + 1))
        r.engine.execute(request(f"c{i}"))
    await settle(r.engine)
    assert r.engine.orders == {} and len(r.engine.closed) == CLOSED_KEPT
    assert len(r.rec[topics.FILLS]) == n
    # The user stream's report of the last fill arrives after the REST answer: known, counted once.
    r.bus.publish(topics.ORDER_UPDATES, update(f"c{n - 1}", FILLED, "TRADE", last_qty="0.0004", last_price="50000",
                                               cum_qty="0.0004", trade_id=n))
    assert r.engine.unknown_updates == 0 and len(r.rec[topics.FILLS]) == n
    r.bus.publish(topics.ORDER_UPDATES, update("c0", FILLED, "TRADE", trade_id=1))       # long gone
    assert r.engine.unknown_updates == 1
