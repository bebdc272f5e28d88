"""Placing a new order so that a retry can never make a second one, over REST or the WebSocket API.

When an answer leaves the outcome unknown (HTTP 5xx, -1007, a timeout, a dropped connection)
the order is looked up by its client order id before anything is resent, and only a "does
not exist" (-2013) answer leads to a resubmission, with the same id. A resubmit refused as a
duplicate means the first attempt landed after all: it is looked up too.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

from abidance.exchange.binance.errors import BinanceApiError, OrderStatusUnknown, RateLimited

log = logging.getLogger("abidance.binance.orders")

# Binance may still be placing an order when it answers 5xx/-1007: a short pause before the
# lookup makes "not found" mean "not placed" far more often.
UNKNOWN_QUERY_DELAY_S = 0.25


async def place_safely(cid: str, symbol: str, send: Callable[[bool], Awaitable[dict]],
                       lookup: Callable[[], Awaitable[dict]], *, attempts: int, counters,
                       query_delay_s: float = UNKNOWN_QUERY_DELAY_S, where: str = "POST /api/v3/order") -> dict:
    """`send(first)` places the order (first: the request prepared at decision time may be
    used; later attempts are signed afresh) and raises OrderStatusUnknown when the outcome is
    unknown; `lookup()` queries the order by its client id. `counters` has the
    order_status_unknown / order_queries / orders_found / order_resubmits counts."""
    resubmits = 0
    first = True
    while True:
        try:
            result = await send(first)
            log.info("order %s %s placed: orderId %s, status %s", cid, symbol, result.get("orderId"),
                     result.get("status"))
            return result
        except OrderStatusUnknown as exc:
            counters.order_status_unknown += 1
            log.warning("order %s %s: outcome unknown (%s); looking it up by client order id", cid, symbol, exc.msg)
        except BinanceApiError as exc:
            if not (resubmits and exc.code == -2010 and "duplicate" in exc.msg.lower()):
                raise
            log.warning("order %s %s: resubmit refused as a duplicate; looking the first one up", cid, symbol)
        first = False
        found = await find_order(cid, symbol, lookup, attempts=attempts, counters=counters,
                                 query_delay_s=query_delay_s)
        if found is not None:
            counters.orders_found += 1
            log.warning("order %s %s: found after all (orderId %s, status %s); not resubmitting",
                        cid, symbol, found.get("orderId"), found.get("status"))
            return found
        if resubmits >= attempts:
            method, _, path = where.partition(" ")
            raise OrderStatusUnknown(0, f"order {cid} not found after {resubmits} resubmits; its outcome is "
                                     "unknown: query it by client order id", client_order_id=cid,
                                     method=method, path=path)
        resubmits += 1
        counters.order_resubmits += 1
        log.warning("order %s %s: not on the exchange (-2013); resubmitting with the same client order id "
                    "(%d of %d)", cid, symbol, resubmits, attempts)


async def find_order(cid: str, symbol: str, lookup: Callable[[], Awaitable[dict]], *, attempts: int, counters,
                     query_delay_s: float = UNKNOWN_QUERY_DELAY_S) -> dict | None:
    """The order by client id, None when the exchange says it does not exist (-2013)."""
    last: BinanceApiError | None = None
    for _ in range(attempts + 1):
        await asyncio.sleep(query_delay_s)
        counters.order_queries += 1
        try:
            return await lookup()
        except BinanceApiError as exc:
            if exc.code == -2013:
                log.info("order %s %s: lookup says it does not exist", cid, symbol)
                return None
            last = exc
            # 429 waits at the limiter's gate on the next try; anything else settles nothing.
            if not (exc.status_unknown or isinstance(exc, RateLimited)):
                break
            log.warning("order %s %s: lookup failed too (%s); trying again", cid, symbol, exc.msg)
    raise OrderStatusUnknown(getattr(last, "code", 0), f"order {cid}: lookup failed ({last}); its outcome is "
                             "unknown", client_order_id=cid, method="GET", path="/api/v3/order") from last
