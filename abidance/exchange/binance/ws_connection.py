"""One WebSocket connection (picows) that stays up: reconnects with backoff, renews before the 24 h cut.

The base of the market-stream connections (streams.py) and the WebSocket API connection
(ws_api.py). It reconnects by itself with exponential backoff and jitter when the server
drops it, when no message has arrived for `stale_after_s` (where silence means trouble),
and at `max_connection_age_s`, before Binance's 24-hour cut. Server pings are answered by
picows; a connection that may be silent for hours probes with its own pings instead.

Subclasses give the URL (`_url`), what to do once connected (`_after_connect`, a task) and
with each message (`_on_payload`).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from typing import Callable

from picows import WSListener, WSMsgType, WSTransport, ws_connect

from abidance.exchange.binance.backoff import Backoff
from abidance.exchange.binance.config import BinanceConfig

log = logging.getLogger("abidance.binance.ws")

MAX_FRAME_BYTES = 16 * 1024 * 1024


class _Listener(WSListener):
    """picows callbacks, forwarded to the owning connection."""

    def __init__(self, owner: "WsConnection"):
        super().__init__()
        self.owner = owner
        self._fragments: list[bytes] = []

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.owner._on_connected(transport)

    def on_ws_frame(self, transport: WSTransport, frame) -> None:
        t = frame.msg_type
        if t == WSMsgType.TEXT or t == WSMsgType.BINARY:
            if frame.fin:
                self.owner._received(frame.get_payload_as_bytes())
            else:
                self._fragments = [frame.get_payload_as_bytes()]
        elif t == WSMsgType.CONTINUATION:
            self._fragments.append(frame.get_payload_as_bytes())
            if frame.fin:
                payload, self._fragments = b"".join(self._fragments), []
                self.owner._received(payload)
        elif t == WSMsgType.CLOSE:
            self.owner.last_close = f"{frame.get_close_code()} {frame.get_close_message() or b''!r}"
            transport.send_close(frame.get_close_code())
            transport.disconnect()
        # PING is answered by picows (enable_auto_pong); PONG needs nothing.

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.owner._on_disconnected()


class WsConnection:
    _ids = itertools.count(1)
    kind = "websocket"          # for logs

    def __init__(self, config: BinanceConfig, on_state: Callable | None = None, check_stale: bool = True):
        self.config = config
        self.conn_id = next(self._ids)
        self.on_state = on_state or (lambda conn, state, reason: None)
        self.check_stale = check_stale
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
        self._task: asyncio.Task | None = None
        self._watch: asyncio.Task | None = None
        self._stopping = False
        self._disconnected = asyncio.Event()

    # ---- for subclasses ------------------------------------------------------------------

    def _url(self) -> str:
        raise NotImplementedError

    def _after_connect(self) -> None:
        """Called on the loop right after each connect (start tasks here, do not block)."""

    def _on_payload(self, payload: bytes) -> None:
        raise NotImplementedError

    def _on_lost(self) -> None:
        """Called once the connection is gone (fail what waited on it)."""

    # ---- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"{self.kind}-{self.conn_id}")

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
        """Close the connection now; the run loop reconnects (stale or old connections, tests)."""
        if self.transport is not None and not self.transport.is_disconnected:
            log.warning("%s connection %d: reconnecting: %s", self.kind, self.conn_id, reason)
            self.last_disconnect_reason = reason
            self.transport.disconnect()

    @property
    def is_connected(self) -> bool:
        return self.transport is not None and not self.transport.is_disconnected

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._stopping:
            url = self._url()
            self._disconnected.clear()
            try:
                # picows answers the server's pings (auto pong); staleness is checked by _watchdog.
                await ws_connect(lambda: _Listener(self), url, websocket_handshake_timeout=10,
                                 enable_auto_pong=True, max_frame_size=MAX_FRAME_BYTES,
                                 enable_auto_ping=not self.check_stale,
                                 auto_ping_idle_timeout=self.config.stale_after_s,
                                 auto_ping_reply_timeout=min(10.0, self.config.stale_after_s))
            except (OSError, asyncio.TimeoutError, Exception) as exc:   # noqa: BLE001 - any failure means retry
                if self._stopping:
                    return
                delay = self.backoff.next_delay()
                log.warning("%s connection %d: connect to %s failed (%s); retry in %.2fs", self.kind,
                            self.conn_id, url.split("?")[0], type(exc).__name__, delay)
                self.on_state(self, "connect_failed", str(exc))
                await asyncio.sleep(delay)
                continue
            self._after_connect()
            self._watch = loop.create_task(self._watchdog())
            await self._disconnected.wait()
            self._watch.cancel()
            if self._stopping:
                return
            self.reconnects += 1
            delay = self.backoff.next_delay()
            log.warning("%s connection %d lost (%s); reconnect #%d in %.2fs", self.kind, self.conn_id,
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
                self.renew()

    def renew(self) -> None:
        """Before the 24-hour cut: by default reconnect (subclasses may open the new one first)."""
        self.drop(f"connection older than {self.config.max_connection_age_s:g}s (before the 24 h cut)")

    # ---- picows events -------------------------------------------------------------------

    def _on_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        self.connects += 1
        self.connected_at_mono = self.last_message_mono = time.monotonic()
        self.last_close = self.last_disconnect_reason = ""
        self.connected.set()
        log.info("%s connection %d up", self.kind, self.conn_id)
        self.on_state(self, "connected", "")

    def _received(self, payload: bytes) -> None:
        self.messages += 1
        self.last_message_mono = time.monotonic()
        if self.backoff.attempt and self.messages % 64 == 0:
            self.backoff.reset()     # data is flowing again: the next failure starts from scratch
        self._on_payload(payload)

    def _on_disconnected(self) -> None:
        self.transport = None
        self.connected.clear()
        self._on_lost()
        self._disconnected.set()
