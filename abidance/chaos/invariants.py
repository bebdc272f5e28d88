"""The campaign's invariants, each from a record the node did not keep itself where possible:
the venue's account, orders and trades, the store's order events and fills, the node's state file."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

TERMINAL = {"FILLED", "CANCELED", "REJECTED", "EXPIRED", "EXPIRED_IN_MATCH"}


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    figures: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"name": self.name, "ok": self.ok, "detail": self.detail, **self.figures}


def balances_match(venue: dict[str, Decimal], node: dict[str, Decimal]) -> Check:
    assets = sorted(set(venue) | {a for a, v in node.items() if v})
    diff = {a: f"venue {venue.get(a, 0)} node {node.get(a, 0)}" for a in assets
            if venue.get(a, Decimal(0)) != node.get(a, Decimal(0))}
    return Check("balances equal the venue's", not diff, "; ".join(f"{a}: {d}" for a, d in diff.items()) or
                 ", ".join(f"{a} {venue.get(a, 0)}" for a in assets))


def unique_client_order_ids(orders: list[dict]) -> Check:
    counts = Counter(o["clientOrderId"] for o in orders)
    dup = {cid: n for cid, n in counts.items() if n > 1}
    return Check("no duplicate client order id", not dup, f"{len(dup)} duplicated: {list(dup)[:5]}" if dup else
                 f"{len(counts)} orders, each id once", {"orders": len(counts)})


def fills_stored_once(venue_trades: list[dict], venue_orders: list[dict], stored: list[tuple]) -> Check:
    """stored: (client_order_id, trade_id, qty) rows of the store's fills table. Each venue trade is
    stored once by its id; a fill the node booked without the trade's report (trade_id -1, at the
    order's average price after a restart) stands for that order's missing trades by quantity."""
    by_trade = Counter(t for _, t, _ in stored if t >= 0)
    twice = [t for t, n in by_trade.items() if n > 1]
    cid_of = {o["orderId"]: o["clientOrderId"] for o in venue_orders}
    venue_qty: dict[str, Decimal] = defaultdict(Decimal)
    for t in venue_trades:
        venue_qty[cid_of.get(t["orderId"], "?")] += Decimal(t["qty"])
    store_qty: dict[str, Decimal] = defaultdict(Decimal)
    for cid, _, qty in stored:
        store_qty[cid] += Decimal(qty)
    zero = Decimal(0)
    off = {cid: (venue_qty.get(cid, zero), store_qty.get(cid, zero))
           for cid in set(venue_qty) | set(store_qty) if venue_qty.get(cid, zero) != store_qty.get(cid, zero)}
    catch_up = sum(1 for _, t, _ in stored if t < 0)
    ok = not twice and not off
    detail = (f"{len(twice)} trade ids stored more than once; {len(off)} orders whose stored quantity differs "
              f"from the venue's: {dict(list(off.items())[:3])}") if not ok else \
        f"{len(venue_trades)} venue trades, {len(stored)} stored fills ({catch_up} booked by catch-up)"
    return Check("every fill stored once", ok, detail, {"venue_trades": len(venue_trades), "stored_fills": len(stored),
                                                        "catch_up_fills": catch_up, "trade_ids_stored_twice": len(twice),
                                                        "orders_with_fills_missing": len(off)})


def venue_open_intervals_within(orders: list[dict], limit: int, now_ms: int) -> Check:
    """Every instant, from the venue's own record: an order is open from its `time` to its last
    `updateTime` when it ended (to now when still open); the most that overlap never exceeds `limit`."""
    edges = []
    for o in orders:
        end = o["updateTime"] if o["status"] in TERMINAL else now_ms
        if end > o["time"]:
            edges += [(o["time"], 1), (end, -1)]
    edges.sort(key=lambda e: (e[0], e[1]))          # an order ending at t is gone before one starting at t
    n = most = 0
    at = None
    for t, d in edges:
        n += d
        if n > most:
            most, at = n, t
    return Check("open orders on the venue never above max_open_orders (every instant, venue's record)",
                 limit <= 0 or most <= limit, f"most open at once {most} (limit {limit}) at {at} ms",
                 {"most_open_on_venue": most})


def store_order_events(events: list[tuple], limit: int) -> Check:
    """events: (ts, client_order_id, status) of the store's order_events, in time order: the open set
    after each event. Informational (ok is always True): the node's store writer loses the events it
    had not flushed when the node is killed with SIGKILL, and an order whose end was lost stays open
    here for ever; `orders_without_end` counts them."""
    status: dict[str, str] = {}
    open_now, most, at = 0, 0, None
    for ts, cid, st in events:
        was_open = cid in status and status[cid] not in TERMINAL
        status[cid] = st
        is_open = st not in TERMINAL
        open_now += int(is_open) - int(was_open)
        if open_now > most:
            most, at = open_now, ts
    without_end = sum(1 for st in status.values() if st not in TERMINAL)
    return Check("store's order events (informational)", True,
                 f"replayed, most open at once {most} (limit {limit}) at {at}; {without_end} orders without an "
                 "end event (lost with the unflushed batch of a node killed -9)",
                 {"most_open_in_store_replay": most, "orders_without_end": without_end})


def venue_open_orders_sampled(samples: list[int], limit: int) -> Check:
    most = max(samples, default=0)
    return Check("open orders on the venue never above max_open_orders (sampled each second)",
                 limit <= 0 or most <= limit,
                 f"most {most} (limit {limit}) in {len(samples)} samples", {"most_open_on_venue": most})


def position_within(fills: list[tuple], limit: Decimal) -> Check:
    """fills: (ts, side, qty) in time order: the bot's position never above max_position."""
    pos, most = Decimal(0), Decimal(0)
    for _, side, qty in fills:
        pos += Decimal(qty) if side == "BUY" else -Decimal(qty)
        most = max(most, abs(pos))
    ok = limit <= 0 or most <= limit
    return Check("position never above max_position (store's fills)", ok, f"largest {most} (limit {limit})",
                 {"largest_position": str(most)})


def books_never_crossed(snapshots: list[tuple]) -> Check:
    """snapshots: (ts, best_bid, best_ask) of the node's books as stored: a desync the node did not
    detect shows as a crossed or locked book."""
    crossed = [(ts, b, a) for ts, b, a in snapshots if b and a and Decimal(b) >= Decimal(a)]
    return Check("no undetected book desync (no crossed stored book)", not crossed,
                 f"{len(crossed)} crossed of {len(snapshots)} snapshots" + (f", first {crossed[0]}" if crossed else ""),
                 {"book_snapshots": len(snapshots)})
