"""Exits resting on the exchange (execution.exits = "native", the default when trading live).

An exit the node emulates dies with the node; one resting on the venue fires whether the node
runs or not. When an entry that carries exit levels ends with something filled, the
strategy's whole position in the symbol (whole lot steps) is protected by one SELL on the
venue: an OCO (target LIMIT_MAKER above, STOP_LOSS below) or a single STOP_LOSS / trailing
STOP_LOSS / LIMIT_MAKER (the request is the client's: abidance/exchange/binance/order_lists.py).
One protection per (strategy, symbol): a later entry replaces it with one for the new
position. Its orders are registered with the execution engine before they are sent, so a
fill reported before the answer is never lost, and are followed like any order: fills go
to the strategy they protect, and the venue cancels an OCO's other leg itself.

A strategy's own SELL first cancels its protection (the venue holds the asset for it). The
protection is in the node's state; after a restart the execution engine's reconciliation
settles its orders (a stop that fired while the node was down is booked then), and the
protection ends when its last order does.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from abidance.core import topics
from abidance.core.errors import VenueError
from abidance.core.events import Alert
from abidance.execution.orders import TERMINAL, Order

log = logging.getLogger("abidance.exits.native")


@dataclass
class Protection:
    strategy_id: str
    symbol: str
    request: object             # the client's exit request (kind, symbol, client ids, legs)
    levels: tuple[int, int, int]    # stop loss, take profit (ticks), trailing (bps)
    qty: int                    # steps protected

    @property
    def client_ids(self) -> tuple[str, ...]:
        return tuple(self.request.client_ids)


class NativeExits:
    """The exit manager's native mode: protections by (strategy, symbol)."""

    def __init__(self, bus, clock, execution, ids, on_unavailable):
        self.bus = bus
        self.clock = clock
        self.execution = execution
        self.client = execution.client
        self.ids = ids
        self.on_unavailable = on_unavailable    # (key, levels, reason): emulate this one instead
        self.protections: dict[tuple[str, str], Protection] = {}
        self._leg_owner: dict[str, tuple[str, str]] = {}        # leg client id -> key
        self._pending: dict[tuple[str, str], asyncio.Task] = {}    # a replacement in progress
        self._released: dict[str, tuple] = {}      # a strategy's own SELL -> (key, levels) it took the place of
        self.placed = 0
        self.failed = 0

    # ---- what the exit manager asks -----------------------------------------------------------

    def problem(self, symbol: str, levels: tuple[int, int, int]) -> str:
        return self.client.exit_problem(symbol, *levels)

    def protect(self, strategy_id: str, symbol: str, levels: tuple[int, int, int]) -> None:
        """Protect the strategy's whole position in symbol with these levels (an entry just ended)."""
        key = (strategy_id, symbol)
        previous = self._pending.get(key)
        task = asyncio.get_running_loop().create_task(self._protect(key, levels, previous),
                                                      name=f"protect-{strategy_id}-{symbol}")
        self._pending[key] = task
        task.add_done_callback(lambda t, k=key: self._pending.pop(k, None) if self._pending.get(k) is t else None)

    def before_sell(self, order: Order):
        """The execution engine's sell gate: a strategy's own SELL waits for its protection to go."""
        key = (order.strategy_id, order.symbol)
        if order.protective or (key not in self.protections and key not in self._pending):
            return None
        prot = self.protections.get(key)
        if prot is not None:
            self._released[order.client_order_id] = (key, prot.levels)
        return self._unprotect(key, f"{order.strategy_id} sells {order.symbol} itself")

    def on_order_event(self, ev) -> None:
        released = self._released.pop(ev.client_order_id, None) if ev.status in TERMINAL else None
        if released is not None and self._position_steps(*released[0]) > 0:
            # The strategy's own sell left something (refused, partly filled): protect what is left.
            self.protect(*released[0], released[1])
        key = self._leg_owner.get(ev.client_order_id)
        if key is None or ev.status not in TERMINAL:
            return
        prot = self.protections.get(key)
        if prot is None:
            return
        if all(self._leg_done(cid) for cid in prot.client_ids):
            self._forget(key)
            log.info("%s %s protection ended (%s)", key[0], key[1], ev.status)

    # ---- placing and cancelling -----------------------------------------------------------------

    async def _protect(self, key, levels, previous) -> None:
        if previous is not None:
            await asyncio.wait([previous])
        if key in self.protections:
            await self._unprotect(key, "replaced by a protection of the new position")
        strategy_id, symbol = key
        qty = self._position_steps(strategy_id, symbol)
        if qty <= 0:
            return
        request = self.client.build_exit(symbol, qty, *levels, self.ids.next())
        now = self.clock.time_ns()
        legs = [Order(cid, strategy_id, symbol, "SELL", kind, qty, price, "GTC" if kind == "LIMIT_MAKER" else "",
                      now, reduce_only=True, parent_id=request.list_client_id, protective=True)
                for cid, kind, price in request.legs]
        prot = Protection(strategy_id, symbol, request, levels, qty)
        self.protections[key] = prot
        for leg in legs:
            self._leg_owner[leg.client_order_id] = key
        self.execution.track(legs, "protective exit sent to the venue")
        try:
            answer = await self.client.place_exit(request)
        except VenueError as exc:
            self.failed += 1
            for leg in legs:
                self.execution.fail(leg, exc)
            self._forget(key)
            self._alert("error", "native_exit_failed", f"{strategy_id} {symbol}: the exit could not be placed on "
                        f"the venue ({exc}); emulating it in the node instead")
            self.on_unavailable(key, levels, str(exc))
            return
        self.placed += 1
        self.execution.apply_answers(answer)
        log.info("%s %s protected on the venue: %s steps, stop %s, target %s, trailing %s bps (%s)", strategy_id,
                 symbol, qty, *levels, ", ".join(prot.client_ids))

    async def _unprotect(self, key, why: str) -> None:
        pending = self._pending.get(key)
        if pending is not None and pending is not asyncio.current_task():
            await asyncio.wait([pending])
        prot = self.protections.get(key)
        if prot is None or all(self._leg_done(cid) for cid in prot.client_ids):
            return
        try:
            answer = await self.client.cancel_exit(prot.request)
        except VenueError as exc:
            # Already gone (it fired, or was cancelled elsewhere): the user stream or the next
            # reconciliation tells how; the sell that follows is refused if nothing is left.
            log.warning("%s %s: cancelling the protection failed (%s)", key[0], key[1], exc)
            return
        log.info("%s %s protection cancelled: %s", key[0], key[1], why)
        self.execution.apply_answers(answer)

    # ---- bookkeeping ------------------------------------------------------------------------

    def _leg_done(self, cid: str) -> bool:
        order = self.execution.order(cid)
        return order is None or order.status in TERMINAL

    def _forget(self, key) -> None:
        prot = self.protections.pop(key, None)
        if prot is not None:
            for cid in prot.client_ids:
                self._leg_owner.pop(cid, None)

    def _position_steps(self, strategy_id: str, symbol: str) -> int:
        account = self.execution.account
        held = account.tradable_position(symbol, strategy_id) if account is not None else 0
        return self.execution.instruments[symbol].filters.qty_fp.to_units(held) if held else 0

    def _alert(self, level: str, code: str, message: str) -> None:
        self.bus.publish(topics.ALERTS, Alert(level, "exits", code, message, self.clock.time_ns()))

    # ---- persistence ------------------------------------------------------------------------

    def to_state(self) -> list:
        return [{"strategy_id": p.strategy_id, "symbol": p.symbol, "kind": p.request.kind,
                 "client_ids": list(p.client_ids), "list_client_id": p.request.list_client_id,
                 "levels": list(p.levels), "qty": p.qty}
                for p in self.protections.values()]

    def load_state(self, rows: list) -> None:
        """Protections from before a restart; their orders come back with the execution engine's state."""
        for row in rows:
            key = (row["strategy_id"], row["symbol"])
            request = self.client.build_exit(row["symbol"], row["qty"], *row["levels"],
                                             row["list_client_id"] or row["client_ids"][0])
            self.protections[key] = Protection(*key, request, tuple(row["levels"]), row["qty"])
            for cid in request.client_ids:
                self._leg_owner[cid] = key

