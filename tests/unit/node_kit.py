"""Shared factories for the node engine tests (strategy, risk, execution, exits).

Instruments come from the simulator's own exchangeInfo, so the filters are realistic and
the tests never skip. Market events are real wire events parsed from Binance frames.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
from collections import defaultdict
from decimal import Decimal as D

import orjson

from abidance._core.book import OrderBook
from abidance._core.wire import InstrumentCodec, MarketParser
from abidance.config import RiskSection
from abidance.core import topics
from abidance.core.bus import MessageBus
from abidance.core.clock import TestClock
from abidance.core.events import Bar, Fill, OrderEvent, OrderRequest, OrderUpdate, Signal
from abidance.exchange.binance.errors import BinanceApiError
from abidance.exchange.binance.instruments import parse_exchange_info
from abidance.exchange.sim.exchange import SimExchange
from abidance.exchange.sim.symbols import default_symbols

S = 1_000_000_000
T0 = 1_700_000_000 * S          # 2023-11-14T22:13:20Z: mid-day, far from the daily timer
SYMBOL = "BTCUSDT"


def sim_instruments() -> dict:
    """Instruments parsed from the simulator's GET /api/v3/exchangeInfo answer."""
    sim = SimExchange(default_symbols(), lambda: T0 // 1_000_000)
    problems: list[str] = []
    out = parse_exchange_info(sim.exchange_info(), problems)
    assert not problems, problems
    return out


INSTRUMENTS = sim_instruments()
USDT_INSTRUMENTS = {s: i for s, i in INSTRUMENTS.items() if i.quote_asset == "USDT"}
TICK_SIZES = {s: float(i.filters.price_fp.increment) for s, i in INSTRUMENTS.items()}
PARSER = MarketParser([InstrumentCodec(s, i.price, i.qty) for s, i in INSTRUMENTS.items()])


def ticks(price: str, symbol: str = SYMBOL) -> int:
    return INSTRUMENTS[symbol].filters.price_fp.to_units(price)


def steps(qty: str, symbol: str = SYMBOL) -> int:
    return INSTRUMENTS[symbol].filters.qty_fp.to_units(qty)


MONEY_KEYS = ("max_order_notional", "max_gross_exposure", "daily_loss_limit", "max_drawdown", "fixed_quote")


def risk_settings(**overrides) -> RiskSection:
    """The config's risk defaults with overrides (money as strings, like the TOML file)."""
    return dataclasses.replace(RiskSection(), **{k: D(v) if k in MONEY_KEYS else v for k, v in overrides.items()})


class Recorder:
    """Everything published on the given topics, by topic."""

    def __init__(self, bus: MessageBus, *topic_names: str):
        self.seen: dict[str, list] = defaultdict(list)
        for topic in topic_names:
            bus.subscribe(topic, self.seen[topic].append)

    def __getitem__(self, topic: str) -> list:
        return self.seen[topic]

    def alerts(self, code: str | None = None) -> list:
        return [a for a in self.seen[topics.ALERTS] if code is None or a.code == code]


class FakePortfolio:
    """The read-only portfolio view the engines use. Its positions are strategy `owner`'s (None:
    whichever strategy asks, for tests of one strategy); the account's position is the same."""

    def __init__(self, equity="10000", cash="10000", positions: dict | None = None, consecutive_losses: int = 0,
                 owner: str | None = None):
        self._equity = D(equity)
        self._cash = {"USDT": D(cash)}
        self.positions = {k: D(v) for k, v in (positions or {}).items()}
        self.consecutive_losses = consecutive_losses
        self.owner = owner

    def position(self, symbol: str, strategy_id: str | None = None) -> D:
        if strategy_id is not None and self.owner is not None and strategy_id != self.owner:
            return D(0)
        return self.positions.get(symbol, D(0))

    def tradable_position(self, symbol: str, strategy_id: str | None = None) -> D:
        return self.position(symbol, strategy_id)

    def equity(self) -> D:
        return self._equity

    def cash(self, asset: str | None = None) -> D:
        return self._cash.get(asset or "USDT", D(0))


# ---- market events ---------------------------------------------------------------------------

_trade_ids = iter(range(1, 10**9))


def trade(price: str, symbol: str = SYMBOL, qty: str = "0.001", ts_ns: int = T0):
    """A real TradeEvent (prices in ticks of the symbol), parsed from a Binance frame."""
    ms = ts_ns // 1_000_000
    frame = orjson.dumps({"e": "trade", "E": ms, "s": symbol, "t": next(_trade_ids), "p": price, "q": qty,
                          "T": ms, "m": False, "M": True})
    ev = PARSER.parse(frame, ts_ns)
    assert ev is not None, PARSER.last_error
    return ev


def book(bids, asks, symbol: str = SYMBOL, update_id: int = 1) -> OrderBook:
    """A ready OrderBook from [(price str, qty str), ...] per side."""
    ob = OrderBook(symbol)
    status = ob.apply_snapshot([(ticks(p, symbol), steps(q, symbol)) for p, q in bids],
                               [(ticks(p, symbol), steps(q, symbol)) for p, q in asks], update_id)
    assert int(status) == 0 and ob.ready, status
    return ob


def bar(close: int, symbol: str = SYMBOL, interval: str = "1m", i: int = 0) -> Bar:
    """A closed bar whose OHLC are all `close` (ticks); i numbers it in time."""
    open_time = T0 + i * 60 * S
    return Bar(symbol, interval, open_time, open_time + 60 * S, close, close, close, close, 100, 1)


def signal(side: str = "BUY", confidence: float = 0.8, symbol: str = SYMBOL, strategy_id: str = "s1", **kw) -> Signal:
    return Signal(strategy_id, symbol, side, confidence, T0, **kw)


def fill(side: str, qty: str, price: str, symbol: str = SYMBOL, cid: str = "c1", strategy_id: str = "s1",
         trade_id: int = 1, fee: str = "0", fee_asset: str = "USDT", ts: int = T0) -> Fill:
    return Fill(cid, strategy_id, symbol, side, D(qty), D(price), D(fee), fee_asset, trade_id, False, ts)


def order_event(cid: str, status: str, filled: int = 0, quantity: int = 40, side: str = "BUY",
                symbol: str = SYMBOL) -> OrderEvent:
    return OrderEvent(cid, "s1", symbol, side, "MARKET", status, "NEW", quantity, filled, 0, 1, "", T0)


def request(cid: str, side: str = "BUY", order_type: str = "MARKET", qty: int = 40, price: int = 0,
            symbol: str = SYMBOL, **kw) -> OrderRequest:
    return OrderRequest(cid, kw.pop("strategy_id", "s1"), symbol, side, order_type, qty, price,
                        kw.pop("time_in_force", "GTC" if order_type == "LIMIT" else ""), T0, **kw)


def update(cid: str, status: str, execution_type: str | None = None, *, symbol: str = SYMBOL, side: str = "BUY",
           order_type: str = "MARKET", qty: str = "0.0004", price: str = "0", last_qty: str = "0",
           last_price: str = "0", cum_qty: str = "0", cum_quote: str = "0", trade_id: int = -1,
           order_id: int = 1, fee: str = "0", fee_asset: str = "") -> OrderUpdate:
    """An executionReport as the user stream parses it (or a REST snapshot in a reconciliation)."""
    return OrderUpdate(symbol, cid, order_id, side, order_type, "GTC" if order_type == "LIMIT" else "",
                       execution_type or status, status, D(price), D(qty), D(0), D(last_qty), D(last_price),
                       D(cum_qty), D(cum_quote), D(fee), fee_asset, trade_id, False, "NONE", "", T0, T0)


# ---- Binance-shaped REST answers -------------------------------------------------------------


def answer(order, status: str, executed: str = "0", quote: str = "0", fills=(), order_id: int = 1) -> dict:
    """POST/GET/DELETE /api/v3/order answer for `order` (FULL when fills are given)."""
    inst = INSTRUMENTS[order.symbol]
    return {"symbol": order.symbol, "orderId": order_id, "orderListId": -1,
            "clientOrderId": order.client_order_id, "transactTime": T0 // 1_000_000,
            "price": inst.price.to_str(order.price) if order.price else "0.00000000",
            "origQty": inst.qty.to_str(order.quantity), "executedQty": executed, "cummulativeQuoteQty": quote,
            "status": status, "timeInForce": order.time_in_force or "GTC", "type": order.order_type,
            "side": order.side, "fills": [{"price": p, "qty": q, "commission": "0", "commissionAsset": "USDT",
                                           "tradeId": t} for p, q, t in fills]}


class FakeClient:
    """An ExecutionClient whose answers are scripted per call kind.

    Each queue item is a dict (returned), an exception (raised) or a callable(order) giving
    either. With an empty queue, submit acknowledges NEW and cancel answers CANCELED.
    """

    def __init__(self):
        self.queues: dict[str, list] = defaultdict(list)
        self.calls: list[tuple[str, str]] = []

    def script(self, kind: str, *items) -> None:
        self.queues[kind].extend(items)

    def prepare(self, order) -> str:
        return f"signed-query-for-{order.client_order_id}"

    async def _answer(self, kind: str, order, default):
        self.calls.append((kind, order.client_order_id))
        await asyncio.sleep(0)
        item = self.queues[kind].pop(0) if self.queues[kind] else default
        if callable(item):
            item = item(order)
        if isinstance(item, BaseException):
            raise item
        if item is None:
            raise AssertionError(f"unscripted {kind} for {order.client_order_id}")
        return item

    async def submit(self, order) -> dict:
        return await self._answer("submit", order, lambda o: answer(o, "NEW"))

    async def cancel(self, order) -> dict:
        return await self._answer("cancel", order, lambda o: answer(o, "CANCELED", "0"))

    async def query(self, order) -> dict:
        return await self._answer("query", order, None)

    async def open_orders(self) -> list[dict]:
        return []


def api_error(code: int, msg: str, http_status: int = 400) -> BinanceApiError:
    return BinanceApiError(code, msg, http_status, method="POST", path="/api/v3/order")


async def settle(engine, rounds: int = 20) -> None:
    """Let every venue call in flight finish, including those they start."""
    for _ in range(rounds):
        await engine.drain()
        await asyncio.sleep(0)
        if not engine._tasks:
            return
    raise AssertionError("execution tasks still running")


def new_bus_clock(start_ns: int = T0) -> tuple[MessageBus, TestClock]:
    return MessageBus(), TestClock(start_ns)


def async_test(fn):
    """Run an `async def` test body with asyncio.run (no pytest-asyncio here)."""
    def wrapper(*args, **kwargs):
        return asyncio.run(fn(*args, **kwargs))
    wrapper.__name__, wrapper.__doc__, wrapper.__module__ = fn.__name__, fn.__doc__, fn.__module__
    wrapper.__signature__ = inspect.signature(fn)      # pytest reads fixtures and parameters from it
    return wrapper
