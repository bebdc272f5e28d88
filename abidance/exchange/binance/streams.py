"""Market-stream WebSocket connections (picows): subscribe, stay connected, stay fresh.

`StreamConnection` is one combined-stream connection that reconnects by itself with
exponential backoff and jitter. It reconnects when the server drops it, when no message
has arrived for `stale_after_s`, and before Binance's 24-hour cut. Subscription changes
are sent as SUBSCRIBE/UNSUBSCRIBE requests paced under Binance's 5 messages a second.
`MarketStreams` spreads streams over as many connections as the per-connection limit needs.

Frames go to `on_frame(conn, payload, ts_init)` untouched: parsing is the caller's job.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from typing import Callable, Iterable

import orjson
from picows import WSListener, WSMsgType, WSTransport, ws_connect

from abidance.exchange.binance.backoff import Backoff
from abidance.exchange.binance.config import BinanceConfig

log = logging.getLogger("abidance.binance.streams")

MAX_URL_STREAMS_CHARS = 1800   # longer stream lists go by SUBSCRIBE, not in the URL


class _Listener(WSListener):
    """picows callbacks, forwarded to the owning connection."""

    def __init__(self, owner: "StreamConnection"):
        super().__init__()
        self.owner = owner
        self._fragments: list[bytes] = []

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.owner._on_connected(transport)

    def on_ws_frame(self, transport: WSTransport, frame) -> None:
        t = frame.msg_type
        if t == WSMsgType.TEXT or t == WSMsgType.BINARY:
            if frame.fin:
                self.owner._on_payload(frame.get_payload_as_bytes())
            else:
                self._fragments = [frame.get_payload_as_bytes()]
        elif t == WSMsgType.CONTINUATION:
            self._fragments.append(frame.get_payload_as_bytes())
            if frame.fin:
                payload, self._fragments = b"".join(self._fragments), []
                self.owner._on_payload(payload)
        elif t == WSMsgType.CLOSE:
            self.owner.last_close = f"{frame.get_close_code()} {frame.get_close_message() or b''!r}"
            transport.send_close(frame.get_close_code())
            transport.disconnect()
        # PING is answered by picows (enable_auto_pong); PONG needs nothing.

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.owner._on_disconnected()


class StreamConnection:
    _ids = itertools.count(1)

    def __init__(self, config: BinanceConfig, on_frame: Callable, on_state: Callable | None = None,
                 clock_ns: Callable[[], int] = time.time_ns, url_path: str = "/stream",
                 check_stale: bool = True):
        self.config = config
        self.conn_id = next(self._ids)
        self.on_frame = on_frame
        self.on_state = on_state or (lambda conn, state, reason: None)
        self.clock_ns = clock_ns
        self.url_path = url_path            # "/stream" (combined) or "/ws/<listenKey>"
        # A user-data stream may be silent for hours: it is checked by pings instead.
        self.check_stale = check_stale
        self.streams: set[str] = set()      # what we want
        self.active: set[str] = set()       # what the server has confirmed (or was in the URL)
        self.transport: WSTransport | None = None
        self.connected = asyncio.Event()
        self.backoff = Backoff(config.reconnect_initial_s, config.reconnect_max_s, config.reconnect_jitter)
        self.reconnects = 0
        self.connects = 0
        self.messages = 0
        self.last_message_mono = 0.0
        self.connected_at_mono = 0.0
        self.last_close = ""
        self.last_disconnect_reason = ""
        self._request_ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future] = {}
        self._sent_times: list[float] = []
        self._task: asyncio.Task | None = None
        self._watch: asyncio.Task | None = None
        self._stopping = False
        self._disconnected = asyncio.Event()
        self._request_lock = asyncio.Lock()

    # ---- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"streams-{self.conn_id}")

    async def stop(self) -> None:
        self._stopping = True
        if self.transport is not None:
            self.transport.disconnect()
        for task in (self._task, self._watch):
            if task is not None:
                task.cancel()
        for task in (self._task, self._watch):
            if task is not None:
                try:
                    await task
                except (asyncio.CancelledError, Exception):
                    pass
        self._task = self._watch = None

    def drop(self, reason: str) -> None:
        """Close the connection now; the run loop reconnects (used for stale streams and tests)."""
        if self.transport is not None and not self.transport.is_disconnected:
            log.warning("stream connection %d: reconnecting: %s", self.conn_id, reason)
            self.last_disconnect_reason = reason
            self.transport.disconnect()

    def _url(self) -> str:
        if self.url_path != "/stream":
            return self.config.ws_url + self.url_path
        names, size = [], 0
        for name in sorted(self.streams):
            size += len(name) + 1
            if size > MAX_URL_STREAMS_CHARS:
                break
            names.append(name)
        self._url_streams = set(names)
        return f"{self.config.ws_url}/stream?streams={'/'.join(names)}" if names else f"{self.config.ws_url}/stream"

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._stopping:
            url = self._url()
            self._disconnected.clear()
            try:
                # picows answers the server's pings (auto pong); staleness is checked by _watchdog.
                await ws_connect(lambda: _Listener(self), url, websocket_handshake_timeout=10,
                                 enable_auto_pong=True, max_frame_size=16 * 1024 * 1024,
                                 enable_auto_ping=not self.check_stale,
                                 auto_ping_idle_timeout=self.config.stale_after_s,
                                 auto_ping_reply_timeout=min(10.0, self.config.stale_after_s))
            except (OSError, asyncio.TimeoutError, Exception) as exc:   # noqa: BLE001 - any failure means retry
                if self._stopping:
                    return
                delay = self.backoff.next_delay()
                log.warning("stream connection %d: connect to %s failed (%s); retry in %.2fs",
                            self.conn_id, self.config.ws_url, type(exc).__name__, delay)
                self.on_state(self, "connect_failed", str(exc))
                await asyncio.sleep(delay)
                continue
            if self.url_path == "/stream":
                self.active = set(self._url_streams)
                rest = self.streams - self.active
                if rest:
                    loop.create_task(self._send_subscriptions("SUBSCRIBE", sorted(rest)))
            self._watch = loop.create_task(self._watchdog())
            await self._disconnected.wait()
            self._watch.cancel()
            if self._stopping:
                return
            self.reconnects += 1
            delay = self.backoff.next_delay()
            log.warning("stream connection %d lost (%s); reconnect #%d in %.2fs", self.conn_id,
                        self.last_disconnect_reason or self.last_close or "closed by peer", self.reconnects, delay)
            self.on_state(self, "disconnected", self.last_disconnect_reason or self.last_close)
            await asyncio.sleep(delay)

    async def _watchdog(self) -> None:
        cfg = self.config
        period = min(1.0, cfg.stale_after_s / 4)
        while True:
            await asyncio.sleep(period)
            now = time.monotonic()
            if self.check_stale and now - self.last_message_mono > cfg.stale_after_s:
                self.drop(f"no message for {cfg.stale_after_s:g}s (stale)")
            elif now - self.connected_at_mono > cfg.max_connection_age_s:
                self.drop(f"connection older than {cfg.max_connection_age_s:g}s (before the 24 h cut)")

    # ---- picows events -------------------------------------------------------------------

    def _on_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        self.connects += 1
        self.connected_at_mono = self.last_message_mono = time.monotonic()
        self.last_close = self.last_disconnect_reason = ""
        self.connected.set()
        log.info("stream connection %d up: %d streams", self.conn_id, len(self.streams))
        self.on_state(self, "connected", "")

    def _on_payload(self, payload: bytes) -> None:
        self.messages += 1
        self.last_message_mono = time.monotonic()
        if self.backoff.attempt and self.messages % 64 == 0:
            self.backoff.reset()     # data is flowing again: the next failure starts from scratch
        # Replies ({"result"..}, {"id"..}, {"error"..}) are rare: a two-byte look is enough.
        if len(payload) > 3 and payload[0] == 123:
            c = payload[2]
            if (c == 114 or c == 105 or (c == 101 and payload[3] != 34)) and self._on_reply(payload):
                return
        self.on_frame(self, payload, self.clock_ns())

    def _on_disconnected(self) -> None:
        self.transport = None
        self.active.clear()
        self.connected.clear()
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(ConnectionError("stream connection closed"))
        self._pending.clear()
        self._disconnected.set()

    # ---- subscriptions -------------------------------------------------------------------

    def _on_reply(self, payload: bytes) -> bool:
        try:
            msg = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return False
        if not isinstance(msg, dict) or "id" not in msg:
            return False
        fut = self._pending.pop(msg.get("id"), None)
        if fut is not None and not fut.done():
            if msg.get("error"):
                fut.set_exception(RuntimeError(f"stream request refused: {msg['error']}"))
            else:
                fut.set_result(msg.get("result"))
        return True

    async def _pace(self) -> None:
        # Binance allows 5 incoming messages a second per connection (pongs count too).
        per_s = self.config.max_messages_per_second
        now = time.monotonic()
        self._sent_times = [t for t in self._sent_times if now - t < 1.0]
        if len(self._sent_times) >= per_s:
            await asyncio.sleep(1.0 - (now - self._sent_times[0]) + 0.01)
        self._sent_times.append(time.monotonic())

    async def request(self, method: str, params: list | None = None, timeout: float = 10.0):
        """Send one request (SUBSCRIBE, UNSUBSCRIBE, LIST_SUBSCRIPTIONS) and await its reply."""
        async with self._request_lock:
            await self._pace()
            transport = self.transport
            if transport is None:
                raise ConnectionError("stream connection is not connected")
            req_id = next(self._request_ids)
            fut = asyncio.get_running_loop().create_future()
            self._pending[req_id] = fut
            body = {"method": method, "id": req_id}
            if params is not None:
                body["params"] = params
            transport.send(WSMsgType.TEXT, orjson.dumps(body))
        return await asyncio.wait_for(fut, timeout)

    async def _send_subscriptions(self, method: str, names: list[str]) -> None:
        step = self.config.subscribe_batch
        for i in range(0, len(names), step):
            batch = names[i:i + step]
            try:
                await self.request(method, batch)
            except (ConnectionError, asyncio.TimeoutError, RuntimeError) as exc:
                # On a reconnect the whole set is sent again, so nothing is lost.
                log.warning("stream connection %d: %s %d streams failed: %s", self.conn_id, method, len(batch), exc)
                return
            if method == "SUBSCRIBE":
                self.active.update(batch)
            else:
                self.active.difference_update(batch)

    async def subscribe(self, names: Iterable[str]) -> None:
        new = [n for n in names if n not in self.streams]
        self.streams.update(new)
        if new and self.transport is not None:
            await self._send_subscriptions("SUBSCRIBE", sorted(new))

    async def unsubscribe(self, names: Iterable[str]) -> None:
        gone = [n for n in names if n in self.streams]
        self.streams.difference_update(gone)
        if gone and self.transport is not None:
            await self._send_subscriptions("UNSUBSCRIBE", sorted(gone))

    async def list_subscriptions(self) -> list[str]:
        return list(await self.request("LIST_SUBSCRIPTIONS"))


class MarketStreams:
    """All market streams, spread over connections of at most max_streams_per_connection."""

    def __init__(self, config: BinanceConfig, on_frame: Callable, on_state: Callable | None = None,
                 clock_ns: Callable[[], int] = time.time_ns):
        self.config = config
        self.on_frame = on_frame
        self.on_state = on_state
        self.clock_ns = clock_ns
        self.connections: list[StreamConnection] = []
        self._started = False

    def connection_of(self, name: str) -> StreamConnection | None:
        for conn in self.connections:
            if name in conn.streams:
                return conn
        return None

    async def subscribe(self, names: Iterable[str]) -> None:
        limit = self.config.max_streams_per_connection
        todo = [n for n in dict.fromkeys(names) if self.connection_of(n) is None]
        for conn in self.connections:
            room = limit - len(conn.streams)
            if room > 0 and todo:
                take, todo = todo[:room], todo[room:]
                await conn.subscribe(take)
        while todo:
            conn = StreamConnection(self.config, self.on_frame, self.on_state, self.clock_ns)
            take, todo = todo[:limit], todo[limit:]
            conn.streams.update(take)
            self.connections.append(conn)
            if self._started:
                conn.start()

    async def unsubscribe(self, names: Iterable[str]) -> None:
        for conn in list(self.connections):
            mine = [n for n in names if n in conn.streams]
            if mine:
                await conn.unsubscribe(mine)
            if not conn.streams:
                await conn.stop()
                self.connections.remove(conn)

    def start(self) -> None:
        self._started = True
        for conn in self.connections:
            conn.start()

    async def stop(self) -> None:
        self._started = False
        await asyncio.gather(*(conn.stop() for conn in self.connections))

    async def wait_connected(self, timeout: float = 10.0) -> None:
        await asyncio.wait_for(asyncio.gather(*(c.connected.wait() for c in self.connections)), timeout)

    @property
    def reconnects(self) -> int:
        return sum(c.reconnects for c in self.connections)
