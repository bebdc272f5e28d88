"""StoreWriter: every event the node produces, into ClickHouse, never blocking the loop.

On the loop: an event becomes a row tuple appended to its table's buffer (cheap). A
batch leaves when it reaches `batch_rows` or every `flush_s`, and is written by one
writer thread (in order): rows -> Arrow -> clickhouse-connect insert with an
`insert_deduplication_token` naming the batch.

When the store is unreachable the batch goes to the spool (`spool_dir`, one Arrow IPC
file per batch, named by its token) and the writer keeps accepting events; once the
store answers again the spool is replayed oldest first. A batch whose insert reached the
store but whose answer was lost is replayed with the same token, which ClickHouse drops:
every event lands exactly once. A row the store refuses (or that cannot be converted)
is set aside in `spool_dir/rejected/` with the table, column and reason, the rest of its
batch is written, and an alert names it.

Fills and order events are also journaled the moment they arrive: each row is appended to
`spool_dir/journal/<batch token>.rows` with one unbuffered write (the operating system keeps it
when the process is killed with SIGKILL; a power cut may still lose the last ones), and the
file goes once its batch is written or spooled. A writer that starts finds the journals a
killed one left and writes them under their batch's token: a batch that had reached the
store before the kill is dropped by ClickHouse, so each such row lands exactly once.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import secrets
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from decimal import Decimal
from typing import Callable

import orjson
import pyarrow as pa
import pyarrow.ipc as ipc

from abidance.core import topics
from abidance.core.component import Component
from abidance.core.events import Alert
from abidance.store import rows as R
from abidance.store.arrow_batch import BadRow, to_arrow
from abidance.store.schema import BY_NAME

log = logging.getLogger("abidance.store.writer")

JOURNALED = frozenset({"fills", "order_events"})    # rows a SIGKILL must not take with it
_LEN = 4                                              # bytes of each journal record's length prefix


def _tag_decimal(value):
    if isinstance(value, Decimal):
        return {"$d": str(value)}       # exact, as the row holds it
    raise TypeError(f"{type(value).__name__} is not journaled")


def _untag(value):
    return Decimal(value["$d"]) if isinstance(value, dict) and "$d" in value else value


class StoreUnavailable(Exception):
    pass


def _is_connection_error(exc: Exception) -> bool:
    # Lazy: clickhouse-connect is the store extra: only a store connection needs it.
    try:
        from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError
    except ImportError:      # pragma: no cover - the store extra is not installed
        return True
    if isinstance(exc, OperationalError):
        return True
    if isinstance(exc, DatabaseError):
        return False         # the store answered: it refused the data
    return isinstance(exc, (OSError, ConnectionError, TimeoutError))


class StoreWriter(Component):
    def __init__(self, bus, clock, connect: Callable[[], object], instruments: dict, spool_dir: str | Path, *,
                 database: str = "abidance", batch_rows: int = 2000, flush_s: float = 1.0,
                 routes: dict | None = None):
        super().__init__("StoreWriter", bus, clock)
        self.connect = connect
        self.scales = R.Scales(instruments)
        self.spool_dir = Path(spool_dir)
        self.rejected_dir = self.spool_dir / "rejected"
        self.database = database
        self.batch_rows = batch_rows
        self.flush_s = flush_s
        self.routes = routes if routes is not None else R.ROUTES
        self.session = secrets.token_hex(4)
        self._event_ids = itertools.count(1)
        self._batch_ids = itertools.count(1)
        self._buffers: dict[str, list] = defaultdict(list)
        self.journal_dir = self.spool_dir / "journal"
        self._journals: dict[str, tuple[str, object]] = {}     # table -> (its buffer's batch token, file)
        self.journal_replayed_rows = 0
        self._handlers: list[tuple[str, Callable]] = []
        self._executor: ThreadPoolExecutor | None = None
        self._client = None
        self._timer = None
        self._loop = None
        self.up = True
        # The node's own record, for checks: rows accepted per table, rows the store took.
        self.accepted: dict[str, int] = defaultdict(int)
        self.written: dict[str, int] = defaultdict(int)
        self.spooled_batches = 0
        self.replayed_batches = 0
        self.rejected_rows = 0
        self.conversion_errors = 0

    def describe(self) -> dict:
        return {"database": self.database, "batch_rows": self.batch_rows, "flush_s": self.flush_s,
                "tables": sorted({table for table, _, _ in self.routes.values()}), "topics": sorted(self.routes)}

    # ---- lifecycle -------------------------------------------------------------------

    def on_start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        self.journal_dir.mkdir(parents=True, exist_ok=True)
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="store-writer")
        left = sorted(self.journal_dir.glob("*.rows"))      # a killed writer's rows, before any of ours
        if left:
            self._executor.submit(self._replay_journals, left)
        for topic, (table, convert, many) in self.routes.items():
            handler = self._make_handler(table, convert, many)
            self.bus.subscribe(topic, handler)
            self._handlers.append((topic, handler))
        self._timer = self.clock.call_every(int(self.flush_s * 1e9), lambda now: self.flush())
        if any(self.spool_dir.glob("*.arrow")):
            self._executor.submit(self._replay_spool)

    def on_stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        for topic, handler in self._handlers:
            self.bus.unsubscribe(topic, handler)
        self._handlers.clear()
        self.flush()
        self._executor.shutdown(wait=True)     # the last batches: written or spooled, never dropped

    # ---- on the loop -----------------------------------------------------------------

    def _make_handler(self, table: str, convert, many: bool):
        buffer = self._buffers[table]
        scales, ids, session = self.scales, self._event_ids, self.session

        def handle(ev) -> None:
            try:
                row = convert(ev, scales, f"{session}-{next(ids)}")
            except Exception as exc:  # noqa: BLE001 - a bad event must not stop the others
                self.conversion_errors += 1
                log.error("event for %s not convertible (%s): %r", table, exc, ev)
                return
            if many:
                buffer.extend(row)
                self.accepted[table] += len(row)
            else:
                buffer.append(row)
                self.accepted[table] += 1
                if table in JOURNALED:
                    self._journal(table, row)
            if len(buffer) >= self.batch_rows:
                self._flush_table(table)
        return handle

    def flush(self) -> None:
        for table, buffer in self._buffers.items():
            if buffer:
                self._flush_table(table)

    def _flush_table(self, table: str) -> None:
        buffer = self._buffers[table]
        rows = buffer[:]
        buffer.clear()
        journal = self._journals.pop(table, None)
        if journal is not None:
            token, f = journal
            f.close()
            self._executor.submit(self._write_batch, table, rows, token, self.journal_dir / f"{token}.rows")
            return
        self._executor.submit(self._write_batch, table, rows, self._token(table))

    def _token(self, table: str) -> str:
        return f"{self.session}-{table}-{next(self._batch_ids)}"

    def _journal(self, table: str, row) -> None:
        entry = self._journals.get(table)
        if entry is None:
            token = self._token(table)
            entry = self._journals[table] = (token, open(self.journal_dir / f"{token}.rows", "ab", buffering=0))
        data = orjson.dumps(row, default=_tag_decimal)
        entry[1].write(len(data).to_bytes(_LEN, "little") + data)     # one write: whole in the OS or absent

    async def drain(self) -> None:
        """Flush and wait until every batch so far is written or spooled (tests, shutdown)."""
        self.flush()
        await asyncio.wrap_future(self._executor.submit(lambda: None))

    # ---- in the writer thread --------------------------------------------------------

    def _alert(self, level: str, code: str, message: str) -> None:
        alert = Alert(level, "store", code, message, time.time_ns())
        self._loop.call_soon_threadsafe(self.bus.publish, topics.ALERTS, alert)

    def _get_client(self):
        if self._client is None:
            self._client = self.connect()
        return self._client

    def _insert(self, table: str, data: pa.Table, token: str) -> None:
        try:
            self._get_client().insert_arrow(f"{self.database}.{table}", data,
                                            settings={"insert_deduplication_token": token})
        except Exception as exc:
            if _is_connection_error(exc):
                self._client = None
                raise StoreUnavailable(str(exc)) from exc
            raise

    def _write_batch(self, table: str, rows: list, token: str, journal: Path | None = None) -> None:
        if not self.up or any(self.spool_dir.glob("*.arrow")):
            self._replay_spool()            # keep the order: old batches first
        data = self._convert(table, rows, token)
        if data is not None:
            if not self.up:
                self._spool(table, data, token)
            else:
                try:
                    self._insert_checked(table, data, token)
                except StoreUnavailable as exc:
                    self._went_down(exc)
                    self._spool(table, data, token)
        if journal is not None:
            journal.unlink(missing_ok=True)     # the batch is in the store or the spool now

    def _replay_journals(self, paths: list[Path]) -> None:
        """Rows a killed writer journaled, written under their batch's own token."""
        for path in paths:
            token = path.stem
            table = token.split("-", 1)[-1].rsplit("-", 1)[0]
            rows, data = [], path.read_bytes()
            at = 0
            while at + _LEN <= len(data):
                n = int.from_bytes(data[at:at + _LEN], "little")
                if at + _LEN + n > len(data):
                    break                       # cut short by the kill: that row never arrived whole
                rows.append(tuple(_untag(v) for v in orjson.loads(data[at + _LEN:at + _LEN + n])))
                at += _LEN + n
            if table not in JOURNALED:
                log.error("journal %s names no journaled table: left in place", path)
                continue
            log.warning("store: %d %s rows journaled by a stopped writer: writing them (batch %s)", len(rows),
                        table, token)
            self.journal_replayed_rows += len(rows)
            self._write_batch(table, rows, token, path)

    def _convert(self, table: str, rows: list, token: str) -> pa.Table | None:
        """Arrow for the rows that can be stored; the others set aside one by one."""
        spec = BY_NAME[table]
        while rows:
            try:
                return to_arrow(spec, rows)
            except BadRow as bad:
                self._reject(table, [rows[bad.row]], str(bad), token)
                rows = rows[:bad.row] + rows[bad.row + 1:]
        return None

    def _insert_checked(self, table: str, data: pa.Table, token: str) -> None:
        """Insert; when the store refuses the data, find the refused rows by halving."""
        try:
            self._insert(table, data, token)
            self.written[table] += data.num_rows
        except StoreUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001 - the store refused this data
            if data.num_rows == 1:
                self._reject(table, data.to_pylist(), f"refused by the store: {exc}", token)
                return
            half = data.num_rows // 2
            self._insert_checked(table, data.slice(0, half), f"{token}.a")
            self._insert_checked(table, data.slice(half), f"{token}.b")

    def _reject(self, table: str, rows: list, reason: str, token: str) -> None:
        self.rejected_rows += len(rows)
        self.rejected_dir.mkdir(parents=True, exist_ok=True)
        with open(self.rejected_dir / f"{table}.jsonl", "a", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps({"table": table, "batch": token, "reason": reason, "row": row}, default=str) + "\n")
        log.error("store: row set aside (%s): %s", table, reason)
        self._alert("error", "store_row_rejected", f"a {table} row was set aside: {reason}")

    def _spool(self, table: str, data: pa.Table, token: str) -> None:
        path = self.spool_dir / f"{time.time_ns():020d}-{token}.arrow"
        meta = data.replace_schema_metadata({b"table": table.encode(), b"token": token.encode()})
        tmp = path.with_suffix(".tmp")
        with ipc.new_file(tmp, meta.schema) as f:
            f.write_table(meta)
        tmp.replace(path)
        self.spooled_batches += 1

    def _went_down(self, exc: Exception) -> None:
        if self.up:
            self.up = False
            log.error("store unreachable (%s): spooling to %s", exc, self.spool_dir)
            self._alert("error", "store_down", f"store unreachable: spooling to {self.spool_dir}")

    def _replay_spool(self) -> None:
        for path in sorted(self.spool_dir.glob("*.arrow")):
            with ipc.open_file(path) as f:
                data = f.read_all()
            meta = data.schema.metadata or {}
            table, token = meta[b"table"].decode(), meta[b"token"].decode()
            try:
                self._insert_checked(table, data.replace_schema_metadata(None), token)
            except StoreUnavailable as exc:
                self._went_down(exc)
                return
            path.unlink()
            self.replayed_batches += 1
        if not self.up:
            self.up = True
            log.warning("store reachable again: spool replayed")
            self._alert("info", "store_recovered", "store reachable again; spooled events replayed")

    def stats(self) -> dict:
        return {"up": self.up, "accepted": dict(self.accepted), "written": dict(self.written),
                "spooled_batches": self.spooled_batches, "replayed_batches": self.replayed_batches,
                "rejected_rows": self.rejected_rows, "conversion_errors": self.conversion_errors,
                "spool_files": len(list(self.spool_dir.glob("*.arrow")))}
