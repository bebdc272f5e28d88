"""REST calls to a running simulator, signed as Binance wants them, answered as (status, body, headers)."""

from __future__ import annotations

import time
from urllib.error import HTTPError
from urllib.parse import urlencode
from urllib.request import Request, urlopen

import orjson

from abidance.exchange.sim import auth
from tests.integration.conftest import API_KEY, API_SECRET


def call(sim, method: str, path: str, params: dict | None = None, *, key: str | None = API_KEY,
         signed: bool = False, body: bytes | None = None, secret: str = API_SECRET, ts_offset: int = 0):
    query = urlencode(params or {})
    if signed:
        query = (query + "&" if query else "") + f"timestamp={int(time.time() * 1000) + ts_offset}"
        query += "&signature=" + auth.sign(secret, query)
    req = Request(sim.rest_url + path + ("?" + query if query else ""), method=method, data=body)
    if key:
        req.add_header("X-MBX-APIKEY", key)
    try:
        with urlopen(req, timeout=5) as resp:
            return resp.status, orjson.loads(resp.read()), dict(resp.headers)
    except HTTPError as err:
        return err.code, orjson.loads(err.read()), dict(err.headers)


def admin(sim, path: str, body: dict | None = None):
    """POST to the simulator's admin endpoint (a query string may be part of `path`)."""
    req = Request(sim.rest_url + path, data=orjson.dumps(body or {}), method="POST")
    with urlopen(req, timeout=5) as resp:
        return orjson.loads(resp.read())


def crash_through(sim, symbol: str, price: str) -> None:
    """Freeze the market and print a trade at `price` (below every bid): stops above it fire."""
    venue = sim.server.venue
    venue.paused = True
    ex = venue.exchange
    ticks = ex.spec(symbol).price_to_ticks(price)
    ex.mm_take(symbol, "SELL", ticks, 10**12)       # market-maker bids above the price are withdrawn
    ex.mm_quote(symbol, "BUY", ticks - 1, 10**9)    # liquidity for what the stop will sell
    ex.mm_quote(symbol, "BUY", ticks, 10)
    ex.mm_trade(symbol, "SELL", ticks, 10)
