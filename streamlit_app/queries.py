"""The dashboard's queries that `abidance.store.reader.StoreReader` does not have (yet), and its
two writes (operator commands, config versions).

Each takes a StoreReader (for its client, database and `query()` -> DataFrame with exact
Decimals and UTC ns times) and binds every user value as a `{name:Type}` parameter.
Candidates to move into StoreReader once they settle.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import pandas as pd

from abidance.store.commands import COMMANDS, write_command  # noqa: F401 - COMMANDS for the pages
from abidance.store.reader import StoreReader, to_ns

TERMINAL = ("FILLED", "CANCELED", "REJECTED", "EXPIRED", "EXPIRED_IN_MATCH")


def _time(clauses: list[str], params: dict, column: str, start, end) -> None:
    if start is not None:
        clauses.append(f"{column} >= fromUnixTimestamp64Nano({{start_ns:Int64}}, 'UTC')")
        params["start_ns"] = to_ns(start)
    if end is not None:
        clauses.append(f"{column} < fromUnixTimestamp64Nano({{end_ns:Int64}}, 'UTC')")
        params["end_ns"] = to_ns(end)


def _where(clauses: list[str]) -> str:
    return (" WHERE " + " AND ".join(clauses)) if clauses else ""


# ---- market ---------------------------------------------------------------------------------

def bar_series(r: StoreReader) -> pd.DataFrame:
    """Every (symbol, interval) with bars: bars, first and last ts."""
    return r.query(f"SELECT symbol, interval, count() AS bars, min(ts) AS first_ts, max(ts) AS last_ts "
                   f"FROM {r.database}.bars GROUP BY symbol, interval ORDER BY symbol, interval")


def book_tops(r: StoreReader, symbol: str, start=None, end=None, limit: int = 5000) -> pd.DataFrame:
    """Top of book of one symbol, oldest first (the newest `limit` rows), with mid and spread in bps."""
    clauses, params = ["symbol = {symbol:String}"], {"symbol": symbol, "limit": int(limit)}
    _time(clauses, params, "ts", start, end)
    df = r.query(f"SELECT ts, bid_price, bid_qty, ask_price, ask_qty, update_id FROM {r.database}.book_tops"
                 f"{_where(clauses)} ORDER BY ts DESC LIMIT {{limit:UInt64}}", params)
    df = df.iloc[::-1].reset_index(drop=True)
    if len(df):
        bid = df["bid_price"].astype(float)
        ask = df["ask_price"].astype(float)
        df["mid"] = (bid + ask) / 2
        df["spread_bps"] = (ask - bid) / df["mid"] * 1e4
    return df


def book_symbols(r: StoreReader) -> list[str]:
    df = r.query(f"SELECT DISTINCT symbol FROM {r.database}.book_tops ORDER BY symbol")
    return list(df["symbol"])


def latest_depth(r: StoreReader, symbol: str) -> dict | None:
    """The newest depth snapshot of a symbol: {ts, bid_prices, bid_qtys, ask_prices, ask_qtys} or None."""
    df = r.query(f"SELECT ts, bid_prices, bid_qtys, ask_prices, ask_qtys FROM {r.database}.depth_snapshots "
                 "WHERE symbol = {symbol:String} ORDER BY ts DESC LIMIT 1", {"symbol": symbol})
    if not len(df):
        return None
    row = df.iloc[0]
    return {k: (list(row[k]) if k != "ts" else row[k]) for k in df.columns}


# ---- account --------------------------------------------------------------------------------

def equity_span(r: StoreReader) -> dict:
    """{rows, first_ts, last_ts} of the equity table (times as UTC Timestamps; None when empty)."""
    n, t0, t1 = r.client.query(f"SELECT count(), toUnixTimestamp64Nano(min(ts)), toUnixTimestamp64Nano(max(ts)) "
                               f"FROM {r.database}.equity").result_rows[0]
    if not n:
        return {"rows": 0, "first_ts": None, "last_ts": None}
    return {"rows": int(n), "first_ts": pd.Timestamp(int(t0), tz="UTC"), "last_ts": pd.Timestamp(int(t1), tz="UTC")}


def equity_sampled(r: StoreReader, start=None, end=None, max_points: int = 2000) -> pd.DataFrame:
    """The equity curve, at most ~max_points rows: every row when there are that few, otherwise the
    first row and then the last row of each of ~max_points equal time buckets (the curve's shape,
    its exact first and last values). The node writes a point every second: a month is 2.6M rows."""
    clauses, params = [], {}
    _time(clauses, params, "ts", start, end)
    w = _where(clauses)
    names = ["equity", "cash", "positions_value", "realized_pnl", "unrealized_pnl", "fees", "drawdown"]
    stats = r.client.query(f"SELECT count(), toUnixTimestamp64Nano(min(ts)), toUnixTimestamp64Nano(max(ts)) "
                           f"FROM {r.database}.equity{w}", parameters=params).result_rows[0]
    n, t0, t1 = int(stats[0]), stats[1], stats[2]
    if n <= max_points:
        return r.query(f"SELECT ts, {', '.join(names)} FROM {r.database}.equity{w} ORDER BY ts", params)
    bucket_ns = max(1, (int(t1) - int(t0)) // int(max_points) + 1)
    latest = ", ".join(f"argMax({c}, ts) AS last_{c}" for c in names)
    first = r.query(f"SELECT ts, {', '.join(names)} FROM {r.database}.equity{w} ORDER BY ts LIMIT 1", params)
    rest = r.query(
        f"SELECT max(ts) AS last_ts, {latest} FROM {r.database}.equity{w} "
        f"GROUP BY intDiv(toUnixTimestamp64Nano(ts) - {{t0:Int64}}, {{bucket:Int64}}) ORDER BY last_ts",
        {**params, "t0": int(t0), "bucket": bucket_ns}).rename(columns={f"last_{c}": c for c in ["ts", *names]})
    rest = rest[rest["ts"] > first["ts"].iloc[0]]
    return pd.concat([first, rest], ignore_index=True)


def max_drawdown(r: StoreReader, start=None, end=None) -> dict | None:
    """Exact over every equity row (a running peak in a window function): the largest fall as a share
    of its peak {fraction, amount (Decimal, that same fall)}; None without rows."""
    clauses, params = [], {}
    _time(clauses, params, "ts", start, end)
    rows = r.client.query(
        "SELECT count(), argMax(peak - equity, if(peak > 0, toFloat64(peak - equity) / toFloat64(peak), 0)), "
        "max(if(peak > 0, toFloat64(peak - equity) / toFloat64(peak), 0)) FROM ("
        "SELECT equity, max(equity) OVER (ORDER BY ts ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS peak "
        f"FROM {r.database}.equity{_where(clauses)})", parameters=params).result_rows[0]
    if not rows[0]:
        return None
    return {"fraction": float(rows[2]), "amount": Decimal(rows[1])}


def equity_change_since(r: StoreReader, since) -> Decimal | None:
    """Exact equity now minus equity at `since` (the last point before it, else the first after it);
    None without equity points."""
    t = r.database
    rows = r.client.query(
        f"SELECT (SELECT argMax(equity, ts) FROM {t}.equity), "
        f"(SELECT argMax(equity, ts) FROM {t}.equity WHERE ts < fromUnixTimestamp64Nano({{since:Int64}}, 'UTC')), "
        f"(SELECT count() FROM {t}.equity WHERE ts < fromUnixTimestamp64Nano({{since:Int64}}, 'UTC')), "
        f"(SELECT argMin(equity, ts) FROM {t}.equity), (SELECT count() FROM {t}.equity)",
        parameters={"since": to_ns(since)}).result_rows[0]
    last, before, n_before, first, n = rows
    if not n:
        return None
    return Decimal(last) - Decimal(before if n_before else first)


_ORDER_COLUMNS = ["strategy_id", "symbol", "side", "order_type", "status", "previous", "quantity", "filled", "price",
                  "order_id", "reason"]


def _latest_orders_sql(database: str, inner: str) -> str:
    # The latest event of each order wins (as StoreReader.orders). Inner aliases carry a prefix: an
    # alias equal to a column name (`max(ts) AS ts`) would shadow that column inside the other
    # aggregates, and ClickHouse refuses an aggregate inside an aggregate.
    latest = ", ".join(f"argMax({c}, (ts, filled, event_id)) AS last_{c}" for c in _ORDER_COLUMNS)
    outer = ", ".join(f"last_{c} AS {c}" for c in _ORDER_COLUMNS)
    return (f"SELECT client_order_id, created, last_ts AS ts, {outer}, events FROM ("
            f"SELECT client_order_id, min(ts) AS created, max(ts) AS last_ts, {latest}, count() AS events "
            f"FROM {database}.order_events{inner} GROUP BY client_order_id)")


def open_orders(r: StoreReader, limit: int = 1000) -> pd.DataFrame:
    """Orders whose latest state is not terminal (NEW, PARTIALLY_FILLED, PENDING_*), newest first."""
    return r.query(f"{_latest_orders_sql(r.database, '')} WHERE NOT has({{terminal:Array(String)}}, last_status) "
                   "ORDER BY ts DESC, client_order_id LIMIT {limit:UInt64}",
                   {"terminal": list(TERMINAL), "limit": int(limit)})


def filter_values(r: StoreReader) -> dict[str, list[str]]:
    """Values for the filters of the orders and trades page: symbols, strategies, statuses."""
    def distinct(col: str, table: str) -> list[str]:
        return list(r.query(f"SELECT DISTINCT {col} AS v FROM {r.database}.{table} ORDER BY v")["v"])

    return {"symbol": sorted(set(distinct("symbol", "order_events")) | set(distinct("symbol", "fills"))),
            "strategy": sorted(set(distinct("strategy_id", "order_events")) | set(distinct("strategy_id", "fills"))),
            "status": distinct("status", "order_events")}


def order_count_since(r: StoreReader, since) -> int:
    """Orders created since `since` (first event of each client order id)."""
    rows = r.client.query(
        f"SELECT count() FROM (SELECT client_order_id, min(ts) AS created FROM {r.database}.order_events "
        "GROUP BY client_order_id) WHERE created >= fromUnixTimestamp64Nano({since:Int64}, 'UTC')",
        parameters={"since": to_ns(since)}).result_rows
    return int(rows[0][0])


# ---- health ---------------------------------------------------------------------------------

def rejects(r: StoreReader, start=None, end=None, limit: int = 500) -> pd.DataFrame:
    """Order events with status REJECTED, newest first."""
    clauses, params = ["status = 'REJECTED'"], {"limit": int(limit)}
    _time(clauses, params, "ts", start, end)
    return r.query(f"SELECT ts, client_order_id, strategy_id, symbol, side, order_type, quantity, price, reason "
                   f"FROM {r.database}.order_events{_where(clauses)} ORDER BY ts DESC LIMIT {{limit:UInt64}}", params)


def reject_count_since(r: StoreReader, since) -> int:
    rows = r.client.query(f"SELECT count() FROM {r.database}.order_events WHERE status = 'REJECTED' "
                          "AND ts >= fromUnixTimestamp64Nano({since:Int64}, 'UTC')",
                          parameters={"since": to_ns(since)}).result_rows
    return int(rows[0][0])


def alerts(r: StoreReader, levels: tuple[str, ...] | None = None, codes: tuple[str, ...] | None = None,
           sources: tuple[str, ...] | None = None, start=None, end=None, limit: int = 500) -> pd.DataFrame:
    """Alerts newest first, filtered by any of several levels / codes / sources."""
    clauses, params = [], {"limit": int(limit)}
    for col, name, values in (("level", "levels", levels), ("code", "codes", codes), ("source", "sources", sources)):
        if values:
            clauses.append(f"has({{{name}:Array(String)}}, {col})")
            params[name] = list(values)
    _time(clauses, params, "ts", start, end)
    return r.query(f"SELECT ts, level, source, code, message FROM {r.database}.alerts{_where(clauses)} "
                   "ORDER BY ts DESC LIMIT {limit:UInt64}", params)


def alert_counts(r: StoreReader, start=None) -> pd.DataFrame:
    clauses, params = [], {}
    _time(clauses, params, "ts", start, None)
    return r.query(f"SELECT level, code, count() AS n, max(ts) AS last_ts FROM {r.database}.alerts"
                   f"{_where(clauses)} GROUP BY level, code ORDER BY n DESC", params)


# ---- config versions ------------------------------------------------------------------------

def config_versions(r: StoreReader, limit: int = 100) -> pd.DataFrame:
    """Stored config versions newest first: ts, version, author, comment, text."""
    return r.query(f"SELECT ts, version, author, comment, text FROM {r.database}.config_versions "
                   "ORDER BY version DESC, ts DESC LIMIT {limit:UInt64}", {"limit": int(limit)})


def latest_config(r: StoreReader) -> dict | None:
    df = config_versions(r, 1)
    if not len(df):
        return None
    row = df.iloc[0]
    return {"ts": row["ts"], "version": int(row["version"]), "author": row["author"], "comment": row["comment"],
            "text": row["text"]}


# ---- writes ---------------------------------------------------------------------------------

def _insert(r: StoreReader, table: str, columns: list[str], values: dict[str, tuple[str, Any]]) -> None:
    """INSERT ... SELECT with bound parameters: exact ns times, no client-side formatting."""
    exprs = ", ".join(f"{{{n}:{t}}}" if t != "ns" else f"fromUnixTimestamp64Nano({{{n}:Int64}}, 'UTC')"
                      for n, (t, _) in values.items())
    r.client.command(f"INSERT INTO {r.database}.{table} ({', '.join(columns)}) SELECT {exprs}",
                     parameters={n: v for n, (_, v) in values.items()})


def insert_command(r: StoreReader, command: str, reason: str, author: str = "dashboard") -> str:
    """One row in `commands` for the node to act on; returns its command_id (chat control writes the same)."""
    return write_command(r.client, r.database, command, reason, author)


def insert_config_version(r: StoreReader, text: str, comment: str = "", author: str = "dashboard") -> int:
    """A new row in `config_versions` numbered last + 1; returns the new version.

    Not atomic: two dashboards saving in the same instant could both pick the same number
    (both rows are kept; their ts orders them)."""
    rows = r.client.query(f"SELECT max(version) FROM {r.database}.config_versions").result_rows
    version = int(rows[0][0] or 0) + 1
    _insert(r, "config_versions", ["ts", "version", "author", "text", "comment"],
            {"ts": ("ns", time.time_ns()), "version": ("UInt32", version), "author": ("String", author),
             "text": ("String", text), "comment": ("String", comment)})
    return version
