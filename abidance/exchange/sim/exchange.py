"""SimExchange: the facade the REST/WS layers and the market driver call.

Synchronous and single-threaded (it runs on the event loop thread). Every request-facing method
takes parameters as Binance receives them (strings), raises BinanceError exactly as Binance would
and returns Binance-shaped dicts with the keys, key order and value types of the real samples
(amounts as 8-decimal strings, times as int ms). Market data and account activity are pushed to an
ExchangeListener.

One book per symbol holds everyone's orders; simulated liquidity belongs to the market-maker
account (id 0: unlimited balances, no fees, no user events), driven through the mm_* hooks.
"""

from __future__ import annotations

import base64
import random
import re
from collections import deque
from decimal import ROUND_HALF_UP, Decimal
from typing import Callable, NamedTuple, Protocol

from abidance.exchange.sim import errors
from abidance.exchange.sim.accounts import ZERO, Account, AccountTrade
from abidance.exchange.sim.book import Book
from abidance.exchange.sim.matching import (BUY, CANCELED, EXPIRED, FILLED, FOK, GTC, IOC, LIMIT, LIMIT_MAKER, MARKET,
                                            MM_ACCOUNT_ID, OPEN_STATUSES, SELL, STOP_TYPES, MatchingEngine, Order,
                                            Trade)
from abidance.exchange.sim.symbols import (ORDER_TYPES, SymbolSpec, fmt8, fmt_units, parse_units, units_to_dec)

RESP_TYPES = ("ACK", "RESULT", "FULL")
TIME_IN_FORCE = (GTC, IOC, FOK)
ZERO_STR = "0.00000000"
_CLIENT_ID_RE = re.compile(r"^[a-zA-Z0-9\-_]{1,36}$")
_B64_TO_ALNUM = str.maketrans("+/", "xZ")
_PRICE_QUANTUM = Decimal("0.00000001")
_RECENT_TRADES = 1000          # GET /api/v3/trades serves at most 1000

RATE_LIMITS = [
    {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
    {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
    {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000},
    {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000},
]


class ExchangeListener(Protocol):
    """What the exchange pushes. Strings are Binance's 8-decimal renderings."""

    def on_trade(self, symbol: str, trade: dict) -> None:
        """trade: id, price, qty, quote_qty, time, buyer_is_maker, buyer_order_id, seller_order_id."""

    def on_depth_change(self, symbol: str, update_id: int, side: str, price: str, qty: str) -> None:
        """One changed level; side "b"|"a"; qty "0.00000000" when the level is gone."""

    def on_book_ticker(self, symbol: str, update_id: int, bid_price: str, bid_qty: str,
                       ask_price: str, ask_qty: str) -> None:
        """The top of the book changed (an empty side shows "0.00000000")."""

    def on_user_event(self, account_id: int, payload: dict) -> None:
        """executionReport, outboundAccountPosition or balanceUpdate, as Binance's user stream."""


class NullListener:
    """Ignores everything; subclass and override what you need (the exchange skips building
    payloads for methods left as they are here)."""

    def on_trade(self, symbol: str, trade: dict) -> None:
        pass

    def on_depth_change(self, symbol: str, update_id: int, side: str, price: str, qty: str) -> None:
        pass

    def on_book_ticker(self, symbol: str, update_id: int, bid_price: str, bid_qty: str,
                       ask_price: str, ask_qty: str) -> None:
        pass

    def on_user_event(self, account_id: int, payload: dict) -> None:
        pass


class MMOrder(NamedTuple):
    """A resting market-maker order, as the market driver sees it."""

    order_id: int
    side: str
    price_ticks: int
    qty_steps: int          # remaining


class _Market:
    """One symbol's state: spec, book, engine, market-maker orders and trade history."""

    __slots__ = ("spec", "book", "engine", "mm_orders", "trades", "window", "win_steps", "win_quote", "last_top")

    def __init__(self, spec: SymbolSpec):
        self.spec = spec
        self.book: Book
        self.engine: MatchingEngine
        self.mm_orders: dict[int, Order] = {}
        self.trades: deque[Trade] = deque(maxlen=_RECENT_TRADES)
        # Trades inside the avgPrice window with running sums (volume-weighted average price).
        self.window: deque[Trade] = deque()
        self.win_steps = 0
        self.win_quote = 0
        self.last_top = (None, None, None, None)


def _overrides(listener, name: str) -> bool:
    impl = getattr(type(listener), name, None)
    return impl is not None and impl is not getattr(NullListener, name)


def _given(value) -> bool:
    return value is not None and value != ""


class SimExchange:
    """The simulated venue. See the module docstring."""

    def __init__(self, symbols: list[SymbolSpec], clock_ms: Callable[[], int],
                 listener: ExchangeListener | None = None, *, seed: int = 0):
        if not symbols:
            raise ValueError("at least one symbol")
        self._clock = clock_ms
        self._listener = listener if listener is not None else NullListener()
        self._want_trade = _overrides(self._listener, "on_trade")
        self._want_depth = _overrides(self._listener, "on_depth_change")
        self._want_ticker = _overrides(self._listener, "on_book_ticker")
        self._want_user = _overrides(self._listener, "on_user_event")
        self._rng = random.Random(seed)
        self._markets: dict[str, _Market] = {}
        for spec in symbols:
            self._add_market(spec)
        # Account-level fee rates shown by GET /api/v3/account when an account has no override.
        self.default_maker_rate = symbols[0].maker_fee
        self.default_taker_rate = symbols[0].taker_fee
        self.mm = Account(MM_ACCOUNT_ID, None, None, unlimited=True, maker_rate=ZERO, taker_rate=ZERO)
        self._accounts: dict[int, Account] = {MM_ACCOUNT_ID: self.mm}
        self._by_key: dict[str, Account] = {}
        self.fees_collected: dict[str, Decimal] = {}
        self._event_seq = 0
        # The order whose fills a FULL response lists (the one new_order is placing).
        self._placing: Order | None = None
        self._fills: list[dict] = []

    def _add_market(self, spec: SymbolSpec) -> None:
        mkt = _Market(spec)
        mkt.book = Book(lambda code, price, total, uid, m=mkt: self._on_level(m, code, price, total, uid))
        mkt.engine = MatchingEngine(spec, mkt.book, self._clock,
                                    lambda trade, maker, taker, m=mkt: self._on_trade(m, trade, maker, taker),
                                    lambda order, x, m=mkt: self._on_update(m, order, x))
        self._markets[spec.symbol] = mkt

    # ---- accounts -----------------------------------------------------------------------------

    def create_account(self, api_key: str, secret: str | None, balances: dict[str, Decimal | str] | None = None, *,
                       maker_rate: Decimal | str | None = None, taker_rate: Decimal | str | None = None,
                       can_trade: bool = True, ed25519_public_key=None) -> Account:
        """An account with an HMAC secret, or (secret None) an Ed25519 public key."""
        if not api_key or api_key in self._by_key:
            raise ValueError("api_key must be non-empty and unique")
        if (secret is None) == (ed25519_public_key is None):
            raise ValueError("give exactly one of an HMAC secret or an Ed25519 public key")
        account = Account(len(self._accounts), api_key, secret, balances, maker_rate=maker_rate,
                          taker_rate=taker_rate, can_trade=can_trade, ed25519_public_key=ed25519_public_key)
        account.update_time = self._clock()
        self._accounts[account.account_id] = account
        self._by_key[api_key] = account
        return account

    def account_by_key(self, api_key: str) -> Account:
        account = self._by_key.get(api_key) if api_key else None
        if account is None:
            raise errors.rejected_api_key()
        return account

    @property
    def accounts(self) -> list[Account]:
        """Every account, the market maker (id 0) first."""
        return list(self._accounts.values())

    def deposit(self, account: Account, asset: str, amount: Decimal | str) -> None:
        """Admin credit (negative: withdrawal); pushes balanceUpdate + outboundAccountPosition."""
        amount = Decimal(str(amount))
        account.deposit(asset, amount)
        now = self._clock()
        account.update_time = now
        if self._want_user and account.account_id != MM_ACCOUNT_ID:
            emit = self._listener.on_user_event
            emit(account.account_id, {"e": "balanceUpdate", "E": now, "a": asset, "d": fmt8(amount), "T": now})
            emit(account.account_id, self._position(account, (asset,), now))

    # ---- orders -------------------------------------------------------------------------------

    def new_order(self, account: Account, *, symbol, side, type, time_in_force=None, quantity=None,
                  quote_order_qty=None, price=None, stop_price=None, new_client_order_id=None,
                  new_order_resp_type=None) -> dict:
        """POST /api/v3/order."""
        req = self._validate(account, symbol, side, type, time_in_force, quantity, quote_order_qty, price,
                             stop_price, new_client_order_id, new_order_resp_type)
        spec, engine = req.mkt.spec, req.mkt.engine
        if type == LIMIT_MAKER and engine.would_cross(side, req.price_ticks):
            raise errors.would_take()
        if type in STOP_TYPES:
            probe = Order(0, "", 0, side, type, req.tif, req.price_ticks, req.steps, stop_price_ticks=req.stop_ticks)
            if engine.would_trigger(probe):
                raise errors.stop_would_trigger()
        # What the order may spend, locked up front (see accounts.py).
        steps = req.steps
        if type == MARKET:
            if req.quote_units is not None:
                steps, cost = engine.plan_market(side, quote_units=req.quote_units)
                lock_asset, lock = ((spec.quote_asset, units_to_dec(req.quote_units)) if side == BUY
                                    else (spec.base_asset, spec.qty_dec(steps)))
            elif side == BUY:
                _, cost = engine.plan_market(side, qty_steps=steps)
                lock_asset, lock = spec.quote_asset, units_to_dec(cost)
            else:
                lock_asset, lock = spec.base_asset, spec.qty_dec(steps)
        elif side == BUY:
            lock_asset, lock = spec.quote_asset, units_to_dec(spec.quote_units(req.price_ticks, steps))
        else:
            lock_asset, lock = spec.base_asset, spec.qty_dec(steps)
        if not account.can_afford(lock_asset, lock):
            raise errors.insufficient_balance()

        now = self._clock()
        order = Order(engine.next_order_id(), req.client_id, account.account_id, side, type, req.tif,
                      req.price_ticks, steps, quote_order_qty=req.quote_dec, stop_price_ticks=req.stop_ticks,
                      time=now, symbol=spec.symbol)
        account.reserve((spec.symbol, order.order_id), lock_asset, lock)
        account.update_time = now
        account.add_order(order)
        self._placing, self._fills = order, []
        try:
            engine.submit(order)
        finally:
            self._placing = None
        if order.status not in OPEN_STATUSES:
            account.close_order(order)
        resp_type = req.resp_type or ("FULL" if type in (MARKET, LIMIT) else "ACK")
        return self._new_order_response(spec, order, resp_type, self._fills)

    def test_order(self, account: Account, *, symbol, side, type, time_in_force=None, quantity=None,
                   quote_order_qty=None, price=None, stop_price=None, new_client_order_id=None,
                   new_order_resp_type=None) -> dict:
        """POST /api/v3/order/test: validates parameters and filters, places nothing."""
        self._validate(account, symbol, side, type, time_in_force, quantity, quote_order_qty, price, stop_price,
                       new_client_order_id, new_order_resp_type)
        return {}

    def cancel_order(self, account: Account, symbol, order_id=None, orig_client_order_id=None,
                     new_client_order_id=None) -> dict:
        """DELETE /api/v3/order. -2011 when the order is unknown or no longer open."""
        mkt = self._market(symbol)
        if not _given(order_id) and not _given(orig_client_order_id):
            raise errors.mandatory_one_of("orderId", "origClientOrderId")
        cancel_id = self._client_id(new_client_order_id, "newClientOrderId")
        order = account.find_order(mkt.spec.symbol, self._order_id(order_id),
                                   orig_client_order_id if _given(orig_client_order_id) else None)
        if order is None or order.status not in OPEN_STATUSES:
            raise errors.cancel_rejected()
        return self._cancel(mkt, account, order, cancel_id)

    def cancel_open_orders(self, account: Account, symbol) -> list[dict]:
        """DELETE /api/v3/openOrders: every open order on the symbol (one cancel id for the batch)."""
        mkt = self._market(symbol)
        orders = sorted(account.open_orders_of(mkt.spec.symbol), key=lambda o: o.order_id)
        if not orders:
            raise errors.cancel_rejected()
        cancel_id = self._client_id(None, "newClientOrderId")
        return [self._cancel(mkt, account, order, cancel_id) for order in orders]

    def query_order(self, account: Account, symbol, order_id=None, orig_client_order_id=None) -> dict:
        """GET /api/v3/order. -2013 when unknown."""
        mkt = self._market(symbol)
        if not _given(order_id) and not _given(orig_client_order_id):
            raise errors.mandatory_one_of("orderId", "origClientOrderId")
        order = account.find_order(mkt.spec.symbol, self._order_id(order_id),
                                   orig_client_order_id if _given(orig_client_order_id) else None)
        if order is None:
            raise errors.no_such_order()
        return self._query_view(mkt.spec, order)

    def open_orders(self, account: Account, symbol=None) -> list[dict]:
        """GET /api/v3/openOrders (all symbols when symbol is None)."""
        symbols = [self._market(symbol).spec.symbol] if _given(symbol) else list(self._markets)
        out = []
        for sym in symbols:
            spec = self._markets[sym].spec
            for order in sorted(account.open_orders_of(sym), key=lambda o: o.order_id):
                out.append(self._list_view(spec, order))
        return out

    def all_orders(self, account: Account, symbol, order_id=None, start_time=None, end_time=None,
                   limit=500) -> list[dict]:
        """GET /api/v3/allOrders: from orderId on, else the most recent (within the time range)."""
        spec = self._market(symbol).spec
        limit = self._limit(limit, 500, 1000)
        orders = list(account.orders.get(spec.symbol, {}).values())     # id order
        order_id = self._order_id(order_id)
        if order_id is not None:
            orders = [o for o in orders if o.order_id >= order_id]
        orders = [o for o in orders if (start_time is None or o.time >= int(start_time))
                  and (end_time is None or o.time <= int(end_time))]
        orders = orders[:limit] if (order_id is not None or start_time is not None) else orders[-limit:]
        return [self._list_view(spec, o) for o in orders]

    def my_trades(self, account: Account, symbol, order_id=None, start_time=None, end_time=None, from_id=None,
                  limit=500) -> list[dict]:
        """GET /api/v3/myTrades: an order's trades, from fromId on, or the most recent."""
        spec = self._market(symbol).spec
        limit = self._limit(limit, 500, 1000)
        trades = account.trades.get(spec.symbol, [])
        order_id = self._order_id(order_id)
        if order_id is not None:
            trades = [t for t in trades if t.order_id == order_id]
        if from_id is not None:
            trades = [t for t in trades if t.id >= int(from_id)]
        if start_time is not None or end_time is not None:
            trades = [t for t in trades if (start_time is None or t.time >= int(start_time))
                      and (end_time is None or t.time <= int(end_time))]
        forward = from_id is not None or start_time is not None
        trades = trades[:limit] if forward else trades[-limit:]
        return [self._my_trade_view(spec, t) for t in trades]

    def account_info(self, account: Account, omit_zero_balances: bool = False) -> dict:
        """GET /api/v3/account."""
        maker = self.default_maker_rate if account.maker_rate is None else account.maker_rate
        taker = self.default_taker_rate if account.taker_rate is None else account.taker_rate
        balances = [{"asset": asset, "free": fmt8(free), "locked": fmt8(locked)}
                    for asset, (free, locked) in account.balances.items()
                    if not omit_zero_balances or free or locked]
        return {
            "makerCommission": int(maker * 10000),
            "takerCommission": int(taker * 10000),
            "buyerCommission": 0,
            "sellerCommission": 0,
            "commissionRates": {"maker": fmt8(maker), "taker": fmt8(taker), "buyer": ZERO_STR, "seller": ZERO_STR},
            "canTrade": account.can_trade,
            "canWithdraw": account.can_withdraw,
            "canDeposit": account.can_deposit,
            "brokered": False,
            "requireSelfTradePrevention": False,
            "preventSor": False,
            "updateTime": account.update_time,
            "accountType": "SPOT",
            "balances": balances,
            "permissions": ["SPOT"],
            "uid": account.account_id,
        }

    # ---- market data --------------------------------------------------------------------------

    def exchange_info(self, symbols: list[str] | None = None) -> dict:
        """GET /api/v3/exchangeInfo[?symbol=|symbols=]."""
        names = list(self._markets) if not symbols else [self._market(s).spec.symbol for s in symbols]
        return {
            "timezone": "UTC",
            "serverTime": self._clock(),
            "rateLimits": [dict(limit) for limit in RATE_LIMITS],
            "exchangeFilters": [],
            "symbols": [self._markets[name].spec.exchange_info_entry() for name in names],
        }

    def depth(self, symbol, limit: int = 100) -> dict:
        """GET /api/v3/depth: all orders aggregated per level, best first."""
        mkt = self._market(symbol)
        spec, book = mkt.spec, mkt.book
        limit = self._limit(limit, 100, 5000)
        return {
            "lastUpdateId": book.update_id,
            "bids": [[spec.price_str(p), spec.qty_str(q)] for p, q in book.depth(book.bids, limit)],
            "asks": [[spec.price_str(p), spec.qty_str(q)] for p, q in book.depth(book.asks, limit)],
        }

    def recent_trades(self, symbol, limit: int = 500) -> list[dict]:
        """GET /api/v3/trades: the most recent trades, oldest first."""
        mkt = self._market(symbol)
        limit = self._limit(limit, 500, _RECENT_TRADES)
        spec = mkt.spec
        trades = list(mkt.trades)[-limit:]
        return [{"id": t.id, "price": spec.price_str(t.price_ticks), "qty": spec.qty_str(t.qty_steps),
                 "quoteQty": fmt_units(t.quote_units), "time": t.time, "isBuyerMaker": t.buyer_is_maker,
                 "isBestMatch": True} for t in trades]

    def agg_trades(self, symbol, from_id=None, start_time=None, end_time=None, limit: int = 500) -> list[dict]:
        """GET /api/v3/aggTrades over the trades kept (the last 1000): every simulated trade is its
        own aggregate (one taker order, one price). fromId, or a startTime/endTime window, or the latest."""
        mkt = self._market(symbol)
        limit = self._limit(limit, 500, _RECENT_TRADES)
        spec = mkt.spec
        trades = list(mkt.trades)
        if from_id is not None:
            trades = [t for t in trades if t.id >= from_id][:limit]
        elif start_time is not None or end_time is not None:
            lo = start_time if start_time is not None else end_time - 3_600_000
            hi = end_time if end_time is not None else lo + 3_600_000
            trades = [t for t in trades if lo <= t.time <= hi][:limit]
        else:
            trades = trades[-limit:]
        return [{"a": t.id, "p": spec.price_str(t.price_ticks), "q": spec.qty_str(t.qty_steps), "f": t.id,
                 "l": t.id, "T": t.time, "m": t.buyer_is_maker, "M": True} for t in trades]

    def book_ticker(self, symbol) -> dict:
        """GET /api/v3/ticker/bookTicker for one symbol."""
        mkt = self._market(symbol)
        bid_p, bid_q, ask_p, ask_q = self._top_strings(mkt.spec, mkt.book.top())
        return {"symbol": mkt.spec.symbol, "bidPrice": bid_p, "bidQty": bid_q, "askPrice": ask_p, "askQty": ask_q}

    def last_price(self, symbol) -> str:
        """The last trade's price as Binance renders it ("0.00000000" before any trade); the REST
        layer wraps it as GET /api/v3/ticker/price's {"symbol", "price"}."""
        mkt = self._market(symbol)
        last = mkt.engine.last_price
        return mkt.spec.price_str(last) if last is not None else ZERO_STR

    def avg_price(self, symbol) -> dict:
        """GET /api/v3/avgPrice: volume-weighted over the last avgPriceMins minutes of trades;
        without trades in the window, the mid price (then the last price, then 0)."""
        mkt = self._market(symbol)
        price = self._avg_price_dec(mkt)
        close = mkt.window[-1].time if mkt.window else self._clock()
        return {"mins": mkt.spec.avg_price_mins, "price": fmt8(price) if price is not None else ZERO_STR,
                "closeTime": close}

    # ---- market-maker hooks (no balance checks, no user events) ---------------------------------

    def spec(self, symbol: str) -> SymbolSpec:
        return self._market(symbol).spec

    def book_top(self, symbol: str) -> tuple[int | None, int | None, int | None, int | None]:
        """(bid ticks, bid steps, ask ticks, ask steps); None for an empty side."""
        return self._market(symbol).book.top()

    def last_trade_ticks(self, symbol: str) -> int | None:
        return self._market(symbol).engine.last_price

    def mm_quote(self, symbol: str, side: str, price_ticks: int, qty_steps: int) -> int:
        """Rest a market-maker GTC limit; it trades first if it crosses user orders."""
        mkt = self._market(symbol)
        order = self._mm_order(mkt, side, LIMIT, GTC, price_ticks, qty_steps)
        mkt.mm_orders[order.order_id] = order
        mkt.engine.submit(order)
        if order.status not in OPEN_STATUSES:
            mkt.mm_orders.pop(order.order_id, None)
        return order.order_id

    def mm_cancel(self, symbol: str, order_id: int) -> bool:
        mkt = self._market(symbol)
        order = mkt.mm_orders.pop(order_id, None)
        return order is not None and mkt.engine.cancel(order)

    def mm_take(self, symbol: str, side: str, limit_price_ticks: int | None, qty_steps: int) -> int:
        """An IOC sweep up to the limit (None: no limit). Resting market-maker quotes it meets are
        expired, not traded; user orders fill in price-time priority. Returns the steps filled."""
        mkt = self._market(symbol)
        if limit_price_ticks is None:
            order = self._mm_order(mkt, side, MARKET, GTC, 0, qty_steps)
        else:
            order = self._mm_order(mkt, side, LIMIT, IOC, limit_price_ticks, qty_steps)
        mkt.engine.submit(order)
        return order.executed_qty_steps

    def mm_trade(self, symbol: str, side: str, price_ticks: int, qty_steps: int) -> int:
        """An IOC at one price that trades with market-maker quotes too: the public tape's
        activity (other traders). User orders at that price keep their time priority."""
        mkt = self._market(symbol)
        order = self._mm_order(mkt, side, LIMIT, IOC, price_ticks, qty_steps)
        mkt.engine.submit(order, mm_self_trade=True)
        return order.executed_qty_steps

    def mm_orders(self, symbol: str) -> list[MMOrder]:
        """The market maker's resting orders, oldest first."""
        return [MMOrder(o.order_id, o.side, o.price_ticks, o.orig_qty_steps - o.executed_qty_steps)
                for o in self._market(symbol).mm_orders.values()]

    def _mm_order(self, mkt: _Market, side: str, type_: str, tif: str, price_ticks: int, qty_steps: int) -> Order:
        if side not in (BUY, SELL) or qty_steps <= 0 or (type_ != MARKET and price_ticks <= 0):
            raise ValueError(f"bad market-maker order {side} {price_ticks} x {qty_steps}")
        return Order(mkt.engine.next_order_id(), "", MM_ACCOUNT_ID, side, type_, tif, price_ticks, qty_steps,
                     time=self._clock(), symbol=mkt.spec.symbol)

    # ---- validation ---------------------------------------------------------------------------

    def _market(self, symbol) -> _Market:
        if not _given(symbol):
            raise errors.mandatory_param("symbol")
        mkt = self._markets.get(symbol)
        if mkt is None:
            raise errors.invalid_symbol()
        return mkt

    def _validate(self, account, symbol, side, type_, tif, quantity, quote_order_qty, price, stop_price,
                  client_id, resp_type) -> _Request:
        """Binance's parameter and filter checks for a new order, in its order; no book or balance
        state is consulted except the average price for the price filters."""
        mkt = self._market(symbol)
        spec = mkt.spec
        if not _given(side):
            raise errors.mandatory_param("side")
        if side not in (BUY, SELL):
            raise errors.invalid_enum("side", side)
        if not _given(type_):
            raise errors.mandatory_param("type")
        if type_ in ("STOP_LOSS", "TAKE_PROFIT"):
            raise errors.unsupported_order_combination()     # valid on Binance, not offered here
        if type_ not in ORDER_TYPES:
            raise errors.invalid_enum("type", type_)
        if _given(resp_type) and resp_type not in RESP_TYPES:
            raise errors.BinanceError(-1100, "Illegal characters found in parameter 'newOrderRespType'; "
                                      "legal range is 'ACK, RESULT, FULL'.")
        req = _Request(mkt, resp_type if _given(resp_type) else None)

        if type_ in (LIMIT, *STOP_TYPES):
            if not _given(tif):
                raise errors.mandatory_param("timeInForce")
            if tif not in TIME_IN_FORCE:
                raise errors.invalid_enum("timeInForce", tif)
            req.tif = tif
        elif _given(tif):
            raise errors.param_not_required("timeInForce")

        if type_ == MARKET:
            if _given(price):
                raise errors.param_not_required("price")
        else:
            if not _given(price):
                raise errors.mandatory_param("price")
            req.price_ticks = spec.price_to_ticks(price, "price")

        if type_ in STOP_TYPES:
            if not _given(stop_price):
                raise errors.mandatory_param("stopPrice")
            req.stop_ticks = spec.price_to_ticks(stop_price, "stopPrice")
        elif _given(stop_price):
            raise errors.param_not_required("stopPrice")

        if type_ == MARKET:
            if _given(quantity) and _given(quote_order_qty):
                raise errors.param_not_required("quoteOrderQty")
            if _given(quantity):
                req.steps = spec.qty_to_steps(quantity, "quantity", market=True)
            elif _given(quote_order_qty):
                req.quote_units = parse_units("quoteOrderQty", quote_order_qty)
                req.quote_dec = units_to_dec(req.quote_units)
            else:
                raise errors.mandatory_one_of("quantity", "quoteOrderQty")
        else:
            if _given(quote_order_qty):
                raise errors.param_not_required("quoteOrderQty")
            if not _given(quantity):
                raise errors.mandatory_param("quantity")
            req.steps = spec.qty_to_steps(quantity, "quantity")

        req.client_id = self._client_id(client_id, "newClientOrderId")
        if (spec.symbol, req.client_id) in account.open_client_ids:
            raise errors.duplicate_order()
        if not account.can_trade:
            raise errors.trading_disabled()
        self._check_filters(mkt, account, req, side, type_)
        return req

    def _check_filters(self, mkt: _Market, account: Account, req: _Request, side: str, type_: str) -> None:
        spec = mkt.spec
        avg = None
        if type_ == MARKET:
            if req.quote_units is not None:
                notional = req.quote_dec
            else:
                avg = self._avg_price_dec(mkt)
                notional = None if avg is None else avg * spec.qty_dec(req.steps)
            if notional is not None and ((spec.apply_min_to_market and notional < spec.min_notional)
                                         or (spec.apply_max_to_market and notional > spec.max_notional)):
                raise errors.filter_failure("NOTIONAL")
        else:
            notional = spec.quote_units(req.price_ticks, req.steps)
            if notional < spec.min_notional_units or notional > spec.max_notional_units:
                raise errors.filter_failure("NOTIONAL")
            avg = self._avg_price_dec(mkt)
            if avg is not None:
                price = spec.price_dec(req.price_ticks)
                up, down = ((spec.bid_multiplier_up, spec.bid_multiplier_down) if side == BUY
                            else (spec.ask_multiplier_up, spec.ask_multiplier_down))
                if price > avg * up or price < avg * down:
                    raise errors.filter_failure("PERCENT_PRICE_BY_SIDE")
        open_here = account.open_orders_of(spec.symbol)
        if len(open_here) >= spec.max_num_orders:
            raise errors.filter_failure("MAX_NUM_ORDERS")
        if type_ in STOP_TYPES and sum(o.type in STOP_TYPES for o in open_here) >= spec.max_num_algo_orders:
            raise errors.filter_failure("MAX_NUM_ALGO_ORDERS")

    def _client_id(self, value, param: str) -> str:
        if _given(value):
            if not isinstance(value, str) or not _CLIENT_ID_RE.match(value):
                raise errors.BinanceError(-1100, f"Illegal characters found in parameter '{param}'; "
                                          "legal range is '^[a-zA-Z0-9-_]{1,36}$'.")
            return value
        # Binance generates 22 alphanumerics; base64 of random bytes with +/ mapped is the cheap way.
        return base64.b64encode(self._rng.randbytes(17)).decode()[:22].translate(_B64_TO_ALNUM)

    @staticmethod
    def _order_id(value) -> int | None:
        if not _given(value):
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and value.isdigit():
            return int(value)
        raise errors.illegal_chars("orderId")

    @staticmethod
    def _limit(value, default: int, maximum: int) -> int:
        if value is None or value == "":
            return default
        try:
            value = int(value)
        except (TypeError, ValueError):
            raise errors.illegal_chars("limit") from None
        return max(1, min(value, maximum))

    # ---- engine callbacks ---------------------------------------------------------------------

    def _on_level(self, mkt: _Market, code: str, price: int, total: int, update_id: int) -> None:
        spec = mkt.spec
        if self._want_depth:
            self._listener.on_depth_change(spec.symbol, update_id, code, spec.price_str(price), spec.qty_str(total))
        if self._want_ticker:
            top = mkt.book.top()
            if top != mkt.last_top:
                mkt.last_top = top
                self._listener.on_book_ticker(spec.symbol, update_id, *self._top_strings(spec, top))

    def _on_trade(self, mkt: _Market, trade: Trade, maker: Order, taker: Order) -> None:
        spec = mkt.spec
        mkt.trades.append(trade)
        self._window_add(mkt, trade)
        qty = spec.qty_dec(trade.qty_steps)
        quote = units_to_dec(trade.quote_units)
        reports = []
        for order, is_maker in ((maker, True), (taker, False)):
            account = self._accounts[order.account_id]
            rate = account.rate(spec.maker_fee, spec.taker_fee, is_maker)
            is_buy = order.side == BUY
            if is_buy and order.type != MARKET:
                # The lock for this quantity was taken at the limit price.
                lock_used = units_to_dec(spec.quote_units(order.price_ticks, trade.qty_steps))
            else:
                lock_used = quote if is_buy else qty
            fee = account.apply_fill((spec.symbol, order.order_id), is_buy=is_buy, base=spec.base_asset,
                                     quote=spec.quote_asset, qty=qty, quote_amt=quote, lock_used=lock_used, rate=rate)
            fee_asset = spec.base_asset if is_buy else spec.quote_asset
            if fee:
                self.fees_collected[fee_asset] = self.fees_collected.get(fee_asset, ZERO) + fee
            if order.account_id == MM_ACCOUNT_ID:
                if order.status == FILLED:
                    mkt.mm_orders.pop(order.order_id, None)
                continue
            account.update_time = trade.time
            account.add_trade(AccountTrade(spec.symbol, trade.id, order.order_id, trade.price_ticks, trade.qty_steps,
                                           trade.quote_units, fee, fee_asset, trade.time, is_buy, is_maker))
            if order.status == FILLED:
                account.close_order(order)
            if order is self._placing:
                self._fills.append({"price": spec.price_str(trade.price_ticks), "qty": spec.qty_str(trade.qty_steps),
                                    "commission": fmt8(fee), "commissionAsset": fee_asset, "tradeId": trade.id})
            if self._want_user:
                reports.append((account, self._report(spec, order, "TRADE", trade.time, trade=trade,
                                                      is_maker=is_maker, fee=fee, fee_asset=fee_asset)))
        if self._want_trade:
            self._listener.on_trade(spec.symbol, {
                "id": trade.id, "price": spec.price_str(trade.price_ticks), "qty": spec.qty_str(trade.qty_steps),
                "quote_qty": fmt_units(trade.quote_units), "time": trade.time, "buyer_is_maker": trade.buyer_is_maker,
                "buyer_order_id": trade.buyer_order_id, "seller_order_id": trade.seller_order_id})
        if reports:
            emit = self._listener.on_user_event
            for account, report in reports:
                emit(account.account_id, report)
            seen = set()
            for account, _ in reports:
                if account.account_id not in seen:
                    seen.add(account.account_id)
                    emit(account.account_id, self._position(account, (spec.base_asset, spec.quote_asset), trade.time))

    def _on_update(self, mkt: _Market, order: Order, exec_type: str) -> None:
        if order.account_id == MM_ACCOUNT_ID:
            if exec_type == EXPIRED:
                mkt.mm_orders.pop(order.order_id, None)
            return
        account = self._accounts[order.account_id]
        now = order.update_time
        if exec_type == EXPIRED:
            account.close_order(order)
            account.update_time = now
        if self._want_user:
            spec = mkt.spec
            emit = self._listener.on_user_event
            emit(account.account_id, self._report(spec, order, exec_type, now))
            emit(account.account_id, self._position(account, (spec.base_asset, spec.quote_asset), now))

    def _cancel(self, mkt: _Market, account: Account, order: Order, cancel_id: str) -> dict:
        mkt.engine.cancel(order)
        account.close_order(order)
        now = order.update_time
        account.update_time = now
        spec = mkt.spec
        if self._want_user:
            emit = self._listener.on_user_event
            emit(account.account_id, self._report(spec, order, CANCELED, now, client_id=cancel_id,
                                                  orig_client_id=order.client_order_id))
            emit(account.account_id, self._position(account, (spec.base_asset, spec.quote_asset), now))
        return {
            "symbol": spec.symbol,
            "origClientOrderId": order.client_order_id,
            "orderId": order.order_id,
            "orderListId": -1,
            "clientOrderId": cancel_id,
            "transactTime": now,
            "price": spec.price_str(order.price_ticks),
            "origQty": spec.qty_str(order.orig_qty_steps),
            "executedQty": spec.qty_str(order.executed_qty_steps),
            "origQuoteOrderQty": _qoq(order),
            "cummulativeQuoteQty": fmt_units(order.cum_quote_units),
            "status": order.status,
            "timeInForce": order.time_in_force,
            "type": order.type,
            "side": order.side,
            "selfTradePreventionMode": "NONE",
        }

    # ---- average price ------------------------------------------------------------------------

    def _window_add(self, mkt: _Market, trade: Trade) -> None:
        mkt.window.append(trade)
        mkt.win_steps += trade.qty_steps
        mkt.win_quote += trade.quote_units
        self._window_evict(mkt, trade.time)

    @staticmethod
    def _window_evict(mkt: _Market, now: int) -> None:
        horizon = now - mkt.spec.avg_price_mins * 60_000
        window = mkt.window
        while window and window[0].time < horizon:
            old = window.popleft()
            mkt.win_steps -= old.qty_steps
            mkt.win_quote -= old.quote_units

    def _avg_price_dec(self, mkt: _Market) -> Decimal | None:
        self._window_evict(mkt, self._clock())
        spec = mkt.spec
        if mkt.win_steps:
            # quote / qty, both in 1e-8 units: win_quote / (win_steps * step_units).
            price = Decimal(mkt.win_quote) / Decimal(mkt.win_steps * spec.step_units)
            return price.quantize(_PRICE_QUANTUM, rounding=ROUND_HALF_UP)
        bid, _, ask, _ = mkt.book.top()
        if bid is not None and ask is not None:
            return (spec.price_dec(bid + ask) / 2).quantize(_PRICE_QUANTUM, rounding=ROUND_HALF_UP)
        last = mkt.engine.last_price
        return spec.price_dec(last) if last is not None else None

    # ---- payloads -----------------------------------------------------------------------------

    @staticmethod
    def _top_strings(spec: SymbolSpec, top) -> tuple[str, str, str, str]:
        bid_p, bid_q, ask_p, ask_q = top
        return (spec.price_str(bid_p) if bid_p is not None else ZERO_STR,
                spec.qty_str(bid_q) if bid_q is not None else ZERO_STR,
                spec.price_str(ask_p) if ask_p is not None else ZERO_STR,
                spec.qty_str(ask_q) if ask_q is not None else ZERO_STR)

    def _report(self, spec: SymbolSpec, order: Order, exec_type: str, now: int, *, trade: Trade | None = None,
                is_maker: bool = False, fee: Decimal | None = None, fee_asset: str | None = None,
                client_id: str | None = None, orig_client_id: str = "") -> dict:
        """An executionReport with the fields and order of Binance's user stream."""
        self._event_seq += 1
        if trade is not None:
            last_qty, last_price = spec.qty_str(trade.qty_steps), spec.price_str(trade.price_ticks)
            last_quote, trade_id, fee_str = fmt_units(trade.quote_units), trade.id, fmt8(fee)
        else:
            last_qty = last_price = last_quote = ZERO_STR
            trade_id, fee_str, fee_asset = -1, "0", None
        report = {
            "e": "executionReport", "E": now, "s": spec.symbol,
            "c": client_id if client_id is not None else order.client_order_id,
            "S": order.side, "o": order.type, "f": order.time_in_force,
            "q": spec.qty_str(order.orig_qty_steps), "p": spec.price_str(order.price_ticks),
            "P": spec.price_str(order.stop_price_ticks), "F": ZERO_STR, "g": -1, "C": orig_client_id,
            "x": exec_type, "X": order.status, "r": "NONE", "i": order.order_id,
            "l": last_qty, "z": spec.qty_str(order.executed_qty_steps), "L": last_price,
            "n": fee_str, "N": fee_asset, "T": now, "t": trade_id, "I": self._event_seq,
            "w": order.is_working and order.status in OPEN_STATUSES, "m": is_maker, "M": False,
            "O": order.time, "Z": fmt_units(order.cum_quote_units), "Y": last_quote, "Q": _qoq(order),
        }
        if order.working_time >= 0:           # Binance shows W only once the order is working
            report["W"] = order.working_time
        report["V"] = "NONE"
        return report

    @staticmethod
    def _position(account: Account, assets, now: int) -> dict:
        return {"e": "outboundAccountPosition", "E": now, "u": account.update_time,
                "B": [{"a": a, "f": fmt8(account.free(a)), "l": fmt8(account.locked(a))} for a in assets]}

    @staticmethod
    def _new_order_response(spec: SymbolSpec, order: Order, resp_type: str, fills: list[dict]) -> dict:
        out = {"symbol": spec.symbol, "orderId": order.order_id, "orderListId": -1,
               "clientOrderId": order.client_order_id, "transactTime": order.time}
        if resp_type == "ACK":
            return out
        out.update({
            "price": spec.price_str(order.price_ticks),
            "origQty": spec.qty_str(order.orig_qty_steps),
            "executedQty": spec.qty_str(order.executed_qty_steps),
            "origQuoteOrderQty": _qoq(order),
            "cummulativeQuoteQty": fmt_units(order.cum_quote_units),
            "status": order.status,
            "timeInForce": order.time_in_force,
            "type": order.type,
            "side": order.side,
        })
        if order.type in STOP_TYPES:
            out["stopPrice"] = spec.price_str(order.stop_price_ticks)
        out["workingTime"] = order.working_time
        out["selfTradePreventionMode"] = "NONE"
        if resp_type == "FULL":
            out["fills"] = list(fills)
        return out

    @staticmethod
    def _query_view(spec: SymbolSpec, order: Order) -> dict:
        """GET /api/v3/order (key order of Binance's order sample)."""
        return {
            "symbol": spec.symbol, "orderId": order.order_id, "orderListId": -1,
            "clientOrderId": order.client_order_id, "price": spec.price_str(order.price_ticks),
            "origQty": spec.qty_str(order.orig_qty_steps), "executedQty": spec.qty_str(order.executed_qty_steps),
            "cummulativeQuoteQty": fmt_units(order.cum_quote_units), "status": order.status,
            "timeInForce": order.time_in_force, "type": order.type, "side": order.side,
            "stopPrice": spec.price_str(order.stop_price_ticks), "icebergQty": ZERO_STR, "time": order.time,
            "updateTime": order.update_time, "isWorking": order.is_working, "workingTime": order.working_time,
            "origQuoteOrderQty": _qoq(order), "selfTradePreventionMode": "NONE",
        }

    @staticmethod
    def _list_view(spec: SymbolSpec, order: Order) -> dict:
        """GET /api/v3/openOrders and allOrders (key order of Binance's list samples)."""
        return {
            "symbol": spec.symbol, "orderId": order.order_id, "orderListId": -1,
            "clientOrderId": order.client_order_id, "price": spec.price_str(order.price_ticks),
            "origQty": spec.qty_str(order.orig_qty_steps), "executedQty": spec.qty_str(order.executed_qty_steps),
            "cummulativeQuoteQty": fmt_units(order.cum_quote_units), "status": order.status,
            "timeInForce": order.time_in_force, "type": order.type, "side": order.side,
            "stopPrice": spec.price_str(order.stop_price_ticks), "icebergQty": ZERO_STR, "time": order.time,
            "updateTime": order.update_time, "isWorking": order.is_working, "origQuoteOrderQty": _qoq(order),
            "workingTime": order.working_time, "selfTradePreventionMode": "NONE",
        }

    @staticmethod
    def _my_trade_view(spec: SymbolSpec, t: AccountTrade) -> dict:
        return {
            "symbol": t.symbol, "id": t.id, "orderId": t.order_id, "orderListId": -1,
            "price": spec.price_str(t.price_ticks), "qty": spec.qty_str(t.qty_steps),
            "quoteQty": fmt_units(t.quote_units), "commission": fmt8(t.commission),
            "commissionAsset": t.commission_asset, "time": t.time, "isBuyer": t.is_buyer, "isMaker": t.is_maker,
            "isBestMatch": True,
        }


def _qoq(order: Order) -> str:
    return fmt8(order.quote_order_qty) if order.quote_order_qty is not None else ZERO_STR


class _Request:
    """A validated new-order request (grid values; nothing placed yet)."""

    __slots__ = ("mkt", "resp_type", "tif", "price_ticks", "stop_ticks", "steps", "quote_units", "quote_dec",
                 "client_id")

    def __init__(self, mkt: _Market, resp_type: str | None):
        self.mkt = mkt
        self.resp_type = resp_type
        self.tif = GTC                  # Binance reports GTC for MARKET and LIMIT_MAKER
        self.price_ticks = 0
        self.stop_ticks = 0
        self.steps = 0
        self.quote_units: int | None = None
        self.quote_dec: Decimal | None = None
        self.client_id = ""
