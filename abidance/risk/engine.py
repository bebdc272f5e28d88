"""RiskEngine: every signal is sized, checked and decided here, and every decision is an event.

    Signal -> size (sizing.py) -> PreTradeRisk.check (Cython, exchange filters and the
    account's limits) -> RiskDecision event -> OrderRequest to the execution endpoint

Trading state: ACTIVE, REDUCING (only orders that shrink a position) or HALTED (nothing).
Circuit breakers move it: drawdown and daily loss (in PreTradeRisk), consecutive losing
trades, too many order errors a minute, stale market data (REDUCING until data is fresh
again). The kill switch (endpoint topics.KILL, the kill file, SIGUSR1 via the runtime)
halts and cancels every open order. Only an operator resumes after a halt.

Sizing reads the portfolio through a read-only view. A SELL is sized from the signalling
strategy's own position, less what its open SELL orders already sell: never another
strategy's holding. A BUY never asks for more than the quote cash not already committed to
open BUY orders, valued at the price it may pay: a MARKET BUY at the reference price plus
`max_slippage_bps` (the fill may be worse than the reference: a gap up), a LIMIT at its
limit (what the exchange locks). A BUY the venue would still refuse for want of funds
comes back as a rejection with the venue's error (-2010), never an overdraft.

The kill file and stale market data are checked at every decision as well as on the poll
timer, so a decision depends only on the event times, never on when the poll last ran:
live and a backtest (which polls rarely) decide alike. Market data marks data fresh again
on arrival. Mark and freshness handlers subscribe at Priority.STATE: a strategy reacting
to the same trade or bar is sized from it.

A restart starts no limit afresh: open orders restored from the state file (`restore_order`)
or adopted at reconciliation (an order event for an order this engine did not send) count
as open orders, commitments and open quantity; the order-rate buckets, the drawdown peak,
the day's starting equity and the marks come back from the state (`to_state` /
`load_state`). A live node also holds new orders until the first reconciliation
(`hold_until_reconciled`): an order sent just before a crash, too late for the state
file, is on the exchange and must be counted before anything is added to it.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path

from abidance._core.risk import (QUOTE_UNIT, OrderSide, OrderType, PreTradeRisk, RiskReason, TradingState,
                                 describe, quote_units)
from abidance.core import topics
from abidance.core.bus import Priority
from abidance.core.component import Component
from abidance.core.events import Alert, OrderRequest, RiskDecision, TradingStateChanged
from abidance.risk.sizing import SizingError, notional_budget, steps_for

log = logging.getLogger("abidance.risk")

TERMINAL = {"FILLED", "CANCELED", "REJECTED", "EXPIRED"}
SIDES = {"BUY": int(OrderSide.BUY), "SELL": int(OrderSide.SELL)}
MARKET, LIMIT = int(OrderType.MARKET), int(OrderType.LIMIT)
ACCEPTED = int(RiskReason.ACCEPTED)
NS = 1_000_000_000
DAY_NS = 86_400 * NS
BPS = 10_000


class _OpenOrder:
    """What the risk engine keeps of an order it sent, until it ends."""

    __slots__ = ("slot", "side", "qty", "strategy_id", "symbol", "price", "filled")

    def __init__(self, slot: int, side: int, qty: int, strategy_id: str, symbol: str, price: int):
        self.slot, self.side, self.qty = slot, side, qty
        self.strategy_id, self.symbol = strategy_id, symbol
        self.price = price          # ticks the order may pay per step: its limit, or the reference + allowance
        self.filled = 0

    @property
    def left(self) -> int:
        return max(0, self.qty - self.filled)


class _Commitments:
    """Running totals over the open orders, kept as they change (never a scan on the tick path):
    per symbol, tick x step units promised to open BUYs; per (strategy, symbol), steps that open
    SELLs still sell."""

    __slots__ = ("buys", "sells")

    def __init__(self):
        self.buys: dict[str, int] = {}
        self.sells: dict[tuple[str, str], int] = {}

    def add(self, o: _OpenOrder, steps: int) -> None:
        """`steps` more (negative: fewer) left of order o."""
        if o.side == SIDES["BUY"]:
            total = self.buys.get(o.symbol, 0) + steps * o.price
            if total:
                self.buys[o.symbol] = total
            else:
                self.buys.pop(o.symbol, None)       # empty: sizing takes the fast path again
        else:
            key = (o.strategy_id, o.symbol)
            total = self.sells.get(key, 0) + steps
            if total:
                self.sells[key] = total
            else:
                self.sells.pop(key, None)


class RiskEngine(Component):
    def __init__(self, bus, clock, settings, instruments: dict, portfolio, client_order_ids,
                 limit_timeout_s: float = 0.0, state_dir: str | Path | None = None, max_slippage_bps: int = 0,
                 poll_interval_s: float = 0.5):
        super().__init__("RiskEngine", bus, clock)
        self.settings = settings
        self.instruments = instruments
        self.portfolio = portfolio
        self.ids = client_order_ids
        self.limit_timeout_s = limit_timeout_s
        self.max_slippage_bps = max_slippage_bps
        self.poll_interval_s = poll_interval_s     # kill file and stale-data checks
        self.pre_trade = PreTradeRisk(settings.limits())
        self.slots: dict[str, int] = {}
        max_position = getattr(settings, "max_position", {}) or {}
        for symbol, inst in instruments.items():
            cap = max_position.get(symbol)
            steps = inst.filters.qty_fp.to_units(Decimal(cap)) if cap else 0
            self.slots[symbol] = self.pre_trade.add_symbol(inst.filters, steps)
        # fixed_quote sizing in integers: quote units per (tick x step) as an exact ratio.
        self._quote_ratio = {s: (i.filters.units["quote_mul"], i.filters.units["quote_div"])
                             for s, i in instruments.items()}
        self._fixed_quote_units = quote_units(format(Decimal(settings.fixed_quote), "f")) \
            if settings.sizing == "fixed_quote" else 0
        self.books: dict = {}
        self.last_data_ns = 0
        self._last_tick_ns = 0          # the last trade or book seen (a bar of those trades is not news)
        self.decisions = 0
        self.denied = 0
        self.state_source = "start"
        self.kill_file = self._kill_file_path(state_dir)
        self._orders: dict[str, _OpenOrder] = {}             # cid -> the open order
        self._commit = _Commitments()
        self._cash_units: dict[str, tuple[Decimal, int]] = {}     # asset -> (the balance, it in 1e-8 units)
        self._errors: deque[int] = deque()
        self._timers = []
        self._stale = False
        self._saved_equity: dict | None = None      # peak and day start from the state, used at the first equity
        self._unreconciled = False                  # live, after start: no new order before a reconciliation

    def _kill_file_path(self, state_dir) -> Path | None:
        name = getattr(self.settings, "kill_switch_file", "")
        if not name:
            return None
        path = Path(name)
        return path if path.is_absolute() or state_dir is None else Path(state_dir) / path

    def describe(self) -> dict:
        s = self.settings
        return {"settings": {f: str(getattr(s, f)) for f in getattr(s, "__dataclass_fields__", {})},
                "limit_timeout_s": self.limit_timeout_s, "max_slippage_bps": self.max_slippage_bps,
                "kill_file": str(self.kill_file) if self.kill_file is not None else None,
                "poll_interval_s": self.poll_interval_s, "symbols": sorted(self.slots)}

    # ---- lifecycle -------------------------------------------------------------------

    def on_start(self) -> None:
        if self.portfolio is not None:
            # Holdings from before the start (a restart, a deposit) count as positions: REDUCING
            # must allow selling them and the position limits must see them.
            for symbol, slot in self.slots.items():
                step = self.instruments[symbol].filters.qty_fp.increment
                self.pre_trade.update_position(slot, int(self.portfolio.position(symbol) / step))
        b = self.bus
        b.subscribe(topics.SIGNALS, self.handle_signal)
        # Marks and freshness: read while sizing a signal caused by the same message.
        b.subscribe(topics.BOOKS, self.handle_book, Priority.STATE)
        b.subscribe(topics.BOOK_STATUS, self.handle_book_status, Priority.STATE)
        b.subscribe(topics.TRADES, self.handle_trade, Priority.STATE)
        b.subscribe(topics.BARS, self.handle_bar, Priority.STATE)
        b.subscribe(topics.BARS_SKIPPED, self.handle_bar, Priority.STATE)
        b.subscribe(topics.ORDER_EVENTS, self.handle_order_event)
        b.subscribe(topics.FILLS, self.handle_fill)
        b.subscribe(topics.EQUITY, self.handle_equity)
        b.register(topics.KILL, self.kill)
        b.register(topics.RISK_COMMAND, self.command)
        b.register(topics.HALT, self.halt_request)
        b.subscribe(topics.REPLACE, self.handle_replace)
        b.subscribe(topics.RECONCILIATION, self.handle_reconciliation)
        if getattr(self.settings, "start_reducing", False):
            self.set_reducing("configured to start in REDUCING", "config")
        limit = getattr(self.settings, "max_consecutive_losses", 0)
        if limit and self.portfolio is not None and self.portfolio.consecutive_losses >= limit:
            # Losing trips counted before a restart (the portfolio's state) still count.
            self.halt(f"{self.portfolio.consecutive_losses} losing trades in a row", "breaker:consecutive_losses")
        self._check_kill_file()
        self._timers.append(self.clock.call_every(int(self.poll_interval_s * NS), self._poll))
        now = self.clock.time_ns()
        self._timers.append(self.clock.call_at((now // DAY_NS + 1) * DAY_NS, self._new_day))

    def on_stop(self) -> None:
        self.bus.unregister(topics.KILL)
        self.bus.unregister(topics.RISK_COMMAND)
        self.bus.unregister(topics.HALT)
        for t in self._timers:
            t.cancel()
        for topic, handler in ((topics.SIGNALS, self.handle_signal), (topics.BOOKS, self.handle_book),
                               (topics.BOOK_STATUS, self.handle_book_status), (topics.TRADES, self.handle_trade),
                               (topics.BARS, self.handle_bar), (topics.BARS_SKIPPED, self.handle_bar),
                               (topics.ORDER_EVENTS, self.handle_order_event),
                               (topics.FILLS, self.handle_fill), (topics.RECONCILIATION, self.handle_reconciliation),
                               (topics.EQUITY, self.handle_equity), (topics.REPLACE, self.handle_replace)):
            self.bus.unsubscribe(topic, handler)

    # ---- market data (references for checks and sizing) ------------------------------

    def handle_book(self, book) -> None:
        self.books[book.symbol] = book
        self._last_tick_ns = self.last_data_ns = now = self.clock.time_ns()     # _fresh(), inlined: every tick
        if self._stale:
            self._check_stale(now)

    def handle_book_status(self, change) -> None:
        if not change.ready:
            self.books.pop(change.symbol, None)

    def handle_trade(self, trade) -> None:
        slot = self.slots.get(trade.symbol)
        if slot is not None:
            self.pre_trade.update_mark(slot, trade.price)
        self._last_tick_ns = now = self.clock.time_ns()
        self._fresh(now)

    def handle_bar(self, bar) -> None:
        """A closed bar's close is a mark too (backtests on bars have no trade stream). A bar with
        trades that were not seen as trades (a recorded candle) is market data arriving."""
        slot = self.slots.get(bar.symbol)
        if slot is not None and bar.close > 0:
            self.pre_trade.update_mark(slot, bar.close)
        if bar.trades and self._last_tick_ns < bar.open_time:
            self._fresh(self.clock.time_ns())

    def _fresh(self, now: int) -> None:
        self.last_data_ns = now
        if self._stale:
            self._check_stale(now)

    def reference(self, symbol: str, side: str) -> tuple[int, int]:
        """(mid, the touch the order would take) in ticks; 0 when unknown."""
        book = self.books.get(symbol)
        if book is not None and book.ready:
            top_bid, top_ask = book.best_bid(), book.best_ask()     # None when that side is empty
            if top_bid and top_ask:
                bid, ask = top_bid[0], top_ask[0]
                return (bid + ask) // 2, ask if side == "BUY" else bid
        mark = self.pre_trade.slot_state(self.slots[symbol])["mark"] if symbol in self.slots else 0
        return mark, mark

    # ---- decisions -------------------------------------------------------------------

    def handle_signal(self, signal) -> None:
        inst = self.instruments.get(signal.symbol)
        if inst is None:
            return self._deny(signal, "UNKNOWN_SYMBOL", f"{signal.symbol} has no instrument")
        # The breakers a poll would have moved by now: the same decision whenever the poll ran.
        now = self.clock.time_ns()
        self._check_kill_file()
        self._check_stale(now)
        if self._unreconciled:
            return self._deny(signal, "NOT_RECONCILED", "waiting for the first reconciliation with the exchange "
                                                        "(orders from before the restart must be counted first)")
        if signal.confidence < self.settings.min_confidence:
            return self._deny(signal, "LOW_CONFIDENCE",
                              f"confidence {signal.confidence:.2f} < min {self.settings.min_confidence:.2f}")
        slot = self.slots[signal.symbol]
        mid, touch = self.reference(signal.symbol, signal.side)
        price = signal.price
        order_type = LIMIT if price else MARKET
        ref = price or touch
        if ref <= 0:
            return self._deny(signal, "NO_REFERENCE_PRICE", f"{signal.symbol}: no book or trade price yet")
        qty = self._size(signal, inst, ref, order_type == MARKET)
        if isinstance(qty, str):
            return
        # Slippage first: the pre-trade check takes an order-rate token when it accepts.
        if order_type == MARKET and self.max_slippage_bps and self._slippage_denied(signal, qty, touch):
            return
        reason = self.pre_trade.check(slot, SIDES[signal.side], order_type, price, qty, mid, mid, now)
        if int(reason) != ACCEPTED:
            return self._deny(signal, reason.name, describe(int(reason), signal.symbol), qty)
        cid = self.ids.next()
        # Positional (keyword arguments cost ~0.4 us more): OrderRequest's fields in order.
        request = OrderRequest(
            cid, signal.strategy_id, signal.symbol, signal.side, "LIMIT" if price else "MARKET", qty, price,
            "GTC" if price else "", now,                                    # time_in_force, ts_init
            signal.stop_loss, signal.take_profit, signal.trailing_bps,
            self.limit_timeout_s if price else 0.0, signal.side == "SELL")  # timeout_s, reduce_only
        self.pre_trade.on_order_open(slot, SIDES[signal.side], qty)
        self._track(cid, _OpenOrder(slot, SIDES[signal.side], qty, signal.strategy_id, signal.symbol,
                                    price or -(-ref * (BPS + self.max_slippage_bps) // BPS)))   # _with_allowance
        self.decisions += 1
        self.bus.publish(topics.RISK_DECISIONS, RiskDecision(
            signal.strategy_id, signal.symbol, signal.side, True, "ACCEPTED", signal.reason, qty, price, cid,
            signal.confidence, request.ts_init))
        self.bus.send(topics.EXECUTE, request)

    def handle_replace(self, order) -> None:
        """A limit order timed out unfilled: re-price the rest at the touch, checked like any order."""
        slot = self.slots.get(order.symbol)
        mid, touch = self.reference(order.symbol, order.side)
        side = SIDES[order.side]
        qty = order.remaining
        reason = self.pre_trade.check(slot, side, LIMIT, touch, qty, mid, mid, self.clock.time_ns()) \
            if slot is not None and touch > 0 and not self._unreconciled else RiskReason.NO_REFERENCE_PRICE
        ok = int(reason) == ACCEPTED
        cid = self.ids.next() if ok else ""
        self.decisions += 1
        self.denied += 0 if ok else 1
        self.bus.publish(topics.RISK_DECISIONS, RiskDecision(
            order.strategy_id, order.symbol, order.side, ok, "ACCEPTED" if ok else reason.name,
            f"replace {order.client_order_id} at the touch", qty, touch, cid, 1.0, self.clock.time_ns()))
        if ok:
            self.pre_trade.on_order_open(slot, side, qty)
            self._track(cid, _OpenOrder(slot, side, qty, order.strategy_id, order.symbol, touch))
            self.bus.send(topics.EXECUTE, OrderRequest(
                cid, order.strategy_id, order.symbol, order.side, "LIMIT", qty, touch, "GTC", self.clock.time_ns(),
                timeout_s=self.limit_timeout_s, reduce_only=order.reduce_only, parent_id=order.client_order_id))

    def _slippage_denied(self, signal, qty: int, touch: int) -> bool:
        """Walk the book: would this market order fill worse than max_slippage_bps from the touch?"""
        book = self.books.get(signal.symbol)
        if book is None or not book.ready:
            return False        # no depth known: the price band check still applies
        filled, cost = book.fill_cost(0 if signal.side == "BUY" else 1, qty)   # side BID = a buy: takes asks
        bps = self.max_slippage_bps
        if filled < qty:
            self._deny(signal, "BOOK_TOO_THIN", f"the book holds {filled} of {qty} steps", qty)
            return True
        worse = cost * 10_000 > touch * filled * (10_000 + bps) if signal.side == "BUY" else \
            cost * 10_000 < touch * filled * (10_000 - bps)
        if worse:
            self._deny(signal, "SLIPPAGE", f"average fill {cost / filled:.1f} ticks is more than {bps} bps "
                                           f"from the touch {touch}", qty)
        return worse

    def _with_allowance(self, ticks: int) -> int:
        """A market order's reference price plus max_slippage_bps, in ticks (rounded up)."""
        return -(-ticks * (BPS + self.max_slippage_bps) // BPS)

    def _track(self, cid: str, o: _OpenOrder) -> None:
        self._orders[cid] = o
        self._commit.add(o, o.left)

    def restore_order(self, cid: str, strategy_id: str, symbol: str, side: str, quantity: int, filled: int,
                      price: int) -> bool:
        """An order open on the exchange that this engine did not send in this process (restored from
        the state file, adopted at reconciliation): it counts against every limit as if just sent.
        Returns False when it is already counted or cannot be (unknown symbol or side)."""
        slot = self.slots.get(symbol)
        left = quantity - filled
        if cid in self._orders or slot is None or side not in SIDES or left <= 0:
            return False        # a fully filled order is about to be reported FILLED: nothing to count
        if price <= 0:          # a market order: valued at the mark, as sizing would
            price = self._with_allowance(self.pre_trade.slot_state(slot)["mark"])
        o = _OpenOrder(slot, SIDES[side], quantity, strategy_id, symbol, price)
        o.filled = min(filled, quantity)
        # Its fills so far are in the position already: only what is left is open quantity.
        self.pre_trade.on_order_open(slot, o.side, left)
        self._track(cid, o)
        log.info("counting open order %s %s %s %d/%d steps from before the start", cid, side, symbol,
                 filled, quantity)
        return True

    def _filled(self, o: _OpenOrder, filled: int) -> None:
        """The order has `filled` steps filled now (fills and order events both say so)."""
        if filled > o.filled:
            before = o.left
            o.filled = filled
            self._commit.add(o, o.left - before)

    def _committed_units(self, quote_asset: str) -> int:
        """Quote units (1e-8) promised to open BUY orders: what is left of each, at the price it may
        pay, rounded up (a commitment never looks smaller than it is)."""
        total = 0
        for symbol, ts in self._commit.buys.items():
            if self.instruments[symbol].quote_asset == quote_asset:
                mul, div = self._quote_ratio[symbol]
                total += -(-ts * mul // div)
        return total

    def _pending_sells(self, strategy_id: str, symbol: str) -> int:
        """Steps that the strategy's open SELL orders in symbol still sell."""
        return self._commit.sells.get((strategy_id, symbol), 0)

    def _free_cash_units(self, inst) -> int:
        """Quote cash not promised to open BUY orders, in quote units (1e-8)."""
        balance = self.portfolio.cash(inst.quote_asset)
        cached = self._cash_units.get(inst.quote_asset)
        if cached is not None and cached[0] is balance:
            cash = cached[1]        # a balance changes only by a fill, which books a new Decimal
        else:
            cash = int(balance.scaleb(8))
            self._cash_units[inst.quote_asset] = (balance, cash)
        return cash - self._committed_units(inst.quote_asset) if self._commit.buys else cash

    def _size_fixed_quote(self, signal, inst, ref_ticks: int, market: bool):
        """fixed_quote in exact integers (the common case, on the tick path)."""
        mul, div = self._quote_ratio[signal.symbol]
        qty = self._fixed_quote_units * div // (ref_ticks * mul)
        if self.portfolio is not None:
            # Never ask for more than the cash there is, at the price the order may pay.
            cash = self._free_cash_units(inst)
            pay = self._with_allowance(ref_ticks) if market else ref_ticks
            qty = min(qty, max(0, cash) * div // (pay * mul))
        if qty <= 0:
            return self._deny(signal, "SIZE_ZERO", f"budget of {self._fixed_quote_units} quote units buys less "
                                                   f"than one step of the free cash") or "SIZE_ZERO"
        return qty

    def _size(self, signal, inst, ref_ticks: int, market: bool = True):
        """Quantity in steps, or the reason string after a denial was published."""
        step = inst.filters.qty_fp.increment
        if signal.side == "SELL":
            held = self.portfolio.position(signal.symbol, signal.strategy_id) if self.portfolio is not None \
                else Decimal(0)
            qty = int(held / step) - self._pending_sells(signal.strategy_id, signal.symbol)
            if qty <= 0:
                return self._deny(signal, "NO_POSITION", f"strategy {signal.strategy_id} has nothing (left) to "
                                                         f"sell in {signal.symbol}") or "NO_POSITION"
            return qty
        if self._fixed_quote_units:
            return self._size_fixed_quote(signal, inst, ref_ticks, market)
        tick = inst.filters.price_fp.increment
        entry = tick * ref_ticks
        stop = tick * signal.stop_loss if signal.stop_loss else None
        # Equity values every position: only the modes that use it pay for it.
        needs_equity = self.settings.sizing != "fixed_quote" and self.portfolio is not None
        equity = self.portfolio.equity() if needs_equity else Decimal(0)
        try:
            budget = notional_budget(self.settings.sizing, self.settings, equity, signal.confidence, entry, stop)
        except SizingError as exc:
            return self._deny(signal, exc.reason, str(exc)) or exc.reason
        qty = steps_for(budget, entry, step)
        if self.portfolio is not None:
            # Never ask for more than the cash there is, at the price the order may pay.
            pay = tick * (self._with_allowance(ref_ticks) if market else ref_ticks)
            qty = min(qty, steps_for(Decimal(self._free_cash_units(inst)).scaleb(-8), pay, step))
        if qty <= 0:
            return self._deny(signal, "SIZE_ZERO", f"budget {budget} {inst.quote_asset} buys less than one step "
                                                   f"of the free cash") or "SIZE_ZERO"
        return qty

    def _deny(self, signal, reason: str, message: str, qty: int = 0) -> None:
        self.decisions += 1
        self.denied += 1
        log.info("denied %s %s %s: %s (%s)", signal.strategy_id, signal.side, signal.symbol, reason, message)
        self.bus.publish(topics.RISK_DECISIONS, RiskDecision(
            signal.strategy_id, signal.symbol, signal.side, False, reason, message, qty, signal.price, "",
            signal.confidence, self.clock.time_ns()))

    # ---- order and account feedback --------------------------------------------------

    def handle_order_event(self, ev) -> None:
        if ev.status == "REJECTED":
            self._note_error()
        if ev.status in TERMINAL:
            entry = self._orders.pop(ev.client_order_id, None)
            if entry is not None:
                self.pre_trade.on_order_done(entry.slot, entry.side, max(0, entry.qty - ev.filled))
                self._commit.add(entry, -entry.left)            # nothing is left of it
        else:
            entry = self._orders.get(ev.client_order_id)
            if entry is not None:
                self._filled(entry, ev.filled)
            elif not ev.protective:
                # Open, and not sent by this engine in this process: adopted from the exchange at a
                # reconciliation (an order from before a restart). It counts like any other.
                self.restore_order(ev.client_order_id, ev.strategy_id, ev.symbol, ev.side, ev.quantity, ev.filled,
                                   ev.price)

    def hold_until_reconciled(self) -> None:
        """Deny new orders until the exchange's open orders have been compared with ours (live start)."""
        self._unreconciled = True

    def handle_reconciliation(self, _rec) -> None:
        # The execution engine adopts the orders it did not know as it hears the same message, and
        # each adoption is an order event counted here before any signal can be handled.
        if self._unreconciled:
            self._unreconciled = False
            log.info("first reconciliation done: %d open orders counted", self.pre_trade.open_orders)

    def handle_fill(self, fill) -> None:
        slot = self.slots.get(fill.symbol)
        if slot is None:
            return
        steps = self.instruments[fill.symbol].filters.qty_fp.to_units(fill.quantity)
        self.pre_trade.on_fill(slot, SIDES[fill.side], steps)
        entry = self._orders.get(fill.client_order_id)
        if entry is not None:
            self._filled(entry, entry.filled + steps)       # what is left of it is no longer pending
        limit = getattr(self.settings, "max_consecutive_losses", 0)
        if limit and self.portfolio is not None and self.portfolio.consecutive_losses >= limit:
            self.halt(f"{self.portfolio.consecutive_losses} losing trades in a row", "breaker:consecutive_losses")

    def handle_equity(self, point) -> None:
        previous = self.trading_state
        # Whole quote units, rounded down: a loss never looks smaller than it is.
        equity = point.equity.quantize(QUOTE_UNIT, rounding=ROUND_FLOOR)
        units = quote_units(format(equity, "f"))
        if self._saved_equity is not None:
            self._restore_equity(units, self.clock.time_ns())
        code = self.pre_trade.update_equity(units)
        if int(code) != ACCEPTED:
            # update_equity has halted already (keeping the breaker as halt_reason): announce it.
            self._publish_state(previous, describe(int(code)), f"breaker:{code.name.lower()}")

    def _note_error(self) -> None:
        limit = getattr(self.settings, "max_errors_per_minute", 0)
        now = self.clock.time_ns()
        self._errors.append(now)
        while self._errors and now - self._errors[0] > 60 * NS:
            self._errors.popleft()
        if limit and len(self._errors) > limit:
            self.halt(f"{len(self._errors)} order errors in a minute", "breaker:error_rate")

    # ---- state -----------------------------------------------------------------------

    @property
    def trading_state(self) -> str:
        return TradingState(self.pre_trade.state).name

    def _publish_state(self, previous: str, reason: str, source: str) -> None:
        self.state_source = source
        state = self.trading_state
        if state != previous:
            log.warning("trading state %s -> %s (%s: %s)", previous, state, source, reason)
            self.bus.publish(topics.TRADING_STATE, TradingStateChanged(state, previous, reason, source,
                                                                      self.clock.time_ns()))
            level = {"HALTED": "critical", "REDUCING": "warning"}.get(state, "info")
            self.bus.publish(topics.ALERTS, Alert(level, "risk", f"trading_{state.lower()}",
                                                  f"trading {state}: {reason} ({source})", self.clock.time_ns()))

    def apply_settings(self, settings, limit_timeout_s: float | None = None,
                       max_slippage_bps: int | None = None) -> None:
        """A new risk section while running (config edit): limits, sizing, breakers."""
        self.settings = settings
        self.pre_trade.set_limits(settings.limits())
        self._fixed_quote_units = quote_units(format(Decimal(settings.fixed_quote), "f")) \
            if settings.sizing == "fixed_quote" else 0
        if limit_timeout_s is not None:
            self.limit_timeout_s = limit_timeout_s
        if max_slippage_bps is not None:
            self.max_slippage_bps = max_slippage_bps

    def announce(self, reason: str, source: str = "start") -> None:
        """Publish the current state as a change from nothing (the record starts with it)."""
        self._publish_state("", reason, source)

    def halt(self, reason: str, source: str = "operator") -> None:
        previous = self.trading_state
        self.pre_trade.halt()
        self._publish_state(previous, reason, source)

    def halt_request(self, reason: str) -> None:
        """topics.HALT from a venue adapter (the day's order budget spent): halt, keep open orders and exits."""
        if self.trading_state != "HALTED":
            self.halt(reason, "venue")

    def kill(self, reason: str = "kill switch") -> None:
        """Halt and cancel every open order (CLI, dashboard, signal, kill file)."""
        self.halt(reason, "kill_switch")
        try:
            self.bus.send(topics.CANCEL, "*")
        except LookupError:
            log.error("kill switch: no execution engine to cancel orders")

    def command(self, cmd) -> None:
        """A TradingCommand on topics.RISK_COMMAND (anomaly detectors, chat without a store)."""
        if cmd.action == "halt":
            self.halt(cmd.reason, cmd.source)
        elif cmd.action == "reduce":
            self.set_reducing(cmd.reason, cmd.source)
        elif cmd.action == "resume":
            self.resume(cmd.reason, cmd.source)
        else:
            log.error("unknown trading command %r from %s ignored", cmd.action, cmd.source)

    def set_reducing(self, reason: str, source: str = "operator") -> None:
        previous = self.trading_state
        if previous == "HALTED":
            return      # a halt is stronger; only resume() leaves it
        self.pre_trade.set_reducing()
        self._publish_state(previous, reason, source)

    def resume(self, reason: str = "operator resumed", source: str = "operator") -> None:
        previous = self.trading_state
        self.pre_trade.resume()
        self._publish_state(previous, reason, source)

    def _poll(self, now: int) -> None:
        self._check_kill_file()
        self._check_stale(now)

    def _check_kill_file(self) -> None:
        if self.kill_file is not None and os.path.exists(self.kill_file) and self.trading_state != "HALTED":
            self.kill(f"kill file {self.kill_file} exists")

    def _check_stale(self, now: int) -> None:
        stale_s = getattr(self.settings, "stale_data_s", 0)
        if stale_s and self.last_data_ns:
            stale = now - self.last_data_ns > stale_s * NS
            if stale and not self._stale and self.trading_state == "ACTIVE":
                self._stale = True
                self.set_reducing(f"no market data for {stale_s:g}s", "breaker:stale_data")
            elif not stale and self._stale:
                self._stale = False
                if self.state_source == "breaker:stale_data" and self.trading_state == "REDUCING":
                    self.resume("market data is fresh again", "breaker:stale_data")

    # ---- state for a restart ----------------------------------------------------------

    def to_state(self) -> dict:
        """What the limits need after a restart (plain ints): the trading state, the order-rate
        buckets, the equity peak and the day's start, the marks that value positions."""
        snap = self.pre_trade.snapshot()
        state = {"state": self.trading_state, "reason": self.state_source,
                 "rate_10s": list(snap["rate_10s"]), "rate_day": list(snap["rate_day"]),
                 "marks": {s: self.pre_trade.slot_state(slot)["mark"] for s, slot in self.slots.items()
                           if self.pre_trade.slot_state(slot)["mark"] > 0}}
        if snap["has_equity"]:
            state.update(peak_equity=snap["peak_equity"], day_start_equity=snap["day_start_equity"],
                         day=self.clock.time_ns() // DAY_NS)
        elif self._saved_equity is not None:
            state.update(self._saved_equity)        # not valued yet since the restart: keep what was saved
        return state

    def load_state(self, state: dict) -> None:
        """The limits' state from `to_state()` (before start). A state from an older version, without
        these keys, restores nothing; a malformed value is refused with the key named."""
        try:
            rates = {k: (int(state[k][0]), int(state[k][1])) for k in ("rate_10s", "rate_day") if k in state}
            self.pre_trade.restore(rates.get("rate_10s"), rates.get("rate_day"))
            for symbol, mark in (state.get("marks") or {}).items():
                if symbol in self.slots and int(mark) > 0:
                    self.pre_trade.update_mark(self.slots[symbol], int(mark))
            if "peak_equity" in state:
                self._saved_equity = {"peak_equity": int(state["peak_equity"]),
                                      "day_start_equity": int(state["day_start_equity"]), "day": int(state["day"])}
        except (KeyError, TypeError, ValueError, IndexError, OverflowError) as exc:
            raise ValueError(f"risk state in the state file is malformed ({type(exc).__name__}: {exc})") from exc

    def _restore_equity(self, equity: int, now: int) -> None:
        """At the first equity point after a restart: the peak carries over; so does the day's start
        equity when it is still the same (UTC) day, else the day starts now."""
        saved, self._saved_equity = self._saved_equity, None
        peak = max(saved["peak_equity"], equity)
        day_start = saved["day_start_equity"] if saved["day"] == now // DAY_NS else equity
        self.pre_trade.restore(peak_equity=peak, day_start_equity=min(day_start, peak))

    def _new_day(self, now: int) -> None:
        self.pre_trade.new_day()
        self._timers.append(self.clock.call_at((now // DAY_NS + 1) * DAY_NS, self._new_day))
