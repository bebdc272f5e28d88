"""Migrations on a real chdb store: fresh, again (idempotent), every table and column, TTLs."""

from __future__ import annotations

import re

import pytest

pytest.importorskip("chdb")

from abidance.store import schema  # noqa: E402
from abidance.store.migrations import MIGRATIONS, applied_versions, apply_migrations, market_ttl  # noqa: E402
from abidance.store.migrations import MIGRATIONS

ALL_VERSIONS = [m.version for m in MIGRATIONS]


@pytest.fixture
def chdb_sql(tmp_path):
    """run_sql on a fresh chdb directory (closed after the test: one chdb path per process at a time)."""
    from chdb import session as chdb_session

    s = chdb_session.Session(str(tmp_path / "store"))
    yield lambda sql: s.query(sql, "TabSeparated")
    s.close()


def _rows(run_sql, sql: str) -> list[list[str]]:
    text = run_sql(sql).bytes().decode()
    return [line.split("\t") for line in text.splitlines() if line]


def _norm(t: str) -> str:
    return re.sub(r"\s+", "", t)


def test_fresh_then_idempotent(chdb_sql):
    latest = [m.version for m in MIGRATIONS]
    assert apply_migrations(chdb_sql, "abidance", 0) == latest
    assert apply_migrations(chdb_sql, "abidance", 0) == []
    assert apply_migrations(chdb_sql, "abidance", 0) == []
    assert applied_versions(chdb_sql, "abidance") == latest
    recorded = _rows(chdb_sql, "SELECT version, description, applied_at > now() - INTERVAL 1 HOUR "
                               "FROM abidance.schema_migrations FINAL ORDER BY version")
    assert [int(v) for v, _, _ in recorded] == latest
    assert all(desc and fresh == "1" for _, desc, fresh in recorded)


def test_every_table_and_column(chdb_sql):
    apply_migrations(chdb_sql, "abidance")
    cols = _rows(chdb_sql, "SELECT table, name, type FROM system.columns WHERE database = 'abidance' "
                           "ORDER BY table, position FORMAT TSVRaw")
    have: dict[str, list[tuple[str, str]]] = {}
    for table, name, typ in cols:
        have.setdefault(table, []).append((name, _norm(typ)))
    assert set(have) == {t.name for t in schema.TABLES} | {"schema_migrations"}
    for t in schema.TABLES:
        assert have[t.name] == [(c, _norm(ty)) for c, ty in t.columns], t.name
    engines = dict(_rows(chdb_sql, "SELECT name, engine_full FROM system.tables WHERE database = 'abidance'"))
    for t in schema.TABLES:
        assert engines[t.name].startswith("MergeTree"), t.name
        assert f"non_replicated_deduplication_window = {schema.DEDUP_WINDOW}" in engines[t.name]
        assert f"ORDER BY ({t.order_by})" in engines[t.name]
        assert " TTL " not in engines[t.name]        # market_ttl_days=0: keep everything


def test_market_ttl_set_changed_and_removed(chdb_sql):
    market = {t.name for t in schema.TABLES if t.market_data}
    assert market == {"trades", "bars", "book_tops", "depth_snapshots"}
    apply_migrations(chdb_sql, "abidance", market_ttl_days=7)
    engines = dict(_rows(chdb_sql, "SELECT name, engine_full FROM system.tables WHERE database = 'abidance'"))
    for t in schema.TABLES:
        assert ("TTL toDateTime(ts) + toIntervalDay(7)" in engines[t.name]) == (t.name in market), t.name
    assert market_ttl(chdb_sql, "abidance") == {name: 7 for name in market}
    # a new setting at the next start alters only the market tables, no new migration
    assert apply_migrations(chdb_sql, "abidance", market_ttl_days=30) == []
    assert market_ttl(chdb_sql, "abidance") == {name: 30 for name in market}
    apply_migrations(chdb_sql, "abidance", market_ttl_days=0)
    assert market_ttl(chdb_sql, "abidance") == {name: 0 for name in market}


def test_rows_expire_after_ttl(chdb_sql):
    apply_migrations(chdb_sql, "abidance", market_ttl_days=1)
    chdb_sql("INSERT INTO abidance.trades (ts, symbol, trade_id, price, qty, buyer_is_maker, ts_init) VALUES "
             "(now64(9) - INTERVAL 3 DAY, 'OLD', 1, 1, 1, 0, now64(9)), (now64(9), 'NEW', 2, 1, 1, 0, now64(9))")
    chdb_sql("OPTIMIZE TABLE abidance.trades FINAL")
    assert _rows(chdb_sql, "SELECT symbol FROM abidance.trades") == [["NEW"]]


def test_two_databases_and_bad_names(chdb_sql):
    assert apply_migrations(chdb_sql, "research") == ALL_VERSIONS
    assert apply_migrations(chdb_sql, "abidance") == ALL_VERSIONS
    for bad in ("x; DROP DATABASE abidance", "a-b", "", "1abc"):
        with pytest.raises(ValueError):
            apply_migrations(chdb_sql, bad)
    with pytest.raises(ValueError):
        apply_migrations(chdb_sql, "abidance", market_ttl_days=-1)


def test_through_clickhouse_connect_chdb_mode(tmp_path):
    """The same migrations through a clickhouse-connect client's command() (here its in-process chdb
    mode, `connect("chdb:///dir")`; a ClickHouse server takes the same calls)."""
    pytest.importorskip("clickhouse_connect")
    from abidance.store.client import connect
    from abidance.store.reader import StoreReader

    client = connect(f"chdb://{tmp_path / 'cc'}", database="default")
    try:
        assert apply_migrations(client.command, "abidance", market_ttl_days=2) == ALL_VERSIONS
        assert apply_migrations(client.command, "abidance", market_ttl_days=2) == []
        assert applied_versions(client.command, "abidance") == ALL_VERSIONS
        assert market_ttl(client.command, "abidance") == {t.name: 2 for t in schema.TABLES if t.market_data}
        counts = StoreReader(client, "abidance").counts()
        assert counts == {t.name: 0 for t in schema.TABLES}
    finally:
        client.close()


def test_migration_3_gives_an_older_positions_table_its_strategy_column(chdb_sql):
    """A store made before positions were kept per strategy: its rows read as strategy ''."""
    apply_migrations(chdb_sql, "older")
    chdb_sql("DROP TABLE older.positions")
    chdb_sql("CREATE TABLE older.positions (ts DateTime64(9, 'UTC'), event_id String, symbol LowCardinality(String), "
             "quantity Decimal(38, 18), avg_price Decimal(38, 18), realized_pnl Decimal(38, 18), "
             "unrealized_pnl Decimal(38, 18)) ENGINE = MergeTree ORDER BY (ts, symbol)")
    chdb_sql("INSERT INTO older.positions VALUES (now64(9), 'e1', 'BTCUSDT', 1, 2, 3, 0)")
    chdb_sql("ALTER TABLE older.schema_migrations DELETE WHERE version = 3")
    assert apply_migrations(chdb_sql, "older") == [3]
    assert _rows(chdb_sql, "SELECT strategy_id, symbol FROM older.positions") == [["", "BTCUSDT"]]
    cols = [c for c, in _rows(chdb_sql, "SELECT name FROM system.columns WHERE database = 'older' "
                                        "AND table = 'positions' ORDER BY position")]
    assert cols == [c for c, _ in schema.BY_NAME["positions"].columns]
