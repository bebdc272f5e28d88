"""TradingNode: the whole bot on one uvloop event loop (`abidance run`).

    connector -> data engine -> strategies -> risk -> execution -> venue
                                                      portfolio <- fills

Start: REST and instruments, the saved state, the engines, then the streams; the user
stream's first reconciliation settles orders from before a restart. Stop (SIGINT or
SIGTERM): strategies first, then open orders are cancelled (node.cancel_orders_on_stop),
the state is saved, connections are closed. SIGUSR1 is the kill switch.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

from abidance.backtest.venue import BacktestVenue, FillModel
from abidance.core import topics
from abidance.core.bus import MessageBus
from abidance.core.clock import LiveClock
from abidance.core.component import Component
from abidance.core.events import Alert, DepthSnapshot
from abidance.data.engine import DataEngine
from abidance.exchange.binance.connector import BinanceConnector
from abidance.exchange.binance.credentials import Credentials
from abidance.exchange.binance.rest import BinanceRest
from abidance.exchange.binance.ws_orders import WsApiExecutionClient
from abidance.execution.engine import ExecutionEngine
from abidance.execution.exits import ExitManager
from abidance.execution.venue import BinanceExecutionClient
from abidance.portfolio.portfolio import Portfolio
from abidance.risk.engine import RiskEngine
from abidance.runtime import systemd
from abidance.runtime.state import StateFile
from abidance.strategy.engine import StrategyEngine
from abidance.strategy.loader import load_strategy_class

log = logging.getLogger("abidance.node")

DEPTH_LEVELS = 20           # levels per side in a periodic depth snapshot


class PaperFills(Component):
    """Feeds the live trade stream to the paper venue (node.mode = "paper")."""

    def __init__(self, bus, clock, venue):
        super().__init__("PaperFills", bus, clock)
        self.venue = venue

    def on_start(self) -> None:
        self.bus.subscribe(topics.TRADES, self.venue.on_trade)

    def on_stop(self) -> None:
        self.bus.unsubscribe(topics.TRADES, self.venue.on_trade)


def node_credentials(config) -> Credentials:
    """From the environment; on the simulator its published demo key when none is set."""
    creds = Credentials.from_env()
    if creds is None and config.binance.venue == "sim":
        from abidance.exchange.sim.config import DEMO_API_KEY, DEMO_API_SECRET

        return Credentials(DEMO_API_KEY, DEMO_API_SECRET)
    return Credentials.load()


def build_strategies(config) -> list:
    out = []
    for sc in config.strategies:
        if not sc.enabled:
            continue
        cls = load_strategy_class(sc.class_name, config.node.strategies_dir or None)
        out.append(cls(sc.id, sc.symbols, dict(sc.params), sc.timeframe))
    return out


def build_store_writer(cfg, bus, clock, instruments):
    from abidance.store import rows
    from abidance.store.client import connect
    from abidance.store.writer import StoreWriter

    market = {rows.topics.TRADES, rows.topics.BARS, rows.topics.BOOK_TICKERS, rows.topics.DEPTH_SNAPSHOTS}
    routes = {t: r for t, r in rows.ROUTES.items() if cfg.store.market_data or t not in market}
    return StoreWriter(bus, clock, lambda: connect(cfg.store.url, cfg.store.database), instruments,
                       cfg.store.spool_dir, database=cfg.store.database, batch_rows=cfg.store.batch_rows,
                       flush_s=cfg.store.flush_s, routes=routes)


class TradingNode:
    def __init__(self, config, clock=None, bus=None, credentials: Credentials | None = None,
                 config_dir: Path | None = None):
        self.config = config
        self.config_dir = config_dir or Path.cwd()      # relative paths in edited configs resolve here
        self.clock = clock or LiveClock()
        self.bus = bus or MessageBus()
        self.credentials = credentials
        self.state_file = StateFile(config.node.state_dir)
        self.strategies = build_strategies(config)      # fails early on a bad strategy or parameter
        symbols = list(config.node.symbols) or []
        for s in self.strategies:
            symbols += [x for x in s.traded_symbols if x not in symbols]
        self.symbols = symbols
        self.rest: BinanceRest | None = None
        self.connector: BinanceConnector | None = None
        self.components = []
        self.stopping = asyncio.Event()
        self.store_writer = None
        self.commands = None
        self.config_watch = None
        self.ops = None
        self._heartbeat = None
        self._depth_timer = None
        self._beats = 0
        self.started = asyncio.Event()
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="state-writer")   # ordered, off the loop

    # ---- assembly ----------------------------------------------------------------------

    async def start(self) -> None:
        cfg = self.config
        paper = cfg.node.mode == "paper"
        if not cfg.execution.emulate_stops:
            raise ValueError("execution.emulate_stops = false (Binance-native exits) is not available yet")
        self._loop = asyncio.get_running_loop()
        state = self.state_file.load()
        # Paper trading reads public market data only: API keys are used when given, never needed.
        credentials = self.credentials or (Credentials.from_env() if paper else node_credentials(cfg))
        self.rest = BinanceRest(cfg.binance, credentials, self.bus, self.clock)
        await self.rest.start()
        instruments = await self.rest.load_instruments(self.symbols)
        missing = [s for s in self.symbols if s not in instruments]
        if missing:
            raise ValueError(f"symbols not traded on {cfg.binance.venue}: {', '.join(missing)}")
        self.instruments = instruments
        if paper:
            balances = dict(cfg.backtest.balances) or {cfg.risk.quote_asset: Decimal(10_000)}
        else:
            balances = {b.asset: b.free + b.locked for b in await self.rest.balances()}
        self.portfolio = Portfolio(self.bus, self.clock, cfg.risk.quote_asset, instruments, balances)
        if "portfolio" in state:
            self.portfolio.from_state(state["portfolio"])
        self.connector = BinanceConnector(cfg.binance, self.bus, self.rest, self.clock.time_ns)
        self.connector.use_instruments(instruments)
        if paper:
            # Simulated fills on the live trade stream: the backtester's venue (next-trade fills),
            # answering at once, so requests run inline as in a backtest.
            client = BacktestVenue(self.bus, self.clock, instruments, FillModel.from_config(cfg.backtest))
        elif cfg.binance.order_transport == "ws_api":
            client = WsApiExecutionClient(self.connector.api(), self.rest, instruments)
        else:
            client = BinanceExecutionClient(self.rest, instruments)
        self.execution = ExecutionEngine(self.bus, self.clock, client, instruments, inline=paper,
                                         cancel_replace=cfg.execution.cancel_replace, is_ours=self.rest.ids.is_ours)
        if paper and state.get("execution", {}).get("orders"):
            # The paper venue does not outlive the process: its resting orders are gone.
            log.warning("paper mode: %d open paper orders from before the restart are dropped",
                        len(state["execution"]["orders"]))
        else:
            self.execution.load_state(state.get("execution", {}))
        self.exits = ExitManager(self.bus, self.clock, self.execution)
        self.exits.load_state(state.get("exits", {}))
        self.risk = RiskEngine(self.bus, self.clock, cfg.risk, instruments, self.portfolio, self.rest.ids,
                               cfg.execution.limit_timeout_s, cfg.node.state_dir, cfg.execution.max_slippage_bps)
        tick_sizes = {s: float(inst.filters.price_fp.increment) for s, inst in instruments.items()}
        self.strategy_engine = StrategyEngine(self.bus, self.clock, self.strategies, self.portfolio, tick_sizes)
        intervals = list(cfg.data.bar_intervals) + [s.timeframe for s in self.strategies]
        self.data = DataEngine(self.bus, self.clock, self.symbols, intervals)
        from abidance.ml import deployment

        # ML strategies by their registry status (shadow / live, drift demotion): docs/registry.md
        self.ml_components = await deployment.in_node(self)
        # Paper fills see a trade after the bars it closes and before the strategies' on_trade: the
        # order the backtester keeps (bar orders fill at this trade, on_trade orders at the next).
        paper_fills = [PaperFills(self.bus, self.clock, client)] if paper else []
        self.components = [self.portfolio, self.execution, self.exits, self.risk, self.data, *paper_fills,
                           *self.ml_components, self.strategy_engine]
        if cfg.store.url:
            # First to start, last to stop: it records every other component's events.
            self.store_writer = build_store_writer(cfg, self.bus, self.clock, instruments)
            self.components.insert(0, self.store_writer)
            from abidance.store.client import connect
            from abidance.store.commands import CommandPoller

            self.commands = CommandPoller(self.bus, self.clock, lambda: connect(cfg.store.url, cfg.store.database),
                                          self.risk, cfg.store.database, since_ns=state.get("last_command_ns"))
            self.components.append(self.commands)
            from abidance.store.config_watch import ConfigWatcher

            self.config_watch = ConfigWatcher(self.bus, self.clock, lambda: connect(cfg.store.url, cfg.store.database),
                                              self, self.config_dir, cfg.store.database)
            self.components.append(self.config_watch)
        # Alerts, anomaly detection, reports, chat control and metrics (docs/alerts.md, docs/metrics.md):
        # right after the store writer (so they hear everything, and alerts raised while stopping are
        # still sent), the detectors, reports and chat after the engines whose events they read.
        from abidance.runtime.ops import build_ops

        self.ops = build_ops(cfg, self.bus, self.clock, instruments, self, self.store_writer)
        at = 1 if self.store_writer is not None else 0
        self.components[at:at] = self.ops.first
        self.components += self.ops.last
        for component in self.components:
            component.start()
        saved = state.get("risk", {})
        if saved.get("state") == "HALTED":
            # A halt survives a restart: only an operator lifts it.
            self.risk.halt(f"halted before the restart: {saved.get('reason', '')}", "restart")
        elif saved.get("state") == "REDUCING":
            self.risk.set_reducing("REDUCING before the restart", "restart")
        else:
            self.risk.announce("node started")
        self.bus.subscribe(topics.ORDER_EVENTS, lambda ev: self.save_state())
        channels = ["trade"] + (["depth"] if cfg.data.depth else []) + (["bookTicker"] if cfg.data.book_ticker else [])
        await self.connector.start(self.symbols, channels, user_data=not paper)
        self._heartbeat = self.clock.call_every(int(cfg.node.heartbeat_s * 1e9), self._beat)
        if cfg.data.depth and cfg.data.depth_snapshot_s > 0:
            self._depth_timer = self.clock.call_every(int(cfg.data.depth_snapshot_s * 1e9), self._snapshot_books)
        systemd.notify("READY=1")
        systemd.notify(f"STATUS=trading {', '.join(self.symbols)} on {cfg.binance.venue}")
        log.info("node %s running: %s on %s (%s), strategies %s", cfg.node.name, ", ".join(self.symbols),
                 cfg.binance.venue, cfg.node.mode, ", ".join(s.id for s in self.strategies))
        self.started.set()

    def _beat(self, now: int) -> None:
        systemd.notify("WATCHDOG=1")
        self.save_state()
        health = self.connector.health_snapshot()
        self.bus.publish(topics.CONNECTOR_HEALTH, health)
        self._beats += 1
        if self._beats % max(1, round(30 / self.config.node.heartbeat_s)) == 1:     # about every 30 s
            log.info("%s", self.status_line(health))

    def _snapshot_books(self, now: int) -> None:
        for symbol, sync in self.connector.books.items():
            if sync.ready:
                bids, asks = sync.book.top_bids(DEPTH_LEVELS), sync.book.top_asks(DEPTH_LEVELS)
                self.bus.publish(topics.DEPTH_SNAPSHOTS, DepthSnapshot(
                    symbol, sync.book.last_update_id, tuple(bids[:, 0].tolist()), tuple(bids[:, 1].tolist()),
                    tuple(asks[:, 0].tolist()), tuple(asks[:, 1].tolist()), now))

    def status_line(self, health=None) -> str:
        pf, risk = self.portfolio, self.risk
        held = {s: str(q) for s in self.symbols if (q := pf.position(s))}
        return (f"status: {risk.trading_state} | equity {pf.equity():f} {self.config.risk.quote_asset} "
                f"| positions {held or 'none'} | open orders {len(self.execution.open_orders())} "
                f"| fills {self.execution.fills} | decisions {risk.decisions} ({risk.denied} denied) "
                f"| books ready {health.books_ready if health else '?'} | reconnects "
                f"{health.reconnects if health else '?'}")

    def apply_live_config(self, new) -> None:
        """Apply the safe part of a new config (see abidance/store/config_watch.py)."""
        import dataclasses

        risk = dataclasses.replace(new.risk, quote_asset=self.config.risk.quote_asset,
                                   kill_switch_file=self.config.risk.kill_switch_file,
                                   max_position=self.config.risk.max_position)
        execution = dataclasses.replace(self.config.execution, limit_timeout_s=new.execution.limit_timeout_s,
                                        max_slippage_bps=new.execution.max_slippage_bps,
                                        cancel_replace=new.execution.cancel_replace)
        self.risk.apply_settings(risk, execution.limit_timeout_s, execution.max_slippage_bps)
        self.execution.cancel_replace = execution.cancel_replace
        self.config = dataclasses.replace(self.config, risk=risk, execution=execution)

    def snapshot_state(self) -> dict:
        return {"execution": self.execution.to_state(), "exits": self.exits.to_state(),
                "portfolio": self.portfolio.to_state(),
                "risk": {"state": self.risk.trading_state, "reason": self.risk.state_source},
                "last_command_ns": self.commands.since_ns if self.commands is not None else None,
                "saved_at": self.clock.time_ns()}

    def save_state(self, wait: bool = False) -> None:
        """Snapshot on the loop (cheap), write in the writer thread (fsync is slow)."""
        state = self.snapshot_state()
        future = self._writer.submit(self._write, state)
        if wait:
            future.result(10)

    def _write(self, state: dict) -> None:
        try:
            self.state_file.save(state)
        except OSError as exc:
            log.error("saving the node state failed: %s", exc)
            alert = Alert("error", "node", "state_save_failed", str(exc), self.clock.time_ns())
            self._loop.call_soon_threadsafe(self.bus.publish, topics.ALERTS, alert)   # the bus lives on the loop

    async def stop(self) -> None:
        systemd.notify("STOPPING=1")
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        if self._depth_timer is not None:
            self._depth_timer.cancel()
        if self.components:
            self.strategy_engine.stop()
            if self.config.node.cancel_orders_on_stop:
                n = self.execution.cancel_request("*")
                if n:
                    log.info("cancelling %d open orders before stopping", n)
                await self.execution.drain(5.0)
            self.save_state(wait=True)
            for component in reversed(self.components):
                component.stop()
        if self.connector is not None:
            await self.connector.stop()
        if self.rest is not None:
            await self.rest.close()
        self._writer.shutdown(wait=True)

    # ---- running as a process ------------------------------------------------------------

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stopping.set)
        loop.add_signal_handler(signal.SIGUSR1, lambda: self.bus.send(topics.KILL, "SIGUSR1 received"))
        try:
            await self.start()
            await self.stopping.wait()
            log.info("stopping")
        finally:
            await self.stop()
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1):
                loop.remove_signal_handler(sig)
        return 0
