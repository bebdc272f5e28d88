"""Event -> row, per table (columns in schema order). Runs on the event loop: cheap.

Prices and quantities leave the node as ticks/steps; one multiplication per value turns
them into Decimal(38, 8)'s unscaled integer (value x 1e8), exact by construction.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

from abidance.core import topics

E18 = Decimal("1e-18")


def money(d: Decimal) -> Decimal:
    """Computed money (an average price or PnL from a division may carry up to 50 digits) at the
    store's Decimal(38, 18): rounded half-even there; the portfolio keeps the exact value."""
    return d.quantize(E18, rounding=ROUND_HALF_EVEN) if d.as_tuple().exponent < -18 else d


class Scales:
    """Per symbol: unscaled-1e8 integers per tick and per step."""

    def __init__(self, instruments: dict):
        self.price: dict[str, int] = {}
        self.qty: dict[str, int] = {}
        for symbol, inst in instruments.items():
            p = inst.filters.price_fp.increment.scaleb(8)
            q = inst.filters.qty_fp.increment.scaleb(8)
            if p != p.to_integral_value() or q != q.to_integral_value():
                raise ValueError(f"{symbol}: tick/step finer than 1e-8 cannot be stored as Decimal(38, 8)")
            self.price[symbol], self.qty[symbol] = int(p), int(q)


def trade(ev, s: Scales, eid: str):
    return (ev.ts_trade, ev.symbol, ev.trade_id, ev.price * s.price[ev.symbol], ev.qty * s.qty[ev.symbol],
            bool(ev.buyer_is_maker), ev.ts_init)


def bar(b, s: Scales, eid: str):
    p = s.price[b.symbol]
    return (b.open_time, b.symbol, b.interval, b.close_time, b.open * p, b.high * p, b.low * p, b.close * p,
            b.volume * s.qty[b.symbol], b.trades)


def book_top(ev, s: Scales, eid: str):
    p, q = s.price[ev.symbol], s.qty[ev.symbol]
    return (ev.ts_event, ev.symbol, ev.bid_price * p, ev.bid_qty * q, ev.ask_price * p, ev.ask_qty * q, ev.update_id)


def depth_snapshot(ev, s: Scales, eid: str):
    p, q = s.price[ev.symbol], s.qty[ev.symbol]
    return (ev.ts_event, ev.symbol, ev.update_id, [x * p for x in ev.bid_prices], [x * q for x in ev.bid_qtys],
            [x * p for x in ev.ask_prices], [x * q for x in ev.ask_qtys])


def signal(ev, s: Scales, eid: str):
    return (ev.ts_event, eid, ev.strategy_id, ev.symbol, ev.side, float(ev.confidence),
            ev.price * s.price.get(ev.symbol, 0), ev.reason)


def shadow_signal(ev, s: Scales, eid: str):
    return (ev.ts_event, eid, ev.model, ev.version, ev.strategy_id, ev.symbol, ev.side, float(ev.confidence),
            ev.price * s.price.get(ev.symbol, 0), ev.reason)


def risk_decision(ev, s: Scales, eid: str):
    return (ev.ts_event, eid, ev.strategy_id, ev.symbol, ev.side, ev.accepted, ev.reason, ev.message,
            ev.quantity * s.qty.get(ev.symbol, 0), ev.price * s.price.get(ev.symbol, 0), ev.client_order_id,
            float(ev.confidence))


def order_event(ev, s: Scales, eid: str):
    q, p = s.qty.get(ev.symbol, 0), s.price.get(ev.symbol, 0)
    return (ev.ts_event, eid, ev.client_order_id, ev.strategy_id, ev.symbol, ev.side, ev.order_type, ev.status,
            ev.previous, ev.quantity * q, ev.filled * q, ev.price * p, ev.order_id, ev.reason)


def fill(ev, s: Scales, eid: str):
    return (ev.ts_event, eid, ev.client_order_id, ev.strategy_id, ev.symbol, ev.side, ev.quantity, ev.price,
            ev.commission, ev.commission_asset, ev.trade_id, ev.is_maker)


def balances(ev, s: Scales, eid: str):
    kind = type(ev).__name__
    if kind == "BalanceDelta":
        return [(ev.ts_event or ev.ts_init, f"{eid}.0", ev.asset, ev.delta, Decimal(0), "delta")]
    source = "snapshot" if ev.is_snapshot else "update"
    return [(ev.ts_event or ev.ts_init, f"{eid}.{i}", b.asset, b.free, b.locked, source)
            for i, b in enumerate(ev.balances)]


def reconciliation(ev, s: Scales, eid: str):
    return [(ev.ts_init, f"{eid}.{i}", b.asset, b.free, b.locked, f"reconcile:{ev.reason}")
            for i, b in enumerate(ev.balances)]


def position(ev, s: Scales, eid: str):
    return (ev.ts_event, eid, ev.strategy_id, ev.symbol, ev.quantity, money(ev.avg_price), money(ev.realized_pnl),
            money(ev.unrealized_pnl))


def equity(ev, s: Scales, eid: str):
    return (ev.ts_event, eid, money(ev.equity), money(ev.cash), money(ev.positions_value), money(ev.realized_pnl),
            money(ev.unrealized_pnl), money(ev.fees), money(ev.drawdown))


def alert(ev, s: Scales, eid: str):
    return (ev.ts_event, eid, ev.level, ev.source, ev.code, ev.message)


def trading_state(ev, s: Scales, eid: str):
    return (ev.ts_event, eid, ev.state, ev.previous, ev.reason, ev.source)


def health(ev, s: Scales, eid: str):
    return [(ev.ts_event, f"{eid}.{i}", st.stream, st.messages, st.rate_per_s, st.lag_ms_mean, st.lag_ms_max,
             ev.reconnects, ev.resyncs) for i, st in enumerate(ev.streams)]


# topic -> (table, converter, converter returns a list of rows?)
ROUTES = {
    topics.TRADES: ("trades", trade, False),
    topics.BARS: ("bars", bar, False),
    topics.BOOK_TICKERS: ("book_tops", book_top, False),
    topics.DEPTH_SNAPSHOTS: ("depth_snapshots", depth_snapshot, False),
    topics.SIGNALS: ("signals", signal, False),
    topics.RISK_DECISIONS: ("risk_decisions", risk_decision, False),
    topics.ORDER_EVENTS: ("order_events", order_event, False),
    topics.FILLS: ("fills", fill, False),
    topics.SHADOW_SIGNALS: ("shadow_signals", shadow_signal, False),
    topics.BALANCES: ("balances", balances, True),
    topics.RECONCILIATION: ("balances", reconciliation, True),
    topics.POSITIONS: ("positions", position, False),
    topics.EQUITY: ("equity", equity, False),
    topics.ALERTS: ("alerts", alert, False),
    topics.TRADING_STATE: ("trading_state", trading_state, False),
    topics.CONNECTOR_HEALTH: ("health", health, True),
}
