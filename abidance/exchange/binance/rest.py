"""Binance Spot REST over one aiohttp session: signing, clock offset, weights, safe order retries.

Every request first reserves its weight with the RateLimiter (which waits or, during an IP
ban, refuses), and every answer's X-MBX-* headers are fed back to it. Signed requests carry
`timestamp` (our clock plus the offset measured from /api/v3/time) and `recvWindow`, and a
signature over the exact query string sent; a -1021 re-measures the offset and retries once.

New orders always carry a client order id. When the answer leaves the outcome unknown
(HTTP 5xx, -1007, a timeout, a dropped connection) the order is looked up by that id before
anything is resent, and only a "does not exist" (-2013) answer leads to a resubmission,
with the same id: a retried request can never make a second order.

Logs name method, path, status and order ids; never the query string, the signature or the
API key.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
import orjson
from yarl import URL

from abidance.core.clock import LiveClock
from abidance.core.events import Balance
from abidance.exchange.binance.config import BinanceConfig
from abidance.exchange.binance.credentials import HMAC, Credentials, CredentialsError
from abidance.exchange.binance.errors import (BinanceApiError, IpBanned, OrderStatusUnknown, RateLimited,
                                              RequestTimeout, TimestampOutsideRecvWindow, TransportError)
from abidance.exchange.binance.ids import CLIENT_ORDER_ID_RE, ClientOrderIds
from abidance.exchange.binance.instruments import Instrument, parse_exchange_info
from abidance.exchange.binance.rate_limit import RateLimiter
from abidance.exchange.binance.safe_orders import UNKNOWN_QUERY_DELAY_S, place_safely

log = logging.getLogger("abidance.binance.rest")

NONE, API_KEY, SIGNED = 0, 1, 2
CONNECTIONS_PER_HOST = 16
KEEPALIVE_S = 30.0
_ORDER_ENDPOINTS = {("POST", "/api/v3/order"), ("DELETE", "/api/v3/order"), ("DELETE", "/api/v3/openOrders"),
                    ("POST", "/api/v3/orderList/oco"), ("POST", "/api/v3/orderList/oto"),
                    ("POST", "/api/v3/orderList/otoco"), ("DELETE", "/api/v3/orderList"),
                    ("PUT", "/api/v3/order/amend/keepPriority"), ("POST", "/api/v3/order/cancelReplace")}
_NOT_JSON = object()
_TAGS = re.compile(r"<[^>]*>")


def _order_kwargs(params: dict[str, str]) -> dict:
    """Binance's new-order parameter names -> new_order's keyword arguments."""
    names = {"symbol": "symbol", "side": "side", "type": "order_type", "quantity": "quantity", "price": "price",
             "timeInForce": "time_in_force", "stopPrice": "stop_price", "newClientOrderId": "client_order_id",
             "newOrderRespType": "resp_type", "trailingDelta": "trailing_delta"}
    return {names[k]: v for k, v in params.items()}


def depth_weight(limit: int) -> int:
    return 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250


def param_text(name: str, value: Any) -> str:
    """A parameter as Binance reads it; money must be exact (Decimal, str or int, never float)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        raise TypeError(f"{name} must be a Decimal or str, not float (binary floats are not exact)")
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{name} must be finite, got {value}")
        return format(value, "f")
    if isinstance(value, (int, str)):
        return str(value)
    raise TypeError(f"{name} must be a str, int or Decimal, not {type(value).__name__}")


_URL_SAFE = re.compile(r"^[A-Za-z0-9._\-]*$")


def encode(params: dict[str, Any]) -> str:
    """The query string. Binance values are nearly always URL-safe as they are (symbols,
    decimals, ids): those are joined directly, the rest percent-encoded by urlencode."""
    pairs = [(k, param_text(k, v)) for k, v in params.items() if v is not None]
    if all(_URL_SAFE.match(v) for _, v in pairs):
        return "&".join([f"{k}={v}" for k, v in pairs])
    return urlencode(pairs)


@dataclass
class RestCounters:
    requests: int = 0               # answers received (any status)
    errors: int = 0                 # error answers and transport failures
    time_syncs: int = 0
    timestamp_retries: int = 0      # -1021 -> re-sync -> one retry
    order_status_unknown: int = 0   # new-order answers that left the outcome unknown
    order_queries: int = 0          # lookups by client order id after such an answer
    orders_found: int = 0           # ... that found the order placed (no resubmit)
    order_resubmits: int = 0        # ... that found nothing, so the order was sent again


class BinanceRest:
    def __init__(self, config: BinanceConfig, credentials: Credentials | None = None, bus=None, clock=None, *,
                 limiter: RateLimiter | None = None, client_order_ids: ClientOrderIds | None = None):
        self.config = config
        self.credentials = credentials
        self.bus = bus
        self.clock = clock or LiveClock()
        self.limiter = limiter or RateLimiter(config, bus, self.clock)
        self.ids = client_order_ids or ClientOrderIds(config.client_order_prefix, self.clock)
        self.counters = RestCounters()
        self.instruments: dict[str, Instrument] = {}
        self.instrument_problems: list[str] = []
        self.time_offset_ms = 0
        self.unknown_query_delay_s = UNKNOWN_QUERY_DELAY_S
        self._synced_at: float | None = None    # monotonic seconds of the last time sync
        self._sync_lock = asyncio.Lock()
        self._session: aiohttp.ClientSession | None = None

    # ---- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit_per_host=CONNECTIONS_PER_HOST, keepalive_timeout=KEEPALIVE_S,
                                             ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=aiohttp.ClientTimeout(total=self.config.request_timeout_s))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> "BinanceRest":
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    def stats(self) -> dict[str, int]:
        return {**asdict(self.counters), **self.limiter.counters(), "time_offset_ms": self.time_offset_ms}

    # ---- transport ----------------------------------------------------------------------

    def _creds(self) -> Credentials:
        if self.credentials is None:
            raise CredentialsError("this Binance request needs an API key: pass Credentials (see credentials.py)")
        return self.credentials

    def signed_query(self, params: dict[str, Any]) -> str:
        """The exact query string a signed request would send now: params, timestamp, recvWindow, signature."""
        return self.sign_query(encode(params))

    def sign_query(self, query: str) -> str:
        """Stamp and sign an already encoded query string."""
        stamp = f"timestamp={self.clock.time_ms() + self.time_offset_ms}&recvWindow={self.config.recv_window_ms}"
        query = f"{query}&{stamp}" if query else stamp
        creds = self.credentials if self.credentials is not None else self._creds()
        signature = creds.sign(query)
        if creds.key_type != HMAC:
            signature = quote(signature, safe="")      # Ed25519's base64 needs escaping; hex does not
        return f"{query}&signature={signature}"

    async def _send(self, method: str, path: str, params: dict[str, Any], security: int, weight: int,
                    is_order: bool = False, reserve: bool = True, presigned: str | None = None) -> Any:
        query = encode(params) if presigned is None else ""   # a float is refused before spending budget
        if reserve:
            await self.limiter.reserve(weight, is_order)
        if self._session is None:
            await self.start()
        headers: dict[str, str] = {}
        signature = ""
        if security != NONE:
            headers["X-MBX-APIKEY"] = self._creds().api_key
        if security == SIGNED:
            # Stamped after any wait for budget, so the wait never eats into recvWindow (a
            # presigned query was stamped when the order was decided, microseconds earlier).
            query = presigned if presigned is not None else self.signed_query(params)
            signature = query.rpartition("&signature=")[2]
        url = URL(self.config.rest_url + path + ("?" + query if query else ""), encoded=True)
        where = {"method": method, "path": path}
        started = self.clock.monotonic()
        try:
            async with self._session.request(method, url, headers=headers) as resp:
                body = await resp.read()
                status, resp_headers = resp.status, resp.headers
                content_type = resp.content_type
        except asyncio.TimeoutError:
            self.counters.errors += 1
            log.warning("%s %s: no answer within %.1f s", method, path, self.config.request_timeout_s)
            raise RequestTimeout(f"no answer within {self.config.request_timeout_s} s", **where) from None
        except aiohttp.ClientConnectorError as exc:
            # Never re-raise aiohttp's exception itself: its text may carry the URL (query, signature).
            self.counters.errors += 1
            log.warning("%s %s: cannot connect (%s)", method, path, exc.strerror or type(exc).__name__)
            raise TransportError(f"cannot connect to {self.config.rest_url} ({exc.strerror or type(exc).__name__})",
                                 sent=False, **where) from None
        except aiohttp.ClientError as exc:
            self.counters.errors += 1
            log.warning("%s %s: connection lost (%s)", method, path, type(exc).__name__)
            raise TransportError(f"connection lost ({type(exc).__name__}); the request may have executed",
                                 **where) from None
        self.counters.requests += 1
        try:
            data = orjson.loads(body) if body else None
        except orjson.JSONDecodeError:
            data = _NOT_JSON
        code, msg = None, ""
        if isinstance(data, dict) and isinstance(data.get("code"), int) and not 200 <= status < 300:
            code, msg = data["code"], str(data.get("msg", ""))
        self.limiter.on_response(status, resp_headers, code, msg)
        log.debug("%s %s -> %d (%.1f ms, weight %d, used %s)", method, path, status,
                  (self.clock.monotonic() - started) * 1000, weight, resp_headers.get("X-MBX-USED-WEIGHT-1M"))
        if 200 <= status < 300:
            if data is _NOT_JSON:
                self.counters.errors += 1
                raise BinanceApiError(0, f"answer is not JSON ({content_type}, {len(body)} bytes)", status, **where)
            return data
        self.counters.errors += 1
        if code is None:
            text = _TAGS.sub(" ", body[:2000].decode("utf-8", "replace"))
            text = " ".join(text.split())[:160]
            for secret in (signature, headers.get("X-MBX-APIKEY", "")):
                if secret:
                    text = text.replace(secret, "<redacted>")
            code, msg = 0, f"error answer without Binance's JSON ({content_type or 'no content type'}): {text!r}"
        log.warning("%s %s -> HTTP %d, code %s: %s", method, path, status, code, msg)
        raise self._error(status, code, msg, resp_headers, where)

    def _error(self, status: int, code: int, msg: str, headers, where: dict[str, str]) -> BinanceApiError:
        if status == 418:
            return IpBanned(code, msg, until_ms=self.limiter.banned_until_ms, **where)
        if status == 429:
            try:
                retry_after = float(headers.get("Retry-After", 0))
            except ValueError:
                retry_after = 0.0
            return RateLimited(code, msg, retry_after_s=retry_after, **where)
        if code == -1021:
            return TimestampOutsideRecvWindow(code, msg, status, **where)
        return BinanceApiError(code, msg, status, **where)

    async def _public(self, path: str, params: dict[str, Any] | None = None, weight: int = 1) -> Any:
        return await self._send("GET", path, params or {}, NONE, weight)

    async def _signed(self, method: str, path: str, params: dict[str, Any], weight: int,
                      is_order: bool = False, presigned: str | None = None) -> Any:
        if self._sync_due():
            async with self._sync_lock:
                if self._sync_due():
                    await self.sync_time()
        try:
            return await self._send_signed(method, path, params, weight, is_order, presigned)
        except TimestampOutsideRecvWindow:
            # Rejected before execution, so one retry is safe even for an order.
            self.counters.timestamp_retries += 1
            log.warning("%s %s: -1021 timestamp outside recvWindow; re-syncing the clock and retrying once",
                        method, path)
            await self.sync_time()
            return await self._send_signed(method, path, params, weight, is_order)

    async def _send_signed(self, method: str, path: str, params: dict[str, Any], weight: int,
                           is_order: bool, presigned: str | None = None) -> Any:
        try:
            return await self._send(method, path, params, SIGNED, weight, is_order, presigned=presigned)
        except BinanceApiError as exc:
            if (method, path) in _ORDER_ENDPOINTS and exc.status_unknown:
                raise OrderStatusUnknown(exc.code, exc.msg, exc.http_status,
                                         client_order_id=str(params.get("newClientOrderId")
                                                             or params.get("origClientOrderId") or ""),
                                         method=method, path=path) from exc
            raise

    # ---- time -------------------------------------------------------------------------

    def _sync_due(self) -> bool:
        return (self._synced_at is None
                or self.clock.monotonic() - self._synced_at >= self.config.time_sync_interval_s)

    async def sync_time(self) -> int:
        """Measure server clock minus ours (midpoint of the round trip); returns the offset in ms."""
        await self.limiter.reserve(1)
        t0 = self.clock.time_ms()
        data = await self._send("GET", "/api/v3/time", {}, NONE, 1, reserve=False)
        t1 = self.clock.time_ms()
        server = data.get("serverTime") if isinstance(data, dict) else None
        if isinstance(server, bool) or not isinstance(server, int):
            raise BinanceApiError(0, f"/api/v3/time answered without an integer serverTime: {data!r}", 200,
                                  method="GET", path="/api/v3/time")
        self.time_offset_ms = server - (t0 + t1) // 2
        self.limiter.offset_ms = self.time_offset_ms
        self._synced_at = self.clock.monotonic()
        self.counters.time_syncs += 1
        log.info("server clock offset %+d ms (round trip %d ms)", self.time_offset_ms, t1 - t0)
        return self.time_offset_ms

    # ---- market data ------------------------------------------------------------------

    async def ping(self) -> dict:
        return await self._public("/api/v3/ping")

    async def server_time(self) -> int:
        return (await self._public("/api/v3/time"))["serverTime"]

    async def exchange_info(self, symbols: list[str] | None = None) -> dict:
        """The raw answer; its rateLimits become the limiter's limits."""
        params: dict[str, Any] = {}
        if symbols and len(symbols) == 1:
            params["symbol"] = symbols[0]
        elif symbols:
            params["symbols"] = orjson.dumps(list(symbols)).decode()
        data = await self._public("/api/v3/exchangeInfo", params, 20)
        if isinstance(data, dict) and data.get("rateLimits"):
            self.limiter.update_limits(data["rateLimits"])
        return data

    async def load_instruments(self, symbols: list[str] | None = None) -> dict[str, Instrument]:
        """exchangeInfo -> Instrument by symbol (malformed entries skipped, see instrument_problems)."""
        problems: list[str] = []
        found = parse_exchange_info(await self.exchange_info(symbols), problems)
        self.instrument_problems = problems
        if symbols:
            self.instruments.update(found)
        else:
            self.instruments = found
        log.info("loaded %d instruments (%d skipped)", len(found), len(problems))
        return found

    async def depth(self, symbol: str, limit: int = 100) -> dict:
        return await self._public("/api/v3/depth", {"symbol": symbol, "limit": limit}, depth_weight(limit))

    async def klines(self, symbol: str, interval: str, start_time: int | None = None, end_time: int | None = None,
                     limit: int | None = None) -> list:
        return await self._public("/api/v3/klines", {"symbol": symbol, "interval": interval, "startTime": start_time,
                                                     "endTime": end_time, "limit": limit}, 2)

    async def recent_trades(self, symbol: str, limit: int | None = None) -> list:
        return await self._public("/api/v3/trades", {"symbol": symbol, "limit": limit}, 25)

    async def agg_trades(self, symbol: str, from_id: int | None = None, start_time: int | None = None,
                         end_time: int | None = None, limit: int | None = None) -> list:
        return await self._public("/api/v3/aggTrades", {"symbol": symbol, "fromId": from_id, "startTime": start_time,
                                                        "endTime": end_time, "limit": limit}, 4)

    async def book_ticker(self, symbol: str | None = None) -> dict | list:
        return await self._public("/api/v3/ticker/bookTicker", {"symbol": symbol}, 2 if symbol else 4)

    # ---- orders -----------------------------------------------------------------------

    @staticmethod
    def order_params(symbol: str, side: str, order_type: str, quantity=None, price=None, time_in_force=None,
                     stop_price=None, quote_order_qty=None, client_order_id: str = "", resp_type: str = "FULL",
                     trailing_delta=None) -> dict:
        """POST /api/v3/order parameters (None values are left out when encoded)."""
        return {"symbol": symbol, "side": side, "type": order_type, "timeInForce": time_in_force,
                "quantity": quantity, "quoteOrderQty": quote_order_qty, "price": price, "stopPrice": stop_price,
                "trailingDelta": trailing_delta, "newClientOrderId": client_order_id, "newOrderRespType": resp_type}

    async def new_order(self, symbol: str, side: str, order_type: str, quantity: Decimal | str | None = None,
                        price: Decimal | str | None = None, time_in_force: str | None = None,
                        stop_price: Decimal | str | None = None, quote_order_qty: Decimal | str | None = None,
                        client_order_id: str | None = None, resp_type: str = "FULL",
                        presigned: str | None = None, trailing_delta: int | str | None = None) -> dict:
        """POST /api/v3/order, safe to retry: see the module docstring.

        Returns Binance's answer; when the order was found by lookup after a status-unknown
        answer, it is the GET /api/v3/order shape (no `fills`: ask my_trades for them).
        Raises RateLimited on a 429 (not retried: the caller decides), OrderStatusUnknown
        (with client_order_id) when the outcome cannot be established.
        """
        if client_order_id is not None and not CLIENT_ORDER_ID_RE.match(client_order_id):
            raise ValueError(f"client_order_id {client_order_id!r} must match {CLIENT_ORDER_ID_RE.pattern}")
        cid = client_order_id or self.ids.next()
        params = self.order_params(symbol, side, order_type, quantity, price, time_in_force, stop_price,
                                   quote_order_qty, cid, resp_type, trailing_delta)
        encode(params)      # a float price or quantity is a TypeError before anything is sent
        if presigned is not None and f"newClientOrderId={cid}&" not in presigned + "&":
            raise ValueError("presigned query does not belong to this order")

        async def send(first: bool) -> dict:
            return await self._signed("POST", "/api/v3/order", params, 1, is_order=True,
                                      presigned=presigned if first else None)

        return await place_safely(cid, symbol, send, lambda: self.query_order(symbol, client_order_id=cid),
                                  attempts=self.config.order_retry_attempts, counters=self.counters,
                                  query_delay_s=self.unknown_query_delay_s)

    async def cancel_order(self, symbol: str, order_id: int | None = None,
                           client_order_id: str | None = None) -> dict:
        if order_id is None and not client_order_id:
            raise ValueError("cancel_order needs order_id or client_order_id")
        return await self._signed("DELETE", "/api/v3/order", {"symbol": symbol, "orderId": order_id,
                                                              "origClientOrderId": client_order_id}, 1)

    async def place_exit(self, request) -> dict:
        """An exchange-native exit (order_lists.ExitRequest: one order or an OCO), safe to retry:
        an unknown outcome is looked up by its client id before anything is resent."""
        if request.kind == "order":
            return await self.new_order(**_order_kwargs(request.params))
        cid = request.list_client_id

        async def send(first: bool) -> dict:
            return await self._signed("POST", request.path, request.params, 1, is_order=True)

        return await place_safely(cid, request.symbol, send, lambda: self.query_order_list(cid),
                                  attempts=self.config.order_retry_attempts, counters=self.counters,
                                  query_delay_s=self.unknown_query_delay_s, where="POST " + request.path)

    async def cancel_order_list(self, symbol: str, list_client_order_id: str | None = None,
                                order_list_id: int | None = None) -> dict:
        if order_list_id is None and not list_client_order_id:
            raise ValueError("cancel_order_list needs order_list_id or list_client_order_id")
        return await self._signed("DELETE", "/api/v3/orderList", {"symbol": symbol, "orderListId": order_list_id,
                                                                  "listClientOrderId": list_client_order_id}, 1)

    async def query_order_list(self, list_client_order_id: str | None = None, order_list_id: int | None = None) -> dict:
        if order_list_id is None and not list_client_order_id:
            raise ValueError("query_order_list needs order_list_id or list_client_order_id")
        return await self._signed("GET", "/api/v3/orderList", {"orderListId": order_list_id,
                                                               "origClientOrderId": list_client_order_id}, 4)

    async def open_order_lists(self) -> list[dict]:
        return await self._signed("GET", "/api/v3/openOrderList", {}, 6)

    async def amend_keep_priority(self, symbol: str, new_qty: Decimal | str, order_id: int | None = None,
                                  client_order_id: str | None = None, new_client_order_id: str | None = None) -> dict:
        """Reduce a working order's quantity without losing its place in the queue (2025-05-07)."""
        if order_id is None and not client_order_id:
            raise ValueError("amend_keep_priority needs order_id or client_order_id")
        return await self._signed("PUT", "/api/v3/order/amend/keepPriority", {
            "symbol": symbol, "orderId": order_id, "origClientOrderId": client_order_id,
            "newClientOrderId": new_client_order_id, "newQty": new_qty}, 4)

    async def cancel_replace(self, symbol: str, cancel_client_order_id: str, new_order: dict, *,
                             mode: str = "STOP_ON_FAILURE", rate_limit_mode: str = "CANCEL_ONLY") -> dict:
        """Cancel an order and place another (`new_order`: order_params' arguments but the symbol)
        in one request. With rate_limit_mode CANCEL_ONLY
        (orderRateLimitExceededMode, 2024-06-06) the cancel still happens when the order-rate
        limit refuses the new order, so a stale order never outlives a throttled replace."""
        params = {"symbol": symbol, "cancelReplaceMode": mode, "cancelOrigClientOrderId": cancel_client_order_id,
                  **self.order_params(symbol, **new_order), "orderRateLimitExceededMode": rate_limit_mode}
        return await self._signed("POST", "/api/v3/order/cancelReplace", params, 1, is_order=True)

    async def query_order(self, symbol: str, order_id: int | None = None, client_order_id: str | None = None) -> dict:
        if order_id is None and not client_order_id:
            raise ValueError("query_order needs order_id or client_order_id")
        return await self._signed("GET", "/api/v3/order", {"symbol": symbol, "orderId": order_id,
                                                           "origClientOrderId": client_order_id}, 4)

    async def open_orders(self, symbol: str | None = None) -> list[dict]:
        return await self._signed("GET", "/api/v3/openOrders", {"symbol": symbol}, 6 if symbol else 80)

    async def cancel_open_orders(self, symbol: str) -> list[dict]:
        return await self._signed("DELETE", "/api/v3/openOrders", {"symbol": symbol}, 1)

    async def all_orders(self, symbol: str, order_id: int | None = None, start_time: int | None = None,
                         end_time: int | None = None, limit: int | None = None) -> list[dict]:
        return await self._signed("GET", "/api/v3/allOrders", {"symbol": symbol, "orderId": order_id,
                                                               "startTime": start_time, "endTime": end_time,
                                                               "limit": limit}, 20)

    # ---- account ----------------------------------------------------------------------

    async def account(self, omit_zero_balances: bool = False) -> dict:
        return await self._signed("GET", "/api/v3/account",
                                  {"omitZeroBalances": True if omit_zero_balances else None}, 20)

    async def balances(self) -> tuple[Balance, ...]:
        """The account's balances as Balance events (exact Decimals)."""
        data = await self.account()
        return tuple(Balance(b["asset"], Decimal(b["free"]), Decimal(b["locked"])) for b in data.get("balances", ()))

    async def my_trades(self, symbol: str, order_id: int | None = None, start_time: int | None = None,
                        end_time: int | None = None, from_id: int | None = None,
                        limit: int | None = None) -> list[dict]:
        return await self._signed("GET", "/api/v3/myTrades", {"symbol": symbol, "orderId": order_id,
                                                              "startTime": start_time, "endTime": end_time,
                                                              "fromId": from_id, "limit": limit}, 20)
