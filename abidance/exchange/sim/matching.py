"""MatchingEngine: one symbol's order flow over its Book, in price-time priority.

Supports LIMIT (GTC/IOC/FOK), MARKET (by quantity; quoteOrderQty is turned into a quantity by the
caller with `plan_market` before submitting), LIMIT_MAKER, and STOP_LOSS_LIMIT / TAKE_PROFIT_LIMIT
(held aside untriggered; on trigger they enter the book as LIMIT orders with their timeInForce).

The engine owns order state (executed quantity, status, times), trade ids, the last price and the
stop list. It knows nothing of balances: the caller locks funds before `submit` and settles them
in the `on_trade` callback. Callbacks:

  on_trade(trade, maker, taker)      after both orders and the book reflect the fill
  on_order_update(order, exec_type)  "NEW" (accepted, or a stop triggered) and "EXPIRED"
                                     (IOC/FOK/MARKET remainder, market-maker self-match)

Explicit cancels (`cancel`) are reported by the caller, which knows the cancel request's ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Callable

from abidance.exchange.sim import errors
from abidance.exchange.sim.book import Book, BookSide, Level
from abidance.exchange.sim.symbols import SymbolSpec, units_to_dec

MM_ACCOUNT_ID = 0   # the market-maker pseudo-account; it never trades with itself

BUY, SELL = "BUY", "SELL"
LIMIT, MARKET, LIMIT_MAKER = "LIMIT", "MARKET", "LIMIT_MAKER"
STOP_LOSS_LIMIT, TAKE_PROFIT_LIMIT = "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"
STOP_TYPES = frozenset({STOP_LOSS_LIMIT, TAKE_PROFIT_LIMIT})
GTC, IOC, FOK = "GTC", "IOC", "FOK"
NEW, PARTIALLY_FILLED, FILLED = "NEW", "PARTIALLY_FILLED", "FILLED"
CANCELED, EXPIRED, REJECTED = "CANCELED", "EXPIRED", "REJECTED"
OPEN_STATUSES = frozenset({NEW, PARTIALLY_FILLED})


@dataclass(slots=True, eq=False)   # eq=False: orders compare by identity (deque.remove relies on it)
class Order:
    """An order as the venue holds it. Prices in ticks, quantities in steps.

    `cum_quote_units` is the cumulative quote in 1e-8 (exact int); `cum_quote` gives it as Decimal.
    `working_time` is -1 until the order is working (stops before their trigger), as Binance shows.
    """

    order_id: int
    client_order_id: str
    account_id: int
    side: str
    type: str
    time_in_force: str
    price_ticks: int                    # 0 for MARKET
    orig_qty_steps: int
    executed_qty_steps: int = 0
    cum_quote_units: int = 0
    quote_order_qty: Decimal | None = None
    stop_price_ticks: int = 0           # 0 unless a stop type
    status: str = NEW
    time: int = 0
    update_time: int = 0
    working_time: int = -1
    is_working: bool = False
    symbol: str = ""

    @property
    def cum_quote(self) -> Decimal:
        return units_to_dec(self.cum_quote_units)

    @property
    def remaining_steps(self) -> int:
        return self.orig_qty_steps - self.executed_qty_steps

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


@dataclass(slots=True)
class Trade:
    """One match. quote_units = price * qty in 1e-8 of the quote asset (exact)."""

    id: int
    price_ticks: int
    qty_steps: int
    quote_units: int
    time: int
    buyer_is_maker: bool
    buyer_order_id: int
    seller_order_id: int


TradeCallback = Callable[[Trade, Order, Order], None]
UpdateCallback = Callable[[Order, str], None]


class MatchingEngine:
    """Price-time priority matching for one symbol."""

    def __init__(self, spec: SymbolSpec, book: Book, clock_ms: Callable[[], int],
                 on_trade: TradeCallback, on_order_update: UpdateCallback):
        self.spec = spec
        self.book = book
        self._clock = clock_ms
        self._on_trade = on_trade
        self._on_update = on_order_update
        self.last_order_id = 0
        self.last_trade_id = 0
        self.last_price: int | None = None       # ticks of the last trade
        self.stops: list[Order] = []             # untriggered stop orders, oldest first
        # Lowest/highest trade price since stops were last evaluated: a stop fires when the trades
        # crossed its stop price, even if a later trade in the same sweep moved past it.
        self._lo: int | None = None
        self._hi: int | None = None
        self._mm_self_trade = False

    def next_order_id(self) -> int:
        self.last_order_id += 1
        return self.last_order_id

    # ---- questions asked before an order is accepted ------------------------------------------

    def would_cross(self, side: str, price_ticks: int) -> bool:
        """Would a limit at this price take liquidity now?"""
        best = self.book.opposite_of(side).best_price()
        if best is None:
            return False
        return best <= price_ticks if side == BUY else best >= price_ticks

    def would_trigger(self, order: Order) -> bool:
        """Would this stop order trigger at the current last price?"""
        last = self.last_price
        return last is not None and _fires(order, last, last)

    def plan_market(self, side: str, qty_steps: int | None = None,
                    quote_units: int | None = None) -> tuple[int, int]:
        """What a MARKET order would fill right now: (steps, quote units).

        By quantity: up to qty_steps. By quote (quoteOrderQty): as many whole steps as the quote
        amount pays for, level by level (a BUY spends at most it, a SELL receives at most it).
        """
        qpts = self.spec.quote_per_tick_step
        steps = cost = 0
        for level in self.book.opposite_of(side).iter_levels():
            avail = level.total
            if qty_steps is not None:
                take = min(avail, qty_steps - steps)
            else:
                take = min(avail, (quote_units - cost) // (level.price * qpts))
            steps += take
            cost += take * level.price * qpts
            if take < avail:
                break
        return steps, cost

    def fillable(self, side: str, limit_ticks: int | None, qty_steps: int) -> bool:
        """Is there at least qty_steps at prices no worse than the limit (FOK's pre-check)?"""
        total = 0
        for level in self.book.opposite_of(side).iter_levels():
            if limit_ticks is not None and (level.price > limit_ticks if side == BUY else level.price < limit_ticks):
                break
            total += level.total
            if total >= qty_steps:
                return True
        return False

    # ---- order flow ---------------------------------------------------------------------------

    def submit(self, order: Order, *, mm_self_trade: bool = False) -> None:
        """Accept an order (ids, times and funds already set by the caller) and run it.

        mm_self_trade lets a market-maker taker trade with market-maker quotes (the driver's
        tape prints) instead of expiring them; it applies to this order only.
        """
        if order.type == LIMIT_MAKER and self.would_cross(order.side, order.price_ticks):
            raise errors.would_take()
        now = self._clock()
        if not order.time:
            order.time = now
        order.update_time = order.time
        if order.type in STOP_TYPES:
            order.is_working = False
            order.working_time = -1
            self.stops.append(order)
            self._on_update(order, NEW)
        else:
            order.is_working = True
            order.working_time = order.time
            self._on_update(order, NEW)
            self._mm_self_trade = mm_self_trade
            try:
                self._work(order)
            finally:
                self._mm_self_trade = False
        self._run_stops()

    def cancel(self, order: Order) -> bool:
        """Take an open order off the book (or the stop list). False when it is not open."""
        if order.status not in OPEN_STATUSES:
            return False
        if order.is_working:
            self.book.remove(order, order.orig_qty_steps - order.executed_qty_steps)
        else:
            self.stops.remove(order)
        order.status = CANCELED
        order.update_time = self._clock()
        return True

    # ---- internals ----------------------------------------------------------------------------

    def _work(self, order: Order) -> None:
        """Match a working order, then rest or expire what is left."""
        limit = None if order.type == MARKET else order.price_ticks
        tif = order.time_in_force
        if tif == FOK and not self.fillable(order.side, limit, order.orig_qty_steps - order.executed_qty_steps):
            self._expire(order)
            return
        self._take(order, limit)
        remaining = order.orig_qty_steps - order.executed_qty_steps
        if remaining == 0:
            if order.status == NEW:
                # A quoteOrderQty MARKET that could buy/sell nothing (empty book, amount below one
                # step): it ends EXPIRED with nothing executed rather than staying open off-book.
                self._expire(order)
            return
        if order.type == MARKET or tif != GTC:
            self._expire(order)      # IOC/FOK/MARKET remainders end EXPIRED, as on Binance
        else:
            self.book.add(order, remaining)

    def _take(self, taker: Order, limit: int | None) -> None:
        side: BookSide = self.book.opposite_of(taker.side)
        keys, levels = side.keys, side.levels
        is_buy = taker.side == BUY
        sign = -1 if is_buy else 1               # asks store -price as their key
        taker_is_mm = taker.account_id == MM_ACCOUNT_ID
        while keys:
            remaining = taker.orig_qty_steps - taker.executed_qty_steps
            if remaining <= 0:
                return
            price = keys[-1] * sign
            if limit is not None and (price > limit if is_buy else price < limit):
                return
            level = levels[price]
            maker = level.orders[0]
            if taker_is_mm and maker.account_id == MM_ACCOUNT_ID and not self._mm_self_trade:
                # The market maker never trades with itself: EXPIRE_MAKER on its resting quote.
                self.book.remove(maker, maker.orig_qty_steps - maker.executed_qty_steps)
                self._expire(maker)
                continue
            avail = maker.orig_qty_steps - maker.executed_qty_steps
            self._execute(taker, maker, side, level, price, remaining if remaining < avail else avail)

    def _execute(self, taker: Order, maker: Order, side: BookSide, level: Level, price: int, qty: int) -> None:
        quote = price * qty * self.spec.quote_per_tick_step
        now = self._clock()
        self.last_trade_id += 1
        maker.executed_qty_steps += qty
        maker.cum_quote_units += quote
        maker.update_time = now
        maker_done = maker.executed_qty_steps == maker.orig_qty_steps
        maker.status = FILLED if maker_done else PARTIALLY_FILLED
        taker.executed_qty_steps += qty
        taker.cum_quote_units += quote
        taker.update_time = now
        taker.status = FILLED if taker.executed_qty_steps == taker.orig_qty_steps else PARTIALLY_FILLED
        self.book.fill_front(side, level, qty, maker_done)
        self.last_price = price
        if self._lo is None:
            self._lo = self._hi = price
        elif price < self._lo:
            self._lo = price
        elif price > self._hi:
            self._hi = price
        if maker.side == BUY:
            trade = Trade(self.last_trade_id, price, qty, quote, now, True, maker.order_id, taker.order_id)
        else:
            trade = Trade(self.last_trade_id, price, qty, quote, now, False, taker.order_id, maker.order_id)
        self._on_trade(trade, maker, taker)

    def _expire(self, order: Order) -> None:
        order.status = EXPIRED
        order.update_time = self._clock()
        self._on_update(order, EXPIRED)

    def _run_stops(self) -> None:
        """Trigger every stop the trades since the last evaluation crossed; repeat while triggered
        orders trade (their trades may cross further stops)."""
        while self.stops and self._lo is not None:
            lo, hi = self._lo, self._hi
            self._lo = self._hi = None
            fired, waiting = [], []
            for order in self.stops:
                (fired if _fires(order, lo, hi) else waiting).append(order)
            if not fired:
                break
            self.stops = waiting
            for order in fired:
                now = self._clock()
                order.is_working = True
                order.working_time = order.update_time = now
                self._on_update(order, NEW)      # Binance reports a triggered stop as NEW, working
                self._work(order)
        self._lo = self._hi = None


def _fires(order: Order, lo: int, hi: int) -> bool:
    """Binance's trigger directions: STOP_LOSS SELL and TAKE_PROFIT BUY fire when the price falls
    to the stop (last <= stop); STOP_LOSS BUY and TAKE_PROFIT SELL when it rises to it (>=)."""
    if (order.type == STOP_LOSS_LIMIT) == (order.side == SELL):
        return lo <= order.stop_price_ticks
    return hi >= order.stop_price_ticks
