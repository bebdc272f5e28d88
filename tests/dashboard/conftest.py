"""One served embedded store for the dashboard's tests: database `abidance` seeded from real
candles, database `empty` migrated and empty. The app reaches it exactly as in production:
ABIDANCE_STORE_URL (+ ABIDANCE_STORE_DATABASE) in the environment of the script run."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.kit import PROJECT_ROOT

APP = PROJECT_ROOT / "streamlit_app" / "app.py"


def _store():
    """The store's modules, or skip: the dashboard tests need the store and dashboard extras."""
    for name in ("chdb", "clickhouse_connect", "streamlit", "plotly"):
        pytest.importorskip(name, reason=f"{name} is not installed (pip install -e '.[store,dashboard]')")
    from abidance.store.client import connect
    from abidance.store.migrations import apply_migrations
    from abidance.store.server import StoreServer

    return connect, apply_migrations, StoreServer


@pytest.fixture(scope="package")   # closed after tests/dashboard: one chdb path per process at a time
def store_server(tmp_path_factory):
    _, _, StoreServer = _store()
    server = StoreServer(tmp_path_factory.mktemp("dashboard-store") / "chdb", port=0).start()
    yield server
    server.stop()


@pytest.fixture(scope="package")   # closed after tests/dashboard: one chdb path per process at a time
def seeded(store_server):
    """(StoreServer, Seeded): the `abidance` database filled from ../shared/data/market."""
    from tests.dashboard.seed import seed_store

    connect, _, _ = _store()
    client = connect(store_server.url, "abidance")
    info = seed_store(client, "abidance")        # skips (via load_candles) when the data is absent
    return store_server, info


@pytest.fixture(scope="package")   # closed after tests/dashboard: one chdb path per process at a time
def empty_db(store_server):
    connect, apply_migrations, _ = _store()
    client = connect(store_server.url, "abidance")      # `empty` does not exist before the migration
    apply_migrations(client.command, "empty")
    return store_server


@pytest.fixture(scope="package")   # closed after tests/dashboard: one chdb path per process at a time
def config_file(tmp_path_factory) -> Path:
    from tests.dashboard.seed import CONFIG_TEXT

    path = tmp_path_factory.mktemp("dashboard-config") / "node.toml"
    path.write_text(CONFIG_TEXT, encoding="utf-8")
    return path


@pytest.fixture
def seeded_env(seeded, config_file, monkeypatch):
    server, info = seeded
    monkeypatch.setenv("ABIDANCE_STORE_URL", server.url)
    monkeypatch.setenv("ABIDANCE_STORE_DATABASE", "abidance")
    monkeypatch.setenv("ABIDANCE_CONFIG", str(config_file))
    monkeypatch.setenv("ABIDANCE_DASHBOARD_REFRESH_S", "0")
    monkeypatch.delenv("ABIDANCE_DASHBOARD_PASSWORD", raising=False)
    return info


@pytest.fixture
def empty_env(empty_db, monkeypatch):
    monkeypatch.setenv("ABIDANCE_STORE_URL", empty_db.url)
    monkeypatch.setenv("ABIDANCE_STORE_DATABASE", "empty")
    monkeypatch.delenv("ABIDANCE_CONFIG", raising=False)
    monkeypatch.setenv("ABIDANCE_DASHBOARD_REFRESH_S", "0")
    monkeypatch.delenv("ABIDANCE_DASHBOARD_PASSWORD", raising=False)
    return empty_db
