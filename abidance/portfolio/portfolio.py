"""The portfolio: spot positions, wallet balances, fees, realised/unrealised PnL and equity.

Positions, PnL and fees are kept per (strategy, symbol): a fill belongs to the strategy whose
order it filled (strategy "" holds what no strategy of this node bought: an adopted order, a
position from an older state file). The account's view of a symbol is the sum over its
strategies; `position(symbol, strategy_id)` reads one strategy's share, `position(symbol)`
the account's. A strategy's SELL is sized from its own share (abidance/risk/engine.py), so two
strategies on one symbol never sell each other's holdings.

Everything is Decimal and exact (arithmetic runs in a 50-digit context of its own, so a
caller's decimal context cannot change the books); no float is ever stored or returned.

Accounting rules
- Average cost. A position keeps its quantity and its total cost; the average entry price
  is cost / quantity. A buy adds its quantity at its price; a sell removes the sold share
  of the cost (the whole cost when the position is sold out, so a round trip's realised
  PnL is exactly proceeds - cost - fees) and realises `sold * price - cost removed`.
- Fees are costs charged to realised PnL when paid, valued in the account's quote asset:
  * in the quote asset: as they are;
  * in the base asset: at the fill price. On a buy the fee reduces the quantity received
    (`quantity - fee` enters the position at the fill price); on a sell the fee quantity
    leaves the position with the sold quantity;
  * in a third asset (BNB): at that asset's mark, the last trade of `<ASSET><QUOTE>` (e.g.
    BNBUSDT) when one was seen; otherwise its amount is kept in `fees_unpriced[asset]`
    (reported in stats, not in PnL).
  Fee assets held outside positions (the BNB kept for fees) are wallet balances, not part
  of equity: their use shows as fees in realised PnL.
- Equity = quote-asset cash + sum of positions at their mark (the symbol's last trade
  price). A position without a mark is valued at its average entry price and listed in
  `unmarked()` (so its unrealised PnL counts as 0). Peak equity and drawdown (peak minus
  equity, in the quote asset) are updated at every snapshot and fill.
- Round trips: a (strategy, symbol) position opened from flat and sold back to flat (below one
  lot step, so fee dust does not keep it open) is one round trip; its PnL (fees included)
  decides wins, losses and the account's `consecutive_losses` (a break-even trip resets the
  streak); wins and losses are also counted per strategy.
- Balances: every asset's total (free + locked) is kept from fills and compared with the
  exchange's on each Reconciliation and BalanceUpdate. The exchange is the truth: a
  difference raises an Alert (code "balance_drift") and the exchange's figure is adopted.
  With no `starting_balances`, the first full snapshot initialises the wallet silently.

Only symbols quoted in the account's quote asset carry positions: a fill in another market
(e.g. ETHBTC in a USDT account) moves the wallet balances only and raises one Alert
("unsupported_quote") per symbol.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import (ROUND_HALF_EVEN, Context, Decimal, DivisionByZero, InvalidOperation, Overflow,
                     localcontext)
from typing import Any

from abidance.core import topics
from abidance.core.bus import Priority
from abidance.core.component import Component
from abidance.core.events import (Alert, BalanceDelta, BalanceUpdate, EquityPoint, Fill, PositionUpdate,
                                  Reconciliation)

log = logging.getLogger("abidance.portfolio")

ZERO = Decimal(0)
ONE = Decimal(1)
STATE_VERSION = 2
UNATTRIBUTED = ""           # the strategy id of holdings no strategy of this node bought
_CTX = Context(prec=50, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, DivisionByZero, Overflow])


def _tidy(d: Decimal) -> Decimal:
    """The same value without trailing zeros in its digits (1.1810000 -> 1.181, 20000.0 -> 20000)."""
    if d == d.to_integral_value():
        return d.quantize(ONE, None, _CTX)      # (exp, rounding, context): a keyword costs ~0.1 us
    return d.normalize(_CTX)


def _dec(value: Any, what: str) -> Decimal:
    """An exact Decimal from Decimal, int or str; a float (inexact by nature) is refused."""
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{what} must be finite, got {value}")
        return value
    if isinstance(value, (int, str)) and not isinstance(value, bool):
        return _dec(Decimal(value), what)
    raise TypeError(f"{what} must be a Decimal (or int/str), got {type(value).__name__} {value!r}")


@dataclass(slots=True)
class _Position:
    quantity: Decimal = ZERO        # base held (>= 0)
    cost: Decimal = ZERO            # quote paid for what is held (average cost)
    realized: Decimal = ZERO        # quote, fees included
    fees: Decimal = ZERO            # quote value of the priced fees of this symbol's fills
    trip_pnl: Decimal = ZERO        # realised since the position last opened from flat
    fills: int = 0
    wins: int = 0                   # round trips of this (strategy, symbol) that made money
    losses: int = 0

    @property
    def avg_price(self) -> Decimal:
        if not self.quantity:
            return ZERO
        with localcontext(_CTX):
            return self.cost / self.quantity

    def _avg_price(self) -> Decimal:
        """avg_price for a caller already within _CTX."""
        return self.cost / self.quantity if self.quantity else ZERO


class Portfolio(Component):
    """Positions, balances and PnL of one account, valued in `quote_asset`.

    Inputs: fills by `apply_fill(fill)`, called by the execution engine before it publishes
    the fill (so every subscriber of topics.FILLS reads books that already hold it); on the
    bus, subscribed while started at Priority.STATE (read by others during the same message):
    topics.TRADES (TradeEvent marks), topics.RECONCILIATION (Reconciliation),
    topics.BALANCES (BalanceUpdate, BalanceDelta). Outputs: PositionUpdate on
    topics.POSITIONS after each fill, EquityPoint on topics.EQUITY from `snapshot()` and every
    `equity_interval_s` while started (0 turns the timer off), Alert on topics.ALERTS.
    """

    def __init__(self, bus, clock, quote_asset: str, instruments: dict, starting_balances: dict | None = None,
                 equity_interval_s: float = 1.0, name: str = "Portfolio"):
        super().__init__(name, bus, clock)
        if equity_interval_s < 0:
            raise ValueError("equity_interval_s must be >= 0")
        self.quote_asset = quote_asset
        self.instruments = instruments
        self.equity_interval_s = equity_interval_s
        # The symbol whose last trade prices an asset in the quote asset (BNB -> BNBUSDT).
        self._pricing = {inst.base_asset: sym for sym, inst in instruments.items() if inst.quote_asset == quote_asset}
        self._balances: dict[str, Decimal] = {}
        self._balances_known = starting_balances is not None
        for asset, amount in (starting_balances or {}).items():
            self._balances[asset] = _dec(amount, f"starting_balances[{asset}]")
        self._positions: dict[tuple[str, str], _Position] = {}      # (strategy id, symbol) ->
        self._marks: dict[str, int] = {}            # last trade price per symbol, in ticks
        self._fees = ZERO                           # quote value of every priced fee
        self.fees_unpriced: dict[str, Decimal] = {}
        self._peak = ZERO
        self._max_drawdown = ZERO
        self.consecutive_losses = 0
        self.max_consecutive_losses = 0
        self.round_trips = 0
        self.wins = 0
        self.losses = 0
        self.fills = 0
        self.drift_events = 0
        self.alerts = 0
        self.ignored_fills = 0
        self._warned: set[tuple[str, str]] = set()
        self._timer = None
        self._subscriptions: tuple = ()
        with localcontext(_CTX):
            self._update_peak(self._equity())

    def describe(self) -> dict:
        return {"quote_asset": self.quote_asset, "equity_interval_s": self.equity_interval_s,
                "symbols": sorted(self.instruments),
                "starting_balances": {a: str(v) for a, v in sorted(self._balances.items())}}

    # ---- lifecycle ---------------------------------------------------------------------

    def on_start(self) -> None:
        # Bound once and kept: the bus unsubscribes by identity, and `self.handle_x` is a new
        # object on every access.
        self._subscriptions = ((topics.TRADES, self.handle_trade),
                               (topics.RECONCILIATION, self.handle_reconciliation),
                               (topics.BALANCES, self.handle_balances))
        for topic, handler in self._subscriptions:
            self.bus.subscribe(topic, handler, Priority.STATE)
        if self.equity_interval_s > 0:
            interval = max(1, round(self.equity_interval_s * 1e9))
            self._timer = self.clock.call_every(interval, self._on_equity_timer)

    def on_stop(self) -> None:
        for topic, handler in self._subscriptions:
            self.bus.unsubscribe(topic, handler)
        self._subscriptions = ()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _on_equity_timer(self, now_ns: int) -> None:
        self.snapshot(now_ns)

    # ---- inputs ------------------------------------------------------------------------

    def handle_trade(self, ev) -> None:
        """A market trade: the symbol's mark (kept in ticks, converted when read)."""
        self._marks[ev.symbol] = ev.price

    def set_mark(self, symbol: str, price: Decimal) -> None:
        """Set a mark by hand (backtests, tests): an exact price on the symbol's tick grid."""
        self._marks[symbol] = self.instruments[symbol].price.to_units(_dec(price, "price"))

    def set_mark_ticks(self, symbol: str, ticks: int) -> None:
        """Set a mark already in the symbol's ticks (the backtester's bar closes)."""
        self._marks[symbol] = ticks

    def apply_fill(self, fill: Fill) -> None:
        """Book one fill (the execution engine calls this before publishing it)."""
        inst = self.instruments.get(fill.symbol)
        if inst is None:
            self.ignored_fills += 1
            self._alert_once("unknown_symbol", fill.symbol, "error",
                             f"fill {fill.client_order_id} in {fill.symbol}: no instrument, not booked",
                             fill.ts_event)
            return
        if fill.side not in ("BUY", "SELL"):
            raise ValueError(f"fill {fill.client_order_id}: side must be BUY or SELL, got {fill.side!r}")
        qty = _dec(fill.quantity, "fill.quantity")
        price = _dec(fill.price, "fill.price")
        fee = _dec(fill.commission, "fill.commission")
        if qty <= 0 or price < 0 or fee < 0:
            raise ValueError(f"fill {fill.client_order_id}: quantity must be > 0, price and commission >= 0")
        base, quote, fee_asset = inst.base_asset, inst.quote_asset, fill.commission_asset
        buy = fill.side == "BUY"
        bal = self._balances
        with localcontext(_CTX):
            notional = price * qty
            if buy:
                bal[quote] = bal.get(quote, ZERO) - notional
                bal[base] = bal.get(base, ZERO) + qty
            else:
                bal[quote] = bal.get(quote, ZERO) + notional
                bal[base] = bal.get(base, ZERO) - qty
            if fee:
                bal[fee_asset] = bal.get(fee_asset, ZERO) - fee
            for asset in {quote, base, fee_asset}:      # a set: the fee asset is usually one of the two
                if asset in bal:
                    bal[asset] = _tidy(bal[asset])
            self.fills += 1
            if quote != self.quote_asset:
                self._alert_once("unsupported_quote", fill.symbol, "warning",
                                 f"{fill.symbol} is quoted in {quote}, not {self.quote_asset}: "
                                 "balances updated, no position kept", fill.ts_event)
                return
            # The fee's value in the quote asset, and the base it takes (0 unless paid in base).
            fee_base = ZERO
            if not fee:
                fee_value = ZERO
            elif fee_asset == quote:
                fee_value = fee
            elif fee_asset == base:
                fee_value = fee * price
                fee_base = fee
            else:
                mark = self._asset_mark(fee_asset)
                if mark is None:
                    fee_value = ZERO
                    self.fees_unpriced[fee_asset] = self.fees_unpriced.get(fee_asset, ZERO) + fee
                else:
                    fee_value = fee * mark
            key = (fill.strategy_id, fill.symbol)
            pos = self._positions.get(key)
            if pos is None:
                pos = self._positions[key] = _Position()
            step = inst.step_size
            if buy:
                if self._is_flat(pos.quantity, step):
                    pos.trip_pnl = ZERO         # a new round trip opens
                received = qty - fee_base
                pos.quantity += received
                pos.cost += price * received
                realized = -fee_value
            else:
                disposed = qty + fee_base
                if disposed > pos.quantity:
                    # Selling more than the bot bought (holdings from before it): the excess has no
                    # known cost, so it is booked at the sale price (no PnL on it).
                    owner = f"strategy {fill.strategy_id}" if fill.strategy_id else "the unattributed position"
                    self._alert("oversold", "warning",
                                f"{fill.symbol}: sold {disposed} but {owner} held {pos.quantity}; the excess "
                                "is booked at the sale price", fill.ts_event)
                    disposed = pos.quantity
                if disposed == pos.quantity:
                    removed = pos.cost
                else:
                    removed = pos.cost * disposed / pos.quantity
                realized = price * disposed - removed - fee_value
                pos.quantity -= disposed
                pos.cost -= removed
                if not pos.quantity:
                    pos.cost = ZERO
            pos.quantity = _tidy(pos.quantity)
            pos.cost = _tidy(pos.cost)
            pos.realized = _tidy(pos.realized + realized)
            pos.fees = _tidy(pos.fees + fee_value)
            pos.trip_pnl = _tidy(pos.trip_pnl + realized)
            pos.fills += 1
            self._fees = _tidy(self._fees + fee_value)
            if not buy and self._is_flat(pos.quantity, step) and disposed:
                self._close_trip(pos)
            # Valued in the same context: entering one costs ~0.5 us, and this runs on every fill.
            self._update_peak(self._equity())
            # Built only for a listener (the store, tests): a backtest has none, and it costs ~1 us.
            update = PositionUpdate(fill.strategy_id, fill.symbol, pos.quantity, pos._avg_price(), pos.realized,
                                    self._unrealized(fill.symbol, pos), fill.ts_event) \
                if self.bus.has_subscribers(topics.POSITIONS) else None
        if update is not None:
            self.bus.publish(topics.POSITIONS, update)      # subscribers run in their own context

    def handle_reconciliation(self, rec: Reconciliation) -> None:
        self._reconcile(rec.balances, True, rec.ts_init, f"reconciliation ({rec.reason})")

    def handle_balances(self, msg) -> None:
        if isinstance(msg, BalanceDelta):
            delta = _dec(msg.delta, "balance delta")
            with localcontext(_CTX):
                self._balances[msg.asset] = self._balances.get(msg.asset, ZERO) + delta
                if msg.asset == self.quote_asset:
                    # A deposit or withdrawal is not performance: move the peak with it.
                    self._peak = max(ZERO, self._peak + delta)
        elif isinstance(msg, BalanceUpdate):
            self._reconcile(msg.balances, msg.is_snapshot, msg.ts_event,
                            "account snapshot" if msg.is_snapshot else "balance update")

    def _reconcile(self, balances, full: bool, ts: int, what: str) -> None:
        theirs = {b.asset: _dec(b.free, f"{b.asset}.free") + _dec(b.locked, f"{b.asset}.locked") for b in balances}
        if full and not self._balances_known:
            self._balances = theirs
            self._balances_known = True
            log.info("portfolio: wallet initialised from the exchange (%s): %d assets", what, len(theirs))
            self._check_positions(ts)
            return
        assets = set(theirs) | set(self._balances) if full else set(theirs)
        for asset in sorted(assets):
            ours = self._balances.get(asset, ZERO)
            exchange = theirs.get(asset, ZERO)
            if ours != exchange:
                self.drift_events += 1
                with localcontext(_CTX):
                    diff = exchange - ours
                self._alert("balance_drift", "warning",
                            f"{asset}: ours {ours} vs exchange {exchange} (diff {diff}) after {what}; "
                            "adopting the exchange's", ts)
                self._balances[asset] = exchange
        self._check_positions(ts)

    def _check_positions(self, ts: int) -> None:
        """Positions can only be held in the wallet: alert when they add up to more than it."""
        held: dict[str, Decimal] = {}
        for (_, symbol), pos in self._positions.items():
            if pos.quantity:
                base = self.instruments[symbol].base_asset
                held[base] = held.get(base, ZERO) + pos.quantity
        for asset, qty in held.items():
            wallet = self._balances.get(asset, ZERO)
            if qty > wallet:
                self._alert("position_exceeds_balance", "warning",
                            f"{asset}: positions hold {qty} but the exchange balance is {wallet}", ts)

    # ---- outputs -----------------------------------------------------------------------

    def snapshot(self, ts: int | None = None) -> EquityPoint:
        """Value the account now, update peak and drawdown, publish an EquityPoint on topics.EQUITY."""
        ts = self.clock.time_ns() if ts is None else ts
        with localcontext(_CTX):
            cash = self.cash(self.quote_asset)
            positions_value = self._positions_value()
            equity = cash + positions_value
            self._update_peak(equity)
            point = EquityPoint(equity, cash, positions_value, self._realized_total(), self._unrealized_total(),
                                self._fees, self._peak - equity, ts)
        self.bus.publish(topics.EQUITY, point)
        return point

    def _update_peak(self, equity: Decimal) -> None:
        """Within _CTX (as every _x() twin of a public x() below: the caller entered it once)."""
        if equity > self._peak:
            self._peak = equity
        drawdown = self._peak - equity
        if drawdown > self._max_drawdown:
            self._max_drawdown = drawdown

    def _alert(self, code: str, level: str, message: str, ts: int) -> None:
        self.alerts += 1
        log.warning("portfolio %s: %s", code, message)
        self.bus.publish(topics.ALERTS, Alert(level, "portfolio", code, message, ts))

    def _alert_once(self, code: str, key: str, level: str, message: str, ts: int) -> None:
        if (code, key) not in self._warned:
            self._warned.add((code, key))
            self._alert(code, level, message, ts)

    # ---- read-only views ---------------------------------------------------------------
    # A `strategy_id` reads that strategy's share; None (the default) the account's: the sum
    # over every strategy holding the symbol.

    def _shares(self, symbol: str, strategy_id: str | None):
        if strategy_id is not None:
            pos = self._positions.get((strategy_id, symbol))
            return () if pos is None else (pos,)
        return [p for (_, sym), p in self._positions.items() if sym == symbol]

    def position(self, symbol: str, strategy_id: str | None = None) -> Decimal:
        """Base-asset quantity held in symbol (>= 0): one strategy's, or the account's."""
        if strategy_id is not None:
            pos = self._positions.get((strategy_id, symbol))
            return pos.quantity if pos is not None else ZERO
        with localcontext(_CTX):
            return sum((p.quantity for p in self._shares(symbol, None)), ZERO)

    def tradable_position(self, symbol: str, strategy_id: str | None = None) -> Decimal:
        """The position rounded down to whole lot steps: what could be sold (fee dust left out)."""
        qty = self.position(symbol, strategy_id)
        inst = self.instruments.get(symbol)
        if inst is None or not qty:
            return qty
        step = inst.filters.qty_fp.increment
        return (qty // step) * step

    def avg_price(self, symbol: str, strategy_id: str | None = None) -> Decimal:
        """Average entry price (quote per base) of the position, 0 when flat."""
        shares = self._shares(symbol, strategy_id)
        with localcontext(_CTX):
            qty = sum((p.quantity for p in shares), ZERO)
            return sum((p.cost for p in shares), ZERO) / qty if qty else ZERO

    def positions(self) -> dict[str, Decimal]:
        """Every non-zero position of the account: symbol -> quantity (summed over strategies)."""
        return {s: q for s, (q, _) in self.holdings().items()}

    def strategy_positions(self) -> dict[tuple[str, str], Decimal]:
        """Every non-zero position by (strategy id, symbol)."""
        return {k: p.quantity for k, p in self._positions.items() if p.quantity}

    def holdings(self) -> dict[str, tuple[Decimal, Decimal]]:
        """Every non-zero position of the account: symbol -> (quantity, cost paid for it).
        avg_price() is cost / quantity (a 50-digit division, left to whoever needs it)."""
        out: dict[str, tuple[Decimal, Decimal]] = {}
        with localcontext(_CTX):
            for (_, symbol), p in self._positions.items():
                if p.quantity:
                    q, c = out.get(symbol, (ZERO, ZERO))
                    out[symbol] = (q + p.quantity, c + p.cost)
        return out

    def strategies(self) -> list[str]:
        """Every strategy id with a booked fill (the unattributed "" included when it has one)."""
        return sorted({sid for sid, _ in self._positions})

    def mark(self, symbol: str) -> Decimal | None:
        """The symbol's last trade price, None when no trade was seen."""
        ticks = self._marks.get(symbol)
        if ticks is None:
            return None
        inst = self.instruments.get(symbol)
        return inst.price.to_decimal(ticks) if inst is not None else None

    def _asset_mark(self, asset: str) -> Decimal | None:
        if asset == self.quote_asset:
            return Decimal(1)
        symbol = self._pricing.get(asset)
        return self.mark(symbol) if symbol is not None else None

    def cash(self, asset: str | None = None) -> Decimal:
        """Wallet balance (free + locked) of asset, the quote asset by default."""
        return self._balances.get(self.quote_asset if asset is None else asset, ZERO)

    def balances(self) -> dict[str, Decimal]:
        return dict(self._balances)

    def positions_value(self) -> Decimal:
        """Sum of positions at their mark (at their average entry price when unmarked)."""
        with localcontext(_CTX):
            return self._positions_value()

    def _positions_value(self) -> Decimal:
        """positions_value() within _CTX."""
        total = ZERO
        for (_, symbol), pos in self._positions.items():
            if pos.quantity:
                mark = self.mark(symbol)
                total += pos.cost if mark is None else pos.quantity * mark
        return _tidy(total)

    def equity(self) -> Decimal:
        """Quote-asset cash plus positions at their marks."""
        with localcontext(_CTX):
            return self._equity()

    def _equity(self) -> Decimal:
        """equity() within _CTX."""
        return self._balances.get(self.quote_asset, ZERO) + self._positions_value()

    def unmarked(self) -> list[str]:
        """Symbols with a position but no mark: valued at their average entry price."""
        return sorted({s for (_, s), p in self._positions.items() if p.quantity and s not in self._marks})

    def _select(self, symbol: str | None, strategy_id: str | None):
        """The (key, position) pairs of one symbol and/or one strategy (None: any)."""
        return [(k, p) for k, p in self._positions.items()
                if (symbol is None or k[1] == symbol) and (strategy_id is None or k[0] == strategy_id)]

    def realized_pnl(self, symbol: str | None = None, strategy_id: str | None = None) -> Decimal:
        """Realised PnL in the quote asset, fees included (of one symbol and/or strategy, or all)."""
        with localcontext(_CTX):
            if symbol is None and strategy_id is None:
                return self._realized_total()
            return sum((p.realized for _, p in self._select(symbol, strategy_id)), ZERO)

    def _realized_total(self) -> Decimal:
        """realized_pnl() of all positions, within _CTX."""
        return sum((p.realized for p in self._positions.values()), ZERO)

    def _unrealized(self, symbol: str, pos: _Position) -> Decimal:
        """Within _CTX."""
        mark = self.mark(symbol)
        if mark is None or not pos.quantity:
            return ZERO
        return _tidy(pos.quantity * mark - pos.cost)

    def unrealized_pnl(self, symbol: str | None = None, strategy_id: str | None = None) -> Decimal:
        """Unrealised PnL at the marks (0 for unmarked positions), of one symbol and/or strategy, or all."""
        with localcontext(_CTX):
            if symbol is None and strategy_id is None:
                return self._unrealized_total()
            return sum((self._unrealized(k[1], p) for k, p in self._select(symbol, strategy_id)), ZERO)

    def _unrealized_total(self) -> Decimal:
        """unrealized_pnl() of all positions, within _CTX."""
        return sum((self._unrealized(s, p) for (_, s), p in self._positions.items()), ZERO)

    def fees_paid(self, symbol: str | None = None, strategy_id: str | None = None) -> Decimal:
        """Quote value of the fees paid (unpriced third-asset fees are in `fees_unpriced`)."""
        if symbol is None and strategy_id is None:
            return self._fees
        with localcontext(_CTX):
            return sum((p.fees for _, p in self._select(symbol, strategy_id)), ZERO)

    def strategy_pnl(self) -> dict[str, dict[str, Any]]:
        """Per strategy: its positions, realised and unrealised PnL, fees, round trips (reports, the store)."""
        out: dict[str, dict[str, Any]] = {}
        with localcontext(_CTX):
            for (sid, symbol), p in sorted(self._positions.items()):
                row = out.setdefault(sid, {"positions": {}, "realized_pnl": ZERO, "unrealized_pnl": ZERO,
                                           "fees": ZERO, "wins": 0, "losses": 0, "fills": 0})
                if p.quantity:
                    row["positions"][symbol] = p.quantity
                row["realized_pnl"] += p.realized
                row["unrealized_pnl"] += self._unrealized(symbol, p)
                row["fees"] += p.fees
                row["wins"] += p.wins
                row["losses"] += p.losses
                row["fills"] += p.fills
        return out

    @property
    def peak_equity(self) -> Decimal:
        return self._peak

    def drawdown(self) -> Decimal:
        """Peak equity minus equity now (quote asset, >= 0)."""
        with localcontext(_CTX):
            return max(ZERO, self._peak - self.equity())

    def stats(self) -> dict[str, Any]:
        """A summary for reports and the dashboard (money as Decimal)."""
        equity = self.equity()
        with localcontext(_CTX):
            drawdown = max(ZERO, self._peak - equity)
            dd_pct = drawdown / self._peak if self._peak > 0 else ZERO
        return {
            "equity": equity,
            "cash": self.cash(self.quote_asset),
            "positions_value": self.positions_value(),
            "positions": self.positions(),
            "realized_pnl": self.realized_pnl(),
            "unrealized_pnl": self.unrealized_pnl(),
            "fees": self._fees,
            "fees_unpriced": dict(self.fees_unpriced),
            "peak_equity": self._peak,
            "drawdown": drawdown,
            "drawdown_pct": dd_pct,
            "max_drawdown": self._max_drawdown,
            "round_trips": self.round_trips,
            "wins": self.wins,
            "losses": self.losses,
            "consecutive_losses": self.consecutive_losses,
            "max_consecutive_losses": self.max_consecutive_losses,
            "fills": self.fills,
            "ignored_fills": self.ignored_fills,
            "drift_events": self.drift_events,
            "unmarked": self.unmarked(),
            "strategies": self.strategy_pnl(),
        }

    # ---- round trips -------------------------------------------------------------------

    @staticmethod
    def _is_flat(quantity: Decimal, step: Decimal) -> bool:
        return quantity < step if step else not quantity

    def _close_trip(self, pos: _Position) -> None:
        self.round_trips += 1
        if pos.trip_pnl < 0:
            self.losses += 1
            pos.losses += 1
            self.consecutive_losses += 1
            self.max_consecutive_losses = max(self.max_consecutive_losses, self.consecutive_losses)
        else:
            if pos.trip_pnl > 0:
                self.wins += 1
                pos.wins += 1
            self.consecutive_losses = 0
        pos.trip_pnl = ZERO

    # ---- state for a restart -----------------------------------------------------------

    def to_state(self) -> dict:
        """Everything needed to resume after a restart, JSON-able (Decimals as strings).

        Marks are not kept: they are stale after a restart and come back with the next trades.
        The size is bounded by strategies x symbols, whatever the number of fills.
        """
        return {
            "version": STATE_VERSION,
            "quote_asset": self.quote_asset,
            "balances_known": self._balances_known,
            "balances": {a: str(v) for a, v in self._balances.items()},
            "positions": [{"strategy": sid, "symbol": s, "quantity": str(p.quantity), "cost": str(p.cost),
                           "realized": str(p.realized), "fees": str(p.fees), "trip_pnl": str(p.trip_pnl),
                           "fills": p.fills, "wins": p.wins, "losses": p.losses}
                          for (sid, s), p in self._positions.items()],
            "fees": str(self._fees),
            "fees_unpriced": {a: str(v) for a, v in self.fees_unpriced.items()},
            "peak": str(self._peak),
            "max_drawdown": str(self._max_drawdown),
            "counters": {name: getattr(self, name) for name in _COUNTERS},
        }

    def from_state(self, state: dict) -> None:
        """Replace the books with a `to_state()` dict (ValueError when it does not fit). A version-1
        state (positions by symbol only, before per-strategy books) is read as unattributed positions."""
        version = state.get("version")
        if version not in (1, STATE_VERSION):
            raise ValueError(f"portfolio state version {version!r} is not {STATE_VERSION}")
        if state.get("quote_asset") != self.quote_asset:
            raise ValueError(f"portfolio state is in {state.get('quote_asset')!r}, this portfolio in "
                             f"{self.quote_asset!r}")
        rows = ([{"strategy": UNATTRIBUTED, "symbol": s, **p} for s, p in state["positions"].items()]
                if version == 1 else state["positions"])
        positions = {}
        for p in rows:
            where = f"positions.{p.get('strategy', '?')}.{p.get('symbol', '?')}"
            positions[(str(p["strategy"]), str(p["symbol"]))] = _Position(
                _dec(p["quantity"], f"{where}.quantity"), _dec(p["cost"], f"{where}.cost"),
                _dec(p["realized"], f"{where}.realized"), _dec(p["fees"], f"{where}.fees"),
                _dec(p["trip_pnl"], f"{where}.trip_pnl"), int(p["fills"]), int(p.get("wins", 0)),
                int(p.get("losses", 0)))
        self._balances = {a: _dec(v, f"balances.{a}") for a, v in state["balances"].items()}
        self._balances_known = bool(state["balances_known"])
        self._positions = positions
        self._fees = _dec(state["fees"], "fees")
        self.fees_unpriced = {a: _dec(v, f"fees_unpriced.{a}") for a, v in state["fees_unpriced"].items()}
        self._peak = _dec(state["peak"], "peak")
        self._max_drawdown = _dec(state["max_drawdown"], "max_drawdown")
        for name in _COUNTERS:
            setattr(self, name, int(state["counters"].get(name, 0)))


_COUNTERS = ("consecutive_losses", "max_consecutive_losses", "round_trips", "wins", "losses", "fills",
             "drift_events", "ignored_fills")
