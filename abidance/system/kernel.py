"""The kernel: one builder of a trading node's engines, from one config, for every mode.

    kernel = Kernel(config, mode="live" | "paper" | "backtest", clock=..., instruments=...,
                    client=..., balances=..., ids=...)

It builds, in this order (the start order; stop is the reverse): the store writer (when
there is a store: first to start, last to stop, it records every other component), the
portfolio, the execution engine (books each fill in the portfolio before publishing it), the
exit manager, the risk engine, the data engine (bars, order books), the venue feed (an
in-process venue's market data), the ML deployments, the strategy engine. The trading node
(abidance/runtime/node.py) adds the connector, the event loop, the state file and the
operator's store pollers; a backtest (abidance/backtest/engine.py) adds stepping through
recorded data, fast-forward and the result. Nothing else differs.

What may differ by mode is decided here, in `MODE`, each with its reason; everything else
comes from the config alone. `describe()` lists every component with its effective
settings: tests/unit/system/test_kernel.py builds a node's kernel and a backtest's from the
same config and compares them setting by setting.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Callable

from abidance.core import topics
from abidance.core.bus import MessageBus
from abidance.core.component import Component
from abidance.data.engine import DataEngine
from abidance.exchange.backtest.venue import BacktestVenue
from abidance.execution.engine import ExecutionEngine
from abidance.execution.exits import ExitManager
from abidance.portfolio.portfolio import Portfolio
from abidance.portfolio.views import PortfolioView
from abidance.risk.engine import RiskEngine
from abidance.store import rows
from abidance.strategy.base import is_ml_strategy
from abidance.strategy.engine import StrategyEngine
from abidance.strategy.loader import build_strategies

MODES = ("live", "paper", "backtest")
DAY_S = 86_400.0


@dataclass(frozen=True)
class ModeSettings:
    """What a mode changes, and only that (each field says why it must)."""

    inline: bool                # the venue answers at once (in-process): requests run where they are made
    risk_poll_s: float          # kill file and stale-data poll. Decisions check both themselves, so the poll
    #                             only announces a state change between decisions: a backtest polls daily
    equity_interval_s: float    # equity snapshots by the clock; a backtest snapshots each bar itself
    store_batch_rows: int       # a backtest writes whole days at once (nobody watches it live)
    store_flush_s: float | None  # None: the config's store.flush_s
    native_exits: bool          # exits may rest on the venue; an in-process venue keeps no resting stops,
    #                             so paper and backtests emulate them on the same trades


MODE = {
    "live": ModeSettings(inline=False, risk_poll_s=0.5, equity_interval_s=1.0, store_batch_rows=0,
                         store_flush_s=None, native_exits=True),
    "paper": ModeSettings(inline=True, risk_poll_s=0.5, equity_interval_s=1.0, store_batch_rows=0,
                          store_flush_s=None, native_exits=False),
    "backtest": ModeSettings(inline=True, risk_poll_s=DAY_S, equity_interval_s=DAY_S, store_batch_rows=5000,
                             store_flush_s=DAY_S, native_exits=False),
}


@dataclass(frozen=True)
class StoreTarget:
    """Where the store writer writes: a connection factory, the database, the spool folder."""

    connect: Callable[[], object]
    database: str
    spool_dir: object


class VenueFeed(Component):
    """Feeds an in-process venue the market data it fills on (trades or books), at Priority.VENUE:
    after the data engine has built the bars and books a message closes, before anyone reacts
    to it. Bars are stepped by the backtest runner instead."""

    def __init__(self, bus, clock, venue):
        super().__init__("VenueFeed", bus, clock)
        self.venue = venue

    def on_start(self) -> None:
        self.venue.attach()

    def on_stop(self) -> None:
        self.venue.detach()


class Kernel:
    def __init__(self, config, *, mode: str, clock, instruments: dict, client, balances: dict, ids,
                 bus: MessageBus | None = None, strategies: list | None = None, extra_strategies=(),
                 state_dir=None, store: StoreTarget | None = None, book_symbols=(), bar_source: str = "trades"):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.config = config
        self.mode = mode
        self.settings = settings = MODE[mode]
        self.clock = clock
        self.bus = bus if bus is not None else MessageBus()
        self.instruments = instruments
        self.client = client
        self.ids = ids
        cfg = config
        # The config's strategies (built here, or given already built by the node) plus any extra
        # instances (an RL agent, a test's probe).
        base = build_strategies(config) if strategies is None else list(strategies)
        self.strategy_list = base + list(extra_strategies)
        symbols = list(cfg.node.symbols)
        for s in self.strategy_list:
            symbols += [x for x in s.traded_symbols if x not in symbols]
        self.symbols = [s for s in symbols if s in instruments]     # a backtest: the symbols with data
        bus = self.bus
        self.portfolio = Portfolio(bus, clock, cfg.risk.quote_asset, instruments, balances,
                                   equity_interval_s=settings.equity_interval_s)
        view = PortfolioView(self.portfolio)
        self.execution = ExecutionEngine(bus, clock, client, instruments, inline=settings.inline,
                                         cancel_replace=cfg.execution.cancel_replace, is_ours=ids.is_ours,
                                         account=self.portfolio)
        self.exits = ExitManager(bus, clock, self.execution, exit_mode(cfg.execution.exits, settings), ids)
        self.risk = RiskEngine(bus, clock, cfg.risk, instruments, view, ids, cfg.execution.limit_timeout_s,
                               state_dir if state_dir is not None else cfg.node.state_dir,
                               cfg.execution.max_slippage_bps, poll_interval_s=settings.risk_poll_s)
        intervals = list(cfg.data.bar_intervals) + [s.timeframe for s in self.strategy_list]
        self.data = DataEngine(bus, clock, self.symbols, intervals, bar_source=bar_source,
                               book_symbols=book_symbols, snapshot_limit=cfg.binance.depth_snapshot_limit)
        self.strategies = StrategyEngine(bus, clock, self.strategy_list, view,
                                         {s: float(i.filters.price_fp.increment) for s, i in instruments.items()})
        self.venue_feed = VenueFeed(bus, clock, client) \
            if isinstance(client, BacktestVenue) and client.source != "bars" else None
        self.ml: list[Component] = []
        self.store_writer = self._store_writer(store) if store is not None else None
        self.services: list[Component] = []    # the node's alerting and metrics: after the store writer, before
        #                                        the engines (they hear what the engines say starting and stopping)
        self.extra: list[Component] = []       # the node's own (store pollers, detectors, chat), started last
        self._started = False

    # ---- assembly ------------------------------------------------------------------------

    def _store_writer(self, store: StoreTarget):
        # Lazy: the store writer needs pyarrow (the `store` extra), absent from a bare install.
        from abidance.store.writer import StoreWriter

        cfg = self.config.store
        market = {topics.TRADES, topics.BARS, topics.BOOK_TICKERS, topics.DEPTH_SNAPSHOTS}
        routes = {t: r for t, r in rows.ROUTES.items() if cfg.market_data or t not in market}
        return StoreWriter(self.bus, self.clock, store.connect, self.instruments, store.spool_dir,
                           database=store.database, batch_rows=self.settings.store_batch_rows or cfg.batch_rows,
                           flush_s=self.settings.store_flush_s or cfg.flush_s, routes=routes)

    def ml_strategies(self) -> list:
        """The ML strategies; their deployments (abidance/ml/deployment.py: `from_store` for the node,
        `in_backtest` for a backtest) go in `self.ml`, started after the data engine, before the strategies."""
        return [s for s in self.strategy_list if is_ml_strategy(s)]

    @property
    def components(self) -> list[Component]:
        out: list[Component] = [*self.services, self.portfolio, self.execution, self.exits, self.risk, self.data]
        if self.venue_feed is not None:
            out.append(self.venue_feed)
        out += self.ml
        out.append(self.strategies)
        if self.store_writer is not None:
            out.insert(0, self.store_writer)
        return out + self.extra

    # ---- a restart -------------------------------------------------------------------------

    def restore(self, state: dict, keep_orders: bool = True) -> None:
        """The engines' state from a node's state file, before start. Restored open orders are
        handed to the risk engine as well: every limit counts them (they are on the exchange)."""
        if "portfolio" in state:
            self.portfolio.from_state(state["portfolio"])
        if keep_orders:
            self.execution.load_state(state.get("execution", {}))
        self.exits.load_state(state.get("exits", {}))
        self.risk.load_state(state.get("risk", {}))
        for o in self.execution.open_orders():
            if o.protective:
                continue        # native exits: never the risk engine's orders (they only reduce a position)
            self.risk.restore_order(o.client_order_id, o.strategy_id, o.symbol, o.side, o.quantity, o.filled,
                                    o.price)

    # ---- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        for component in self.components:
            component.start()
        self._started = True

    def stop(self) -> None:
        for component in reversed(self.components):
            component.stop()

    # ---- what was built ------------------------------------------------------------------

    def describe(self) -> dict[str, dict]:
        """Every component with its effective settings (plain values), in start order."""
        out = {"Kernel": {"mode": self.mode, "clock": type(self.clock).__name__, "symbols": list(self.symbols),
                          "client_order_ids": {"prefix": self.ids.prefix, "session": self.ids.session}}}
        for c in self.components:
            out[c.name] = c.describe() if hasattr(c, "describe") else {}
        return out


def exit_mode(setting: str, settings: ModeSettings) -> str:
    """execution.exits for this mode: "auto" is native where the venue keeps exits (live)."""
    if setting == "native" and not settings.native_exits:
        return "emulated"       # paper and backtests: the in-process venue has no resting stops
    return "native" if setting == "native" or (setting == "auto" and settings.native_exits) else "emulated"


def starting_balances(config, given: dict | None = None) -> dict[str, Decimal]:
    """The simulated account's balances: `given`, else the config's backtest.balances, else 10000 of
    the quote asset (paper trading and backtests alike)."""
    if given is not None:
        return {a: Decimal(v) for a, v in given.items()}
    return {a: Decimal(v) for a, v in config.backtest.balances.items()} or {config.risk.quote_asset: Decimal(10_000)}
