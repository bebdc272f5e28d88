"""Changing a working order: amend keep priority and cancel-replace, as Binance Spot does.

  amend          PUT /api/v3/order/amend/keepPriority: reduce an open order's quantity in place,
                 keeping its queue position (and its OCO partner's: the pair shares one quantity);
                 the freed part of its lock goes back to free. Refusals are -2038 with the
                 matching engine's message; an order may be amended 10 times (MAX_NUM_ORDER_AMENDS).
  cancel_replace POST /api/v3/order/cancelReplace: cancel, then place, not atomically; the answer
                 says which half worked (200, 409 -2021, 400 -2022 with `data`), and
                 orderRateLimitExceededMode decides what happens when the new order would break the
                 unfilled-order-count limit.

Functions over the SimExchange (this module is its friend: it uses the exchange's own helpers).
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Callable, Mapping

from abidance.exchange.sim import errors, payloads
from abidance.exchange.sim.errors import BinanceError
from abidance.exchange.sim.matching import EXPIRED, OPEN_STATUSES, PENDING_NEW, SELL, Order
from abidance.exchange.sim.symbols import SymbolSpec, units_to_dec
from abidance.exchange.sim.validation import check_filters, check_supported, given, parse_order

if TYPE_CHECKING:
    from abidance.exchange.sim.accounts import Account
    from abidance.exchange.sim.exchange import SimExchange

LIVE = OPEN_STATUSES | {PENDING_NEW}
REPLACED = "REPLACED"
UPDATED = "UPDATED"
CANCEL_REPLACE_MODES = ("STOP_ON_FAILURE", "ALLOW_FAILURE")
RATE_LIMIT_MODES = ("DO_NOTHING", "CANCEL_ONLY")


def amend(ex: SimExchange, account: Account, symbol, order_id, orig_client_order_id, new_client_order_id,
          new_qty) -> dict:
    mkt = ex._market(symbol)
    spec = mkt.spec
    if not given(order_id) and not given(orig_client_order_id):
        raise errors.mandatory_one_of("orderId", "origClientOrderId")
    if not given(new_qty):
        raise errors.mandatory_param("newQty")
    steps = spec.qty_to_steps(new_qty, "newQty")
    new_cid = ex._client_id(new_client_order_id, "newClientOrderId")
    order = ex._lookup(account, spec.symbol, order_id, orig_client_order_id)
    if order is None or order.status not in LIVE:
        raise errors.amend_rejected("Unknown order sent.")
    if new_cid != order.client_order_id and (spec.symbol, new_cid) in account.open_client_ids:
        raise errors.amend_rejected("Duplicate order sent.")
    if steps == order.orig_qty_steps:
        raise errors.amend_no_change()
    if steps > order.orig_qty_steps:
        raise errors.amend_increase()
    if order.amends >= spec.max_num_order_amends:
        raise errors.amend_rejected("Filter failure: MAX_NUM_ORDER_AMENDS")

    lst = ex._lists.of(order)
    sibling = lst.sibling(order) if lst is not None else None
    targets = [order] + ([sibling] if sibling is not None and sibling.status in LIVE else [])
    orig_cid = order.client_order_id
    engine = mkt.engine
    now = ex._clock()
    ended = []
    for target in targets:
        if target.status == PENDING_NEW:         # not in the engine yet, nothing locked yet
            target.orig_qty_steps = steps
            target.update_time = now
        elif engine.amend(target, steps):
            ended.append(target)
        target.amends += 1
    _release_freed(spec, account, targets)
    if new_cid != orig_cid:
        _rename(account, order, new_cid)
    for target in ended:
        account.close_order(target)
    account.update_time = now
    execution_id = 0
    for target in targets:
        ex._event_seq += 1
        if target is order:
            execution_id = ex._event_seq
        if ex._want_user:
            ex._listener.on_user_event(account.account_id, payloads.execution_report(
                spec, target, REPLACED, now, ex._event_seq, orig_client_id=orig_cid if target is order else ""))
    if ex._want_user:
        ex._listener.on_user_event(account.account_id,
                                   payloads.account_position(account, (spec.base_asset, spec.quote_asset), now))
    if lst is not None and new_cid != orig_cid:
        ex._emit_list_status(lst, UPDATED, lst.order_status, now)
    for target in ended:
        if target.order_list_id >= 0:
            ex._lists.on_closed(target)
    out = {"transactTime": now, "executionId": execution_id,
           "amendedOrder": payloads.amended_order(spec, order, orig_cid)}
    if lst is not None:
        out["listStatus"] = payloads.amend_list_status(lst)
    return out


def _need(spec: SymbolSpec, order: Order) -> Decimal:
    """What an open order's lock must still hold for what it may execute."""
    rest = max(order.remaining_steps, 0) if order.status != EXPIRED else 0
    if order.side == SELL:
        return spec.qty_dec(rest)
    return units_to_dec(spec.quote_units(order.lock_ticks, rest))


def _release_freed(spec: SymbolSpec, account: Account, orders: list[Order]) -> None:
    """Give back the part of the lock (one, or an OCO pair's shared one) the orders no longer need."""
    live = [o for o in orders if o.status != PENDING_NEW]
    if not live:
        return
    key = (spec.symbol, live[0].order_id)
    need = max(_need(spec, o) for o in live)
    account.release_part(key, account.lock_of(key) - need)


def _rename(account: Account, order: Order, client_id: str) -> None:
    """The order answers to its new clientOrderId from now on."""
    symbol = order.symbol
    old = (symbol, order.client_order_id)
    if account.open_client_ids.get(old) is order:
        del account.open_client_ids[old]
    if account.client_ids.get(old) is order:
        del account.client_ids[old]
    order.client_order_id = client_id
    if order.status in LIVE:
        account.open_client_ids[(symbol, client_id)] = order
    account.client_ids[(symbol, client_id)] = order


def cancel_replace(ex: SimExchange, account: Account, params: Mapping[str, str],
                   count_order: Callable[[], object] | None) -> dict:
    mkt = ex._market(params.get("symbol"))
    spec = mkt.spec
    mode = params.get("cancelReplaceMode")
    if not given(mode):
        raise errors.mandatory_param("cancelReplaceMode")
    if mode not in CANCEL_REPLACE_MODES:
        raise errors.bad_enum("cancelReplaceMode", ", ".join(CANCEL_REPLACE_MODES))
    rate_mode = params.get("orderRateLimitExceededMode") or "DO_NOTHING"
    if rate_mode not in RATE_LIMIT_MODES:
        raise errors.bad_enum("orderRateLimitExceededMode", ", ".join(RATE_LIMIT_MODES))
    restrictions = params.get("cancelRestrictions")
    if given(restrictions) and restrictions not in ("ONLY_NEW", "ONLY_PARTIALLY_FILLED"):
        raise errors.cancel_restrictions_invalid()
    cancel_oid, cancel_cid = params.get("cancelOrderId"), params.get("cancelOrigClientOrderId")
    if not given(cancel_oid) and not given(cancel_cid):
        raise errors.mandatory_one_of("cancelOrderId", "cancelOrigClientOrderId")
    cancel_id = ex._client_id(params.get("cancelNewClientOrderId"), "cancelNewClientOrderId")
    # The new order's parameters and filters first: their errors fail the request, nothing is cancelled.
    new = parse_order(spec, params)
    resp = ex._resp_type(params.get("newOrderRespType"))
    stp = ex._stp_mode(spec, params.get("selfTradePreventionMode"))
    new.client_id = ex._client_id(new.client_id, "newClientOrderId")
    if not account.can_trade:
        raise errors.trading_disabled()
    check_filters(spec, new, ex._avg_price_dec(mkt), account.open_orders_of(spec.symbol))
    check_supported(spec, new)
    over = None
    if count_order is not None:
        try:
            count_order()
        except BinanceError as exc:
            if exc.code != -1015 or rate_mode == "DO_NOTHING":
                raise
            over = exc

    try:
        cancelled = ex.cancel_order(account, spec.symbol, order_id=cancel_oid, orig_client_order_id=cancel_cid,
                                    new_client_order_id=cancel_id, cancel_restrictions=restrictions)
        cancel_error = None
    except BinanceError as exc:
        cancelled, cancel_error = None, exc.body()
    stop = mode == "STOP_ON_FAILURE"
    if over is not None:                 # CANCEL_ONLY: cancel, never place
        data = _data(cancelled, cancel_error, None, None if stop and cancelled is None else over.body())
        if cancelled is not None:
            raise errors.cancel_replace_partial(data, 429 if stop else 409, over.retry_after if stop else None)
        raise errors.cancel_replace_failed(data, 429 if stop else 400, over.retry_after if stop else None)
    if cancelled is None and stop:
        raise errors.cancel_replace_failed(_data(None, cancel_error, None, None))

    try:
        if (spec.symbol, new.client_id) in account.open_client_ids:
            raise errors.duplicate_order()
        placed, place_error = ex._place(account, ex._request(mkt, new, resp, stp)), None
    except BinanceError as exc:
        placed, place_error = None, exc.body()
    if cancelled is not None and placed is not None:
        return {"cancelResult": "SUCCESS", "newOrderResult": "SUCCESS", "cancelResponse": cancelled,
                "newOrderResponse": placed}
    data = _data(cancelled, cancel_error, placed, place_error)
    if cancelled is not None or placed is not None:
        raise errors.cancel_replace_partial(data)
    raise errors.cancel_replace_failed(data)


def _data(cancelled, cancel_error, placed, place_error) -> dict:
    """The `data` of a failed cancel-replace: each half's result and its answer or error."""
    if placed is not None:
        new_result = "SUCCESS"
    elif place_error is not None:
        new_result = "FAILURE"
    else:
        new_result = "NOT_ATTEMPTED"
    return {"cancelResult": "SUCCESS" if cancelled is not None else "FAILURE", "newOrderResult": new_result,
            "cancelResponse": cancelled if cancelled is not None else cancel_error,
            "newOrderResponse": placed if placed is not None else place_error}
