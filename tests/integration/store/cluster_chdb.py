"""Run the store's cluster DDL in chdb, as far as an embedded ClickHouse can (a child process of
tests/integration/store/test_cluster_ddl.py: chdb reads its server config once per process).

    python -m tests.integration.store.cluster_chdb DATA_DIR CLUSTER DATABASE TTL_DAYS  -> JSON on stdout

The config gives chdb what a cluster server has: `remote_servers` with CLUSTER (one shard on
this host), the `{shard}`/`{replica}` macros and a Keeper (ClickHouse's in-memory
`testkeeper`), so the Replicated tables and the Distributed tables over them are really
created by the engine, and every statement, as written, goes through ClickHouse's parser
(`formatQuerySingleLine`). What chdb cannot do is reported, not skipped:
- `ON CLUSTER` needs the distributed DDL queue of a server: chdb refuses it ("Replicated DDL
  queries are disabled"), so the statements run here without that clause, one server's share;
- a Replicated table stays read-only (chdb runs no replica background threads): reads work,
  but an ALTER is refused (TABLE_IS_READ_ONLY) or, through the Distributed table, waits
  forever, and so would an insert: the ALTERs (a no-op on a fresh store: migration 1 already
  has the column) and the INSERTs recording the versions are listed as not run.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import chdb

from abidance.store import schema
from abidance.store.cluster import Layout
from abidance.store.migrations import fresh_statements, market_ttl

CONFIG = """<clickhouse>
  <tcp_port>9000</tcp_port>
  <zookeeper><implementation>testkeeper</implementation></zookeeper>
  <macros><shard>01</shard><replica>replica-a</replica></macros>
  <remote_servers>
    <{cluster}>
      <shard><internal_replication>true</internal_replication>
        <replica><host>localhost</host><port>9000</port></replica></shard>
    </{cluster}>
  </remote_servers>
</clickhouse>
"""

_OPEN: list = []


def main(data_dir: str, cluster: str, database: str, ttl_days: int) -> dict:
    root = Path(data_dir)
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.xml").write_text(CONFIG.format(cluster=cluster))
    conn = chdb.connect(f"file:{root / 'db'}?config-file={root / 'config.xml'}")
    _OPEN.append(conn)       # never closed: closing waits on the read-only replicas' Keeper session

    def run(sql: str) -> str:
        return conn.query(sql, "TabSeparated").bytes().decode()

    out: dict = {"run": 0, "not_run": []}
    on = f" ON CLUSTER '{cluster}'"
    statements = fresh_statements(database, ttl_days, cluster)
    try:
        run(statements[0])
        out["on_cluster_error"] = None
    except Exception as exc:  # noqa: BLE001 - what chdb says is the finding
        out["on_cluster_error"] = str(exc).splitlines()[0]
    # ClickHouse's own parser reads every statement as written, ON CLUSTER included.
    quoted = lambda sql: "'" + sql.replace("\\", "\\\\").replace("'", "\\'") + "'"   # noqa: E731
    ttl_changes = [Layout(database, cluster).set_ttl("trades", days) for days in (7, 0)]
    out["parsed"] = [run(f"SELECT formatQuerySingleLine({quoted(sql)}) FORMAT TSVRaw").strip()
                     for sql in statements + ttl_changes]
    for sql in statements:
        assert on in sql or sql.startswith("INSERT "), sql
        if not sql.startswith("CREATE "):
            out["not_run"].append(sql.split(" (")[0].split(" ADD ")[0])  # see the module's docstring
            continue
        run(sql.replace(on, ""))
        out["run"] += 1
    rows = run(f"SELECT name, engine, engine_full FROM system.tables WHERE database = '{database}' "
               "ORDER BY name FORMAT TSVRaw")
    out["tables"] = {n: {"engine": e, "full": f} for n, e, f in (r.split("\t") for r in rows.splitlines())}
    rows = run(f"SELECT table, zookeeper_path, replica_name FROM system.replicas WHERE database = '{database}' "
               "FORMAT TSVRaw")
    out["replicas"] = {t: [p, r] for t, p, r in (r.split("\t") for r in rows.splitlines())}
    # The node's names answer reads through the Distributed tables (shard 01 is this host).
    out["counts"] = {t.name: int(run(f"SELECT count() FROM {database}.{t.name}"))
                     for t in (*schema.TABLES, schema.Table("schema_migrations", (), ""))}
    out["ttl"] = market_ttl(run, database, cluster)
    return out


if __name__ == "__main__":
    try:
        print(json.dumps(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))), flush=True)
        code = 0
    except Exception as exc:  # noqa: BLE001 - the parent test shows it
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        code = 1
    # chdb's shutdown waits on the read-only replicas' Keeper session: leave without it.
    os._exit(code)
