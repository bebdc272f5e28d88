"""BacktestVenue: an in-process venue that fills the node's orders against bars.

No look-ahead: an order sent while bar t is processed (at its close) can only fill in a
later bar. Fill model (documented assumptions, chosen in the constructor):
- MARKET: the next bar's open, moved against the order by `slippage_bps`; taker fee.
- LIMIT: fills in the first later bar that trades through the price (BUY: low <= price,
  SELL: high >= price), at the better of the price and that bar's open; maker fee when it
  rested, taker when it was marketable at that open.
- `participation` (optional): at most that share of a bar's volume fills per bar; the rest
  waits for the next bars (partial fills, PARTIALLY_FILLED updates).
- `latency_ms`: an order only reaches bars that open at least that long after it was sent.
- `spread_bps`: market orders also pay half this spread.
- Fees are charged in the asset received, as Binance does without BNB.
Updates reach the execution engine on topics.ORDER_UPDATES, exactly as the live user
stream delivers them, so the same engines and accounting run in backtest and live.
"""

from __future__ import annotations

import itertools
from decimal import ROUND_HALF_EVEN, Decimal

from abidance.core import topics
from abidance.core.events import OrderUpdate

BPS = Decimal(10_000)


class BacktestVenue:
    def __init__(self, bus, clock, instruments: dict, *, taker_bps: Decimal = Decimal(10),
                 maker_bps: Decimal = Decimal(10), slippage_bps: Decimal = Decimal(0),
                 participation: Decimal | None = None, latency_ms: int = 0, spread_bps: Decimal = Decimal(0)):
        self.bus = bus
        self.clock = clock
        self.instruments = instruments
        self.taker = Decimal(taker_bps) / BPS
        self.maker = Decimal(maker_bps) / BPS
        self.slippage = (Decimal(slippage_bps) + Decimal(spread_bps) / 2) / BPS
        if participation is not None and not Decimal(0) < Decimal(participation) <= 1:
            raise ValueError(f"participation must be within (0, 1], got {participation}")
        self.participation = Decimal(participation) if participation is not None else None
        self.latency_ns = int(latency_ms) * 1_000_000
        self._filled: dict[str, int] = {}            # cid -> steps filled so far
        self._ids = itertools.count(1)
        self._trade_ids = itertools.count(1)
        self.resting: dict[str, tuple] = {}          # cid -> (order, order_id, placed_ns)
        self.fills = 0

    # ---- the ExecutionClient protocol ----------------------------------------------------

    def prepare(self, order) -> None:
        return None

    async def submit(self, order) -> dict:
        order_id = next(self._ids)
        self.resting[order.client_order_id] = (order, order_id, self.clock.time_ns())
        return {"orderId": order_id, "clientOrderId": order.client_order_id, "status": "NEW", "executedQty": "0"}

    async def cancel(self, order) -> dict:
        entry = self.resting.pop(order.client_order_id, None)
        self._filled.pop(order.client_order_id, None)
        return {"orderId": entry[1] if entry else order.order_id, "status": "CANCELED",
                "executedQty": "0", "cummulativeQuoteQty": "0"}

    async def query(self, order) -> dict:
        status = "NEW" if order.client_order_id in self.resting else order.status
        return {"orderId": order.order_id, "status": status}

    async def open_orders(self) -> list[dict]:
        return []

    # ---- the market --------------------------------------------------------------------

    def on_bar(self, bar) -> None:
        """Fill what this bar reaches (orders placed before it opened), in order of placement."""
        room = None
        if self.participation is not None:
            room = int(Decimal(bar.volume) * self.participation)      # steps this bar can still give
        for cid, (order, order_id, placed) in list(self.resting.items()):
            if order.symbol != bar.symbol or placed + self.latency_ns > bar.open_time:
                continue
            price, maker = self._fill_price(order, bar)
            if price is None:
                continue
            done = self._filled.get(cid, 0)
            qty = order.quantity - done
            if room is not None:
                qty = min(qty, room)
                room -= qty
            if qty <= 0:
                continue
            done += qty
            complete = done >= order.quantity
            if complete:
                del self.resting[cid]
                self._filled.pop(cid, None)
            else:
                self._filled[cid] = done
            self._fill(order, order_id, price, maker, bar.open_time, qty, done, complete)

    def _fill_price(self, order, bar) -> tuple[int | None, bool]:
        if order.order_type == "MARKET":
            return bar.open, False
        if order.side == "BUY" and bar.low <= order.price:
            return (bar.open, False) if bar.open <= order.price else (order.price, True)
        if order.side == "SELL" and bar.high >= order.price:
            return (bar.open, False) if bar.open >= order.price else (order.price, True)
        return None, False

    def _fill(self, order, order_id: int, price_ticks: int, maker: bool, ts: int, steps: int, done: int,
              complete: bool) -> None:
        inst = self.instruments[order.symbol]
        f = inst.filters
        qty = f.qty_fp.increment * steps
        price = f.price_fp.increment * price_ticks
        if order.order_type == "MARKET" and self.slippage:
            moved = price * (1 + self.slippage if order.side == "BUY" else 1 - self.slippage)
            price = moved.quantize(f.price_fp.increment, rounding=ROUND_HALF_EVEN)
        rate = self.maker if maker else self.taker
        if order.side == "BUY":
            commission, asset = qty * rate, inst.base_asset
        else:
            commission, asset = (qty * price * rate), inst.quote_asset
        commission = commission.quantize(Decimal("1e-8"), rounding=ROUND_HALF_EVEN)
        self.fills += 1
        self.bus.publish(topics.ORDER_UPDATES, OrderUpdate(
            symbol=order.symbol, client_order_id=order.client_order_id, order_id=order_id, side=order.side,
            order_type=order.order_type, time_in_force=order.time_in_force, execution_type="TRADE",
            status="FILLED" if complete else "PARTIALLY_FILLED", price=f.price_fp.increment * order.price,
            quantity=f.qty_fp.increment * order.quantity, stop_price=Decimal(0), last_qty=qty, last_price=price,
            cumulative_qty=f.qty_fp.increment * done, cumulative_quote=qty * price, commission=commission,
            commission_asset=asset, trade_id=next(self._trade_ids), is_maker=maker, reject_reason="NONE",
            request_client_order_id=order.client_order_id, ts_event=ts, ts_init=ts))
