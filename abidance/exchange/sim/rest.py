"""Binance Spot's REST API over aiohttp, answering from the SimExchange.

Every endpoint is a row of ROUTES: method, path, weight, security, handler. The dispatcher
does what Binance does around every call: count the request weight (429/418), check
the API key and signature where needed, map any failure to Binance's JSON error, and
set the X-MBX-USED-WEIGHT-1M / X-MBX-ORDER-COUNT-* headers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Awaitable, Callable
from urllib.parse import parse_qsl

import orjson
from aiohttp import web

from abidance.exchange.sim import auth, errors
from abidance.exchange.sim.errors import BinanceError

log = logging.getLogger("abidance.sim.rest")

MAX_BODY_BYTES = 64 * 1024
INT64_MAX = 2**63 - 1
MAX_TIME_MS = 253_402_300_799_999        # 9999-12-31T23:59:59.999Z: a time past it is not a time
NONE, API_KEY, SIGNED = 0, 1, 2

ORDER_PARAMS = {
    "symbol": "symbol", "side": "side", "type": "type", "timeInForce": "time_in_force",
    "quantity": "quantity", "quoteOrderQty": "quote_order_qty", "price": "price",
    "stopPrice": "stop_price", "newClientOrderId": "new_client_order_id",
    "newOrderRespType": "new_order_resp_type", "trailingDelta": "trailing_delta",
    "selfTradePreventionMode": "self_trade_prevention_mode",
}


@dataclass
class Call:
    """One request as a handler sees it."""

    venue: object
    params: dict[str, str]
    account: object | None
    ip: str

    def require(self, name: str) -> str:
        value = self.params.get(name)
        if value is None or value == "":
            raise errors.mandatory_param(name)
        return value

    def int_param(self, name: str, default=None, lo=-INT64_MAX - 1, hi=INT64_MAX):
        """An integer parameter within [lo, hi] (int64 at most, as Binance parses it), else -1100
        naming the parameter and its legal range."""
        raw = self.params.get(name)
        if raw is None or raw == "":
            return default
        if not raw.lstrip("-").isdigit() or not raw.isascii() or len(raw) > 20:
            raise errors.illegal_chars(name)
        value = int(raw)
        if value < lo or value > hi:
            raise errors.BinanceError(-1100, f"Illegal characters found in parameter '{name}'; legal range is '{lo}' to '{hi}'.", 400)
        return value

    def id_param(self, name: str):
        """An id (orderId, fromId): 0 to int64's maximum, as Binance has it."""
        return self.int_param(name, None, 0, INT64_MAX)

    def time_param(self, name: str):
        """A time in ms since the epoch (startTime, endTime): 0 to the end of year 9999."""
        return self.int_param(name, None, 0, MAX_TIME_MS)

    def symbol(self) -> str:
        symbol = self.require("symbol").upper()
        if symbol not in self.venue.symbols:
            raise errors.invalid_symbol()
        return symbol

    def optional_symbol(self) -> str | None:
        return self.symbol() if self.params.get("symbol") else None


Handler = Callable[[Call], Awaitable[object] | object]


def depth_weight(params: dict[str, str]) -> int:
    try:
        limit = int(params.get("limit", 100))
    except ValueError:
        return 5
    return 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250


def symbol_or(one: int, many: int) -> Callable[[dict[str, str]], int]:
    return lambda params: one if params.get("symbol") else many


# ---- handlers ------------------------------------------------------------------------

def ping(call: Call):
    return {}


def server_time(call: Call):
    return {"serverTime": call.venue.wall_ms()}


def exchange_info(call: Call):
    names = None
    if call.params.get("symbol"):
        names = [call.symbol()]
    elif call.params.get("symbols"):
        try:
            names = [s.upper() for s in orjson.loads(call.params["symbols"])]
        except (orjson.JSONDecodeError, TypeError, AttributeError):
            raise errors.illegal_chars("symbols") from None
        for name in names:
            if name not in call.venue.symbols:
                raise errors.invalid_symbol()
    return call.venue.exchange.exchange_info(names)


def depth(call: Call):
    return call.venue.exchange.depth(call.symbol(), call.int_param("limit", 100, 1, 5000))


def trades(call: Call):
    return call.venue.exchange.recent_trades(call.symbol(), call.int_param("limit", 500, 1, 1000))


def agg_trades(call: Call):
    return call.venue.exchange.agg_trades(call.symbol(), from_id=call.id_param("fromId"),
                                          start_time=call.time_param("startTime"), end_time=call.time_param("endTime"),
                                          limit=call.int_param("limit", 500, 1, 1000))


def klines(call: Call):
    symbol = call.symbol()
    interval = call.require("interval")
    agg = call.venue.klines[symbol]
    if interval not in agg.intervals:
        raise errors.bad_interval()
    return agg.klines(interval, start_time=call.time_param("startTime"), end_time=call.time_param("endTime"),
                      limit=call.int_param("limit", 500, 1, 1000))


def book_ticker(call: Call):
    symbol = call.optional_symbol()
    if symbol:
        return call.venue.exchange.book_ticker(symbol)
    return [call.venue.exchange.book_ticker(s) for s in call.venue.symbols]


def ticker_24hr(call: Call):
    symbol = call.optional_symbol()
    if symbol:
        return call.venue.tickers[symbol].snapshot(call.venue.clock.now_ms())
    return [call.venue.tickers[s].snapshot(call.venue.clock.now_ms()) for s in call.venue.symbols]


def ticker_price(call: Call):
    symbol = call.optional_symbol()
    ex = call.venue.exchange
    if symbol:
        return {"symbol": symbol, "price": ex.last_price(symbol)}
    return [{"symbol": s, "price": ex.last_price(s)} for s in call.venue.symbols]


def avg_price(call: Call):
    return call.venue.exchange.avg_price(call.symbol())


def order_kwargs(call: Call) -> dict[str, str | None]:
    return {kw: call.params.get(name) for name, kw in ORDER_PARAMS.items()}


def new_order(call: Call):
    call.symbol()
    venue = call.venue
    venue.limiter.count_order(call.account.account_id, venue.wall_ms())
    return venue.exchange.new_order(call.account, **order_kwargs(call))


def test_order(call: Call):
    call.symbol()
    call.venue.exchange.test_order(call.account, **order_kwargs(call))
    return {}


def order_ref(call: Call) -> dict[str, object]:
    order_id = call.id_param("orderId")
    client_id = call.params.get("origClientOrderId")
    if order_id is None and not client_id:
        raise errors.BinanceError(-1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!", 400)
    return {"order_id": order_id, "orig_client_order_id": client_id}


def cancel_order(call: Call):
    return call.venue.exchange.cancel_order(call.account, call.symbol(), **order_ref(call),
                                            new_client_order_id=call.params.get("newClientOrderId"),
                                            cancel_restrictions=call.params.get("cancelRestrictions"))


def query_order(call: Call):
    return call.venue.exchange.query_order(call.account, call.symbol(), **order_ref(call))


def open_orders(call: Call):
    return call.venue.exchange.open_orders(call.account, call.optional_symbol())


def cancel_open_orders(call: Call):
    return call.venue.exchange.cancel_open_orders(call.account, call.symbol())


def all_orders(call: Call):
    return call.venue.exchange.all_orders(
        call.account, call.symbol(), order_id=call.id_param("orderId"),
        start_time=call.time_param("startTime"), end_time=call.time_param("endTime"),
        limit=call.int_param("limit", 500, 1, 1000))


def account_info(call: Call):
    return call.venue.exchange.account_info(call.account)


def my_trades(call: Call):
    return call.venue.exchange.my_trades(
        call.account, call.symbol(), order_id=call.id_param("orderId"),
        start_time=call.time_param("startTime"), end_time=call.time_param("endTime"),
        from_id=call.id_param("fromId"), limit=call.int_param("limit", 500, 1, 1000))


def _count_orders(call: Call, n: int) -> None:
    """Count a request's new orders against the unfilled-order-count limit, as new_order does."""
    venue = call.venue
    for _ in range(n):
        venue.limiter.count_order(call.account.account_id, venue.wall_ms())


def new_oco(call: Call):
    call.symbol()
    _count_orders(call, 2)
    return call.venue.exchange.new_oco(call.account, call.params)


def new_oto(call: Call):
    call.symbol()
    _count_orders(call, 2)
    return call.venue.exchange.new_oto(call.account, call.params)


def new_otoco(call: Call):
    call.symbol()
    _count_orders(call, 3)
    return call.venue.exchange.new_otoco(call.account, call.params)


def cancel_order_list(call: Call):
    return call.venue.exchange.cancel_order_list(
        call.account, call.symbol(), order_list_id=call.params.get("orderListId"),
        list_client_order_id=call.params.get("listClientOrderId"),
        new_client_order_id=call.params.get("newClientOrderId"))


def query_order_list(call: Call):
    return call.venue.exchange.query_order_list(call.account, order_list_id=call.params.get("orderListId"),
                                                orig_client_order_id=call.params.get("origClientOrderId"))


def open_order_lists(call: Call):
    return call.venue.exchange.open_order_lists(call.account)


def all_order_lists(call: Call):
    return call.venue.exchange.all_order_lists(
        call.account, from_id=call.id_param("fromId"), start_time=call.time_param("startTime"),
        end_time=call.time_param("endTime"), limit=call.int_param("limit", 500, 1, 1000))


def amend_order(call: Call):
    return call.venue.exchange.amend_order(
        call.account, call.symbol(), order_id=call.params.get("orderId"),
        orig_client_order_id=call.params.get("origClientOrderId"),
        new_client_order_id=call.params.get("newClientOrderId"), new_qty=call.params.get("newQty"))


def cancel_replace(call: Call):
    call.symbol()
    return call.venue.exchange.cancel_replace(call.account, call.params, lambda: _count_orders(call, 1))


# (method, path, weight, security, is_order, handler)
ROUTES: list[tuple[str, str, int | Callable[[dict[str, str]], int], int, bool, Handler]] = [
    ("GET", "/api/v3/ping", 1, NONE, False, ping),
    ("GET", "/api/v3/time", 1, NONE, False, server_time),
    ("GET", "/api/v3/exchangeInfo", 20, NONE, False, exchange_info),
    ("GET", "/api/v3/depth", depth_weight, NONE, False, depth),
    ("GET", "/api/v3/trades", 25, NONE, False, trades),
    ("GET", "/api/v3/aggTrades", 2, NONE, False, agg_trades),
    ("GET", "/api/v3/klines", 2, NONE, False, klines),
    ("GET", "/api/v3/uiKlines", 2, NONE, False, klines),
    ("GET", "/api/v3/ticker/bookTicker", symbol_or(2, 4), NONE, False, book_ticker),
    ("GET", "/api/v3/ticker/24hr", symbol_or(2, 80), NONE, False, ticker_24hr),
    ("GET", "/api/v3/ticker/price", symbol_or(2, 4), NONE, False, ticker_price),
    ("GET", "/api/v3/avgPrice", 2, NONE, False, avg_price),
    ("POST", "/api/v3/order", 1, SIGNED, True, new_order),
    ("POST", "/api/v3/order/test", 1, SIGNED, False, test_order),
    ("DELETE", "/api/v3/order", 1, SIGNED, False, cancel_order),
    ("GET", "/api/v3/order", 4, SIGNED, False, query_order),
    ("GET", "/api/v3/openOrders", symbol_or(6, 80), SIGNED, False, open_orders),
    ("DELETE", "/api/v3/openOrders", 1, SIGNED, False, cancel_open_orders),
    ("GET", "/api/v3/allOrders", 20, SIGNED, False, all_orders),
    ("GET", "/api/v3/account", 20, SIGNED, False, account_info),
    ("GET", "/api/v3/myTrades", 20, SIGNED, False, my_trades),
    ("POST", "/api/v3/orderList/oco", 1, SIGNED, True, new_oco),
    ("POST", "/api/v3/orderList/oto", 1, SIGNED, True, new_oto),
    ("POST", "/api/v3/orderList/otoco", 1, SIGNED, True, new_otoco),
    ("DELETE", "/api/v3/orderList", 1, SIGNED, False, cancel_order_list),
    ("GET", "/api/v3/orderList", 4, SIGNED, False, query_order_list),
    ("GET", "/api/v3/openOrderList", 6, SIGNED, False, open_order_lists),
    ("GET", "/api/v3/allOrderList", 20, SIGNED, False, all_order_lists),
    ("PUT", "/api/v3/order/amend/keepPriority", 4, SIGNED, False, amend_order),
    ("POST", "/api/v3/order/cancelReplace", 1, SIGNED, True, cancel_replace),
]

# Successful order placements and cancels cost no request weight since 2026-04-02 (failed ones
# still pay): the weight is charged up front, for the 429 gate, and given back on success.
FREE_WHEN_OK = {("POST", "/api/v3/order"), ("DELETE", "/api/v3/order"), ("DELETE", "/api/v3/openOrders"),
                ("POST", "/api/v3/order/cancelReplace"), ("POST", "/api/v3/orderList/oco"),
                ("POST", "/api/v3/orderList/oto"), ("POST", "/api/v3/orderList/otoco"),
                ("DELETE", "/api/v3/orderList")}

# The listenKey user-data endpoints: retired by Binance on 2026-02-20 07:00 UTC. Its web front end
# answers 410 Gone with an nginx page (not Binance's JSON), before any weight is counted.
RETIRED_PATHS = ("/api/v3/userDataStream", "/api/v1/userDataStream")
GONE_HTML = ("<html><head><title>410 Gone</title></head><body><center><h1>410 Gone</h1></center>"
             "<hr><center>nginx</center></body></html>")


def route(method: str, path: str):
    """The ROUTES row of (method, path), or None."""
    for row in ROUTES:
        if row[0] == method and row[1] == path:
            return row
    return None


def weight_of(weight, params: dict[str, str]) -> int:
    return weight(params) if callable(weight) else weight


async def call_handler(handler: Handler, call: Call):
    result = handler(call)
    if hasattr(result, "__await__"):
        result = await result
    return result


def _json(status: int, body, headers: dict[str, str]) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json", headers=headers)


def _error(exc: BinanceError, headers: dict[str, str]) -> web.Response:
    if exc.retry_after is not None:
        headers["Retry-After"] = str(exc.retry_after)
    return _json(exc.http_status, exc.body(), headers)


def make_handler(venue, method: str, path: str, weight, security: int, is_order: bool, handler: Handler):
    free_when_ok = (method, path) in FREE_WHEN_OK

    async def endpoint(request: web.Request) -> web.Response:
        ip = request.remote or "?"
        headers: dict[str, str] = {}
        account = None

        def order_counts() -> None:
            if is_order and account is not None:
                c10, cday = venue.limiter.order_counts(account.account_id, venue.wall_ms())
                headers["X-MBX-ORDER-COUNT-10S"] = str(c10)
                headers["X-MBX-ORDER-COUNT-1D"] = str(cday)

        try:
            try:
                await venue.faults.before_rest(request.path)
            except BinanceError as exc:
                if exc.http_status == 418:
                    venue.limiter.ban(ip, exc.retry_after or 120, venue.wall_ms())
                raise
            try:
                raw = await request.read() if request.can_read_body else b""
            except web.HTTPRequestEntityTooLarge:
                raise BinanceError(-1101, f"Request body larger than {MAX_BODY_BYTES} bytes.", 413) from None
            try:
                body = raw.decode("utf-8")
            except UnicodeDecodeError:      # Binance: a malformed parameter, not a server error
                raise BinanceError(-1100, "Illegal characters found in a parameter.", 400) from None
            params = parse_params(request.query_string, body)
            cost = weight_of(weight, params)
            now = venue.wall_ms()
            try:
                venue.limiter.charge(ip, cost, now)
            finally:
                headers["X-MBX-USED-WEIGHT-1M"] = str(venue.limiter.used_weight(ip, now))
            if security != NONE:
                account = auth.check_api_key(request.headers.get("X-MBX-APIKEY"), venue.exchange.account_by_key)
            if security == SIGNED:
                auth.check_signed(params, request.query_string, body, account, now)
            result = await call_handler(handler, Call(venue, params, account, ip))
            if free_when_ok:
                headers["X-MBX-USED-WEIGHT-1M"] = str(venue.limiter.refund(ip, cost, now))
            order_counts()
            if is_order and method == "POST" and venue.faults.lose_order_reply(request.path):
                raise BinanceError(-1007, "Timeout waiting for response from backend server. "
                                   "Send status unknown; execution status unknown.", 503)
            return _json(200, result, headers)
        except BinanceError as exc:
            order_counts()
            # Binance reports the minute's weight on every answer, errors included.
            headers.setdefault("X-MBX-USED-WEIGHT-1M", str(venue.limiter.used_weight(ip, venue.wall_ms())))
            return _error(exc, headers)
        except Exception:   # a bug must answer like Binance's -1000, never hang or crash
            log.exception("unhandled error in %s %s", method, request.path)
            return _error(errors.unknown_error(), headers)

    return endpoint


def parse_params(query: str, body: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for part in (query, body):
        if not part:
            continue
        try:
            pairs = parse_qsl(part, keep_blank_values=True, strict_parsing=True)
        except ValueError:
            raise BinanceError(-1100, "Illegal characters found in a parameter.", 400) from None
        if len(pairs) > 64:
            raise errors.too_many_params()
        params.update(pairs)
    return params


async def gone(request: web.Request) -> web.Response:
    return web.Response(status=410, text=GONE_HTML, content_type="text/html")


async def not_found(request: web.Request) -> web.Response:
    return _json(404, {"code": -1000, "msg": f"Unknown endpoint {request.method} {request.path}."}, {})


def build_app(venue, extra_routes=()) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    by_path: dict[str, dict[str, object]] = {}
    for method, path, weight, security, is_order, handler in ROUTES:
        by_path.setdefault(path, {})[method] = make_handler(venue, method, path, weight, security, is_order, handler)
    for path, methods in by_path.items():
        for method, endpoint in methods.items():
            app.router.add_route(method, path, endpoint)
    for path in RETIRED_PATHS:
        app.router.add_route("*", path, gone)
    for method, path, endpoint in extra_routes:
        app.router.add_route(method, path, endpoint)
    app.router.add_route("*", "/{tail:.*}", not_found)
    return app
