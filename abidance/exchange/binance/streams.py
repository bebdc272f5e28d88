"""Market-stream WebSocket connections (picows): subscribe, stay connected, stay fresh.

`StreamConnection` is one combined-stream connection that reconnects by itself
(ws_connection.py: backoff and jitter, stale streams, before Binance's 24-hour cut).
Subscription changes are sent as SUBSCRIBE/UNSUBSCRIBE requests paced under Binance's 5
messages a second.
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
from picows import WSMsgType

from abidance.exchange.binance.config import BinanceConfig
from abidance.exchange.binance.ws_connection import WsConnection

log = logging.getLogger("abidance.binance.streams")

MAX_URL_STREAMS_CHARS = 1800   # longer stream lists go by SUBSCRIBE, not in the URL


class StreamConnection(WsConnection):
    kind = "stream"

    def __init__(self, config: BinanceConfig, on_frame: Callable, on_state: Callable | None = None,
                 clock_ns: Callable[[], int] = time.time_ns):
        super().__init__(config, on_state, check_stale=True)
        self.on_frame = on_frame
        self.clock_ns = clock_ns
        self.streams: set[str] = set()      # what we want
        self.active: set[str] = set()       # what the server has confirmed (or was in the URL)
        self._url_streams: set[str] = set()
        self._request_ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future] = {}
        self._sent_times: list[float] = []
        self._request_lock = asyncio.Lock()
        self.on_renew: Callable[["StreamConnection"], None] | None = None
        self.renewing = False

    def _url(self) -> str:
        names, size = [], 0
        for name in sorted(self.streams):
            size += len(name) + 1
            if size > MAX_URL_STREAMS_CHARS:
                break
            names.append(name)
        self._url_streams = set(names)
        return f"{self.config.ws_url}/stream?streams={'/'.join(names)}" if names else f"{self.config.ws_url}/stream"

    def _after_connect(self) -> None:
        self.active = set(self._url_streams)
        rest = self.streams - self.active
        if rest:
            asyncio.get_running_loop().create_task(self._send_subscriptions("SUBSCRIBE", sorted(rest)))

    def _on_payload(self, payload: bytes) -> None:
        # Replies ({"result"..}, {"id"..}, {"error"..}) are rare: a two-byte look is enough.
        if len(payload) > 3 and payload[0] == 123:
            c = payload[2]
            if (c == 114 or c == 105 or (c == 101 and payload[3] != 34)) and self._on_reply(payload):
                return
        self.on_frame(self, payload, self.clock_ns())

    def renew(self) -> None:
        """Before the 24-hour cut: hand over to a fresh connection first when someone can
        (MarketStreams.on_renew, the connector's make-before-break), else reconnect."""
        if self.on_renew is not None and not self.renewing:
            self.renewing = True
            self.on_renew(self)
        elif self.on_renew is None:
            super().renew()

    def _on_lost(self) -> None:
        self.active.clear()
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(ConnectionError("stream connection closed"))
        self._pending.clear()

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
        self.on_renew: Callable[[StreamConnection], None] | None = None   # make-before-break (connector)
        self.handovers = 0
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
            take, todo = todo[:limit], todo[limit:]
            conn = self.new_connection(take)
            self.connections.append(conn)
            if self._started:
                conn.start()

    def new_connection(self, streams: Iterable[str], on_frame: Callable | None = None) -> StreamConnection:
        conn = StreamConnection(self.config, on_frame or self.on_frame, self.on_state, self.clock_ns)
        conn.streams.update(streams)
        conn.on_renew = self.on_renew
        return conn

    def replace(self, old: StreamConnection, new: StreamConnection) -> None:
        """`new` takes `old`'s place (after a handover)."""
        self.connections[self.connections.index(old)] = new
        self.handovers += 1

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
