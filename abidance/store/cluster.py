"""Where the store's tables live: one server (the default) or a ClickHouse cluster (`store.cluster`).

`Layout(database)` is one server: each table is created as abidance/store/schema.py has it
(MergeTree), exactly the statements the store has always run.

`Layout(database, cluster="c")` is a replicated, sharded cluster named in the servers'
`remote_servers`. Each table `<name>` becomes two, both created `ON CLUSTER 'c'`:

- `<name>_local` on every server: the same columns, sort key, partitions and market-data
  TTL, on the Replicated variant of its engine family
  (`ReplicatedMergeTree('/clickhouse/tables/{shard}/<db>/<name>_local', '{replica}')`;
  the servers' `{shard}` and `{replica}` macros make one Keeper path per shard and one
  replica name per server) with `replicated_deduplication_window` in place of the
  non-replicated one;
- `<name>`: a `Distributed('c', '<db>', '<name>_local', <sharding key>)` table with the same
  columns. The node writes and the dashboard and reader read these, under the names they
  have always used, so nothing above the migrations changes.

The sharding key is a function of the row, never `rand()`: the writer replays a batch whose
answer was lost with the same `insert_deduplication_token`, and only a deterministic key
sends the replayed rows to the shards that already have them, where the token drops them.
Market data is sharded by symbol (a symbol's trades, bars and books stay on one shard, as
the dashboard reads them); the rest by a hash of its sort key (even spread; they are read
whole or aggregated, which the Distributed table merges across shards).

TTLs and added columns are altered where the data is: the TTL on `<name>_local`, a new
column on both (the Distributed table only forwards the columns it declares).
"""

from __future__ import annotations

import re

from abidance.store import schema

_CLUSTER = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")
LOCAL_SUFFIX = "_local"
# Distributed inserts wait until every shard has its rows (see client_settings).
FOREGROUND_INSERT = "distributed_foreground_insert"

# The migrations' own table: one row per applied version, replaced when a version is re-recorded.
MIGRATIONS_TABLE = schema.Table("schema_migrations", (("version", "UInt32"), ("applied_at", "DateTime64(3, 'UTC')"),
                                                      ("description", "String")), "version", "tuple()")


def check_cluster(name: str) -> str:
    if not isinstance(name, str) or (name and not _CLUSTER.match(name)):
        raise ValueError(f"cluster name {name!r} is not a plain name ([A-Za-z_][A-Za-z0-9_-]*, as in remote_servers)")
    return name


def shard_key(table: schema.Table) -> str:
    if table is MIGRATIONS_TABLE:
        return "version"
    if table.market_data:
        return "cityHash64(symbol)"
    return f"cityHash64({table.order_by})"


def client_settings(cluster: str) -> dict:
    """Settings for the node's store connection. On a cluster, an insert into a Distributed table
    returns only when every shard has written its rows (`distributed_foreground_insert = 1`): an
    error reaches the writer, which spools the batch and replays it with the same token. In the
    background mode the server acknowledges once the rows are queued on its own disk, and queued
    inserts may be sent to a shard merged with others, where the token no longer names them."""
    return {"settings": {FOREGROUND_INSERT: 1}} if cluster else {}


class Layout:
    """The statements that create and alter the store's tables on one server or on a cluster."""

    def __init__(self, database: str, cluster: str = ""):
        self.database = database
        self.cluster = check_cluster(cluster)
        self.on = f" ON CLUSTER '{cluster}'" if cluster else ""

    def storage(self, name: str) -> str:
        """The table that holds `name`'s rows (its engine, TTL and parts)."""
        return name + LOCAL_SUFFIX if self.cluster else name

    def create_database(self) -> str:
        return f"CREATE DATABASE IF NOT EXISTS {self.database}{self.on}"

    def create_table(self, table: schema.Table, market_ttl_days: int = 0) -> list[str]:
        if not self.cluster:
            return [table.ddl(self.database, market_ttl_days)]
        local = self.storage(table.name)
        path = f"/clickhouse/tables/{{shard}}/{self.database}/{local}"
        engine = f"Replicated{schema.ENGINE}('{path}', '{{replica}}')"
        return [table.ddl(self.database, market_ttl_days, name=local, on_cluster=self.on, engine=engine,
                          dedup_setting="replicated_deduplication_window"),
                self._distributed(table)]

    def _distributed(self, table: schema.Table) -> str:
        return (f"CREATE TABLE IF NOT EXISTS {self.database}.{table.name}{self.on} (\n    {table.columns_sql()}\n)"
                f" ENGINE = Distributed('{self.cluster}', '{self.database}', '{self.storage(table.name)}', "
                f"{shard_key(table)})")

    def create_migrations_table(self) -> list[str]:
        if not self.cluster:
            return [f"CREATE TABLE IF NOT EXISTS {self.database}.schema_migrations (\n"
                    "    `version` UInt32,\n    `applied_at` DateTime64(3, 'UTC'),\n    `description` String\n"
                    ") ENGINE = ReplacingMergeTree ORDER BY version"]
        local = self.storage(MIGRATIONS_TABLE.name)
        path = f"/clickhouse/tables/{{shard}}/{self.database}/{local}"
        return [f"CREATE TABLE IF NOT EXISTS {self.database}.{local}{self.on} (\n    {MIGRATIONS_TABLE.columns_sql()}\n)"
                f" ENGINE = ReplicatedReplacingMergeTree('{path}', '{{replica}}') ORDER BY version",
                self._distributed(MIGRATIONS_TABLE)]

    def record_migration(self, version: int, description: str) -> str:
        desc = description.replace("\\", "\\\\").replace("'", "\\'")
        # On a cluster the row must be on its shard before the next run reads the versions back.
        settings = f" SETTINGS {FOREGROUND_INSERT} = 1" if self.cluster else ""
        return (f"INSERT INTO {self.database}.schema_migrations (version, applied_at, description){settings} "
                f"VALUES ({int(version)}, now64(3), '{desc}')")

    def add_column(self, name: str, column: str) -> list[str]:
        """`column`: "name Type DEFAULT ... AFTER ..." as ALTER ... ADD COLUMN IF NOT EXISTS takes it."""
        targets = [self.storage(name), name] if self.cluster else [name]
        return [f"ALTER TABLE {self.database}.{t}{self.on} ADD COLUMN IF NOT EXISTS {column}" for t in targets]

    def set_ttl(self, name: str, days: int) -> str:
        where = f"{self.database}.{self.storage(name)}{self.on}"
        if days > 0:
            return f"ALTER TABLE {where} MODIFY TTL toDateTime(ts) + INTERVAL {int(days)} DAY"
        return f"ALTER TABLE {where} REMOVE TTL"
