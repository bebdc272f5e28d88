"""SimExchange: the facade the REST/WS layers and the market driver call.

Synchronous and single-threaded (it runs on the event loop thread). Every request-facing method
takes parameters as Binance receives them (strings), raises BinanceError exactly as Binance would
and returns Binance-shaped dicts with the keys, key order and value types of the real samples
(amounts as 8-decimal strings, times as int ms). Market data and account activity are pushed to an
ExchangeListener.

One book per symbol holds everyone's orders; simulated liquidity belongs to the market-maker
account (id 0: unlimited balances, no fees, no user events), driven through the mm_* hooks.
Neighbours: validation.py checks requests, payloads.py renders Binance's shapes, order_lists.py
runs OCO/OTO/OTOCO lists and modify.py amends and cancel-replaces working orders.
"""

from __future__ import annotations

import base64
import random
import re
from collections import deque
from decimal import ROUND_HALF_UP, Decimal
from typing import Callable, Mapping, NamedTuple, Protocol

from abidance.exchange.sim import errors, modify, payloads
from abidance.exchange.sim.accounts import ZERO, Account, AccountTrade
from abidance.exchange.sim.book import Book
from abidance.exchange.sim.faults import Faults, SlippedFill
from abidance.exchange.sim.matching import (BUY, CANCELED, EXPIRED, EXPIRED_IN_MATCH, FILLED, GTC, IOC, LIMIT,
                                            LIMIT_MAKER, MARKET, MARKET_TYPES, MM_ACCOUNT_ID, NEW, OPEN_STATUSES,
                                            PENDING_NEW, SELL, STOP_TYPES, TRADE_PREVENTION, MatchingEngine, Order,
                                            PreventedMatch, Trade)
from abidance.exchange.sim.order_lists import ListDesk
from abidance.exchange.sim.symbols import SymbolSpec, fmt8, fmt_units, units_to_dec
from abidance.exchange.sim.validation import (NewOrder, check_filters, check_supported, given, parse_order,
                                              resp_type, stp_mode)

ZERO_STR = payloads.ZERO_STR
LIVE_STATUSES = OPEN_STATUSES | {PENDING_NEW}      # open, including an OTO's pending legs
CANCEL_RESTRICTIONS = {"ONLY_NEW": NEW, "ONLY_PARTIALLY_FILLED": "PARTIALLY_FILLED"}
_CLIENT_ID_RE = re.compile(r"^[a-zA-Z0-9\-_]{1,36}$")
_B64_TO_ALNUM = str.maketrans("+/", "xZ")
_PRICE_QUANTUM = Decimal("0.00000001")
_RECENT_TRADES = 1000          # GET /api/v3/trades serves at most 1000

RATE_LIMITS = [
    {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
    {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
    {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000},
    {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 300000},
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
        """executionReport, listStatus, outboundAccountPosition or balanceUpdate, as Binance's
        user stream."""


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


class _Request(NamedTuple):
    """A validated new-order request: the order's fields and the request's options."""

    mkt: _Market
    order: NewOrder
    resp_type: str | None
    stp_mode: str


def _overrides(listener, name: str) -> bool:
    impl = getattr(type(listener), name, None)
    return impl is not None and impl is not getattr(NullListener, name)


class SimExchange:
    """The simulated venue. See the module docstring."""

    def __init__(self, symbols: list[SymbolSpec], clock_ms: Callable[[], int],
                 listener: ExchangeListener | None = None, *, seed: int = 0, faults: Faults | None = None):
        if not symbols:
            raise ValueError("at least one symbol")
        self._clock = clock_ms
        self._listener = listener if listener is not None else NullListener()
        self._want_trade = _overrides(self._listener, "on_trade")
        self._want_depth = _overrides(self._listener, "on_depth_change")
        self._want_ticker = _overrides(self._listener, "on_book_ticker")
        self._want_user = _overrides(self._listener, "on_user_event")
        self._rng = random.Random(seed)
        self._faults = faults              # the slippage fault reads it (and records what it did)
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
        self._lists = ListDesk(self)
        # The order whose fills (and prevented matches) a placement response lists.
        self._placing: Order | None = None
        self._fills: list[dict] = []
        self._prevented: list[PreventedMatch] = []

    def _add_market(self, spec: SymbolSpec) -> None:
        mkt = _Market(spec)
        mkt.book = Book(lambda code, price, total, uid, m=mkt: self._on_level(m, code, price, total, uid))
        mkt.engine = MatchingEngine(spec, mkt.book, self._clock,
                                    lambda trade, maker, taker, m=mkt: self._on_trade(m, trade, maker, taker),
                                    lambda order, x, m=mkt: self._on_update(m, order, x),
                                    on_prevent=lambda match, m=mkt: self._on_prevent(m, match),
                                    on_trigger=lambda order, m=mkt: self._on_trigger(m, order),
                                    fill_price=self._faults.market_fill_ticks if self._faults else None)
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
            emit(account.account_id, payloads.account_position(account, (asset,), now))

    # ---- orders -------------------------------------------------------------------------------

    def new_order(self, account: Account, *, symbol, side, type, time_in_force=None, quantity=None,
                  quote_order_qty=None, price=None, stop_price=None, new_client_order_id=None,
                  new_order_resp_type=None, trailing_delta=None, self_trade_prevention_mode=None) -> dict:
        """POST /api/v3/order."""
        req = self._validate(account, symbol, _order_params(side, type, time_in_force, quantity, quote_order_qty,
                                                            price, stop_price, new_client_order_id, trailing_delta),
                             new_order_resp_type, self_trade_prevention_mode)
        return self._place(account, req)

    def test_order(self, account: Account, *, symbol, side, type, time_in_force=None, quantity=None,
                   quote_order_qty=None, price=None, stop_price=None, new_client_order_id=None,
                   new_order_resp_type=None, trailing_delta=None, self_trade_prevention_mode=None) -> dict:
        """POST /api/v3/order/test: validates parameters and filters, places nothing."""
        self._validate(account, symbol, _order_params(side, type, time_in_force, quantity, quote_order_qty, price,
                                                      stop_price, new_client_order_id, trailing_delta),
                       new_order_resp_type, self_trade_prevention_mode)
        return {}

    def cancel_order(self, account: Account, symbol, order_id=None, orig_client_order_id=None,
                     new_client_order_id=None, cancel_restrictions=None) -> dict:
        """DELETE /api/v3/order. -2011 when the order is unknown, no longer open or not in the
        state cancelRestrictions asks for; a leg of an order list cancels the whole list (the
        answer is then the list's)."""
        mkt = self._market(symbol)
        if not given(order_id) and not given(orig_client_order_id):
            raise errors.mandatory_one_of("orderId", "origClientOrderId")
        if given(cancel_restrictions) and cancel_restrictions not in CANCEL_RESTRICTIONS:
            raise errors.cancel_restrictions_invalid()
        cancel_id = self._client_id(new_client_order_id, "newClientOrderId")
        order = self._lookup(account, mkt.spec.symbol, order_id, orig_client_order_id)
        if order is None or order.status not in LIVE_STATUSES:
            raise errors.cancel_rejected()
        if given(cancel_restrictions) and order.status != CANCEL_RESTRICTIONS[cancel_restrictions]:
            raise errors.cancel_restricted()
        lst = self._lists.of(order)
        if lst is not None:
            return self._lists.cancel_list(account, mkt, lst, cancel_id)
        return self._cancel(mkt, account, order, cancel_id)

    def cancel_open_orders(self, account: Account, symbol) -> list[dict]:
        """DELETE /api/v3/openOrders: every open order on the symbol (one cancel id for the batch);
        an order list appears once, as a list."""
        mkt = self._market(symbol)
        orders = sorted(account.open_orders_of(mkt.spec.symbol), key=lambda o: o.order_id)
        if not orders:
            raise errors.cancel_rejected()
        cancel_id = self._client_id(None, "newClientOrderId")
        out = []
        for order in orders:
            if order.status not in LIVE_STATUSES:        # cancelled with its list already
                continue
            lst = self._lists.of(order)
            if lst is not None:
                out.append(self._lists.cancel_list(account, mkt, lst, cancel_id))
            else:
                out.append(self._cancel(mkt, account, order, cancel_id))
        return out

    def query_order(self, account: Account, symbol, order_id=None, orig_client_order_id=None) -> dict:
        """GET /api/v3/order. -2013 when unknown; -2039 when the two ids name different orders."""
        mkt = self._market(symbol)
        if not given(order_id) and not given(orig_client_order_id):
            raise errors.mandatory_one_of("orderId", "origClientOrderId")
        order = self._lookup(account, mkt.spec.symbol, order_id, orig_client_order_id)
        if order is None:
            raise errors.no_such_order()
        return payloads.query_view(mkt.spec, order)

    def open_orders(self, account: Account, symbol=None) -> list[dict]:
        """GET /api/v3/openOrders (all symbols when symbol is None); an OTO's pending legs included."""
        symbols = [self._market(symbol).spec.symbol] if given(symbol) else list(self._markets)
        out = []
        for sym in symbols:
            spec = self._markets[sym].spec
            for order in sorted(account.open_orders_of(sym), key=lambda o: o.order_id):
                out.append(payloads.list_view(spec, order))
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
        return [payloads.list_view(spec, o) for o in orders]

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
        orders = account.orders.get(spec.symbol, {})
        return [payloads.my_trade(spec, t, orders[t.order_id].order_list_id if t.order_id in orders else -1)
                for t in trades]

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

    # ---- order lists, amend, cancel-replace ---------------------------------------------------

    def new_oco(self, account: Account, params: Mapping[str, str]) -> dict:
        """POST /api/v3/orderList/oco; params as Binance names them (symbol, side, quantity,
        aboveType, abovePrice, ..., belowType, ..., listClientOrderId, newOrderRespType,
        selfTradePreventionMode)."""
        return self._lists.place_oco(account, params)

    def new_oto(self, account: Account, params: Mapping[str, str]) -> dict:
        """POST /api/v3/orderList/oto; params working* and pending* as Binance names them."""
        return self._lists.place_oto(account, params)

    def new_otoco(self, account: Account, params: Mapping[str, str]) -> dict:
        """POST /api/v3/orderList/otoco; params working*, pendingSide/pendingQuantity,
        pendingAbove* and pendingBelow*."""
        return self._lists.place_otoco(account, params)

    def cancel_order_list(self, account: Account, symbol, order_list_id=None, list_client_order_id=None,
                          new_client_order_id=None) -> dict:
        """DELETE /api/v3/orderList."""
        return self._lists.cancel(account, symbol, order_list_id, list_client_order_id, new_client_order_id)

    def query_order_list(self, account: Account, order_list_id=None, orig_client_order_id=None) -> dict:
        """GET /api/v3/orderList (-2018 when unknown)."""
        return self._lists.query(account, order_list_id, orig_client_order_id)

    def open_order_lists(self, account: Account) -> list[dict]:
        """GET /api/v3/openOrderList."""
        return self._lists.open_lists(account)

    def all_order_lists(self, account: Account, from_id=None, start_time=None, end_time=None, limit=500) -> list[dict]:
        """GET /api/v3/allOrderList."""
        return self._lists.all_lists(account, from_id, start_time, end_time, limit)

    def amend_order(self, account: Account, symbol, order_id=None, orig_client_order_id=None,
                    new_client_order_id=None, new_qty=None) -> dict:
        """PUT /api/v3/order/amend/keepPriority: reduce a working order's quantity in place."""
        return modify.amend(self, account, symbol, order_id, orig_client_order_id, new_client_order_id, new_qty)

    def cancel_replace(self, account: Account, params: Mapping[str, str],
                       count_order: Callable[[], object] | None = None) -> dict:
        """POST /api/v3/order/cancelReplace; params as Binance names them. `count_order` counts
        the new order against the unfilled-order-count limit (raising -1015 when over it), as
        the REST layer does for POST /api/v3/order."""
        return modify.cancel_replace(self, account, params, count_order)

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
        return [MMOrder(o.order_id, o.side, o.price_ticks, o.remaining_steps)
                for o in self._market(symbol).mm_orders.values()]

    def _mm_order(self, mkt: _Market, side: str, type_: str, tif: str, price_ticks: int, qty_steps: int) -> Order:
        if side not in (BUY, SELL) or qty_steps <= 0 or (type_ != MARKET and price_ticks <= 0):
            raise ValueError(f"bad market-maker order {side} {price_ticks} x {qty_steps}")
        return Order(mkt.engine.next_order_id(), "", MM_ACCOUNT_ID, side, type_, tif, price_ticks, qty_steps,
                     time=self._clock(), symbol=mkt.spec.symbol)

    # ---- requests -----------------------------------------------------------------------------

    def _market(self, symbol) -> _Market:
        if not given(symbol):
            raise errors.mandatory_param("symbol")
        mkt = self._markets.get(symbol)
        if mkt is None:
            raise errors.invalid_symbol()
        return mkt

    def _account(self, account_id: int) -> Account:
        return self._accounts[account_id]

    def _validate(self, account: Account, symbol, params: Mapping[str, str | None], resp=None, mode=None) -> _Request:
        """Binance's parameter and filter checks for a new order, in its order; no book or balance
        state is consulted except the average price and the open orders for the filters."""
        mkt = self._market(symbol)
        spec = mkt.spec
        order = parse_order(spec, params)
        resp = self._resp_type(resp)
        mode = self._stp_mode(spec, mode)
        order.client_id = self._client_id(order.client_id, "newClientOrderId")
        if (spec.symbol, order.client_id) in account.open_client_ids:
            raise errors.duplicate_order()
        if not account.can_trade:
            raise errors.trading_disabled()
        check_filters(spec, order, self._avg_price_dec(mkt), account.open_orders_of(spec.symbol))
        check_supported(spec, order)
        return _Request(mkt, order, resp, mode)

    @staticmethod
    def _request(mkt: _Market, order: NewOrder, resp: str | None, mode: str) -> _Request:
        return _Request(mkt, order, resp, mode)

    def _place(self, account: Account, req: _Request) -> dict:
        """Place a validated order: the matching engine's own checks, its funds, then the book."""
        mkt, o = req.mkt, req.order
        spec, engine = mkt.spec, mkt.engine
        if o.type == LIMIT_MAKER and engine.would_cross(o.side, o.price_ticks):
            raise errors.would_take()
        if o.type in STOP_TYPES and o.stop_ticks and not o.trailing_delta:
            probe = Order(0, "", 0, o.side, o.type, o.tif, o.price_ticks, o.steps, stop_price_ticks=o.stop_ticks)
            if engine.would_trigger(probe):
                raise errors.stop_would_trigger()
        if o.type == MARKET and o.quote_units is not None:
            # What may be spent (BUY) or sold (SELL) for the quote amount, locked up front.
            o.steps, cost = engine.plan_market(o.side, quote_units=o.quote_units)
            lock_asset, lock, ticks = ((spec.quote_asset, o.quote_dec, [0]) if o.side == BUY
                                       else (spec.base_asset, spec.qty_dec(o.steps), [0]))
        else:
            lock_asset, lock, ticks = self._lock_for(mkt, o)
        if not account.can_afford(lock_asset, lock):
            raise errors.insufficient_balance()

        now = self._clock()
        order = self._make_order(account, mkt, o, req.stp_mode, now, -1, ticks[0])
        account.reserve((spec.symbol, order.order_id), lock_asset, lock)
        account.update_time = now
        account.add_order(order)
        fills, prevented = self._submit(mkt, account, order, with_prevented=True)
        if order.status not in OPEN_STATUSES:
            account.close_order(order)
        resp = req.resp_type or ("FULL" if o.type in (MARKET, LIMIT) else "ACK")
        return payloads.new_order_response(spec, order, resp, fills, prevented)

    def _make_order(self, account: Account, mkt: _Market, o: NewOrder, mode: str, now: int, list_id: int,
                    lock_ticks: int) -> Order:
        return Order(mkt.engine.next_order_id(), o.client_id, account.account_id, o.side, o.type, o.tif,
                     o.price_ticks, o.steps, quote_order_qty=o.quote_dec, stop_price_ticks=o.stop_ticks, time=now,
                     symbol=mkt.spec.symbol, trailing_delta=o.trailing_delta, stp_mode=mode,
                     order_list_id=list_id, lock_ticks=lock_ticks)

    def _lock_for(self, mkt: _Market, o: NewOrder) -> tuple[str, Decimal, list[int]]:
        """What an order may spend, locked up front (see accounts.py): (asset, amount, [the price
        in ticks a BUY's quote lock is taken at])."""
        spec = mkt.spec
        if o.side == SELL:
            return spec.base_asset, spec.qty_dec(o.steps), [0]
        if o.type == MARKET:
            _, cost = mkt.engine.plan_market(BUY, qty_steps=o.steps)
            return spec.quote_asset, units_to_dec(cost), [0]
        if o.type in MARKET_TYPES:
            # A BUY STOP_LOSS/TAKE_PROFIT locks its quantity at the current price (Binance's
            # developer forum); when it triggers the lock is topped up to what the fill costs.
            ticks = self._reference_ticks(mkt, o)
        else:
            ticks = o.price_ticks
        return spec.quote_asset, units_to_dec(spec.quote_units(ticks, o.steps)), [ticks]

    def _pair_lock(self, mkt: _Market, legs: list[NewOrder]) -> tuple[str, Decimal, list[int]]:
        """An OCO pair's one lock: the quantity for a SELL, the dearer leg's quote for a BUY."""
        locks = [self._lock_for(mkt, leg) for leg in legs]
        return locks[0][0], max(lock for _, lock, _ in locks), [ticks[0] for _, _, ticks in locks]

    @staticmethod
    def _reference_ticks(mkt: _Market, o: NewOrder) -> int:
        """The current price: the last trade, else the stop price, else the best ask (0: none)."""
        last = mkt.engine.last_price
        if last is not None:
            return last
        if o.stop_ticks:
            return o.stop_ticks
        ask = mkt.book.asks.best_price()
        return ask or 0

    @staticmethod
    def _as_new_order(order: Order) -> NewOrder:
        return NewOrder(order.side, order.type, order.time_in_force, order.price_ticks, order.stop_price_ticks,
                        order.trailing_delta, order.remaining_steps)

    def _submit(self, mkt: _Market, account: Account, order: Order, *, check_last: bool = False,
                with_prevented: bool = False):
        """engine.submit, collecting the fills (and prevented matches) of this order for its
        placement response; nested placements (an order list's next phase) keep their own."""
        saved = self._placing, self._fills, self._prevented
        self._placing, self._fills, self._prevented = order, [], []
        try:
            mkt.engine.submit(order, check_last=check_last)
            fills, prevented = self._fills, self._prevented
        finally:
            self._placing, self._fills, self._prevented = saved
        return (fills, prevented) if with_prevented else fills

    def _cancel(self, mkt: _Market, account: Account, order: Order, cancel_id: str) -> dict:
        if order.status == PENDING_NEW:                  # an OTO's pending leg is not in the engine
            order.status = CANCELED
            order.update_time = self._clock()
        else:
            mkt.engine.cancel(order)
        account.close_order(order)
        now = order.update_time
        account.update_time = now
        self._emit_report(order, CANCELED, now, position=True, client_id=cancel_id,
                          orig_client_id=order.client_order_id)
        return payloads.cancel_response(mkt.spec, order, cancel_id, now)

    def _lookup(self, account: Account, symbol: str, order_id, client_id) -> Order | None:
        """By orderId (then its clientOrderId must match: -2039), else by clientOrderId (the
        latest order that used it)."""
        order_id = self._order_id(order_id)
        client_id = client_id if given(client_id) else None
        if order_id is not None:
            order = account.orders.get(symbol, {}).get(order_id)
            if order is not None and client_id is not None and order.client_order_id != client_id:
                raise errors.client_id_mismatch()
            return order
        return account.client_ids.get((symbol, client_id))

    @staticmethod
    def _resp_type(value) -> str | None:
        return resp_type(value)

    @staticmethod
    def _stp_mode(spec: SymbolSpec, value) -> str:
        return stp_mode(spec, value)

    def _client_id(self, value, param: str) -> str:
        if given(value):
            if not isinstance(value, str) or not _CLIENT_ID_RE.match(value):
                raise errors.BinanceError(-1100, f"Illegal characters found in parameter '{param}'; "
                                          "legal range is '^[a-zA-Z0-9-_]{1,36}$'.")
            return value
        # Binance generates 22 alphanumerics; base64 of random bytes with +/ mapped is the cheap way.
        return base64.b64encode(self._rng.randbytes(17)).decode()[:22].translate(_B64_TO_ALNUM)

    @staticmethod
    def _order_id(value, param: str = "orderId") -> int | None:
        if not given(value):
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and value.isdigit():
            return int(value)
        raise errors.illegal_chars(param)

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
        if trade.book_price_ticks:
            self._faults.record_slip(SlippedFill(spec.symbol, trade.id, taker.order_id, taker.side, trade.qty_steps,
                                                 trade.book_price_ticks, trade.price_ticks))
        qty = spec.qty_dec(trade.qty_steps)
        quote = units_to_dec(trade.quote_units)
        reports = []
        for order, is_maker in ((maker, True), (taker, False)):
            account = self._accounts[order.account_id]
            rate = account.rate(spec.maker_fee, spec.taker_fee, is_maker)
            is_buy = order.side == BUY
            if is_buy and order.type not in MARKET_TYPES:
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
                self._event_seq += 1
                reports.append((account, payloads.execution_report(
                    spec, order, "TRADE", trade.time, self._event_seq, trade=trade, is_maker=is_maker, fee=fee,
                    fee_asset=fee_asset)))
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
                    emit(account.account_id,
                         payloads.account_position(account, (spec.base_asset, spec.quote_asset), trade.time))
        for order in (maker, taker):
            if order.order_list_id >= 0:
                self._lists.on_trade(order)

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
        self._emit_report(order, exec_type, now, position=True)
        if order.order_list_id >= 0:
            if exec_type == NEW:
                self._lists.on_new(order)
            else:
                self._lists.on_closed(order)

    def _on_prevent(self, mkt: _Market, match: PreventedMatch) -> None:
        """A prevented self-trade: the prevented quantity leaves each order's lock (all of it when
        the order expired), each order that lost quantity gets a TRADE_PREVENTION report."""
        spec = mkt.spec
        for order, steps in ((match.maker, match.maker_steps), (match.taker, match.taker_steps)):
            if not steps:
                continue
            account = self._accounts[order.account_id]
            if order.status == EXPIRED_IN_MATCH:
                account.close_order(order)
            elif order.side == SELL:
                account.release_part((spec.symbol, order.order_id), spec.qty_dec(steps))
            elif order.type not in MARKET_TYPES:     # a working market BUY returns its rest when it ends
                account.release_part((spec.symbol, order.order_id),
                                     units_to_dec(spec.quote_units(order.lock_ticks, steps)))
            account.update_time = match.time
            self._emit_report(order, TRADE_PREVENTION, match.time, position=True, prevented=match)
        if match.taker is self._placing:
            self._prevented.append(match)
        for order in (match.maker, match.taker):
            if order.order_list_id >= 0 and order.status == EXPIRED_IN_MATCH:
                self._lists.on_closed(order)

    def _on_trigger(self, mkt: _Market, order: Order) -> bool:
        """A stop is about to work: its OCO sibling expires; a BUY market stop's lock grows to
        what its fill costs now, or the stop is rejected (EXPIRED, eR REJECTED) when free funds
        cannot cover it."""
        if order.account_id == MM_ACCOUNT_ID:
            return True
        if order.order_list_id >= 0:
            self._lists.on_trigger(order)
        if order.side == BUY and order.type in MARKET_TYPES:
            account = self._accounts[order.account_id]
            key = (mkt.spec.symbol, order.order_id)
            _, cost = mkt.engine.plan_market(BUY, qty_steps=order.remaining_steps)
            extra = units_to_dec(cost) - account.lock_of(key)
            if extra > 0 and not account.top_up(key, extra):
                return False
        return True

    # ---- user events --------------------------------------------------------------------------

    def _emit_report(self, order: Order, exec_type: str, now: int, *, position: bool = False, **fields) -> None:
        if not self._want_user or order.account_id == MM_ACCOUNT_ID:
            return
        spec = self._markets[order.symbol].spec
        self._event_seq += 1
        emit = self._listener.on_user_event
        emit(order.account_id, payloads.execution_report(spec, order, exec_type, now, self._event_seq, **fields))
        if position:
            account = self._accounts[order.account_id]
            emit(order.account_id, payloads.account_position(account, (spec.base_asset, spec.quote_asset), now))

    def _emit_list_status(self, lst, status_type: str, order_status: str, now: int) -> None:
        if self._want_user:
            spec = self._markets[lst.symbol].spec
            self._listener.on_user_event(lst.account_id, payloads.list_status(spec, lst, status_type, order_status,
                                                                              now))

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

    @staticmethod
    def _top_strings(spec: SymbolSpec, top) -> tuple[str, str, str, str]:
        bid_p, bid_q, ask_p, ask_q = top
        return (spec.price_str(bid_p) if bid_p is not None else ZERO_STR,
                spec.qty_str(bid_q) if bid_q is not None else ZERO_STR,
                spec.price_str(ask_p) if ask_p is not None else ZERO_STR,
                spec.qty_str(ask_q) if ask_q is not None else ZERO_STR)


def _order_params(side, type_, time_in_force, quantity, quote_order_qty, price, stop_price, client_id,
                  trailing_delta) -> dict:
    """POST /api/v3/order's keyword arguments under Binance's parameter names."""
    return {"side": side, "type": type_, "timeInForce": time_in_force, "quantity": quantity,
            "quoteOrderQty": quote_order_qty, "price": price, "stopPrice": stop_price,
            "newClientOrderId": client_id, "trailingDelta": trailing_delta}
