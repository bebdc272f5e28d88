"""Turns the exchange's events into Binance stream payloads on the hub.

The exchange reports each level change with the id of the book event that caused it;
DepthBatch gathers them into one depthUpdate per 100 ms (or 1000 ms) window, with `U`
the first id in the window and `u` the last, so the stream joins a REST snapshot's
`lastUpdateId` by Binance's procedure. Faults may drop, duplicate or reorder the
batches on their way out (the book client must then resync).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from abidance.exchange.sim.streams import StreamHub


@dataclass
class DepthBatch:
    first_id: int = 0
    last_id: int = 0
    bids: dict[str, str] = field(default_factory=dict)
    asks: dict[str, str] = field(default_factory=dict)

    def add(self, update_id: int, side: str, price: str, qty: str) -> None:
        if not self.first_id:
            self.first_id = update_id
        self.last_id = update_id
        (self.bids if side == "b" else self.asks)[price] = qty

    def take(self, symbol: str, event_ms: int) -> dict | None:
        if not self.first_id:
            return None
        payload = {"e": "depthUpdate", "E": event_ms, "s": symbol, "U": self.first_id, "u": self.last_id,
                   "b": [[p, q] for p, q in self.bids.items()], "a": [[p, q] for p, q in self.asks.items()]}
        self.first_id = self.last_id = 0
        self.bids, self.asks = {}, {}
        return payload


class StreamPublisher:
    """The exchange's listener: fans trades, depth, tops and user events out to the hub."""

    def __init__(self, hub: StreamHub, clock_ms, faults, aggregates: dict | None = None):
        self.hub = hub
        self.clock_ms = clock_ms
        self.faults = faults
        self.aggregates = aggregates or {}          # symbol -> objects with on_trade(trade)
        self.fast: dict[str, DepthBatch] = {}       # @depth@100ms
        self.slow: dict[str, DepthBatch] = {}       # @depth (1000 ms)

    # ---- ExchangeListener ----------------------------------------------------------

    def on_trade(self, symbol: str, trade: dict) -> None:
        for agg in self.aggregates.get(symbol, ()):
            agg.on_trade(trade)
        low = symbol.lower()
        now = self.clock_ms()
        if self.faults.streams_stalled(now):
            return
        if self.hub.has_subscribers(f"{low}@trade"):
            self.hub.publish(f"{low}@trade", {
                "e": "trade", "E": now, "s": symbol, "t": trade["id"], "p": trade["price"], "q": trade["qty"],
                "T": trade["time"], "m": trade["buyer_is_maker"], "M": True})
        if self.hub.has_subscribers(f"{low}@aggTrade"):
            self.hub.publish(f"{low}@aggTrade", {
                "e": "aggTrade", "E": now, "s": symbol, "a": trade["id"], "p": trade["price"], "q": trade["qty"],
                "f": trade["id"], "l": trade["id"], "T": trade["time"], "m": trade["buyer_is_maker"], "M": True})

    def on_depth_change(self, symbol: str, update_id: int, side: str, price: str, qty: str) -> None:
        self.fast.setdefault(symbol, DepthBatch()).add(update_id, side, price, qty)
        self.slow.setdefault(symbol, DepthBatch()).add(update_id, side, price, qty)

    def on_book_ticker(self, symbol: str, update_id: int, bid_price: str, bid_qty: str,
                       ask_price: str, ask_qty: str) -> None:
        name = f"{symbol.lower()}@bookTicker"
        if self.hub.has_subscribers(name) and not self.faults.streams_stalled(self.clock_ms()):
            self.hub.publish(name, {"u": update_id, "s": symbol, "b": bid_price, "B": bid_qty,
                                    "a": ask_price, "A": ask_qty})

    def on_user_event(self, account_id: int, payload: dict) -> None:
        self.hub.publish_user(account_id, payload)

    # ---- periodic flushes ----------------------------------------------------------

    def flush_depth(self, slow: bool) -> None:
        batches, suffix = (self.slow, "@depth") if slow else (self.fast, "@depth@100ms")
        now = self.clock_ms()
        for symbol, batch in batches.items():
            payload = batch.take(symbol, now)
            if payload is None:
                continue
            name = symbol.lower() + suffix
            for out in self.faults.depth_events(name, payload):
                self.hub.publish(name, out)

    def publish_partial_depth(self, exchange, symbols, fast: bool) -> None:
        for symbol in symbols:
            low = symbol.lower()
            for levels in (5, 10, 20):
                name = f"{low}@depth{levels}" + ("@100ms" if fast else "")
                if self.hub.has_subscribers(name):
                    snap = exchange.depth(symbol, levels)
                    self.hub.publish(name, {"lastUpdateId": snap["lastUpdateId"], "bids": snap["bids"],
                                            "asks": snap["asks"]})
