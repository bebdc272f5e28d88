"""Run the node's engines over recorded data: `Backtest(config, bars).run()`,
`Backtest(config, trades={...}).run()`, `Backtest(config, depth={...}).run()`.

The engines are the live node's, built by the same kernel from the same config
(abidance/system/kernel.py, mode "backtest"); the backtest adds only the stepping through
recorded data, the fast-forward and the result. The clock is a TestClock moved through the
data, the venue a BacktestVenue (abidance/exchange/backtest/venue.py) with the simulator's
accounting: free and locked balances, -2010 when they do not cover an order.

For each bar, in time order across symbols: the clock moves to the bar's open and the venue
fills what the bar reaches; the portfolio marks the close; the clock moves to the close and
the bar is published (strategies see it only now); the orders it caused reach the venue in
a later bar. Over trades, the data engine builds the bars from them on clock timers, as
live, and orders fill at the next trade. Over recorded depth (a snapshot, then diffs), the
data engine keeps the books exactly as live (abidance/data/books.py), book strategies and
the risk engine's slippage walk see them, and orders fill by walking the next book.

The venue answers at once, so the execution engine runs its requests inline: a backtest
needs no event loop and can be stepped (`start()`, `step()`, `finish()`), as the RL
environment does.
"""

from __future__ import annotations

import gc
import heapq
from dataclasses import dataclass, field
from decimal import Decimal
from operator import attrgetter

import numpy as np

from abidance._core.barloop import run_until_action
from abidance._core.wire import DepthDiffEvent
from abidance.backtest import audit
from abidance.backtest.data import BarSeries
from abidance.backtest.equity import EquityCurve
from abidance.core import topics
from abidance.core.bus import MessageBus, Priority
from abidance.core.clock import TestClock
from abidance.core.events import BookSnapshot
from abidance.data.bars import parse_interval
from abidance.exchange.backtest.instruments import sim_instruments
from abidance.exchange.backtest.venue import BacktestVenue, FillModel
from abidance.exchange.binance.ids import ClientOrderIds
from abidance.portfolio.views import PortfolioView
from abidance.strategy.compiled import CompiledBarStrategy
from abidance.system.kernel import Kernel, StoreTarget, starting_balances

__all__ = ["Backtest", "BacktestResult", "run_backtest", "sim_instruments"]

RUN_GC_THRESHOLD = 100_000      # allocations between young-generation collections during run() (default 700)
BACKTEST_SEED = 1               # client order ids are seeded: a backtest is reproducible to the id

_open_time = attrgetter("open_time")


def _event_time(ev) -> int:
    """The time a recorded event happened: a trade's time, a bar's open, a depth event's time."""
    t = getattr(ev, "ts_trade", None)
    if t is not None:
        return t
    t = getattr(ev, "open_time", None)
    return t if t is not None else ev.ts_event


def _order_key(ev) -> tuple[int, int, int]:
    # At one instant: depth before trades (a book is known when a trade prints against it), then ids.
    if isinstance(ev, DepthDiffEvent):
        return ev.ts_event, 0, ev.final_id
    if isinstance(ev, BookSnapshot):
        return ev.ts_event, 0, ev.last_update_id
    return ev.ts_trade, 1, ev.trade_id


@dataclass
class BacktestResult:
    fills: list = field(default_factory=list)
    orders: list = field(default_factory=list)          # OrderEvents
    decisions: list = field(default_factory=list)
    equity: EquityCurve | list = field(default_factory=list)     # one point per bar
    balances: dict = field(default_factory=dict)
    final_equity: Decimal = Decimal(0)
    bars: int = 0
    trades: int = 0                                     # trades fed (trade-driven runs)
    depth_events: int = 0                               # depth snapshots and diffs fed
    quote_asset: str = ""
    base_assets: dict = field(default_factory=dict)     # symbol -> base asset
    strategy_pnl: dict = field(default_factory=dict)    # strategy id -> positions, PnL, fees
    outside_access: list = field(default_factory=list)  # audit.Access: strategy code reaching past the engine


class Backtest:
    """One backtest run, steppable: over bars ({symbol: [Bar, ...]}), over trades
    (`trades={symbol: [TradeEvent, ...]}`), or over recorded depth (`depth={symbol: [BookSnapshot |
    DepthDiffEvent, ...]}`, with `trades=` too when the recording has them)."""

    def __init__(self, config, bars_by_symbol: dict[str, list] | None = None, *, trades: dict | None = None,
                 depth: dict | None = None, instruments: dict | None = None, balances: dict[str, Decimal] | None = None,
                 fill: FillModel | None = None, strategies: list | None = None, on_bus=None, progress=None,
                 store=None, bus: MessageBus | None = None, **fill_overrides):
        if bars_by_symbol is not None and (trades is not None or depth is not None):
            raise ValueError("a backtest runs over bars, or over trades and/or recorded depth: not both")
        if bars_by_symbol is None and trades is None and depth is None:
            raise ValueError("a backtest needs bars, trades or recorded depth")
        self.source = "book" if depth is not None else "trades" if trades is not None else "bars"
        self.on_events = self.source != "bars"
        streams = {s: list(v) for s, v in (trades or {}).items()}
        for s, v in (depth or {}).items():
            streams.setdefault(s, []).extend(v)
        data = streams if self.on_events else bars_by_symbol
        # The fill model: `fill`, else the config's [backtest] section with any keyword
        # (taker_bps=, slippage_bps=, participation=, ...) on top.
        fill = fill or FillModel.from_config(config.backtest, **fill_overrides)
        instruments = instruments or sim_instruments()
        missing = sorted(set(data) - set(instruments))
        if missing:
            raise ValueError(f"no instrument for {', '.join(missing)} (data given for them)")
        self.instruments = inst = {s: instruments[s] for s in data}
        self._data = data
        self._marks_from_books = self.source == "book" and not trades
        self.total = sum(len(b) for b in data.values())
        first = min((_event_time(b[0]) for b in data.values() if len(b)), default=0)
        self.clock = clock = TestClock(first)
        self.quote = config.risk.quote_asset
        start = starting_balances(config, balances)
        self.bus = bus = bus if bus is not None else MessageBus()
        self.venue = BacktestVenue(bus, clock, inst, fill, start, source=self.source)
        self.kernel = kernel = Kernel(
            config, mode="backtest", clock=clock, bus=bus, instruments=inst, client=self.venue, balances=start,
            ids=ClientOrderIds(config.binance.client_order_prefix, seed=BACKTEST_SEED), extra_strategies=strategies or (),
            store=StoreTarget(*store) if store is not None else None,
            book_symbols=list(depth or ()), bar_source="bars" if self.source == "bars" else "trades")
        self.result = out = BacktestResult()
        bus.subscribe(topics.FILLS, out.fills.append, Priority.RECORD)
        bus.subscribe(topics.ORDER_EVENTS, out.orders.append, Priority.RECORD)
        bus.subscribe(topics.RISK_DECISIONS, out.decisions.append, Priority.RECORD)
        if on_bus is not None:
            on_bus(bus)          # extra subscribers (checks, progress)
        self.progress = progress
        self.curve = out.equity = EquityCurve(PortfolioView(kernel.portfolio), inst)
        bus.subscribe(topics.FILLS, self.curve.on_fill, Priority.RECORD)
        # The risk engine's equity breakers need the account valued on every bar, and the store
        # records an equity row per bar; otherwise the portfolio's daily snapshot is enough
        # (the curve above is recorded either way).
        self._snapshot_each_bar = bool(config.risk.max_drawdown or config.risk.daily_loss_limit or store)
        if self.on_events:
            # The curve is recorded on the shortest timeframe's closes (books alone: each book update).
            intervals = kernel.data.intervals
            self._curve_interval = min(intervals, key=parse_interval) if intervals else None
            bus.subscribe(topics.BARS, self._record_bar, Priority.RECORD)
            if self._marks_from_books:
                bus.subscribe(topics.BOOKS, self._record_book, Priority.RECORD)
        self._queue: list = []          # every bar or event, in time order across symbols
        self._next = 0
        self._fast = None               # (kernel-running strategy, symbol, columns) when fast-forward applies
        self._handoff = False           # the next bar was already seen by the kernel
        self._finished = False
        self._audit = None          # audit.watch from start() to finish()

    # ---- the kernel's components, by name (the RL env, tests and tools read them) ----------

    @property
    def portfolio(self):
        return self.kernel.portfolio

    @property
    def execution(self):
        return self.kernel.execution

    @property
    def exits(self):
        return self.kernel.exits

    @property
    def risk(self):
        return self.kernel.risk

    @property
    def strategies(self):
        return self.kernel.strategies

    @property
    def components(self):
        return self.kernel.components

    # ---- stepping --------------------------------------------------------------------------

    def start(self) -> None:
        # Strategy code that opens files, sockets or programs between start() and finish() is
        # reported (audit.py): the engine is the only way data should reach it. Stepped runs (the
        # RL environment) are watched the same as run().
        running = list(self.kernel.strategies.strategies.values())
        self._audit = audit.watch(audit.strategy_files(running), audit.declared_files(running))
        self.result.outside_access = self._audit.start()
        self.kernel.start()
        if self.on_events:
            streams = [sorted(ev, key=_order_key) for ev in self._data.values()]
            self._queue = streams[0] if len(streams) == 1 else list(heapq.merge(*streams, key=_order_key))
            return
        # Timsort is linear on bars already in order (the usual case).
        streams = [bars if isinstance(bars, BarSeries) else sorted(bars, key=_open_time)
                   for bars in self._data.values()]
        self._queue = streams[0] if len(streams) == 1 else list(heapq.merge(*streams, key=_open_time))
        self._fast = self._fast_forward_plan()

    def step(self):
        """Process the next bar or event (in time order across symbols); None when there is none left."""
        if self.on_events:
            return self._step_event()
        if self._fast is not None and not self._handoff and self._next < len(self._queue):
            self._fast_forward()
        self._handoff = False
        if self._next >= len(self._queue):
            return None
        bar = self._queue[self._next]
        self._next += 1
        clock, out = self.clock, self.result
        if bar.open_time > clock.time_ns():
            clock.advance_to(bar.open_time)
        if self.venue.resting:
            self.venue.on_bar(bar)
        self.kernel.portfolio.set_mark_ticks(bar.symbol, bar.close)
        if bar.close_time > clock.time_ns():
            clock.advance_to(bar.close_time)
        self.bus.publish(topics.BARS, bar)
        if self._snapshot_each_bar:
            self.kernel.portfolio.snapshot(bar.close_time)
        self.curve.record(bar.close_time, bar.symbol, bar.close)
        out.bars += 1
        if self.progress is not None:
            self.progress(out.bars, self.total)
        return bar

    def _step_event(self):
        if self._next >= len(self._queue):
            return None
        ev = self._queue[self._next]
        self._next += 1
        t = _event_time(ev)
        if t > self.clock.time_ns():
            self.clock.advance_to(t)                  # closes the bars that ended before it, on time
        out = self.result
        if isinstance(ev, DepthDiffEvent):
            self.bus.publish(topics.DEPTH_DIFFS, ev)  # the data engine's book, then BOOKS
            out.depth_events += 1
        elif isinstance(ev, BookSnapshot):
            self.bus.publish(topics.BOOK_SNAPSHOTS, ev)
            out.depth_events += 1
        else:
            self.bus.publish(topics.TRADES, ev)       # marks, bars, the venue's fills, on_trade
            out.trades += 1
        if self.progress is not None:
            self.progress(out.trades + out.depth_events, self.total)
        return ev

    def _record_bar(self, bar) -> None:
        if bar.interval == self._curve_interval:
            if self._snapshot_each_bar:
                self.kernel.portfolio.snapshot(bar.close_time)
            self.curve.record(bar.close_time, bar.symbol, bar.close)
            self.result.bars += 1

    def _record_book(self, book) -> None:
        """Depth without trades: the book's mid is the mark, and each update a point of the curve."""
        bid, ask = book.best_bid(), book.best_ask()
        if bid and ask:
            mid = (bid[0] + ask[0]) // 2
            self.kernel.portfolio.set_mark_ticks(book.symbol, mid)
            now = self.clock.time_ns()
            if self._snapshot_each_bar:
                self.kernel.portfolio.snapshot(now)
            self.curve.record(now, book.symbol, mid)

    # ---- fast-forward ------------------------------------------------------------------

    def _fast_forward_plan(self):
        """Compiled strategies only, one symbol, nothing else listening to bars: the kernels can
        run over the quiet bars in C (see _fast_forward). None when any of that is not so."""
        engine = self.kernel.strategies
        strategies = [s for s in engine.strategies.values() if s.id not in engine.disabled]
        if len(self._data) != 1 or not strategies or not all(isinstance(s, CompiledBarStrategy) for s in strategies):
            return None
        symbol = next(iter(self._data))
        bars = self._queue
        if not bars or any(bars[0].interval != s.timeframe or symbol not in s.traded_symbols for s in strategies):
            return None
        # The bars the kernel skips reach the risk engine as one BARS_SKIPPED (its mark and data
        # freshness) and the strategy host not at all: nobody else may need every bar.
        expected = {self.kernel.risk.handle_bar, engine.handle_bar}
        if set(self.bus.subscribers(topics.BARS)) - expected or self._snapshot_each_bar:
            return None
        if len(strategies) != 1:
            return None             # one kernel per run: several would each stop the others' bars
        cols = bars.columns if isinstance(bars, BarSeries) else BarSeries(bars).columns
        return strategies[0], symbol, cols

    def _fast_forward(self) -> None:
        """Run the kernel over bars until one it acts on, while nothing else can happen: no
        order resting, no exit armed, no timer due. Those bars only move the marks and the curve."""
        strategy, symbol, cols = self._fast
        if strategy.id in self.kernel.strategies.disabled:
            self._fast = None
            return
        if self.venue.resting or self.kernel.exits.brackets:
            return
        i, n = self._next, len(self._queue)
        due = self.clock.next_timer_ns()
        stop = n if due is None else min(n, int(np.searchsorted(cols["close_time"], due, side="left")))
        if stop <= i:
            return
        kernel = strategy.kernels[symbol]
        j = run_until_action(kernel, cols["open"], cols["high"], cols["low"], cols["close"], cols["volume"], i, stop)
        if j > i:
            last = self._queue[j - 1]
            self.clock.advance_to(max(self.clock.time_ns(), last.close_time))
            self.kernel.portfolio.set_mark_ticks(symbol, last.close)
            self.bus.publish(topics.BARS_SKIPPED, last)
            self.curve.extend(cols["close_time"][i:j].tolist(), symbol, cols["close"][i:j].tolist())
            self.result.bars += j - i
            self._next = j
            if self.progress is not None:
                self.progress(self.result.bars, self.total)
        if j < stop:
            strategy.take_action(symbol, self._queue[j].close_time)   # the next step() hands it over
            self._handoff = True

    def finish(self) -> BacktestResult:
        if not self._finished:
            self._finished = True
            try:
                self.kernel.stop()
            finally:
                if self._audit is not None:
                    self._audit.stop()
            out = self.result
            pf = self.kernel.portfolio
            out.quote_asset = self.quote
            out.base_assets = {s: i.base_asset for s, i in self.instruments.items()}
            out.balances = pf.balances()
            out.final_equity = pf.equity()
            out.strategy_pnl = pf.strategy_pnl()
        return self.result

    def run(self) -> BacktestResult:
        # The cyclic collector rescans every result kept so far (orders, fills, decisions) each
        # time it runs: ~15 % of a trade-heavy run. Rarer collections for the run; still collected.
        threshold = gc.get_threshold()
        gc.set_threshold(RUN_GC_THRESHOLD, *threshold[1:])
        self.start()
        try:
            while self.step() is not None:
                pass
        finally:
            result = self.finish()
            gc.set_threshold(*threshold)
        return result


async def run_backtest(config, bars_by_symbol: dict[str, list] | None = None, **options) -> BacktestResult:
    """Run a whole backtest (the keyword options are Backtest's). A coroutine for the callers
    that run inside an event loop (the store writer's thread, the CLI); the work is synchronous."""
    return Backtest(config, bars_by_symbol, **options).run()

