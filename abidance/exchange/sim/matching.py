"""MatchingEngine: one symbol's order flow over its Book, in price-time priority.

Order types: LIMIT (GTC/IOC/FOK), MARKET (by quantity; quoteOrderQty is turned into a quantity by
the caller with `plan_market` before submitting), LIMIT_MAKER, and the stop family: STOP_LOSS /
TAKE_PROFIT (a MARKET order once triggered) and STOP_LOSS_LIMIT / TAKE_PROFIT_LIMIT (a LIMIT with
their timeInForce once triggered). A stop triggers at its stop price, or trails: with
`trailing_delta` (BIPS) it tracks the best trade price since it started tracking and triggers
on a move of delta against it (Binance's trailing-stop FAQ; see `_advance`).

Self-trade prevention: when a taker meets a resting order of its own account, the taker's mode
decides (EXPIRE_TAKER, EXPIRE_MAKER, EXPIRE_BOTH, DECREMENT; TRANSFER acts as DECREMENT inside
one account, as Binance's STP FAQ says). Prevented quantity leaves the orders for good; an order
with nothing left ends EXPIRED_IN_MATCH. The market-maker account never trades with itself.

The engine owns order state (executed and prevented quantity, status, times), trade ids, the last
price and the stop list. It knows nothing of balances or order lists: the caller locks funds
before `submit` and settles them in the callbacks:

  on_trade(trade, maker, taker)      after both orders and the book reflect the fill
  on_order_update(order, exec_type)  "NEW" (accepted, or a stop triggered) and "EXPIRED"
  on_prevent(match)                  a prevented self-trade, after both orders reflect it
  on_trigger(order) -> bool          a stop is about to work; False rejects it (EXPIRED, REJECTED)
  fill_price(side, ticks) -> ticks   what a user's MARKET order is charged for a fill at a book
                                     level (the simulator's slippage fault); the book's price by default

Explicit cancels (`cancel`) are reported by the caller, which knows the cancel request's ids.
`defer(fn)` runs fn once the current submission has finished matching (an order list's next
phase), so that nothing enters the book while a taker is walking it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from decimal import Decimal
from typing import Callable

from abidance.exchange.sim import errors
from abidance.exchange.sim.book import Book, BookSide, Level
from abidance.exchange.sim.symbols import SymbolSpec, units_to_dec

MM_ACCOUNT_ID = 0   # the market-maker pseudo-account; it never trades with itself

BUY, SELL = "BUY", "SELL"
LIMIT, MARKET, LIMIT_MAKER = "LIMIT", "MARKET", "LIMIT_MAKER"
STOP_LOSS, STOP_LOSS_LIMIT = "STOP_LOSS", "STOP_LOSS_LIMIT"
TAKE_PROFIT, TAKE_PROFIT_LIMIT = "TAKE_PROFIT", "TAKE_PROFIT_LIMIT"
STOP_TYPES = frozenset({STOP_LOSS, STOP_LOSS_LIMIT, TAKE_PROFIT, TAKE_PROFIT_LIMIT})
STOP_LOSS_TYPES = frozenset({STOP_LOSS, STOP_LOSS_LIMIT})
MARKET_TYPES = frozenset({MARKET, STOP_LOSS, TAKE_PROFIT})       # no limit price once working
GTC, IOC, FOK = "GTC", "IOC", "FOK"
NEW, PARTIALLY_FILLED, FILLED = "NEW", "PARTIALLY_FILLED", "FILLED"
CANCELED, EXPIRED, REJECTED = "CANCELED", "EXPIRED", "REJECTED"
PENDING_NEW, EXPIRED_IN_MATCH = "PENDING_NEW", "EXPIRED_IN_MATCH"
TRADE_PREVENTION = "TRADE_PREVENTION"
OPEN_STATUSES = frozenset({NEW, PARTIALLY_FILLED})
# Self-trade prevention modes.
STP_NONE, EXPIRE_TAKER, EXPIRE_MAKER, EXPIRE_BOTH = "NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"
DECREMENT, TRANSFER = "DECREMENT", "TRANSFER"
# Binance's expiry reasons (the `eR` of executionReport, `expiryReason` of responses).
UNFILLED_IOC = "UNFILLED_IOC_QUANTITY_EXPIRED"
UNFILLED_FOK = "UNFILLED_FOK_ORDER_EXPIRED"
INSUFFICIENT_LIQUIDITY = "INSUFFICIENT_LIQUIDITY"
REJECTED_REASON = "REJECTED"
OCO_TRIGGER = "OCO_TRIGGER"
OTO_PHASE_ONE_EXPIRED = "OTO_PHASE_ONE_EXPIRED"
BIPS = 10_000


@dataclass(slots=True, eq=False)   # eq=False: orders compare by identity (deque.remove relies on it)
class Order:
    """An order as the venue holds it. Prices in ticks, quantities in steps.

    `cum_quote_units` is the cumulative quote in 1e-8 (exact int); `cum_quote` gives it as Decimal.
    `working_time` is -1 until the order is working (stops before their trigger), as Binance shows.
    A trailing stop has `trailing_delta` > 0; `trailing_time` is -1 until it tracks prices and
    `trail_ref` is then the best trade price it has seen. `prevented_qty_steps` is what
    self-trade prevention took off the order. `lock_ticks` is the price a BUY's quote lock was
    taken at (the limit price; the reference price for a market stop); the engine never reads it.
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
    trailing_delta: int = 0
    trailing_time: int = -1
    trail_ref: int = 0
    stp_mode: str = STP_NONE
    prevented_qty_steps: int = 0
    prevented_match_id: int = -1
    order_list_id: int = -1
    expiry_reason: str = ""
    amends: int = 0
    lock_ticks: int = 0

    @property
    def cum_quote(self) -> Decimal:
        return units_to_dec(self.cum_quote_units)

    @property
    def remaining_steps(self) -> int:
        """What may still execute: original - executed - prevented."""
        return self.orig_qty_steps - self.executed_qty_steps - self.prevented_qty_steps

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
    book_price_ticks: int = 0   # the level it took, when the price charged differs (slippage fault)


@dataclass(slots=True)
class PreventedMatch:
    """One prevented self-trade: which orders lost how much, at the maker's price."""

    id: int                 # preventedMatchId, per symbol from 0
    price_ticks: int
    taker: Order
    maker: Order
    taker_steps: int        # prevented on the taker (0 when only the maker lost quantity)
    maker_steps: int
    mode: str               # the effective mode
    time: int
    would_steps: int        # what would have traded without prevention


TradeCallback = Callable[[Trade, Order, Order], None]
UpdateCallback = Callable[[Order, str], None]
PreventCallback = Callable[[PreventedMatch], None]
TriggerCallback = Callable[[Order], bool]
FillPrice = Callable[[str, int], int]



def _accept_all(order: Order) -> bool:
    return True


def _ignore_prevented(match: PreventedMatch) -> None:
    pass


def _book_price(side: str, price_ticks: int) -> int:
    return price_ticks


class MatchingEngine:
    """Price-time priority matching for one symbol."""

    def __init__(self, spec: SymbolSpec, book: Book, clock_ms: Callable[[], int],
                 on_trade: TradeCallback, on_order_update: UpdateCallback, *,
                 on_prevent: PreventCallback | None = None, on_trigger: TriggerCallback | None = None,
                 fill_price: FillPrice | None = None):
        self.spec = spec
        self.book = book
        self._clock = clock_ms
        self._on_trade = on_trade
        self._on_update = on_order_update
        self._on_prevent = on_prevent or _ignore_prevented
        self._on_trigger = on_trigger or _accept_all
        self._fill_price = fill_price or _book_price
        self.last_order_id = 0
        self.last_trade_id = 0
        self.last_prevented_id = -1
        self.last_price: int | None = None       # ticks of the last trade
        self.stops: list[Order] = []             # untriggered stop orders, oldest first
        # Trade prices since stops were last evaluated, in order: a stop fires when the trades
        # crossed its stop price even if a later trade of the same sweep moved back past it,
        # and a trailing stop follows the sequence.
        self._prices: list[int] = []
        self._deferred: deque[Callable[[], None]] = deque()
        self._settling = False
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
        """Would this stop order trigger at the current last price (its stop price condition)?"""
        last = self.last_price
        return last is not None and order.stop_price_ticks > 0 and _stop_hit(order, last)

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
            price = self._fill_price(side, level.price)     # only user orders are planned
            if qty_steps is not None:
                take = min(avail, qty_steps - steps)
            else:
                take = min(avail, (quote_units - cost) // (price * qpts))
            steps += take
            cost += take * price * qpts
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

    def submit(self, order: Order, *, mm_self_trade: bool = False, check_last: bool = False) -> None:
        """Accept an order (ids, times and funds already set by the caller) and run it.

        mm_self_trade lets a market-maker taker trade with market-maker quotes (the driver's
        tape prints) instead of expiring them; it applies to this order only. check_last has a
        stop evaluated against the last price at once (an order list's leg going live: unlike a
        new order it is not refused for triggering immediately, it triggers).
        """
        if order.type == LIMIT_MAKER and self.would_cross(order.side, order.price_ticks):
            raise errors.would_take()
        if self._settling:                       # a deferred phase placing orders: the outer call settles
            self._accept(order, mm_self_trade, check_last)
            return
        self._settling = True
        try:
            self._accept(order, mm_self_trade, check_last)
            self._settle()
        finally:
            self._settling = False
            self._prices.clear()

    def defer(self, fn: Callable[[], None]) -> None:
        """Run fn after the current submission's matching (and its stops) are done; at once
        when nothing is being submitted."""
        self._deferred.append(fn)
        if self._settling:
            return
        self._settling = True
        try:
            self._settle()
        finally:
            self._settling = False
            self._prices.clear()

    def cancel(self, order: Order) -> bool:
        """Take an open order off the book (or the stop list). False when it is not open."""
        if order.status not in OPEN_STATUSES:
            return False
        self._withdraw(order)
        order.status = CANCELED
        order.update_time = self._clock()
        return True

    def expire(self, order: Order, reason: str) -> bool:
        """The venue expires an open order (an order list's rule); reported as EXPIRED."""
        if order.status not in OPEN_STATUSES:
            return False
        self._withdraw(order)
        self._expire(order, reason)
        return True

    def amend(self, order: Order, qty_steps: int) -> bool:
        """Reduce an open order's original quantity in place (it keeps its queue position).
        True when nothing is left to execute: the order is then off the book and EXPIRED."""
        before = order.remaining_steps
        order.orig_qty_steps = qty_steps
        after = max(order.remaining_steps, 0)
        order.update_time = self._clock()
        resting = self._resting(order)
        if after:
            if resting:
                self.book.reduce(order, before - after)
            return False
        if resting:
            self.book.remove(order, before)
        elif order in self.stops:
            self.stops.remove(order)
        order.status = EXPIRED
        return True

    # ---- internals ----------------------------------------------------------------------------

    def _resting(self, order: Order) -> bool:
        if not order.is_working:
            return False
        level = self.book.side_of(order.side).levels.get(order.price_ticks)
        return level is not None and order in level.orders

    def _withdraw(self, order: Order) -> None:
        if self._resting(order):
            self.book.remove(order, order.remaining_steps)
        elif order in self.stops:
            self.stops.remove(order)

    def _work(self, order: Order) -> None:
        """Match a working order, then rest or expire what is left."""
        market = order.type in MARKET_TYPES
        limit = None if market else order.price_ticks
        tif = order.time_in_force
        if tif == FOK and not self.fillable(order.side, limit, order.remaining_steps):
            self._expire(order, UNFILLED_FOK)
            return
        self._take(order, limit)
        if order.status not in OPEN_STATUSES:          # filled, or expired by self-trade prevention
            return
        remaining = order.remaining_steps
        if remaining == 0 or market:
            # A MARKET remainder, or a quoteOrderQty MARKET that could buy/sell nothing (empty
            # book, amount below one step): EXPIRED rather than open off-book, as on Binance.
            self._expire(order, INSUFFICIENT_LIQUIDITY)
        elif tif != GTC:
            self._expire(order, UNFILLED_IOC if tif == IOC else UNFILLED_FOK)
        else:
            self.book.add(order, remaining)

    def _take(self, taker: Order, limit: int | None) -> None:
        side: BookSide = self.book.opposite_of(taker.side)
        keys, levels = side.keys, side.levels
        is_buy = taker.side == BUY
        sign = -1 if is_buy else 1               # asks store -price as their key
        account = taker.account_id
        taker_is_mm = account == MM_ACCOUNT_ID
        while keys:
            remaining = taker.orig_qty_steps - taker.executed_qty_steps - taker.prevented_qty_steps
            if remaining <= 0:
                return
            price = keys[-1] * sign
            if limit is not None and (price > limit if is_buy else price < limit):
                return
            level = levels[price]
            maker = level.orders[0]
            if maker.account_id == account:
                if taker_is_mm:
                    if not self._mm_self_trade:
                        # The market maker never trades with itself: EXPIRE_MAKER on its resting quote.
                        self.book.remove(maker, maker.remaining_steps)
                        self._expire(maker, "")
                        continue
                elif taker.stp_mode != STP_NONE:
                    self._prevent(taker, maker, price)
                    if taker.status == EXPIRED_IN_MATCH:
                        return
                    continue
            avail = maker.orig_qty_steps - maker.executed_qty_steps - maker.prevented_qty_steps
            self._execute(taker, maker, side, level, price, remaining if remaining < avail else avail)

    def _prevent(self, taker: Order, maker: Order, price: int) -> None:
        """Self-trade prevention between a taker and its own resting maker (the taker's mode)."""
        t_rem, m_rem = taker.remaining_steps, maker.remaining_steps
        mode = taker.stp_mode
        if mode == EXPIRE_TAKER:
            t_q, m_q = t_rem, 0
        elif mode == EXPIRE_MAKER:
            t_q, m_q = 0, m_rem
        elif mode == EXPIRE_BOTH:
            t_q, m_q = t_rem, m_rem
        else:                                    # DECREMENT; TRANSFER within one account
            mode = DECREMENT
            t_q = m_q = min(t_rem, m_rem)
        now = self._clock()
        self.last_prevented_id += 1
        match_id = self.last_prevented_id
        if m_q:
            if m_q == m_rem:
                self.book.remove(maker, m_rem)
                maker.status = EXPIRED_IN_MATCH
            else:
                self.book.reduce(maker, m_q)
            maker.prevented_qty_steps += m_q
            maker.prevented_match_id = match_id
            maker.update_time = now
        if t_q:
            taker.prevented_qty_steps += t_q
            taker.prevented_match_id = match_id
            taker.update_time = now
            if t_q == t_rem:
                taker.status = EXPIRED_IN_MATCH
        self._on_prevent(PreventedMatch(match_id, price, taker, maker, t_q, m_q, mode, now, min(t_rem, m_rem)))

    def _execute(self, taker: Order, maker: Order, side: BookSide, level: Level, price: int, qty: int) -> None:
        book_price = price
        if taker.type in MARKET_TYPES and taker.account_id != MM_ACCOUNT_ID:
            price = self._fill_price(taker.side, book_price)
        quote = price * qty * self.spec.quote_per_tick_step
        now = self._clock()
        self.last_trade_id += 1
        maker.executed_qty_steps += qty
        maker.cum_quote_units += quote
        maker.update_time = now
        maker_done = maker.remaining_steps == 0
        maker.status = FILLED if maker_done else PARTIALLY_FILLED
        taker.executed_qty_steps += qty
        taker.cum_quote_units += quote
        taker.update_time = now
        taker.status = FILLED if taker.remaining_steps == 0 else PARTIALLY_FILLED
        self.book.fill_front(side, level, qty, maker_done)
        self.last_price = price                  # the tape prints the price charged
        self._prices.append(price)
        slipped = book_price if book_price != price else 0
        if maker.side == BUY:
            trade = Trade(self.last_trade_id, price, qty, quote, now, True, maker.order_id, taker.order_id, slipped)
        else:
            trade = Trade(self.last_trade_id, price, qty, quote, now, False, taker.order_id, maker.order_id, slipped)
        self._on_trade(trade, maker, taker)

    def _expire(self, order: Order, reason: str) -> None:
        order.status = EXPIRED
        order.expiry_reason = reason
        order.update_time = self._clock()
        self._on_update(order, EXPIRED)

    def _start_trailing(self, order: Order, now: int) -> None:
        """A trailing stop tracks from placement when it has no stop price, or when its stop
        price condition already holds; the last price is its first reference (FAQ scenario E)."""
        last = self.last_price
        if order.trailing_delta and last is not None and (
                not order.stop_price_ticks or _stop_hit(order, last)):
            order.trailing_time = now
            order.trail_ref = last

    def _accept(self, order: Order, mm_self_trade: bool, check_last: bool) -> None:
        now = self._clock()
        if not order.time:
            order.time = now
        order.update_time = now
        if order.type in STOP_TYPES:
            order.is_working = False
            order.working_time = -1
            self._start_trailing(order, now)
            self.stops.append(order)
            self._on_update(order, NEW)
            if check_last and self.last_price is not None:
                self._prices.append(self.last_price)
            return
        order.is_working = True
        order.working_time = now
        self._on_update(order, NEW)
        self._mm_self_trade = mm_self_trade
        try:
            self._work(order)
        finally:
            self._mm_self_trade = False

    def _settle(self) -> None:
        """Trigger the stops the trades crossed, and run deferred work, until neither is left."""
        while self._fire_stops() or self._run_deferred():
            pass

    def _run_deferred(self) -> bool:
        if not self._deferred:
            return False
        self._deferred.popleft()()
        return True

    def _fire_stops(self) -> bool:
        """One round: every stop the trade prices since the last round trigger. True when any
        did (their trades may trigger more)."""
        prices = self._prices
        if not prices:
            return False
        self._prices = []
        if not self.stops:
            return False
        now = self._clock()
        fired, waiting = [], []
        for order in self.stops:
            (fired if _advance(order, prices, now) else waiting).append(order)
        if not fired:
            return False
        self.stops = waiting
        for order in fired:
            if order.status in OPEN_STATUSES:    # not expired meanwhile (an OCO sibling that fired first)
                self._trigger(order)
        return True

    def _trigger(self, order: Order) -> None:
        if not self._on_trigger(order):
            self._expire(order, REJECTED_REASON)
            return
        now = self._clock()
        order.is_working = True
        order.working_time = order.update_time = now
        self._on_update(order, NEW)      # Binance reports a triggered stop as NEW, working
        self._work(order)


def _stop_hit(order: Order, price: int) -> bool:
    """Binance's trigger directions: STOP_LOSS(_LIMIT) SELL and TAKE_PROFIT(_LIMIT) BUY fire when
    the price falls to the stop (price <= stop); STOP_LOSS BUY and TAKE_PROFIT SELL when it rises
    to it (>=)."""
    if (order.type in STOP_LOSS_TYPES) == (order.side == SELL):
        return price <= order.stop_price_ticks
    return price >= order.stop_price_ticks


def _advance(order: Order, prices: list[int], now: int) -> bool:
    """Walk one stop through trade prices in order; True when it triggers.

    A plain stop triggers on any price meeting its stop condition. A trailing stop first waits
    for its stop condition (when it has a stop price; the first price meeting it becomes its
    reference), then follows the best price (a SELL the highest, a BUY the lowest) and triggers
    when a price is `trailing_delta` BIPS worse than it: SELL at ref * (1 - d), BUY at
    ref * (1 + d), computed exactly in integers.
    """
    if not order.trailing_delta:
        return any(_stop_hit(order, p) for p in prices)
    sell = order.side == SELL
    down = BIPS - order.trailing_delta
    up = BIPS + order.trailing_delta
    for p in prices:
        if order.trailing_time < 0:
            if order.stop_price_ticks and not _stop_hit(order, p):
                continue
            order.trailing_time = now
            order.trail_ref = p
            continue
        ref = order.trail_ref
        if sell:
            if p > ref:
                order.trail_ref = p
            elif p * BIPS <= ref * down:
                return True
        elif p < ref:
            order.trail_ref = p
        elif p * BIPS >= ref * up:
            return True
    return False
