"""Binance's JSON shapes for orders, order lists and user-data events, built from venue state.

Pure functions: they read orders, lists and accounts and return dicts with the keys, key order
and value types of Binance's documentation and real samples (amounts as 8-decimal strings,
times as int ms). Conditional fields (stop prices, trailing, self-trade prevention, expiry
reasons) appear only when Binance's "Conditional fields in Order Responses" say they do.
"""

from __future__ import annotations

from decimal import Decimal

from abidance.exchange.sim.accounts import Account, AccountTrade
from abidance.exchange.sim.matching import (EXPIRE_MAKER, EXPIRE_TAKER, EXPIRED, PENDING_NEW, STOP_TYPES, Order,
                                            PreventedMatch, Trade)
from abidance.exchange.sim.symbols import SymbolSpec, fmt8, fmt_units

ZERO_STR = "0.00000000"


def qoq(order: Order) -> str:
    return fmt8(order.quote_order_qty) if order.quote_order_qty is not None else ZERO_STR


def execution_report(spec: SymbolSpec, order: Order, exec_type: str, now: int, exec_id: int, *,
                     trade: Trade | None = None, is_maker: bool = False, fee: Decimal | None = None,
                     fee_asset: str | None = None, client_id: str | None = None, orig_client_id: str = "",
                     prevented: PreventedMatch | None = None) -> dict:
    """An executionReport with the fields and order of Binance's user stream."""
    if trade is not None:
        last_qty, last_price = spec.qty_str(trade.qty_steps), spec.price_str(trade.price_ticks)
        last_quote, trade_id, fee_str = fmt_units(trade.quote_units), trade.id, fmt8(fee)
    else:
        last_qty = last_price = last_quote = ZERO_STR
        trade_id, fee_str, fee_asset = -1, "0", None
    report = {
        "e": "executionReport", "E": now, "s": spec.symbol,
        "c": client_id if client_id is not None else order.client_order_id,
        "S": order.side, "o": order.type, "f": order.time_in_force,
        "q": spec.qty_str(order.orig_qty_steps), "p": spec.price_str(order.price_ticks),
        "P": spec.price_str(order.stop_price_ticks), "F": ZERO_STR, "g": order.order_list_id, "C": orig_client_id,
        "x": exec_type, "X": order.status, "r": "NONE", "i": order.order_id,
        "l": last_qty, "z": spec.qty_str(order.executed_qty_steps), "L": last_price,
        "n": fee_str, "N": fee_asset, "T": now, "t": trade_id,
    }
    if prevented is not None:
        report["v"] = prevented.id
    report.update({
        "I": exec_id, "w": order.is_working and order.status in ("NEW", "PARTIALLY_FILLED"), "m": is_maker,
        "M": False, "O": order.time, "Z": fmt_units(order.cum_quote_units), "Y": last_quote, "Q": qoq(order),
    })
    if order.working_time >= 0:           # Binance shows W only once the order is working
        report["W"] = order.working_time
    report["V"] = order.stp_mode
    if order.trailing_delta:
        report["d"] = order.trailing_delta
        report["D"] = order.trailing_time
    if prevented is not None:
        # Binance: l/L/Y are 0 on TRADE_PREVENTION; pl/pL/pY say what would have traded.
        last = prevented.taker_steps if order is prevented.taker else prevented.maker_steps
        counter = prevented.maker if order is prevented.taker else prevented.taker
        would = prevented.would_steps
        report.update({
            "A": spec.qty_str(order.prevented_qty_steps), "B": spec.qty_str(last), "u": -1,
            "U": counter.order_id, "Cs": spec.symbol, "pl": spec.qty_str(would),
            "pL": spec.price_str(prevented.price_ticks),
            "pY": fmt_units(spec.quote_units(prevented.price_ticks, would)),
        })
    if order.status == EXPIRED and order.expiry_reason:
        report["eR"] = order.expiry_reason
    return report


def list_status(spec: SymbolSpec, lst, status_type: str, order_status: str, now: int,
                reject: str = "NONE") -> dict:
    """A listStatus event (sent beside each leg's executionReport)."""
    return {
        "e": "listStatus", "E": now, "s": spec.symbol, "g": lst.list_id, "c": lst.contingency,
        "l": status_type, "L": order_status, "r": reject, "C": lst.client_id, "T": now,
        "O": [{"s": spec.symbol, "i": o.order_id, "c": o.client_order_id} for o in lst.orders],
    }


def account_position(account: Account, assets, now: int) -> dict:
    return {"e": "outboundAccountPosition", "E": now, "u": account.update_time,
            "B": [{"a": a, "f": fmt8(account.free(a)), "l": fmt8(account.locked(a))} for a in assets]}


def _conditional(spec: SymbolSpec, order: Order, out: dict) -> None:
    """stopPrice and the trailing fields, where Binance puts them (after side)."""
    if order.type in STOP_TYPES:
        out["stopPrice"] = spec.price_str(order.stop_price_ticks)
    if order.trailing_delta:
        out["trailingDelta"] = order.trailing_delta
        out["trailingTime"] = order.trailing_time


def _prevented_and_expiry(spec: SymbolSpec, order: Order, out: dict, match_id: bool) -> None:
    if order.prevented_qty_steps:
        if match_id:
            out["preventedMatchId"] = order.prevented_match_id
        out["preventedQuantity"] = spec.qty_str(order.prevented_qty_steps)
    if order.status == EXPIRED and order.expiry_reason:
        out["expiryReason"] = order.expiry_reason


def new_order_response(spec: SymbolSpec, order: Order, resp_type: str, fills: list[dict],
                       prevented: list[PreventedMatch] = (), transact_time: int | None = None,
                       status: str | None = None) -> dict:
    """POST /api/v3/order (and each of an order list's orderReports) as ACK, RESULT or FULL.
    `status` overrides the order's (an OTO's pending leg shows PENDING_NEW in its placement)."""
    out = {"symbol": spec.symbol, "orderId": order.order_id, "orderListId": order.order_list_id,
           "clientOrderId": order.client_order_id,
           "transactTime": order.time if transact_time is None else transact_time}
    if resp_type == "ACK":
        return out
    pending = status == PENDING_NEW
    out.update({
        "price": spec.price_str(order.price_ticks),
        "origQty": spec.qty_str(order.orig_qty_steps),
        "executedQty": spec.qty_str(0 if pending else order.executed_qty_steps),
        "origQuoteOrderQty": qoq(order),
        "cummulativeQuoteQty": fmt_units(0 if pending else order.cum_quote_units),
        "status": status or order.status,
        "timeInForce": order.time_in_force,
        "type": order.type,
        "side": order.side,
    })
    _conditional(spec, order, out)
    out["workingTime"] = -1 if pending else order.working_time
    out["selfTradePreventionMode"] = order.stp_mode
    if resp_type == "FULL":
        out["fills"] = list(fills)
    if prevented:
        out["preventedMatches"] = [_prevented_match(spec, m) for m in prevented]
    if not pending:
        _prevented_and_expiry(spec, order, out, match_id=False)
    return out


def _prevented_match(spec: SymbolSpec, m: PreventedMatch) -> dict:
    out = {"preventedMatchId": m.id, "makerOrderId": m.maker.order_id, "price": spec.price_str(m.price_ticks)}
    if m.mode != EXPIRE_MAKER:
        out["takerPreventedQuantity"] = spec.qty_str(m.taker_steps)
    if m.mode != EXPIRE_TAKER:
        out["makerPreventedQuantity"] = spec.qty_str(m.maker_steps)
    return out


def cancel_response(spec: SymbolSpec, order: Order, cancel_id: str, now: int) -> dict:
    """DELETE /api/v3/order (and each orderReport of a cancelled list)."""
    out = {
        "symbol": spec.symbol,
        "origClientOrderId": order.client_order_id,
        "orderId": order.order_id,
        "orderListId": order.order_list_id,
        "clientOrderId": cancel_id,
        "transactTime": now,
        "price": spec.price_str(order.price_ticks),
        "origQty": spec.qty_str(order.orig_qty_steps),
        "executedQty": spec.qty_str(order.executed_qty_steps),
        "origQuoteOrderQty": qoq(order),
        "cummulativeQuoteQty": fmt_units(order.cum_quote_units),
        "status": order.status,
        "timeInForce": order.time_in_force,
        "type": order.type,
        "side": order.side,
    }
    _conditional(spec, order, out)
    out["selfTradePreventionMode"] = order.stp_mode
    _prevented_and_expiry(spec, order, out, match_id=True)
    return out


def query_view(spec: SymbolSpec, order: Order) -> dict:
    """GET /api/v3/order (key order of Binance's order sample)."""
    out = _stored(spec, order)
    out["workingTime"] = order.working_time
    out["origQuoteOrderQty"] = qoq(order)
    out["selfTradePreventionMode"] = order.stp_mode
    _prevented_and_expiry(spec, order, out, match_id=True)
    return out


def list_view(spec: SymbolSpec, order: Order) -> dict:
    """GET /api/v3/openOrders and allOrders (key order of Binance's list samples)."""
    out = _stored(spec, order)
    out["origQuoteOrderQty"] = qoq(order)
    out["workingTime"] = order.working_time
    out["selfTradePreventionMode"] = order.stp_mode
    _prevented_and_expiry(spec, order, out, match_id=True)
    return out


def _stored(spec: SymbolSpec, order: Order) -> dict:
    out = {
        "symbol": spec.symbol, "orderId": order.order_id, "orderListId": order.order_list_id,
        "clientOrderId": order.client_order_id, "price": spec.price_str(order.price_ticks),
        "origQty": spec.qty_str(order.orig_qty_steps), "executedQty": spec.qty_str(order.executed_qty_steps),
        "cummulativeQuoteQty": fmt_units(order.cum_quote_units), "status": order.status,
        "timeInForce": order.time_in_force, "type": order.type, "side": order.side,
        "stopPrice": spec.price_str(order.stop_price_ticks), "icebergQty": ZERO_STR,
    }
    if order.trailing_delta:
        out["trailingDelta"] = order.trailing_delta
        out["trailingTime"] = order.trailing_time
    out.update({"time": order.time, "updateTime": order.update_time, "isWorking": order.is_working})
    return out


def amended_order(spec: SymbolSpec, order: Order, orig_client_id: str) -> dict:
    """The `amendedOrder` of PUT /api/v3/order/amend/keepPriority (its own field names: qty,
    preventedQty, quoteOrderQty, cumulativeQuoteQty)."""
    out = {
        "symbol": spec.symbol, "orderId": order.order_id, "orderListId": order.order_list_id,
        "origClientOrderId": orig_client_id, "clientOrderId": order.client_order_id,
        "price": spec.price_str(order.price_ticks), "qty": spec.qty_str(order.orig_qty_steps),
        "executedQty": spec.qty_str(order.executed_qty_steps),
        "preventedQty": spec.qty_str(order.prevented_qty_steps), "quoteOrderQty": qoq(order),
        "cumulativeQuoteQty": fmt_units(order.cum_quote_units), "status": order.status,
        "timeInForce": order.time_in_force, "type": order.type, "side": order.side,
    }
    _conditional(spec, order, out)
    if order.status != PENDING_NEW:       # Binance's pending-leg sample has no workingTime
        out["workingTime"] = order.working_time
    out["selfTradePreventionMode"] = order.stp_mode
    return out


def order_list(lst, reports: list[dict] | None = None, *, status_type: str | None = None,
               order_status: str | None = None, transaction_time: int | None = None) -> dict:
    """An order list as Binance returns it: placement and cancel with `orderReports`, queries
    without. Keys: note `transactionTime` on the list where orders say `transactTime`."""
    out = {
        "orderListId": lst.list_id,
        "contingencyType": lst.contingency,
        "listStatusType": status_type or lst.status_type,
        "listOrderStatus": order_status or lst.order_status,
        "listClientOrderId": lst.client_id,
        "transactionTime": lst.time if transaction_time is None else transaction_time,
        "symbol": lst.symbol,
        "orders": [{"symbol": lst.symbol, "orderId": o.order_id, "clientOrderId": o.client_order_id}
                   for o in lst.orders],
    }
    if reports is not None:
        out["orderReports"] = reports
    return out


def amend_list_status(lst) -> dict:
    """The `listStatus` of an amend response for a list's order."""
    return {"orderListId": lst.list_id, "contingencyType": lst.contingency, "listOrderStatus": lst.order_status,
            "listClientOrderId": lst.client_id, "symbol": lst.symbol,
            "orders": [{"symbol": lst.symbol, "orderId": o.order_id, "clientOrderId": o.client_order_id}
                       for o in lst.orders]}


def my_trade(spec: SymbolSpec, t: AccountTrade, order_list_id: int) -> dict:
    return {
        "symbol": t.symbol, "id": t.id, "orderId": t.order_id, "orderListId": order_list_id,
        "price": spec.price_str(t.price_ticks), "qty": spec.qty_str(t.qty_steps),
        "quoteQty": fmt_units(t.quote_units), "commission": fmt8(t.commission),
        "commissionAsset": t.commission_asset, "time": t.time, "isBuyer": t.is_buyer, "isMaker": t.is_maker,
        "isBestMatch": True,
    }
