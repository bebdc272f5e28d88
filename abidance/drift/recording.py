"""What the node recorded over a window, read back from the store, exactly.

Times come back as int ns (`toUnixTimestamp64Nano`: a Python datetime would cut them to
microseconds), prices, quantities and fees as Decimal. Every value is a bound parameter.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field, replace
from decimal import Decimal

from abidance.drift.orders import Denial, FillRecord, OrderRecord
from abidance.store.migrations import check_identifier

NODE_AUTHOR = "node"            # config_versions rows a node writes when it starts (abidance/runtime/config_record.py)
NS = "toUnixTimestamp64Nano(ts)"
WINDOW = " WHERE ts >= fromUnixTimestamp64Nano({t0:Int64}, 'UTC') AND ts < fromUnixTimestamp64Nano({t1:Int64}, 'UTC')"
ENDED = ("FILLED", "CANCELED", "EXPIRED", "REJECTED")


@dataclass
class Recording:
    start: int
    end: int
    bars: dict[tuple[str, str], list[tuple]] = field(default_factory=dict)  # (symbol, interval) -> rows
    trades: dict[str, list[tuple]] = field(default_factory=dict)    # symbol -> (ts, id, price, qty, maker, ts_init)
    orders: list[OrderRecord] = field(default_factory=list)                 # accepted decisions and manual orders
    denials: list[Denial] = field(default_factory=list)
    halts: list[tuple[int, int]] = field(default_factory=list)
    configs: list[tuple[int, int, str, str]] = field(default_factory=list)  # (ns, version, author, text), oldest first
    balances: dict[str, Decimal] = field(default_factory=dict)              # the last snapshot at or before start


class ExchangeClock:
    """The node's clock -> the exchange's, from the trades it received: a time is moved by the offset
    (trade time - receipt time) of the last trade received by then. On Binance the two differ by the
    network's latency; against the simulator at speed N the market clock runs N times faster, and
    the offset of the last trade is the best estimate between two trades."""

    def __init__(self, trades: dict[str, list[tuple]]):
        pairs = sorted((r[5], r[0] - r[5]) for rows in trades.values() for r in rows)
        self.received = [p[0] for p in pairs]
        self.offsets = [p[1] for p in pairs]

    def __call__(self, ts: int | None) -> int | None:
        if ts is None or not self.offsets:
            return ts
        i = bisect.bisect_right(self.received, ts)
        return ts + self.offsets[max(i - 1, 0)]

    def orders(self, rec: "Recording") -> None:
        """Decision and acknowledgement times of the recorded orders and denials, on the exchange's clock."""
        for o in rec.orders:
            o.decided, o.acked = self(o.decided), self(o.acked)
        rec.denials = [replace(d, decided=self(d.decided)) for d in rec.denials]
        rec.halts = [(self(a), self(b)) for a, b in rec.halts]
        rec.configs = [(self(c[0]), *c[1:]) for c in rec.configs]


class StoreSource:
    def __init__(self, client, database: str):
        self.client = client
        self.db = check_identifier(database)

    def rows(self, sql: str, **params) -> list[tuple]:
        return list(self.client.query(sql.replace("{db}", self.db), parameters=params).result_rows)

    def window(self, table: str, columns: str, t0: int, t1: int, order: str = "ts", extra: str = "",
               **params) -> list[tuple]:
        return self.rows(f"SELECT {NS}, {columns} FROM {{db}}.{table}{WINDOW}{extra} ORDER BY {order}",
                         t0=t0, t1=t1, **params)


def load(client, database: str, start: int, end: int, strategy: str | None = None) -> Recording:
    src = StoreSource(client, database)
    rec = Recording(start, end)
    for ts, sym, iv, close, o, h, lo, c, v, n in src.window(
            "bars", "symbol, interval, toUnixTimestamp64Nano(close_time), open, high, low, close, volume, trades",
            start, end, "symbol, interval, ts"):
        rec.bars.setdefault((sym, iv), []).append((ts, close, o, h, lo, c, v, n))
    # Trades by when the node received them (its clock, as its orders'); the exchange's time may differ.
    received = "if(toUnixTimestamp64Nano(ts_init) > 0, ts_init, ts)"
    for ts, sym, tid, price, qty, maker, ts_init in src.rows(
            f"SELECT {NS}, symbol, trade_id, price, qty, buyer_is_maker, toUnixTimestamp64Nano({received}) "
            f"FROM {{db}}.trades WHERE {received} >= fromUnixTimestamp64Nano({{t0:Int64}}, 'UTC') "
            f"AND {received} < fromUnixTimestamp64Nano({{t1:Int64}}, 'UTC')"
            " ORDER BY symbol, ts, trade_id", t0=start, t1=end):
        rec.trades.setdefault(sym, []).append((ts, tid, price, qty, maker, ts_init))
    _orders(src, rec, strategy)
    rec.halts = _halts(src, start, end)
    rec.configs = src.rows(f"SELECT {NS}, version, author, text FROM {{db}}.config_versions "
                           "WHERE ts < fromUnixTimestamp64Nano({t1:Int64}, 'UTC') ORDER BY ts", t1=end)
    rec.balances = _balances(src, start, end)
    return rec


def _orders(src: StoreSource, rec: Recording, strategy: str | None) -> None:
    only = " AND strategy_id = {sid:String}" if strategy is not None else ""
    params = {"sid": strategy} if strategy is not None else {}
    by_cid: dict[str, OrderRecord] = {}
    for ts, sid, sym, side, accepted, reason, qty, cid in src.window(
            "risk_decisions", "strategy_id, symbol, side, accepted, reason, quantity, client_order_id",
            rec.start, rec.end, extra=only, **params):
        if accepted and cid:
            by_cid[cid] = OrderRecord(sid, sym, side, ts, qty, cid)
        else:
            rec.denials.append(Denial(sid, sym, side, ts, reason))
    # Every order event of the window; an order without a decision was placed by hand (manual).
    for ts, cid, sid, sym, side, status, qty, kind in src.window(
            "order_events", "client_order_id, strategy_id, symbol, side, status, quantity, order_type", rec.start,
            rec.end, "ts, client_order_id", extra=only, **params):
        o = by_cid.get(cid)
        if o is None:
            o = by_cid[cid] = OrderRecord(sid, sym, side, ts, qty, cid, manual=True)
        o.order_type = kind
        if status == "NEW" and o.acked is None:
            o.acked = ts
        if status not in ("PENDING_NEW", "PENDING_CANCEL") and o.status not in ENDED:
            o.status = status
    # Fills by order (their time is the exchange's, which may run on another clock than the node's).
    for ts, cid, qty, price, fee, asset, maker, tid in src.rows(
            f"SELECT {NS}, client_order_id, qty, price, commission, commission_asset, is_maker, trade_id "
            "FROM {db}.fills "
            "WHERE client_order_id IN {cids:Array(String)} ORDER BY ts, trade_id", cids=list(by_cid)):
        o = by_cid.get(cid)
        if o is not None:
            o.fills.append(FillRecord(qty, price, fee, asset, bool(maker), ts, tid))
    rec.orders = sorted(by_cid.values(), key=lambda o: o.decided)


def _halts(src: StoreSource, start: int, end: int) -> list[tuple[int, int]]:
    """Spans the node was not ACTIVE (REDUCING or HALTED) (from its trading_state rows)."""
    rows = src.rows(f"SELECT {NS}, state FROM {{db}}.trading_state "
                    "WHERE ts < fromUnixTimestamp64Nano({t1:Int64}, 'UTC') ORDER BY ts", t1=end)
    spans, since = [], None
    for ts, state in rows:
        if state != "ACTIVE" and since is None:
            since = ts
        elif state == "ACTIVE" and since is not None:
            spans.append((since, ts))
            since = None
    if since is not None:
        spans.append((since, end))
    return [(a, b) for a, b in spans if b > start]


def _balances(src: StoreSource, start: int, end: int) -> dict[str, Decimal]:
    """Free + locked per asset from the last full snapshot (or reconciliation) at or before `start`,
    else the first one in the window (the node started inside it)."""
    rows = src.rows(f"SELECT {NS}, asset, free + locked FROM {{db}}.balances "
                    "WHERE ts < fromUnixTimestamp64Nano({t1:Int64}, 'UTC') AND source != 'delta' "
                    "AND source != 'update' ORDER BY ts", t1=end)
    before = [r for r in rows if r[0] <= start]
    if not rows:
        return {}
    when = before[-1][0] if before else rows[0][0]
    return {asset: amount for ts, asset, amount in rows if ts == when}
