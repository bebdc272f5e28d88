"""Historical klines: Binance REST (or its public data files) -> Parquet per (symbol, interval, UTC day).

Layout: `<out>/<SYMBOL>/<interval>/<YYYY-MM-DD>.parquet`, one file per UTC day, plus
`<out>/<SYMBOL>/<interval>/gaps.json`. Columns (KLINE_SCHEMA): open_time (int64 ms), open, high,
low, close, volume, quote_volume (decimal128(38, 8): Binance's exact values, never float),
trades (int64), close_time (int64 ms).

Resumable: a day file is written atomically (temporary file, then rename) and records in its
Parquet metadata the window it covers ([window_start, window_end) in ms) and whether that
window had fully closed when fetched ("complete"). A complete file covering the requested
window is skipped; anything else (no file, a partial day, a smaller window) is fetched again,
so an interrupted run continues at the first unfinished day.

Pacing: every REST call goes through BinanceRest, whose RateLimiter reserves the request's
weight (klines: 2) before sending and follows the X-MBX-USED-WEIGHT-1M header, so a long
download waits for budget instead of breaking the limit. A 429 waits its Retry-After; a 418
(IP ban) stops the run; 5xx and transport errors are retried a few times with exponential
backoff. Never a retry storm.

Gaps: missing candles (consecutive open_time differences != interval, and missing bars at
the edges of a closed window) are reported, never an error: exchanges have outages.

Binance's public data files (data.binance.vision) hold the same klines as daily/monthly zips
of CSV; `vision_url` builds their address and `parse_klines_zip` reads them (bytes in). They
are tried first with `source="vision"` (or "auto" on mainnet); whatever fails falls back to REST.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
import logging
import os
import re
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Callable, Iterable

import aiohttp
import pyarrow as pa
import pyarrow.parquet as pq

from abidance.exchange.binance.errors import BinanceApiError, IpBanned, RateLimited, TransportError
from abidance.store.arrow_batch import decimal8_array
from abidance.store.client import connect
from abidance.store.schema import BY_NAME

log = logging.getLogger("abidance.download.klines")

DAY_MS = 86_400_000
LIMIT = 1000                      # Binance's maximum klines per request
# Intervals a per-day file can hold (3d, 1w and 1M bars span several days).
INTERVAL_MS = {"1s": 1000, "1m": 60_000, "3m": 180_000, "5m": 300_000, "15m": 900_000, "30m": 1_800_000,
               "1h": 3_600_000, "2h": 7_200_000, "4h": 14_400_000, "6h": 21_600_000, "8h": 28_800_000,
               "12h": 43_200_000, "1d": DAY_MS}
DEC_TYPE = pa.decimal128(38, 8)
PRICE_COLUMNS = ("open", "high", "low", "close", "volume", "quote_volume")
KLINE_SCHEMA = pa.schema([("open_time", pa.int64()), *[(c, DEC_TYPE) for c in PRICE_COLUMNS],
                          ("trades", pa.int64()), ("close_time", pa.int64())])
META_START, META_END, META_COMPLETE, META_SOURCE = (b"abidance.window_start", b"abidance.window_end",
                                                    b"abidance.complete", b"abidance.source")
VISION_BASE = "https://data.binance.vision"
SYMBOL_RE = re.compile(r"^[A-Z0-9]{2,20}$")
RETRY_ATTEMPTS = 5                # per request, for 429 / 5xx / transport errors
BACKOFF_INITIAL_S = 1.0
BACKOFF_MAX_S = 30.0


class DownloadError(Exception):
    pass


# ---- times ------------------------------------------------------------------------------------

def parse_time(text: str, now_ms: int | None = None) -> int:
    """"2024-01-05", "2024-01-05T12:30", "2024-01-05 12:30:00+02:00", an integer of ms, or "now" -> UTC ms."""
    text = str(text).strip()
    if text.lower() == "now":
        return now_ms if now_ms is not None else int(datetime.now(timezone.utc).timestamp() * 1000)
    if text.isdigit():
        return int(text)
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"not a date or time: {text!r} (use 2024-01-05 or 2024-01-05T12:30)") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp() * 1000)


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def day_of(ms: int) -> date:
    return datetime.fromtimestamp(ms // DAY_MS * 86400, timezone.utc).date()


def day_start_ms(d: date) -> int:
    return int(datetime(d.year, d.month, d.day, tzinfo=timezone.utc).timestamp()) * 1000


def days_between(start_ms: int, end_ms: int) -> list[date]:
    """UTC days touched by [start_ms, end_ms)."""
    if end_ms <= start_ms:
        return []
    first, last = day_of(start_ms), day_of(end_ms - 1)
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def interval_ms(interval: str) -> int:
    try:
        return INTERVAL_MS[interval]
    except KeyError:
        raise ValueError(f"interval {interval!r} is not supported for per-day files "
                         f"(supported: {', '.join(INTERVAL_MS)})") from None


def check_symbol(symbol: str) -> str:
    s = symbol.strip().upper()
    if not SYMBOL_RE.match(s):
        raise ValueError(f"not a Binance symbol: {symbol!r}")
    return s


# ---- rows -> Arrow ----------------------------------------------------------------------------

def _dec(value: Any, column: str, row: int) -> Decimal:
    if isinstance(value, float):
        raise TypeError(f"klines.{column}, row {row}: float {value!r} is not exact; expected a decimal string")
    try:
        d = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"klines.{column}, row {row}: {value!r} is not a decimal") from None
    return d


def klines_table(rows: Iterable[list]) -> pa.Table:
    """Binance kline arrays ([open time, open, high, low, close, volume, close time, quote volume,
    trades, ...], as REST and the data files give them) -> a table in KLINE_SCHEMA, exact."""
    rows = list(rows)
    cols: dict[str, list] = {c: [] for c in KLINE_SCHEMA.names}
    for i, r in enumerate(rows):
        cols["open_time"].append(int(r[0]))
        for name, idx in (("open", 1), ("high", 2), ("low", 3), ("close", 4), ("volume", 5), ("quote_volume", 7)):
            cols[name].append(_dec(r[idx], name, i))
        cols["close_time"].append(int(r[6]))
        cols["trades"].append(int(r[8]))
    arrays = []
    for f in KLINE_SCHEMA:
        if f.type == DEC_TYPE:
            arrays.append(decimal8_array(cols[f.name], "klines", f.name))
        else:
            arrays.append(pa.array(cols[f.name], type=f.type))
    return pa.Table.from_arrays(arrays, schema=KLINE_SCHEMA)


def _dedup_sorted(rows: list[list]) -> list[list]:
    seen: dict[int, list] = {}
    for r in rows:
        seen[int(r[0])] = r
    return [seen[k] for k in sorted(seen)]


# ---- gaps -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Gap:
    symbol: str
    interval: str
    start: int        # open time of the first missing candle (ms)
    end: int          # open time of the next candle present (exclusive; ms)
    missing: int      # candles missing (0: an irregular step, e.g. a misaligned open time)

    def as_dict(self) -> dict:
        return {"symbol": self.symbol, "interval": self.interval, "start": self.start, "end": self.end,
                "start_utc": iso(self.start), "end_utc": iso(self.end), "missing": self.missing}

    def __str__(self) -> str:
        return f"{self.symbol} {self.interval} gap {iso(self.start)} .. {iso(self.end)} ({self.missing} missing)"


def find_gaps(open_times: Iterable[int], interval: str, window_start: int | None = None,
              window_end: int | None = None, symbol: str = "") -> list[Gap]:
    """Missing candles: consecutive open times whose difference is not the interval, plus the
    candles missing between window_start and the first one and between the last one and
    window_end (exclusive; pass the end of the CLOSED part of the window). Sorted input."""
    step = interval_ms(interval)
    times = list(open_times)
    gaps: list[Gap] = []
    if window_start is not None:
        first = -(-window_start // step) * step                 # first open time on the grid
        prev = first - step
    else:
        prev = times[0] - step if times else None
    for t in times:
        if prev is not None and t - prev != step:
            gaps.append(Gap(symbol, interval, prev + step, t, max(0, (t - prev) // step - 1)))
        prev = t
    if window_end is not None and prev is not None:
        last_expected = (window_end - 1) // step * step          # last open time inside the window
        if last_expected > prev:
            gaps.append(Gap(symbol, interval, prev + step, last_expected + step, (last_expected - prev) // step))
    return gaps


def merge_gaps(gaps: list[Gap]) -> list[Gap]:
    """Join gaps that touch (a gap across midnight is found as two, one per day file)."""
    out: list[Gap] = []
    for g in sorted(gaps, key=lambda g: (g.symbol, g.interval, g.start)):
        if out and out[-1].symbol == g.symbol and out[-1].interval == g.interval and out[-1].end == g.start \
                and g.missing and out[-1].missing:
            p = out[-1]
            out[-1] = Gap(p.symbol, p.interval, p.start, g.end, p.missing + g.missing)
        else:
            out.append(g)
    return out


# ---- day files --------------------------------------------------------------------------------

def day_path(out: str | Path, symbol: str, interval: str, d: date) -> Path:
    return Path(out) / symbol / interval / f"{d.isoformat()}.parquet"


@dataclass(frozen=True)
class DayFile:
    path: Path
    window_start: int
    window_end: int
    complete: bool
    source: str


def read_day_meta(path: Path) -> DayFile | None:
    """The window a day file covers, or None if it is missing or unreadable (then it is re-fetched)."""
    try:
        meta = pq.read_schema(path).metadata or {}
        return DayFile(path, int(meta[META_START]), int(meta[META_END]), meta.get(META_COMPLETE) == b"1",
                       meta.get(META_SOURCE, b"rest").decode())
    except (OSError, KeyError, ValueError, pa.ArrowException):
        return None


def write_day(path: Path, table: pa.Table, window_start: int, window_end: int, complete: bool,
              source: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {META_START: str(window_start).encode(), META_END: str(window_end).encode(),
            META_COMPLETE: b"1" if complete else b"0", META_SOURCE: source.encode()}
    table = table.replace_schema_metadata(meta)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def load_klines(out: str | Path, symbol: str, interval: str, start: int | None = None,
                end: int | None = None) -> pa.Table:
    """Downloaded day files of (symbol, interval) as one table, optionally cut to [start, end)."""
    folder = Path(out) / symbol / interval
    tables = [pq.read_table(p, schema=KLINE_SCHEMA) for p in sorted(folder.glob("*.parquet"))]
    table = pa.concat_tables(tables).replace_schema_metadata(None) if tables else KLINE_SCHEMA.empty_table()
    if start is not None or end is not None:
        # Lazy: pyarrow is the store extra: only this path needs it.
        import pyarrow.compute as pc
        mask = pc.and_(pc.greater_equal(table["open_time"], start if start is not None else -2 ** 62),
                       pc.less(table["open_time"], end if end is not None else 2 ** 62))
        table = table.filter(mask)
    return table


def day_gaps(out: str | Path, symbol: str, interval: str) -> list[Gap]:
    """Gaps over every day file on disk for (symbol, interval), each inside its file's window."""
    gaps: list[Gap] = []
    for p in sorted((Path(out) / symbol / interval).glob("*.parquet")):
        meta = read_day_meta(p)
        if meta is None:
            continue
        times = pq.read_table(p, columns=["open_time"])["open_time"].to_pylist()
        end = meta.window_end if meta.complete else None
        gaps += find_gaps(times, interval, meta.window_start, end, symbol)
    return merge_gaps(gaps)


def write_gaps_json(out: str | Path, symbol: str, interval: str) -> tuple[Path, list[Gap]]:
    gaps = day_gaps(out, symbol, interval)
    path = Path(out) / symbol / interval / "gaps.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".gaps.json.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"symbol": symbol, "interval": interval,
                               "written_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                               "gaps": [g.as_dict() for g in gaps]}, indent=1))
    os.replace(tmp, path)
    return path, gaps


# ---- Binance public data files ----------------------------------------------------------------

def vision_url(symbol: str, interval: str, day: date | None = None, month: tuple[int, int] | None = None,
               base: str = VISION_BASE, checksum: bool = False) -> str:
    """https://data.binance.vision/data/spot/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2024-01-05.zip (daily) or
    .../monthly/klines/BTCUSDT/1m/BTCUSDT-1m-2024-01.zip (month=(2024, 1)); `checksum` adds .CHECKSUM."""
    if (day is None) == (month is None):
        raise ValueError("give exactly one of day or month")
    if day is not None:
        period, stamp = "daily", day.isoformat()
    else:
        period, stamp = "monthly", f"{month[0]:04d}-{month[1]:02d}"
    url = f"{base.rstrip('/')}/data/spot/{period}/klines/{symbol}/{interval}/{symbol}-{interval}-{stamp}.zip"
    return url + ".CHECKSUM" if checksum else url


def parse_klines_csv(text: str) -> list[list]:
    """Rows of a klines CSV (no header in spot files; a header line is skipped if present).
    Spot files from 2025 on carry open/close times in microseconds: they are brought to ms."""
    rows = []
    for rec in csv.reader(io.StringIO(text)):
        if not rec or not rec[0].strip():
            continue
        if not rec[0].strip().lstrip("-").isdigit():
            continue                                   # header line
        open_t, close_t = int(rec[0]), int(rec[6])
        if open_t >= 10 ** 14:                         # microseconds (ms stays < 1e14 until year 5138)
            open_t, close_t = open_t // 1000, close_t // 1000
        rows.append([open_t, rec[1], rec[2], rec[3], rec[4], rec[5], close_t, rec[7], int(rec[8]),
                     rec[9] if len(rec) > 9 else "0", rec[10] if len(rec) > 10 else "0", "0"])
    return rows


def parse_klines_zip(data: bytes) -> list[list]:
    """A data.binance.vision klines zip (bytes) -> kline rows (as REST gives them, times in ms)."""
    rows: list[list] = []
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for name in sorted(zf.namelist()):
            if name.lower().endswith(".csv"):
                rows += parse_klines_csv(zf.read(name).decode("utf-8"))
    if not rows and not data:
        raise ValueError("empty zip")
    return _dedup_sorted(rows)


def verify_checksum(data: bytes, checksum_text: str) -> bool:
    """A .CHECKSUM file reads "<sha256 hex>  <file name>"."""
    expected = checksum_text.strip().split()[0].lower() if checksum_text.strip() else ""
    return hashlib.sha256(data).hexdigest() == expected


async def fetch_vision_file(session, url: str) -> bytes | None:
    """A public data file's bytes (None when it is not there yet: 404), checked against its
    .CHECKSUM file when that is there. Needs internet access."""
    async with session.get(url) as resp:
        if resp.status == 404:
            return None
        resp.raise_for_status()
        data = await resp.read()
    try:
        async with session.get(url + ".CHECKSUM") as resp:
            if resp.status == 200 and not verify_checksum(data, await resp.text()):
                raise DownloadError(f"{url}: checksum mismatch")
    except aiohttp.ClientError:
        pass
    return data


async def fetch_vision_day(session, symbol: str, interval: str, day: date, base: str = VISION_BASE) -> list[list] | None:
    """One day's klines from the public data files (None when the file is not there yet)."""
    data = await fetch_vision_file(session, vision_url(symbol, interval, day=day, base=base))
    return None if data is None else parse_klines_zip(data)


# ---- recorded files ---------------------------------------------------------------------------

def _float_dec(x) -> Decimal | None:
    if x is None or x != x:
        return None
    return Decimal(repr(float(x))).quantize(Decimal("1e-8"))


def load_recorded(path: str | Path, interval: str | None = None) -> pa.Table:
    """A recorded candle file from ../shared/data/market (feather: date, open, high, low, close,
    volume as floats) -> KLINE_SCHEMA. Floats become the decimal they print as, rounded to 8
    places; quote_volume and trades are not recorded there and are null. The interval is taken
    from the name ("...-1m.feather") or the most common step. A .parquet file or a download
    folder (<out>/<SYMBOL>/<interval>) is read as it is."""
    path = Path(path)
    if path.is_dir():
        tables = [pq.read_table(p, schema=KLINE_SCHEMA) for p in sorted(path.glob("*.parquet"))]
        return pa.concat_tables(tables).replace_schema_metadata(None) if tables else KLINE_SCHEMA.empty_table()
    if path.suffix == ".parquet":
        return pq.read_table(path, schema=KLINE_SCHEMA).replace_schema_metadata(None)
    # Lazy: pyarrow is the store extra: only this path needs it.
    import pyarrow.feather as feather

    t = feather.read_table(path)
    if "date" not in t.column_names:
        raise ValueError(f"{path}: no 'date' column (columns: {t.column_names})")
    dates = t["date"].cast(pa.timestamp("ms", tz="UTC")).cast(pa.int64()).to_pylist()
    if interval is None:
        m = re.search(r"-(\d+[smhdwM])\.feather$", path.name)
        interval = m.group(1) if m and m.group(1) in INTERVAL_MS else None
    if interval is not None:
        step = interval_ms(interval)
    else:
        diffs = [b - a for a, b in zip(dates, dates[1:]) if b > a]
        step = max(set(diffs), key=diffs.count) if diffs else 60_000
    cols: dict[str, pa.Array] = {"open_time": pa.array(dates, type=pa.int64())}
    for c in PRICE_COLUMNS:
        if c in t.column_names:
            cols[c] = pa.array([_float_dec(x) for x in t[c].to_pylist()], type=DEC_TYPE)
        else:
            cols[c] = pa.nulls(len(dates), type=DEC_TYPE)
    cols["trades"] = (pa.array(t["trades"].to_pylist(), type=pa.int64()) if "trades" in t.column_names
                      else pa.nulls(len(dates), type=pa.int64()))
    cols["close_time"] = pa.array([d + step - 1 for d in dates], type=pa.int64())
    return pa.Table.from_arrays([cols[n] for n in KLINE_SCHEMA.names], schema=KLINE_SCHEMA)


# ---- the store --------------------------------------------------------------------------------

def bars_arrow(table: pa.Table, symbol: str, interval: str) -> pa.Table:
    """Day rows -> the store's `bars` table (its column order; ts = open_time in ns)."""
    # Lazy: Arrow batches need pyarrow (the store extra).
    from abidance.store.arrow_batch import to_arrow
    d = table.to_pydict()
    rows = [(ot * 1_000_000, symbol, interval, ct * 1_000_000, o, h, lo, c, v, n or 0)
            for ot, ct, o, h, lo, c, v, n in zip(d["open_time"], d["close_time"], d["open"], d["high"], d["low"],
                                                 d["close"], d["volume"], d["trades"])]
    return to_arrow(BY_NAME["bars"], rows)


class StoreSink:
    """Inserts day batches into `bars`: bars already there are left out, and each batch carries
    an insert_deduplication_token, so a re-run (or a retried insert) never adds a row twice."""

    def __init__(self, url: str, database: str = "abidance", client=None):
        self.database = database
        self.client = client or connect(url, database=database)
        self.inserted = 0

    def existing(self, symbol: str, interval: str, start_ms: int, end_ms: int) -> set[int]:
        sql = (f"SELECT toInt64(toUnixTimestamp64Milli(ts)) FROM {self.database}.bars "
               f"WHERE symbol = '{check_symbol(symbol)}' AND interval = '{interval}' "
               f"AND ts >= fromUnixTimestamp64Milli(toInt64({int(start_ms)}), 'UTC') "
               f"AND ts < fromUnixTimestamp64Milli(toInt64({int(end_ms)}), 'UTC')")
        return {int(r[0]) for r in self.client.query(sql).result_rows}

    def insert_day(self, symbol: str, interval: str, day: date, table: pa.Table, window_start: int,
                   window_end: int) -> int:
        interval_ms(interval)
        if table.num_rows == 0:
            return 0
        have = self.existing(symbol, interval, window_start, window_end)
        if have:
            # Lazy: pyarrow is the store extra: only this path needs it.
            import pyarrow.compute as pc
            table = table.filter(pc.invert(pc.is_in(table["open_time"], value_set=pa.array(sorted(have),
                                                                                            pa.int64()))))
        if table.num_rows == 0:
            return 0
        digest = hashlib.sha256()
        for c in ("open_time", "close"):
            digest.update(str(table[c].to_pylist()).encode())
        token = f"klines:{symbol}:{interval}:{day.isoformat()}:{digest.hexdigest()[:32]}"
        self.client.insert_arrow(f"{self.database}.bars", bars_arrow(table, symbol, interval),
                                 settings={"insert_deduplication_token": token})
        self.inserted += table.num_rows
        return table.num_rows

    def close(self) -> None:
        try:
            self.client.close()
        except Exception:  # noqa: BLE001 - closing is best effort
            pass


# ---- the downloader ---------------------------------------------------------------------------

@dataclass
class DayResult:
    symbol: str
    interval: str
    day: date
    status: str                 # "fetched", "skipped", "partial" (window not closed yet)
    rows: int
    requests: int = 0
    source: str = "rest"
    gaps: list[Gap] = field(default_factory=list)
    stored: int = 0


@dataclass
class Summary:
    days_fetched: int = 0
    days_skipped: int = 0
    days_partial: int = 0
    rows: int = 0
    requests: int = 0
    stored: int = 0
    gaps: list[Gap] = field(default_factory=list)
    gap_files: list[Path] = field(default_factory=list)
    days: list[DayResult] = field(default_factory=list)

    def line(self) -> str:
        missing = sum(g.missing for g in self.gaps)
        return (f"summary: {self.days_fetched} days fetched, {self.days_skipped} skipped (complete on disk), "
                f"{self.days_partial} partial (not closed yet), {self.rows} rows written, {self.requests} requests, "
                f"{len(self.gaps)} gaps ({missing} candles missing)" + (f", {self.stored} bars stored"
                                                                        if self.stored else ""))


class Downloader:
    """Fetch klines into day files. `client` is a BinanceRest (or anything with async
    `klines(symbol, interval, start_time, end_time, limit)` and `server_time()`)."""

    def __init__(self, client, out: str | Path, *, store: StoreSink | None = None, source: str = "rest",
                 vision_base: str = VISION_BASE, progress: Callable[[str], None] | None = None,
                 sleep: Callable[[float], Any] = asyncio.sleep, http_session=None):
        if source not in ("rest", "vision"):
            raise ValueError(f"source must be 'rest' or 'vision', got {source!r}")
        self.client = client
        self.out = Path(out)
        self.store = store
        self.source = source
        self.vision_base = vision_base
        self.progress = progress or (lambda s: None)
        self.sleep = sleep
        self.http_session = http_session
        self.requests = 0

    async def _klines(self, symbol: str, interval: str, start: int, end: int) -> list:
        delay = BACKOFF_INITIAL_S
        for attempt in range(1, RETRY_ATTEMPTS + 1):
            try:
                self.requests += 1
                return await self.client.klines(symbol, interval, start_time=start, end_time=end, limit=LIMIT)
            except IpBanned:
                raise                                   # waiting it out is the operator's call
            except RateLimited as exc:
                if attempt == RETRY_ATTEMPTS:
                    raise
                wait = exc.retry_after_s or 60.0
                log.warning("klines %s: HTTP 429, waiting %.0f s (Retry-After)", symbol, wait)
                await self.sleep(wait)
            except (TransportError, BinanceApiError) as exc:
                retryable = isinstance(exc, TransportError) or (exc.http_status or 0) >= 500
                if not retryable or attempt == RETRY_ATTEMPTS:
                    raise
                log.warning("klines %s: %s; retry %d in %.1f s", symbol, exc, attempt, delay)
                await self.sleep(delay)
                delay = min(BACKOFF_MAX_S, delay * 2)
        raise AssertionError("unreachable")

    async def fetch_window(self, symbol: str, interval: str, start: int, end: int) -> tuple[list[list], int]:
        """Klines opening in [start, end), paged 1000 at a time; returns (rows, requests)."""
        step = interval_ms(interval)
        rows: list[list] = []
        cursor, n = start, 0
        while cursor < end:
            answer = await self._klines(symbol, interval, cursor, end - 1)
            n += 1
            page = [r for r in answer if start <= int(r[0]) < end]
            if not page:
                break
            rows += page
            last = int(page[-1][0])
            if last + step <= cursor:                  # no progress: never loop on a bad answer
                break
            cursor = last + step
            if len(answer) < LIMIT:                    # a short page: nothing more up to endTime
                break
        return _dedup_sorted(rows), n

    async def _vision_rows(self, symbol: str, interval: str, day: date) -> list[list] | None:
        own = self.http_session is None
        session = self.http_session or aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120))
        try:
            return await fetch_vision_day(session, symbol, interval, day, self.vision_base)
        except Exception as exc:  # noqa: BLE001 - any failure falls back to REST
            log.warning("data file for %s %s %s not used (%s); using REST", symbol, interval, day,
                        type(exc).__name__)
            return None
        finally:
            if own:
                await session.close()

    async def day(self, symbol: str, interval: str, d: date, start: int, end: int, now_ms: int) -> DayResult:
        ds = day_start_ms(d)
        ws, we = max(ds, start), min(ds + DAY_MS, end)
        path = day_path(self.out, symbol, interval, d)
        meta = read_day_meta(path)
        # Candles opening before this had closed at now_ms (close_time = open + step - 1 < now).
        closed_end = min(we, now_ms // interval_ms(interval) * interval_ms(interval))
        if meta is not None and meta.complete and meta.window_start <= ws and meta.window_end >= we:
            table = pq.read_table(path, schema=KLINE_SCHEMA)
            res = DayResult(symbol, interval, d, "skipped", table.num_rows, source=meta.source)
            res.gaps = find_gaps(table["open_time"].to_pylist(), interval, meta.window_start, meta.window_end, symbol)
            if self.store is not None:
                res.stored = self.store.insert_day(symbol, interval, d, table, meta.window_start, meta.window_end)
            return res
        complete = we <= now_ms
        rows, source, n = None, "rest", 0
        if self.source == "vision" and complete and ws == ds and we == ds + DAY_MS:
            rows = await self._vision_rows(symbol, interval, d)
            source = "vision" if rows is not None else "rest"
        if rows is None:
            rows, n = await self.fetch_window(symbol, interval, ws, we)
        # Only closed candles are kept: the one in progress would change.
        rows = [r for r in rows if ws <= int(r[0]) < we and int(r[6]) < now_ms]
        table = klines_table(rows)
        write_day(path, table, ws, we, complete, source)
        res = DayResult(symbol, interval, d, "fetched" if complete else "partial", table.num_rows, n, source)
        res.gaps = find_gaps([int(r[0]) for r in rows], interval, ws, closed_end, symbol)
        if self.store is not None and complete:
            res.stored = self.store.insert_day(symbol, interval, d, table, ws, we)
        return res

    async def run(self, symbols: list[str], interval: str, start: int, end: int) -> Summary:
        interval_ms(interval)
        symbols = [check_symbol(s) for s in symbols]
        if end <= start:
            raise ValueError(f"end ({iso(end)}) must be after start ({iso(start)})")
        now_ms = int(await self.client.server_time())
        self.requests += 1
        summary = Summary()
        for symbol in symbols:
            found: list[Gap] = []
            for d in days_between(start, end):
                if day_start_ms(d) >= now_ms:
                    break                                   # the future has no candles yet
                r = await self.day(symbol, interval, d, start, end, now_ms)
                summary.days.append(r)
                found += r.gaps
                if r.status == "skipped":
                    summary.days_skipped += 1
                else:
                    summary.rows += r.rows
                    if r.status == "fetched":
                        summary.days_fetched += 1
                    else:
                        summary.days_partial += 1
                summary.stored += r.stored
                self.progress(f"{symbol} {interval} {d.isoformat()}: "
                              + (f"skipped (complete on disk, {r.rows} rows)" if r.status == "skipped" else
                                 f"{r.rows} rows, {r.requests} requests"
                                 + (" from the data file" if r.source == "vision" else "")
                                 + (" (partial: not closed yet)" if r.status == "partial" else ""))
                              + (f", {len(r.gaps)} gaps" if r.gaps else "")
                              + (f", {r.stored} bars stored" if r.stored else ""))
            gaps = merge_gaps(found)
            summary.gaps += gaps
            for g in gaps:
                self.progress(f"  {g}")
            if (self.out / symbol / interval).is_dir():
                gap_file, _ = write_gaps_json(self.out, symbol, interval)
                summary.gap_files.append(gap_file)
        summary.requests = self.requests
        return summary
