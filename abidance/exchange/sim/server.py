"""`abidance sim`: the simulator's process — REST (aiohttp) and streams (picows) on loopback.

SimVenue wires the exchange, its market drivers, aggregates, rate limits and faults;
SimServer runs the periodic work (market steps, depth flushes, kline and ticker pushes) and
the two servers, and stops them cleanly. The stream port also serves the WebSocket API
(`/ws-api/v3`, ws_api.py): on Binance it is another host, here another path.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from dataclasses import asdict
from decimal import Decimal

import orjson
from aiohttp import web
from picows import WSAutoPingStrategy, ws_create_server

from abidance.exchange.sim import market as mkt
from abidance.exchange.sim.aggregates import KlineAggregator, Ticker24h
from abidance.exchange.sim.clock import SimClock
from abidance.exchange.sim.config import DEMO_API_KEY, DEMO_API_SECRET, MarketConfig, SimConfig
from abidance.exchange.sim.exchange import SimExchange
from abidance.exchange.sim.faults import Faults
from abidance.exchange.sim.limits import RateLimiter
from abidance.exchange.sim.publisher import StreamPublisher
from abidance.exchange.sim.rest import build_app
from abidance.exchange.sim.streams import WS_API_PATH, StreamHub, listener_factory
from abidance.exchange.sim.ws_api import ApiSession
from abidance.exchange.sim.symbols import SymbolSpec, default_symbols

log = logging.getLogger("abidance.sim")

# Synthetic start prices for the default symbols (any other symbol: start_price in config).
DEFAULT_START = {"BTCUSDT": Decimal("65000"), "ETHUSDT": Decimal("3000"), "BNBUSDT": Decimal("600")}
PING_INTERVAL_S = 20       # Binance pings every ~20 s ...
# ... and drops a client that has not answered within a minute. picows requires the reply
# timeout not to exceed the ping interval, so here a client has 20 s: stricter, never looser.
PONG_TIMEOUT_S = 20
HISTORY_BARS = 1000


def symbol_specs(markets: list[MarketConfig]) -> list[SymbolSpec]:
    known = {s.symbol: s for s in default_symbols()}
    specs = []
    for m in markets:
        if m.symbol not in known:
            raise ValueError(f"sim.markets: symbol {m.symbol!r} is not one the simulator lists "
                             f"(known: {', '.join(sorted(known))})")
        specs.append(known[m.symbol])
    return specs


def make_path(m: MarketConfig, spec: SymbolSpec, seed: int, step_ms: int):
    if m.source == "synthetic":
        start = m.start_price or DEFAULT_START.get(m.symbol)
        if start is None:
            raise ValueError(f"sim.markets: {m.symbol} needs start_price for a synthetic market")
        return mkt.SyntheticPath(seed, mkt.to_grid(start, spec.tick_size), vol_bps_per_sqrt_s=3.0, step_ms=step_ms)
    if m.source == "candles":
        frame = mkt.load_candles(m.file)
        # Keep the last HISTORY_BARS bars before the start as history when the file has them.
        start = min(HISTORY_BARS, len(frame) // 2)
        return mkt.CandleReplayPath(frame, tick_size=spec.tick_size, step_size=spec.step_size, start_index=start,
                                    sim_start_ms=None)
    frame = mkt.load_trades(m.file)
    return mkt.TradeReplayPath(frame, tick_size=spec.tick_size, step_size=spec.step_size)


def level_sizes(spec: SymbolSpec, path) -> tuple[int, int]:
    """Market-maker size per level: about 100 to 5,000 in quote value, in steps."""
    price = Decimal(getattr(path, "start_price_ticks", 0) or 0) * spec.tick_size
    if price <= 0:
        return (1, 100)
    lo = max(1, int(Decimal(100) / price / spec.step_size))
    return lo, max(lo, int(Decimal(5000) / price / spec.step_size))


class SimVenue:
    """Everything the REST and stream layers answer from."""

    def __init__(self, cfg: SimConfig):
        self.cfg = cfg
        replay = [m for m in cfg.markets if m.source != "synthetic"]
        self.faults = Faults(cfg.faults)
        self.limiter = RateLimiter(cfg.limits)
        self.ws_api_refused_until = 0.0     # monotonic s: an outage of the WebSocket API (admin, tests)
        specs = symbol_specs(cfg.markets)
        self.symbols = [s.symbol for s in specs]
        self.hub = StreamHub(s.symbol for s in specs)
        paths = {m.symbol: make_path(m, spec, cfg.seed + i, cfg.step_ms)
                 for i, (m, spec) in enumerate(zip(cfg.markets, specs))}
        # A replay runs the market clock at the data's own time; otherwise it is the wall clock.
        start = min((p.start_ms for m, p in paths.items() if m in {r.symbol for r in replay}), default=None)
        self.clock = SimClock(cfg.speed, start if start is not None else
                              (None if cfg.speed == 1.0 else time.time_ns() // 1_000_000))
        self.klines = {s.symbol: KlineAggregator(s.symbol, clock_ms=self.clock.now_ms) for s in specs}
        self.tickers = {s.symbol: Ticker24h(s.symbol, book_top=self._top_of(s.symbol)) for s in specs}
        self.publisher = StreamPublisher(self.hub, self.clock.now_ms, self.faults,
                                         {s: [self.klines[s], self.tickers[s]] for s in self.klines})
        self.exchange = SimExchange(specs, self.clock.now_ms, self.publisher, seed=cfg.seed,
                                    faults=self.faults)
        self.account = self.exchange.create_account(cfg.api_key, cfg.api_secret, cfg.balances)
        self.paused = False          # a frozen market (admin/tests): no steps, the book holds still
        self.drivers = []
        for i, spec in enumerate(specs):
            driver = mkt.MarketDriver(self.exchange, spec.symbol, paths[spec.symbol], rng_seed=cfg.seed + 100 + i,
                                      level_qty_steps=level_sizes(spec, paths[spec.symbol]))
            driver.seed_history(self.klines[spec.symbol], self.tickers[spec.symbol], n_bars=HISTORY_BARS,
                                end_ms=self.clock.now_ms())
            self.drivers.append(driver)

    def _top_of(self, symbol: str):
        def top():
            t = self.exchange.book_ticker(symbol)
            return t["bidPrice"], t["bidQty"], t["askPrice"], t["askQty"]
        return top

    def wall_ms(self) -> int:
        """The server clock for signatures and /api/v3/time (with any injected skew)."""
        return time.time_ns() // 1_000_000 + self.faults.settings.clock_skew_ms

    def open_api_session(self, query: dict) -> ApiSession | None:
        """A WebSocket API session for an upgrade request, or None (404) during an outage."""
        if time.monotonic() < self.ws_api_refused_until:
            return None
        flags = query.get("returnRateLimits", ["true"])
        return ApiSession(self, return_rate_limits=flags[-1] != "false")

    def step_market(self) -> None:
        if self.paused:
            return
        now = self.clock.now_ms()
        for driver in self.drivers:
            driver.step(now)


class SimServer:
    def __init__(self, cfg: SimConfig):
        self.cfg = cfg
        self.venue = SimVenue(cfg)
        self.rest_port: int | None = None
        self.ws_port: int | None = None
        self._runner: web.AppRunner | None = None
        self._ws_server = None
        self._tasks: list[asyncio.Task] = []

    @property
    def rest_url(self) -> str:
        return f"http://{self.cfg.host}:{self.rest_port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.cfg.host}:{self.ws_port}"

    @property
    def ws_api_url(self) -> str:
        return f"ws://{self.cfg.host}:{self.ws_port}{WS_API_PATH}"

    async def start(self) -> None:
        venue = self.venue
        app = build_app(venue, admin_routes(self))
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.cfg.host, self.cfg.rest_port)
        await site.start()
        self.rest_port = site._server.sockets[0].getsockname()[1]
        self._ws_server = await ws_create_server(
            listener_factory(venue.hub, venue.open_api_session), self.cfg.host, self.cfg.ws_port,
            enable_auto_ping=True, auto_ping_idle_timeout=PING_INTERVAL_S, auto_ping_reply_timeout=PONG_TIMEOUT_S,
            auto_ping_strategy=WSAutoPingStrategy.PING_PERIODICALLY, websocket_handshake_timeout=5)
        self.ws_port = self._ws_server.sockets[0].getsockname()[1]
        venue.hub.max_connection_s = venue.faults.settings.max_connection_s
        if venue.faults.settings.stream_stall_s > 0:
            venue.faults.stall(venue.faults.settings.stream_stall_s * venue.clock.speed, venue.clock.now_ms())
        venue.step_market()
        self._tasks = [asyncio.create_task(coro, name=name) for name, coro in (
            ("market", self._every(self.cfg.step_ms / 1000 / self.cfg.speed, venue.step_market)),
            ("depth@100ms", self._every(0.1, lambda: self._flush(fast=True))),
            ("depth@1000ms", self._every(1.0, lambda: self._flush(fast=False))),
            ("klines", self._every(1.0, self._push_klines_and_tickers)),
        )]
        log.info("abidance sim: REST %s  streams %s  (%d symbols, speed %gx, seed %d)", self.rest_url, self.ws_url,
                 len(venue.drivers), self.cfg.speed, self.cfg.seed)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        self.venue.hub.close_all(b"server shutting down")
        if self._ws_server is not None:
            self._ws_server.close()
            await self._ws_server.wait_closed()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _every(self, seconds: float, fn) -> None:
        seconds = max(seconds, 0.005)
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            next_at += seconds
            try:
                fn()
            except Exception:   # one bad step must not stop the market: log and carry on
                log.exception("sim periodic task failed")
            await asyncio.sleep(max(0.0, next_at - loop.time()))

    def _flush(self, fast: bool) -> None:
        venue = self.venue
        if venue.faults.streams_stalled(venue.clock.now_ms()):
            return
        venue.publisher.flush_depth(slow=not fast)
        venue.publisher.publish_partial_depth(venue.exchange, venue.symbols, fast=fast)

    def _push_klines_and_tickers(self) -> None:
        venue, hub = self.venue, self.venue.hub
        now = venue.clock.now_ms()
        if venue.faults.streams_stalled(now):
            return
        for symbol, agg in venue.klines.items():
            low = symbol.lower()
            agg.advance(now)
            for interval, k in agg.drain_closed():
                if hub.has_subscribers(f"{low}@kline_{interval}"):
                    hub.publish(f"{low}@kline_{interval}", {"e": "kline", "E": now, "s": symbol, "k": k})
            for interval in agg.intervals:
                name = f"{low}@kline_{interval}"
                if hub.has_subscribers(name):
                    k = agg.current(interval, now)
                    if k is not None:
                        hub.publish(name, {"e": "kline", "E": now, "s": symbol, "k": k})
            if hub.has_subscribers(f"{low}@ticker"):
                hub.publish(f"{low}@ticker", ticker_event(venue.tickers[symbol].snapshot(now), now))


def ticker_event(t: dict, now: int) -> dict:
    """REST 24hr ticker -> the `<s>@ticker` stream payload."""
    return {"e": "24hrTicker", "E": now, "s": t["symbol"], "p": t["priceChange"], "P": t["priceChangePercent"],
            "w": t["weightedAvgPrice"], "x": t["prevClosePrice"], "c": t["lastPrice"], "Q": t["lastQty"],
            "b": t["bidPrice"], "B": t["bidQty"], "a": t["askPrice"], "A": t["askQty"], "o": t["openPrice"],
            "h": t["highPrice"], "l": t["lowPrice"], "v": t["volume"], "q": t["quoteVolume"], "O": t["openTime"],
            "C": t["closeTime"], "F": t["firstId"], "L": t["lastId"], "n": t["count"]}


def admin_routes(server: SimServer):
    """Loopback-only control: faults, forced disconnects, stream stalls."""
    venue = server.venue

    async def guard(request: web.Request):
        if request.remote not in ("127.0.0.1", "::1"):
            raise web.HTTPForbidden(text="admin endpoints answer on loopback only")

    async def get_faults(request: web.Request) -> web.Response:
        await guard(request)
        return web.json_response(asdict(venue.faults.settings))

    async def set_faults(request: web.Request) -> web.Response:
        await guard(request)
        try:
            changes = orjson.loads(await request.read())
            if not isinstance(changes, dict):
                raise ValueError("body must be a JSON object of fault settings")
            settings = venue.faults.update(changes)
        except (ValueError, orjson.JSONDecodeError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        venue.hub.max_connection_s = settings.max_connection_s
        if "stream_stall_s" in changes and settings.stream_stall_s > 0:
            venue.faults.stall(settings.stream_stall_s * venue.clock.speed, venue.clock.now_ms())
        return web.json_response(asdict(settings))

    async def close_connections(request: web.Request) -> web.Response:
        """?kind=streams|ws-api|all (default all); ?refuse_s=N keeps the WebSocket API refusing
        new connections for N seconds (an outage while orders keep filling)."""
        await guard(request)
        kind = request.query.get("kind", "all")
        try:
            refuse_s = float(request.query.get("refuse_s", "0"))
            if kind not in ("streams", "ws-api", "all") or not 0 <= refuse_s <= 3600:
                raise ValueError
        except ValueError:
            return web.json_response({"error": "kind must be streams, ws-api or all; refuse_s within 0..3600"},
                                     status=400)
        if refuse_s:
            venue.ws_api_refused_until = time.monotonic() + refuse_s
        n = venue.hub.close_all(b"closed by admin", streams=kind != "ws-api", api=kind != "streams")
        log.warning("admin: closed %d %s connections", n, kind)
        return web.json_response({"closed": n})

    async def stall(request: web.Request) -> web.Response:
        await guard(request)
        try:
            seconds = float(request.query.get("seconds", "5"))
            if not 0 <= seconds <= 3600:
                raise ValueError
        except ValueError:
            return web.json_response({"error": "seconds must be a number within 0..3600"}, status=400)
        venue.faults.stall(seconds * venue.clock.speed, venue.clock.now_ms())
        return web.json_response({"stalled_s": seconds})

    async def blast(request: web.Request) -> web.Response:
        await guard(request)
        try:
            stream = request.query["stream"]
            count = int(request.query.get("count", "100000"))
            if not 0 < count <= 10_000_000:
                raise ValueError
        except (KeyError, ValueError):
            return web.json_response({"error": "needs stream=<name> and count within 1..10000000"}, status=400)
        # A real-sized depthUpdate, encoded once: the cost measured is the transport's.
        message = orjson.dumps({"e": "depthUpdate", "E": venue.clock.now_ms(), "s": "BTCUSDT", "U": 1, "u": 2,
                                "b": [["64999.99000000", "0.12000000"]] * 5, "a": [["65000.01000000", "0.3"]] * 5})
        started = time.perf_counter()
        sent = await venue.hub.blast(stream, message, count)
        return web.json_response({"sent": sent, "seconds": time.perf_counter() - started})

    return [("POST", "/admin/blast", blast), ("GET", "/admin/faults", get_faults), ("POST", "/admin/faults", set_faults),
            ("POST", "/admin/close-connections", close_connections), ("POST", "/admin/stall", stall)]


async def serve(cfg: SimConfig, ready=None) -> None:
    """Run until SIGINT/SIGTERM; `ready(server)` is called once both ports listen."""
    server = SimServer(cfg)
    await server.start()
    key_note = (f"demo API key {DEMO_API_KEY!r}, secret {DEMO_API_SECRET!r}" if cfg.api_key == DEMO_API_KEY
                else "API key and secret from ABIDANCE_SIM_API_KEY / ABIDANCE_SIM_API_SECRET")
    print(f"abidance sim ready: REST {server.rest_url}  streams {server.ws_url}  WebSocket API "
          f"{server.ws_api_url}  ({key_note})", flush=True)
    if ready is not None:
        ready(server)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        log.info("abidance sim: stopping")
        await server.stop()
        print("abidance sim stopped", flush=True)
