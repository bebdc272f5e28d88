"""The recorded window through the kernel again, as a backtest: the replay run of the drift report.

The market is what the node recorded: its trades when the store has them (the engines build
the bars from them, as live), else its bars. A hole in recorded bars (the feed stalled, the
node was down) can be filled from candles the user gives (`--candles SYMBOL=FILE`, e.g. from
`abidance download`), a hole in recorded trades (two trade ids that do not follow each other)
from trades (`--trades SYMBOL=FILE`): the replay then trades through it as live could not, and
the report names each hole. The node's own fills, which the exchange prints on the public tape
too, are left out of the replay's market (the same trade id, time, price and quantity as a live
fill). The replay starts from the node's balances at the start of the window.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from abidance.backtest.engine import Backtest
from abidance.core.events import Bar
from abidance.data.bars import parse_interval
from abidance._core.wire import trade_event
from abidance.drift.orders import Denial, FillRecord, OrderRecord

ENDED = ("FILLED", "CANCELED", "EXPIRED", "REJECTED")


@dataclass
class ReplayInput:
    source: str                                       # "trades" or "bars"
    data: dict[str, list]                             # symbol -> TradeEvents or Bars
    gaps: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    filled_bars: dict[str, int] = field(default_factory=dict)     # symbol -> bars (trades) taken from the user's files
    recorded: dict[str, list] = field(default_factory=dict)       # symbol -> the trades the node received
    own_trades: dict[str, int] = field(default_factory=dict)      # symbol -> the node's own fills left out

    def market_points(self, instruments: dict) -> dict[str, list[tuple[int, Decimal]]]:
        out = {}
        for symbol, events in self.data.items():
            tick = instruments[symbol].filters.price_fp.increment
            if self.source == "trades":
                out[symbol] = [(t.ts_trade, tick * t.price) for t in events]
            else:
                pts = []
                for b in events:
                    pts += [(b.open_time, tick * b.open), (b.close_time - 1, tick * b.close)]
                out[symbol] = pts
        return out


def _ticks(value: Decimal, increment: Decimal, what: str) -> int:
    units = value / increment
    if units != units.to_integral_value():
        raise ValueError(f"{what} {value} is off the instrument's grid ({increment})")
    return int(units)


def bars_of(rows: list[tuple], symbol: str, interval: str, instrument) -> list[Bar]:
    tick, step = instrument.filters.price_fp.increment, instrument.filters.qty_fp.increment
    return [Bar(symbol, interval, ts, close, _ticks(o, tick, "open"), _ticks(h, tick, "high"),
                _ticks(lo, tick, "low"), _ticks(c, tick, "close"), _ticks(v, step, "volume"), int(n))
            for ts, close, o, h, lo, c, v, n in rows]


def bar_gaps(bars: list[Bar], start: int, end: int) -> list[tuple[int, int]]:
    """Spans inside [start, end) with no recorded bar."""
    if not bars:
        return [(start, end)]
    iv = bars[0].close_time - bars[0].open_time
    gaps = [(a.close_time, b.open_time) for a, b in zip(bars, bars[1:]) if b.open_time - a.open_time > iv]
    if bars[-1].close_time + iv <= end:
        gaps.append((bars[-1].close_time, end))
    return gaps


def fill_gaps(bars: list[Bar], gaps: list[tuple[int, int]], candles: list[Bar]) -> tuple[list[Bar], int]:
    """The recorded bars with the given candles put in their holes (recorded bars win)."""
    extra = [b for b in candles if any(a <= b.open_time < z for a, z in gaps)]
    return sorted(bars + extra, key=lambda b: b.open_time), len(extra)


def replay_input(rec, config, instruments: dict, candles: dict[str, list[Bar]] | None = None,
                 trades: dict[str, list] | None = None) -> ReplayInput:
    """The replay's market: the recorded trades (holes filled from `trades`), else the recorded bars of
    each symbol's shortest strategy timeframe (holes filled from `candles`)."""
    symbols = sorted({s for sc in config.strategies for s in sc.symbols})
    if any(rec.trades.get(s) for s in symbols):
        out = ReplayInput("trades", {})
        for s in symbols:
            tick, step = instruments[s].filters.price_fp.increment, instruments[s].filters.qty_fp.increment
            rows = rec.trades.get(s, [])
            out.gaps[s] = trade_id_gaps(rows)
            # The node's own fills print on the tape: the replay's market is everyone else's trades.
            fills = [f for o in rec.orders if o.symbol == s for f in o.fills]
            own = {(f.trade_id, f.ts, f.price, f.qty) for f in fills}
            kept = [r for r in rows if (r[1], r[0], r[2], r[3]) not in own]
            out.own_trades[s] = len(rows) - len(kept)
            out.data[s] = out.recorded[s] = [
                trade_event(s, tid, _ticks(p, tick, "price"), _ticks(q, step, "qty"), bool(m), ts, ts_init)
                for ts, tid, p, q, m, ts_init in kept]
            if trades and s in trades:
                inside = [t for t in trades[s] if any(a < t.ts_trade < b for a, b in out.gaps[s])]
                given, left_out = _others(inside, fills, own, tick, step)
                out.own_trades[s] += left_out
                out.data[s], out.filled_bars[s] = fill_trade_gaps(out.data[s], given, out.gaps[s])
        return out
    out = ReplayInput("bars", {})
    for s in symbols:
        interval = min((sc.timeframe for sc in config.strategies if s in sc.symbols), key=parse_interval)
        bars = bars_of(rec.bars.get((s, interval), []), s, interval, instruments[s])
        gaps = bar_gaps(bars, rec.start, rec.end)
        if candles and s in candles:
            bars, out.filled_bars[s] = fill_gaps(bars, gaps, [b for b in candles[s]
                                                             if rec.start <= b.open_time and b.close_time <= rec.end])
        out.data[s], out.gaps[s] = bars, gaps
    return out


def _others(given: list, fills: list[FillRecord], own: set, tick: Decimal, step: Decimal) -> tuple[list, int]:
    """The given trades that are not the node's own fills, and how many own fills were left out.

    A downloaded trade is an aggregate trade: numbered apart from the exchange's trade ids, and one
    aggregate holds every fill of a taker order at one price and time. So an own fill is found by
    its trade id, or by time and price with the quantity of the node's fills then and there."""
    at: dict[tuple[int, Decimal], list[Decimal]] = {}
    for f in fills:
        at.setdefault((f.ts, f.price), []).append(f.qty)
    kept, left_out = [], 0
    for t in given:
        price, qty = tick * t.price, step * t.qty
        mine = at.get((t.ts_trade, price), [])
        if (t.trade_id, t.ts_trade, price, qty) in own:
            left_out += 1
        elif mine and sum(mine) == qty:
            left_out += len(mine)
        else:
            kept.append(t)
    return kept, left_out


def trade_id_gaps(rows: list[tuple]) -> list[tuple[int, int]]:
    """Spans between two recorded trades whose ids are not consecutive (Binance numbers a symbol's
    trades one by one: a hole is a trade the node never received)."""
    return [(a[0], b[0]) for a, b in zip(rows, rows[1:]) if b[1] > a[1] + 1]


def fill_trade_gaps(recorded: list, given: list, holes: list[tuple[int, int]]) -> tuple[list, int]:
    """The recorded trades with the given ones that fall strictly inside a hole (`trade_id_gaps`: by
    time, because downloaded aggregate trades are numbered apart from trades on Binance)."""
    extra = [t for t in given if any(a < t.ts_trade < b for a, b in holes)]
    return sorted(recorded + extra, key=lambda t: (t.ts_trade, t.trade_id)), len(extra)


def run_replay(config, inp: ReplayInput, instruments: dict, balances: dict[str, Decimal] | None, **fill):
    """The backtest of the window; `fill` overrides the config's fill model (a calibrated one)."""
    kwargs = {"trades": inp.data} if inp.source == "trades" else {"bars_by_symbol": inp.data}
    return Backtest(config, instruments=instruments, balances=balances or None, **kwargs, **fill).run()


def replay_orders(result, instruments: dict) -> tuple[list[OrderRecord], list[Denial]]:
    """The replay's decisions, orders and fills as the live run's records."""
    orders: dict[str, OrderRecord] = {}
    denials = []
    for d in result.decisions:
        if d.accepted and d.client_order_id:
            step = instruments[d.symbol].filters.qty_fp.increment
            orders[d.client_order_id] = OrderRecord(d.strategy_id, d.symbol, d.side, d.ts_event, step * d.quantity,
                                                    d.client_order_id)
        else:
            denials.append(Denial(d.strategy_id, d.symbol, d.side, d.ts_event, d.reason))
    for ev in result.orders:
        o = orders.get(ev.client_order_id)
        if o is None:
            continue
        o.order_type = ev.order_type
        if ev.status == "NEW" and o.acked is None:
            o.acked = ev.ts_event
        if ev.status not in ("PENDING_NEW", "PENDING_CANCEL") and o.status not in ENDED:
            o.status = ev.status
    for f in result.fills:
        o = orders.get(f.client_order_id)
        if o is not None:
            o.fills.append(FillRecord(f.quantity, f.price, f.commission, f.commission_asset, f.is_maker, f.ts_event))
    return sorted(orders.values(), key=lambda o: o.decided), denials
