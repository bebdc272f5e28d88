"""The served store's HTTP/1.1 front end: bounded, and it checks who is asking before it reads a body.

One asyncio loop on its own thread holds every connection (an idle socket costs a coroutine,
not a thread); statements run on a small thread pool (the engine serialises them anyway).
For each request:

1. the request line and headers are read within `header_timeout_s` and `max_header_bytes` /
   `max_headers` (431 beyond; a slow sender is cut);
2. the user is authenticated from the headers and the URL alone (HTTP Basic,
   X-ClickHouse-User/Key, or the `user`/`password` URL parameters as ClickHouse accepts them):
   a wrong password gets 403 and the connection is closed WITHOUT reading the body;
3. the body's framing is checked before a byte of it is read: a Content-Length that is not
   digits, a chunk size that is not hex, both Content-Length and chunked, are 400; a declared
   or accumulating size above the user's limit (`max_body_bytes` for a writer's inserts,
   `max_query_body_bytes` for everyone else) is 413; all bodies being read at once share
   `max_inflight_body_bytes` (503 beyond). `Expect: 100-continue` is answered only then;
4. the handler runs on the pool; its answer is sent; the connection stays open
   (keep-alive) for `idle_timeout_s` after an authenticated request, `header_timeout_s`
   otherwise.

At most `max_connections` connections are open; the next is answered 503 and closed. Every
refusal is counted in `counters` and logged (without credentials).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable
from urllib.parse import parse_qsl, urlsplit

log = logging.getLogger("abidance.store.http")

_HEX_SIZE = re.compile(rb"^[0-9A-Fa-f]{1,16}$")
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


@dataclass(frozen=True)
class Limits:
    """Bounds of the front end (see the module docstring); also the engine's per-statement limits."""

    max_connections: int = 64
    max_header_bytes: int = 64 * 1024
    max_headers: int = 100
    max_body_bytes: int = 256 << 20            # a writer's insert
    max_query_body_bytes: int = 16 << 20       # statements and parameters of every other request
    max_inflight_body_bytes: int = 512 << 20   # all bodies being read at once
    header_timeout_s: float = 10.0
    body_timeout_s: float = 300.0
    idle_timeout_s: float = 300.0
    max_execution_time_s: int = 60             # ClickHouse's max_execution_time of every client statement
    max_memory_usage: int = 4 << 30            # ClickHouse's max_memory_usage of every client statement
    workers: int = 4

    def validate(self) -> "Limits":
        for name, value in vars(self).items():
            if not value > 0:
                raise ValueError(f"store limit {name} must be positive, got {value!r}")
        return self


@dataclass
class Request:
    method: str
    target: str
    version: str
    headers: dict[str, str]                   # lower-case names
    path: str = ""
    params: dict[str, str] = field(default_factory=dict)

    def credentials(self) -> tuple[str, str]:
        """(user, password) as ClickHouse's HTTP interface takes them: Basic, X-ClickHouse-*, URL."""
        auth = self.headers.get("authorization", "")
        if auth[:6].lower() == "basic ":
            try:
                user, _, pw = base64.b64decode(auth[6:].strip(), validate=True).decode("utf-8").partition(":")
                return user, pw
            except (ValueError, UnicodeDecodeError):
                return "\0", ""                      # no such user
        if "x-clickhouse-user" in self.headers or "x-clickhouse-key" in self.headers:
            return self.headers.get("x-clickhouse-user", "default"), self.headers.get("x-clickhouse-key", "")
        return self.params.get("user", "default"), self.params.get("password", "")


class HttpError(Exception):
    def __init__(self, status: int, message: str, close: bool = True):
        super().__init__(message)
        self.status, self.message, self.close = status, message, close


Answer = tuple[int, bytes, dict]


class HttpFront:
    """Serves `handler(request, user, body) -> (status, body, headers)` with the bounds of `limits`.

    `authenticate(request) -> user | None` sees only the request line and headers;
    `body_limit(user) -> bytes` is the user's largest body; `error(status, code, message)` shapes an
    error answer as ClickHouse does.
    """

    def __init__(self, host: str, port: int, limits: Limits, handler: Callable, authenticate: Callable,
                 body_limit: Callable, error: Callable):
        self.host, self._port, self.limits = host, int(port), limits.validate()
        self._handler, self._authenticate, self._body_limit, self._error = handler, authenticate, body_limit, error
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None
        self._pool = ThreadPoolExecutor(max_workers=limits.workers, thread_name_prefix="abidance-store-query")
        self._writers: set = set()
        self.open_connections = 0
        self.inflight_body_bytes = 0
        self.counters = {"connections": 0, "connections_refused": 0, "auth_failed": 0, "bodies_refused": 0,
                         "headers_refused": 0, "timeouts": 0, "bad_requests": 0, "requests": 0}

    # -- lifecycle ---------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._server is not None and self._server.sockets:
            return self._server.sockets[0].getsockname()[1]
        return self._port

    def start(self) -> None:
        ready = threading.Event()
        failure: list[BaseException] = []

        def run():
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            try:
                family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
                self._server = loop.run_until_complete(asyncio.start_server(
                    self._connection, self.host, self._port, family=family, limit=self.limits.max_header_bytes,
                    backlog=self.limits.max_connections, reuse_address=True))
            except BaseException as exc:         # noqa: BLE001 - reported to start()
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                left = asyncio.all_tasks(loop)
                for t in left:
                    t.cancel()
                if left:
                    loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        self._thread = threading.Thread(target=run, name="abidance-store-http", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            raise failure[0]

    def stop(self) -> None:
        loop, server = self._loop, self._server
        if loop is None:
            return

        async def shut():
            if server is not None:
                server.close()
            for w in list(self._writers):
                w.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if server is not None:
                await server.wait_closed()
            loop.stop()

        if loop.is_running():
            asyncio.run_coroutine_threadsafe(shut(), loop)
        if self._thread is not None:
            self._thread.join(10)
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._loop = self._server = self._thread = None

    # -- one connection ----------------------------------------------------------------------------
    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.counters["connections"] += 1
        if self.open_connections >= self.limits.max_connections:
            self.counters["connections_refused"] += 1
            n = self.counters["connections_refused"]
            if n & (n - 1) == 0:                  # 1st, 2nd, 4th, 8th, ...: counted always, logged sparsely
                log.warning("store: %d connections open (max_connections): refused a connection (%d so far)",
                            self.open_connections, n)
            await self._answer(writer, self._error(503, 202, f"too many connections (max_connections = "
                                                             f"{self.limits.max_connections})"), close=True)
            writer.close()
            return
        self.open_connections += 1
        self._writers.add(writer)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            try:            # headers and body are separate writes: without this, delayed ACKs cost 40 ms
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        trusted = False
        try:
            while True:
                timeout = self.limits.idle_timeout_s if trusted else self.limits.header_timeout_s
                try:
                    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
                except asyncio.IncompleteReadError:
                    return                       # the client went away
                except asyncio.TimeoutError:
                    self.counters["timeouts"] += 1
                    return
                except asyncio.LimitOverrunError:
                    self.counters["headers_refused"] += 1
                    await self._answer(writer, self._error(431, 1001, "request headers too large "
                                                                      f"(max_header_bytes = {self.limits.max_header_bytes})"),
                                       close=True)
                    return
                try:
                    keep, authed = await self._request(head, reader, writer)
                except HttpError as exc:
                    key = {403: "auth_failed", 413: "bodies_refused", 503: "bodies_refused"}.get(exc.status,
                                                                                                  "bad_requests")
                    self.counters[key] += 1
                    code = {403: 516, 413: 1001, 408: 159}.get(exc.status, 1001)
                    await self._answer(writer, self._error(exc.status, code, exc.message), close=exc.close)
                    if exc.close:
                        return
                    continue
                trusted = trusted or authed
                if not keep:
                    return
        except (ConnectionError, asyncio.CancelledError):
            return
        finally:
            self.open_connections -= 1
            self._writers.discard(writer)
            writer.close()

    async def _request(self, head: bytes, reader, writer) -> tuple[bool, bool]:
        """Serve one request; (keep the connection open, the user was authenticated)."""
        req = self._parse_head(head)
        self.counters["requests"] += 1
        keep = self._keep_alive(req)
        te = req.headers.get("transfer-encoding", "").strip().lower()
        cl = req.headers.get("content-length")
        if te and cl is not None:
            raise HttpError(400, "both Content-Length and Transfer-Encoding: refusing an ambiguous body")
        if te and te != "chunked":
            raise HttpError(501, f"Transfer-Encoding {te!r} is not supported")
        if cl is not None and not (cl.strip().isdigit() and cl.strip().isascii()):
            raise HttpError(400, f"bad Content-Length {cl[:40]!r}")
        length = int(cl) if cl is not None else (None if te else 0)
        path = req.path.rstrip("/")
        if req.method == "HEAD" or (req.method == "GET" and (path == "/ping" or (path == "" and "query" not in req.params))) \
                or (req.method == "POST" and path == "/ping" and length == 0):
            await self._answer(writer, (200, b"Ok.\n", {"Content-Type": "text/html; charset=UTF-8"}),
                               close=not keep, head_only=req.method == "HEAD")
            return keep, False
        if req.method not in ("GET", "POST"):
            raise HttpError(405, f"method {req.method} is not allowed")
        user = self._authenticate(req)
        if user is None:
            name = req.credentials()[0]
            log.warning("store: authentication failed for user %r from %s", name[:64],
                        (writer.get_extra_info("peername") or ("?",))[0])
            raise HttpError(403, f"{name or 'default'}: Authentication failed: password is incorrect, or there "
                                 "is no user with such name")
        limit = self._body_limit(user)
        if length is not None and length > limit:
            raise HttpError(413, f"request body of {length} bytes is over the limit of {limit} bytes for user "
                                 f"{getattr(user, 'name', '?')}")
        if length and self.inflight_body_bytes + length > self.limits.max_inflight_body_bytes:
            raise HttpError(503, "the store is busy reading other bodies (max_inflight_body_bytes): retry")
        if req.headers.get("expect", "").lower() == "100-continue" and length != 0:
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            await writer.drain()
        body = await self._read_body(reader, length, limit)
        loop = asyncio.get_running_loop()
        answer = await loop.run_in_executor(self._pool, self._handler, req, user, body)
        await self._answer(writer, answer, close=not keep)
        return keep, True

    def _parse_head(self, head: bytes) -> Request:
        lines = head[:-4].split(b"\r\n")
        try:
            method, target, version = lines[0].decode("ascii").split(" ")
        except (ValueError, UnicodeDecodeError):
            raise HttpError(400, "malformed request line") from None
        if not version.startswith("HTTP/1.") or not _TOKEN.match(method):
            raise HttpError(400, "malformed request line")
        if len(lines) - 1 > self.limits.max_headers:
            raise HttpError(431, f"too many headers (max_headers = {self.limits.max_headers})")
        headers: dict[str, str] = {}
        for raw in lines[1:]:
            name, sep, value = raw.decode("latin-1").partition(":")
            if not sep or not _TOKEN.match(name):
                raise HttpError(400, "malformed header line")
            name = name.lower()
            if name in headers and name in ("content-length", "transfer-encoding", "authorization"):
                raise HttpError(400, f"repeated {name} header")
            headers[name] = value.strip()
        url = urlsplit(target)
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        return Request(method, target, version, headers, url.path, params)

    @staticmethod
    def _keep_alive(req: Request) -> bool:
        conn = req.headers.get("connection", "").lower()
        if req.version == "HTTP/1.0":
            return "keep-alive" in conn
        return "close" not in conn

    async def _read_body(self, reader: asyncio.StreamReader, length: int | None, limit: int) -> bytes:
        deadline = asyncio.get_running_loop().time() + self.limits.body_timeout_s
        reserved = 0

        def reserve(n: int) -> None:
            nonlocal reserved
            if self.inflight_body_bytes + n > self.limits.max_inflight_body_bytes:
                raise HttpError(503, "the store is busy reading other bodies (max_inflight_body_bytes): retry")
            self.inflight_body_bytes += n
            reserved += n

        async def within(aw):
            left = deadline - asyncio.get_running_loop().time()
            try:
                return await asyncio.wait_for(aw, max(left, 0.001))
            except asyncio.TimeoutError:
                self.counters["timeouts"] += 1
                raise HttpError(408, f"the body did not arrive within {self.limits.body_timeout_s:g} s") from None
            except asyncio.IncompleteReadError:
                raise HttpError(400, "the body ended early") from None
            except asyncio.LimitOverrunError:
                raise HttpError(400, "a chunk header is too long") from None

        try:
            if length is not None:
                if not length:
                    return b""
                reserve(length)
                return await within(reader.readexactly(length))
            parts, total = [], 0
            while True:
                line = await within(reader.readuntil(b"\r\n"))
                size_text = line[:-2].split(b";", 1)[0].strip()
                if not _HEX_SIZE.match(size_text):
                    raise HttpError(400, f"bad chunk size {size_text[:20]!r}")
                size = int(size_text, 16)
                if size == 0:
                    while (await within(reader.readuntil(b"\r\n"))) != b"\r\n":     # trailers
                        pass
                    return b"".join(parts)
                total += size
                if total > limit:
                    raise HttpError(413, f"request body over the limit of {limit} bytes")
                reserve(size)
                parts.append(await within(reader.readexactly(size)))
                if await within(reader.readexactly(2)) != b"\r\n":
                    raise HttpError(400, "a chunk does not end with CRLF")
        finally:
            self.inflight_body_bytes -= reserved

    async def _answer(self, writer: asyncio.StreamWriter, answer: Answer, close: bool, head_only: bool = False):
        status, body, headers = answer
        lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}"]
        for k, v in headers.items():
            lines.append(f"{k}: {v}")
        lines.append("X-ClickHouse-Server-Display-Name: abidance-store")
        lines.append(f"Content-Length: {len(body)}")
        lines.append("Connection: close" if close else "Connection: keep-alive")
        try:
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace"))
            if body and not head_only:
                writer.write(body)
            await writer.drain()
        except (ConnectionError, RuntimeError):
            pass


_REASONS = {100: "Continue", 200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found",
            405: "Method Not Allowed", 408: "Request Timeout", 411: "Length Required", 413: "Payload Too Large",
            431: "Request Header Fields Too Large", 500: "Internal Server Error", 501: "Not Implemented",
            503: "Service Unavailable"}
