"""exchangeInfo symbols -> Instrument objects (filters as Decimals and as fixed-point units).

One malformed symbol entry must not cost us the others: it is skipped, logged with the
symbol and the field at fault, and reported in the caller's `problems` list.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from abidance._core.fixed import FixedPoint
from abidance._core.risk import SymbolFilters

log = logging.getLogger("abidance.binance.instruments")

ZERO = Decimal(0)


@dataclass(frozen=True)
class Instrument:
    symbol: str
    status: str                 # TRADING | BREAK | HALT | ...
    base_asset: str
    quote_asset: str
    base_precision: int
    quote_precision: int
    tick_size: Decimal          # 0 when Binance disables the part (as every bound below)
    step_size: Decimal
    min_price: Decimal
    max_price: Decimal
    min_qty: Decimal
    max_qty: Decimal
    market_min_qty: Decimal
    market_max_qty: Decimal
    min_notional: Decimal
    max_notional: Decimal
    order_types: tuple[str, ...]
    price: FixedPoint           # price units: the tick (or 10**-quotePrecision without one)
    qty: FixedPoint             # quantity units: the step (or 10**-baseAssetPrecision)
    filters: SymbolFilters      # the same units, for the Cython risk checks
    # What the symbol allows beyond plain orders (exchangeInfo flags; False when not stated).
    oco_allowed: bool = False
    oto_allowed: bool = False
    amend_allowed: bool = False                 # order.amend.keepPriority (2025-04-24)
    cancel_replace_allowed: bool = False
    allow_trailing_stop: bool = False
    stp_modes: tuple[str, ...] = ()             # allowedSelfTradePreventionModes
    default_stp_mode: str = "NONE"
    max_num_order_lists: int = 0                # MAX_NUM_ORDER_LISTS (2025-08-28); 0 = not stated
    max_num_order_amends: int = 0               # MAX_NUM_ORDER_AMENDS (2025-08-28); 0 = not stated
    trailing_delta_bips: tuple[int, int, int, int] = (0, 0, 0, 0)   # TRAILING_DELTA: above min/max, below min/max

    def supports(self, order_type: str) -> bool:
        return order_type in self.order_types

    @property
    def is_trading(self) -> bool:
        return self.status == "TRADING"

    def price_str(self, units: int) -> str:
        """A price in units as Binance wants it in a request."""
        return self.price.to_str(units)

    def qty_str(self, units: int) -> str:
        return self.qty.to_str(units)

    def to_price_units(self, text: str | Decimal) -> int:
        """Exact units of a price; ValueError when it is off the unit grid."""
        return self.price.to_units(text)

    def to_qty_units(self, text: str | Decimal) -> int:
        return self.qty.to_units(text)


class _Bad(ValueError):
    """One field of one symbol entry is wrong."""

    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.field = field


def _str(entry: dict, key: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value:
        raise _Bad(key, f"missing or not a non-empty string ({value!r})")
    return value


def _int(entry: dict, key: str, default: int | None = None) -> int:
    value = entry.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 18:
        raise _Bad(key, f"must be an integer within 0..18, got {value!r}")
    return value


def _dec(f: dict, key: str, where: str) -> Decimal:
    value = f.get(key, "0")
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise _Bad(f"{where}.{key}", f"must be a decimal string, got {value!r}")
    try:
        d = Decimal(value)
    except InvalidOperation:
        raise _Bad(f"{where}.{key}", f"not a decimal number ({value!r})") from None
    if not d.is_finite() or d < 0:
        raise _Bad(f"{where}.{key}", f"must be finite and >= 0, got {value!r}")
    return d


def parse_symbol(entry: dict) -> Instrument:
    """One exchangeInfo `symbols[]` entry; _Bad names the field when it is malformed."""
    symbol = _str(entry, "symbol")
    base_precision = _int(entry, "baseAssetPrecision")
    quote_precision = _int(entry, "quoteAssetPrecision", entry.get("quotePrecision"))
    order_types = entry.get("orderTypes", [])
    if not isinstance(order_types, list) or not all(isinstance(t, str) for t in order_types):
        raise _Bad("orderTypes", "must be a list of strings")
    filters = entry.get("filters", [])
    if not isinstance(filters, list) or not all(isinstance(f, dict) and isinstance(f.get("filterType"), str)
                                                for f in filters):
        raise _Bad("filters", "must be a list of objects with a filterType")
    by_type = {f["filterType"]: f for f in filters}
    price_f = by_type.get("PRICE_FILTER", {})
    lot = by_type.get("LOT_SIZE", {})
    market = by_type.get("MARKET_LOT_SIZE", {})
    notional = by_type.get("NOTIONAL") or by_type.get("MIN_NOTIONAL") or {}
    notional_name = "NOTIONAL" if "NOTIONAL" in by_type else "MIN_NOTIONAL"
    values = {
        "tick_size": _dec(price_f, "tickSize", "PRICE_FILTER"),
        "min_price": _dec(price_f, "minPrice", "PRICE_FILTER"),
        "max_price": _dec(price_f, "maxPrice", "PRICE_FILTER"),
        "step_size": _dec(lot, "stepSize", "LOT_SIZE"),
        "min_qty": _dec(lot, "minQty", "LOT_SIZE"),
        "max_qty": _dec(lot, "maxQty", "LOT_SIZE"),
        "market_min_qty": _dec(market, "minQty", "MARKET_LOT_SIZE"),
        "market_max_qty": _dec(market, "maxQty", "MARKET_LOT_SIZE"),
        "min_notional": _dec(notional, "minNotional", notional_name),
        "max_notional": _dec(notional, "maxNotional", notional_name),
    }
    for name in ("PERCENT_PRICE_BY_SIDE", "PERCENT_PRICE"):
        for key in by_type.get(name, {}):
            if key.endswith(("Up", "Down")):
                _dec(by_type[name], key, name)
    counts = {}
    for filter_type, key in (("MAX_NUM_ORDERS", "maxNumOrders"), ("MAX_NUM_ORDER_LISTS", "maxNumOrderLists"),
                             ("MAX_NUM_ORDER_AMENDS", "maxNumOrderAmends")):
        value = by_type.get(filter_type, {}).get(key, 0)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise _Bad(f"{filter_type}.{key}", f"must be a non-negative integer, got {value!r}")
        counts[filter_type] = value
    trailing = by_type.get("TRAILING_DELTA", {})
    bips = []
    for key in ("minTrailingAboveDelta", "maxTrailingAboveDelta", "minTrailingBelowDelta", "maxTrailingBelowDelta"):
        value = trailing.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise _Bad(f"TRAILING_DELTA.{key}", f"must be a non-negative integer, got {value!r}")
        bips.append(value)
    stp = entry.get("allowedSelfTradePreventionModes", [])
    if not isinstance(stp, list) or not all(isinstance(m, str) for m in stp):
        raise _Bad("allowedSelfTradePreventionModes", "must be a list of strings")
    flags = {name: entry.get(key) is True for name, key in (
        ("oco_allowed", "ocoAllowed"), ("oto_allowed", "otoAllowed"), ("amend_allowed", "amendAllowed"),
        ("cancel_replace_allowed", "cancelReplaceAllowed"), ("allow_trailing_stop", "allowTrailingStop"))}
    try:
        sym_filters = SymbolFilters.from_exchange_info(entry)
    except (ValueError, OverflowError) as exc:
        raise _Bad("filters", str(exc)) from None
    return Instrument(
        symbol=symbol, status=_str(entry, "status"), base_asset=_str(entry, "baseAsset"),
        quote_asset=_str(entry, "quoteAsset"), base_precision=base_precision, quote_precision=quote_precision,
        order_types=tuple(order_types), price=sym_filters.price_fp, qty=sym_filters.qty_fp,
        filters=sym_filters, stp_modes=tuple(stp),
        default_stp_mode=entry.get("defaultSelfTradePreventionMode") if isinstance(
            entry.get("defaultSelfTradePreventionMode"), str) else "NONE",
        max_num_order_lists=counts["MAX_NUM_ORDER_LISTS"], max_num_order_amends=counts["MAX_NUM_ORDER_AMENDS"],
        trailing_delta_bips=tuple(bips), **flags, **values)


def parse_exchange_info(payload: dict, problems: list[str] | None = None) -> dict[str, Instrument]:
    """Every well-formed symbol of an exchangeInfo answer, by name.

    A malformed entry is skipped; its reason ("SYMBOL: field: what is wrong") is logged and
    appended to `problems` when given.
    """
    entries = payload.get("symbols") if isinstance(payload, dict) else None
    if not isinstance(entries, list):
        raise ValueError("exchangeInfo answer has no 'symbols' list")
    out: dict[str, Instrument] = {}
    for i, entry in enumerate(entries):
        name = entry.get("symbol") if isinstance(entry, dict) else None
        label = name if isinstance(name, str) and name else f"symbols[{i}]"
        try:
            if not isinstance(entry, dict):
                raise _Bad("entry", f"must be an object, got {type(entry).__name__}")
            inst = parse_symbol(entry)
        except _Bad as exc:
            reason = f"{label}: {exc}"
            log.warning("exchangeInfo: skipping symbol %s", reason)
            if problems is not None:
                problems.append(reason)
            continue
        if inst.symbol in out:
            reason = f"{label}: symbol: listed twice; keeping the first"
            log.warning("exchangeInfo: %s", reason)
            if problems is not None:
                problems.append(reason)
            continue
        out[inst.symbol] = inst
    return out
