"""User-data messages and REST order/account answers -> order and balance events.

Not the per-tick hot path, so orjson + Decimal. Every field is checked; a malformed
message raises UserEventError naming the event and field, and the stream drops and
counts it (the reconciliation after a reconnect repairs any gap).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from abidance.core.events import Balance, BalanceDelta, BalanceUpdate, OrderListUpdate, OrderUpdate

SIDES = {"BUY", "SELL"}
EXECUTION_TYPES = {"NEW", "CANCELED", "REPLACED", "REJECTED", "TRADE", "EXPIRED", "TRADE_PREVENTION",
                   "AMENDMENT", "CALCULATED"}
ORDER_STATUSES = {"NEW", "PARTIALLY_FILLED", "FILLED", "CANCELED", "PENDING_CANCEL", "REJECTED", "EXPIRED",
                  "EXPIRED_IN_MATCH", "PENDING_NEW"}


class UserEventError(ValueError):
    pass


def _dec(d: dict, key: str, where: str, *, signed: bool = False, default: str | None = None) -> Decimal:
    value = d.get(key, default)
    if not isinstance(value, str):
        raise UserEventError(f"{where}.{key} must be a decimal string, got {value!r}")
    try:
        out = Decimal(value)
    except InvalidOperation:
        raise UserEventError(f"{where}.{key} is not a decimal: {value!r}") from None
    if not out.is_finite() or (out < 0 and not signed):
        raise UserEventError(f"{where}.{key} must be a finite{'' if signed else ' non-negative'} decimal: {value!r}")
    return out


def _int(d: dict, key: str, where: str, *, allow_minus_one: bool = False, default: int | None = None) -> int:
    value = d.get(key, default)
    if type(value) is not int or value < (-1 if allow_minus_one else 0):
        raise UserEventError(f"{where}.{key} must be a non-negative integer, got {value!r}")
    return value


def _str(d: dict, key: str, where: str, allowed: set[str] | None = None, default: str | None = None) -> str:
    value = d.get(key, default)
    if not isinstance(value, str) or (allowed is not None and value not in allowed):
        raise UserEventError(f"{where}.{key} is invalid: {value!r}")
    return value


def order_update(d: dict, ts_init: int) -> OrderUpdate:
    """executionReport -> OrderUpdate."""
    w = "executionReport"
    request_cid = _str(d, "c", w)
    orig = d.get("C")
    return OrderUpdate(
        symbol=_str(d, "s", w),
        client_order_id=orig if isinstance(orig, str) and orig else request_cid,
        order_id=_int(d, "i", w),
        side=_str(d, "S", w, SIDES),
        order_type=_str(d, "o", w),
        time_in_force=_str(d, "f", w),
        execution_type=_str(d, "x", w, EXECUTION_TYPES),
        status=_str(d, "X", w, ORDER_STATUSES),
        price=_dec(d, "p", w),
        quantity=_dec(d, "q", w),
        stop_price=_dec(d, "P", w, default="0"),
        last_qty=_dec(d, "l", w),
        last_price=_dec(d, "L", w),
        cumulative_qty=_dec(d, "z", w),
        cumulative_quote=_dec(d, "Z", w, default="0"),
        commission=_dec(d, "n", w, default="0"),
        commission_asset=d.get("N") or "",
        trade_id=_int(d, "t", w, allow_minus_one=True, default=-1),
        is_maker=d.get("m") is True,
        reject_reason=d.get("r") if isinstance(d.get("r"), str) else "NONE",
        request_client_order_id=request_cid,
        ts_event=_int(d, "T", w) * 1_000_000,
        ts_init=ts_init,
        order_list_id=_int(d, "g", w, allow_minus_one=True, default=-1),
    )


LIST_STATUS_TYPES = {"RESPONSE", "EXEC_STARTED", "UPDATED", "ALL_DONE"}
LIST_ORDER_STATUSES = {"EXECUTING", "ALL_DONE", "REJECT"}


def order_list_update(d: dict, ts_init: int) -> OrderListUpdate:
    """listStatus -> OrderListUpdate."""
    w = "listStatus"
    rows = d.get("O")
    if not isinstance(rows, list):
        raise UserEventError(f"{w}.O must be a list, got {rows!r}")
    legs = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise UserEventError(f"{w}.O[{i}] must be an object")
        legs.append((_int(row, "i", f"{w}.O[{i}]"), _str(row, "c", f"{w}.O[{i}]")))
    return OrderListUpdate(
        symbol=_str(d, "s", w), order_list_id=_int(d, "g", w), contingency_type=_str(d, "c", w),
        list_status_type=_str(d, "l", w, LIST_STATUS_TYPES), list_order_status=_str(d, "L", w, LIST_ORDER_STATUSES),
        list_client_order_id=_str(d, "C", w), reject_reason=d.get("r") if isinstance(d.get("r"), str) else "NONE",
        orders=tuple(legs), ts_event=_int(d, "T", w) * 1_000_000, ts_init=ts_init)


def balances_update(d: dict, ts_init: int) -> BalanceUpdate:
    """outboundAccountPosition -> BalanceUpdate of the assets that changed."""
    w = "outboundAccountPosition"
    rows = d.get("B")
    if not isinstance(rows, list):
        raise UserEventError(f"{w}.B must be a list, got {rows!r}")
    balances = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise UserEventError(f"{w}.B[{i}] must be an object")
        balances.append(Balance(_str(row, "a", f"{w}.B[{i}]"), _dec(row, "f", f"{w}.B[{i}]"),
                                _dec(row, "l", f"{w}.B[{i}]")))
    ts = d.get("u", d.get("E"))
    return BalanceUpdate(tuple(balances), False, (ts if type(ts) is int and ts > 0 else 0) * 1_000_000, ts_init)


def balance_delta(d: dict, ts_init: int) -> BalanceDelta:
    w = "balanceUpdate"
    return BalanceDelta(_str(d, "a", w), _dec(d, "d", w, signed=True), _int(d, "T", w) * 1_000_000, ts_init)


def order_from_rest(d: dict, ts_init: int) -> OrderUpdate:
    """A REST order (openOrders, query order) as an OrderUpdate snapshot."""
    w = "order"
    executed = _dec(d, "executedQty", w)
    quote = _dec(d, "cummulativeQuoteQty", w, default="0")
    return OrderUpdate(
        symbol=_str(d, "symbol", w), client_order_id=_str(d, "clientOrderId", w), order_id=_int(d, "orderId", w),
        side=_str(d, "side", w, SIDES), order_type=_str(d, "type", w), time_in_force=_str(d, "timeInForce", w, default=""),
        execution_type="SNAPSHOT", status=_str(d, "status", w, ORDER_STATUSES), price=_dec(d, "price", w),
        quantity=_dec(d, "origQty", w), stop_price=_dec(d, "stopPrice", w, default="0"),
        last_qty=Decimal(0), last_price=Decimal(0), cumulative_qty=executed, cumulative_quote=quote,
        commission=Decimal(0), commission_asset="", trade_id=-1, is_maker=False, reject_reason="NONE",
        request_client_order_id="", ts_event=_int(d, "updateTime", w, default=d.get("time", 0)) * 1_000_000,
        ts_init=ts_init, order_list_id=_int(d, "orderListId", w, allow_minus_one=True, default=-1),
    )


def balances_from_account(d: dict) -> tuple[Balance, ...]:
    rows = d.get("balances")
    if not isinstance(rows, list):
        raise UserEventError(f"account.balances must be a list, got {rows!r}")
    return tuple(Balance(_str(r, "asset", "account.balances"), _dec(r, "free", "account.balances"),
                         _dec(r, "locked", "account.balances")) for r in rows if isinstance(r, dict))
