"""Order lists: OCO, OTO and OTOCO, as Binance Spot has them today.

  OCO    two legs (above / below the market) sharing one quantity and one lock; when either
         leg trades (even partly) or triggers, the other expires (eR OCO_TRIGGER).
  OTO    a working LIMIT/LIMIT_MAKER order and a pending order; the pending order is PENDING_NEW
         until the working order is FULLY filled, then goes to the book (its funds are locked
         then; a pending order that cannot be placed expires with eR REJECTED). If the working
         order ends unfilled, the pending one expires (eR OTO_PHASE_ONE_EXPIRED).
  OTOCO  an OTO whose pending part is an OCO pair. Binance reports its contingencyType as "OTO".

Cancelling any order of a list cancels the whole list. Every order carries its list's id
(`orderListId`, `g` in executionReport), and the user stream gets a `listStatus` event when a
list is placed or goes live (EXEC_STARTED / EXECUTING) and when it is over (ALL_DONE / ALL_DONE).

`ListDesk` owns the lists and is the exchange's friend: it places and cancels through the
exchange's own helpers (validation, funds, events), so one order behaves the same whether it
came alone or in a list.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Mapping

from abidance.exchange.sim import errors, payloads
from abidance.exchange.sim.matching import (EXPIRED, EXPIRED_IN_MATCH, FILLED, LIMIT, LIMIT_MAKER,
                                            OCO_TRIGGER, OPEN_STATUSES, OTO_PHASE_ONE_EXPIRED, PENDING_NEW,
                                            REJECTED_REASON, SELL, STOP_LOSS_TYPES, STOP_TYPES, TAKE_PROFIT,
                                            TAKE_PROFIT_LIMIT, Order)
from abidance.exchange.sim.validation import NewOrder, check_filters, check_supported, given, leg_names, parse_order

if TYPE_CHECKING:
    from abidance.exchange.sim.accounts import Account
    from abidance.exchange.sim.exchange import SimExchange, _Market

OCO, OTO = "OCO", "OTO"
EXEC_STARTED, ALL_DONE = "EXEC_STARTED", "ALL_DONE"
EXECUTING = "EXECUTING"
LIVE = OPEN_STATUSES | {PENDING_NEW}
ABOVE_TYPES = frozenset({"STOP_LOSS_LIMIT", "STOP_LOSS", LIMIT_MAKER, TAKE_PROFIT, TAKE_PROFIT_LIMIT})
BELOW_TYPES = ABOVE_TYPES          # Binance's table omits LIMIT_MAKER below, its own examples use it
WORKING_TYPES = frozenset({LIMIT, LIMIT_MAKER})
_LIST_RESP = "RESULT"              # orderReports' default format (Binance's examples; UNCONFIRMED)


@dataclass(slots=True, eq=False)
class OrderList:
    list_id: int
    client_id: str
    symbol: str
    account_id: int
    contingency: str                   # "OCO" | "OTO" (an OTOCO is an "OTO")
    orders: list[Order]                # in id order
    pair: list[Order]                  # the OCO pair (an OCO's legs, an OTOCO's pending legs)
    working: Order | None = None       # OTO/OTOCO
    pending: list[Order] = field(default_factory=list)
    status_type: str = EXEC_STARTED
    order_status: str = EXECUTING
    time: int = 0
    announce_after: Order | None = None   # listStatus EXEC_STARTED follows this order's NEW report
    report_pending: bool = False          # ... and, at placement, the pending legs' reports
    done: bool = False

    def sibling(self, order: Order) -> Order | None:
        if order in self.pair and len(self.pair) == 2:
            return self.pair[1] if order is self.pair[0] else self.pair[0]
        return None


class ListDesk:
    """Places, cancels, queries and runs order lists for a SimExchange."""

    def __init__(self, ex: SimExchange):
        self._ex = ex
        self._last_id = -1
        self._lists: dict[int, dict[int, OrderList]] = {}          # account -> list id -> list
        self._open: dict[int, dict[int, OrderList]] = {}           # account -> open lists
        self._client_ids: dict[tuple[int, str], OrderList] = {}    # latest list per listClientOrderId

    # ---- placement ----------------------------------------------------------------------------

    def place_oco(self, account: Account, params: Mapping[str, str]) -> dict:
        """POST /api/v3/orderList/oco."""
        ex = self._ex
        mkt = ex._market(params.get("symbol"))
        spec = mkt.spec
        above = parse_order(spec, params, leg_names("above", "side", "quantity"), _leg_type(ABOVE_TYPES))
        below = parse_order(spec, params, leg_names("below", "side", "quantity"), _leg_type(BELOW_TYPES))
        check_positions(above.side, above.type, below.type)
        common = self._common(account, mkt, params, [above, below], ["aboveClientOrderId", "belowClientOrderId"])
        last = mkt.engine.last_price
        if last is not None:
            check_prices(above, below, last)
        # The stop-loss leg is placed first (the lower id), as in Binance's examples.
        legs = [below, above] if below.type in STOP_LOSS_TYPES else [above, below]
        return self._place(account, mkt, common, OCO, placed=legs, pending=[], pair=legs)

    def place_oto(self, account: Account, params: Mapping[str, str]) -> dict:
        """POST /api/v3/orderList/oto."""
        mkt = self._ex._market(params.get("symbol"))
        spec = mkt.spec
        working = parse_order(spec, params, _working_names(), _leg_type(WORKING_TYPES, invalid=True))
        pending = parse_order(spec, params, leg_names("pending", "pendingSide", "pendingQuantity"))
        common = self._common(account, mkt, params, [working, pending],
                              ["workingClientOrderId", "pendingClientOrderId"])
        return self._place(account, mkt, common, OTO, placed=[working], pending=[pending], pair=[])

    def place_otoco(self, account: Account, params: Mapping[str, str]) -> dict:
        """POST /api/v3/orderList/otoco."""
        mkt = self._ex._market(params.get("symbol"))
        spec = mkt.spec
        working = parse_order(spec, params, _working_names(), _leg_type(WORKING_TYPES, invalid=True))
        above = parse_order(spec, params, leg_names("pendingAbove", "pendingSide", "pendingQuantity"),
                            _leg_type(ABOVE_TYPES))
        below = parse_order(spec, params, leg_names("pendingBelow", "pendingSide", "pendingQuantity"),
                            _leg_type(BELOW_TYPES))
        check_positions(above.side, above.type, below.type)
        common = self._common(account, mkt, params, [working, above, below],
                              ["workingClientOrderId", "pendingAboveClientOrderId", "pendingBelowClientOrderId"])
        pair = [below, above] if below.type in STOP_LOSS_TYPES else [above, below]
        return self._place(account, mkt, common, OTO, placed=[working], pending=pair, pair=pair)

    def _common(self, account: Account, mkt: _Market, params, legs: list[NewOrder], id_params: list[str]) -> dict:
        """What every list request checks beyond its legs' own parameters, in Binance's order."""
        ex, spec = self._ex, mkt.spec
        resp = ex._resp_type(params.get("newOrderRespType")) or _LIST_RESP
        mode = ex._stp_mode(spec, params.get("selfTradePreventionMode"))
        list_cid = ex._client_id(params.get("listClientOrderId"), "listClientOrderId")
        existing = self._client_ids.get((account.account_id, list_cid))
        if existing is not None and not existing.done:
            raise errors.duplicate_order()
        seen = set()
        for leg, name in zip(legs, id_params):
            leg.client_id = ex._client_id(leg.client_id, name)
            if leg.client_id in seen or (spec.symbol, leg.client_id) in account.open_client_ids:
                raise errors.duplicate_order()
            seen.add(leg.client_id)
        if not account.can_trade:
            raise errors.trading_disabled()
        open_here = account.open_orders_of(spec.symbol)
        algo = sum(leg.type in STOP_TYPES for leg in legs)
        avg = ex._avg_price_dec(mkt)
        for leg in legs:
            check_filters(spec, leg, avg, open_here, new_orders=len(legs), new_algo=algo)
        if self.open_count(account.account_id, spec.symbol) >= spec.max_num_order_lists:
            raise errors.filter_failure("MAX_NUM_ORDER_LISTS")
        for leg in legs:
            check_supported(spec, leg)
        return {"resp": resp, "mode": mode, "list_cid": list_cid}

    def _place(self, account: Account, mkt: _Market, common: dict, contingency: str, *, placed: list[NewOrder],
               pending: list[NewOrder], pair: list[NewOrder]) -> dict:
        ex, spec, engine = self._ex, mkt.spec, mkt.engine
        for leg in placed:
            if leg.type == LIMIT_MAKER and engine.would_cross(leg.side, leg.price_ticks):
                raise errors.would_take()
        # Funds: the working order's own lock, or the OCO pair's shared one.
        if contingency == OCO:
            lock_asset, lock, lock_ticks = ex._pair_lock(mkt, placed)
        else:
            lock_asset, lock, lock_ticks = ex._lock_for(mkt, placed[0])
        if not account.can_afford(lock_asset, lock):
            raise errors.insufficient_balance()

        now = ex._clock()
        self._last_id += 1
        list_id = self._last_id
        made = {id(leg): ex._make_order(account, mkt, leg, common["mode"], now, list_id, ticks)
                for leg, ticks in zip(placed + pending, lock_ticks + [0] * len(pending))}
        orders = [made[id(leg)] for leg in placed + pending]
        lst = OrderList(list_id, common["list_cid"], spec.symbol, account.account_id, contingency, orders,
                        pair=[made[id(leg)] for leg in pair], time=now)
        if contingency == OTO:
            lst.working = orders[0]
            lst.pending = [made[id(leg)] for leg in pending]
            for order in lst.pending:
                order.status = PENDING_NEW
            lst.report_pending = True
        lst.announce_after = orders[len(placed) - 1]
        self._register(account, lst)
        if contingency == OCO:
            account.reserve(("list", spec.symbol, list_id), lock_asset, lock)
            account.share(("list", spec.symbol, list_id), [(spec.symbol, o.order_id) for o in orders])
        else:
            account.reserve((spec.symbol, lst.working.order_id), lock_asset, lock)
        for order in orders:
            account.add_order(order)
        account.update_time = now
        # The pending legs as placed (PENDING_NEW) whatever happens to them before we answer.
        resp = common["resp"]
        pending_reports = [payloads.new_order_response(spec, o, resp, [], transact_time=now, status=PENDING_NEW)
                           for o in lst.pending]
        fills: dict[int, list] = {}
        for order in orders[:len(placed)]:
            fills[order.order_id] = ex._submit(mkt, account, order)
        reports = [payloads.new_order_response(spec, o, resp, fills.get(o.order_id, []), transact_time=now)
                   for o in orders[:len(placed)]] + pending_reports
        by_id = {r["orderId"]: r for r in reports}
        return payloads.order_list(lst, [by_id[o.order_id] for o in orders], status_type=EXEC_STARTED,
                                   order_status=EXECUTING, transaction_time=now)

    def _register(self, account: Account, lst: OrderList) -> None:
        self._lists.setdefault(account.account_id, {})[lst.list_id] = lst
        self._open.setdefault(account.account_id, {})[lst.list_id] = lst
        self._client_ids[(account.account_id, lst.client_id)] = lst

    # ---- life cycle (hooks the exchange calls) ------------------------------------------------

    def of(self, order: Order) -> OrderList | None:
        return self._lists.get(order.account_id, {}).get(order.order_list_id)

    def on_new(self, order: Order) -> None:
        """An order of a list was accepted by the engine (placed, or gone live)."""
        lst = self.of(order)
        if lst is None or lst.announce_after is not order:
            return
        lst.announce_after = None
        ex = self._ex
        now = order.update_time
        if lst.report_pending:
            lst.report_pending = False
            for leg in lst.pending:
                ex._emit_report(leg, "NEW", now)
        ex._emit_list_status(lst, EXEC_STARTED, EXECUTING, now)

    def on_trade(self, order: Order) -> None:
        """A list's order traded: its OCO sibling expires; a filled working order sets the
        pending part going (once the current match is over)."""
        lst = self.of(order)
        if lst is None:
            return
        self._expire_sibling(lst, order)
        if order is lst.working and order.status == FILLED and lst.pending:
            self._ex._market(lst.symbol).engine.defer(lambda: self._activate(lst))
        self._check_done(lst, order.update_time)

    def on_trigger(self, order: Order) -> None:
        lst = self.of(order)
        if lst is not None:
            self._expire_sibling(lst, order)

    def on_closed(self, order: Order) -> None:
        """A list's order ended without a trade or a cancel of the list (expired, expired by
        self-trade prevention, rejected when going live)."""
        lst = self.of(order)
        if lst is None:
            return
        if order is lst.working and order.status != FILLED:
            for leg in lst.pending:
                if leg.status == PENDING_NEW:
                    self._expire_pending(lst, leg, OTO_PHASE_ONE_EXPIRED, order.update_time)
        elif order.status in (EXPIRED, EXPIRED_IN_MATCH) and order.expiry_reason != OCO_TRIGGER:
            self._expire_sibling(lst, order)           # the whole OCO expires
        self._check_done(lst, order.update_time)

    def _expire_sibling(self, lst: OrderList, order: Order) -> None:
        other = lst.sibling(order)
        if other is not None and other.status in OPEN_STATUSES:
            self._ex._market(lst.symbol).engine.expire(other, OCO_TRIGGER)

    def _expire_pending(self, lst: OrderList, leg: Order, reason: str, now: int) -> None:
        ex = self._ex
        leg.status = EXPIRED
        leg.expiry_reason = reason
        leg.update_time = now
        account = ex._account(leg.account_id)
        account.close_order(leg)
        ex._emit_report(leg, EXPIRED, now, position=True)

    def _activate(self, lst: OrderList) -> None:
        """The working order filled: the pending order(s) go to the book with their funds, or
        expire (eR REJECTED) when they cannot."""
        if lst.done or any(leg.status != PENDING_NEW for leg in lst.pending):
            return
        ex = self._ex
        mkt = ex._market(lst.symbol)
        spec, engine = mkt.spec, mkt.engine
        account = ex._account(lst.account_id)
        now = ex._clock()
        legs = [ex._as_new_order(leg) for leg in lst.pending]
        if len(legs) == 2:
            asset, lock, ticks = ex._pair_lock(mkt, legs)
        else:
            asset, lock, ticks = ex._lock_for(mkt, legs[0])
        refused = not account.can_afford(asset, lock) or any(
            leg.type == LIMIT_MAKER and engine.would_cross(leg.side, leg.price_ticks) for leg in legs)
        if refused:
            for leg in lst.pending:
                self._expire_pending(lst, leg, REJECTED_REASON, now)
            self._check_done(lst, now)
            return
        if len(legs) == 2:
            account.reserve(("list", spec.symbol, lst.list_id), asset, lock)
            account.share(("list", spec.symbol, lst.list_id), [(spec.symbol, o.order_id) for o in lst.pending])
        else:
            account.reserve((spec.symbol, lst.pending[0].order_id), asset, lock)
        account.update_time = now
        lst.announce_after = lst.pending[-1]
        for leg, t in zip(lst.pending, ticks):
            leg.status = "NEW"
            leg.lock_ticks = t
        for leg in lst.pending:
            if leg.status == "NEW":          # not expired by its sibling meanwhile
                ex._submit(mkt, account, leg, check_last=True)

    def _check_done(self, lst: OrderList, now: int) -> None:
        if lst.done or any(o.status in LIVE for o in lst.orders):
            return
        self._finish(lst, now)
        self._ex._emit_list_status(lst, ALL_DONE, ALL_DONE, now)

    def _finish(self, lst: OrderList, now: int) -> None:
        lst.done = True
        lst.status_type = lst.order_status = ALL_DONE
        lst.time = now
        self._open.get(lst.account_id, {}).pop(lst.list_id, None)

    # ---- cancel and queries -------------------------------------------------------------------

    def cancel(self, account: Account, symbol, order_list_id=None, list_client_order_id=None,
               new_client_order_id=None) -> dict:
        """DELETE /api/v3/orderList."""
        ex = self._ex
        mkt = ex._market(symbol)
        if not given(order_list_id) and not given(list_client_order_id):
            raise errors.mandatory_one_of("orderListId", "listClientOrderId")
        list_id = ex._order_id(order_list_id, "orderListId")
        cancel_id = ex._client_id(new_client_order_id, "newClientOrderId")
        lst = self._find(account, list_id, list_client_order_id if given(list_client_order_id) else None)
        if lst is None or lst.symbol != mkt.spec.symbol or lst.done:
            raise errors.cancel_rejected()
        return self.cancel_list(account, mkt, lst, cancel_id)

    def cancel_list(self, account: Account, mkt: _Market, lst: OrderList, cancel_id: str) -> dict:
        """Cancel every live order of a list (a cancel of one of them lands here too)."""
        ex = self._ex
        reports = [ex._cancel(mkt, account, order, cancel_id) for order in lst.orders if order.status in LIVE]
        now = ex._clock()
        self._finish(lst, now)
        ex._emit_list_status(lst, ALL_DONE, ALL_DONE, now)
        return payloads.order_list(lst, reports)

    def query(self, account: Account, order_list_id=None, orig_client_order_id=None) -> dict:
        """GET /api/v3/orderList: by origClientOrderId (the listClientOrderId) when given, else by id."""
        ex = self._ex
        if not given(order_list_id) and not given(orig_client_order_id):
            raise errors.mandatory_one_of("orderListId", "origClientOrderId")
        if given(orig_client_order_id):
            lst = self._client_ids.get((account.account_id, orig_client_order_id))
        else:
            lst = self._lists.get(account.account_id, {}).get(ex._order_id(order_list_id, "orderListId"))
        if lst is None:
            raise errors.no_such_order_list()
        return payloads.order_list(lst)

    def open_lists(self, account: Account) -> list[dict]:
        """GET /api/v3/openOrderList."""
        return [payloads.order_list(lst) for lst in sorted(self._open.get(account.account_id, {}).values(),
                                                            key=lambda x: x.list_id)]

    def all_lists(self, account: Account, from_id=None, start_time=None, end_time=None, limit=500) -> list[dict]:
        """GET /api/v3/allOrderList: from fromId on, else the most recent (within the time range),
        oldest first."""
        ex = self._ex
        limit = ex._limit(limit, 500, 1000)
        lists = sorted(self._lists.get(account.account_id, {}).values(), key=lambda x: x.list_id)
        from_id = ex._order_id(from_id, "fromId")
        if from_id is not None:
            if given(start_time) or given(end_time):
                raise errors.BinanceError(-1128, "Combination of optional parameters invalid.", 400)
            lists = [x for x in lists if x.list_id >= from_id][:limit]
        else:
            lists = [x for x in lists if (start_time is None or x.time >= int(start_time))
                     and (end_time is None or x.time <= int(end_time))]
            lists = lists[:limit] if start_time is not None else lists[-limit:]
        return [payloads.order_list(x) for x in lists]

    def open_count(self, account_id: int, symbol: str) -> int:
        return sum(lst.symbol == symbol for lst in self._open.get(account_id, {}).values())

    def _find(self, account: Account, list_id: int | None, client_id: str | None) -> OrderList | None:
        if list_id is not None:
            lst = self._lists.get(account.account_id, {}).get(list_id)
            if lst is not None and client_id is not None and lst.client_id != client_id:
                raise errors.client_id_mismatch()
            return lst
        return self._client_ids.get((account.account_id, client_id))


def _working_names():
    return leg_names("working", "workingSide", "workingQuantity")


def _leg_type(allowed: frozenset, invalid: bool = False):
    def refuse(type_: str) -> None:
        if type_ not in allowed:
            raise errors.invalid_enum("type", type_) if invalid else errors.oco_type_rejected()
    return refuse


def check_positions(side: str, above: str, below: str) -> None:
    """Which leg may be above the market and which below (-1165..-1168, -1196..-1199): a SELL
    OCO takes profit above and stops the loss below, a BUY OCO the other way round."""
    if above == LIMIT_MAKER and below == LIMIT_MAKER:
        raise errors.oco_leg_position(-1168)
    if side == SELL:
        if above in STOP_LOSS_TYPES:
            raise errors.oco_leg_position(-1197)
        if below == LIMIT_MAKER:
            raise errors.oco_leg_position(-1166)
        if below not in STOP_LOSS_TYPES:
            raise errors.oco_leg_position(-1199)
    else:
        if below in STOP_LOSS_TYPES:
            raise errors.oco_leg_position(-1196)
        if above == LIMIT_MAKER:
            raise errors.oco_leg_position(-1165)
        if above not in STOP_LOSS_TYPES:
            raise errors.oco_leg_position(-1198)


def check_prices(above: NewOrder, below: NewOrder, last: int) -> None:
    """Binance's price relationship for an OCO, against the last trade price (-2010):
    SELL: take-profit/limit price > last > stop-loss stopPrice; BUY: take-profit/limit price
    < last < stop-loss stopPrice. A TAKE_PROFIT leg is judged by its stopPrice, a
    TAKE_PROFIT_LIMIT leg by its price and its stopPrice; a trailing leg without a stopPrice
    has no stop to judge."""
    profit, loss = (above, below) if above.type not in STOP_LOSS_TYPES else (below, above)
    sell = profit.side == SELL

    def beyond(ticks: int) -> bool:              # on the profit side of the last price
        return ticks > last if sell else ticks < last

    ok = True
    if profit.type in (LIMIT_MAKER, TAKE_PROFIT_LIMIT):
        ok = beyond(profit.price_ticks)
    if profit.type in (TAKE_PROFIT, TAKE_PROFIT_LIMIT) and profit.stop_ticks:
        ok = ok and beyond(profit.stop_ticks)
    if loss.stop_ticks:
        ok = ok and (loss.stop_ticks < last if sell else loss.stop_ticks > last)
    if not ok:
        raise errors.oco_bad_prices()
