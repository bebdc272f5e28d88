"""Versioned migrations of the store's schema, applied at start (same SQL for chdb and a server).

`apply_migrations(run_sql, database, market_ttl_days, cluster="")` takes any callable that runs
one SQL statement: a chdb session's `query`, or a clickhouse-connect client's `command` (so a
real ClickHouse server gets exactly the schema the embedded store has). With a `cluster`, every
statement runs `ON CLUSTER` and each table is a replicated local table behind a Distributed
table of the usual name (abidance/store/cluster.py). It

1. creates the database and `<database>.schema_migrations(version, applied_at, description)`;
2. runs every migration whose version is not recorded there, in order, and records it;
3. brings the TTL of the market-data tables in line with `market_ttl_days` (0 = keep
   forever), altering only the tables whose TTL differs (an ALTER rewrites parts).

It is idempotent: every statement is `IF NOT EXISTS`, a recorded version is never run
again, and a migration interrupted half-way is simply re-run (its statements are safe to
repeat). Add a schema change as a new `Migration` at the end of `MIGRATIONS` (never edit
an applied one): its statements get `(layout, market_ttl_days)` and are written with the
layout's methods, so that one server and a cluster both get them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

from abidance.store import schema
from abidance.store.cluster import Layout

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_TTL_DAYS = re.compile(r"toIntervalDay\((\d+)\)")


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    statements: Callable[[Layout, int], list[str]]


def _initial(layout: Layout, market_ttl_days: int) -> list[str]:
    return [layout.create_database()] + \
        [sql for t in schema.TABLES for sql in layout.create_table(t, market_ttl_days)]


def _model_registry(layout: Layout, market_ttl_days: int) -> list[str]:
    # A store created before the registry gets its tables here; on a fresh store migration 1
    # already made them (it creates every table of schema.TABLES), and these are no-ops.
    return [sql for name in ("models", "model_events", "shadow_signals")
            for sql in layout.create_table(schema.BY_NAME[name], market_ttl_days)]


def _positions_by_strategy(layout: Layout, market_ttl_days: int) -> list[str]:
    # Positions are kept per (strategy, symbol): older rows read as "" (no strategy recorded).
    return layout.add_column("positions", "strategy_id LowCardinality(String) DEFAULT '' AFTER event_id")


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "create the database and every table of abidance.store.schema", _initial),
    Migration(2, "model registry: models, model_events, shadow_signals", _model_registry),
    Migration(3, "positions per strategy: positions.strategy_id", _positions_by_strategy),
)


def check_identifier(name: str, what: str = "database") -> str:
    if not isinstance(name, str) or not _IDENT.match(name):
        raise ValueError(f"{what} name {name!r} is not a plain identifier ([A-Za-z_][A-Za-z0-9_]*)")
    return name


def _text(result: Any) -> str:
    """One TabSeparated value from a chdb result (bytes) or a clickhouse-connect command (str/int)."""
    if hasattr(result, "bytes"):
        result = result.bytes()
    if isinstance(result, (bytes, bytearray, memoryview)):
        result = bytes(result).decode()
    if isinstance(result, (list, tuple)):
        result = "\t".join(str(x) for x in result)
    if result is None or not isinstance(result, (str, int)):
        return ""               # a clickhouse-connect QuerySummary: no rows
    return str(result).strip()


def applied_versions(run_sql: Callable[[str], Any], database: str = "abidance") -> list[int]:
    database = check_identifier(database)
    text = _text(run_sql(f"SELECT arrayStringConcat(arraySort(groupUniqArray(toString(version))), ',') "
                         f"FROM {database}.schema_migrations FORMAT TabSeparated"))
    return sorted(int(v) for v in text.split(",") if v.strip())


def market_ttl(run_sql: Callable[[str], Any], database: str = "abidance", cluster: str = "") -> dict[str, int]:
    """{market-data table: its TTL in days (0 = none)} as the store has it (on a cluster: as the
    local tables on the server `run_sql` reaches have it; every change is made ON CLUSTER)."""
    database = check_identifier(database)
    layout = Layout(database, cluster)
    by_storage = {layout.storage(t.name): t.name for t in schema.TABLES if t.market_data}
    names = ", ".join(f"'{n}'" for n in by_storage)
    text = _text(run_sql(
        "SELECT arrayStringConcat(groupArray(concat(name, '=', engine_full)), '\\n') FROM system.tables "
        f"WHERE database = '{database}' AND name IN ({names}) FORMAT TSVRaw"))
    out = {}
    for line in text.splitlines():
        name, _, engine = line.partition("=")
        m = _TTL_DAYS.search(engine) if " TTL " in engine else None
        if name in by_storage:
            out[by_storage[name]] = int(m.group(1)) if m else 0
    return out


def apply_migrations(run_sql: Callable[[str], Any], database: str = "abidance",
                     market_ttl_days: int = 0, cluster: str = "") -> list[int]:
    """Apply the pending migrations; return the versions applied now (empty when up to date).
    `cluster`: the ClickHouse cluster (remote_servers) the tables are created on; "" = one server."""
    database = check_identifier(database)
    layout = Layout(database, cluster)
    market_ttl_days = int(market_ttl_days)
    if market_ttl_days < 0:
        raise ValueError(f"market_ttl_days must be >= 0, got {market_ttl_days}")
    for sql in [layout.create_database(), *layout.create_migrations_table()]:
        run_sql(sql)
    done = set(applied_versions(run_sql, database))
    applied = []
    for m in MIGRATIONS:
        if m.version in done:
            continue
        for sql in m.statements(layout, market_ttl_days):
            run_sql(sql)
        run_sql(layout.record_migration(m.version, m.description))
        applied.append(m.version)
    _sync_market_ttl(run_sql, layout, market_ttl_days)
    return applied


def _sync_market_ttl(run_sql: Callable[[str], Any], layout: Layout, days: int) -> list[str]:
    changed = []
    have = market_ttl(run_sql, layout.database, layout.cluster)
    for t in schema.TABLES:
        if not t.market_data or t.name not in have or have[t.name] == days:
            continue
        run_sql(layout.set_ttl(t.name, days))
        changed.append(t.name)
    return changed


def fresh_statements(database: str = "abidance", market_ttl_days: int = 0, cluster: str = "") -> list[str]:
    """Every statement `apply_migrations` runs on an empty store, in order, without running them
    (`abidance migrate --dry-run`: the DDL a cluster would get, to read before it is run)."""
    sent: list[str] = []

    def record(sql: str) -> str:
        if not sql.startswith("SELECT "):
            sent.append(sql)
        return ""                   # nothing recorded yet, no TTL to change
    apply_migrations(record, database, market_ttl_days, cluster)
    return sent
