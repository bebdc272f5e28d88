"""The served embedded store: StoreServer (chdb) behind ClickHouse's HTTP interface, used by
plain clickhouse-connect from this process and from another process at the same time."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("chdb")
pytest.importorskip("clickhouse_connect")

from clickhouse_connect.driver.exceptions import DatabaseError  # noqa: E402

from abidance.store.client import connect, redact  # noqa: E402
from abidance.store.migrations import apply_migrations  # noqa: E402
from abidance.store.server import StoreServer, split_insert  # noqa: E402
from tests.integration.store import checks  # noqa: E402
from abidance.store.migrations import MIGRATIONS

ALL_VERSIONS = [m.version for m in MIGRATIONS]

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    server = StoreServer(tmp_path_factory.mktemp("store") / "data", port=0).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def client(store):
    c = connect(store.url)
    yield c
    c.close()


@pytest.fixture
def db(client, request):
    """A fresh database with the schema, created through clickhouse-connect's command()."""
    name = "t_" + request.node.name.replace("[", "_").replace("]", "").replace("-", "_")[:50]
    assert apply_migrations(client.command, name) == ALL_VERSIONS
    assert apply_migrations(client.command, name) == []
    return name


def _http(store, path: str, data: bytes | None = None, headers=None):
    req = urllib.request.Request(store.url + path, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


# -- the HTTP interface -----------------------------------------------------------------------

def test_ping_version_and_migrations(store, client):
    assert _http(store, "/ping")[2] == b"Ok.\n"
    assert _http(store, "/")[2] == b"Ok.\n"
    assert client.ping()
    assert client.server_version.split(".")[0].isdigit()
    assert store.migrations_applied == ALL_VERSIONS
    assert store.url == f"http://127.0.0.1:{store.port}" and store.port > 0
    assert set(client.command("SHOW TABLES FROM abidance").split("\n")) >= {"trades", "fills", "schema_migrations"}


def test_raw_http_shapes(store):
    status, headers, body = _http(store, "/?query=SELECT%201%20AS%20x%20FORMAT%20JSONEachRow")
    assert (status, body) == (200, b'{"x":1}\n')
    assert headers["X-ClickHouse-Format"] == "JSONEachRow" and "X-ClickHouse-Query-Id" in headers
    status, headers, body = _http(store, "/?database=abidance", b"SELECT count() FROM trades WHERE 0")
    assert (status, body) == (200, b"0\n") and headers["X-ClickHouse-Format"] == "TabSeparated"
    status, headers, body = _http(store, "/?param_x=a%5Ctb", b"SELECT {x:String}")
    assert body == b"a\\tb\n"
    status, headers, body = _http(store, "/", b"SELECT * FROM nowhere.nothing")
    assert status == 500 and headers["X-ClickHouse-Exception-Code"] in ("60", "81")
    assert body.startswith(b"Code: ") and b"DB::Exception: " in body and b"(version " in body
    assert _http(store, "/play")[0] == 404
    # the body of an INSERT: the statement, then the data after the FORMAT name's line
    assert split_insert(b"INSERT INTO db.t (`a`, `format`) FORMAT Native\n\x0a\x01") == \
        ("INSERT INTO db.t (`a`, `format`)", "Native", 47)
    assert split_insert(b"insert into t values (1)") is None
    assert split_insert(b"SELECT 1 FORMAT Native") is None


def test_settings_and_sessions(store, client):
    default = client.command("SELECT getSetting('max_threads')")
    assert client.command("SELECT getSetting('max_threads')", settings={"max_threads": 3}) == 3
    assert client.command("SELECT getSetting('max_threads')") == default        # per request only
    other = connect(store.url)
    try:
        client.command("SET max_block_size = 12345")                            # kept in client's session
        assert client.command("SELECT getSetting('max_block_size')") == 12345
        assert other.command("SELECT getSetting('max_block_size')") != 12345    # not in another session
    finally:
        client.command("SET max_block_size = 65409")
        other.close()
    with pytest.raises(DatabaseError):
        client.command("SELECT 1", settings={"no_such_setting_at_all": 1})
    assert client.command("SELECT 1") == 1


def test_roundtrip_exact(client, db):
    checks.check_roundtrip(client, db)


def test_parameters(client, db):
    checks.check_parameters(client, db)


def test_dedup_token(client, db):
    checks.check_dedup(client, db)


def test_bad_rows_named_and_store_keeps_serving(client, db):
    checks.check_bad_rows(client, db, table_named=True)


def test_bad_python_value_fails_in_clickhouse_connect(client, db):
    """A string in a Decimal column through insert(): clickhouse-connect refuses it itself while
    encoding (its own exception, which names neither table nor column: the store never sees
    the row); nothing is written and the store keeps serving."""
    cols = list(checks.schema.BY_NAME["fills"].column_names)
    row = {c: checks._default(t) for c, t in checks.schema.BY_NAME["fills"].columns}
    row.update(event_id="bad-py", symbol="PYUSDT", price="not a number", ts=checks.T0 // 1000)
    with pytest.raises(Exception):
        client.insert(f"{db}.fills", [[row[c] for c in cols]], column_names=cols)
    assert checks.count(client, db, "fills", "symbol = 'PYUSDT'") == 0
    assert client.command("SELECT 1") == 1


def test_errors(client, db):
    checks.check_errors(client, db)


def test_reader(client, db):
    checks.check_reader(client, db)


def test_concurrent_clients_in_threads(store, db):
    errors, done = [], []

    def work(i):
        try:
            c = connect(store.url, database=db)
            for j in range(10):
                checks.insert_rows(c, db, "alerts", [{"event_id": f"th{i}-{j}", "source": "threads"}],
                                   token=f"th{i}-{j}")
                assert c.command("SELECT count() FROM alerts WHERE source = 'threads'") >= 1
            done.append(i)
            c.close()
        except Exception as exc:         # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors and len(done) == 6
    c = connect(store.url)
    assert checks.count(c, db, "alerts", "source = 'threads'") == 60
    c.close()


WRITER = textwrap.dedent("""
    import json, sys, time
    from abidance.store.client import connect
    url, db, batches = sys.argv[1], sys.argv[2], int(sys.argv[3])
    c = connect(url, database=db)
    cols = ["ts", "event_id", "level", "source", "code", "message"]
    errors, seen = 0, []
    for b in range(batches):
        rows = [[1_700_000_000_000_000 + b * 1000 + i, f"p{b}-{i}", "info", "proc", "c", "m"] for i in range(500)]
        try:
            c.insert("alerts", rows, column_names=cols, settings={"insert_deduplication_token": f"p{b}"})
            if b % 5 == 4:      # a replay of the previous batch: dropped by its token
                c.insert("alerts", rows, column_names=cols, settings={"insert_deduplication_token": f"p{b}"})
            seen.append(c.command("SELECT count() FROM alerts WHERE source = 'proc'"))
            time.sleep(0.01)
        except Exception as exc:
            errors += 1
            print(repr(exc), file=sys.stderr)
    print(json.dumps({"errors": errors, "seen": seen}))
""")


def test_two_processes_write_and_read_at_once(store, client, db):
    """The bot (another process, writing) and the dashboard (here, reading) at the same time."""
    proc = subprocess.Popen([sys.executable, "-c", WRITER, store.url, db, "30"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT)
    reads, errors, last, observed = 0, [], 0, []
    writer_rows = lambda: [[checks.T0 + i, f"me{reads}-{i}", "info", "here", "c", "m"] for i in range(50)]  # noqa: E731
    while proc.poll() is None:
        try:
            n = client.command(f"SELECT count() FROM {db}.alerts WHERE source = 'proc'")
            assert n >= last
            last = n
            observed.append(n)
            df = client.query_df(f"SELECT source, count() AS n FROM {db}.alerts GROUP BY source")
            assert not len(df) or set(df["source"]) <= {"proc", "here"}
            client.insert(f"{db}.alerts", writer_rows(), column_names=list(checks.schema.BY_NAME["alerts"].column_names))
            reads += 1
        except Exception as exc:         # noqa: BLE001
            errors.append(exc)
        time.sleep(0.005)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert result["errors"] == 0, err
    assert result["seen"] == sorted(result["seen"]) and result["seen"][-1] == 30 * 500
    assert not errors and reads > 0
    assert any(0 < n < 30 * 500 for n in observed), "the reads never overlapped the other process's writes"
    assert checks.count(client, db, "alerts", "source = 'proc'") == 30 * 500
    assert checks.count(client, db, "alerts", "source = 'here'") == reads * 50


def test_non_loopback_refused(tmp_path):
    for host in ("0.0.0.0", "192.168.1.10", "example.com"):
        with pytest.raises(ValueError, match="allow_remote"):
            StoreServer(tmp_path, host=host)
    with pytest.raises(ValueError, match="password"):
        StoreServer(tmp_path, host="0.0.0.0", allow_remote=True)
    StoreServer(tmp_path, host="0.0.0.0", allow_remote=True, password="x")      # allowed (not started)
    StoreServer(tmp_path, host="localhost")
    StoreServer(tmp_path, host="::1")


def test_redact():
    assert redact("http://u:secret@h:8123") == "http://u:***@h:8123"
    assert redact("http://h:8123") == "http://h:8123"


# -- the `abidance store` command -------------------------------------------------------------

def _cli() -> list[str]:
    from abidance.cli import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    if "store" in sub.choices:
        return [sys.executable, "-m", "abidance.cli", "store"]
    return [sys.executable, "-c", "import argparse, sys; from abidance.store import cli; "
            "p = argparse.ArgumentParser(prog='abidance'); cli.add_parser(p.add_subparsers()); "
            "a = p.parse_args(sys.argv[1:]); sys.exit(a.func(a))", "store"]


def _start_cli(args, env=None):
    proc = subprocess.Popen(_cli() + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
    line = proc.stdout.readline()
    return proc, line


def test_cli_serves_with_password_and_stops_on_sigterm(tmp_path, monkeypatch):
    monkeypatch.delenv("ABIDANCE_STORE_PASSWORD", raising=False)
    data = tmp_path / "cli-data"
    proc, line = _start_cli(["--data-dir", str(data), "--port", "0", "--market-ttl-days", "3"],
                            env={"ABIDANCE_STORE_PASSWORD": "s3cret"})
    try:
        assert line.startswith("abidance store ready: http://127.0.0.1:"), (line, proc.stderr.read())
        assert f"(data {data})" in line
        url = line.split("ready: ", 1)[1].split(" ", 1)[0]
        with urllib.request.urlopen(url + "/ping", timeout=5) as resp:
            assert resp.read() == b"Ok.\n"                   # /ping needs no password, as on a server
        with pytest.raises(DatabaseError) as err:
            connect(url)
        assert "516" in str(err.value) or "Authentication" in str(err.value)
        c = connect(url.replace("http://", "http://default:s3cret@"))
        assert c.command("SELECT count() FROM trades") == 0
        assert "toIntervalDay(3)" in c.command("SELECT engine_full FROM system.tables "
                                               "WHERE database = 'abidance' AND name = 'trades'")
        c.close()
        # ClickHouse's other ways to pass credentials
        q = urllib.parse.urlencode({"query": "SELECT 7", "user": "default", "password": "s3cret"})
        with urllib.request.urlopen(f"{url}/?{q}", timeout=5) as resp:
            assert resp.read() == b"7\n"
        req = urllib.request.Request(url + "/?query=SELECT%208", headers={"X-ClickHouse-User": "default",
                                                                          "X-ClickHouse-Key": "s3cret"})
        with urllib.request.urlopen(req, timeout=5) as resp:
            assert resp.read() == b"8\n"
        req = urllib.request.Request(url + "/?query=SELECT%209", headers={"X-ClickHouse-Key": "wrong"})
        with pytest.raises(urllib.error.HTTPError) as denied:
            urllib.request.urlopen(req, timeout=5)
        assert denied.value.code == 403 and denied.value.headers["X-ClickHouse-Exception-Code"] == "516"
        monkeypatch.setenv("ABIDANCE_STORE_PASSWORD", "s3cret")
        c = connect(url)
        assert c.command("SELECT 1") == 1
        c.close()
        # a second store on the same directory is refused (chdb's lock), the first one is unharmed
        second, line2 = _start_cli(["--data-dir", str(data), "--port", "0"])
        assert second.wait(30) == 2 and line2 == ""
        assert "lock" in second.stderr.read().lower()
        with urllib.request.urlopen(url + "/ping", timeout=5) as resp:
            assert resp.read() == b"Ok.\n"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    assert "stopped" in proc.stderr.read()


def test_cli_refuses_remote_bind(tmp_path, monkeypatch):
    monkeypatch.delenv("ABIDANCE_STORE_PASSWORD", raising=False)
    proc, line = _start_cli(["--data-dir", str(tmp_path / "d"), "--host", "0.0.0.0", "--port", "0"])
    assert proc.wait(20) == 2 and line == ""
    assert "allow_remote" in proc.stderr.read()
    proc, line = _start_cli(["--data-dir", str(tmp_path / "d"), "--host", "0.0.0.0", "--allow-remote"])
    assert proc.wait(20) == 2
    assert "ABIDANCE_STORE_PASSWORD" in proc.stderr.read()
