"""The cluster DDL through ClickHouse itself (chdb, no cluster here), and `abidance migrate`.

chdb is given a server's cluster config (remote_servers, macros, an in-memory Keeper; see
tests/integration/store/cluster_chdb.py): every statement as written parses, and without
`ON CLUSTER` (chdb has no distributed DDL queue) the Replicated and Distributed tables are
really created and read. Writes to the replicas cannot run in chdb: they need a real cluster
(docs/store.md says how to run the real-server suite against one).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from abidance.cli import main as cli_main
from abidance.store import schema
from tests.kit import PROJECT_ROOT

pytest.importorskip("chdb")

TIMEOUT = 120


def _cli(*args: str) -> subprocess.CompletedProcess:
    """In a child process: chdb opens one data directory per process."""
    return subprocess.run([sys.executable, "-m", "abidance.cli", *args], cwd=PROJECT_ROOT, capture_output=True,
                          text=True, timeout=TIMEOUT)


def _migrate(capsys, tmp_path, store: str, *flags: str) -> tuple[int, str, str]:
    """`abidance migrate` in this process over a config holding `store` as its [store] section."""
    (tmp_path / "node.toml").write_text(f"[store]\n{store}\n")
    code = cli_main(["migrate", "--config", str(tmp_path / "node.toml"), *flags])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def cluster_run(tmp_path_factory):
    out = subprocess.run([sys.executable, "-m", "tests.integration.store.cluster_chdb",
                          str(tmp_path_factory.mktemp("cluster")), "prod", "abd", "30"],
                         cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=TIMEOUT)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout)


def test_every_cluster_statement_parses_as_written(cluster_run):
    parsed = cluster_run["parsed"]
    ddl = [p for p in parsed if not p.startswith("INSERT ")]
    assert ddl and all(" ON CLUSTER prod" in p for p in ddl)
    assert sum(p.startswith("INSERT INTO abd.schema_migrations") for p in parsed) == 3
    assert parsed[-2:] == ["ALTER TABLE abd.trades_local ON CLUSTER prod (MODIFY TTL toDateTime(ts) + toIntervalDay(7))",
                           "ALTER TABLE abd.trades_local ON CLUSTER prod (REMOVE TTL)"]


def test_chdb_creates_the_replicated_tables_and_distributed_tables_over_them(cluster_run):
    assert "Replicated DDL queries are disabled" in cluster_run["on_cluster_error"]   # why ON CLUSTER is dropped
    tables = cluster_run["tables"]
    names = [t.name for t in schema.TABLES] + ["schema_migrations"]
    assert set(tables) == set(names) | {f"{n}_local" for n in names}
    for n in names:
        family = "ReplicatedReplacingMergeTree" if n == "schema_migrations" else "ReplicatedMergeTree"
        assert tables[f"{n}_local"]["engine"] == family, n
        assert tables[n]["engine"] == "Distributed", n
        assert tables[n]["full"].startswith(f"Distributed('prod', 'abd', '{n}_local', "), n
        # the macros expand per server: shard 01's Keeper path, this server's replica name
        assert cluster_run["replicas"][f"{n}_local"] == [f"/clickhouse/tables/01/abd/{n}_local", "replica-a"]
        assert cluster_run["counts"][n] == 0           # read through the Distributed table (shard 01 is here)
    for t in schema.TABLES:
        assert ("TTL toDateTime(ts) + toIntervalDay(30)" in tables[f"{t.name}_local"]["full"]) == t.market_data
    assert cluster_run["ttl"] == {t.name: 30 for t in schema.TABLES if t.market_data}
    # what chdb cannot run here: the version records and migration 3's ALTERs (read-only replicas)
    assert sorted(cluster_run["not_run"]) == sorted(
        ["INSERT INTO abd.schema_migrations"] * 3 + ["ALTER TABLE abd.positions_local ON CLUSTER 'prod'",
                                                      "ALTER TABLE abd.positions ON CLUSTER 'prod'"])


def test_migrate_dry_run_prints_the_cluster_ddl(capsys, tmp_path):
    code, out, err = _migrate(capsys, tmp_path, 'url = "http://ch-1:8123"\ncluster = "prod"\nmarket_ttl_days = 30',
                              "--dry-run")
    assert code == 0, err
    statements = [s.strip() for s in out.split(";\n") if s.strip()]
    assert statements[0] == "CREATE DATABASE IF NOT EXISTS abidance ON CLUSTER 'prod'"
    assert any("trades_local ON CLUSTER 'prod'" in s and "INTERVAL 30 DAY" in s for s in statements)


def test_migrate_applies_then_reports_up_to_date(tmp_path):
    (tmp_path / "node.toml").write_text(f'[store]\nurl = "chdb://{tmp_path / "store"}"\nmarket_ttl_days = 3\n')
    first = _cli("migrate", "--config", str(tmp_path / "node.toml"))
    assert first.returncode == 0, first.stderr
    assert "on one server: applied 1, 2, 3" in first.stdout and "TTL 3 days" in first.stdout
    again = _cli("migrate", "--config", str(tmp_path / "node.toml"))
    assert again.returncode == 0 and "applied none (up to date)" in again.stdout


@pytest.mark.parametrize("store, error", [
    ('cluster = "prod eu"', "store.cluster must be empty, or a cluster name from remote_servers"),
    ('url = "chdb:///tmp/x"\ncluster = "prod"', "store.cluster needs ClickHouse servers"),
    ('market_ttl_days = -1', "store.market_ttl_days"),
    ('cluster = "prod"', "store.url is empty"),
])
def test_migrate_refuses_bad_settings_with_exit_2(capsys, tmp_path, store, error):
    code, _, err = _migrate(capsys, tmp_path, store)
    assert code == 2 and error in err, err


def test_migrate_names_an_unreachable_cluster_with_exit_2(capsys, tmp_path):
    code, _, err = _migrate(capsys, tmp_path, 'url = "http://127.0.0.1:9"\ncluster = "prod"')
    assert code == 2 and "abidance migrate: http://127.0.0.1:9 (cluster 'prod'): " in err, err
