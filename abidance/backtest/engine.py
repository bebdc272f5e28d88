"""Run the node's engines over recorded bars or trades: `Backtest(config, bars).run()`,
`Backtest(config, trades={...}).run()`.

The strategies, the risk engine, the execution engine, the exit manager and the
portfolio are the live node's classes; only the clock (TestClock, moved bar by bar) and
the venue (BacktestVenue) differ. For each bar, in time order across symbols: the clock
moves to the bar's open and the venue fills what the bar reaches; the portfolio marks the
close; the clock moves to the close and the bar is published (strategies see it only
now); the orders it caused are sent to the venue, to fill in a later bar. Over trades,
the node's DataEngine builds the bars from them on clock timers and orders fill at the
next trade.

The venue answers at once, so the execution engine runs its requests inline
(`ExecutionEngine(inline=True)`): a backtest needs no event loop and can be stepped
bar by bar (`start()`, `step()`, `finish()`), as the RL environment does.
"""

from __future__ import annotations

import gc
import heapq
from operator import attrgetter
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np

from abidance._core.barloop import run_until_action
from abidance.core import topics
from abidance.core.bus import MessageBus
from abidance.core.clock import TestClock
from abidance.exchange.binance.ids import ClientOrderIds
from abidance.execution.engine import ExecutionEngine
from abidance.execution.exits import ExitManager
from abidance.portfolio.portfolio import Portfolio
from abidance.risk.engine import RiskEngine
from abidance.runtime.node import build_strategies
from abidance.strategy.compiled import CompiledBarStrategy
from abidance.strategy.engine import StrategyEngine
from abidance.backtest.data import BarSeries
from abidance.backtest.equity import EquityCurve
from abidance.backtest.venue import BacktestVenue, FillModel

DAY_S = 86_400
RUN_GC_THRESHOLD = 100_000      # allocations between young-generation collections during run() (default 700)


_open_time = attrgetter("open_time")


def _trade_order(trade) -> tuple[int, int]:
    return trade.ts_trade, trade.trade_id


def _time(event) -> int:
    return event.ts_trade if hasattr(event, "ts_trade") else event.open_time


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
    quote_asset: str = ""
    base_assets: dict = field(default_factory=dict)     # symbol -> base asset


def sim_instruments() -> dict:
    """The simulator's instruments (Binance-like filters) for symbols of recorded data."""
    from abidance.exchange.binance.instruments import parse_exchange_info
    from abidance.exchange.sim.exchange import SimExchange
    from abidance.exchange.sim.symbols import default_symbols

    return parse_exchange_info(SimExchange(default_symbols(), lambda: 0).exchange_info())


class Backtest:
    """One backtest run, steppable: over bars ({symbol: [Bar, ...]}) or over trades
    (`trades={symbol: [TradeEvent, ...]}`: the node's DataEngine builds the bars from them,
    as live, and orders fill at the next trade)."""

    def __init__(self, config, bars_by_symbol: dict[str, list] | None = None, *, trades: dict | None = None,
                 instruments: dict | None = None, balances: dict[str, Decimal] | None = None,
                 fill: FillModel | None = None, strategies: list | None = None, on_bus=None, progress=None,
                 store=None, **fill_overrides):
        if (trades is None) == (bars_by_symbol is None):
            raise ValueError("a backtest runs over bars or over trades: give exactly one of them")
        self.on_trades = trades is not None
        bars_by_symbol = trades if self.on_trades else bars_by_symbol
        # The fill model: `fill`, else the config's [backtest] section with any keyword
        # (taker_bps=, slippage_bps=, participation=, ...) on top.
        fill = fill or FillModel.from_config(config.backtest, **fill_overrides)
        instruments = instruments or sim_instruments()
        missing = sorted(set(bars_by_symbol) - set(instruments))
        if missing:
            raise ValueError(f"no instrument for {', '.join(missing)} (data given for them)")
        self.instruments = inst = {s: instruments[s] for s in bars_by_symbol}
        self._bars = bars_by_symbol
        self.total = sum(len(b) for b in bars_by_symbol.values())
        first = min((_time(b[0]) for b in bars_by_symbol.values() if b), default=0)
        self.clock, self.bus = clock, bus = TestClock(first), MessageBus()
        self.result = out = BacktestResult()
        bus.subscribe(topics.FILLS, out.fills.append)
        bus.subscribe(topics.ORDER_EVENTS, out.orders.append)
        bus.subscribe(topics.RISK_DECISIONS, out.decisions.append)
        if on_bus is not None:
            on_bus(bus)          # extra subscribers (checks, progress)
        self.progress = progress
        self.quote = quote = config.risk.quote_asset
        start = balances if balances is not None else {quote: Decimal(10_000)}
        self.portfolio = Portfolio(bus, clock, quote, inst, dict(start), equity_interval_s=DAY_S)
        self.venue = BacktestVenue(bus, clock, inst, fill)
        self.execution = ExecutionEngine(bus, clock, self.venue, inst, inline=True)
        self.exits = ExitManager(bus, clock, self.execution)
        self.risk = RiskEngine(bus, clock, config.risk, inst, self.portfolio, ClientOrderIds("bt", seed=1), 0.0,
                               None, config.execution.max_slippage_bps, poll_interval_s=DAY_S)
        # The config's strategies, plus any instances given (an RL agent, a test's probe).
        self.strategies = StrategyEngine(bus, clock, build_strategies(config) + list(strategies or ()), self.portfolio,
                                         {s: float(i.filters.price_fp.increment) for s, i in inst.items()})
        self.curve = out.equity = EquityCurve(self.portfolio, inst)
        bus.subscribe(topics.FILLS, self.curve.on_fill)
        # The risk engine's equity breakers need the account valued on every bar, and the store
        # records an equity row per bar; otherwise the portfolio's daily snapshot is enough
        # (the curve above is recorded either way).
        self._snapshot_each_bar = bool(config.risk.max_drawdown or config.risk.daily_loss_limit or store)
        self.components = [self.portfolio, self.execution, self.exits, self.risk, self.strategies]
        if self.on_trades:
            # Bars from the trades by the node's own DataEngine; the curve is recorded on the
            # shortest timeframe's closes.
            from abidance.data.bars import parse_interval
            from abidance.data.engine import DataEngine

            intervals = sorted({s.timeframe for s in self.strategies.strategies.values()} or {"1m"},
                               key=parse_interval)
            self.components.insert(4, DataEngine(bus, clock, list(inst), intervals))
            self._curve_interval = intervals[0]
            bus.subscribe(topics.BARS, self._record_bar)
        if store is not None:
            # Every event into the store (a database of its own), as the live node records them.
            from abidance.store.writer import StoreWriter

            connect, database, spool_dir = store
            self.components.insert(0, StoreWriter(bus, clock, connect, inst, spool_dir, database=database,
                                                  batch_rows=5000, flush_s=DAY_S))
        self._queue: list = []          # every bar, in time order across symbols
        self._next = 0
        self._fast = None               # (kernel-running strategies, columns) when fast-forward applies
        self._handoff = False           # the next bar was already seen by the kernel
        self._finished = False

    def start(self) -> None:
        for c in self.components:
            c.start()
        if self.on_trades:
            streams = [sorted(trades, key=_trade_order) for trades in self._bars.values()]
            self._queue = streams[0] if len(streams) == 1 else list(heapq.merge(*streams, key=_trade_order))
            return
        # Timsort is linear on bars already in order (the usual case).
        streams = [bars if isinstance(bars, BarSeries) else sorted(bars, key=_open_time)
                   for bars in self._bars.values()]
        self._queue = streams[0] if len(streams) == 1 else list(heapq.merge(*streams, key=_open_time))
        self._fast = self._fast_forward_plan()

    def step(self):
        """Process the next bar or trade (in time order across symbols); None when there is none left."""
        if self.on_trades:
            return self._step_trade()
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
        self.portfolio.set_mark_ticks(bar.symbol, bar.close)
        if bar.close_time > clock.time_ns():
            clock.advance_to(bar.close_time)
        self.bus.publish(topics.BARS, bar)
        if self._snapshot_each_bar:
            self.portfolio.snapshot(bar.close_time)
        self.curve.record(bar.close_time, bar.symbol, bar.close)
        out.bars += 1
        if self.progress is not None:
            self.progress(out.bars, self.total)
        return bar

    def _step_trade(self):
        if self._next >= len(self._queue):
            return None
        trade = self._queue[self._next]
        self._next += 1
        if trade.ts_trade > self.clock.time_ns():
            self.clock.advance_to(trade.ts_trade)     # closes the bars that ended before it, on time
        self.venue.on_trade(trade)                    # orders placed before this trade
        self.bus.publish(topics.TRADES, trade)        # marks, bars, strategies' on_trade
        self.result.trades += 1
        if self.progress is not None:
            self.progress(self.result.trades, self.total)
        return trade

    def _record_bar(self, bar) -> None:
        if bar.interval == self._curve_interval:
            if self._snapshot_each_bar:
                self.portfolio.snapshot(bar.close_time)
            self.curve.record(bar.close_time, bar.symbol, bar.close)
            self.result.bars += 1

    # ---- fast-forward ------------------------------------------------------------------

    def _fast_forward_plan(self):
        """Compiled strategies only, one symbol, nothing else listening to bars: the kernels can
        run over the quiet bars in C (see _fast_forward). None when any of that is not so."""
        strategies = [s for s in self.strategies.strategies.values() if s.id not in self.strategies.disabled]
        if len(self._bars) != 1 or not strategies or not all(isinstance(s, CompiledBarStrategy) for s in strategies):
            return None
        symbol = next(iter(self._bars))
        bars = self._queue
        if not bars or any(bars[0].interval != s.timeframe or symbol not in s.traded_symbols for s in strategies):
            return None
        expected = {self.risk.handle_bar, self.strategies.handle_bar}
        if set(self.bus._subscribers.get(topics.BARS, ())) - expected or self._snapshot_each_bar:
            return None
        if len(strategies) != 1:
            return None             # one kernel per run: several would each stop the others' bars
        cols = bars.columns if isinstance(bars, BarSeries) else BarSeries(bars).columns
        return strategies[0], symbol, cols

    def _fast_forward(self) -> None:
        """Run the kernel over bars until one it acts on, while nothing else can happen: no
        order resting, no exit armed, no timer due. Those bars only move the marks and the curve."""
        strategy, symbol, cols = self._fast
        if strategy.id in self.strategies.disabled:
            self._fast = None
            return
        if self.venue.resting or self.exits.brackets:
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
            self.portfolio.set_mark_ticks(symbol, last.close)
            self.risk.handle_bar(last)
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
            for c in reversed(self.components):
                c.stop()
            out = self.result
            out.quote_asset = self.quote
            out.base_assets = {s: i.base_asset for s, i in self.instruments.items()}
            out.balances = self.portfolio.balances()
            out.final_equity = self.portfolio.equity()
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


async def run_backtest(config, bars_by_symbol: dict[str, list], **options) -> BacktestResult:
    """Run a whole backtest (the keyword options are Backtest's). A coroutine for the callers
    that run inside an event loop (the store writer's thread, the CLI); the work is synchronous."""
    return Backtest(config, bars_by_symbol, **options).run()
