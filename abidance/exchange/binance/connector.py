"""BinanceConnector: Binance's wire protocol in, internal events out on the bus.

    market streams (picows) -> MarketParser (Cython) -> bus topics
    REST (BinanceRest)      -> instruments, depth snapshots (on the data engine's request), reconciliation
                               (and orders when binance.order_transport = "rest")
    WebSocket API (picows)  -> user data: order / balance / order-list events; orders (by default)

Events: TradeEvent on TRADES, AggTradeEvent on AGG_TRADES, DepthDiffEvent on
DEPTH_DIFFS, BookTickerEvent on BOOK_TICKERS, KlineEvent on KLINES; a REST depth snapshot
on BOOK_SNAPSHOTS for each BOOK_REQUESTS of the data engine, which keeps the books
(abidance/data/books.py); DepthGap on DEPTH_GAPS when a stream connection carrying depth
reconnects (diffs may have been missed); ConnectorHealth on CONNECTOR_HEALTH every
health_interval_s (its book figures from BOOK_STATUS).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Iterable

from abidance._core.wire import (AggTradeEvent, BookTickerEvent, DepthDiffEvent, InstrumentCodec, KlineEvent,
                                 MarketParser, TradeEvent)
from abidance.core import topics
from abidance.core.bus import MessageBus
from abidance.core.events import Alert, ConnectorHealth, DepthGap
from abidance.exchange.binance import partial_depth
from abidance.exchange.binance.book_sync import SnapshotFetcher
from abidance.exchange.binance.config import BinanceConfig
from abidance.exchange.binance.handover import hand_over
from abidance.exchange.binance.health import HealthBook
from abidance.exchange.binance.streams import MarketStreams, StreamConnection
from abidance.exchange.binance.user_stream import UserDataStream
from abidance.exchange.binance.ws_api import WsApiConnection

log = logging.getLogger("abidance.binance")

CHANNELS = ("trade", "aggTrade", "depth", "bookTicker")
PARTIAL_DEPTH_CHANNELS = {"depth5": 5, "depth10": 10, "depth20": 20}     # on their own connections
KLINE_INTERVALS = {"1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w", "1M"}
DROP_LOG_EVERY = 1000       # after the first few, log one malformed message in this many


class BinanceConnector:
    def __init__(self, config: BinanceConfig, bus: MessageBus, rest, clock_ns=time.time_ns):
        self.config = config
        self.bus = bus
        self.rest = rest
        self.clock_ns = clock_ns
        self.instruments: dict = {}
        self.parser = MarketParser()
        self.snapshots = SnapshotFetcher(bus, self.parser.codec, rest.depth if rest is not None else None, clock_ns)
        self.books_ready: dict[str, bool] = {}       # symbol -> ready, from the data engine's BOOK_STATUS
        self.book_resyncs = 0
        self.health = HealthBook()
        self.streams = MarketStreams(config, self._on_frame, self._on_stream_state, clock_ns)
        self.streams.on_renew = self._renew
        # Partial-depth streams (Binance's top-N snapshots) on their own connections: the hot
        # path above never looks at them.
        self.partial = MarketStreams(config, self._on_partial_frame, self._on_stream_state, clock_ns)
        self.partial_dropped = 0
        self._handovers: set[asyncio.Task] = set()
        self.user: UserDataStream | None = None
        self.ws_api: WsApiConnection | None = None
        self._health_task: asyncio.Task | None = None
        # The one health report per interval: taking a snapshot resets the per-stream windows, so
        # everyone else (the node's status line, chat) reads this one instead of taking their own.
        self.last_health: ConnectorHealth | None = None
        self._depth_streams: dict[str, str] = {}       # stream name -> symbol
        self._drops_logged = 0

    # ---- lifecycle -------------------------------------------------------------------

    async def start(self, symbols: Iterable[str], channels: Iterable[str] = ("trade", "depth"),
                    kline_intervals: Iterable[str] = (), user_data: bool = False) -> None:
        if not self.instruments:
            self.use_instruments(await self.rest.load_instruments())
        self.bus.subscribe(topics.BOOK_STATUS, self._on_book_status)
        self.snapshots.start()
        await self.subscribe(symbols, channels, kline_intervals)
        self.streams.start()
        self.partial.start()
        self._health_task = asyncio.get_running_loop().create_task(self._publish_health(), name="connector-health")
        if user_data:
            await self.start_user_data()

    async def start_user_data(self, timeout: float | None = None) -> None:
        """Subscribe to user data and wait for it (again after a timeout: the stream goes on retrying
        in the background). A timeout raises the subscription's last error when there was one, so
        that a caller can tell a refused key from a venue that is not answering yet."""
        if self.user is None:
            self.user = UserDataStream(self.config, self.rest, self.bus, self.api(), self.clock_ns)
        try:
            await self.user.start(timeout)
        except asyncio.TimeoutError:
            if self.user.last_exception is not None:
                raise self.user.last_exception from None
            raise

    def api(self) -> WsApiConnection:
        """The WebSocket API connection (user data, and orders when binance.order_transport = "ws_api"),
        made on first use; it shares the REST client's credentials, clock offset and request budget."""
        if self.ws_api is None:
            rest = self.rest
            self.ws_api = WsApiConnection(self.config, rest.credentials, rest.limiter, rest.clock,
                                          time_offset_ms=lambda: rest.time_offset_ms,
                                          on_state=self._on_api_state)
            self.ws_api.start()
        return self.ws_api

    def _on_api_state(self, conn, state: str, reason: str) -> None:
        if state == "disconnected":
            self.bus.publish(topics.ALERTS, Alert("warning", "binance.ws_api", "ws_api_disconnected",
                                                  f"WebSocket API connection lost: {reason or 'closed'}; "
                                                  "reconnecting (user data is re-subscribed and reconciled)",
                                                  self.clock_ns()))

    def use_instruments(self, instruments: dict) -> None:
        """The symbols the parser understands, with their tick and step."""
        self.instruments = instruments
        for inst in instruments.values():
            self.parser.add(InstrumentCodec(inst.symbol, inst.price, inst.qty))

    async def stop(self) -> None:
        if self._health_task is not None:
            self._health_task.cancel()
        self.snapshots.stop()
        self.bus.unsubscribe(topics.BOOK_STATUS, self._on_book_status)
        for task in list(self._handovers):
            task.cancel()
        await self.streams.stop()
        await self.partial.stop()
        if self.user is not None:
            await self.user.stop()
        if self.ws_api is not None:
            await self.ws_api.stop()

    # ---- subscriptions ---------------------------------------------------------------

    def stream_names(self, symbol: str, channels: Iterable[str], kline_intervals: Iterable[str] = ()) -> list[str]:
        s = symbol.lower()
        names = []
        for ch in channels:
            if ch in PARTIAL_DEPTH_CHANNELS:
                continue
            if ch not in CHANNELS:
                raise ValueError(f"unknown channel {ch!r}; known: {', '.join(CHANNELS + tuple(PARTIAL_DEPTH_CHANNELS))}")
            names.append(f"{s}@depth@{self.config.depth_stream_speed}" if ch == "depth" else f"{s}@{ch}")
        for interval in kline_intervals:
            if interval not in KLINE_INTERVALS:
                raise ValueError(f"unknown kline interval {interval!r}")
            names.append(f"{s}@kline_{interval}")
        return names

    async def subscribe(self, symbols: Iterable[str], channels: Iterable[str] = ("trade", "depth"),
                        kline_intervals: Iterable[str] = ()) -> None:
        names, partial = [], []
        for symbol in symbols:
            inst = self.instruments.get(symbol)
            if inst is None:
                raise ValueError(f"unknown symbol {symbol!r}: not in exchangeInfo")
            sym_names = self.stream_names(symbol, channels, kline_intervals)
            names += sym_names
            partial += [partial_depth.stream_name(symbol, PARTIAL_DEPTH_CHANNELS[ch], self.config.depth_stream_speed)
                        for ch in channels if ch in PARTIAL_DEPTH_CHANNELS]
            if "depth" in channels and symbol not in self.snapshots.symbols:
                self.snapshots.add_symbol(symbol)
                self.books_ready.setdefault(symbol, False)
                self._depth_streams[sym_names[[c for c in channels if c in CHANNELS].index("depth")]] = symbol
        await self.streams.subscribe(names)
        if partial:
            await self.partial.subscribe(partial)

    async def unsubscribe(self, symbols: Iterable[str], channels: Iterable[str] = ("trade", "depth")) -> None:
        names = []
        for symbol in symbols:
            names += self.stream_names(symbol, channels)
            if "depth" in channels and symbol in self.snapshots.symbols:
                self.snapshots.symbols.discard(symbol)
                self.books_ready.pop(symbol, None)
        await self.streams.unsubscribe(names)

    # ---- the hot path ----------------------------------------------------------------

    def _on_frame(self, conn: StreamConnection, payload: bytes, ts_init: int) -> None:
        self._dispatch(conn, self.parser.parse(payload, ts_init), ts_init)

    def _dispatch(self, conn: StreamConnection, ev, ts_init: int) -> None:
        t = type(ev)
        if t is DepthDiffEvent:
            self.snapshots.on_diff(ev.symbol)
            self.bus.publish(topics.DEPTH_DIFFS, ev)
            self.health.stats(ev.symbol + "@depth").record(ts_init, ts_init - ev.ts_event)
        elif t is TradeEvent:
            self.bus.publish(topics.TRADES, ev)
            self.health.stats(ev.symbol + "@trade").record(ts_init, ts_init - ev.ts_event)
        elif t is BookTickerEvent:
            self.bus.publish(topics.BOOK_TICKERS, ev)
            self.health.stats(ev.symbol + "@bookTicker").record(ts_init, ts_init - ev.ts_event)
        elif t is AggTradeEvent:
            self.bus.publish(topics.AGG_TRADES, ev)
            self.health.stats(ev.symbol + "@aggTrade").record(ts_init, ts_init - ev.ts_event)
        elif t is KlineEvent:
            self.bus.publish(topics.KLINES, ev)
            self.health.stats(ev.symbol + "@kline").record(ts_init, ts_init - ev.ts_event)
        elif ev is None:
            self._log_drop()

    def _on_partial_frame(self, conn: StreamConnection, payload: bytes, ts_init: int) -> None:
        try:
            snap = partial_depth.parse(payload, self.parser.codec, ts_init)
        except partial_depth.PartialDepthError as exc:
            self.partial_dropped += 1
            if self.partial_dropped <= 10 or self.partial_dropped % DROP_LOG_EVERY == 0:
                log.warning("partial-depth message dropped (%d so far): %s", self.partial_dropped, exc)
            return
        self.bus.publish(topics.PARTIAL_DEPTH, snap)
        self.health.stats(snap.symbol + "@depthN").record(ts_init, 0)

    def _log_drop(self) -> None:
        self._drops_logged += 1
        if self._drops_logged <= 10 or self._drops_logged % DROP_LOG_EVERY == 0:
            log.warning("market message dropped (%d so far): %s", self.parser.dropped, self.parser.last_error)

    # ---- state changes ---------------------------------------------------------------

    def _on_stream_state(self, conn: StreamConnection, state: str, reason: str) -> None:
        if state == "disconnected":
            self.bus.publish(topics.ALERTS, Alert("warning", "binance.streams", "stream_disconnected",
                                                  f"stream connection {conn.conn_id} lost: {reason or 'closed'}",
                                                  self.clock_ns()))
        if state in ("connected", "disconnected"):
            # Diffs may have been missed while the connection was down: resync its books.
            for name in conn.streams:
                symbol = self._depth_streams.get(name)
                if symbol is not None and symbol in self.snapshots.symbols and conn.connects > 1:
                    self.bus.publish(topics.DEPTH_GAPS, DepthGap(symbol, f"stream connection {state}",
                                                                 self.clock_ns()))

    def _renew(self, conn: StreamConnection) -> None:
        """Before the 24-hour cut: make-before-break (handover.py), so the books need no resync."""
        task = asyncio.get_running_loop().create_task(
            hand_over(self.streams, conn, self.parser.parse, self._dispatch), name=f"handover-{conn.conn_id}")
        self._handovers.add(task)
        task.add_done_callback(self._handovers.discard)

    def _on_book_status(self, change) -> None:
        if change.symbol in self.books_ready:
            if self.books_ready[change.symbol] and not change.ready:
                self.book_resyncs += 1
            self.books_ready[change.symbol] = change.ready

    # ---- health ----------------------------------------------------------------------

    def health_snapshot(self) -> ConnectorHealth:
        conns = self.streams.connections
        limiter = getattr(self.rest, "limiter", None)
        return ConnectorHealth(
            venue=self.config.venue, connections=len(conns), connected=sum(1 for c in conns if c.transport is not None),
            reconnects=self.streams.reconnects, resyncs=self.book_resyncs,
            dropped=dict(self.parser.drop_counts), books_ready=sum(self.books_ready.values()),
            books_total=len(self.books_ready), used_weight=limiter.used_weight if limiter is not None else 0,
            streams=self.health.take(self.clock_ns()), ts_event=self.clock_ns(),
        )

    async def _publish_health(self) -> None:
        while True:
            await asyncio.sleep(self.config.health_interval_s)
            self.last_health = self.health_snapshot()
            self.bus.publish(topics.CONNECTOR_HEALTH, self.last_health)
