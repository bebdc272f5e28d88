"""Binance's WebSocket market and user data streams, served with picows.

Paths: `/ws/<stream>[/<stream>...]` (raw payloads) and `/stream?streams=a/b` (each payload
wrapped as {"stream": name, "data": ...}). At run time clients send SUBSCRIBE / UNSUBSCRIBE /
LIST_SUBSCRIPTIONS as on Binance; more than 5 incoming messages a second closes the
connection, as does not answering the server's pings. Payloads are encoded once per publish,
not once per subscriber.

User data is no longer a stream: since Binance retired the listenKey flow (2026-02-20) it
reaches the WebSocket API sessions (`/ws-api/v3`, ws_api.py) that subscribed to an account,
wrapped as {"subscriptionId": N, "event": {...}}. The hub keeps those subscriptions too.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import deque
from typing import Iterable
from urllib.parse import parse_qs, urlsplit

import orjson
from picows import WSCloseCode, WSListener, WSMsgType, WSTransport, WSUpgradeRequest

log = logging.getLogger("abidance.sim.streams")

MAX_STREAMS_PER_CONNECTION = 1024
# A connection whose unsent data passes this is a slow consumer: Binance disconnects those, and so
# do we, dropping what was buffered (a reader that never reads held GBs otherwise).
MAX_SEND_BUFFER_BYTES = 4 << 20
MAX_INCOMING_PER_SECOND = 5
KLINE_INTERVALS = ("1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w", "1M")
_STREAM_RE = re.compile(
    r"^(?P<sym>[a-z0-9]+)@(?P<kind>trade|aggTrade|bookTicker|ticker|miniTicker|"
    r"depth(?P<levels>5|10|20)?(?:@(?P<speed>100ms|1000ms))?|kline_(?P<interval>[0-9]+[smhdwM]))$")


def parse_stream(name: str, known_symbols: set[str]) -> str | None:
    """Canonical stream name, or None when Binance would not know it."""
    m = _STREAM_RE.match(name)
    if not m or m.group("sym").upper() not in known_symbols:
        return None
    if m.group("interval") and m.group("interval") not in KLINE_INTERVALS:
        return None
    if m.group("speed") == "1000ms":
        # `<s>@depth@1000ms` is the same stream as `<s>@depth`.
        return name[: -len("@1000ms")]
    return name


def ws_text_frame(payload: bytes) -> bytes:
    """An unmasked, final WebSocket text frame (RFC 6455 5.2), as a server sends it."""
    n = len(payload)
    if n < 126:
        header = bytes((0x81, n))
    elif n < 1 << 16:
        header = bytes((0x81, 126)) + n.to_bytes(2, "big")
    else:
        header = bytes((0x81, 127)) + n.to_bytes(8, "big")
    return header + payload


class StreamConnection(WSListener):
    """One client connection: its subscriptions and how it wants payloads framed."""

    def __init__(self, hub: "StreamHub", streams: Iterable[str], combined: bool):
        super().__init__()
        self.hub = hub
        self.combined = combined
        self.initial_streams = list(streams)
        self.transport: WSTransport | None = None
        self.streams: set[str] = set()
        self._incoming: deque[float] = deque()
        self._lifetime: asyncio.TimerHandle | None = None
        self._writable = asyncio.Event()
        self._writable.set()
        self.sent = 0

    # ---- picows callbacks ----------------------------------------------------------

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        self.hub.attach(self)
        # Binance cuts every connection after 24 hours (compressible for tests).
        self._lifetime = asyncio.get_running_loop().call_later(
            self.hub.max_connection_s, self.close, WSCloseCode.GOING_AWAY, b"connection lifetime reached")
        for name in self.initial_streams:
            self.hub.subscribe(self, name)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        if self._lifetime is not None:
            self._lifetime.cancel()
        self.hub.detach(self)

    def on_ws_frame(self, transport: WSTransport, frame) -> None:
        if frame.msg_type == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()
            return
        if frame.msg_type in (WSMsgType.PING, WSMsgType.PONG):
            return   # picows answers pings and tracks pongs itself
        if not self._within_message_rate():
            log.info("closing a stream connection: more than %d messages a second", MAX_INCOMING_PER_SECOND)
            transport.send_close(WSCloseCode.POLICY_VIOLATION, b"Too many requests")
            transport.disconnect()
            return
        if frame.msg_type not in (WSMsgType.TEXT, WSMsgType.BINARY):
            return   # continuation frames of fragmented requests are not supported, as on Binance
        self._handle_request(frame.get_payload_as_bytes())

    # ---- requests ----------------------------------------------------------------------

    def _within_message_rate(self) -> bool:
        now = time.monotonic()
        q = self._incoming
        q.append(now)
        while q and now - q[0] > 1.0:
            q.popleft()
        return len(q) <= MAX_INCOMING_PER_SECOND

    def _handle_request(self, raw: bytes) -> None:
        try:
            req = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            self._reply_error(None, 3, f"Invalid JSON: {exc}")
            return
        if not isinstance(req, dict):
            self._reply_error(None, 3, "Invalid JSON: expected an object")
            return
        req_id = req.get("id")
        if req_id is not None and not isinstance(req_id, (int, str)) or isinstance(req_id, bool):
            self._reply_error(None, 3, "Invalid request: 'id' must be an integer or a string")
            return
        method = req.get("method")
        params = req.get("params", [])
        if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
            if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
                self._reply_error(req_id, 2, "Invalid request: 'params' must be a list of stream names")
                return
            names = []
            for p in params:
                name = parse_stream(p, self.hub.symbols)
                if name is None:
                    self._reply_error(req_id, 2, f"Invalid request: unknown stream name '{p}'")
                    return
                names.append(name)
            if method == "SUBSCRIBE":
                if len(self.streams | set(names)) > MAX_STREAMS_PER_CONNECTION:
                    self._reply_error(req_id, 2, f"Invalid request: more than {MAX_STREAMS_PER_CONNECTION} streams")
                    return
                for name in names:
                    self.hub.subscribe(self, name)
            else:
                for name in names:
                    self.hub.unsubscribe(self, name)
            self._reply({"result": None, "id": req_id})
        elif method == "LIST_SUBSCRIPTIONS":
            self._reply({"result": sorted(self.streams), "id": req_id})
        elif method in ("SET_PROPERTY", "GET_PROPERTY"):
            if method == "GET_PROPERTY":
                self._reply({"result": self.combined, "id": req_id})
            else:
                if (not isinstance(params, list) or len(params) != 2 or params[0] != "combined"
                        or not isinstance(params[1], bool)):
                    self._reply_error(req_id, 2, "Invalid request: SET_PROPERTY takes ['combined', true|false]")
                    return
                self.combined = params[1]
                self._reply({"result": None, "id": req_id})
        else:
            self._reply_error(req_id, 2, f"Invalid request: unknown method {method!r}")

    def _reply(self, body: dict) -> None:
        if not self.hub.too_slow(self, self.transport):
            self.transport.send(WSMsgType.TEXT, orjson.dumps(body))

    def _reply_error(self, req_id, code: int, msg: str) -> None:
        self._reply({"error": {"code": code, "msg": msg}, "id": req_id})

    # picows tells when its write buffer is over/under the watermarks: a bulk sender waits.
    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    # ---- output ------------------------------------------------------------------------

    def send_payload(self, raw: bytes, combined: bytes) -> None:
        if self.hub.too_slow(self, self.transport):
            return
        self.transport.send(WSMsgType.TEXT, combined if self.combined else raw)
        self.sent += 1

    def close(self, code=WSCloseCode.GOING_AWAY, reason: bytes = b"") -> None:
        if self.transport is not None and not self.transport.is_disconnected:
            self.transport.send_close(code, reason)
            self.transport.disconnect()


class StreamHub:
    """Stream name -> subscribed connections; account -> the WebSocket API sessions subscribed to it."""

    def __init__(self, symbols: Iterable[str]):
        self.symbols = {s.upper() for s in symbols}
        self.subscribers: dict[str, set[StreamConnection]] = {}
        self.connections: set[StreamConnection] = set()
        self.api_sessions: set = set()                          # ws_api.ApiSession
        self.user_subscriptions: dict[int, dict[object, int]] = {}  # account id -> {session: subscriptionId}
        self.published = 0
        self.max_connection_s = 86_400.0
        self.max_send_buffer_bytes = MAX_SEND_BUFFER_BYTES
        self.slow_consumers_dropped = 0

    def too_slow(self, conn, transport: WSTransport | None) -> bool:
        """True (and the connection is dropped, counted and logged) when `conn` is gone or its unsent
        data has passed max_send_buffer_bytes: Binance disconnects a client that reads too slowly.
        The buffered data is discarded (an abort, not a close that would wait to flush it)."""
        if transport is None or transport.is_disconnected:
            return True
        buffered = transport.underlying_transport.get_write_buffer_size()
        if buffered <= self.max_send_buffer_bytes:
            return False
        self.slow_consumers_dropped += 1
        log.warning("disconnecting a slow consumer (%s): %d bytes unsent > %d (%d dropped so far)",
                    type(conn).__name__, buffered, self.max_send_buffer_bytes, self.slow_consumers_dropped)
        if isinstance(conn, StreamConnection):
            self.detach(conn)
        else:
            self.detach_session(conn)
        transport.disconnect(graceful=False)
        return True

    def attach(self, conn: StreamConnection) -> None:
        self.connections.add(conn)

    def detach(self, conn: StreamConnection) -> None:
        self.connections.discard(conn)
        for name in list(conn.streams):
            self.unsubscribe(conn, name)

    # ---- WebSocket API sessions and their user-data subscriptions -----------------------

    def attach_session(self, session) -> None:
        self.api_sessions.add(session)

    def detach_session(self, session) -> None:
        self.api_sessions.discard(session)
        for subs in self.user_subscriptions.values():
            subs.pop(session, None)

    def subscribe_user(self, session, account_id: int, subscription_id: int) -> None:
        self.user_subscriptions.setdefault(account_id, {})[session] = subscription_id

    def unsubscribe_user(self, session, account_id: int) -> None:
        subs = self.user_subscriptions.get(account_id)
        if subs is not None:
            subs.pop(session, None)

    def subscribe(self, conn: StreamConnection, name: str) -> None:
        conn.streams.add(name)
        self.subscribers.setdefault(name, set()).add(conn)

    def unsubscribe(self, conn: StreamConnection, name: str) -> None:
        conn.streams.discard(name)
        subs = self.subscribers.get(name)
        if subs is not None:
            subs.discard(conn)
            if not subs:
                del self.subscribers[name]

    def has_subscribers(self, name: str) -> bool:
        return name in self.subscribers

    def publish(self, name: str, payload: dict) -> None:
        subs = self.subscribers.get(name)
        if not subs:
            return
        raw = orjson.dumps(payload)
        combined = b'{"stream":"' + name.encode() + b'","data":' + raw + b"}"
        for conn in tuple(subs):
            conn.send_payload(raw, combined)
        self.published += 1

    def publish_user(self, account_id: int, payload: dict) -> None:
        """One user-data event to every session subscribed to the account, in its envelope."""
        subs = self.user_subscriptions.get(account_id)
        if not subs:
            return
        raw = orjson.dumps(payload)
        for session, subscription_id in tuple(subs.items()):
            session.send_event(subscription_id, raw)

    async def blast(self, name: str, message: bytes, count: int) -> int:
        """Send one pre-encoded message `count` times to a stream's subscribers, as fast as
        the sockets take it (waiting on back-pressure), then b'{"blast":"done"}'.

        Stress tooling: how hard the simulator can push a client. The message is framed
        once (a server frame is unmasked) and written 64 frames per socket write, so the
        cost is the kernel's, not a Python call per message.
        """
        subs = tuple(self.subscribers.get(name, ()))
        frame = ws_text_frame(message)
        sent = 0
        for conn in subs:
            raw = conn.transport.underlying_transport
            raw.set_write_buffer_limits(high=4 * 1024 * 1024)
            left = count
            while left > 0:
                if not conn._writable.is_set():
                    await conn._writable.wait()
                k = min(64, left)
                raw.write(frame * k)
                left -= k
                sent += k
                if left & 0xFFFF < 64:
                    await asyncio.sleep(0)   # let the loop flush and read now and then
            conn.transport.send(WSMsgType.TEXT, b'{"blast":"done"}')
        return sent

    def close_all(self, reason: bytes = b"", *, streams: bool = True, api: bool = True) -> int:
        """Close stream connections and/or WebSocket API sessions; returns how many."""
        conns = (list(self.connections) if streams else []) + (list(self.api_sessions) if api else [])
        for conn in conns:
            conn.close(WSCloseCode.GOING_AWAY, reason)
        return len(conns)


WS_API_PATH = "/ws-api/v3"


def listener_factory(hub: StreamHub, api_session=None):
    """picows router: the path decides the streams and the framing, or opens a WebSocket API
    session (`api_session(query)` -> a listener, or None to refuse the upgrade)."""

    def factory(request: WSUpgradeRequest):
        try:
            target = request.path.decode() if isinstance(request.path, bytes) else request.path
            parts = urlsplit(target)
            path = parts.path.rstrip("/")
            if path == WS_API_PATH:
                return api_session(parse_qs(parts.query)) if api_session is not None else None
            if path == "/stream":
                query = parse_qs(parts.query)
                names = query.get("streams", [""])[0].split("/") if query.get("streams") else []
                return _open(hub, names, combined=True)
            if path.startswith("/ws"):
                rest = path[len("/ws"):].lstrip("/")
                names = [n for n in rest.split("/") if n] if rest else []
                return _open(hub, names, combined=False)
        except Exception:   # a malformed upgrade must get a 404, never take the server down
            log.exception("bad stream upgrade request")
        return None

    return factory


def _open(hub, names, combined: bool):
    """A stream connection, or None (a 404) for an unknown stream name (a retired listenKey too)."""
    if len(names) > MAX_STREAMS_PER_CONNECTION:
        return None
    streams = [parse_stream(name, hub.symbols) for name in names]
    if any(s is None for s in streams):
        return None
    return StreamConnection(hub, streams, combined)
