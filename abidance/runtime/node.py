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
import dataclasses
import gc
import logging
import os
import signal
from pathlib import Path

from abidance.core import topics
from abidance.core.bus import MessageBus, Priority
from abidance.core.clock import LiveClock
from abidance.core.events import Alert, DepthSnapshot
from abidance.exchange.backtest.venue import BacktestVenue, FillModel
from abidance.exchange.binance.connector import BinanceConnector
from abidance.exchange.binance.credentials import Credentials, CredentialsError
from abidance.exchange.binance.rest import BinanceRest
from abidance.exchange.binance.ws_orders import WsApiExecutionClient
from abidance.exchange.binance.rest_orders import BinanceExecutionClient
from abidance.exchange.sim.config import DEMO_API_KEY, DEMO_API_SECRET, ENV_SIM_KEY, ENV_SIM_SECRET
from abidance.runtime import logs, systemd
from abidance.runtime.config_record import record_config
from abidance.runtime.ops import build_ops
from abidance.runtime.startup import Startup
from abidance.runtime.state import StateFile, StateWriter
from abidance.store.client import connect
from abidance.store.cluster import client_settings
from abidance.store.commands import CommandPoller
from abidance.store.config_watch import ConfigWatcher
from abidance.strategy.loader import build_strategies
from abidance.system.kernel import Kernel, StoreTarget, starting_balances

log = logging.getLogger("abidance.node")

DEPTH_LEVELS = 20           # levels per side in a periodic depth snapshot


def node_credentials(config, env=None) -> Credentials:
    """From the environment. On the simulator, without a Binance key: the simulator's own key
    (ABIDANCE_SIM_API_KEY / ABIDANCE_SIM_API_SECRET, the pair the simulator opens its account
    with), else its published demo key."""
    env = os.environ if env is None else env
    creds = Credentials.from_env(env)
    if creds is None and config.binance.venue == "sim":
        key, secret = env.get(ENV_SIM_KEY), env.get(ENV_SIM_SECRET)
        if bool(key) != bool(secret):
            raise CredentialsError(f"set both {ENV_SIM_KEY} and {ENV_SIM_SECRET}, or neither (the demo key)")
        return Credentials(key, secret) if key else Credentials(DEMO_API_KEY, DEMO_API_SECRET)
    return Credentials.load(env)


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
        self.kernel: Kernel | None = None
        self.stopping = asyncio.Event()
        self.startup: Startup | None = None
        self.commands = None
        self.config_watch = None
        self._config_record = None        # the task recording the config in the store at start
        self.ops = None
        self._heartbeat = None
        self._depth_timer = None
        self._beats = 0
        self._save_pending = False
        self.started = asyncio.Event()
        self._writer: StateWriter | None = None       # off the loop, newest state wins (started by start())

    # ---- the kernel's components, by name ------------------------------------------------

    @property
    def components(self) -> list:
        return self.kernel.components if self.kernel is not None else []

    portfolio = property(lambda self: self.kernel.portfolio)
    execution = property(lambda self: self.kernel.execution)
    exits = property(lambda self: self.kernel.exits)
    risk = property(lambda self: self.kernel.risk)
    data = property(lambda self: self.kernel.data)
    strategy_engine = property(lambda self: self.kernel.strategies)
    store_writer = property(lambda self: self.kernel.store_writer if self.kernel is not None else None)
    ml_components = property(lambda self: self.kernel.ml)

    # ---- assembly ----------------------------------------------------------------------

    def build_kernel(self, instruments: dict, balances: dict, client, ids) -> Kernel:
        """The node's engines from its config (no I/O): what `start()` runs, and what the kernel
        test compares with a backtest's."""
        cfg = self.config
        paper = cfg.node.mode == "paper"
        # On a cluster the writer's inserts wait for every shard (store.cluster.client_settings).
        options = client_settings(cfg.store.cluster)
        store = StoreTarget(lambda: connect(cfg.store.url, cfg.store.database, **options), cfg.store.database,
                            cfg.store.spool_dir) if cfg.store.url else None
        return Kernel(cfg, mode="paper" if paper else "live", clock=self.clock, bus=self.bus,
                      instruments=instruments, client=client, balances=balances, ids=ids,
                      strategies=self.strategies, store=store, book_symbols=self.symbols if cfg.data.depth else ())

    async def start(self) -> None:
        cfg = self.config
        paper = cfg.node.mode == "paper"
        self._loop = asyncio.get_running_loop()
        state = self.state_file.load()
        self._writer = StateWriter(self.state_file, self._state_save_failed)
        # Paper trading reads public market data only: API keys are used when given, never needed.
        credentials = self.credentials or (Credentials.from_env() if paper else node_credentials(cfg))
        self.rest = BinanceRest(cfg.binance, credentials, self.bus, self.clock)
        await self.rest.start()
        # Every venue call of the start is retried until the venue answers (a 503 or 429 is not fatal);
        # a refused key is (StartupError: exit code 2). docs/node.md, "Run it".
        self.startup = startup = Startup(cfg.node.state_dir, cfg.binance.reconnect_initial_s,
                                         cfg.binance.reconnect_max_s, cfg.binance.reconnect_jitter)
        systemd.notify(f"STATUS=starting: connecting to {cfg.binance.venue}")
        instruments = await startup.step("exchangeInfo", lambda: self.rest.load_instruments(self.symbols))
        missing = [s for s in self.symbols if s not in instruments]
        if missing:
            raise ValueError(f"symbols not traded on {cfg.binance.venue}: {', '.join(missing)}")
        self.instruments = instruments
        self.connector = BinanceConnector(cfg.binance, self.bus, self.rest, self.clock.time_ns)
        self.connector.use_instruments(instruments)
        if paper:
            # The paper venue keeps the account: its balances after a restart are the state's.
            saved = state.get("portfolio", {}).get("balances")
            balances = starting_balances(cfg, saved if saved else None)
            client = BacktestVenue(self.bus, self.clock, instruments, FillModel.from_config(cfg.backtest),
                                   balances, source="trades")
        else:
            balances = {b.asset: b.free + b.locked for b in await startup.step("account", self.rest.balances)}
            if cfg.binance.order_transport == "ws_api":
                client = WsApiExecutionClient(self.connector.api(), self.rest, instruments)
            else:
                client = BinanceExecutionClient(self.rest, instruments)
        self.kernel = kernel = self.build_kernel(instruments, balances, client, self.rest.ids)
        if paper and state.get("execution", {}).get("orders"):
            # The paper venue does not outlive the process: its resting orders are gone.
            log.warning("paper mode: %d open paper orders from before the restart are dropped",
                        len(state["execution"]["orders"]))
        kernel.restore(state, keep_orders=not paper)
        if not paper:
            # Orders sent just before a crash (too late for the state file) are on the exchange: none
            # is added before the user stream's first reconciliation has counted them.
            kernel.risk.hold_until_reconciled()
        # ML strategies by their registry status (shadow / live, drift demotion): docs/registry.md
        if kernel.ml_strategies():
            # Lazy: the model registry needs pyarrow (the `store` extra); only ML strategies use it.
            from abidance.ml import deployment

            kernel.ml = await deployment.from_store(cfg, self.bus, self.clock, kernel.strategy_list)
        if cfg.store.url:
            store = lambda: connect(cfg.store.url, cfg.store.database)     # noqa: E731
            self.commands = CommandPoller(self.bus, self.clock, store, kernel.risk, cfg.store.database,
                                          since_ns=state.get("last_command_ns"))
            self.config_watch = ConfigWatcher(self.bus, self.clock, store, self, self.config_dir, cfg.store.database)
            kernel.extra = [self.commands, self.config_watch]
            # In the background: a store that is down must not delay the start (the writer spools the rest).
            self._config_record = asyncio.get_running_loop().create_task(
                record_config(cfg, store, self.clock.time_ns()))
        # Alerts, anomaly detection, reports, chat control and metrics (docs/alerts.md, docs/metrics.md):
        # the alert service and metrics start before the engines (they hear what the engines say while
        # starting and stopping), the detectors, reports and chat after the engines whose events they read.
        self.ops = build_ops(cfg, self.bus, self.clock, instruments, self, kernel.store_writer)
        kernel.services = list(self.ops.first)
        kernel.extra += self.ops.last
        self.connector.snapshots.start()        # before the data engine asks for its first snapshots
        kernel.start()
        saved = state.get("risk", {})
        if saved.get("state") == "HALTED":
            # A halt survives a restart: only an operator lifts it.
            kernel.risk.halt(f"halted before the restart: {saved.get('reason', '')}", "restart")
        elif saved.get("state") == "REDUCING":
            kernel.risk.set_reducing("REDUCING before the restart", "restart")
        else:
            kernel.risk.announce("node started")
        self.bus.subscribe(topics.ORDER_EVENTS, self._order_event, Priority.RECORD)
        channels = ["trade"] + (["depth"] if cfg.data.depth else []) + (["bookTicker"] if cfg.data.book_ticker else [])
        await self.connector.start(self.symbols, channels)
        if not paper:
            await startup.step("user-data subscription", self.connector.start_user_data)
        startup.done()
        self._heartbeat = self.clock.call_every(int(cfg.node.heartbeat_s * 1e9), self._beat)
        if cfg.data.depth and cfg.data.depth_snapshot_s > 0:
            self._depth_timer = self.clock.call_every(int(cfg.data.depth_snapshot_s * 1e9), self._snapshot_books)
        # Everything built so far lives as long as the node: out of the collector's generations, so a
        # collection on the tick path walks only what trading allocated since (the p99 tail).
        gc.freeze()
        systemd.notify("READY=1")
        systemd.notify(f"STATUS=trading {', '.join(self.symbols)} on {cfg.binance.venue}")
        log.info("node %s running: %s on %s (%s), strategies %s", cfg.node.name, ", ".join(self.symbols),
                 cfg.binance.venue, cfg.node.mode, ", ".join(s.id for s in self.strategies))
        self.started.set()

    def _order_event(self, _ev) -> None:
        """Save the state once per loop iteration however many order events it brought."""
        if not self._save_pending:
            self._save_pending = True
            self._loop.call_soon(self._save_soon)

    def _save_soon(self) -> None:
        self._save_pending = False
        self.save_state()

    def _beat(self, now: int) -> None:
        systemd.notify("WATCHDOG=1")
        self.save_state()
        self._beats += 1
        if self._beats % max(1, round(30 / self.config.node.heartbeat_s)) == 1:     # about every 30 s
            log.info("%s", self.status_line())

    def _snapshot_books(self, now: int) -> None:
        for symbol in self.data.books.symbols:
            book = self.data.books.view(symbol)
            if book is not None:
                bids, asks = book.top_bids(DEPTH_LEVELS), book.top_asks(DEPTH_LEVELS)
                self.bus.publish(topics.DEPTH_SNAPSHOTS, DepthSnapshot(
                    symbol, book.last_update_id, tuple(bids[:, 0].tolist()), tuple(bids[:, 1].tolist()),
                    tuple(asks[:, 0].tolist()), tuple(asks[:, 1].tolist()), now))

    def status_line(self) -> str:
        """One line for the log; books and reconnects are read where they are kept, so the line is
        complete from the first beat (the connector's health report comes later)."""
        pf, risk = self.portfolio, self.risk
        held = {s: str(q) for s in self.symbols if (q := pf.position(s))}
        ready, kept, _resyncs = self.data.books.health()
        return (f"status: {risk.trading_state} | equity {pf.equity():f} {self.config.risk.quote_asset} "
                f"| positions {held or 'none'} | open orders {len(self.execution.open_orders())} "
                f"| fills {self.execution.fills} | decisions {risk.decisions} ({risk.denied} denied) "
                f"| books ready {ready}/{kept} | reconnects {self.connector.streams.reconnects if self.connector else 0} "
                f"| log lines dropped {logs.dropped()}")

    def apply_live_config(self, new) -> None:
        """Apply the safe part of a new config (see abidance/store/config_watch.py)."""
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
                "risk": self.risk.to_state(),
                "last_command_ns": self.commands.since_ns if self.commands is not None else None,
                "saved_at": self.clock.time_ns()}

    def save_state(self, wait: bool = False) -> None:
        """Snapshot on the loop (cheap: open orders, brackets, positions), write in the writer thread
        (fsync is slow). Snapshots waiting for the writer are replaced by the newest."""
        if self._writer is not None:
            self._writer.save(self.snapshot_state(), wait=wait)

    def _state_save_failed(self, exc: OSError) -> None:
        """In the writer thread: alert on the loop (the bus lives there)."""
        alert = Alert("error", "node", "state_save_failed", str(exc), self.clock.time_ns())
        self._loop.call_soon_threadsafe(self.bus.publish, topics.ALERTS, alert)

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
        if self._writer is not None:
            self._writer.close()

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
