"""Binance's WebSocket API (`/ws-api/v3`) on the simulator: requests, answers, user-data subscriptions.

A request is one text frame `{"id", "method", "params"}`; its answer carries the same id, an
HTTP-like `status`, the `result` or an `error` {code, msg} (418/429 with `data.retryAfter`),
and the `rateLimits` the request touched, unless `returnRateLimits` is false (per request,
or for the connection with `?returnRateLimits=false`).

Trading, account and market methods are REST routes under another name (METHODS), so the
weight, the order counting, every check and every error are the REST ones; only signing
differs (auth.ws_payload: all params but `signature`, sorted, not percent-encoded). Params may
arrive as JSON strings or numbers; both become the string a REST client would send.

User data (the listenKey flow is gone since 2026-02-20):
- `userDataStream.subscribe.signature` (apiKey, timestamp, signature; any key type), or
- `session.logon` (Ed25519 keys only) then `userDataStream.subscribe`;
events then arrive on this connection as {"subscriptionId": N, "event": {...}}. One active
subscription per account per connection (-2035); `userDataStream.unsubscribe` ends one or
all and sends `eventStreamTerminated`; the subscriptions die with the connection.
"""

from __future__ import annotations

import asyncio
import logging

import orjson
from picows import WSCloseCode, WSListener, WSMsgType, WSTransport

from abidance.exchange.sim import auth, errors, rest
from abidance.exchange.sim.errors import BinanceError

log = logging.getLogger("abidance.sim.ws_api")

# WebSocket API method -> the REST route it is (Binance's own pairing, web-socket-api.md).
METHODS: dict[str, tuple[str, str]] = {
    "ping": ("GET", "/api/v3/ping"),
    "time": ("GET", "/api/v3/time"),
    "exchangeInfo": ("GET", "/api/v3/exchangeInfo"),
    "depth": ("GET", "/api/v3/depth"),
    "trades.recent": ("GET", "/api/v3/trades"),
    "trades.aggregate": ("GET", "/api/v3/aggTrades"),
    "klines": ("GET", "/api/v3/klines"),
    "uiKlines": ("GET", "/api/v3/uiKlines"),
    "avgPrice": ("GET", "/api/v3/avgPrice"),
    "ticker.24hr": ("GET", "/api/v3/ticker/24hr"),
    "ticker.price": ("GET", "/api/v3/ticker/price"),
    "ticker.book": ("GET", "/api/v3/ticker/bookTicker"),
    "order.place": ("POST", "/api/v3/order"),
    "order.test": ("POST", "/api/v3/order/test"),
    "order.status": ("GET", "/api/v3/order"),
    "order.cancel": ("DELETE", "/api/v3/order"),
    "order.cancelReplace": ("POST", "/api/v3/order/cancelReplace"),
    "order.amend.keepPriority": ("PUT", "/api/v3/order/amend/keepPriority"),
    "openOrders.status": ("GET", "/api/v3/openOrders"),
    "openOrders.cancelAll": ("DELETE", "/api/v3/openOrders"),
    "allOrders": ("GET", "/api/v3/allOrders"),
    "myTrades": ("GET", "/api/v3/myTrades"),
    "account.status": ("GET", "/api/v3/account"),
    "account.rateLimits.orders": ("GET", "/api/v3/rateLimit/order"),
    "orderList.place.oco": ("POST", "/api/v3/orderList/oco"),
    "orderList.place.oto": ("POST", "/api/v3/orderList/oto"),
    "orderList.place.otoco": ("POST", "/api/v3/orderList/otoco"),
    "orderList.status": ("GET", "/api/v3/orderList"),
    "orderList.cancel": ("DELETE", "/api/v3/orderList"),
    "openOrderLists.status": ("GET", "/api/v3/openOrderList"),
    "allOrderLists": ("GET", "/api/v3/allOrderList"),
}
SESSION_WEIGHT = 2                  # every session.* and userDataStream.* method
MAX_ACTIVE_SUBSCRIPTIONS = 1000     # per session
MAX_SUBSCRIPTION_IDS = 65_535       # over a session's lifetime
_ID_MAX_CHARS = 36


class ApiSession(WSListener):
    """One WebSocket API connection."""

    def __init__(self, venue, return_rate_limits: bool = True):
        super().__init__()
        self.venue = venue
        self.hub = venue.hub
        self.return_rate_limits = return_rate_limits
        self.transport: WSTransport | None = None
        self.ip = "127.0.0.1"
        self.logged_on = None               # the Account of session.logon
        self.authorized_since: int | None = None
        self.connected_since = 0
        self.subscriptions: dict[int, tuple[int, bool]] = {}    # id -> (account id, made by logon?)
        self.next_subscription_id = 0
        self.requests = 0
        self._lifetime: asyncio.TimerHandle | None = None

    # ---- picows callbacks ----------------------------------------------------------

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        peer = transport.underlying_transport.get_extra_info("peername")
        if peer:
            self.ip = peer[0]
        self.connected_since = self.venue.wall_ms()
        self.hub.attach_session(self)
        self._lifetime = asyncio.get_running_loop().call_later(
            self.hub.max_connection_s, self.close, WSCloseCode.GOING_AWAY, b"connection lifetime reached")

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        if self._lifetime is not None:
            self._lifetime.cancel()
        self.hub.detach_session(self)
        self.subscriptions.clear()

    def on_ws_frame(self, transport: WSTransport, frame) -> None:
        kind = frame.msg_type
        if kind == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()
            return
        if kind not in (WSMsgType.TEXT, WSMsgType.BINARY):
            return      # picows answers pings; fragmented requests are not supported
        raw = frame.get_payload_as_bytes()
        delay = self.venue.faults.settings.rest_latency_ms / 1000
        if delay > 0:
            asyncio.get_running_loop().call_later(delay, self.handle, raw)
        else:
            self.handle(raw)

    def close(self, code=WSCloseCode.GOING_AWAY, reason: bytes = b"") -> None:
        if self.transport is not None and not self.transport.is_disconnected:
            self.transport.send_close(code, reason)
            self.transport.disconnect()

    # ---- output ----------------------------------------------------------------------

    def send_event(self, subscription_id: int, raw_event: bytes) -> None:
        if not self.hub.too_slow(self, self.transport):
            self.transport.send(WSMsgType.TEXT, b'{"subscriptionId":%d,"event":%s}' % (subscription_id, raw_event))

    def _answer(self, req_id, status: int, body: dict, rate_limits: list | None) -> None:
        out = {"id": req_id, "status": status, **body}
        if rate_limits is not None:
            out["rateLimits"] = rate_limits
        if not self.hub.too_slow(self, self.transport):
            self.transport.send(WSMsgType.TEXT, orjson.dumps(out))

    # ---- requests --------------------------------------------------------------------

    def handle(self, raw: bytes) -> None:
        self.requests += 1
        req_id = None
        try:
            try:
                req = orjson.loads(raw)
            except orjson.JSONDecodeError:
                raise BinanceError(-1135, "Invalid JSON Request", 400) from None
            if not isinstance(req, dict):
                raise BinanceError(-1135, "Invalid JSON Request", 400)
            req_id = req.get("id")
            if not _valid_id(req_id):
                req_id = None
                raise BinanceError(-1135, "Invalid 'id' in JSON request; expected an integer, a string of at "
                                   f"most {_ID_MAX_CHARS} characters, or null.", 400)
            method = req.get("method")
            params = req.get("params", {})
            if not isinstance(params, dict):
                raise BinanceError(-1135, "Invalid 'params' in JSON request; expected an object.", 400)
            if not isinstance(method, str):
                raise errors.mandatory_param("method")
            method = method[3:] if method.startswith("v3/") else method
            self._dispatch(req_id, method, {k: _param_text(k, v) for k, v in params.items()})
        except BinanceError as exc:
            self._answer_error(req_id, exc, self._weight_limits() if self._shows_limits({}) else None)
        except Exception:   # a bug answers like Binance's -1000, never kills the connection
            log.exception("unhandled error in a WebSocket API request")
            self._answer_error(req_id, errors.unknown_error(), None)

    def _shows_limits(self, params: dict[str, str]) -> bool:
        flag = params.get("returnRateLimits")
        return self.return_rate_limits if flag is None else flag == "true"

    def _dispatch(self, req_id, method: str, params: dict[str, str]) -> None:
        venue = self.venue
        show = self._shows_limits(params)
        session_method = SESSION_METHODS.get(method)
        if session_method is not None:
            now = venue.wall_ms()
            try:
                venue.limiter.charge(self.ip, SESSION_WEIGHT, now)
                result = session_method(self, params, now)
            except BinanceError as exc:
                self._answer_error(req_id, exc, self._weight_limits() if show else None)
                return
            self._answer(req_id, 200, {"result": result}, self._weight_limits() if show else None)
            return
        target = METHODS.get(method)
        row = rest.route(*target) if target is not None else None
        if row is None:
            raise BinanceError(-1100, f"Illegal characters found in parameter 'method'; unknown method "
                               f"'{method[:64]}'.", 400)
        http_method, path, weight, security, is_order, handler = row
        account = None
        now = venue.wall_ms()
        try:
            fault = venue.faults.request_fault(path)
            if fault is not None:
                if fault.http_status == 418:
                    venue.limiter.ban(self.ip, fault.retry_after or 120, now)
                raise fault
            cost = rest.weight_of(weight, params)
            venue.limiter.charge(self.ip, cost, now)
            if security != rest.NONE:
                account = self._authenticate(params, security == rest.SIGNED, now)
            call_params = {k: v for k, v in params.items() if k not in ("apiKey", "signature")}
            result = handler(rest.Call(venue, call_params, account, self.ip))
            if hasattr(result, "__await__"):
                raise RuntimeError(f"{method}: an asynchronous handler cannot answer on the WebSocket API")
            if (http_method, path) in rest.FREE_WHEN_OK:
                venue.limiter.refund(self.ip, cost, now)
            if is_order and http_method == "POST" and venue.faults.lose_order_reply(path):
                raise BinanceError(-1007, "Timeout waiting for response from backend server. "
                                   "Send status unknown; execution status unknown.", 503)
        except BinanceError as exc:
            self._answer_error(req_id, exc, self._limits(account, is_order, now) if show else None)
            return
        self._answer(req_id, 200, {"result": result}, self._limits(account, is_order, now) if show else None)

    def _authenticate(self, params: dict[str, str], signed: bool, now: int):
        """The request's account: its own apiKey (+ signature when SIGNED), else the logged-on one."""
        if "apiKey" not in params and self.logged_on is not None:
            if signed:
                auth.check_window(*auth.parse_timestamp(params), now)
            return self.logged_on
        account = auth.check_api_key(params.get("apiKey"), self._account_by_key)
        if signed:
            timestamp, recv_window = auth.parse_timestamp(params)
            auth.check_signature(account, auth.ws_payload(params), params.get("signature"))
            auth.check_window(timestamp, recv_window, now)
        return account

    def _account_by_key(self, api_key: str):
        try:
            return self.venue.exchange.account_by_key(api_key)
        except BinanceError:
            return None

    # ---- rate limits in answers ------------------------------------------------------------

    def _weight_limits(self) -> list[dict]:
        used = self.venue.limiter.used_weight(self.ip, self.venue.wall_ms())
        return [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
                 "limit": self.venue.limiter.config.weight_per_minute, "count": used}]

    def _limits(self, account, is_order: bool, now: int) -> list[dict]:
        out = self._weight_limits()
        if is_order and account is not None:
            cfg = self.venue.limiter.config
            c10, cday = self.venue.limiter.order_counts(account.account_id, now)
            out = [{"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": cfg.orders_per_10s,
                    "count": c10},
                   {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": cfg.orders_per_day,
                    "count": cday}] + out
        return out

    def _answer_error(self, req_id, exc: BinanceError, rate_limits: list | None) -> None:
        error = exc.body()
        if exc.http_status in (418, 429) and exc.retry_after is not None:
            now = self.venue.wall_ms()
            error["data"] = {"serverTime": now, "retryAfter": now + exc.retry_after * 1000}
        self._answer(req_id, exc.http_status, {"error": error}, rate_limits)

    # ---- user-data subscriptions -------------------------------------------------------

    def subscribe(self, account, by_logon: bool) -> dict:
        if any(acc == account.account_id for acc, _ in self.subscriptions.values()):
            raise BinanceError(-2035, "User Data Stream subscription already active.", 400)
        if len(self.subscriptions) >= MAX_ACTIVE_SUBSCRIPTIONS:
            raise BinanceError(-2042, "Maximum subscription ID reached for this connection.", 400)
        if self.next_subscription_id > MAX_SUBSCRIPTION_IDS:
            raise BinanceError(-2042, "Maximum subscription ID reached for this connection.", 400)
        sid = self.next_subscription_id
        self.next_subscription_id += 1
        self.subscriptions[sid] = (account.account_id, by_logon)
        self.hub.subscribe_user(self, account.account_id, sid)
        return {"subscriptionId": sid}

    def end_subscription(self, sid: int, now: int) -> None:
        account_id, _ = self.subscriptions.pop(sid)
        self.hub.unsubscribe_user(self, account_id)
        self.send_event(sid, orjson.dumps({"e": "eventStreamTerminated", "E": now}))


def _valid_id(req_id) -> bool:
    if req_id is None:
        return True
    if isinstance(req_id, bool):
        return False
    if isinstance(req_id, int):
        return -(1 << 63) <= req_id < (1 << 63)
    return isinstance(req_id, str) and 0 < len(req_id) <= _ID_MAX_CHARS


def _param_text(name: str, value) -> str:
    """A JSON param as the text a REST client would have sent (what the signature covers)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        # JSON numbers are signed as written; a float that is a whole number prints without ".0".
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, (list, dict)):
        return orjson.dumps(value).decode()
    raise BinanceError(-1100, f"Illegal characters found in parameter '{name}'.", 400)


# ---- session and user-data methods ----------------------------------------------------------

def _session_status(s: ApiSession, now: int) -> dict:
    return {"apiKey": s.logged_on.api_key if s.logged_on is not None else None,
            "authorizedSince": s.authorized_since, "connectedSince": s.connected_since,
            "returnRateLimits": s.return_rate_limits, "serverTime": now,
            "userDataStream": bool(s.subscriptions)}


def session_logon(s: ApiSession, params: dict[str, str], now: int) -> dict:
    account = auth.check_api_key(params.get("apiKey"), s._account_by_key)
    timestamp, recv_window = auth.parse_timestamp(params)
    if account.key_type != "ED25519":
        # Binance: "Only Ed25519 keys are supported" for session.logon; an HMAC signature fails its check.
        raise errors.bad_signature()
    auth.check_signature(account, auth.ws_payload(params), params.get("signature"))
    auth.check_window(timestamp, recv_window, now)
    s.logged_on, s.authorized_since = account, now
    return _session_status(s, now)


def session_status(s: ApiSession, params: dict[str, str], now: int) -> dict:
    return _session_status(s, now)


def session_logout(s: ApiSession, params: dict[str, str], now: int) -> dict:
    # Logging out ends the subscription userDataStream.subscribe made, not the .signature ones.
    for sid, (_, by_logon) in list(s.subscriptions.items()):
        if by_logon:
            s.end_subscription(sid, now)
    s.logged_on = s.authorized_since = None
    return _session_status(s, now)


def uds_subscribe(s: ApiSession, params: dict[str, str], now: int) -> dict:
    if params:
        raise BinanceError(-1104, f"Not all sent parameters were read; read '0' parameter(s) but was sent "
                           f"'{len(params)}'.", 400)
    if s.logged_on is None:
        # Not documented by Binance; the most plausible answer for a subscription without a logon.
        raise BinanceError(-2015, "Invalid API-key, IP, or permissions for action.", 401)
    return s.subscribe(s.logged_on, by_logon=True)


def uds_subscribe_signature(s: ApiSession, params: dict[str, str], now: int) -> dict:
    account = auth.check_api_key(params.get("apiKey"), s._account_by_key)
    timestamp, recv_window = auth.parse_timestamp(params)
    auth.check_signature(account, auth.ws_payload(params), params.get("signature"))
    auth.check_window(timestamp, recv_window, now)
    return s.subscribe(account, by_logon=False)


def uds_unsubscribe(s: ApiSession, params: dict[str, str], now: int) -> dict:
    raw = params.get("subscriptionId")
    if raw is None:
        for sid in list(s.subscriptions):
            s.end_subscription(sid, now)
        return {}
    try:
        sid = int(raw)
    except ValueError:
        raise errors.illegal_chars("subscriptionId") from None
    if sid not in s.subscriptions:
        raise BinanceError(-2036, "User Data Stream subscription not active.", 400)
    s.end_subscription(sid, now)
    return {}


def session_subscriptions(s: ApiSession, params: dict[str, str], now: int) -> list:
    return [{"subscriptionId": sid} for sid in sorted(s.subscriptions)]


SESSION_METHODS = {
    "session.logon": session_logon,
    "session.status": session_status,
    "session.logout": session_logout,
    "userDataStream.subscribe": uds_subscribe,
    "userDataStream.subscribe.signature": uds_subscribe_signature,
    "userDataStream.unsubscribe": uds_unsubscribe,
    "session.subscriptions": session_subscriptions,
}
