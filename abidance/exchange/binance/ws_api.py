"""Binance's WebSocket API: one kept-open connection for requests and user-data events.

Since the listenKey flow was switched off (2026-02-20) user data reaches a bot only here
(`wss://ws-api.binance.com:443/ws-api/v3`), and orders placed here skip a REST round trip's
HTTP overhead. One `WsApiConnection`:
- sends `{"id", "method", "params"}` and matches each answer by id; an error answer raises
  the REST client's exception types (errors.py), so callers handle both transports alike;
- signs with the same Credentials as REST: apiKey, timestamp (our clock plus the offset
  measured from the server), recvWindow, and a signature over every param sorted by name,
  not percent-encoded (Binance's WebSocket API rule; REST signs the query string as sent);
- feeds each answer's `rateLimits` to the shared RateLimiter, and reserves budget before
  sending exactly as REST does (the two share Binance's IP and account limits);
- hands user-data events (`{"subscriptionId", "event"}`) to `on_event`, reconnects at once
  on `serverShutdown`, and otherwise reconnects by itself (ws_connection.py) and runs the
  `on_connected` hooks (re-subscription, reconciliation) after every connect.

A request whose connection drops before its answer raises TransportError (sent=True: it
may have executed); one that cannot be sent (not connected) raises it with sent=False.
Nothing here logs a signature or an API key.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from typing import Any, Awaitable, Callable

import orjson
from picows import WSMsgType

from abidance.exchange.binance.config import BinanceConfig
from abidance.exchange.binance.credentials import Credentials, CredentialsError
from abidance.exchange.binance.errors import (BinanceApiError, IpBanned, RateLimited, RequestTimeout,
                                              TimestampOutsideRecvWindow, TransportError)
from abidance.exchange.binance.rest import param_text
from abidance.exchange.binance.ws_connection import WsConnection

log = logging.getLogger("abidance.binance.ws_api")

NONE, API_KEY, SIGNED = 0, 1, 2


class WsApiConnection(WsConnection):
    kind = "ws-api"

    def __init__(self, config: BinanceConfig, credentials: Credentials | None, limiter, clock, *,
                 time_offset_ms: Callable[[], int] = lambda: 0,
                 on_event: Callable[[dict, int], None] | None = None, on_state: Callable | None = None):
        # User data may be silent for hours: liveness is probed with pings, not by silence.
        super().__init__(config, on_state, check_stale=False)
        self.credentials = credentials
        self.limiter = limiter
        self.clock = clock
        self.time_offset_ms = time_offset_ms
        self.on_event = on_event or (lambda event, ts_init: None)
        self.on_connected: list[Callable[[], Awaitable[None]]] = []
        self._ids = itertools.count(1)
        self._pending: dict[Any, asyncio.Future] = {}
        self.requests = 0
        self.errors = 0
        self.events = 0
        self.dropped = 0
        self.last_error = ""

    def _url(self) -> str:
        return self.config.ws_api_url

    def _after_connect(self) -> None:
        for hook in self.on_connected:
            asyncio.get_running_loop().create_task(hook(), name=f"ws-api-{self.conn_id}-connected")

    def _on_lost(self) -> None:
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(TransportError("WebSocket API connection lost before the answer; the request "
                                                 "may have executed", method="WS"))
        self._pending.clear()

    # ---- requests ------------------------------------------------------------------------

    def signed(self, params: dict[str, Any]) -> dict[str, str]:
        """params as strings plus apiKey, timestamp, recvWindow and the signature over them all, sorted."""
        creds = self.credentials
        if creds is None:
            raise CredentialsError("this Binance request needs an API key: pass Credentials (see credentials.py)")
        out = {k: param_text(k, v) for k, v in params.items() if v is not None}
        out["apiKey"] = creds.api_key
        out["timestamp"] = str(self.clock.time_ms() + self.time_offset_ms())
        out["recvWindow"] = str(self.config.recv_window_ms)
        out["signature"] = creds.sign("&".join(f"{k}={out[k]}" for k in sorted(out)))
        return out

    def frame(self, req_id, method: str, params: dict[str, Any] | None = None) -> bytes:
        body = {"id": req_id, "method": method}
        if params:
            body["params"] = params
        return orjson.dumps(body)

    async def request(self, method: str, params: dict[str, Any] | None = None, *, security: int = NONE,
                      weight: int = 1, is_order: bool = False, timeout: float | None = None) -> Any:
        """Send one request and return its `result` (raises BinanceApiError and its kin)."""
        await self.limiter.reserve(weight, is_order)
        if security == SIGNED:
            # Stamped after any wait for budget, so the wait never eats into recvWindow.
            params = self.signed(params or {})
        elif security == API_KEY:
            params = {**(params or {}), "apiKey": self.credentials.api_key if self.credentials else ""}
        elif params:
            params = {k: param_text(k, v) for k, v in params.items() if v is not None}
        req_id = next(self._ids)
        return await self._exchange(req_id, self.frame(req_id, method, params), method, timeout)

    async def send_prepared(self, req_id: str, frame: bytes, method: str, *, weight: int = 1, is_order: bool = False,
                            timeout: float | None = None) -> Any:
        """Send a request built and signed in advance (an order decided microseconds ago)."""
        await self.limiter.reserve(weight, is_order)
        return await self._exchange(req_id, frame, method, timeout)

    async def _exchange(self, req_id, frame: bytes, method: str, timeout: float | None) -> Any:
        transport = self.transport
        if transport is None or transport.is_disconnected:
            self.errors += 1
            raise TransportError("the WebSocket API is not connected", sent=False, method="WS", path=method)
        if req_id in self._pending:
            raise ValueError(f"request id {req_id!r} is already waiting for an answer")
        fut = asyncio.get_running_loop().create_future()
        self._pending[req_id] = fut
        self.requests += 1
        started = self.clock.monotonic()
        transport.send(WSMsgType.TEXT, frame)
        try:
            msg = await asyncio.wait_for(fut, timeout or self.config.request_timeout_s)
        except asyncio.TimeoutError:
            self.errors += 1
            raise RequestTimeout(f"no answer within {timeout or self.config.request_timeout_s} s",
                                 method="WS", path=method) from None
        except TransportError as exc:
            self.errors += 1
            raise TransportError(exc.msg, method="WS", path=method) from None
        finally:
            self._pending.pop(req_id, None)
        status = msg.get("status")
        error = msg.get("error")
        code, text, retry_at = None, "", None
        if isinstance(error, dict):
            code, text = error.get("code"), str(error.get("msg", ""))
            data = error.get("data")
            if isinstance(data, dict) and type(data.get("retryAfter")) is int:
                retry_at = data["retryAfter"]
        self.limiter.on_ws_answer(status if type(status) is int else 0, msg.get("rateLimits"),
                                  code if type(code) is int else None, text, retry_at)
        log.debug("WS %s -> %s (%.1f ms)", method, status, (self.clock.monotonic() - started) * 1000)
        if status == 200 and "result" in msg:
            return msg["result"]
        self.errors += 1
        if type(code) is not int or type(status) is not int:
            raise BinanceApiError(0, f"answer without Binance's status and error: {str(msg)[:160]!r}",
                                  status if type(status) is int else 0, method="WS", path=method)
        log.warning("WS %s -> status %d, code %d: %s", method, status, code, text)
        if status == 418:
            raise IpBanned(code, text, until_ms=self.limiter.banned_until_ms, method="WS", path=method)
        if status == 429:
            wait = max(0.0, (retry_at - self.limiter.now_ms()) / 1000) if retry_at else 0.0
            raise RateLimited(code, text, retry_after_s=wait, method="WS", path=method)
        if code == -1021:
            raise TimestampOutsideRecvWindow(code, text, status, method="WS", path=method)
        raise BinanceApiError(code, text, status, method="WS", path=method)

    # ---- incoming ------------------------------------------------------------------------

    def _on_payload(self, payload: bytes) -> None:
        ts_init = self.clock.time_ns()
        try:
            msg = orjson.loads(payload)
        except orjson.JSONDecodeError:
            self._drop(f"not JSON: {payload[:60]!r}")
            return
        if not isinstance(msg, dict):
            self._drop(f"not an object: {payload[:60]!r}")
            return
        event = msg.get("event")
        if isinstance(event, dict) and "id" not in msg:
            if event.get("e") == "serverShutdown":
                # Binance is about to restart this server: move now, not when it cuts us.
                self.drop("serverShutdown announced")
                return
            self.events += 1
            self.on_event(event, ts_init)
            return
        fut = self._pending.get(msg.get("id"))
        if fut is not None and not fut.done():
            fut.set_result(msg)
        elif msg.get("id") is None and isinstance(msg.get("error"), dict):
            # e.g. a revoked API key (-2015, status 401) ends the session: say so loudly.
            self.errors += 1
            self.last_error = f"{msg['error'].get('code')}: {msg['error'].get('msg')}"
            log.error("WebSocket API error without a request: %s", self.last_error)
        else:
            self._drop(f"answer to no pending request (id {msg.get('id')!r})")

    def _drop(self, why: str) -> None:
        self.dropped += 1
        self.last_error = why
        log.warning("WebSocket API message dropped: %s", why)

