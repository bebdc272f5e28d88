"""The same store checks against a real ClickHouse server, when CLICKHOUSE_URL points at one.

    CLICKHOUSE_URL=http://default:password@127.0.0.1:8123 python -m pytest tests/integration/store

Each test works in a database of its own (abidance_test_<random>), created with the same
migrations the embedded store runs (through clickhouse-connect's command()) and dropped after.
"""

from __future__ import annotations

import os
import re
import uuid

import pytest

URL = os.environ.get("CLICKHOUSE_URL", "")
pytestmark = pytest.mark.skipif(
    not URL, reason="CLICKHOUSE_URL is not set: no ClickHouse server to run the real-server store suite against "
                    "(e.g. CLICKHOUSE_URL=http://default:pw@127.0.0.1:8123)")

pytest.importorskip("clickhouse_connect")

from abidance.store import schema  # noqa: E402
from abidance.store.client import connect  # noqa: E402
from abidance.store.migrations import apply_migrations, market_ttl  # noqa: E402
from tests.integration.store import checks  # noqa: E402
from abidance.store.migrations import MIGRATIONS

ALL_VERSIONS = [m.version for m in MIGRATIONS]


@pytest.fixture(scope="module")
def client():
    c = connect(URL, database="default")
    yield c
    c.close()


@pytest.fixture
def db(client):
    name = f"abidance_test_{uuid.uuid4().hex[:10]}"
    assert apply_migrations(client.command, name) == ALL_VERSIONS         # no TTL: the checks write 2023 timestamps
    yield name
    client.command(f"DROP DATABASE IF EXISTS {name}")


def test_migrations_idempotent_tables_columns_ttl(client, db):
    assert apply_migrations(client.command, db, market_ttl_days=7) == []
    rows = client.query("SELECT table, name, type FROM system.columns WHERE database = {db:String} "
                        "ORDER BY table, position", parameters={"db": db}).result_rows
    have: dict[str, list] = {}
    for table, name, typ in rows:
        have.setdefault(table, []).append((name, re.sub(r"\s+", "", typ)))
    assert set(have) == {t.name for t in schema.TABLES} | {"schema_migrations"}
    for t in schema.TABLES:
        assert have[t.name] == [(c, re.sub(r"\s+", "", ty)) for c, ty in t.columns], t.name
    assert market_ttl(client.command, db) == {t.name: 7 for t in schema.TABLES if t.market_data}
    assert apply_migrations(client.command, db, market_ttl_days=0) == []
    assert set(market_ttl(client.command, db).values()) == {0}


def test_roundtrip_exact(client, db):
    checks.check_roundtrip(client, db)


def test_parameters(client, db):
    checks.check_parameters(client, db)


def test_dedup_token(client, db):
    checks.check_dedup(client, db)


def test_bad_rows(client, db):
    checks.check_bad_rows(client, db, table_named=False)


def test_errors(client, db):
    checks.check_errors(client, db)


def test_reader(client, db):
    checks.check_reader(client, db)
