"""The store: ingest rates and a dashboard query over 10M trades, each beside SQLite in the same run.

Targets (issue 6):
- ingest into the embedded store (chdb directly, 100k-row Arrow batches of trades rows)
  >= 1M rows/s; the served path (clickhouse-connect insert_arrow -> `abidance store` in
  another process, as the bot writes) is reported without a target. Baseline: SQLite
  (stdlib sqlite3, executemany in one transaction) with the same rows.
- a dashboard query over 10M trades <= 200 ms: per-minute OHLCV + volume of one symbol
  over one day, through the served store and StoreReader (what the dashboard runs),
  beside SQLite with an index on (symbol, ts) over the same 10M rows. A second one: the
  last 100 trades of a symbol in a time window.

With --benchmark-disable (CI) every figure is a one-pass smoke check on small row counts.
The 10M rows are generated inside each database (`INSERT ... SELECT FROM numbers()` for
chdb, a recursive CTE for SQLite) from the same integer formulas.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

pytest.importorskip("chdb")
pytest.importorskip("clickhouse_connect")

from abidance.store import schema  # noqa: E402
from abidance.store.client import connect  # noqa: E402
from abidance.store.migrations import apply_migrations  # noqa: E402
from abidance.store.reader import StoreReader  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BASE_NS = 1_767_225_600 * 10**9             # 2026-01-01 UTC
DAY_NS = 86_400 * 10**9
SPAN_DAYS = 10
SYMBOLS = [f"S{i}USDT" for i in range(10)]
COLS = list(schema.BY_NAME["trades"].column_names)


def _full(request) -> bool:
    return not request.config.getoption("benchmark_disable", False)


def _scale(col: str) -> int:
    m = re.search(r"Decimal\(\d+,\s*(\d+)\)", dict(schema.BY_NAME["trades"].columns)[col])
    return int(m.group(1))


def _dec_e8(ints: np.ndarray, scale: int) -> pa.Array:
    """int64 values x 1e8 -> decimal128 (exact, vectorised), rescaled to the column's scale."""
    words = np.empty(2 * len(ints), dtype=np.int64)
    words[0::2] = ints
    words[1::2] = -(ints < 0).astype(np.int64)
    arr = pa.Array.from_buffers(pa.decimal128(38, 8), len(ints), [None, pa.py_buffer(words)])
    return arr if scale == 8 else arr.cast(pa.decimal128(38, scale))


def trade_columns(start: int, n: int) -> dict[str, np.ndarray]:
    """Rows start..start+n of the synthetic trades, as integer columns (the same formulas as the SQL)."""
    i = np.arange(start, start + n, dtype=np.int64)
    return {"ts": BASE_NS + i * 86_400_000, "symbol": i % 10, "trade_id": i,
            "price_e8": 2_000_000_000_000 + (i * 7919) % 100_000_000_000, "qty_e8": (i * 104729) % 100_000_000 + 1,
            "maker": (i % 3) == 0}


def arrow_batch(start: int, n: int) -> pa.Table:
    c = trade_columns(start, n)
    ts = pa.array(c["ts"], pa.timestamp("ns", tz="UTC"))
    return pa.table({"ts": ts, "symbol": pa.DictionaryArray.from_arrays(pa.array(c["symbol"].astype(np.int32)),
                                                                         pa.array(SYMBOLS)).cast(pa.string()),
                     "trade_id": pa.array(c["trade_id"]), "price": _dec_e8(c["price_e8"], _scale("price")),
                     "qty": _dec_e8(c["qty_e8"], _scale("qty")), "buyer_is_maker": pa.array(c["maker"]),
                     "ts_init": ts}).select(COLS)


def sqlite_rows(start: int, n: int) -> list[tuple]:
    c = trade_columns(start, n)
    sym = [SYMBOLS[s] for s in c["symbol"].tolist()]
    return list(zip(c["ts"].tolist(), sym, c["trade_id"].tolist(), c["price_e8"].tolist(), c["qty_e8"].tolist(),
                    c["maker"].astype(int).tolist(), c["ts"].tolist()))


SQLITE_DDL = ("CREATE TABLE trades (ts INTEGER NOT NULL, symbol TEXT NOT NULL, trade_id INTEGER NOT NULL, "
              "price_e8 INTEGER NOT NULL, qty_e8 INTEGER NOT NULL, buyer_is_maker INTEGER NOT NULL, "
              "ts_init INTEGER NOT NULL)")


def ipc_file(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.RecordBatchFileWriter(sink, table.schema) as w:
        w.write(table)
    return sink.getvalue().to_pybytes()


# -- the served store, in its own process (as the bot and the dashboard see it) ---------------

def _cli() -> list[str]:
    from abidance.cli import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    if "store" in sub.choices:
        return [sys.executable, "-m", "abidance.cli", "store"]
    return [sys.executable, "-c", "import argparse, sys; from abidance.store import cli; "
            "p = argparse.ArgumentParser(prog='abidance'); cli.add_parser(p.add_subparsers()); "
            "a = p.parse_args(sys.argv[1:]); sys.exit(a.func(a))", "store"]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    data = tmp_path_factory.mktemp("bench-store") / "data"
    proc = subprocess.Popen(_cli() + ["--data-dir", str(data), "--port", "0", "--log-level", "WARNING"],
                            stdout=subprocess.PIPE, text=True, cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    line = proc.stdout.readline()
    assert line.startswith("abidance store ready: "), line
    url = line.split("ready: ", 1)[1].split(" ", 1)[0]
    yield url
    proc.send_signal(signal.SIGTERM)
    proc.wait(30)


# -- (a) ingest --------------------------------------------------------------------------------

def _ingest_sizes(request) -> tuple[int, int]:
    return (20, 100_000) if _full(request) else (2, 10_000)


def _sqlite_ingest_rate(path: Path, batches: int, n: int) -> float:
    rows = [sqlite_rows(b * n, n) for b in range(batches)]
    db = sqlite3.connect(path)
    db.execute(SQLITE_DDL)
    t0 = time.perf_counter()
    with db:                                           # one transaction
        for r in rows:
            db.executemany("INSERT INTO trades VALUES (?, ?, ?, ?, ?, ?, ?)", r)
    rate = batches * n / (time.perf_counter() - t0)
    assert db.execute("SELECT count(*) FROM trades").fetchone()[0] == batches * n
    db.close()
    return rate


def test_ingest_embedded_chdb(benchmark, report, tmp_path, request):
    from chdb import session as chdb_session

    batches, n = _ingest_sizes(request)
    tables = [arrow_batch(b * n, n) for b in range(batches)]
    s = chdb_session.Session(str(tmp_path / "chdb"))
    try:
        apply_migrations(lambda q: s.query(q, "TabSeparated"), "abidance")
        insert = f"INSERT INTO abidance.trades ({', '.join(COLS)})"
        t0 = time.perf_counter()
        for t in tables:
            ins = s.send_insert(insert, "Arrow")
            ins.append(ipc_file(t))
            ins.finish()
        rate = batches * n / (time.perf_counter() - t0)
        assert s.query("SELECT count() FROM abidance.trades", "TabSeparated").bytes().strip() == str(batches * n).encode()
    finally:
        s.close()
    base = _sqlite_ingest_rate(tmp_path / "base.sqlite", batches, n)
    benchmark.extra_info.update(rows=batches * n, batch_rows=n)
    report(f"store ingest, embedded chdb ({n // 1000}k-row Arrow batches of trades)", rate, "rows/s",
           target=1_000_000, target_kind="min", baseline=("SQLite executemany, one transaction", base),
           benchmark=benchmark)
    benchmark.pedantic(lambda: None, rounds=1)


def test_ingest_served_path(benchmark, report, served, tmp_path, request):
    batches, n = _ingest_sizes(request)
    tables = [arrow_batch(b * n, n) for b in range(batches)]
    client = connect(served, database="default")
    try:
        apply_migrations(client.command, "bench_ingest")
        t0 = time.perf_counter()
        for b, t in enumerate(tables):
            client.insert_arrow("bench_ingest.trades", t, settings={"insert_deduplication_token": f"ingest-{b}"})
        rate = batches * n / (time.perf_counter() - t0)
        assert client.command("SELECT count() FROM bench_ingest.trades") == batches * n
    finally:
        client.close()
    base = _sqlite_ingest_rate(tmp_path / "base.sqlite", batches, n)
    benchmark.extra_info.update(rows=batches * n, batch_rows=n)
    report(f"store ingest, served (clickhouse-connect insert_arrow -> abidance store, {n // 1000}k-row batches)",
           rate, "rows/s", target_kind="min", baseline=("SQLite executemany, one transaction", base),
           benchmark=benchmark)
    benchmark.pedantic(lambda: None, rounds=1)


# -- (b) dashboard queries over 10M trades -----------------------------------------------------

@pytest.fixture(scope="module")
def dataset(request, served, tmp_path_factory):
    """N trades in the served store (database abidance) and in SQLite, from the same formulas."""
    n = 10_000_000 if _full(request) else 100_000
    step = SPAN_DAYS * DAY_NS // n
    client = connect(served)
    sym = "arrayElement([" + ", ".join(f"'{s}'" for s in SYMBOLS) + "], toUInt32(number % 10) + 1)"
    t0 = time.perf_counter()
    client.command(
        f"INSERT INTO abidance.trades ({', '.join(COLS)}) SELECT "
        f"fromUnixTimestamp64Nano(toInt64({BASE_NS} + number * {step}), 'UTC') AS ts, {sym}, toInt64(number), "
        f"CAST(2000000000000 + (number * 7919) % 100000000000 AS Decimal(38, 8)) / 100000000, "
        f"CAST((number * 104729) % 100000000 + 1 AS Decimal(38, 8)) / 100000000, number % 3 = 0, ts "
        f"FROM numbers({n})", settings={"max_partitions_per_insert_block": 1000})
    client.command("OPTIMIZE TABLE abidance.trades FINAL")
    chdb_build = time.perf_counter() - t0
    assert client.command("SELECT count() FROM abidance.trades") == n

    path = tmp_path_factory.mktemp("bench-sqlite") / "trades.sqlite"
    db = sqlite3.connect(path)
    db.execute(SQLITE_DDL)
    t0 = time.perf_counter()
    with db:
        db.execute(
            f"WITH RECURSIVE k(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM k WHERE i < {n - 1}) "
            f"INSERT INTO trades SELECT {BASE_NS} + i * {step}, 'S' || (i % 10) || 'USDT', i, "
            f"2000000000000 + (i * 7919) % 100000000000, (i * 104729) % 100000000 + 1, i % 3 = 0, "
            f"{BASE_NS} + i * {step} FROM k")
        db.execute("CREATE INDEX trades_symbol_ts ON trades (symbol, ts)")
    db.execute("ANALYZE")
    sqlite_build = time.perf_counter() - t0
    yield {"n": n, "client": client, "sqlite": db, "build_s": (chdb_build, sqlite_build)}
    db.close()
    client.close()


SQLITE_OHLCV = """
SELECT g.m, o.price_e8, g.hi, g.lo, c.price_e8, g.vol, g.n FROM (
    SELECT ts / 60000000000 AS m, min(ts) AS t0, max(ts) AS t1, max(price_e8) AS hi, min(price_e8) AS lo,
           sum(qty_e8) AS vol, count(*) AS n
    FROM trades WHERE symbol = ? AND ts >= ? AND ts < ? GROUP BY m) AS g
JOIN trades AS o ON o.symbol = ? AND o.ts = g.t0
JOIN trades AS c ON c.symbol = ? AND c.ts = g.t1
ORDER BY g.m
"""


def _median_ms(fn, rounds: int) -> float:
    fn()
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter_ns()
        fn()
        times.append(time.perf_counter_ns() - t0)
    return statistics.median(times) / 1e6


def test_dashboard_ohlcv_over_10m_trades(benchmark, report, measure, dataset, request):
    reader = StoreReader(dataset["client"])
    day_start, day_end = BASE_NS + 3 * DAY_NS, BASE_NS + 4 * DAY_NS
    ours = reader.ohlcv("S3USDT", day_start, day_end)
    sq = dataset["sqlite"]
    args = ("S3USDT", day_start, day_end, "S3USDT", "S3USDT")
    theirs = sq.execute(SQLITE_OHLCV, args).fetchall()
    # the same answer from both (SQLite's prices are the same values x 1e8)
    assert len(ours) == len(theirs) == (1440 if dataset["n"] >= 10_000_000 else len(theirs)) and len(ours) > 0
    assert int(ours["trades"].sum()) == sum(r[6] for r in theirs)
    assert [int(v * 10**8) for v in ours["close"]] == [r[4] for r in theirs]
    assert [int(v * 10**8) for v in ours["volume"]] == [r[5] for r in theirs]
    rounds = 15 if _full(request) else 1
    ms = measure(benchmark, lambda: reader.ohlcv("S3USDT", day_start, day_end), rounds=rounds) / 1e6
    if benchmark.disabled:
        benchmark.pedantic(lambda: None, rounds=1)
    base = _median_ms(lambda: sq.execute(SQLITE_OHLCV, args).fetchall(), rounds)
    chdb_build, sqlite_build = dataset["build_s"]
    benchmark.extra_info.update(rows=dataset["n"], minutes=len(ours), chdb_build_s=chdb_build,
                                sqlite_build_s=sqlite_build)
    report(f"dashboard query: 1-minute OHLCV of one symbol over one day, {dataset['n'] / 1e6:g}M trades "
           "(served store, StoreReader.ohlcv -> DataFrame)", ms, "ms", target=200,
           baseline=("SQLite, index on (symbol, ts)", base), benchmark=benchmark)


def test_dashboard_last_trades_over_10m_trades(benchmark, report, measure, dataset, request):
    reader = StoreReader(dataset["client"])
    start, end = BASE_NS + 5 * DAY_NS, BASE_NS + 5 * DAY_NS + 3_600 * 10**9
    ours = reader.trades("S7USDT", start, end, limit=100)
    sq = dataset["sqlite"]
    sql = "SELECT * FROM trades WHERE symbol = ? AND ts >= ? AND ts < ? ORDER BY ts DESC LIMIT 100"
    theirs = sq.execute(sql, ("S7USDT", start, end)).fetchall()
    assert list(ours["trade_id"]) == [r[2] for r in theirs] and len(theirs) > 0
    rounds = 30 if _full(request) else 1
    ms = measure(benchmark, lambda: reader.trades("S7USDT", start, end, limit=100), rounds=rounds) / 1e6
    if benchmark.disabled:
        benchmark.pedantic(lambda: None, rounds=1)
    base = _median_ms(lambda: sq.execute(sql, ("S7USDT", start, end)).fetchall(), rounds)
    report(f"dashboard query: last 100 trades of one symbol in a 1-hour window, {dataset['n'] / 1e6:g}M trades "
           "(served store, StoreReader.trades)", ms, "ms", target=200,
           baseline=("SQLite, index on (symbol, ts)", base), benchmark=benchmark)
