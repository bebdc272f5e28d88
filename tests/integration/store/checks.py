"""Store checks shared by the served-store suite and the real-ClickHouse suite.

Each check takes a clickhouse-connect client and a database that already has the schema
(apply_migrations), so the same assertions run against `abidance store` (chdb behind the
HTTP front end) and against a ClickHouse server.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pyarrow as pa
import pytest
from clickhouse_connect.driver.exceptions import DatabaseError, ProgrammingError

from abidance.store import schema
from abidance.store.reader import StoreReader

T0 = 1_700_000_000_123_456_789          # ns, with a nanosecond part that microseconds would lose
MIN = 60_000_000_000


def arrow_type(ch: str) -> pa.DataType:
    if ch.startswith("DateTime64"):
        return pa.timestamp("ns", tz="UTC")
    m = re.fullmatch(r"Decimal\((\d+),\s*(\d+)\)", ch)
    if m:
        return pa.decimal128(int(m.group(1)), int(m.group(2)))
    if ch.startswith("Array("):
        return pa.list_(arrow_type(ch[6:-1]))
    if "String" in ch:
        return pa.string()
    return {"Int64": pa.int64(), "UInt32": pa.uint32(), "UInt64": pa.uint64(), "Float64": pa.float64(),
            "Bool": pa.bool_()}[ch]


def _default(ch: str):
    if ch.startswith("DateTime64"):
        return T0
    if ch.startswith("Decimal"):
        return Decimal(0)
    if ch.startswith("Array("):
        return []
    if "String" in ch:
        return ""
    return False if ch == "Bool" else 0


def arrow_rows(table: str, rows: list[dict]) -> pa.Table:
    """Rows (dicts; missing columns get a default) -> an Arrow table in the table's column types."""
    t = schema.BY_NAME[table]
    return pa.table({name: pa.array([r.get(name, _default(ch)) for r in rows], type=arrow_type(ch))
                     for name, ch in t.columns})


def insert_rows(client, db: str, table: str, rows: list[dict], token: str | None = None):
    settings = {"insert_deduplication_token": token} if token else None
    return client.insert_arrow(f"{db}.{table}", arrow_rows(table, rows), settings=settings)


def count(client, db: str, table: str, where: str = "1", parameters=None) -> int:
    return int(client.command(f"SELECT count() FROM {db}.{table} WHERE {where}", parameters=parameters))


# ---------------------------------------------------------------------------------------------

def check_roundtrip(client, db: str) -> None:
    """Decimal and DateTime64(9) values come back exactly, through insert_arrow, insert and insert_df."""
    import pandas as pd

    # 1. Arrow (the writer's path): nanoseconds and every decimal digit kept
    trades = [{"ts": T0 + i, "symbol": "RTUSDT", "trade_id": i, "price": Decimal("42000.12345678") + i,
               "qty": Decimal("0.00000001") * (i + 1), "buyer_is_maker": i % 2 == 0, "ts_init": T0 + 10 * i + 7}
              for i in range(5)]
    insert_rows(client, db, "trades", trades)
    back = client.query_arrow(f"SELECT * FROM {db}.trades WHERE symbol = {{s:String}} ORDER BY trade_id",
                              parameters={"s": "RTUSDT"})
    assert back.column("price").to_pylist() == [r["price"] for r in trades]
    assert back.column("qty").to_pylist() == [r["qty"] for r in trades]
    assert back.column("ts").cast(pa.int64()).to_pylist() == [r["ts"] for r in trades]
    assert back.column("ts_init").cast(pa.int64()).to_pylist() == [r["ts_init"] for r in trades]
    assert back.column("buyer_is_maker").to_pylist() == [r["buyer_is_maker"] for r in trades]

    # 2. clickhouse-connect's insert() of Python rows (Native format): Decimal and datetime exact
    ts = dt.datetime(2024, 3, 1, 12, 30, 45, 654321)
    cols = schema.BY_NAME["fills"].column_names
    values = {"ts": ts, "event_id": "rt-f1", "client_order_id": "rt-c1", "strategy_id": "rt", "symbol": "RTUSDT",
              "side": "BUY", "qty": Decimal("1.23456789"), "price": Decimal("99999.99999999"),
              "commission": Decimal("0.00012346"), "commission_asset": "BNB", "trade_id": 2 ** 40, "is_maker": True}
    client.insert(f"{db}.fills", [[values[c] for c in cols]], column_names=list(cols))
    row = client.query(f"SELECT * FROM {db}.fills WHERE event_id = {{e:String}}", parameters={"e": "rt-f1"}).named_results()
    row = list(row)
    assert len(row) == 1
    for c in cols:
        assert row[0][c] == values[c], c

    # 3. insert_df with datetime64[ns] and Decimal objects (money in Decimal(38, 18))
    eq_cols = schema.BY_NAME["equity"].column_names
    df = pd.DataFrame({c: [Decimal("0")] * 2 for c in eq_cols})
    df["ts"] = pd.to_datetime([T0, T0 + 1], unit="ns")
    df["event_id"] = ["rt-e1", "rt-e2"]
    df["equity"] = [Decimal("10000.123456789012345678"), Decimal("-0.000000000000000001")]
    client.insert_df(f"{db}.equity", df)
    back = client.query_arrow(f"SELECT ts, equity FROM {db}.equity WHERE startsWith(event_id, 'rt-') ORDER BY ts")
    assert back.column("ts").cast(pa.int64()).to_pylist() == [T0, T0 + 1]
    assert back.column("equity").to_pylist() == [Decimal("10000.123456789012345678"), Decimal("-0.000000000000000001")]


def check_parameters(client, db: str) -> None:
    """Bound parameters carry awkward strings exactly (never formatted into SQL)."""
    nasty = "it's a \"test\"\twith\ttabs\nnewlines \\ backslashes; DROP TABLE x; -- {braces}"
    assert client.query("SELECT {s:String}", parameters={"s": nasty}).result_rows == [(nasty,)]
    assert client.query("SELECT %(s)s", parameters={"s": nasty}).result_rows == [(nasty,)]
    got = client.query("SELECT {d:Decimal(38, 18)} * 2", parameters={"d": Decimal("1.000000000000000001")})
    assert got.result_rows == [(Decimal("2.000000000000000002"),)]


def check_dedup(client, db: str) -> None:
    """A batch sent again with the same insert_deduplication_token lands once."""
    rows = [{"ts": T0 + i, "event_id": f"dd-{i}", "level": "info", "source": "dedup", "code": "c",
             "message": f"m{i}"} for i in range(3)]
    insert_rows(client, db, "alerts", rows, token="dd-batch-1")
    insert_rows(client, db, "alerts", rows, token="dd-batch-1")          # replay: dropped
    assert count(client, db, "alerts", "source = 'dedup'") == 3
    # clickhouse-connect's Native insert() carries the token as well
    cols = schema.BY_NAME["alerts"].column_names
    more = [[T0 + 10, "dd-10", "warning", "dedup", "c", "native"]]
    for _ in range(2):
        client.insert(f"{db}.alerts", more, column_names=list(cols), settings={"insert_deduplication_token": "dd-2"})
    assert count(client, db, "alerts", "source = 'dedup'") == 4
    # the token is what decides: the same rows under a new token are a new batch
    insert_rows(client, db, "alerts", rows, token="dd-batch-3")
    assert count(client, db, "alerts", "source = 'dedup'") == 7
    # a token that looks like a number is still a token
    numeric = [dict(r, event_id=f"n-{r['event_id']}", message="numeric token") for r in rows]
    insert_rows(client, db, "alerts", numeric, token="424242")
    insert_rows(client, db, "alerts", numeric, token="424242")
    assert count(client, db, "alerts", "source = 'dedup'") == 10


def check_bad_rows(client, db: str, table_named: bool = True) -> None:
    """A row violating the schema is refused with its column (and table) named; nothing half-written."""
    good = arrow_rows("fills", [{"event_id": "bad-0", "symbol": "BADUSDT", "qty": Decimal(1)}])
    # a string where the table has a Decimal: refused by the store
    bad = good.set_column(good.schema.get_field_index("price"), "price", pa.array(["not a number"]))
    with pytest.raises(DatabaseError) as err:
        client.insert_arrow(f"{db}.fills", bad)
    assert "price" in str(err.value)
    if table_named:
        assert "fills" in str(err.value)
    # a column the table does not have: refused by the store, naming both
    with pytest.raises(DatabaseError) as err:
        client.raw_insert(f"{db}.fills", ["event_id", "no_such_column"], "x\ty\n", fmt="TabSeparated")
    assert "no_such_column" in str(err.value) and "fills" in str(err.value)
    # ... and by clickhouse-connect itself when it checks the columns first
    with pytest.raises(ProgrammingError) as err:
        client.insert(f"{db}.fills", [["x", "y"]], column_names=["event_id", "no_such_column"])
    assert "no_such_column" in str(err.value) and "fills" in str(err.value)
    assert count(client, db, "fills", "symbol = 'BADUSDT'") == 0
    # the store keeps serving, and the good row goes in
    assert client.command("SELECT 1") == 1
    client.insert_arrow(f"{db}.fills", good)
    assert count(client, db, "fills", "symbol = 'BADUSDT'") == 1


def check_errors(client, db: str) -> None:
    with pytest.raises(DatabaseError) as err:
        client.query(f"SELECT * FROM {db}.no_such_table")
    assert "no_such_table" in str(err.value)
    assert getattr(err.value, "code", None) in (60, "60")
    with pytest.raises(DatabaseError):
        client.command("SELEKT 1")
    assert client.command("SELECT 1") == 1


# ---------------------------------------------------------------------------------------------

def _ns(minute: int, extra: int = 0) -> int:
    return T0 + minute * MIN + extra


def seed_reader(client, db: str) -> None:
    F = "fills"
    insert_rows(client, db, F, [
        {"ts": _ns(1), "event_id": "f1", "client_order_id": "A", "strategy_id": "s1", "symbol": "BTCUSDT",
         "side": "BUY", "qty": Decimal(1), "price": Decimal(100), "commission": Decimal("0.1"),
         "commission_asset": "USDT", "trade_id": 1},
        {"ts": _ns(2), "event_id": "f2", "client_order_id": "A", "strategy_id": "s1", "symbol": "BTCUSDT",
         "side": "BUY", "qty": Decimal(1), "price": Decimal(110), "commission": Decimal("0.1"),
         "commission_asset": "USDT", "trade_id": 2},
        {"ts": _ns(3), "event_id": "f3", "client_order_id": "C", "strategy_id": "s3", "symbol": "BTCUSDT",
         "side": "BUY", "qty": Decimal("0.5"), "price": Decimal(100), "commission": Decimal("0.001"),
         "commission_asset": "BNB", "trade_id": 3},
        {"ts": _ns(4), "event_id": "f4", "client_order_id": "B", "strategy_id": "s1", "symbol": "BTCUSDT",
         "side": "SELL", "qty": Decimal(1), "price": Decimal(120), "commission": Decimal("0.12"),
         "commission_asset": "USDT", "trade_id": 4},
        {"ts": _ns(1), "event_id": "f5", "client_order_id": "E", "strategy_id": "s2", "symbol": "ETHUSDT",
         "side": "BUY", "qty": Decimal(2), "price": Decimal(10), "commission": Decimal("0.002"),
         "commission_asset": "ETH", "trade_id": 5},
        {"ts": _ns(2), "event_id": "f6", "client_order_id": "E2", "strategy_id": "s2", "symbol": "ETHUSDT",
         "side": "SELL", "qty": Decimal("1.998"), "price": Decimal(11), "commission": Decimal(0),
         "commission_asset": "USDT", "trade_id": 6},
    ])
    insert_rows(client, db, "positions", [
        {"ts": _ns(4), "event_id": "p1", "symbol": "BTCUSDT", "quantity": Decimal("1.5"),
         "realized_pnl": Decimal("15.68")},
        {"ts": _ns(2), "event_id": "p0", "symbol": "BTCUSDT", "quantity": Decimal(2), "realized_pnl": Decimal("-0.2")},
    ])
    insert_rows(client, db, "equity", [{"ts": _ns(m), "event_id": f"e{m}", "equity": Decimal(1000) + m}
                                       for m in range(5)])
    ev = lambda m, coid, status, filled, sym="BTCUSDT", strat="s1": {  # noqa: E731
        "ts": _ns(m), "event_id": f"{coid}-{m}", "client_order_id": coid, "strategy_id": strat, "symbol": sym,
        "side": "BUY", "order_type": "LIMIT", "status": status, "quantity": Decimal(2), "filled": Decimal(filled),
        "price": Decimal("100.5")}
    insert_rows(client, db, "order_events", [
        ev(1, "A", "NEW", 0), ev(2, "A", "PARTIALLY_FILLED", 1), ev(3, "A", "FILLED", 2),
        ev(2, "B", "NEW", 0), ev(4, "B", "CANCELED", 0),
        ev(5, "C", "NEW", 0, "ETHUSDT", "s2")])
    insert_rows(client, db, "bars", [
        {"ts": _ns(m), "symbol": "BTCUSDT", "interval": "1m", "close_time": _ns(m + 1, -1),
         "open": Decimal(100 + m), "high": Decimal(101 + m), "low": Decimal(99 + m), "close": Decimal("100.5") + m,
         "volume": Decimal("1.25"), "trades": 10 + m} for m in range(3)] + [
        {"ts": _ns(0), "symbol": "ETHUSDT", "interval": "1m", "close_time": _ns(1, -1), "close": Decimal(10)},
        {"ts": _ns(0), "symbol": "BTCUSDT", "interval": "5m", "close_time": _ns(5, -1), "close": Decimal(10)}])
    insert_rows(client, db, "trades", [
        {"ts": _ns(0, i * 1_000_000_000), "symbol": "BTCUSDT", "trade_id": i, "price": Decimal(100 + i),
         "qty": Decimal("0.5")} for i in range(90)] + [
        {"ts": _ns(0), "symbol": "ETHUSDT", "trade_id": 1, "price": Decimal(10), "qty": Decimal(1)}])
    insert_rows(client, db, "risk_decisions", [
        {"ts": _ns(m), "event_id": f"r{m}", "strategy_id": "s1", "symbol": "BTCUSDT", "side": "BUY",
         "accepted": m != 1, "reason": "ok" if m != 1 else "max_position", "quantity": Decimal(1)} for m in range(3)])
    insert_rows(client, db, "alerts", [
        {"ts": _ns(1), "event_id": "a1", "level": "warning", "source": "risk", "code": "drawdown", "message": "x"},
        {"ts": _ns(2), "event_id": "a2", "level": "error", "source": "binance.rest", "code": "ip_banned",
         "message": "y"}])
    insert_rows(client, db, "trading_state", [
        {"ts": _ns(1), "event_id": "t1", "state": "REDUCING", "previous": "ACTIVE", "reason": "op",
         "source": "operator:cmd1"},
        {"ts": _ns(2), "event_id": "t2", "state": "HALTED", "previous": "REDUCING",
         "reason": "stop now (by me, command cmd3)", "source": "kill_switch"}])
    insert_rows(client, db, "health", [
        {"ts": _ns(1), "event_id": "h1", "stream": "btcusdt@trade", "messages": 100, "rate_per_s": 10.0,
         "lag_ms_mean": 2.0, "lag_ms_max": 50.0, "reconnects": 0},
        {"ts": _ns(2), "event_id": "h2", "stream": "btcusdt@trade", "messages": 200, "rate_per_s": 12.5,
         "lag_ms_mean": 3.0, "lag_ms_max": 20.0, "reconnects": 1},
        {"ts": _ns(2), "event_id": "h3", "stream": "user", "messages": 3, "rate_per_s": 0.1}])
    insert_rows(client, db, "commands", [
        {"ts": _ns(0), "command_id": "cmd1", "command": "reduce", "reason": "r", "author": "me"},
        {"ts": _ns(3), "command_id": "cmd2", "command": "resume", "reason": "resume", "author": "me"},
        {"ts": _ns(1), "command_id": "cmd3", "command": "kill", "reason": "stop now", "author": "me"},
        {"ts": _ns(4), "command_id": "cmd4", "command": "reduce", "reason": "later", "author": "me"}])


def check_reader(client, db: str) -> None:
    seed_reader(client, db)
    r = StoreReader(client, db)
    utc = dt.timezone.utc
    t0 = dt.datetime.fromtimestamp(T0 // 1_000_000_000, utc)

    eq = r.equity_curve()
    assert list(eq["equity"]) == [Decimal(1000 + m) for m in range(5)]
    assert str(eq["ts"].dtype) == "datetime64[ns, UTC]" and int(eq["ts"].iloc[0].value) == T0
    assert len(r.equity_curve(start=_ns(1), end=_ns(3))) == 2
    assert len(r.equity_curve(start=t0 + dt.timedelta(minutes=4))) == 1

    by_strategy = r.pnl_by("strategy").set_index("strategy_id")
    assert by_strategy.loc["s1", "realized_pnl"] == Decimal("14.68")      # 120 - 105 - 0.12 - 0.2
    assert by_strategy.loc["s2", "realized_pnl"] == Decimal("1.978")      # base fee valued at the fill price
    assert by_strategy.loc["s3", "realized_pnl"] == 0 and by_strategy.loc["s3", "unpriced_fees"] == "0.001 BNB"
    assert by_strategy.loc["s1", "open_qty"] == 1 and by_strategy.loc["s1", "fills"] == 3
    by_symbol = r.pnl_by("symbol").set_index("symbol")
    assert by_symbol.loc["BTCUSDT", "realized_pnl"] == Decimal("15.68")
    assert by_symbol.loc["BTCUSDT", "portfolio_realized_pnl"] == Decimal("15.68")
    with pytest.raises(ValueError):
        r.pnl_by("venue")

    orders = r.orders()
    assert list(orders["client_order_id"]) == ["C", "B", "A"]
    assert dict(zip(orders["client_order_id"], orders["status"])) == {"A": "FILLED", "B": "CANCELED", "C": "NEW"}
    assert orders.set_index("client_order_id").loc["A", "filled"] == Decimal(2)
    assert list(r.orders(status="NEW")["client_order_id"]) == ["C"]
    assert list(r.orders(symbol="BTCUSDT", limit=1)["client_order_id"]) == ["B"]
    assert list(r.orders(strategy="s2")["client_order_id"]) == ["C"]
    assert len(r.order_events("A")) == 3

    fills = r.fills(symbol="BTCUSDT")
    assert list(fills["event_id"]) == ["f4", "f3", "f2", "f1"]
    assert list(r.fills(strategy="s2", limit=1)["event_id"]) == ["f6"]

    bars = r.bars("BTCUSDT", "1m")
    assert list(bars["close"]) == [Decimal("100.5"), Decimal("101.5"), Decimal("102.5")]
    assert list(r.bars("BTCUSDT", "1m", limit=2)["trades"]) == [11, 12]
    assert len(r.bars("BTCUSDT", "1m", start=_ns(1), end=_ns(2))) == 1

    trades = r.trades("BTCUSDT", limit=5)
    assert list(trades["trade_id"]) == [89, 88, 87, 86, 85]
    assert len(r.trades(start=_ns(0), end=_ns(0, 10 * 1_000_000_000))) == 11     # ETH's one + 10 BTC
    ohlcv = r.ohlcv("BTCUSDT", _ns(0), _ns(2))
    assert list(ohlcv["trades"]) == [sum(1 for i in range(90) if (T0 + i * 10**9) // MIN == k)
                                     for k in sorted({(T0 + i * 10**9) // MIN for i in range(90)})]
    assert ohlcv["volume"].sum() == Decimal(45)
    assert ohlcv["high"].max() == Decimal(189)

    rd = r.risk_decisions(accepted=False)
    assert list(rd["reason"]) == ["max_position"]
    assert len(r.risk_decisions(strategy="s1")) == 3

    al = r.alerts(level="error")
    assert list(al["code"]) == ["ip_banned"]
    assert list(r.alerts()["event_id"]) == ["a2", "a1"]

    st = r.latest_trading_state()
    assert st["state"] == "HALTED" and st["source"] == "kill_switch"

    hs = r.health_stats().set_index("stream")
    assert hs.loc["btcusdt@trade", "messages"] == 200 and hs.loc["btcusdt@trade", "lag_ms_max"] == 50.0
    assert hs.loc["btcusdt@trade", "records"] == 2 and hs.loc["btcusdt@trade", "age_s"] > 0

    assert list(r.pending_commands()["command_id"]) == ["cmd2", "cmd4"]
    assert list(r.pending_commands(since=_ns(4))["command_id"]) == ["cmd4"]

    counts = r.counts()
    assert set(counts) == {t.name for t in schema.TABLES}
    assert counts["fills"] == 6 and counts["order_events"] == 6 and counts["trades"] == 91
    assert counts["config_versions"] == 0
