"""Binance's checks of one new order, in Binance's order, raising Binance's own errors.

A request carries its order's fields under names that depend on the endpoint: `price` for
POST /api/v3/order, `abovePrice` for an OCO's above leg, `pendingBelowPrice` for an OTOCO's...
`Names` says which parameter holds which field, so one parser serves every endpoint and every
error names the parameter the client actually sent.

`parse_order` checks the parameters alone (presence, enums, grids: -1100/-1102/-1106/-1111/
-1115/-1116/-1117, PRICE_FILTER, LOT_SIZE). `check_filters` then applies the filters that need
the venue's state (average price, open orders), and `check_supported` the matching engine's
refusals of what the symbol does not enable (-2010).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Callable, Mapping

from abidance.exchange.sim import errors
from abidance.exchange.sim.matching import (BUY, FOK, GTC, IOC, LIMIT, MARKET, MARKET_TYPES, SELL, STOP_LOSS_TYPES,
                                            STOP_TYPES, Order)
from abidance.exchange.sim.symbols import ORDER_TYPES, STP_MODES, SymbolSpec, parse_units, units_to_dec

RESP_TYPES = ("ACK", "RESULT", "FULL")
TIME_IN_FORCE = (GTC, IOC, FOK)
LIMIT_TYPES = frozenset({LIMIT, "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"})     # timeInForce required


def given(value) -> bool:
    return value is not None and value != ""


@dataclass(frozen=True, slots=True)
class Names:
    """The request parameter that carries each field of one order ("" = not accepted)."""

    side: str = "side"
    type: str = "type"
    time_in_force: str = "timeInForce"
    quantity: str = "quantity"
    quote_order_qty: str = "quoteOrderQty"
    price: str = "price"
    stop_price: str = "stopPrice"
    trailing_delta: str = "trailingDelta"
    client_id: str = "newClientOrderId"


PLAIN = Names()


def leg_names(prefix: str, side: str, quantity: str) -> Names:
    """An order list leg's names: prefix "above" gives aboveType, abovePrice, aboveClientOrderId...
    (the side and quantity may be shared by the legs, hence given in full)."""
    return Names(side=side, type=prefix + "Type", time_in_force=prefix + "TimeInForce", quantity=quantity,
                 quote_order_qty="", price=prefix + "Price", stop_price=prefix + "StopPrice",
                 trailing_delta=prefix + "TrailingDelta", client_id=prefix + "ClientOrderId")


@dataclass(slots=True)
class NewOrder:
    """One order's validated fields on the symbol's grid (nothing placed yet)."""

    side: str
    type: str
    tif: str = GTC                  # Binance reports GTC for MARKET, LIMIT_MAKER and market stops
    price_ticks: int = 0
    stop_ticks: int = 0
    trailing_delta: int = 0
    steps: int = 0
    quote_units: int | None = None
    quote_dec: Decimal | None = None
    client_id: str | None = None    # as sent; the exchange checks or generates it


def parse_order(spec: SymbolSpec, params: Mapping[str, str | None], n: Names = PLAIN,
                refuse_type: Callable[[str], None] | None = None) -> NewOrder:
    """One order's parameters, checked in Binance's order. `refuse_type` may refuse an order
    type that is valid but not accepted here (an OCO leg's, for one)."""
    get = params.get
    side = get(n.side)
    if not given(side):
        raise errors.mandatory_param(n.side)
    if side not in (BUY, SELL):
        raise errors.invalid_enum("side", side)
    type_ = get(n.type)
    if not given(type_):
        raise errors.mandatory_param(n.type)
    if type_ not in ORDER_TYPES:
        raise errors.invalid_enum("type", type_)
    if refuse_type is not None:
        refuse_type(type_)
    o = NewOrder(side, type_)

    tif = get(n.time_in_force) if n.time_in_force else None
    if type_ in LIMIT_TYPES:
        if not given(tif):
            raise errors.mandatory_param(n.time_in_force)
        if tif not in TIME_IN_FORCE:
            raise errors.invalid_enum("timeInForce", tif)
        o.tif = tif
    elif given(tif):
        raise errors.param_not_required(n.time_in_force)

    price = get(n.price)
    if type_ in MARKET_TYPES:
        if given(price):
            raise errors.param_not_required(n.price)
    else:
        if not given(price):
            raise errors.mandatory_param(n.price)
        o.price_ticks = spec.price_to_ticks(price, n.price)

    stop, trailing = get(n.stop_price), get(n.trailing_delta)
    if type_ in STOP_TYPES:
        if not given(stop) and not given(trailing):
            raise errors.mandatory_param(n.stop_price)
        if given(stop):
            o.stop_ticks = spec.price_to_ticks(stop, n.stop_price)
        if given(trailing):
            o.trailing_delta = _bips(trailing, n.trailing_delta)
    elif given(stop):
        raise errors.param_not_required(n.stop_price)
    elif given(trailing):
        raise errors.param_not_required(n.trailing_delta)

    quantity = get(n.quantity)
    quote = get(n.quote_order_qty) if n.quote_order_qty else None
    if type_ == MARKET:
        if given(quantity) and given(quote):
            raise errors.param_not_required(n.quote_order_qty)
        if given(quantity):
            o.steps = spec.qty_to_steps(quantity, n.quantity, market=True)
        elif given(quote):
            o.quote_units = parse_units(n.quote_order_qty, quote)
            o.quote_dec = units_to_dec(o.quote_units)
        elif n.quote_order_qty:
            raise errors.mandatory_one_of(n.quantity, n.quote_order_qty)
        else:
            raise errors.mandatory_param(n.quantity)
    else:
        if given(quote):
            raise errors.param_not_required(n.quote_order_qty)
        if not given(quantity):
            raise errors.mandatory_param(n.quantity)
        o.steps = spec.qty_to_steps(quantity, n.quantity, market=type_ in MARKET_TYPES)
    o.client_id = get(n.client_id)
    return o


def _bips(value, param: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.isdigit() or len(value) > 18:
        raise errors.illegal_chars(param)
    return int(value)


def resp_type(value) -> str | None:
    if not given(value):
        return None
    if value not in RESP_TYPES:
        raise errors.bad_enum("newOrderRespType", ", ".join(RESP_TYPES))
    return value


def stp_mode(spec: SymbolSpec, value) -> str:
    """selfTradePreventionMode: the symbol's default when absent; -1013 when not allowed here."""
    if not given(value):
        return spec.default_stp_mode
    if value not in STP_MODES:
        raise errors.bad_enum("selfTradePreventionMode", ", ".join(STP_MODES))
    if value not in spec.allowed_stp_modes:
        raise errors.stp_mode_not_allowed()
    return value


def trails_above(side: str, type_: str) -> bool:
    """TRAILING_DELTA's "above" bounds apply to STOP_LOSS(_LIMIT) BUY and TAKE_PROFIT(_LIMIT) SELL."""
    return (type_ in STOP_LOSS_TYPES) == (side == BUY)


def check_filters(spec: SymbolSpec, o: NewOrder, avg: Decimal | None, open_orders: list[Order],
                  new_orders: int = 1, new_algo: int | None = None) -> None:
    """The filters that need the venue's state, in Binance's order. `new_orders`/`new_algo` are
    what the request adds to the open-order counts (an order list adds all its legs)."""
    if o.trailing_delta:
        lo, hi = ((spec.min_trailing_above_delta, spec.max_trailing_above_delta) if trails_above(o.side, o.type)
                  else (spec.min_trailing_below_delta, spec.max_trailing_below_delta))
        if not lo <= o.trailing_delta <= hi:
            raise errors.filter_failure("TRAILING_DELTA")
    if o.type in MARKET_TYPES:
        if o.quote_units is not None:
            notional = o.quote_dec
        else:
            notional = None if avg is None else avg * spec.qty_dec(o.steps)
        if notional is not None and ((spec.apply_min_to_market and notional < spec.min_notional)
                                     or (spec.apply_max_to_market and notional > spec.max_notional)):
            raise errors.filter_failure("NOTIONAL")
    else:
        notional = spec.quote_units(o.price_ticks, o.steps)
        if notional < spec.min_notional_units or notional > spec.max_notional_units:
            raise errors.filter_failure("NOTIONAL")
        if avg is not None:
            price = spec.price_dec(o.price_ticks)
            up, down = ((spec.bid_multiplier_up, spec.bid_multiplier_down) if o.side == BUY
                        else (spec.ask_multiplier_up, spec.ask_multiplier_down))
            if price > avg * up or price < avg * down:
                raise errors.filter_failure("PERCENT_PRICE_BY_SIDE")
    if len(open_orders) + new_orders > spec.max_num_orders:
        raise errors.filter_failure("MAX_NUM_ORDERS")
    algo = (1 if o.type in STOP_TYPES else 0) if new_algo is None else new_algo
    if algo and sum(x.type in STOP_TYPES for x in open_orders) + algo > spec.max_num_algo_orders:
        raise errors.filter_failure("MAX_NUM_ALGO_ORDERS")


def check_supported(spec: SymbolSpec, o: NewOrder) -> None:
    """The matching engine refuses order types and trailing stops the symbol does not enable."""
    if o.type not in spec.order_types:
        raise errors.order_type_not_supported(o.type)
    if o.trailing_delta and not spec.allow_trailing_stop:
        raise errors.trailing_not_supported()
