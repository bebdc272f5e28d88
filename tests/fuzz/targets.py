"""Fuzz targets: each takes arbitrary bytes and fails (raises AssertionError, or crashes) only on a bug.

- `wire`: a market-stream frame through the Cython parser: an event or None, never an exception.
- `fixed`: decimal text through FixedPoint: exact units or ValueError; units print and parse back;
  levels through parse_levels never write past the arrays.
- `book`: bytes as a script of snapshots and diffs, applied to the Cython book and its pure-Python
  twin: the same status, best levels and counts after every step.
- `config`: bytes as a TOML config: a NodeConfig or ConfigError naming what is wrong.
- `store_http`: bytes as a raw HTTP request to a live served store: an HTTP answer or a closed
  connection, the store alive after it, and never a byte of the host's files in any answer.

Run them for a bounded time with `python -m tests.fuzz.run TARGET` (tests/fuzz/README.md).
"""

from __future__ import annotations

import os
import socket
import struct
import tempfile
from pathlib import Path

import numpy as np
import orjson

from abidance._core.book import BookStatus, OrderBook, Side
from abidance._core.fixed import FixedPoint
from abidance._core.wire import InstrumentCodec, MarketParser

_PARSER = MarketParser([InstrumentCodec("BTCUSDT", "0.01", "0.00001"), InstrumentCodec("ETHUSDT", "0.01", "0.0001")])
_TS = 1_700_000_000_000_000_000


def wire(data: bytes) -> None:
    event = _PARSER.parse(data, _TS)
    if event is None:
        assert _PARSER.last_error or True            # a dropped frame is counted, never raised


_FP = {inc: FixedPoint(inc) for inc in ("0.01", "0.00001", "1", "0.5", "10")}


def fixed(data: bytes) -> None:
    if not data:
        return
    fp = _FP[list(_FP)[data[0] % len(_FP)]]
    body = data[1:]
    for value in (body, body.decode("latin-1")):
        try:
            units = fp.to_units(value)
        except ValueError:
            continue
        assert units >= 0, (value, units)
        assert fp.to_units(fp.to_str(units)) == units, (value, units)
    try:
        FixedPoint(body.decode("latin-1"))
    except ValueError:
        pass
    try:
        levels = orjson.loads(body)
    except orjson.JSONDecodeError:
        return
    px, qty = np.full(4, -7, dtype=np.int64), np.full(4, -7, dtype=np.int64)
    n = fp.parse_levels(_FP["0.00001"], levels, px, qty)
    assert -5 <= n <= 4, n


def book(data: bytes) -> None:
    from tests.twins.book import OrderBookTwin

    ours, twin = OrderBook("F"), OrderBookTwin("F")
    ints = np.frombuffer(data[: len(data) // 2 * 2], dtype="<u2").astype(np.int64)
    i, update = 0, 1
    while i + 2 <= len(ints):
        op, n = int(ints[i]) % 3, int(ints[i + 1]) % 9
        levels = ints[i + 2: i + 2 + 2 * n]
        i += 2 + 2 * n
        pairs = [(int(levels[k]) % 64 + 1, int(levels[k + 1]) % 5) for k in range(0, len(levels) - 1, 2)]
        bids = [(p, q) for p, q in pairs if p <= 32]
        asks = [(p, q) for p, q in pairs if p > 32]
        if op == 0:
            bids = [(p, q or 1) for p, q in bids]
            asks = [(p, q or 1) for p, q in asks]
            a, b = ours.apply_snapshot(np.array(bids or np.empty((0, 2)), dtype=np.int64).reshape(-1, 2),
                                       np.array(asks or np.empty((0, 2)), dtype=np.int64).reshape(-1, 2), update), \
                twin.apply_snapshot(bids, asks, update)
        else:
            first = update + (1 if op == 1 else 2)
            update = first + n
            a = ours.apply_diff_levels(first, update, np.array(bids, dtype=np.int64).reshape(-1, 2),
                                       np.array(asks, dtype=np.int64).reshape(-1, 2))
            b = twin.apply_diff_levels(first, update, bids, asks)
        assert int(a) == int(b), (a, b)
        assert ours.ready == twin.ready
        if ours.ready:
            assert ours.best_bid() == twin.best_bid() and ours.best_ask() == twin.best_ask()
            assert ours.bid_count == len(twin.bids) and ours.ask_count == len(twin.asks)
            assert ours.cumulative_qty(Side.BID, 1) == twin.cumulative_qty(Side.BID, 1)
        update += 1
    assert BookStatus(int(ours.resync_reason)) is not None


_CONFIG_DIR = tempfile.mkdtemp(prefix="abidance-fuzz-config-")


def config(data: bytes) -> None:
    from abidance.config import ConfigError, parse_config

    try:
        parse_config(data.decode("utf-8", "replace"), _CONFIG_DIR, env={})
    except ConfigError as exc:
        assert exc.errors and all(isinstance(e, str) and e for e in exc.errors)


class _Store:
    """One served store (`abidance store`, a child process: chdb stays out of the fuzzing process) for
    the whole run, with a host file that must never leak. The child dies with its parent."""

    proc = None
    port = 0
    marker = b"FUZZ-HOST-SECRET-7f3a"

    @classmethod
    def get(cls) -> int:
        if cls.proc is None:
            import ctypes
            import signal
            import subprocess
            import sys

            def die_with_parent():
                ctypes.CDLL(None).prctl(1, signal.SIGTERM)       # PR_SET_PDEATHSIG

            root = Path(tempfile.mkdtemp(prefix="abidance-fuzz-store-"))
            (root / "secret.txt").write_bytes(cls.marker + b"\n")
            cls.secret = root / "secret.txt"
            env = {k: v for k, v in os.environ.items() if not k.startswith("ABIDANCE_STORE")}
            cls.proc = subprocess.Popen(
                [sys.executable, "-m", "abidance.cli", "store", "--data-dir", str(root / "data"), "--port", "0",
                 "--max-connections", "8", "--max-body-mb", "1", "--max-execution-time", "1",
                 "--log-level", "ERROR"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
                preexec_fn=die_with_parent)
            line = cls.proc.stdout.readline()
            if "ready: " not in line:
                raise RuntimeError(f"the fuzzing store did not start: {line!r}")
            cls.port = int(line.split("ready: ", 1)[1].split(" ", 1)[0].rsplit(":", 1)[1])
        return cls.port

    @classmethod
    def close(cls) -> None:
        if cls.proc is not None:
            cls.proc.terminate()
            cls.proc.wait(30)
            cls.proc = None


def store_http(data: bytes) -> None:
    port = _Store.get()
    data = data.replace(b"SECRET_PATH", str(_Store.secret).encode())
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        answer = b""
        try:
            while len(answer) < 1 << 20:
                chunk = s.recv(65536)
                if not chunk:
                    break
                answer += chunk
        except (socket.timeout, ConnectionResetError):
            pass
    assert _Store.marker not in answer, answer[:300]
    assert not answer or answer.startswith(b"HTTP/1.1 "), answer[:100]
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:      # still alive
        s.sendall(b"GET /ping HTTP/1.1\r\nConnection: close\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 200 ")


TARGETS = {"wire": wire, "fixed": fixed, "book": book, "config": config, "store_http": store_http}
CORPUS = Path(__file__).parent / "corpus"


def seeds(name: str) -> list[bytes]:
    return [p.read_bytes() for p in sorted((CORPUS / name).iterdir()) if p.is_file()]


