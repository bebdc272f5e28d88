"""BacktestVenue: an in-process, Binance-compatible venue for backtests and the paper node.

It keeps the account the way the simulator does (abidance/exchange/sim/accounts.py, the same
class): free and locked balances, a lock taken when an order is placed (a BUY limit locks
price x quantity of the quote asset, a SELL its quantity of the base asset), fills spent from
the lock, what is left released when the order ends, fees taken from the asset received. An
order the free balance cannot cover is refused with Binance's own error, -2010 "Account has
insufficient balance for requested action.", as the simulator refuses it. So paper trading
never books a fill that the exchange would have refused, and a backtest never overdraws.

No look-ahead: an order sent while bar t is processed (at its close) can only fill in a
later bar. Market data comes in three kinds, one per run (`source`):
- "bars" (`on_bar`, called by the backtest runner at each bar's open): a MARKET order reaches
  the venue at the next bar's open and fills there, moved against it by `slippage_bps`. A
  LIMIT fills in the first later bar that trades through the price (BUY: low <= price, SELL:
  high >= price), at the better of the price and that bar's open; maker when it rested,
  taker when it was marketable at that open.
- "trades" (topics.TRADES; the paper node and trade backtests): a MARKET order reaches the
  venue at the next trade and fills at its price; a LIMIT marketable at the first trade after
  it arrived fills at that trade's price (taker), else when a trade prints strictly through
  the price (at the price itself the queue ahead is unknown), at the price, maker.
- "book" (topics.BOOKS; backtests on recorded depth): a MARKET order reaches the venue at the
  next book update and fills by walking that book, one fill per level (what the book cannot
  fill expires, as a Binance market order does); a LIMIT takes the levels at or better than
  its price when it arrives (taker) and otherwise fills, as a maker at its price, once the
  book's other side goes strictly through it. The recorded book is the market: our own
  fills do not take liquidity out of it.
A MARKET order's cost is known only when it reaches the venue: that is when its funds are
checked and locked, and a -2010 refusal comes back as the venue's late answer
(topics.VENUE_ANSWERS) — the same outcome as a live order refused when it is sent.
`participation` caps the share of a bar's (trade's) volume filled per bar (trade); the rest
fills later. `latency_ms`: an order reaches only bars (trades) at least that long after it
was sent. `spread_bps`: market orders also pay half this spread. Fee rates per instrument.

Fills reach the execution engine as the live user stream delivers them (topics.ORDER_UPDATES),
each followed by the account's new balances of the two assets (topics.BALANCES, as Binance's
outboundAccountPosition): the portfolio checks its books against the venue's on every fill.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, fields
from decimal import ROUND_HALF_EVEN, Decimal

from abidance.core import topics
from abidance.core.bus import Priority
from abidance.core.errors import OrderRejected
from abidance.core.events import Balance, BalanceUpdate, OrderUpdate, VenueAnswer
from abidance.exchange.sim import errors as sim_errors
from abidance.exchange.sim.accounts import Account

BPS = Decimal(10_000)
ZERO = Decimal(0)
SOURCES = ("bars", "trades", "book")
BOOK_LEVELS = 1000          # levels a market order may walk in one book update


def insufficient_balance() -> OrderRejected:
    """The simulator's -2010, as a venue-neutral error (the same code and text)."""
    err = sim_errors.insufficient_balance()
    return OrderRejected(err.code, err.msg)


@dataclass(frozen=True)
class FillModel:
    """How the simulated venue fills: fees, slippage, spread, volume participation, latency."""

    taker_bps: Decimal = Decimal(10)
    maker_bps: Decimal = Decimal(10)
    taker_by_symbol: dict = field(default_factory=dict)     # symbol -> bps
    maker_by_symbol: dict = field(default_factory=dict)
    slippage_bps: Decimal = Decimal(0)
    spread_bps: Decimal = Decimal(0)
    participation: Decimal | None = None                     # share of volume per bar/trade; None = all
    latency_ms: int = 0

    def __post_init__(self):
        for name in ("taker_bps", "maker_bps", "slippage_bps", "spread_bps"):
            value = Decimal(getattr(self, name))
            if not value.is_finite() or value < 0:
                raise ValueError(f"{name} must be a finite decimal >= 0, got {getattr(self, name)}")
            object.__setattr__(self, name, value)
        for name in ("taker_by_symbol", "maker_by_symbol"):
            table = {s: Decimal(v) for s, v in getattr(self, name).items()}
            bad = [s for s, v in table.items() if not v.is_finite() or v < 0]
            if bad:
                raise ValueError(f"{name}.{bad[0]} must be a finite decimal >= 0, got {table[bad[0]]}")
            object.__setattr__(self, name, table)
        if self.participation is not None:
            p = Decimal(self.participation)
            if not Decimal(0) < p <= 1:
                raise ValueError(f"participation must be within (0, 1], got {self.participation}")
            object.__setattr__(self, "participation", p)
        if int(self.latency_ms) < 0:
            raise ValueError(f"latency_ms must be >= 0, got {self.latency_ms}")

    @classmethod
    def from_config(cls, section, **overrides) -> "FillModel":
        """The [backtest] section, with the given (non-None) values on top."""
        values = {"taker_bps": section.taker_bps, "maker_bps": section.maker_bps,
                  "taker_by_symbol": dict(section.taker_bps_by_symbol),
                  "maker_by_symbol": dict(section.maker_bps_by_symbol), "slippage_bps": section.slippage_bps,
                  "spread_bps": section.spread_bps, "participation": section.participation or None,
                  "latency_ms": section.latency_ms}
        known = {f.name for f in fields(cls)}
        for name, value in overrides.items():
            if name not in known:
                raise TypeError(f"unknown fill model setting {name!r}")
            if value is not None:
                values[name] = value
        return cls(**values)

    def rates(self, symbol: str) -> tuple[Decimal, Decimal]:
        """(maker, taker) fee rates of symbol, as fractions of the notional."""
        return (self.maker_by_symbol.get(symbol, self.maker_bps) / BPS,
                self.taker_by_symbol.get(symbol, self.taker_bps) / BPS)


class _Resting:
    """One order at the venue: placed (a LIMIT, funds locked) or in flight (a MARKET, not arrived)."""

    __slots__ = ("order", "order_id", "placed_ns", "arrived", "filled", "after", "seen_trade")

    def __init__(self, order, order_id: int, placed_ns: int, arrived: bool, after: int):
        self.order = order
        self.order_id = order_id
        self.placed_ns = placed_ns
        self.arrived = arrived          # a MARKET order's funds are checked and locked when it arrives
        self.filled = 0                 # steps
        self.after = after              # the last trade id / book update id seen when it was placed
        self.seen_trade = False         # the first trade (book) after arrival decides marketability


class BacktestVenue:
    def __init__(self, bus, clock, instruments: dict, fill: FillModel | None = None,
                 balances: dict | None = None, source: str = "bars"):
        if source not in SOURCES:
            raise ValueError(f"source must be one of {', '.join(SOURCES)}, got {source!r}")
        self.bus = bus
        self.clock = clock
        self.instruments = instruments
        self.source = source
        self.fill = fill = fill or FillModel()
        self.rates = {s: fill.rates(s) for s in instruments}
        # What a fill needs of its symbol, looked up once per fill: (tick, step, base asset,
        # quote asset, (maker, taker) rates).
        self._spec = {s: (i.filters.price_fp.increment, i.filters.qty_fp.increment, i.base_asset, i.quote_asset,
                          self.rates[s]) for s, i in instruments.items()}
        self.slippage = (fill.slippage_bps + fill.spread_bps / 2) / BPS
        self.participation = fill.participation
        self.latency_ns = int(fill.latency_ms) * 1_000_000
        self.account = Account(1, None, None, {a: Decimal(v) for a, v in (balances or {}).items()})
        self._ids = itertools.count(1)
        self._trade_ids = itertools.count(1)
        self.resting: dict[str, _Resting] = {}           # cid -> order at the venue, in placement order
        self._last_seen: dict[str, int] = {}             # symbol -> last trade id / book update id
        self.fills = 0
        self.refused = 0                                 # -2010 refusals
        self.expired = 0
        self._subscribed = None

    # ---- lifecycle: the market data this venue fills on ---------------------------------

    def attach(self) -> None:
        """Listen to the market data of `source` on the bus (trades or books; bars are stepped)."""
        if self.source == "trades":
            self._subscribed = (topics.TRADES, self.on_trade)
        elif self.source == "book":
            self._subscribed = (topics.BOOKS, self.on_book)
        if self._subscribed is not None:
            self.bus.subscribe(*self._subscribed, Priority.VENUE)

    def detach(self) -> None:
        if self._subscribed is not None:
            self.bus.unsubscribe(*self._subscribed)
            self._subscribed = None

    def balances(self) -> dict[str, tuple[Decimal, Decimal]]:
        """asset -> (free, locked)."""
        return {a: (b[0], b[1]) for a, b in self.account.balances.items()}

    # ---- the ExecutionClient protocol ----------------------------------------------------

    def prepare(self, order) -> None:
        return None

    async def submit(self, order) -> dict | None:
        return self.submit_now(order)

    def submit_now(self, order) -> dict | None:
        """A LIMIT is placed now (its funds locked, or -2010 raised); a MARKET is in flight until the
        next market event reaches it: None, and the answer comes on topics.VENUE_ANSWERS."""
        order_id = next(self._ids)
        cid = order.client_order_id
        market = order.order_type == "MARKET"
        if not market:
            tick, step, base, quote, _ = self._spec[order.symbol]
            asset, amount = (quote, tick * order.price * step * order.quantity) if order.side == "BUY" \
                else (base, step * order.quantity)
            if not self.account.can_afford(asset, amount):
                self.refused += 1
                raise insufficient_balance()
            self.account.reserve((order.symbol, order_id), asset, amount)
        self.resting[cid] = _Resting(order, order_id, self.clock.time_ns(), not market,
                                     self._last_seen.get(order.symbol, -1))
        if market:
            return None
        return {"orderId": order_id, "clientOrderId": cid, "status": "NEW", "executedQty": "0"}

    async def cancel(self, order) -> dict:
        entry = self.resting.pop(order.client_order_id, None)
        if entry is not None:
            self.account.release((order.symbol, entry.order_id))
        return {"orderId": entry.order_id if entry else order.order_id, "status": "CANCELED",
                "executedQty": "0", "cummulativeQuoteQty": "0"}

    async def query(self, order) -> dict:
        status = "NEW" if order.client_order_id in self.resting else order.status
        return {"orderId": order.order_id, "status": status}

    async def open_orders(self) -> list[dict]:
        return []

    # ---- market data ---------------------------------------------------------------------

    def on_bar(self, bar) -> None:
        """Fill what this bar reaches (orders placed before it opened), in order of placement."""
        room = None if self.participation is None else int(Decimal(bar.volume) * self.participation)
        for cid, r in list(self.resting.items()):
            order = r.order
            if order.symbol != bar.symbol or r.placed_ns + self.latency_ns > bar.open_time:
                continue
            price, maker = self._bar_fill_price(order, bar)
            if price is not None:
                room = self._take(cid, r, price, maker, bar.open_time, room)

    def on_trade(self, trade) -> None:
        """Fill what this trade reaches (next-trade fills): orders that were at the venue before it
        printed (a later trade id than the last one seen when the order was placed, and at least
        the latency after it was sent), in order of placement."""
        self._last_seen[trade.symbol] = trade.trade_id
        if not self.resting:
            return
        room = None if self.participation is None else int(Decimal(trade.qty) * self.participation)
        for cid, r in list(self.resting.items()):
            order = r.order
            # The trade id orders trades and orders; the latency, when set, compares `placed` with
            # ts_init (when the trade reached us: the same clock; the exchange's trade time runs on
            # another one in paper trading against a replay).
            if (order.symbol != trade.symbol or trade.trade_id <= r.after
                    or self.latency_ns and r.placed_ns + self.latency_ns > trade.ts_init):
                continue
            first = not r.seen_trade
            r.seen_trade = True
            price, maker = self._trade_fill_price(order, trade.price, first)
            if price is not None:
                room = self._take(cid, r, price, maker, trade.ts_trade, room)

    def on_book(self, book) -> None:
        """Fill what this book update reaches: orders placed before it (a later update id than the
        last one seen when the order was placed, and at least the latency after it was sent)."""
        self._last_seen[book.symbol] = book.last_update_id
        if not self.resting:
            return
        now = self.clock.time_ns()
        for cid, r in list(self.resting.items()):
            order = r.order
            if (order.symbol != book.symbol or book.last_update_id <= r.after
                    or self.latency_ns and r.placed_ns + self.latency_ns > now):
                continue
            first = not r.seen_trade
            r.seen_trade = True
            buy = order.side == "BUY"
            levels = book.top(1 if buy else 0, BOOK_LEVELS)          # a BUY takes the asks
            if order.order_type == "MARKET" or first:
                limit = 0 if order.order_type == "MARKET" else order.price
                self._walk(cid, r, levels, limit, now)
            elif len(levels) and (levels[0][0] < order.price if buy else levels[0][0] > order.price):
                self._take(cid, r, order.price, True, now, None)      # the other side went through it

    def _walk(self, cid: str, r: _Resting, levels, limit: int, ts: int) -> None:
        """Take the book's levels (up to `limit` ticks; 0 = any) for what is left of the order."""
        order = r.order
        buy = order.side == "BUY"
        want = order.quantity - r.filled
        plan = []
        for price, qty in levels:
            if want <= 0 or limit and (price > limit if buy else price < limit):
                break
            take = min(int(qty), want)
            plan.append((int(price), take))
            want -= take
        if not r.arrived and not self._arrive(cid, r, plan):
            return
        for price, take in plan:
            if cid not in self.resting:
                break
            self._take(cid, r, price, False, ts, None, take)
        if order.order_type == "MARKET" and cid in self.resting:
            self._expire(cid, r, ts, "the book could not fill it")

    def _bar_fill_price(self, order, bar) -> tuple[int | None, bool]:
        if order.order_type == "MARKET":
            return bar.open, False
        if order.side == "BUY" and bar.low <= order.price:
            return (bar.open, False) if bar.open <= order.price else (order.price, True)
        if order.side == "SELL" and bar.high >= order.price:
            return (bar.open, False) if bar.open >= order.price else (order.price, True)
        return None, False

    @staticmethod
    def _trade_fill_price(order, price: int, first: bool) -> tuple[int | None, bool]:
        # The first trade after arrival tells whether the limit was marketable (a taker at the
        # trade's price); later, a resting limit fills only when a trade goes through it
        # (strictly: at the limit itself the queue ahead is unknown), as a maker at its price.
        if order.order_type == "MARKET":
            return price, False
        through = price < order.price if order.side == "BUY" else price > order.price
        at = price == order.price
        if first and (through or at):
            return price, False
        if through:
            return order.price, True
        return None, False

    # ---- fills and funds -----------------------------------------------------------------

    def _fill_price(self, order, price_ticks: int) -> Decimal:
        tick = self._spec[order.symbol][0]
        price = tick * price_ticks
        if order.order_type == "MARKET" and self.slippage and self.source != "book":
            moved = price * (1 + self.slippage if order.side == "BUY" else 1 - self.slippage)
            price = moved.quantize(tick, ROUND_HALF_EVEN)
        return price

    def _arrive(self, cid: str, r: _Resting, plan) -> bool:
        """A MARKET order reaches the venue: lock what its planned fill costs (the quantity for a
        SELL), as the simulator does; False after answering -2010 when the free balance is short."""
        order = r.order
        tick, step, base, quote, _ = self._spec[order.symbol]
        if order.side == "BUY":
            asset = quote
            amount = sum((self._fill_price(order, p) * step * q for p, q in plan), ZERO)
        else:
            asset, amount = base, step * order.quantity
        if not self.account.can_afford(asset, amount):
            del self.resting[cid]
            self.refused += 1
            self.bus.send(topics.VENUE_ANSWERS, VenueAnswer(cid, None, insufficient_balance()))
            return False
        self.account.reserve((order.symbol, r.order_id), asset, amount)
        r.arrived = True
        self.bus.send(topics.VENUE_ANSWERS, VenueAnswer(cid, {"orderId": r.order_id, "clientOrderId": cid,
                                                              "status": "NEW", "executedQty": "0"}))
        return True

    def _take(self, cid: str, r: _Resting, price_ticks: int, maker: bool, ts: int, room: int | None,
              qty: int | None = None):
        """Fill what is left of the order (at most `room` steps, or exactly `qty`); the room left."""
        order = r.order
        if qty is None:
            qty = order.quantity - r.filled
            if room is not None:
                qty = min(qty, room)
                room -= qty
        if qty <= 0:
            return room
        tick, step, base, quote, rates = self._spec[order.symbol]
        price = self._fill_price(order, price_ticks)
        key = (order.symbol, r.order_id)
        buy = order.side == "BUY"
        if not r.arrived:
            if not self._arrive(cid, r, [(price_ticks, order.quantity)]):
                return room
        elif buy and order.order_type == "MARKET":
            # A later part of a market order (participation): its cost beyond the lock must be free.
            extra = price * step * qty - self.account.lock_of(key)
            if extra > 0 and not self.account.can_afford(quote, extra):
                self._expire(cid, r, ts, "insufficient balance for the rest")
                return room
        quantity, quote_amt = step * qty, price * step * qty
        if buy:
            # A limit's lock for this quantity was taken at its limit price; a market's at its cost.
            used = tick * order.price * quantity if order.order_type != "MARKET" else \
                min(quote_amt, self.account.lock_of(key))
        else:
            used = quantity
        fee = self.account.apply_fill(key, is_buy=buy, base=base, quote=quote, qty=quantity, quote_amt=quote_amt,
                                      lock_used=used, rate=rates[0 if maker else 1])
        r.filled += qty
        complete = r.filled >= order.quantity
        if complete:
            del self.resting[cid]
            self.account.release(key)
        self.fills += 1
        # Positional: keyword arguments cost ~0.8 us more for these 23 fields.
        self.bus.publish(topics.ORDER_UPDATES, OrderUpdate(
            order.symbol, cid, r.order_id, order.side, order.order_type, order.time_in_force,
            "TRADE", "FILLED" if complete else "PARTIALLY_FILLED",       # execution_type, status
            tick * order.price, step * order.quantity, ZERO,           # price, quantity, stop_price
            quantity, price, step * r.filled, quote_amt,                # last_qty, last_price, cumulative qty/quote
            fee, base if buy else quote, next(self._trade_ids), maker,  # commission(_asset), trade_id, is_maker
            "NONE", cid, ts, ts))                                       # reject_reason, request cid, ts_event, ts_init
        self._publish_balances((base, quote), ts)
        return room

    def _expire(self, cid: str, r: _Resting, ts: int, why: str) -> None:
        order = r.order
        self.resting.pop(cid, None)
        self.account.release((order.symbol, r.order_id))
        self.expired += 1
        tick, step, base, quote, _ = self._spec[order.symbol]
        self.bus.publish(topics.ORDER_UPDATES, OrderUpdate(
            order.symbol, cid, r.order_id, order.side, order.order_type, order.time_in_force, "EXPIRED", "EXPIRED",
            tick * order.price, step * order.quantity, ZERO, ZERO, ZERO, step * r.filled, ZERO, ZERO, "", -1, False,
            why, cid, ts, ts))
        self._publish_balances((base, quote), ts)

    def _publish_balances(self, assets, ts: int) -> None:
        acc = self.account
        self.bus.publish(topics.BALANCES, BalanceUpdate(
            tuple(Balance(a, acc.free(a), acc.locked(a)) for a in assets), False, ts, ts))
