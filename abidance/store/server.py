"""The served embedded store: one process owns the chdb directory and speaks ClickHouse's HTTP interface.

chdb locks its data directory to one process, yet the bot, the dashboard and research code
run as separate processes. `StoreServer` opens the ONE chdb session on the directory,
applies the migrations, and serves the subset of ClickHouse's HTTP interface that
clickhouse-connect uses, on loopback, so every other process is a plain
`clickhouse_connect.get_client(host=..., port=..., compress=False)` client, exactly as
against a ClickHouse server in production.

What the front end does (ClickHouse's HTTP interface, https://clickhouse.com/docs/interfaces/http):
- `GET /ping` and `GET /` -> `Ok.\\n`.
- A query comes in the POST body, the `query` URL parameter, or both (the body is appended
  after a newline), or as a `query` field of a multipart/form-data body (clickhouse-connect
  sends large parameter sets that way). `param_<name>` parameters bind `{name:Type}`
  placeholders (server-side binding, never string formatting). `database` chooses the
  default database, `default_format` the output format of a query without a FORMAT clause
  (TabSeparated otherwise). Transport parameters (`query_id`, `session_id`, `compress`,
  `wait_end_of_query`, `client_protocol_version`, `http_*`, ...) are accepted and ignored
  where they do not apply. Every other parameter is a ClickHouse setting for this request.
- An `INSERT INTO ... FORMAT <fmt>` whose data follows in the body (clickhouse-connect's
  `insert()` sends `... FORMAT Native\\n<blocks>` in the body; `insert_arrow()` sends the
  statement in `query` and Arrow bytes as the body) is streamed into chdb with
  `send_insert`. The request's `insert_*` settings (`insert_deduplication_token`,
  `insert_deduplicate`, ...) are put in the statement's own SETTINGS clause
  (`INSERT INTO t (cols) SETTINGS insert_deduplication_token='...'`), so ClickHouse drops a
  replayed batch itself.
- Other settings are applied to the chdb session with `SET` before the statement and reset
  to DEFAULT when a later request no longer asks for them (only the differences are sent, so
  a client's constant settings cost nothing after its first request).
- `SET ...` and `USE db` statements are kept per `session_id` (ClickHouse's HTTP sessions)
  and applied to that session's later requests; without a session they are no-ops, as on
  a server.
- Errors come back as ClickHouse sends them: status 500 (403 for a bad password), header
  `X-ClickHouse-Exception-Code`, body `Code: N. DB::Exception: ... (NAME) (version ...)`,
  so clickhouse-connect raises `DatabaseError` with the message. An insert's error names
  its table (added when ClickHouse's own message does not).
- Responses carry `X-ClickHouse-Format` (when the statement returns rows),
  `X-ClickHouse-Summary`, `X-ClickHouse-Query-Id`, `X-ClickHouse-Timezone`.

Not supported: response compression (`enable_http_compression` is ignored: use
`compress=False`; compressed request bodies in gzip/deflate, and lz4/zstd when those
modules are installed, are accepted), external data (multipart file parts), temporary
tables kept in a session, progress headers, streaming of results (a result is built in
memory before it is sent), query cancellation (`KILL QUERY`, client disconnects), the
`/play`, `/replicas_status` and other handler paths, and the TCP native protocol. All
requests run one at a time on the one chdb session (a lock): chdb's session is documented
thread-safe, but `USE` and `SET` are session state, so a statement and its state must not
interleave with another request's. `SET` values must be plain literals (a number, a quoted
string, true or false).

Security (docs/store.md): the store binds to loopback unless `allow_remote=True`, which
requires a password for every user. The HTTP front end (abidance.store.http_front) bounds
connections, headers, bodies and time and authenticates from the headers before it reads a
body; users have roles (abidance.store.users: writer, operator, reader); every statement is
parsed by ClickHouse and checked against the user's role (abidance.store.guard): no table
function or engine that reaches outside the store (`file`, `url`, `s3`, `remote`, ...), no
INTO OUTFILE / FROM INFILE, no settings that lift the server's limits (max_execution_time,
max_memory_usage), which are applied last to every client statement. The store's own
migrations at start run directly on the engine.
"""

from __future__ import annotations

import email.parser
import email.policy
import io
import ipaddress
import json
import logging
import re
import threading
import time
import uuid
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from abidance.store.guard import Guard, Refused, check_settings
from abidance.store.http_front import HttpFront, Limits, Request
from abidance.store.migrations import apply_migrations, check_identifier
from abidance.store.users import User, Users, sha256_hex

log = logging.getLogger("abidance.store.server")

# Request parameters that are not ClickHouse settings of the statement.
TRANSPORT_PARAMS = frozenset({
    "query", "database", "default_format", "query_id", "session_id", "session_timeout", "session_check",
    "compress", "decompress", "buffer_size", "wait_end_of_query", "client_protocol_version", "role",
    "quota_key", "user", "password", "send_progress_in_http_headers", "enable_http_compression",
    "cancel_http_readonly_queries_on_client_close", "add_http_cors_header", "max_query_size_bytes",
    "output_format_parallel_formatting_http", "extremes_http",
})
_IGNORED_PREFIXES = ("http_", "param_")
_SETTING_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_FORMAT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")
_PY_ONLY_FORMATS = {"dataframe", "arrowtable", "debug"}      # chdb's Python-side pseudo formats
_TRAILING_FORMAT = re.compile(r"\bFORMAT\s+([A-Za-z][A-Za-z0-9]*)\s*;?\s*$", re.IGNORECASE)
_CODE = re.compile(r"Code:\s*(\d+)")
_NAME_SUFFIX = re.compile(r"\s*\(([A-Z][A-Z0-9_]+)\)\s*(\(version [^)]*\))?\s*$")
_RESULT_KEYWORDS = {"SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXISTS", "EXPLAIN", "CHECK", "("}
_SET_VALUE = re.compile(r"^(?:-?\d+(?:\.\d+)?|'(?:[^'\\]|\\.)*'|true|false)$", re.IGNORECASE)
_SESSION_TIMEOUT_S = 60.0


class StoreError(Exception):
    """An error in ClickHouse's shape: code, message, name and the HTTP status to send."""

    def __init__(self, code: int, message: str, name: str = "", status: int = 500):
        super().__init__(message)
        self.code, self.message, self.name, self.status = int(code), message, name, status

    def body(self, version: str) -> str:
        text = self.message.strip()
        if not text.startswith("Code:"):
            text = f"Code: {self.code}. DB::Exception: {text}" + (f" ({self.name})" if self.name else "")
        if "(version " not in text:
            text += f" (version {version})"
        return text + "\n"


def _from_exception(exc: BaseException, context: str = "") -> StoreError:
    if isinstance(exc, StoreError):
        return exc
    text = str(exc)
    i = text.find("Code:")
    if i < 0:
        return StoreError(1001, f"{type(exc).__name__}: {text}{context}", "STD_EXCEPTION")
    text = text[i:].strip()
    code = int(_CODE.match(text).group(1))
    m = _NAME_SUFFIX.search(text)
    name = m.group(1) if m else ""
    if context:
        head = text[:m.start()] if m else text
        text = head.rstrip(". ") + context + (f". ({name})" if name else "")
    return StoreError(code, text, name)


# ---------------------------------------------------------------------------------------------
# SQL scanning: just enough to find an INSERT's FORMAT clause and split SET lists.

def _scan(text: str, start: int = 0):
    """Yield (index, char) of text outside quotes and comments, with the parenthesis depth."""
    i, n, depth = start, len(text), 0
    while i < n:
        c = text[i]
        if c in "'\"`":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            i = j + 1
            continue
        if c == "-" and text.startswith("--", i):
            j = text.find("\n", i)
            i = n if j < 0 else j + 1
            continue
        if c == "/" and text.startswith("/*", i):
            j = text.find("*/", i + 2)
            i = n if j < 0 else j + 2
            continue
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        yield i, c, depth
        i += 1


def _first_word(text: str) -> str:
    for i, c, _ in _scan(text):
        if c.isspace():
            continue
        if c == "(":
            return "("
        m = re.match(r"[A-Za-z]+", text[i:])
        return m.group(0).upper() if m else c
    return ""


_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def split_insert(data: bytes) -> tuple[str, str, int] | None:
    """`INSERT INTO ... FORMAT <fmt><data>` -> (statement before FORMAT, fmt, offset of the data).

    None when data is not an INSERT with a FORMAT clause (INSERT ... VALUES / SELECT run as
    plain statements). The data starts after the format name and the blanks that follow it,
    up to and including the first newline, as in ClickHouse.
    """
    head = bytes(data[:1 << 20]).decode("latin-1")
    if _first_word(head) != "INSERT":
        return None
    prev_end = 0
    for i, c, depth in _scan(head):
        if depth or i < prev_end or not (c.isalpha() or c == "_"):
            continue
        if i > 0 and (head[i - 1].isalnum() or head[i - 1] in "_`\"."):
            continue
        m = _WORD.match(head, i)
        word = m.group(0).upper()
        prev_end = m.end()
        if word in ("VALUES", "SELECT", "WITH"):
            return None
        if word != "FORMAT":
            continue
        f = re.compile(r"\s+([A-Za-z][A-Za-z0-9]*)").match(head, m.end())
        if not f:
            return None
        pos = f.end()
        while pos < len(head) and head[pos] in " \t\r":
            pos += 1
        if pos < len(head) and head[pos] == "\n":
            pos += 1
        return head[:i].strip(), f.group(1), pos
    return None


def _split_top(text: str, sep: str = ",") -> list[str]:
    parts, last = [], 0
    for i, c, depth in _scan(text):
        if c == sep and depth == 0:
            parts.append(text[last:i])
            last = i + 1
    parts.append(text[last:])
    return [p.strip() for p in parts if p.strip()]


def parse_set(sql: str) -> dict[str, str]:
    """`SET a = 1, b = 'x'` -> {a: '1', b: "'x'"} (values kept as SQL literals)."""
    body = re.sub(r"^\s*SET\s+", "", sql.strip().rstrip(";"), flags=re.IGNORECASE)
    out = {}
    for part in _split_top(body):
        name, eq, value = part.partition("=")
        name, value = name.strip(), value.strip()
        if not eq or not _SETTING_NAME.match(name) or not _SET_VALUE.match(value):
            raise StoreError(62, f"Syntax error in SET statement near {part[:80]!r} (a setting takes a number, "
                                 "a quoted string, true or false)", "SYNTAX_ERROR")
        out[name] = value
    return out


def _quote(value: str) -> str:
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def _literal(value: str) -> str:
    """A URL setting value as an SQL literal. Always quoted: ClickHouse converts a quoted literal to a
    numeric setting's type, while a bare number would break a String setting (a numeric dedup token)."""
    return _quote(value)


# ---------------------------------------------------------------------------------------------
# The engine: the one chdb session, its lock and its state.

@dataclass
class _HttpSession:
    settings: dict[str, str] = field(default_factory=dict)
    database: str | None = None
    timeout: float = _SESSION_TIMEOUT_S
    touched: float = field(default_factory=time.monotonic)


@dataclass
class Result:
    body: bytes = b""
    fmt: str | None = None
    summary: dict = field(default_factory=dict)


class Engine:
    """One chdb session; every call runs under one lock (statements and their SET/USE state)."""

    def __init__(self, data_dir: str | Path):
        # Lazy: chdb is the store extra: only the store process opens it.
        from chdb import session as chdb_session

        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.lock = threading.Lock()
        self._session = chdb_session.Session(str(self.data_dir))
        self._db = "default"
        self._applied: dict[str, str] = {}       # setting -> SQL literal as SET on the session now
        self.sessions: dict[str, _HttpSession] = {}
        self.limits: dict[str, str] = {}         # settings applied to every client statement, last
        version, tz = self._session.query("SELECT version(), timezone()", "TabSeparated").bytes().decode().split()
        self.version, self.timezone = version, tz

    @property
    def closed(self) -> bool:
        return self._session is None

    def close(self) -> None:
        with self.lock:
            if self._session is not None:
                self._session.close()
                self._session = None

    def run_sql(self, sql: str):
        """Run one statement directly (migrations, tools); TabSeparated result bytes."""
        with self.lock:
            return self._query(sql, "TabSeparated", None)

    def text_query(self, sql: str, params: dict | None) -> str:
        """One statement's TSVRaw text (the guard's parse and EXPLAIN AST); raises the engine's error."""
        with self.lock:
            return self._query(sql, "TSVRaw", params).bytes().decode("utf-8", "replace")

    # -- internals, called with the lock held -------------------------------------------------
    def _query(self, sql, fmt, params):
        if self._session is None:
            raise StoreError(210, "the store is shutting down", "NETWORK_ERROR", status=503)
        return self._session.query(sql, fmt, params=params or None)

    def _prepare(self, database: str, settings: dict[str, str]) -> None:
        settings = {**settings, **self.limits}          # the server's limits win over any client's
        if database != self._db:
            self._query(f"USE `{database.replace('`', '')}`", "TabSeparated", None)
            self._db = database
        for name in [n for n in self._applied if n not in settings]:
            self._query(f"SET {name} = DEFAULT", "TabSeparated", None)
            del self._applied[name]
        for name, value in settings.items():
            if self._applied.get(name) != value:
                self._applied.pop(name, None)
                self._query(f"SET {name} = {value}", "TabSeparated", None)
                self._applied[name] = value

    def _native_header(self, sql: str, params) -> bytes:
        """A zero-row Native block naming the result's columns and types, as a server sends for an empty
        result (chdb sends no bytes at all, and clients then see no columns)."""
        try:
            text = self._query(f"DESCRIBE ({sql.strip().rstrip(';')})", "TSVRaw", params).bytes().decode()
        except Exception:
            return b""
        cols = [line.split("\t")[:2] for line in text.splitlines() if line]
        out = bytearray(_leb128(len(cols)) + _leb128(0))
        for name, typ in cols:
            for part in (name.encode(), typ.encode()):
                out += _leb128(len(part)) + part
        return bytes(out)

    def session(self, session_id: str | None, timeout: float | None) -> _HttpSession | None:
        now = time.monotonic()
        for sid in [s for s, v in self.sessions.items() if now - v.touched > v.timeout]:
            del self.sessions[sid]
        if not session_id:
            return None
        sess = self.sessions.get(session_id)
        if sess is None:
            sess = self.sessions[session_id] = _HttpSession()
        if timeout is not None:
            sess.timeout = timeout
        sess.touched = now
        return sess

    # -- requests -----------------------------------------------------------------------------
    def execute(self, sql: str, fmt: str, params: dict, database: str, settings: dict[str, str],
                sess: _HttpSession | None) -> Result:
        word = _first_word(sql)
        with self.lock:
            if sess is not None:
                settings = {**sess.settings, **settings}
                database = database or sess.database or "default"
            database = database or "default"
            if word == "SET":
                new = parse_set(sql)
                self._prepare(database, {**settings, **new})      # validates names and values
                if sess is not None:
                    sess.settings.update(new)
                return Result()
            if word == "USE":
                target = sql.strip().rstrip(";").split(None, 1)[1].strip().strip("`\"")
                self._prepare(target, settings)
                if sess is not None:
                    sess.database = target
                return Result()
            self._prepare(database, settings)
            t0 = time.perf_counter_ns()
            res = self._query(sql, fmt, params)
            body = res.bytes() or b""
            m = _TRAILING_FORMAT.search(sql)
            out_fmt = m.group(1) if m else fmt
            if not body and out_fmt.lower() == "native" and word in _RESULT_KEYWORDS:
                body = self._native_header(sql[:m.start()] if m else sql, params)
            summary = _summary(res, time.perf_counter_ns() - t0, result_bytes=len(body))
        returns_rows = bool(body) or word in _RESULT_KEYWORDS
        return Result(body, out_fmt if returns_rows else None, summary)

    def insert(self, statement: str, fmt: str, data, database: str, settings: dict[str, str],
               sess: _HttpSession | None) -> Result:
        inline = {k: v for k, v in settings.items() if k.startswith("insert_")}
        rest = {k: v for k, v in settings.items() if k not in inline}
        if inline:
            clause = ", ".join(f"{k} = {v}" for k, v in inline.items())
            has_settings = any(True for _ in re.finditer(r"\bSETTINGS\b", statement, re.IGNORECASE))
            statement = f"{statement}, {clause}" if has_settings else f"{statement} SETTINGS {clause}"
        with self.lock:
            if sess is not None:
                rest = {**sess.settings, **rest}
                database = database or sess.database
            self._prepare(database or "default", rest)
            if self._session is None:
                raise StoreError(210, "the store is shutting down", "NETWORK_ERROR", status=503)
            t0 = time.perf_counter_ns()
            inserter = self._session.send_insert(statement, fmt)
            try:
                if len(data):
                    inserter.append(data)
                res = inserter.finish()
            except BaseException:
                try:
                    inserter.cancel()
                except Exception:
                    pass
                raise
            elapsed = time.perf_counter_ns() - t0
        return Result(b"", None, {"read_rows": "0", "read_bytes": "0", "written_rows": str(res.rows_written),
                                  "written_bytes": str(res.bytes_written), "total_rows_to_read": "0",
                                  "result_rows": str(res.rows_written), "result_bytes": "0",
                                  "elapsed_ns": str(elapsed)})


def _leb128(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _summary(res, elapsed_ns: int, result_bytes: int = 0) -> dict:
    try:
        rows, nbytes = res.rows_read(), res.bytes_read()
    except Exception:
        rows = nbytes = 0
    return {"read_rows": str(rows), "read_bytes": str(nbytes), "written_rows": "0", "written_bytes": "0",
            "total_rows_to_read": str(rows), "result_rows": "0", "result_bytes": str(result_bytes),
            "elapsed_ns": str(elapsed_ns)}


# ---------------------------------------------------------------------------------------------
# HTTP

def _decompress(data: bytes, encoding: str, limit: int) -> bytes:
    """The body decoded per Content-Encoding, refused past `limit` bytes (a small bomb can inflate to GBs)."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return data
    too_big = StoreError(1001, f"request body over the limit of {limit} bytes once decompressed",
                         "STD_EXCEPTION", status=413)
    try:
        if encoding in ("gzip", "deflate"):
            d = zlib.decompressobj(16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS)
            out = d.decompress(data, limit + 1)
            if len(out) > limit or d.unconsumed_tail:
                raise too_big
            return out
        if encoding == "lz4":
            # Lazy: an optional codec: loaded only when a client asks for it.
            import lz4.frame
            out = lz4.frame.LZ4FrameDecompressor().decompress(data, max_length=limit + 1)
        elif encoding == "zstd":
            # Lazy: an optional codec: loaded only when a client asks for it.
            import zstandard
            out = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)).read(limit + 1)
        else:
            raise ImportError
    except ImportError:
        raise StoreError(48, f"Content-Encoding {encoding!r} is not supported by the served store "
                             "(use compress=False)", "NOT_IMPLEMENTED") from None
    except zlib.error as exc:
        raise StoreError(1001, f"cannot decompress the body ({encoding}): {exc}", "STD_EXCEPTION", status=400) \
            from None
    if len(out) > limit:
        raise too_big
    return out


def _multipart(ctype: str, body: bytes) -> dict[str, str]:
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + ctype.encode("latin-1") + b"\r\n\r\n" + body)
    fields = {}
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if part.get_filename():
            raise StoreError(48, "external data is not supported by the served store", "NOT_IMPLEMENTED")
        if name:
            fields[name] = part.get_payload(decode=True).decode("utf-8")
    return fields


def _is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _content_type(fmt: str) -> str:
    f = fmt.lower()
    if f.startswith(("tabseparated", "tsv")):
        return "text/tab-separated-values; charset=UTF-8"
    if f.startswith("csv"):
        return "text/csv; charset=UTF-8"
    if f.startswith("json"):
        return "application/json; charset=UTF-8"
    if f in ("native", "rowbinary", "arrow", "arrowstream", "parquet", "orc", "avro") or f.startswith("rowbinary"):
        return "application/octet-stream"
    return "text/plain; charset=UTF-8"


class StoreServer:
    """The embedded store served over ClickHouse's HTTP interface (see the module docstring).

    `start()` opens chdb on `data_dir`, applies the migrations and serves on a thread;
    `port` and `url` are known after it. `serve_forever()` blocks until `stop()`.

    `users` (abidance.store.users.Users) says who may connect and with which role; without it,
    `user`/`password` make one writer (no password: the development default). `limits`
    (abidance.store.http_front.Limits) bounds connections, headers, bodies and statement time.
    """

    def __init__(self, data_dir: str | Path, host: str = "127.0.0.1", port: int = 0, database: str = "abidance",
                 market_ttl_days: int = 0, *, allow_remote: bool = False, user: str = "default",
                 password: str | None = None, users: Users | None = None, limits: Limits | None = None):
        if users is None:
            users = Users([User(user or "default", "writer", sha256_hex(password) if password else None)])
        if not _is_loopback(host) and not allow_remote:
            raise ValueError(f"refusing to serve the store on non-loopback address {host!r}: pass allow_remote=True "
                             "(and passwords) to expose it")
        if not _is_loopback(host) and users.open:
            raise ValueError(f"serving the store on {host!r} requires a password for every user")
        self.data_dir = Path(data_dir)
        self.host, self._port = host, int(port)
        self.database = check_identifier(database)
        self.market_ttl_days = int(market_ttl_days)
        self.users = users
        self.limits = (limits or Limits()).validate()
        self.engine: Engine | None = None
        self.guard: Guard | None = None
        self.migrations_applied: list[int] = []
        self._front: HttpFront | None = None
        self._stopped = threading.Event()
        self._refused = 0

    # -- lifecycle -------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self._front.port if self._front else self._port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def counters(self) -> dict:
        """Connections, refusals (auth, bodies, headers, statements) and timeouts so far."""
        return {**(self._front.counters if self._front else {}), "statements_refused": self._refused}

    def start(self) -> "StoreServer":
        if self._front is not None:
            return self
        self._stopped.clear()
        self.engine = Engine(self.data_dir)
        try:
            self.migrations_applied = apply_migrations(self.engine.run_sql, self.database, self.market_ttl_days)
            self.guard = Guard(self.engine.text_query)
            self.engine.limits = {"max_execution_time": str(int(self.limits.max_execution_time_s)),
                                  "timeout_overflow_mode": "'throw'",
                                  "max_memory_usage": str(int(self.limits.max_memory_usage))}
            self._front = HttpFront(self.host, self._port, self.limits, self._serve, self._authenticate,
                                    self._body_limit, self._error_answer)
            self._front.start()
        except BaseException:
            self._front = None
            self.engine.close()
            self.engine = None
            raise
        log.info("abidance store serving %s (data %s, database %s, users %s%s)", self.url, self.data_dir,
                 self.database, ", ".join(f"{u.name} ({u.role})" for u in self.users.by_name.values()),
                 f", migrations applied {self.migrations_applied}" if self.migrations_applied else "")
        return self

    def serve_forever(self) -> None:
        self.start()
        self._stopped.wait()

    def stop(self) -> None:
        front, self._front = self._front, None
        if front is not None:
            front.stop()
        if self.engine is not None:
            self.engine.close()              # waits for a statement in flight (the lock)
        self._stopped.set()
        log.info("abidance store stopped (data %s)", self.data_dir)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- the front end's callbacks (authentication before the body; answers in ClickHouse's shape) ----
    def _authenticate(self, req: Request) -> User | None:
        name, password = req.credentials()
        return self.users.authenticate(name, password)

    def _body_limit(self, user: User) -> int:
        return self.limits.max_body_bytes if user.role == "writer" else self.limits.max_query_body_bytes

    def _error_answer(self, status: int, code: int, message: str, query_id: str = ""):
        exc = StoreError(code, message, "", status=status)
        body = exc.body(self.engine.version if self.engine else "")
        headers = {"Content-Type": "text/plain; charset=UTF-8", "X-ClickHouse-Exception-Code": str(exc.code)}
        if query_id:
            headers["X-ClickHouse-Query-Id"] = query_id
        return status, body.encode("utf-8", "backslashreplace"), headers

    def _serve(self, req: Request, user: User, body: bytes):
        """One authenticated request -> (status, body, headers). Runs on the front end's pool."""
        query_id = ""
        try:
            params = dict(req.params)
            body = _decompress(body, req.headers.get("content-encoding", ""), self._body_limit(user))
            ctype = req.headers.get("content-type", "")
            if body and ctype.split(";", 1)[0].strip().lower() == "multipart/form-data":
                params.update(_multipart(ctype, body))
                body = b""
            path = req.path.rstrip("/")
            if path not in ("", "/query"):
                raise StoreError(0, f"There is no handle {req.path}", "", status=404)
            query_id = params.get("query_id") or str(uuid.uuid4())
            result = self._execute(params, body or b"", user)
            headers = {"X-ClickHouse-Query-Id": query_id, "X-ClickHouse-Timezone": self.engine.timezone,
                       "X-ClickHouse-Summary": json.dumps(result.summary, separators=(",", ":"))}
            if result.fmt:
                headers["X-ClickHouse-Format"] = result.fmt
                headers["Content-Type"] = _content_type(result.fmt)
            else:
                headers["Content-Type"] = "text/plain; charset=UTF-8"
            return 200, result.body, headers
        except Refused as exc:
            self._refused += 1
            log.warning("store: refused a statement of %s (%s): %s", user.name, user.role, exc)
            return self._store_error(StoreError(exc.code, str(exc), exc.name), query_id)
        except StoreError as exc:
            return self._store_error(exc, query_id)
        except Exception as exc:                       # an engine error: ClickHouse's shape
            return self._store_error(_from_exception(exc), query_id)

    def _store_error(self, exc: StoreError, query_id: str):
        if exc.status >= 500 and exc.status != 503:
            log.debug("store error %s: %s", exc.code, exc.message)
        body = exc.body(self.engine.version if self.engine else "")
        headers = {"Content-Type": "text/plain; charset=UTF-8", "X-ClickHouse-Exception-Code": str(exc.code)}
        if query_id:
            headers["X-ClickHouse-Query-Id"] = query_id
        return exc.status, body.encode("utf-8", "backslashreplace"), headers

    # -- one request -----------------------------------------------------------------------------
    def _execute(self, params: dict, body: bytes, user: User) -> Result:
        engine = self.engine
        if engine is None or engine.closed:
            raise StoreError(210, "the store is shutting down", "NETWORK_ERROR", status=503)
        query = params.get("query", "")
        database = params.get("database", "")
        settings = {}
        for k, v in params.items():
            if k in TRANSPORT_PARAMS or k.startswith(_IGNORED_PREFIXES):
                continue
            if not _SETTING_NAME.match(k):
                raise StoreError(115, f"Unknown setting {k!r}", "UNKNOWN_SETTING")
            settings[k] = _literal(v)
        check_settings(settings, user.name, user.role)
        qparams = {k[6:]: v for k, v in params.items() if k.startswith("param_")}
        timeout = params.get("session_timeout")
        with engine.lock:
            sess = engine.session(params.get("session_id"), float(timeout) if timeout else None)
        in_db = database or (sess.database if sess is not None else None) or "default"
        # an INSERT whose data follows its FORMAT clause
        if query:
            split = split_insert(query.encode("utf-8"))
            if split is not None:
                statement, fmt, offset = split
                self.guard.check(f"{statement} FORMAT {fmt}", qparams, user.role, user.name, in_db)
                data = query.encode("utf-8")[offset:] + body if offset < len(query.encode("utf-8")) else body
                return self._insert(engine, statement, fmt, data, database, settings, sess)
        else:
            split = split_insert(body)
            if split is not None:
                statement, fmt, offset = split
                self.guard.check(f"{statement} FORMAT {fmt}", qparams, user.role, user.name, in_db)
                return self._insert(engine, statement, fmt, memoryview(body)[offset:], database, settings, sess)
        try:
            text = (query + ("\n" if query and body else "")) + body.decode("utf-8")
        except UnicodeDecodeError:
            raise StoreError(62, "the query is not valid UTF-8", "SYNTAX_ERROR") from None
        if not text.strip():
            raise StoreError(62, "Empty query", "SYNTAX_ERROR")
        fmt = params.get("default_format") or "TabSeparated"
        if not _FORMAT_NAME.match(fmt) or fmt.lower() in _PY_ONLY_FORMATS:
            raise StoreError(73, f"Unknown format {fmt}", "UNKNOWN_FORMAT")
        m = _TRAILING_FORMAT.search(text)
        if m and m.group(1).lower() in _PY_ONLY_FORMATS:
            raise StoreError(73, f"Unknown format {m.group(1)}", "UNKNOWN_FORMAT")
        root = self.guard.check(text, qparams, user.role, user.name, in_db)
        if root.kind == "Set":
            check_settings(parse_set(text), user.name, user.role)
        return engine.execute(text, fmt, qparams, database, settings, sess)

    def _insert(self, engine: Engine, statement: str, fmt: str, data, database, settings, sess) -> Result:
        if fmt.lower() in _PY_ONLY_FORMATS:
            raise StoreError(73, f"Unknown format {fmt}", "UNKNOWN_FORMAT")
        target = re.match(r"\s*INSERT\s+INTO\s+(?:TABLE\s+)?([^\s(]+)", statement, re.IGNORECASE)
        table = target.group(1) if target else "?"
        try:
            return engine.insert(statement, fmt, data, database, settings, sess)
        except StoreError:
            raise
        except Exception as exc:
            err = _from_exception(exc)
            if table.strip("`\"").split(".")[-1] not in err.message:
                err = _from_exception(exc, f": while inserting into table {table}")
            raise err from None
