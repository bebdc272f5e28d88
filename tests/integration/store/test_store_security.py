"""The served store refuses before it reads, refuses what reaches outside it, and keeps its bounds.

Issue 16, finding 3: `abidance store` buffered a 400 MB body before answering 403 to a wrong
password, read without limit on `Content-Length: -1`, started a thread per connection, and served
`file()` and `url()` to anyone on the password-less loopback store.
"""

from __future__ import annotations

import base64
from contextlib import contextmanager
import gzip
import os
import socket
import threading
import time

import pytest

pytest.importorskip("chdb")
pytest.importorskip("clickhouse_connect")

from clickhouse_connect.driver.exceptions import DatabaseError  # noqa: E402

from abidance.store.client import connect  # noqa: E402
from abidance.store.http_front import Limits  # noqa: E402
from abidance.store.server import StoreServer  # noqa: E402
from abidance.store.users import User, Users, UsersError, sha256_hex  # noqa: E402

PASSWORDS = {"node": "n0de-pw", "dashboard": "d4sh-pw", "research": "r3search-pw"}
LIMITS = Limits(max_connections=16, max_body_bytes=8 << 20, max_query_body_bytes=1 << 20, header_timeout_s=2.0,
                max_execution_time_s=2)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    users = Users([User("node", "writer", sha256_hex(PASSWORDS["node"])),
                   User("dashboard", "operator", sha256_hex(PASSWORDS["dashboard"])),
                   User("research", "reader", sha256_hex(PASSWORDS["research"]))])
    server = StoreServer(tmp_path_factory.mktemp("secure") / "data", port=0, users=users, limits=LIMITS).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def secret_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("host") / "host-secret.txt"
    path.write_text("HOST-SECRET-MARKER\n")
    return path


@contextmanager
def client(store, user: str):
    c = connect(store.url.replace("http://", f"http://{user}:{PASSWORDS[user]}@"))
    try:
        yield c
    finally:
        c.close()


def raw(store, head: bytes, body: bytes = b"", read_timeout: float = 5.0) -> tuple[bytes, float]:
    """Send a request head (and maybe part of a body); return what the store answers and how fast."""
    with socket.create_connection(("127.0.0.1", store.port), timeout=read_timeout) as s:
        t0 = time.monotonic()
        s.sendall(head + body)
        out = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
                if b"\r\n\r\n" in out and b"Connection: close" in out:
                    head_end = out.index(b"\r\n\r\n") + 4
                    length = int(out.split(b"Content-Length: ", 1)[1].split(b"\r\n", 1)[0])
                    if len(out) >= head_end + length:
                        break
        except socket.timeout:
            pass
        return out, time.monotonic() - t0


def basic(user: str, password: str) -> bytes:
    return b"Authorization: Basic " + base64.b64encode(f"{user}:{password}".encode()) + b"\r\n"


# -- refuse before reading ----------------------------------------------------------------------

@pytest.mark.parametrize("credentials", [
    basic("node", "wrong"),
    b"X-ClickHouse-User: node\r\nX-ClickHouse-Key: wrong\r\n",
    b"",                                                      # no credentials: the URL's, below
])
def test_wrong_password_with_a_big_body_is_refused_without_reading_it(store, credentials):
    url = b"/?query=INSERT%20INTO%20abidance.trades%20FORMAT%20Native" + \
        (b"&user=node&password=wrong" if not credentials else b"")
    head = (b"POST " + url + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 400000000\r\n" + credentials + b"\r\n")
    before = store.counters["auth_failed"]
    answer, took = raw(store, head)             # not one byte of the 400 MB is sent
    assert answer.startswith(b"HTTP/1.1 403 "), answer[:200]
    assert b"X-ClickHouse-Exception-Code: 516" in answer and b"Connection: close" in answer
    assert took < 2.0 and store.counters["auth_failed"] == before + 1


def test_a_body_over_the_users_limit_is_refused_before_it_is_read(store):
    head = (b"POST /?query=SELECT%201 HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n"
            + basic("research", PASSWORDS["research"]) + b"\r\n")
    answer, took = raw(store, head)
    assert answer.startswith(b"HTTP/1.1 413 ") and took < 2.0, answer[:200]


@pytest.mark.parametrize("framing,status", [
    (b"Content-Length: -1\r\n", b"400"),
    (b"Content-Length: 1e9\r\n", b"400"),
    (b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", b"400"),
    (b"Transfer-Encoding: gzip\r\n", b"501"),
])
def test_bad_body_framing_is_refused(store, framing, status):
    head = b"POST / HTTP/1.1\r\nHost: x\r\n" + framing + basic("node", PASSWORDS["node"]) + b"\r\n"
    answer, _ = raw(store, head)
    assert answer.startswith(b"HTTP/1.1 " + status), answer[:200]


def test_bad_or_endless_chunks_are_refused(store):
    head = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n" + basic("node", PASSWORDS["node"]) + b"\r\n"
    answer, _ = raw(store, head, b"zz\r\nhello\r\n")
    assert answer.startswith(b"HTTP/1.1 400 ") and b"chunk size" in answer
    chunk = b"%x\r\n" % (1 << 20) + b"x" * (1 << 20) + b"\r\n"
    head_r = head.replace(basic("node", PASSWORDS["node"]), basic("research", PASSWORDS["research"]))
    answer, _ = raw(store, head_r, chunk * 2)                # 2 MB to a reader whose limit is 1 MB
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]


def test_headers_too_large_are_refused(store):
    answer, _ = raw(store, b"GET /ping HTTP/1.1\r\nX-Big: " + b"a" * (70 * 1024) + b"\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 431 ")


def test_a_decompression_bomb_is_refused(store):
    bomb = gzip.compress(b"\0" * (20 << 20))
    head = (b"POST /?query=SELECT%%201 HTTP/1.1\r\nHost: x\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n"
            % len(bomb)) + basic("research", PASSWORDS["research"]) + b"\r\n"
    answer, _ = raw(store, head, bomb)
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]


def test_idle_sockets_cost_no_threads_and_the_connection_cap_answers_503(store):
    threads_before = threading.active_count()
    socks = [socket.create_connection(("127.0.0.1", store.port)) for _ in range(LIMITS.max_connections)]
    try:
        time.sleep(0.3)
        assert threading.active_count() <= threads_before + 2
        extra = socket.create_connection(("127.0.0.1", store.port), timeout=5)
        assert extra.recv(4096).startswith(b"HTTP/1.1 503 ")
        extra.close()
        assert store.counters["connections_refused"] >= 1
    finally:
        for s in socks:
            s.close()
    time.sleep(0.3)
    with client(store, "research") as c:
        assert c.command("SELECT 1") == 1


def test_a_silent_connection_is_cut_after_the_header_timeout(store):
    with socket.create_connection(("127.0.0.1", store.port), timeout=10) as s:
        s.sendall(b"GET /ping HTTP/1.1\r\n")                 # never finishes its headers
        t0 = time.monotonic()
        assert s.recv(100) == b""
        assert time.monotonic() - t0 < LIMITS.header_timeout_s + 2


# -- nothing reaches outside the store ------------------------------------------------------------

OUTSIDE = [
    "SELECT * FROM file('{path}', 'LineAsString')",
    "select * from FILE('{path}', LineAsString)",
    "SELECT * FROM `file`('{path}', 'LineAsString')",
    "SELECT * FROM /* a comment */ file\n(\t'{path}' , 'LineAsString') -- trailing",
    "SELECT file('{path}')",
    "SELECT * FROM (SELECT * FROM file('{path}', 'LineAsString'))",
    "WITH (SELECT any(line) FROM file('{path}', 'LineAsString')) AS x SELECT x",
    "SELECT 1 WHERE 'x' IN (SELECT * FROM file('{path}', 'LineAsString'))",
    "SELECT 1; SELECT * FROM file('{path}', 'LineAsString')",
    "SELECT * FROM url('http://127.0.0.1:9/x', CSV, 'a String')",
    "SELECT * FROM s3('http://127.0.0.1:9/b/x.csv')",
    "SELECT * FROM remote('127.0.0.1:9', system.one)",
    "SELECT * FROM remoteSecure('127.0.0.1:9', system.one)",
    "SELECT * FROM cluster('default', system.one)",
    "SELECT * FROM hdfs('hdfs://127.0.0.1:9/x', CSV)",
    "SELECT * FROM jdbc('jdbc:x', 't')",
    "SELECT * FROM odbc('DSN=x', 't')",
    "SELECT * FROM mysql('127.0.0.1:9', 'd', 't', 'u', 'p')",
    "SELECT * FROM postgresql('127.0.0.1:9', 'd', 't', 'u', 'p')",
    "SELECT * FROM sqlite('{path}', 't')",
    "SELECT * FROM executable('cat {path}', TSV, 'x String')",
    "SELECT * FROM filesystem('/')",
    "SELECT 1 INTO OUTFILE '{path}.out'",
    "INSERT INTO FUNCTION file('{path}.copy', 'TSV', 'x String') SELECT 'x'",
    "INSERT INTO abidance.alerts FROM INFILE '{path}' FORMAT TSV",
    "CREATE TABLE abidance.leak (x String) ENGINE = File(LineAsString, '{path}')",
    "CREATE DATABASE leak ENGINE = Filesystem('/')",
    "SYSTEM SHUTDOWN",
    "SELECT 1 SETTINGS max_execution_time = 100000",
]


@pytest.mark.parametrize("user", ["node", "dashboard", "research"])
@pytest.mark.parametrize("sql", OUTSIDE)
def test_table_functions_files_and_limit_lifting_are_refused_for_every_user(store, secret_file, user, sql):
    with client(store, user) as c:
        with pytest.raises(DatabaseError) as err:
            c.command(sql.format(path=secret_file))
        assert "HOST-SECRET-MARKER" not in str(err.value)
        assert "ACCESS_DENIED" in str(err.value) or "Multi-statements" in str(err.value), err.value
        assert not os.path.exists(f"{secret_file}.out") and not os.path.exists(f"{secret_file}.copy")
        assert c.command("SELECT 1") == 1


def test_settings_that_lift_limits_are_refused_as_parameters_and_in_set(store):
    with client(store, "node") as c:
        for name, value in [("max_execution_time", 100000), ("max_memory_usage", 0), ("readonly", 0),
                            ("allow_introspection_functions", 1), ("format_schema", "/etc"),
                            ("output_format_schema", "/tmp/x")]:
            with pytest.raises(DatabaseError, match="may not be changed"):
                c.command("SELECT 1", settings={name: value})
            with pytest.raises(DatabaseError):
                c.command(f"SET {name} = {value!r}")
        assert c.command("SELECT 1", settings={"max_threads": 2, "output_format_json_quote_64bit_integers": 0}) == 1
        with pytest.raises(DatabaseError, match="Multi-statements are not allowed|Syntax error in SET"):
            c.command("SET max_threads = 1; SELECT * FROM file('/etc/hostname')")


def test_statement_time_is_limited(store):
    with client(store, "research") as c:
        t0 = time.monotonic()
        with pytest.raises(DatabaseError, match="TIMEOUT_EXCEEDED|Timeout exceeded"):
            c.command("SELECT count() FROM numbers(100000000000)")
        assert time.monotonic() - t0 < LIMITS.max_execution_time_s + 5
        assert c.command("SELECT 1") == 1


# -- roles -----------------------------------------------------------------------------------------

def test_a_read_only_user_cannot_insert_or_change_the_schema(store):
    with client(store, "research") as research:
        assert research.command("SELECT count() FROM abidance.trades") >= 0
        for sql in ["INSERT INTO abidance.alerts (ts, level, source, message) VALUES (now64(9), 'x', 'y', 'z')",
                    "INSERT INTO abidance.commands (ts, command_id, command, reason, author) "
                    "SELECT now64(9), 'c1', 'kill', 'r', 'research'",
                    "CREATE TABLE abidance.mine (a UInt8) ENGINE = MergeTree ORDER BY a",
                    "ALTER TABLE abidance.trades REMOVE TTL", "DROP TABLE abidance.trades",
                    "TRUNCATE TABLE abidance.trades"]:
            with pytest.raises(DatabaseError, match="ACCESS_DENIED"):
                research.command(sql)
        with pytest.raises(DatabaseError, match="ACCESS_DENIED"):
            research.insert("abidance.commands", [["x"]], column_names=["command_id"])


def test_the_operator_inserts_only_commands_and_config_versions(store):
    with client(store, "dashboard") as dash:
        dash.command("INSERT INTO abidance.commands (ts, command_id, command, reason, author) "
                     "SELECT now64(9), {id:String}, 'kill', 'test', 'dashboard'", parameters={"id": "op-1"})
        assert dash.command("SELECT count() FROM abidance.commands WHERE command_id = 'op-1'") == 1
        with pytest.raises(DatabaseError, match="operator role may insert only"):
            dash.command("INSERT INTO abidance.alerts (ts, level, source, message) VALUES (now64(9), 'x', 'y', 'z')")


def test_the_writer_inserts_and_runs_its_migrations(store):
    from abidance.store.migrations import MIGRATIONS, apply_migrations

    with client(store, "node") as node:
        assert apply_migrations(node.command, "w_migrated") == [m.version for m in MIGRATIONS]
        node.command("INSERT INTO w_migrated.alerts (ts, level, source, message) VALUES (now64(9), 'x', 'y', 'z')")
        assert node.command("SELECT count() FROM w_migrated.alerts") == 1


def test_users_file_must_be_private_and_hashes_are_accepted(tmp_path):
    path = tmp_path / "users.toml"
    path.write_text(f'[node]\nrole = "writer"\npassword_sha256 = "{sha256_hex("pw")}"\n'
                    '[research]\nrole = "reader"\npassword = "rpw"\n')
    path.chmod(0o644)
    with pytest.raises(UsersError, match="readable by others"):
        Users.from_file(path)
    path.chmod(0o600)
    users = Users.from_file(path)
    assert users.authenticate("node", "pw").role == "writer"
    assert users.authenticate("research", "rpw").role == "reader"
    assert users.authenticate("node", "rpw") is None and users.authenticate("nobody", "pw") is None
    assert "pw" not in repr(users.by_name["node"]) and sha256_hex("pw") not in repr(users.by_name["node"])
    path.write_text('[x]\nrole = "admin"\npassword = "p"\n')
    with pytest.raises(UsersError, match=r"\[x\]\.role must be one of"):
        Users.from_file(path)


def test_cli_refuses_a_users_file_others_can_read_and_serves_with_a_private_one(tmp_path):
    import subprocess
    import sys

    users = tmp_path / "users.toml"
    users.write_text(f'[node]\nrole = "writer"\npassword_sha256 = "{sha256_hex("pw")}"\n'
                     '[research]\nrole = "reader"\npassword = "rpw"\n')
    users.chmod(0o644)
    cmd = [sys.executable, "-m", "abidance.cli", "store", "--data-dir", str(tmp_path / "d"), "--port", "0",
           "--users-file", str(users)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ABIDANCE_STORE")}
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 2 and "readable by others" in out.stderr and "rpw" not in out.stderr
    users.chmod(0o600)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**env, "PYTHONUNBUFFERED": "1"})
    try:
        line = proc.stdout.readline()
        url = line.split("ready: ", 1)[1].split(" ", 1)[0]
        research = connect(url.replace("http://", "http://research:rpw@"))
        assert research.command("SELECT 1") == 1
        with pytest.raises(DatabaseError, match="ACCESS_DENIED"):
            research.command("INSERT INTO abidance.alerts (message) VALUES ('x')")
        research.close()
        os.environ["ABIDANCE_STORE_PASSWORD_FILE"] = str(tmp_path / "pw")
        try:
            (tmp_path / "pw").write_text("pw\n")
            (tmp_path / "pw").chmod(0o600)
            node = connect(url.replace("http://", "http://node@"))
            assert node.command("SELECT 2") == 2
            node.close()
        finally:
            del os.environ["ABIDANCE_STORE_PASSWORD_FILE"]
    finally:
        proc.terminate()
        assert proc.wait(20) == 0
    assert "rpw" not in proc.stderr.read()
