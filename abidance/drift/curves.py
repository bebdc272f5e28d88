"""Each run's PnL over the window, on the same marks: the drift page's live and replayed curves.

At a time t a run's PnL is, over its fills up to t, `s q (P(t) - p) - fee`, with P(t) the market's
last price before t (the attribution's valuation, with the mark moving). At the window's end it
is the attribution's PnL of that run.
"""

from __future__ import annotations

from decimal import Decimal

from abidance.drift.attribution import Market, Valuation
from abidance.drift.orders import ZERO, OrderRecord


def pnl_curve(orders: list[OrderRecord], market: Market, value: Valuation, times: list[int]) -> list[Decimal]:
    fills = sorted(((f, o) for o in orders for f in o.fills), key=lambda x: x[0].ts)
    out, i = [], 0
    held: dict[str, Decimal] = {}       # symbol -> signed quantity
    cash = ZERO                          # -s q p - fee, in the quote asset
    for t in times:
        while i < len(fills) and fills[i][0].ts <= t:
            f, o = fills[i]
            held[o.symbol] = held.get(o.symbol, ZERO) + o.sign * f.qty
            cash -= o.sign * f.qty * f.price
            if f.fee_asset == value.quote:
                cash -= f.fee
            elif f.fee_asset == value.base_of.get(o.symbol):
                held[o.symbol] -= f.fee
            i += 1
        out.append(cash + sum((q * market.mark(s, t + 1) for s, q in held.items()), ZERO))
    return out
