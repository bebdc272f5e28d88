"""Run the node's engines over recorded bars: `run_backtest(config, bars)`.

The strategies, the risk engine, the execution engine, the exit manager and the
portfolio are the live node's classes; only the clock (TestClock, moved bar by bar) and
the venue (BacktestVenue) differ. For each bar, in time order across symbols: the clock
moves to the bar's open and the venue fills what the bar reaches; the portfolio marks the
close; the clock moves to the close and the bar is published (strategies see it only
now); the orders it caused are sent to the venue, to fill in a later bar.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from decimal import Decimal

from abidance.core import topics
from abidance.core.bus import MessageBus
from abidance.core.clock import TestClock
from abidance.exchange.binance.ids import ClientOrderIds
from abidance.execution.engine import ExecutionEngine
from abidance.execution.exits import ExitManager
from abidance.portfolio.portfolio import Portfolio
from abidance.risk.engine import RiskEngine
from abidance.runtime.node import build_strategies
from abidance.strategy.engine import StrategyEngine
from abidance.backtest.venue import BacktestVenue


@dataclass
class BacktestResult:
    fills: list = field(default_factory=list)
    orders: list = field(default_factory=list)          # OrderEvents
    decisions: list = field(default_factory=list)
    equity: list = field(default_factory=list)          # EquityPoints, one per bar
    balances: dict = field(default_factory=dict)
    final_equity: Decimal = Decimal(0)
    bars: int = 0
    quote_asset: str = ""
    base_assets: dict = field(default_factory=dict)     # symbol -> base asset


def sim_instruments() -> dict:
    """The simulator's instruments (Binance-like filters) for symbols of recorded data."""
    from abidance.exchange.binance.instruments import parse_exchange_info
    from abidance.exchange.sim.exchange import SimExchange
    from abidance.exchange.sim.symbols import default_symbols

    return parse_exchange_info(SimExchange(default_symbols(), lambda: 0).exchange_info())


async def run_backtest(config, bars_by_symbol: dict[str, list], *, instruments: dict | None = None,
                       balances: dict[str, Decimal] | None = None, taker_bps: Decimal = Decimal(10),
                       maker_bps: Decimal = Decimal(10), slippage_bps: Decimal = Decimal(0),
                       participation: Decimal | None = None, latency_ms: int = 0, spread_bps: Decimal = Decimal(0),
                       on_bus=None, progress=None, store=None) -> BacktestResult:
    instruments = instruments or sim_instruments()
    inst = {s: instruments[s] for s in bars_by_symbol}
    streams = [iter(sorted(bars, key=lambda b: b.open_time)) for bars in bars_by_symbol.values()]
    first = min((b[0].open_time for b in bars_by_symbol.values() if b), default=0)
    clock, bus = TestClock(first), MessageBus()
    out = BacktestResult()
    bus.subscribe(topics.FILLS, out.fills.append)
    bus.subscribe(topics.ORDER_EVENTS, out.orders.append)
    bus.subscribe(topics.RISK_DECISIONS, out.decisions.append)
    if on_bus is not None:
        on_bus(bus)          # extra subscribers (checks, progress)
    quote = config.risk.quote_asset
    start = balances if balances is not None else {quote: Decimal(10_000)}
    day = 86_400
    portfolio = Portfolio(bus, clock, quote, inst, dict(start), equity_interval_s=day)
    venue = BacktestVenue(bus, clock, inst, taker_bps=taker_bps, maker_bps=maker_bps, slippage_bps=slippage_bps,
                          participation=participation, latency_ms=latency_ms, spread_bps=spread_bps)
    execution = ExecutionEngine(bus, clock, venue, inst)
    exits = ExitManager(bus, clock, execution)
    risk = RiskEngine(bus, clock, config.risk, inst, portfolio, ClientOrderIds("bt", seed=1), 0.0, None,
                      config.execution.max_slippage_bps, poll_interval_s=day)
    strategies = StrategyEngine(bus, clock, build_strategies(config), portfolio,
                                {s: float(i.filters.price_fp.increment) for s, i in inst.items()})
    components = [portfolio, execution, exits, risk, strategies]
    if store is not None:
        # Every event into the store (a database of its own), as the live node records them.
        from abidance.store.writer import StoreWriter

        connect, database, spool_dir = store
        components.insert(0, StoreWriter(bus, clock, connect, inst, spool_dir, database=database,
                                         batch_rows=5000, flush_s=86_400))
    for c in components:
        c.start()
    total = sum(len(b) for b in bars_by_symbol.values())
    heap = []
    for i, it in enumerate(streams):
        bar = next(it, None)
        if bar is not None:
            heapq.heappush(heap, (bar.open_time, i, bar))
    try:
        while heap:
            _, i, bar = heapq.heappop(heap)
            clock.advance_to(max(clock.time_ns(), bar.open_time))
            venue.on_bar(bar)
            portfolio.set_mark(bar.symbol, inst[bar.symbol].filters.price_fp.increment * bar.close)
            clock.advance_to(max(clock.time_ns(), bar.close_time))
            bus.publish(topics.BARS, bar)
            await execution.drain()
            out.equity.append(portfolio.snapshot(clock.time_ns()))
            out.bars += 1
            if progress is not None:
                progress(out.bars, total)
            nxt = next(streams[i], None)
            if nxt is not None:
                heapq.heappush(heap, (nxt.open_time, i, nxt))
    finally:
        for c in reversed(components):
            c.stop()
    out.quote_asset = quote
    out.base_assets = {s: i.base_asset for s, i in inst.items()}
    out.balances = portfolio.balances()
    out.final_equity = portfolio.equity()
    return out
