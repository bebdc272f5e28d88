"""The store's DDL on one server (unchanged) and on a ClickHouse cluster (`store.cluster`): replicated
local tables of the same engine family, Distributed tables of the node's names over them, TTLs
and added columns where the data is, a deterministic sharding key."""

from __future__ import annotations

import re

import pytest

from abidance.store import schema
from abidance.store.cluster import Layout, check_cluster, client_settings
from abidance.store.migrations import MIGRATIONS, apply_migrations, fresh_statements, market_ttl

ON = " ON CLUSTER 'prod'"

# The single-server DDL of one table, as every store so far was created: it must not change.
TRADES_SINGLE = """CREATE TABLE IF NOT EXISTS abidance.trades (
    `ts` DateTime64(9, 'UTC'),
    `symbol` LowCardinality(String),
    `trade_id` Int64,
    `price` Decimal(38, 8),
    `qty` Decimal(38, 8),
    `buyer_is_maker` Bool,
    `ts_init` DateTime64(9, 'UTC')
) ENGINE = MergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (symbol, ts, trade_id)
TTL toDateTime(ts) + INTERVAL 7 DAY
SETTINGS non_replicated_deduplication_window = 10000"""


def _creates(statements: list[str]) -> dict[str, str]:
    out = {}
    for sql in statements:
        m = re.match(r"CREATE TABLE IF NOT EXISTS abidance\.(\w+)", sql)
        if m:
            out.setdefault(m.group(1), sql)
    return out


def test_one_server_gets_the_statements_it_always_had():
    sql = fresh_statements("abidance", 7)
    assert sql[0] == "CREATE DATABASE IF NOT EXISTS abidance"
    assert _creates(sql)["trades"] == TRADES_SINGLE
    assert not any("ON CLUSTER" in s or "Replicated" in s or "Distributed" in s or "_local" in s for s in sql)
    assert "ENGINE = ReplacingMergeTree ORDER BY version" in _creates(sql)["schema_migrations"]
    assert Layout("abidance").set_ttl("trades", 0) == "ALTER TABLE abidance.trades REMOVE TTL"


def test_cluster_tables_are_replicated_locals_behind_distributed_tables_of_the_same_names():
    sql = fresh_statements("abidance", 7, "prod")
    creates = _creates(sql)
    assert sql[0] == f"CREATE DATABASE IF NOT EXISTS abidance{ON}"
    assert all(ON in s for s in sql if not s.startswith("INSERT "))
    for t in schema.TABLES:
        local, dist = creates[f"{t.name}_local"], creates[t.name]
        single = t.ddl("abidance", 7)
        # the local table: the single server's table, replicated, one Keeper path per shard
        assert local == single.replace(f"abidance.{t.name} (", f"abidance.{t.name}_local{ON} (").replace(
            "ENGINE = MergeTree", f"ENGINE = ReplicatedMergeTree('/clickhouse/tables/{{shard}}/abidance/"
                                  f"{t.name}_local', '{{replica}}')").replace(
            "non_replicated_deduplication_window", "replicated_deduplication_window"), t.name
        assert ("TTL toDateTime(ts) + INTERVAL 7 DAY" in local) == t.market_data
        # the node's name: same columns, Distributed over the locals, a key that is a function of the row
        assert dist.startswith(f"CREATE TABLE IF NOT EXISTS abidance.{t.name}{ON} (\n    {t.columns_sql()}\n)")
        m = re.search(r"ENGINE = Distributed\('prod', 'abidance', '(\w+)', (.+)\)$", dist)
        assert m and m.group(1) == f"{t.name}_local", dist
        assert "rand" not in m.group(2) and "now" not in m.group(2)
        assert m.group(2) == ("cityHash64(symbol)" if t.market_data else f"cityHash64({t.order_by})")
    mig = creates["schema_migrations_local"]
    assert "ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/abidance/schema_migrations_local'" in mig
    records = [s for s in sql if s.startswith("INSERT ")]
    assert len(records) == len(MIGRATIONS)
    assert all("INTO abidance.schema_migrations (version, applied_at, description) SETTINGS "
               "distributed_foreground_insert = 1 VALUES" in s for s in records)
    # migration 3 adds its column to the local table and to the Distributed one (which forwards only
    # the columns it declares)
    assert [s for s in sql if s.startswith("ALTER ")] == [
        f"ALTER TABLE abidance.positions_local{ON} ADD COLUMN IF NOT EXISTS strategy_id LowCardinality(String) "
        "DEFAULT '' AFTER event_id",
        f"ALTER TABLE abidance.positions{ON} ADD COLUMN IF NOT EXISTS strategy_id LowCardinality(String) "
        "DEFAULT '' AFTER event_id"]


class FakeCluster:
    """run_sql over one server of a migrated cluster: answers the versions and system.tables."""

    def __init__(self, ttl: int):
        self.ttl = ttl
        self.sent: list[str] = []

    def __call__(self, sql: str) -> str:
        self.sent.append(sql)
        if "FROM abidance.schema_migrations" in sql:
            return ",".join(str(m.version) for m in MIGRATIONS)
        if "FROM system.tables" in sql:
            ttl = f" TTL toDateTime(ts) + toIntervalDay({self.ttl})" if self.ttl else ""
            rows = [f"{t.name}_local=ReplicatedMergeTree('p', 'r') ORDER BY ts{ttl} SETTINGS x = 1"
                    for t in schema.TABLES if t.market_data]
            rows += [f"{t.name}=Distributed('prod', 'abidance', '{t.name}_local', cityHash64(symbol))"
                     for t in schema.TABLES if t.market_data]
            return "\n".join(rows)
        return ""


def test_cluster_ttl_is_read_and_changed_on_the_local_tables_on_cluster():
    market = [t.name for t in schema.TABLES if t.market_data]
    store = FakeCluster(ttl=7)
    assert market_ttl(store, "abidance", "prod") == {name: 7 for name in market}
    assert apply_migrations(store, "abidance", 7, "prod") == []
    assert not any(s.startswith("ALTER") for s in store.sent)          # already as wanted
    store.sent.clear()
    assert apply_migrations(store, "abidance", 30, "prod") == []
    assert [s for s in store.sent if s.startswith("ALTER")] == [
        f"ALTER TABLE abidance.{name}_local{ON} MODIFY TTL toDateTime(ts) + INTERVAL 30 DAY" for name in market]
    store.sent.clear()
    apply_migrations(store, "abidance", 0, "prod")
    assert [s for s in store.sent if s.startswith("ALTER")] == [
        f"ALTER TABLE abidance.{name}_local{ON} REMOVE TTL" for name in market]


def test_a_cluster_name_that_could_break_out_of_its_quotes_is_refused():
    assert check_cluster("prod_1-eu") == "prod_1-eu"
    for bad in ("prod'; DROP DATABASE x; --", "a b", "1abc", "x" * 65):
        with pytest.raises(ValueError, match="not a plain name"):
            Layout("abidance", bad)


def test_the_node_waits_for_every_shard_only_on_a_cluster():
    assert client_settings("") == {}
    assert client_settings("prod") == {"settings": {"distributed_foreground_insert": 1}}
