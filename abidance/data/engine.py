"""DataEngine: market data in, the node's view of the market out.

- Bars: trades -> bars at every configured interval, closed on time (`bar_source = "trades"`,
  live and trade backtests). A backtest over recorded candles publishes its bars itself
  (`bar_source = "bars"`): then no trade is aggregated here.
- Order books (`book_symbols`): depth diffs (topics.DEPTH_DIFFS) and full snapshots
  (topics.BOOK_SNAPSHOTS) kept as one consistent L2 book per symbol (abidance/data/books.py).
  Live the connector's diffs and its REST snapshots feed them; in a backtest, recorded depth
  (a snapshot, then diffs). A book is published on topics.BOOKS (as a read-only BookView)
  after each diff that changed it while it is consistent; topics.BOOK_STATUS says when it
  becomes ready or stops being so.

Subscribed at Priority.DATA: the bars and books a message closes are published before any
engine or strategy reacts to the message itself.
"""

from __future__ import annotations

from abidance.core import topics
from abidance.core.bus import Priority
from abidance.core.component import Component
from abidance.data.bars import BarAggregator
from abidance.data.books import Books

BAR_SOURCES = ("trades", "bars")


class DataEngine(Component):
    def __init__(self, bus, clock, symbols, intervals, *, bar_source: str = "trades", book_symbols=(),
                 snapshot_limit: int = 1000):
        super().__init__("DataEngine", bus, clock)
        if bar_source not in BAR_SOURCES:
            raise ValueError(f"bar_source must be one of {', '.join(BAR_SOURCES)}, got {bar_source!r}")
        self.symbols = list(symbols)
        self.intervals = list(dict.fromkeys(intervals))
        self.bar_source = bar_source
        self.aggregators: dict[str, list[BarAggregator]] = {}
        self.books = Books(bus, clock, [s for s in book_symbols if s in self.symbols], snapshot_limit)
        self.bars = 0

    def describe(self) -> dict:
        return {"symbols": list(self.symbols), "intervals": list(self.intervals), "bar_source": self.bar_source,
                "book_symbols": list(self.books.symbols)}

    def on_start(self) -> None:
        if self.bar_source == "trades":
            for symbol in self.symbols:
                self.aggregators[symbol] = [BarAggregator(symbol, interval, self.clock, self._on_bar)
                                            for interval in self.intervals]
            self.bus.subscribe(topics.TRADES, self.handle_trade, Priority.DATA)
        self.books.start()

    def on_stop(self) -> None:
        self.books.stop()
        self.bus.unsubscribe(topics.TRADES, self.handle_trade)
        for aggs in self.aggregators.values():
            for agg in aggs:
                agg.close()

    def handle_trade(self, trade) -> None:
        for agg in self.aggregators.get(trade.symbol, ()):
            agg.on_trade(trade)

    def _on_bar(self, bar) -> None:
        self.bars += 1
        self.bus.publish(topics.BARS, bar)
