"""DataEngine: trades -> bars at every configured interval, closed on time.

Books need no work here: the connector publishes a book only while it is consistent,
and BOOK_STATUS tells when it stops being so. Strategies get closed bars only.
"""

from __future__ import annotations

from abidance.core import topics
from abidance.core.component import Component
from abidance.data.bars import BarAggregator


class DataEngine(Component):
    def __init__(self, bus, clock, symbols, intervals):
        super().__init__("DataEngine", bus, clock)
        self.symbols = list(symbols)
        self.intervals = list(dict.fromkeys(intervals))
        self.aggregators: dict[str, list[BarAggregator]] = {}
        self.bars = 0

    def on_start(self) -> None:
        for symbol in self.symbols:
            self.aggregators[symbol] = [BarAggregator(symbol, interval, self.clock, self._on_bar)
                                        for interval in self.intervals]
        self.bus.subscribe(topics.TRADES, self.handle_trade)

    def on_stop(self) -> None:
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
