"""Live minus replay PnL, per strategy, split into named causes that add up exactly.

Both runs are valued the same way over the window: an order's PnL is
`s * (q * M - N) - F` in the quote asset, where s is +1 for a BUY and -1 for a SELL, q the
filled quantity, N the filled notional (sum of qty x price), F the fees in the quote asset and
M the symbol's last market price in the window (the same mark for both runs). Every figure is
a Decimal product of the recorded values: no division, no rounding, so the lines add up to the
difference to the last digit.

Orders are paired by strategy, symbol, side and decision time. For a pair (live l, replay r),
with P_d the replay's first fill price (the backtest's fill model; the market at the decision
when the replay did not fill), P_a the market when the venue had the live order (the first trade
or bar open at or after a MARKET order's first fill, on the venue's clock, else at or after its
acknowledgement) and P_1 the live order's first fill price:

    live - replay = s (q_l - q_r)(M - P_d)        quantity: unfilled parts / rejections / sizing
                  + s q_l (P_d - P_a)             latency: the market moved between decision and ack
                  + s q_l (P_a - P_1)             slippage: the first fill against the market at ack
                  + s (q_l P_1 - N_l)             partial fills: the rest filled later, at other prices
                  - s (q_r P_d - N_r)             the replay's own fills away from its first price
                  - (F_l - F_r)                   fees

An order in one run only is the same formula with the other side empty: the live order's
execution still goes to latency, slippage and partial fills, and its value at the replay's fill
model (the market at the decision), fees included, goes to the reason found for it: a data gap, a
restart, a halt, a risk denial, a manual order, a different position held (earlier fills
differed); else "unexplained". A fee in an asset without a price is
left out of the PnL of both runs and shown apart, in its own asset.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from abidance.drift.orders import ZERO, Denial, OrderRecord

# The lines, in the order they are shown.
MISSED = ("data gap", "restart", "halt", "risk denial", "manual operator action", "position differed", "unexplained")
LINES = tuple(f"only in one run: {r}" for r in MISSED) + (
    "slippage", "latency", "fees", "partial fills and unfilled limits", "rejections", "sizing and positions",
    "replay fills at several prices")


@dataclass
class Market:
    """The market both runs saw: per symbol, time-ordered (ns, price) points."""

    points: dict[str, list[tuple[int, Decimal]]]

    def __post_init__(self):
        self._times = {s: [t for t, _ in pts] for s, pts in self.points.items()}

    def at(self, symbol: str, ts: int) -> Decimal:
        """The first price at or after `ts` (what an order arriving then meets); the last one after the end."""
        pts, times = self.points[symbol], self._times[symbol]
        i = bisect.bisect_left(times, ts)
        return pts[min(i, len(pts) - 1)][1]

    def mark(self, symbol: str, end: int) -> Decimal:
        """The last price before `end`."""
        pts, times = self.points[symbol], self._times[symbol]
        i = bisect.bisect_left(times, end)
        return pts[max(i - 1, 0)][1]


@dataclass
class Context:
    """What the live node went through, to name why an order is in one run only."""

    gaps: dict[str, list[tuple[int, int]]] = field(default_factory=dict)   # symbol -> [(start, end)) ns
    halts: list[tuple[int, int]] = field(default_factory=list)             # [(start, end)) not ACTIVE
    restarts: list[int] = field(default_factory=list)                      # node starts, ns
    restart_window: int = 0                                                 # ns after a start still its effect
    tolerance: int = 0                                                      # ns between paired decisions


@dataclass
class Pair:
    live: OrderRecord | None
    replay: OrderRecord | None
    reason: str = ""                  # for an order in one run only


@dataclass
class StrategyDrift:
    strategy_id: str
    live_pnl: Decimal = ZERO
    replay_pnl: Decimal = ZERO
    lines: dict[str, Decimal] = field(default_factory=lambda: {name: ZERO for name in LINES})
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    unpriced_fees: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    pairs: list[Pair] = field(default_factory=list)

    @property
    def difference(self) -> Decimal:
        return self.live_pnl - self.replay_pnl

    @property
    def residual(self) -> Decimal:
        """What the named lines do not explain (zero when the decomposition is complete)."""
        return self.difference - sum(self.lines.values(), ZERO)


class Valuation:
    """Fees in the quote asset: the quote itself, a symbol's base at its mark, or a priced asset."""

    def __init__(self, quote: str, base_of: dict[str, str], marks: dict[str, Decimal],
                 asset_prices: dict[str, Decimal] | None = None):
        self.quote, self.base_of, self.marks = quote, base_of, marks
        self.asset_prices = asset_prices or {}

    def fees(self, order: OrderRecord, unpriced: dict[str, Decimal]) -> Decimal:
        total = ZERO
        for f in order.fills:
            if f.fee_asset == self.quote or not f.fee:
                total += f.fee
            elif f.fee_asset == self.base_of.get(order.symbol):
                total += f.fee * self.marks[order.symbol]
            elif f.fee_asset in self.asset_prices:
                total += f.fee * self.asset_prices[f.fee_asset]
            else:
                unpriced[f.fee_asset] += f.fee
        return total

    def pnl(self, order: OrderRecord, unpriced: dict[str, Decimal]) -> Decimal:
        mark = self.marks[order.symbol]
        return order.sign * (order.filled * mark - order.notional) - self.fees(order, unpriced)


def pair_orders(live: list[OrderRecord], replay: list[OrderRecord], tolerance: int) -> list[Pair]:
    """Pairs by (strategy, symbol, side), each live order (oldest first) with the unpaired replay
    order decided nearest to it, within `tolerance` ns; the rest are in one run only."""
    pending: dict[tuple, list[OrderRecord]] = defaultdict(list)
    for o in sorted(replay, key=lambda o: o.decided):
        pending[(o.strategy_id, o.symbol, o.side)].append(o)
    pairs = []
    for o in sorted(live, key=lambda o: o.decided):
        queue = pending[(o.strategy_id, o.symbol, o.side)]
        near = [r for r in queue if abs(r.decided - o.decided) <= tolerance]
        match = min(near, key=lambda r: abs(r.decided - o.decided)) if near else None
        if match is not None:
            queue.remove(match)
        pairs.append(Pair(o, match))
    pairs += [Pair(None, r) for queue in pending.values() for r in queue]
    pairs.sort(key=lambda p: (p.live or p.replay).decided)
    return pairs


class Positions:
    """Each run's position per (strategy, symbol) just before a time, from its fills (base fees taken)."""

    def __init__(self, orders: list[OrderRecord], base_of: dict[str, str]):
        self.moves: dict[tuple, list[tuple[int, Decimal]]] = defaultdict(list)
        for o in orders:
            for f in o.fills:
                fee = f.fee if f.fee_asset == base_of.get(o.symbol) else ZERO
                self.moves[(o.strategy_id, o.symbol)].append((f.ts, o.sign * f.qty - fee))

    def before(self, key: tuple, ts: int) -> Decimal:
        return sum((q for t, q in self.moves.get(key, ()) if t < ts), ZERO)


def _reason(order: OrderRecord, in_live: bool, pairs: list[Pair], denials: list[Denial], ctx: Context,
            positions: tuple[Positions, Positions]) -> str:
    t, key = order.decided, (order.strategy_id, order.symbol, order.side)
    gaps = ctx.gaps.get(order.symbol, ())
    if any(start <= t < end for start, end in gaps):
        return "data gap"
    if any((d.strategy_id, d.symbol, d.side) == key and abs(d.decided - t) <= ctx.tolerance for d in denials):
        return "risk denial"
    if any(start <= t < end for start, end in ctx.halts):
        return "halt"
    if any(s <= t <= s + ctx.restart_window for s in ctx.restarts):
        return "restart"
    if in_live and order.manual:
        return "manual operator action"
    # After a gap the runs differ until they pair an order again (indicators and positions catch up).
    for start, end in gaps:
        if start <= t and not any(p.live and p.replay and p.live.strategy_id == order.strategy_id
                                  and p.live.symbol == order.symbol and end <= p.live.decided < t for p in pairs):
            return "data gap"
    # The strategy decided on another position: earlier fills differed (partial fills, fees in the base asset).
    held = (order.strategy_id, order.symbol)
    if positions[0].before(held, t) != positions[1].before(held, t):
        return "position differed"
    return "unexplained"


def attribute(live: list[OrderRecord], replay: list[OrderRecord], market: Market, value: Valuation,
              ctx: Context, live_denials: list[Denial] = (),
              replay_denials: list[Denial] = ()) -> dict[str, StrategyDrift]:
    """Per strategy: both PnLs and the lines explaining their difference (module doc)."""
    out: dict[str, StrategyDrift] = {}
    pairs = pair_orders(live, replay, ctx.tolerance)
    positions = (Positions(live, value.base_of), Positions(replay, value.base_of))
    for p in pairs:
        sid = (p.live or p.replay).strategy_id
        d = out.setdefault(sid, StrategyDrift(sid))
        d.pairs.append(p)
        l, r = p.live or _none(p.replay), p.replay or _none(p.live)
        d.live_pnl += value.pnl(l, d.unpriced_fees)
        d.replay_pnl += value.pnl(r, d.unpriced_fees)
        lines, counts = d.lines, d.counts
        s, mark = l.sign, value.marks[l.symbol]
        p_d = r.fills[0].price if r.fills else market.at(l.symbol, (p.replay or p.live).decided)
        p_a = market.at(l.symbol, l.arrived) if l.arrived is not None else p_d
        p_1 = l.fills[0].price if l.fills else p_a
        q_l, q_r = l.filled, r.filled
        # How the live order executed, whether or not the replay had it.
        lines["latency"] += s * q_l * (p_d - p_a)
        lines["slippage"] += s * q_l * (p_a - p_1)
        lines["partial fills and unfilled limits"] += s * (q_l * p_1 - l.notional)
        lines["replay fills at several prices"] -= s * (q_r * p_d - r.notional)
        unpriced: dict[str, Decimal] = defaultdict(Decimal)     # already counted by pnl() above
        fees = value.fees(l, unpriced) - value.fees(r, unpriced)
        if p.live is None or p.replay is None:
            # What the order in one run was worth at the replay's fill model, fees included.
            p.reason = _reason(p.live or p.replay, p.live is not None, pairs,
                               replay_denials if p.live else live_denials, ctx, positions)
            lines[f"only in one run: {p.reason}"] += s * (q_l - q_r) * (mark - p_d) - fees
            counts[f"{'live' if p.live else 'replay'} only: {p.reason}"] += 1
            continue
        lines["fees"] -= fees
        unfilled = s * ((q_l - l.ordered) - (q_r - r.ordered)) * (mark - p_d)
        lines["rejections" if l.status == "REJECTED" else "partial fills and unfilled limits"] += unfilled
        lines["sizing and positions"] += s * (l.ordered - r.ordered) * (mark - p_d)
        counts["paired"] += 1
        counts["live maker fills"] += sum(f.is_maker for f in l.fills)
        counts["replay maker fills"] += sum(f.is_maker for f in r.fills)
        if q_l < l.ordered:
            counts["live partly or not filled"] += 1
    return out


def _none(like: OrderRecord) -> OrderRecord:
    """The order a run did not have: nothing sent, nothing filled."""
    return OrderRecord(like.strategy_id, like.symbol, like.side, like.decided, ZERO)
