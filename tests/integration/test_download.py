"""`abidance download`: klines from the simulator's REST API into Parquet day files, resumable,
with gaps reported, an optional store insert that never duplicates, and the data-file parser."""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import subprocess
import sys
import zipfile
from datetime import date
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from abidance.download import klines as dl
from abidance.download import cli as download_cli
from abidance.exchange.binance.config import BinanceConfig
from abidance.exchange.binance.errors import RateLimited
from abidance.exchange.binance.rest import BinanceRest
from tests.kit import shared_data

ROOT = Path(__file__).resolve().parents[2]
MIN = 60_000
D0 = dl.day_start_ms(date(2024, 1, 1))


def run(coro):
    return asyncio.run(coro)


class Counting:
    """Wraps a client and counts klines requests."""

    def __init__(self, inner):
        self.inner, self.calls = inner, 0

    async def klines(self, *a, **kw):
        self.calls += 1
        return await self.inner.klines(*a, **kw)

    async def server_time(self):
        return await self.inner.server_time()


class FakeVenue:
    """Deterministic 1m klines (as Binance sends them) with optional holes; fails on request `fail_at`."""

    def __init__(self, now_ms: int, holes: list[tuple[int, int]] = (), fail_at: int | None = None):
        self.now_ms, self.holes, self.fail_at, self.calls = now_ms, list(holes), fail_at, 0

    def row(self, t: int) -> list:
        i = (t - D0) // MIN
        p = Decimal(42000) + Decimal(i % 97) / 100 + Decimal("0.00000001")
        return [t, str(p), str(p + 1), str(p - 1), str(p + Decimal("0.5")), f"{i % 13}.12345678",
                t + MIN - 1, f"{i}.00000001", i % 50, "0", "0", "0"]

    async def klines(self, symbol, interval, start_time=None, end_time=None, limit=500):
        self.calls += 1
        if self.fail_at is not None and self.calls == self.fail_at:
            raise ConnectionAbortedError("interrupted")
        out, t = [], -(-start_time // MIN) * MIN
        while t <= end_time and len(out) < limit and t < self.now_ms:
            if not any(a <= t < b for a, b in self.holes):
                out.append(self.row(t))
            t += MIN
        return out

    async def server_time(self):
        return self.now_ms


def no_sleep_downloader(client, out, **kw):
    async def sleep(_s):
        return None
    return dl.Downloader(client, out, sleep=sleep, **kw)


# ---- against the simulator ------------------------------------------------------------------------

def test_sim_files_match_rest_and_resume_skips(sim, tmp_path):
    cfg = BinanceConfig(venue="sim", rest_url=sim.rest_url, ws_url=sim.ws_url)

    async def scenario():
        async with BinanceRest(cfg) as rest:
            now = await rest.server_time()
            # The sim seeds 1000 one-minute bars of history before its start: stay inside them.
            start, end = (now - 900 * MIN) // MIN * MIN, (now - 30 * MIN) // MIN * MIN
            client = Counting(rest)
            lines: list[str] = []
            first = await dl.Downloader(client, tmp_path, progress=lines.append).run(["BTCUSDT"], "1m", start, end)
            first_calls = client.calls
            second = await dl.Downloader(client, tmp_path).run(["BTCUSDT"], "1m", start, end)
            # The sim's own answer for the same range, in pages.
            direct, t = [], start
            while t < end:
                page = await rest.klines("BTCUSDT", "1m", t, end - 1, 1000)
                if not page:
                    break
                direct += page
                t = page[-1][0] + MIN
            return start, end, first, first_calls, second, client.calls - first_calls, direct, lines

    start, end, first, first_calls, second, second_calls, direct, lines = run(scenario())
    days = dl.days_between(start, end)
    assert first.days_fetched == len(days) and first.days_skipped == 0
    assert first.rows == (end - start) // MIN == 870
    assert first_calls >= len(days) and first_calls <= len(days) + 2       # 870 rows: 1000 a page
    assert first.gaps == []                                                  # the sim has no holes
    assert second.days_skipped == len(days) and second.days_fetched == 0 and second_calls == 0
    assert len(lines) == len(days)

    table = dl.load_klines(tmp_path, "BTCUSDT", "1m")
    assert table.schema == dl.KLINE_SCHEMA
    got = table.to_pylist()
    assert len(got) == len(direct) == 870
    for row, k in zip(got, direct):
        assert row["open_time"] == k[0] and row["close_time"] == k[6] and row["trades"] == k[8]
        for name, idx in (("open", 1), ("high", 2), ("low", 3), ("close", 4), ("volume", 5), ("quote_volume", 7)):
            assert row[name] == Decimal(k[idx]), (name, row, k)
    for d in days:
        assert dl.day_path(tmp_path, "BTCUSDT", "1m", d).exists()
    gaps = json.loads((tmp_path / "BTCUSDT" / "1m" / "gaps.json").read_text())
    assert gaps["gaps"] == []


def test_cli_against_sim(sim, tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="abidance")
    download_cli.add_parser(parser.add_subparsers(dest="command"))
    now = run(_server_time(sim))
    start = dl.iso((now - 120 * MIN) // MIN * MIN)
    end = dl.iso((now - 60 * MIN) // MIN * MIN)
    args = parser.parse_args(["download", "--symbols", "BTCUSDT,ETHUSDT", "--interval", "1m", "--start", start,
                              "--end", end, "--out", str(tmp_path), "--rest-url", sim.rest_url])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "summary:" in out and "120 rows written" in out and "0 gaps" in out, out
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "0 days fetched" in out and "0 rows written" in out, out


async def _server_time(sim):
    cfg = BinanceConfig(venue="sim", rest_url=sim.rest_url, ws_url=sim.ws_url)
    async with BinanceRest(cfg) as rest:
        return await rest.server_time()


# ---- resume, gaps, pacing ------------------------------------------------------------------------

def test_interrupted_run_resumes_at_first_unfinished_day(tmp_path):
    start, end = D0, D0 + 3 * dl.DAY_MS
    venue = FakeVenue(now_ms=end + dl.DAY_MS, fail_at=4)        # day 1: calls 1-2; dies on day 2's 2nd call
    with pytest.raises(ConnectionAbortedError):
        run(no_sleep_downloader(venue, tmp_path).run(["BTCUSDT"], "1m", start, end))
    assert dl.day_path(tmp_path, "BTCUSDT", "1m", date(2024, 1, 1)).exists()
    assert not dl.day_path(tmp_path, "BTCUSDT", "1m", date(2024, 1, 2)).exists()
    assert not list((tmp_path / "BTCUSDT" / "1m").glob(".*tmp"))
    venue.fail_at, venue.calls = None, 0
    summary = run(no_sleep_downloader(venue, tmp_path).run(["BTCUSDT"], "1m", start, end))
    assert (summary.days_skipped, summary.days_fetched, venue.calls) == (1, 2, 4)      # 1440 rows = 2 pages
    assert dl.load_klines(tmp_path, "BTCUSDT", "1m").num_rows == 3 * 1440


def test_partial_day_is_refetched_and_not_future(tmp_path):
    now = D0 + dl.DAY_MS + 600 * MIN + 30_000                  # mid-day 2, mid-candle
    venue = FakeVenue(now_ms=now)
    s1 = run(no_sleep_downloader(venue, tmp_path).run(["BTCUSDT"], "1m", D0, D0 + 5 * dl.DAY_MS))
    assert (s1.days_fetched, s1.days_partial) == (1, 1)      # days 3-5 lie in the future
    assert s1.rows == 1440 + 600                               # the candle in progress is left out
    assert s1.gaps == [] and venue.calls == 2 + 1              # day 1: 2 pages; day 2: one short page
    meta = dl.read_day_meta(dl.day_path(tmp_path, "BTCUSDT", "1m", date(2024, 1, 2)))
    assert not meta.complete
    venue.now_ms, venue.calls = D0 + 3 * dl.DAY_MS, 0
    s2 = run(no_sleep_downloader(venue, tmp_path).run(["BTCUSDT"], "1m", D0, D0 + 2 * dl.DAY_MS))
    assert (s2.days_skipped, s2.days_fetched, s2.rows) == (1, 1, 1440)


def test_gaps_reported_and_written(tmp_path):
    holes = [(D0 + 100 * MIN, D0 + 110 * MIN),                               # 10 candles in day 1
             (D0 + dl.DAY_MS - 5 * MIN, D0 + dl.DAY_MS + 3 * MIN)]          # across midnight: one gap
    venue = FakeVenue(now_ms=D0 + 5 * dl.DAY_MS, holes=holes)
    lines: list[str] = []
    summary = run(no_sleep_downloader(venue, tmp_path, progress=lines.append)
                  .run(["BTCUSDT"], "1m", D0, D0 + 2 * dl.DAY_MS))
    assert [(g.start, g.end, g.missing) for g in summary.gaps] == [(a, b, (b - a) // MIN) for a, b in holes]
    assert summary.rows == 2 * 1440 - 18
    assert any("gap 2024-01-01T01:40:00.000Z" in line for line in lines), lines
    saved = json.loads((tmp_path / "BTCUSDT" / "1m" / "gaps.json").read_text())
    assert [(g["start"], g["end"], g["missing"]) for g in saved["gaps"]] == [(a, b, (b - a) // MIN) for a, b in holes]
    # A hole at the very start of the range is a gap as well; a resumed run reports the same gaps.
    assert dl.find_gaps([D0 + 3 * MIN, D0 + 4 * MIN], "1m", D0, D0 + 6 * MIN) == [
        dl.Gap("", "1m", D0, D0 + 3 * MIN, 3), dl.Gap("", "1m", D0 + 5 * MIN, D0 + 6 * MIN, 1)]
    again = run(no_sleep_downloader(venue, tmp_path).run(["BTCUSDT"], "1m", D0, D0 + 2 * dl.DAY_MS))
    assert again.days_skipped == 2 and again.gaps == summary.gaps


def test_429_waits_retry_after_then_continues(tmp_path):
    venue = FakeVenue(now_ms=D0 + 2 * dl.DAY_MS)
    waits: list[float] = []

    class Limited:
        calls = 0

        async def klines(self, *a, **kw):
            self.calls += 1
            if self.calls == 1:
                raise RateLimited(-1003, "Too many requests", retry_after_s=7)
            return await venue.klines(*a, **kw)

        async def server_time(self):
            return venue.now_ms

    async def sleep(s):
        waits.append(s)

    summary = run(dl.Downloader(Limited(), tmp_path, sleep=sleep).run(["BTCUSDT"], "1m", D0, D0 + dl.DAY_MS))
    assert waits == [7] and summary.rows == 1440


# ---- the store -----------------------------------------------------------------------------------

def test_to_store_twice_inserts_once(tmp_path):
    # The store runs in its own process: chdb allows one data directory per process.
    proc = subprocess.Popen([sys.executable, "-m", "abidance.cli", "store", "--port", "0", "--data-dir",
                             str(tmp_path / "store"), "--log-level", "WARNING"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        line = proc.stdout.readline()
        assert "ready:" in line, (line, proc.stderr.read() if proc.poll() is not None else "")
        url = line.split("ready:")[1].split()[0]
        venue = FakeVenue(now_ms=D0 + 3 * dl.DAY_MS, holes=[(D0 + 10 * MIN, D0 + 12 * MIN)])
        for _ in range(2):
            sink = dl.StoreSink(url)
            try:
                summary = run(no_sleep_downloader(venue, tmp_path / "data", store=sink)
                              .run(["BTCUSDT"], "1m", D0, D0 + 2 * dl.DAY_MS))
            finally:
                sink.close()
        assert summary.days_skipped == 2 and summary.stored == 0
        # Even without the "already there" check, the batch's dedup token drops a repeat insert.
        sink = dl.StoreSink(url)
        sink.existing = lambda *a: set()
        day1 = pq.read_table(dl.day_path(tmp_path / "data", "BTCUSDT", "1m", date(2024, 1, 1)),
                                schema=dl.KLINE_SCHEMA)
        assert sink.insert_day("BTCUSDT", "1m", date(2024, 1, 1), day1, D0, D0 + dl.DAY_MS) == 1440 - 2
        sink.close()
        from abidance.store.client import connect
        client = connect(url)
        n, lo, hi, total = client.query(
            "SELECT count(), min(ts), max(ts), sum(toDecimal128(open, 8)) FROM bars "
            "WHERE symbol = 'BTCUSDT' AND interval = '1m'").result_rows[0]
        assert n == 2 * 1440 - 2
        rows = dl.load_klines(tmp_path / "data", "BTCUSDT", "1m").to_pylist()
        assert total == sum(r["open"] for r in rows)
        first = client.query("SELECT toInt64(toUnixTimestamp64Nano(ts)), toInt64(toUnixTimestamp64Nano(close_time)), "
                             "open, close, volume, trades FROM bars ORDER BY ts LIMIT 1").result_rows[0]
        r = rows[0]
        assert first == (r["open_time"] * 1_000_000, r["close_time"] * 1_000_000, r["open"], r["close"],
                         r["volume"], r["trades"])
        client.close()
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


# ---- data files and recorded files -----------------------------------------------------------------

def test_vision_url_and_zip_parser():
    assert dl.vision_url("BTCUSDT", "1m", day=date(2024, 1, 5)) == (
        "https://data.binance.vision/data/spot/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2024-01-05.zip")
    assert dl.vision_url("ETHUSDT", "1h", month=(2024, 2), checksum=True) == (
        "https://data.binance.vision/data/spot/monthly/klines/ETHUSDT/1h/ETHUSDT-1h-2024-02.zip.CHECKSUM")
    t0 = dl.day_start_ms(date(2024, 1, 5))
    csv_text = (f"{t0},42000.01000000,42010.00000000,41990.5,42005.12345678,1.23456789,{t0 + MIN - 1},"
                f"51851.87654321,17,0.5,21000.1,0\n"
                # 2025+ spot files: microseconds
                f"{(t0 + MIN) * 1000},42005.12345678,42006,42004,42006,0.00000001,{(t0 + 2 * MIN) * 1000 - 1000},"
                f"0.42006000,1,0,0,0\n")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("BTCUSDT-1m-2024-01-05.csv", csv_text)
    data = buf.getvalue()
    rows = dl.parse_klines_zip(data)
    assert [r[0] for r in rows] == [t0, t0 + MIN] and rows[1][6] == t0 + 2 * MIN - 1
    table = dl.klines_table(rows).to_pylist()
    assert table[0] == {"open_time": t0, "open": Decimal("42000.01"), "high": Decimal("42010"),
                        "low": Decimal("41990.5"), "close": Decimal("42005.12345678"),
                        "volume": Decimal("1.23456789"), "quote_volume": Decimal("51851.87654321"),
                        "trades": 17, "close_time": t0 + MIN - 1}
    assert table[1]["volume"] == Decimal("0.00000001")
    assert dl.verify_checksum(data, f"{__import__('hashlib').sha256(data).hexdigest()}  x.zip")
    assert not dl.verify_checksum(data, "00" * 32 + "  x.zip")
    with pytest.raises(Exception):
        dl.klines_table([[t0, "1.000000001", "1", "1", "1", "1", t0 + MIN - 1, "1", 1]])   # 9 decimals
    with pytest.raises(TypeError):
        dl.klines_table([[t0, 1.5, "1", "1", "1", "1", t0 + MIN - 1, "1", 1]])             # a float


def test_load_recorded_market_file():
    path = shared_data("market", "UNITTEST_BTC-1m.feather")
    table = dl.load_recorded(path)
    assert table.schema == dl.KLINE_SCHEMA
    import pandas as pd
    frame = pd.read_feather(path)
    assert table.num_rows == len(frame)
    first = table.slice(0, 1).to_pylist()[0]
    assert first["open_time"] == int(frame["date"].iloc[0].timestamp() * 1000)
    assert first["open"] == Decimal(repr(float(frame["open"].iloc[0]))).quantize(Decimal("1e-8"))
    assert first["close_time"] == first["open_time"] + MIN - 1
    assert first["quote_volume"] is None and first["trades"] is None
    assert first["volume"] == Decimal(repr(float(frame["volume"].iloc[0]))).quantize(Decimal("1e-8"))
    # Recorded files have holes too: the same gap finder reports them.
    gaps = dl.find_gaps(table["open_time"].to_pylist(), "1m")
    assert all(g.missing >= 0 for g in gaps)


def test_exchange_info_saved_from_the_simulator_feeds_a_backtest(sim, tmp_path, capsys):
    """`abidance download --exchange-info` over a real socket, then `abidance backtest --exchange-info`
    on Binance kline CSV candles (issue 18: the CLI knew only the simulator's built-in instruments)."""
    from abidance.cli import main as cli
    from abidance.exchange.backtest.instruments import exchange_info_file
    from tests.unit.backtest.kit import binance_kline_csv, own_config

    info = tmp_path / "info.json"
    assert cli(["download", "--exchange-info", str(info), "--symbols", "BTCUSDT", "--rest-url", sim.rest_url]) == 0
    assert "1 symbols into" in capsys.readouterr().out
    found, skipped = exchange_info_file(info)
    assert set(found) == {"BTCUSDT"} and skipped == [] and found["BTCUSDT"].tick_size == Decimal("0.01")
    binance_kline_csv(tmp_path / "btc.csv", [D0 + 60 * MIN * i for i in range(48)])
    (tmp_path / "btc.toml").write_text(own_config("BTCUSDT", "1h", quote="USDT"))
    assert cli(["backtest", "--config", str(tmp_path / "btc.toml"), "--candles", f"BTCUSDT={tmp_path / 'btc.csv'}",
                "--exchange-info", str(info)]) == 0, capsys.readouterr().err
    assert "round_trips" in capsys.readouterr().out
