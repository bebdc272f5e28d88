"""ExecutionEngine: places the risk engine's orders and follows them to the end.

Inputs: OrderRequest commands (endpoint topics.EXECUTE), cancels (topics.CANCEL, "*" for
all), the exchange's order updates (topics.ORDER_UPDATES) and reconciliations
(topics.RECONCILIATION). Outputs: OrderEvent on every state change, Fill once per
exchange trade (a fill reported both by the REST answer and the user stream is counted
once, by trade id). Each fill is booked in the account (the portfolio's `apply_fill`)
before it is published, so every subscriber of topics.FILLS reads books that hold it.
Resting limit orders are cancelled, or re-priced through the risk engine, after their
timeout. Exits (stop loss, take profit, trailing) are kept by ExitManager (exits.py): emulated,
or resting on the venue as protective orders that this engine follows like any other (their
fills are booked to the strategy they protect). A strategy's own SELL waits for its
protective orders to be cancelled first (`sell_gate`): the venue holds the base asset for them.
The kill switch and a stop leave protective orders working: they only ever reduce a position.

Venues are reached through an ExecutionClient (venue.py) and fail with the venue-neutral
errors of abidance.core.errors. A venue that answers later (the backtest venue: a market
order reaches it at the next bar or trade) returns None from `submit_now` and answers on the
topics.VENUE_ANSWERS endpoint.

Bounded memory: an order leaves `orders` when it ends (the store has its events); the last
CLOSED_KEPT closed orders are kept so that a late report of one is recognised, not alerted.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict, deque
from decimal import Decimal

from abidance.core import topics
from abidance.core.component import Component
from abidance.core.errors import OrderOutcomeUnknown, VenueError, VenueTransportError
from abidance.core.events import Alert, Fill, OrderEvent
from abidance.execution.orders import (CANCELED, FROM_EXCHANGE, NEW, PARTIALLY_FILLED, PENDING_CANCEL,
                                       PENDING_NEW, REJECTED, TERMINAL, Order, TransitionError)

log = logging.getLogger("abidance.execution")
NS = 1_000_000_000
SENDERS = 8         # new-order requests in flight at once
REPORTS_EXECUTED = TERMINAL | {PARTIALLY_FILLED}    # answers whose executedQty is worth catching up on
CLOSED_KEPT = 1024          # closed orders remembered for late reports


def run_inline(coro) -> None:
    """Run a coroutine that never suspends (an in-process venue's call) to its end, now."""
    try:
        coro.send(None)
    except StopIteration:
        return
    coro.close()
    raise RuntimeError("a venue call suspended in inline mode: an inline venue must answer at once")


class ExecutionEngine(Component):
    def __init__(self, bus, clock, client, instruments: dict, *, cancel_replace: bool = False, is_ours=None,
                 inline: bool = False, account=None):
        super().__init__("ExecutionEngine", bus, clock)
        self.client = client
        # inline: the client answers at once (the backtest venue), so requests run to completion
        # where they are made, without an event loop: a backtest steps synchronously.
        self.inline = inline
        # An inline client may also answer a new order synchronously (`submit_now`, the backtest
        # venue): the same answer as `await submit()` without two coroutines per order (~1 us).
        self._submit_now = getattr(client, "submit_now", None) if inline else None
        self.instruments = instruments
        self.cancel_replace = cancel_replace
        self.is_ours = is_ours or (lambda cid: False)
        self.account = account            # books each fill before it is published: the portfolio
        self.orders: dict[str, Order] = {}                        # open orders
        self.closed: OrderedDict[str, Order] = OrderedDict()       # the last CLOSED_KEPT closed ones
        self.exits: dict[str, tuple[int, int, int]] = {}     # cid -> (stop_loss, take_profit, trailing_bps)
        self.refused_updates = 0
        self.unknown_updates = 0
        self.fills = 0
        self.sell_gate = None       # order -> awaitable to finish before it is sent, or None (exits.py)
        self._tasks: set[asyncio.Task] = set()
        self._timers: dict[str, object] = {}
        # New orders go to a few long-lived sender tasks through a queue: cheaper on the
        # tick path than a task per order, and still several requests in flight at once. The tick
        # path only appends to `_pending`; one loop callback per loop turn hands the orders to the
        # queue (waking a sender costs a few us: paid after the tick, before the senders run anyway).
        self._outbox: asyncio.Queue | None = None
        self._senders: list[asyncio.Task] = []
        self._pending: deque[Order] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None

    def describe(self) -> dict:
        return {"client": type(self.client).__name__, "inline": self.inline, "cancel_replace": self.cancel_replace,
                "books_fills_in": type(self.account).__name__ if self.account is not None else None,
                "closed_orders_kept": CLOSED_KEPT}

    # ---- lifecycle -------------------------------------------------------------------

    def on_start(self) -> None:
        self.bus.register(topics.EXECUTE, self.execute)
        self.bus.register(topics.CANCEL, self.cancel_request)
        self.bus.register(topics.VENUE_ANSWERS, self.handle_answer)
        self.bus.subscribe(topics.ORDER_UPDATES, self.handle_update)
        self.bus.subscribe(topics.RECONCILIATION, self.handle_reconciliation)

    def on_stop(self) -> None:
        for task in self._senders:
            task.cancel()
        self._senders, self._outbox = [], None
        self._pending.clear()
        self.bus.unregister(topics.EXECUTE)
        self.bus.unregister(topics.CANCEL)
        self.bus.unregister(topics.VENUE_ANSWERS)
        self.bus.unsubscribe(topics.ORDER_UPDATES, self.handle_update)
        self.bus.unsubscribe(topics.RECONCILIATION, self.handle_reconciliation)
        for timer in self._timers.values():
            timer.cancel()

    def open_orders(self) -> list[Order]:
        return [o for o in self.orders.values() if o.is_open]

    def order(self, client_order_id: str) -> Order | None:
        """An open order, or one of the last closed ones; None when unknown."""
        return self.orders.get(client_order_id) or self.closed.get(client_order_id)

    def _spawn(self, coro) -> None:
        if self.inline:
            run_inline(coro)
            return
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self, timeout: float = 5.0) -> None:
        """Wait for requests in flight (shutdown, tests)."""
        self._hand_over()
        if self._outbox is not None:
            try:
                await asyncio.wait_for(self._outbox.join(), timeout)
            except asyncio.TimeoutError:
                log.warning("%d new orders still unsent after %.1fs", self._outbox.qsize(), timeout)
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)

    def _send_new(self, order: Order) -> None:
        if self._submit_now is not None:
            try:
                answer = self._submit_now(order)
            except Exception as exc:  # noqa: BLE001 - as in _submit
                self._submit_failed(order, exc)
                return
            if answer is not None:          # None: the venue answers when the order reaches it
                self._submitted(order, answer)
            return
        if self.inline:
            run_inline(self._submit(order))
            return
        if self._outbox is None:
            self._loop = loop = asyncio.get_running_loop()
            self._outbox = asyncio.Queue()
            self._senders = [loop.create_task(self._sender(), name=f"order-sender-{i}") for i in range(SENDERS)]
        if not self._pending:
            self._loop.call_soon(self._hand_over)
        self._pending.append(order)

    def _hand_over(self) -> None:
        pending, outbox = self._pending, self._outbox
        while pending and outbox is not None:
            outbox.put_nowait(pending.popleft())

    async def _sender(self) -> None:
        queue = self._outbox
        while True:
            order = await queue.get()
            try:
                await self._submit(order)
            finally:
                queue.task_done()

    # ---- commands --------------------------------------------------------------------

    def execute(self, req) -> Order:
        order = Order(req.client_order_id, req.strategy_id, req.symbol, req.side, req.order_type, req.quantity,
                      req.price, req.time_in_force, req.ts_init, req.reduce_only, req.parent_id)
        self.orders[order.client_order_id] = order
        if req.stop_loss or req.take_profit or req.trailing_bps:
            self.exits[order.client_order_id] = (req.stop_loss, req.take_profit, req.trailing_bps)
        try:
            order.request = self.client.prepare(order)
        except Exception as exc:  # noqa: BLE001 - e.g. no credentials: the order is refused, not lost
            log.exception("order %s: cannot prepare the request", order.client_order_id)
            self._event(order, "", "submitted")
            self._move(order, REJECTED, f"not sent: {type(exc).__name__}: {exc}")
            return order
        self._event(order, "", "submitted")
        gate = self.sell_gate(order) if self.sell_gate is not None and order.side == "SELL" else None
        if gate is not None:
            self._spawn(self._send_after(gate, order))
        else:
            self._send_new(order)
        if req.timeout_s > 0 and order.order_type != "MARKET":
            self._timers[order.client_order_id] = self.clock.call_at(
                self.clock.time_ns() + int(req.timeout_s * NS), lambda now, o=order: self._timed_out(o))
        return order

    async def _send_after(self, gate, order: Order) -> None:
        try:
            await gate
        except Exception:  # noqa: BLE001 - the venue then refuses the sell if its asset is still held
            log.exception("order %s: clearing the way for it failed; sending it anyway", order.client_order_id)
        if order.is_open:
            self._send_new(order)

    def track(self, orders: list[Order], reason: str) -> None:
        """Follow orders placed outside `execute` (native exits): their events, fills and end."""
        for order in orders:
            self.orders[order.client_order_id] = order
            self._event(order, "", reason)

    def apply_answers(self, answer: dict) -> None:
        """A venue's answer about orders we follow: one order, or an order list's `orderReports`."""
        for report in answer.get("orderReports") or (answer,):
            order = self.order(report.get("clientOrderId", ""))
            if order is not None:
                self._apply_answer(order, report)

    def fail(self, order: Order, exc: Exception) -> None:
        """A request for an order placed outside `execute` failed (as a new order's would)."""
        self._submit_failed(order, exc)

    def cancel_request(self, target: str) -> int:
        """Cancel one order by client id, or every open order but the protective ones with "*";
        returns how many."""
        orders = [o for o in self.open_orders() if not o.protective] if target == "*" else \
            [o for o in (self.orders.get(target),) if o and o.is_open]
        for order in orders:
            self.cancel(order, "cancel requested")
        return len(orders)

    def cancel(self, order: Order, reason: str) -> None:
        if not order.is_open or order.status == PENDING_CANCEL:
            return
        if order.status == PENDING_NEW:
            # Not acknowledged yet: cancel once the venue has it (see _submit).
            order.reason = f"cancel after ack: {reason}"
            return
        self._move(order, PENDING_CANCEL, reason)
        self._spawn(self._cancel(order))

    def _timed_out(self, order: Order) -> None:
        self._timers.pop(order.client_order_id, None)
        if order.is_open:
            log.info("order %s: limit timeout", order.client_order_id)
            # Re-priced once its cancel is done; a not yet acknowledged order is only cancelled once
            # found (its "cancel after ack"). The reason goes with the cancel: an inline venue
            # answers it before cancel() returns.
            replace = self.cancel_replace and order.status != PENDING_NEW
            self.cancel(order, "timeout: replace" if replace else "timeout")

    # ---- venue calls -----------------------------------------------------------------

    async def _submit(self, order: Order) -> None:
        try:
            answer = await self.client.submit(order)
        except Exception as exc:  # noqa: BLE001 - a client bug must not leave the order in limbo
            self._submit_failed(order, exc)
            return
        self._submitted(order, answer)

    def handle_answer(self, answer) -> None:
        """A venue's late answer to a new order (VenueAnswer: the order, the answer dict or the error)."""
        order = self.orders.get(answer.client_order_id)
        if order is None:
            self.unknown_updates += 1
            log.info("venue answer for an order that is not open: %s", answer.client_order_id)
            return
        if answer.error is not None:
            self._submit_failed(order, answer.error)
        else:
            self._submitted(order, answer.answer)

    def _submit_failed(self, order: Order, exc: Exception) -> None:
        """A new order's request raised (called while handling it: log.exception shows it)."""
        if isinstance(exc, OrderOutcomeUnknown):
            # Neither placed nor refused for sure: reconciliation will settle it.
            log.error("order %s: outcome unknown (%s); left PENDING_NEW for reconciliation",
                      order.client_order_id, exc.msg)
            self._alert("error", "order_status_unknown", f"order {order.client_order_id}: {exc.msg}")
        elif isinstance(exc, VenueError):
            sent = not isinstance(exc, VenueTransportError) or exc.sent
            reason = f"{exc.code}: {exc.msg}" if sent else f"not sent: {exc.msg}"
            self._move(order, REJECTED, reason)
        else:
            log.exception("order %s: submit failed", order.client_order_id)
            self._move(order, REJECTED, f"submit failed: {type(exc).__name__}: {exc}")

    def _submitted(self, order: Order, answer: dict) -> None:
        self._apply_answer(order, answer)
        if order.reason.startswith("cancel after ack") and order.is_open:
            self.cancel(order, order.reason)

    async def _cancel(self, order: Order) -> None:
        try:
            answer = await self.client.cancel(order)
        except VenueError as exc:
            # -2011 unknown order: it is already done; ask what became of it.
            log.warning("order %s: cancel refused (%s %s); querying", order.client_order_id, exc.code, exc.msg)
            try:
                answer = await self.client.query(order)
            except VenueError as exc2:
                log.error("order %s: query after a refused cancel failed: %s", order.client_order_id, exc2.msg)
                if order.status == PENDING_CANCEL:
                    self._move(order, order.before_cancel or NEW, "cancel refused")
                return
        self._apply_answer(order, answer)

    def _apply_answer(self, order: Order, answer: dict) -> None:
        """A REST order answer (new FULL/RESULT, cancel, query)."""
        if answer.get("orderId"):
            order.order_id = int(answer["orderId"])
        for f in answer.get("fills") or ():
            self._fill(order, Decimal(f["qty"]), Decimal(f["price"]), Decimal(f.get("commission", "0")),
                       f.get("commissionAsset", ""), int(f.get("tradeId", -1)), False, self.clock.time_ns())
        status = FROM_EXCHANGE.get(answer.get("status", ""), None)
        executed = answer.get("executedQty")
        if executed is not None and status in REPORTS_EXECUTED:
            self._catch_up_fills(order, Decimal(executed), Decimal(answer.get("cummulativeQuoteQty", "0")))
        if status is not None:
            self._move(order, status, "")

    def _catch_up_fills(self, order: Order, executed: Decimal, quote: Decimal) -> None:
        """Fills we have not seen one by one (e.g. after a restart): one fill at the average price."""
        inst = self.instruments[order.symbol]
        steps = inst.filters.qty_fp.to_units(executed)
        missing = steps - order.filled
        if missing > 0 and executed > 0:
            qty = inst.filters.qty_fp.increment * missing
            avg = quote / executed if quote > 0 else Decimal(0)
            log.warning("order %s: %s filled without trade reports; booking it at the average price %s",
                        order.client_order_id, qty, avg)
            self._fill(order, qty, avg, Decimal(0), "", -1, False, self.clock.time_ns())

    # ---- exchange events -------------------------------------------------------------

    def handle_update(self, u) -> None:
        order = self.orders.get(u.client_order_id)
        if order is None:
            order = self.closed.get(u.client_order_id)
            if order is None:
                self.unknown_updates += 1
                log.info("update for an order that is not ours: %s %s %s", u.symbol, u.client_order_id, u.status)
                return
        if u.order_id:
            order.order_id = u.order_id
        if u.execution_type == "TRADE" and u.last_qty > 0:
            self._fill(order, u.last_qty, u.last_price, u.commission, u.commission_asset, u.trade_id, u.is_maker,
                       u.ts_event)
        status = FROM_EXCHANGE.get(u.status)
        if status is not None:
            self._move(order, status, u.reject_reason if u.reject_reason not in ("", "NONE") else "")

    def handle_reconciliation(self, rec) -> None:
        """The exchange's open orders vs ours: settle every difference and say so."""
        on_exchange = {o.client_order_id: o for o in rec.open_orders}
        for order in self.open_orders():
            if order.client_order_id in on_exchange:
                u = on_exchange[order.client_order_id]
                status = FROM_EXCHANGE.get(u.status, NEW)
                self._catch_up_fills(order, u.cumulative_qty, u.cumulative_quote)
                if order.status == PENDING_NEW:
                    # Read before the move: the move replaces the reason.
                    cancel_after = order.reason if order.reason.startswith("cancel after ack") else ""
                    order.order_id = u.order_id
                    self._move(order, status, "found open on the exchange")
                    if cancel_after:
                        self.cancel(order, cancel_after)
                elif status != order.status and order.can_move(status):
                    self._move(order, status, "reconciled")
            else:
                # Open here, not there: it ended while we were not listening. Ask how.
                self._alert("warning", "reconcile_order", f"order {order.client_order_id} is not open on the "
                            "exchange; querying its final state")
                self._spawn(self._settle(order))
        for cid, u in on_exchange.items():
            if cid not in self.orders and cid not in self.closed:
                kind = "ours, from before a restart" if self.is_ours(cid) else "not placed by this bot"
                self._alert("warning", "unknown_open_order", f"open order {u.symbol} {cid} on the exchange is {kind}")
                if self.is_ours(cid):
                    self._adopt(u)

    async def _settle(self, order: Order) -> None:
        try:
            answer = await self.client.query(order)
        except VenueError as exc:
            if exc.order_not_found and order.status == PENDING_NEW:
                self._move(order, REJECTED, "never reached the exchange")
            else:
                log.error("order %s: cannot settle: %s", order.client_order_id, exc.msg)
            return
        self._apply_answer(order, answer)

    def _adopt(self, u) -> None:
        inst = self.instruments.get(u.symbol)
        if inst is None:
            return
        order = Order(u.client_order_id, "", u.symbol, u.side, u.order_type, inst.filters.qty_fp.to_units(u.quantity),
                      inst.filters.price_fp.to_units(u.price) if u.price else 0, u.time_in_force, u.ts_event,
                      status=FROM_EXCHANGE.get(u.status, NEW), order_id=u.order_id,
                      filled=inst.filters.qty_fp.to_units(u.cumulative_qty))
        self.orders[order.client_order_id] = order
        self._event(order, "", "adopted from the exchange")

    # ---- state changes -----------------------------------------------------------------

    def _fill(self, order: Order, qty: Decimal, price: Decimal, commission: Decimal, commission_asset: str,
              trade_id: int, is_maker: bool, ts: int) -> None:
        if trade_id >= 0:
            if trade_id in order.trade_ids:
                return
            order.trade_ids.add(trade_id)
        order.filled += self.instruments[order.symbol].filters.qty_fp.to_units(qty)
        self.fills += 1
        fill = Fill(order.client_order_id, order.strategy_id, order.symbol, order.side, qty, price, commission,
                    commission_asset, trade_id, is_maker, ts)
        if self.account is not None:
            self.account.apply_fill(fill)       # booked before anyone hears of it
        self.bus.publish(topics.FILLS, fill)
        if order.status in (NEW, PENDING_NEW) and order.filled < order.quantity:
            self._move(order, PARTIALLY_FILLED, "")

    def _move(self, order: Order, status: str, reason: str) -> None:
        if status == order.status and (status != PARTIALLY_FILLED or order.filled == order.event_filled):
            return      # nothing new to report
        try:
            previous = order.move(status, reason)
        except TransitionError as exc:
            self.refused_updates += 1
            log.warning("%s", exc)
            return
        self._event(order, previous, reason)
        if status in TERMINAL:
            if order.filled == 0:
                self.exits.pop(order.client_order_id, None)     # nothing to protect
            timer = self._timers.pop(order.client_order_id, None)
            if timer is not None:
                timer.cancel()
            if status == CANCELED and order.reason == "timeout: replace" and order.remaining > 0:
                self.bus.publish(topics.REPLACE, order)
            self._forget(order)
        if status == REJECTED:
            self._alert("warning", "order_rejected", f"order {order.client_order_id} {order.symbol} rejected: "
                        f"{order.reason}")

    def _forget(self, order: Order) -> None:
        """A closed order leaves the open table (its events are in the store); the last few are kept."""
        cid = order.client_order_id
        if self.orders.get(cid) is order:
            del self.orders[cid]
        self.closed[cid] = order
        self.closed.move_to_end(cid)
        while len(self.closed) > CLOSED_KEPT:
            self.closed.popitem(last=False)

    def _event(self, order: Order, previous: str, reason: str) -> None:
        order.event_filled = order.filled
        self.bus.publish(topics.ORDER_EVENTS, OrderEvent(
            order.client_order_id, order.strategy_id, order.symbol, order.side, order.order_type, order.status,
            previous, order.quantity, order.filled, order.price, order.order_id, reason or order.reason,
            self.clock.time_ns(), order.protective))

    def _alert(self, level: str, code: str, message: str) -> None:
        self.bus.publish(topics.ALERTS, Alert(level, "execution", code, message, self.clock.time_ns()))

    # ---- persistence -----------------------------------------------------------------

    def to_state(self) -> dict:
        return {"orders": [o.to_state() for o in self.orders.values() if o.is_open],
                "exits": {cid: list(v) for cid, v in self.exits.items()}}

    def load_state(self, state: dict) -> None:
        for d in state.get("orders", ()):
            order = Order.from_state(d)
            self.orders[order.client_order_id] = order
        self.exits.update({cid: tuple(v) for cid, v in state.get("exits", {}).items()})
