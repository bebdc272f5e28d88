"""Booking a fill at average cost, the portfolio's way: shared by the store reader, the reports,
the alert reports and the metrics (no pandas: the node loads it without the extras)."""

from __future__ import annotations

from decimal import Decimal

ZERO = Decimal(0)


def _fee_value(symbol: str, fee_asset: str, fee: Decimal, price: Decimal) -> tuple[Decimal, Decimal]:
    """(fee value in the quote asset, base quantity the fee takes)."""
    if not fee or not fee_asset:
        return ZERO, ZERO
    if symbol.endswith(fee_asset) and len(fee_asset) < len(symbol):
        return fee, ZERO
    if symbol.startswith(fee_asset):
        return fee * price, fee
    return ZERO, ZERO


def book_fill(b: dict, symbol: str, side: str, qty: Decimal, price: Decimal, fee: Decimal,
              fee_asset: str) -> tuple[Decimal, Decimal]:
    """Book one fill at average cost into `b` (keys qty, cost, realized, fees), as the portfolio
    does: a buy adds what it received at its price, a sell realises `sold x price - cost of the
    sold share`; fees are costs. Returns (realised PnL, fee value), both in the quote asset.
    A fee in a third asset has no price here: when `b` has an "unpriced" mapping it is kept there.
    """
    fee_value, fee_base = _fee_value(symbol, fee_asset, fee, price)
    if fee and not fee_value and not fee_base and "unpriced" in b:
        b["unpriced"][fee_asset] += fee
    if side == "BUY":
        received = qty - fee_base
        b["qty"] += received
        b["cost"] += price * received
        realized = -fee_value
    else:
        disposed = min(qty + fee_base, b["qty"])
        removed = b["cost"] if disposed == b["qty"] else (b["cost"] * disposed / b["qty"] if b["qty"] else ZERO)
        realized = price * disposed - removed - fee_value
        b["qty"] -= disposed
        b["cost"] -= removed
    b["realized"] += realized
    b["fees"] += fee_value
    return realized, fee_value
