"""Historical trades: Binance's aggregate trades (REST /api/v3/aggTrades) -> Parquet per UTC day.

Layout: `<out>/<SYMBOL>/trades/<YYYY-MM-DD>.parquet`, columns (TRADE_SCHEMA): agg_id, price and
qty as decimal128(38, 8) (exact), first_id, last_id, time (ms), buyer_is_maker. The day files
follow the klines' rules (abidance.download.klines): written atomically with the window they
cover and whether it had closed, so a complete day is skipped and a run resumes at the first
unfinished one; `--to-store` is not offered for trades (they stay in files: the backtester
reads them with `load_trades`). With `source="vision"` (the CLI's default on mainnet) a whole
past day comes from Binance's public aggTrades data file, checksum checked, falling back to
REST on any failure.

Paging: Binance serves at most 1000 aggregate trades per request and a time window of at most
one hour, so each hour is asked with startTime/endTime and, when a page is full, continued
with fromId. Every request goes through BinanceRest's weight budget. Gaps: aggregate ids are
consecutive on Binance, so a jump in agg_id inside a day is reported as missing trades.
"""

from __future__ import annotations

import csv
import io
import logging
import zipfile
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Callable

import aiohttp
import pyarrow as pa
import pyarrow.parquet as pq

from abidance.download.klines import (DAY_MS, DEC_TYPE, VISION_BASE, DownloadError, check_symbol, day_start_ms,
                                      days_between, fetch_vision_file, iso, read_day_meta, write_day)

log = logging.getLogger("abidance.data.trades")

HOUR_MS = 3_600_000
LIMIT = 1000
TRADE_SCHEMA = pa.schema([("agg_id", pa.int64()), ("price", DEC_TYPE), ("qty", DEC_TYPE), ("first_id", pa.int64()),
                          ("last_id", pa.int64()), ("time", pa.int64()), ("buyer_is_maker", pa.bool_())])


def trades_day_path(out: str | Path, symbol: str, d: date) -> Path:
    return Path(out) / symbol / "trades" / f"{d.isoformat()}.parquet"


def _row(t: dict) -> tuple:
    try:
        price, qty = Decimal(str(t["p"])), Decimal(str(t["q"]))
        if not price.is_finite() or not qty.is_finite() or price <= 0 or qty <= 0:
            raise InvalidOperation
        return int(t["a"]), price, qty, int(t["f"]), int(t["l"]), int(t["T"]), bool(t["m"])
    except (KeyError, TypeError, ValueError, InvalidOperation):
        raise DownloadError(f"aggregate trade {t!r}: needs a, p > 0, q > 0, f, l, T, m") from None


def trades_table(trades: list[dict]) -> pa.Table:
    rows = sorted({r[0]: r for r in map(_row, trades)}.values())     # dedup by agg id, in id order
    cols = list(zip(*rows)) if rows else [[] for _ in TRADE_SCHEMA]
    return pa.table([pa.array(list(c), type=f.type) for c, f in zip(cols, TRADE_SCHEMA)], schema=TRADE_SCHEMA)


def id_gaps(ids: list[int]) -> list[tuple[int, int]]:
    """Missing aggregate ids between consecutive ones: [(first missing, last missing), ...]."""
    return [(a + 1, b - 1) for a, b in zip(ids, ids[1:]) if b > a + 1]


def vision_trades_url(symbol: str, d: date, base: str = VISION_BASE) -> str:
    name = f"{symbol}-aggTrades-{d.isoformat()}"
    return f"{base}/data/spot/daily/aggTrades/{symbol}/{name}.zip"


def parse_agg_trades_zip(data: bytes) -> list[dict]:
    """A data.binance.vision aggTrades zip (CSV: agg id, price, qty, first id, last id, time, buyer
    is maker, best match; time in ms, or in us in newer files) -> aggregate trades as REST gives them."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        text = z.read(z.namelist()[0]).decode()
    out = []
    for row in csv.reader(io.StringIO(text)):
        if not row or not row[0].strip().isdigit():
            continue                                   # a header line
        t = int(row[5])
        out.append({"a": int(row[0]), "p": row[1], "q": row[2], "f": int(row[3]), "l": int(row[4]),
                    "T": t // 1000 if t > 10**14 else t, "m": row[6].strip().lower() == "true"})
    return out


async def fetch_vision_trades_day(session, symbol: str, d: date, base: str = VISION_BASE) -> list[dict] | None:
    """One day's aggregate trades from the public data files (None when the file is not there yet)."""
    data = await fetch_vision_file(session, vision_trades_url(symbol, d, base))
    return None if data is None else parse_agg_trades_zip(data)


def load_trades(out: str | Path, symbol: str):
    """Every downloaded day of symbol as one DataFrame in the recorded-trades layout the backtester
    reads (timestamp ms, id, side of the taker, price, amount; exact decimals as strings)."""
    # Lazy: pandas is an optional extra (dev, ml, dashboard): only this path needs it.
    import pandas as pd

    files = sorted((Path(out) / symbol / "trades").glob("*.parquet"))
    if not files:
        raise FileNotFoundError(f"no downloaded trades for {symbol} under {out}")
    table = pa.concat_tables(pq.read_table(f, schema=TRADE_SCHEMA) for f in files)
    return pd.DataFrame({"timestamp": table["time"].to_pylist(), "id": table["agg_id"].to_pylist(),
                         "side": ["sell" if m else "buy" for m in table["buyer_is_maker"].to_pylist()],
                         "price": [str(p) for p in table["price"].to_pylist()],
                         "amount": [str(q) for q in table["qty"].to_pylist()]})


@dataclass
class TradesSummary:
    days_fetched: int = 0
    days_skipped: int = 0
    days_partial: int = 0
    trades: int = 0
    requests: int = 0
    gaps: list = field(default_factory=list)        # (symbol, day, first missing id, last missing id)

    def line(self) -> str:
        return (f"trades: {self.trades} in {self.days_fetched} days fetched, {self.days_partial} partial, "
                f"{self.days_skipped} skipped (complete on disk); {self.requests} requests; "
                f"{len(self.gaps)} id gaps")


class TradesDownloader:
    """`client`: a BinanceRest (or anything with async `agg_trades(symbol, from_id, start_time,
    end_time, limit)` and `server_time()`)."""

    def __init__(self, client, out: str | Path, *, progress: Callable[[str], None] | None = None,
                 source: str = "rest", vision_base: str = VISION_BASE, http_session=None):
        if source not in ("rest", "vision"):
            raise ValueError(f"source must be 'rest' or 'vision', got {source!r}")
        self.client = client
        self.out = Path(out)
        self.progress = progress or (lambda s: None)
        self.source = source
        self.vision_base = vision_base
        self.http_session = http_session
        self.requests = 0

    async def _vision_day(self, symbol: str, d: date) -> list[dict] | None:
        own = self.http_session is None
        session = self.http_session or aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=300))
        try:
            return await fetch_vision_trades_day(session, symbol, d, self.vision_base)
        except Exception as exc:  # noqa: BLE001 - any failure falls back to REST
            log.warning("data file for %s trades %s not used (%s); using REST", symbol, d, type(exc).__name__)
            return None
        finally:
            if own:
                await session.close()

    async def fetch_window(self, symbol: str, start: int, end: int) -> list[dict]:
        """Aggregate trades printed in [start, end), an hour at a time, continued by id when a page is full."""
        out: list[dict] = []
        for hour in range(start, end, HOUR_MS):
            stop = min(hour + HOUR_MS, end)
            self.requests += 1
            page = await self.client.agg_trades(symbol, start_time=hour, end_time=stop - 1, limit=LIMIT)
            while page:
                out += [t for t in page if hour <= int(t["T"]) < stop]
                if len(page) < LIMIT or int(page[-1]["T"]) >= stop - 1:
                    break
                self.requests += 1
                nxt = await self.client.agg_trades(symbol, from_id=int(page[-1]["a"]) + 1, limit=LIMIT)
                if not nxt or int(nxt[0]["a"]) <= int(page[-1]["a"]):
                    break                                 # no progress: never loop on a bad answer
                page = nxt
        return out

    async def run(self, symbols: list[str], start: int, end: int) -> TradesSummary:
        symbols = [check_symbol(s) for s in symbols]
        if end <= start:
            raise ValueError(f"end ({iso(end)}) must be after start ({iso(start)})")
        now_ms = int(await self.client.server_time())
        summary = TradesSummary()
        for symbol in symbols:
            for d in days_between(start, end):
                ds = day_start_ms(d)
                if ds >= now_ms:
                    break
                ws, we = max(ds, start), min(ds + DAY_MS, end)
                path = trades_day_path(self.out, symbol, d)
                meta = read_day_meta(path)
                if meta is not None and meta.complete and meta.window_start <= ws and meta.window_end >= we:
                    summary.days_skipped += 1
                    self.progress(f"{symbol} trades {d}: skipped (complete on disk)")
                    continue
                complete = we <= now_ms
                rows, source = None, "rest"
                if self.source == "vision" and complete and ws == ds and we == ds + DAY_MS:
                    rows = await self._vision_day(symbol, d)
                    source = "vision" if rows is not None else "rest"
                if rows is None:
                    rows = await self.fetch_window(symbol, ws, min(we, now_ms))
                table = trades_table([t for t in rows if ws <= int(t["T"]) < we])
                write_day(path, table, ws, we, complete, source)
                gaps = id_gaps(table["agg_id"].to_pylist())
                summary.gaps += [(symbol, d, a, b) for a, b in gaps]
                summary.trades += table.num_rows
                if complete:
                    summary.days_fetched += 1
                else:
                    summary.days_partial += 1
                self.progress(f"{symbol} trades {d}: {table.num_rows} trades" + (" (partial)" if not complete else "")
                              + (f", {len(gaps)} id gaps" if gaps else ""))
        summary.requests = self.requests
        return summary
