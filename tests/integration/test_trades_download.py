"""`abidance download --trades`: aggregate trades into Parquet day files, paged by hour and id,
resumable, id gaps reported; the files feed a trade-driven backtest."""

from __future__ import annotations

import argparse
import asyncio
import io
import time
import zipfile
from datetime import date
from decimal import Decimal

import pytest

from abidance.backtest.data import trades_from_frame
from abidance.backtest.engine import Backtest, sim_instruments
from abidance.config import parse_config
from abidance.download import cli as download_cli
from abidance.download import trades as td
from abidance.download.klines import day_start_ms
from abidance.exchange.binance.config import BinanceConfig
from abidance.exchange.binance.rest import BinanceRest

D0 = day_start_ms(date(2024, 3, 1))


class FakeVenue:
    """Aggregate trades every 2 s with the ids in `missing` absent; answers like Binance (hour windows,
    1000 per page, fromId)."""

    def __init__(self, now_ms: int, missing=()):
        self.now_ms, self.calls = now_ms, 0
        self.trades = [{"a": i, "p": f"{100 + i % 7}.5", "q": "0.01000000", "f": i, "l": i, "T": D0 + 2000 * i,
                        "m": i % 3 == 0, "M": True}
                       for i in range(0, (now_ms - D0) // 2000) if i not in set(missing)]

    async def server_time(self):
        return self.now_ms

    async def agg_trades(self, symbol, from_id=None, start_time=None, end_time=None, limit=500):
        self.calls += 1
        if start_time is not None:
            assert end_time - start_time < 3_600_000                 # Binance's one-hour limit
            return [t for t in self.trades if start_time <= t["T"] <= end_time][:limit]
        return [t for t in self.trades if t["a"] >= from_id][:limit]


def test_hours_are_paged_by_id_and_a_second_run_skips_complete_days(tmp_path):
    venue = FakeVenue(D0 + 2 * 86_400_000 + 3_600_000, missing=(5000, 5001))
    lines = []
    first = asyncio.run(td.TradesDownloader(venue, tmp_path, progress=lines.append).run(
        ["BTCUSDT"], D0, D0 + 2 * 86_400_000))
    assert first.trades == 86_400 - 2 and first.days_fetched == 2
    assert first.gaps == [("BTCUSDT", date(2024, 3, 1), 5000, 5001)]       # the hole is reported
    calls = venue.calls
    second = asyncio.run(td.TradesDownloader(venue, tmp_path).run(["BTCUSDT"], D0, D0 + 2 * 86_400_000))
    assert second.days_skipped == 2 and second.trades == 0 and venue.calls == calls
    frame = td.load_trades(tmp_path, "BTCUSDT")
    assert list(frame.id[:3]) == [0, 1, 2] and frame.price[1] == "101.50000000" and frame.side[0] == "sell"
    assert len(frame) == 86_400 - 2 and frame.timestamp.is_monotonic_increasing


def test_a_bad_trade_is_refused_naming_it():
    with pytest.raises(td.DownloadError, match="needs a, p > 0"):
        td.trades_table([{"a": 1, "p": "-1", "q": "1", "f": 1, "l": 1, "T": 0, "m": True}])


def test_data_file_zip_is_parsed_in_ms_and_us():
    csv_text = "1,100.5,0.1,1,1,1709251200000,true,true\n2,100.6,0.2,2,3,1709251200001000,false,true\n"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("BTCUSDT-aggTrades-2024-03-01.csv", csv_text)
    rows = td.parse_agg_trades_zip(buf.getvalue())
    assert [(r["a"], r["T"], r["m"]) for r in rows] == [(1, 1709251200000, True), (2, 1709251200001, False)]
    assert td.vision_trades_url("BTCUSDT", date(2024, 3, 1)).endswith(
        "/data/spot/daily/aggTrades/BTCUSDT/BTCUSDT-aggTrades-2024-03-01.zip")


def test_download_trades_from_the_simulator_then_backtest_on_them(sim, tmp_path, capsys):
    cfg = BinanceConfig(venue="sim", rest_url=sim.rest_url, ws_url=sim.ws_url)

    async def sim_trades():
        async with BinanceRest(cfg) as rest:
            return await rest.server_time(), await rest.agg_trades("BTCUSDT", limit=1000)

    deadline = time.monotonic() + 20
    while True:
        now, recent = asyncio.run(sim_trades())
        if len(recent) >= 50 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert len(recent) >= 50, "the simulator printed too few trades"
    start = recent[0]["T"]
    parser = argparse.ArgumentParser(prog="abidance")
    download_cli.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["download", "--trades", "--symbols", "BTCUSDT", "--start", str(start),
                              "--end", str(now + 1), "--out", str(tmp_path), "--rest-url", sim.rest_url])
    assert args.func(args) == 0                       # --start/--end as integers of ms
    out = capsys.readouterr().out
    assert "0 id gaps" in out, out
    frame = td.load_trades(tmp_path, "BTCUSDT")
    got = {int(i) for i in frame.id}
    assert {t["a"] for t in recent} <= got              # every trade the simulator still held, once
    assert len(got) == len(frame)
    instruments = sim_instruments()
    trades = trades_from_frame(frame, "BTCUSDT", instruments["BTCUSDT"])
    config = parse_config("""
config_version = 1
[node]
mode = "paper"
[[strategies]]
id = "ema"
class = "ema_cross"
symbols = ["BTCUSDT"]
timeframe = "1s"
params = { fast = 2, slow = 3 }
""", tmp_path, env={})
    result = Backtest(config, trades={"BTCUSDT": trades}, instruments=instruments,
                      balances={"USDT": Decimal(1000)}).run()
    assert result.trades == len(trades) and result.bars > 0


def test_whole_past_days_come_from_the_data_files_and_fall_back_to_rest(tmp_path):
    """A local HTTP server plays data.binance.vision: day 1 has a good file, day 2 a file whose
    checksum does not match (refused), day 3 none (404). Days 2 and 3 come from REST."""
    import hashlib

    from aiohttp import web

    venue = FakeVenue(D0 + 3 * 86_400_000 + 3_600_000)
    day1 = [t for t in venue.trades if t["T"] < D0 + 86_400_000]
    csv_text = "".join(f"{t['a']},{t['p']},{t['q']},{t['f']},{t['l']},{t['T']},{str(t['m']).lower()},true\n"
                       for t in day1)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("BTCUSDT-aggTrades-2024-03-01.csv", csv_text)
    good = buf.getvalue()
    files = {"2024-03-01": (good, hashlib.sha256(good).hexdigest()), "2024-03-02": (good, "0" * 64)}

    async def handler(request):
        name = request.match_info["name"]
        day = name.split("-aggTrades-")[1][:10]
        if day not in files:
            return web.Response(status=404)
        data, digest = files[day]
        if name.endswith(".CHECKSUM"):
            return web.Response(text=f"{digest}  BTCUSDT-aggTrades-{day}.zip")
        return web.Response(body=data)

    async def scenario():
        app = web.Application()
        app.router.add_get("/data/spot/daily/aggTrades/BTCUSDT/{name}", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        try:
            dl = td.TradesDownloader(venue, tmp_path, source="vision", vision_base=f"http://127.0.0.1:{port}")
            return await dl.run(["BTCUSDT"], D0, D0 + 3 * 86_400_000)
        finally:
            await runner.cleanup()

    summary = asyncio.run(scenario())
    assert summary.days_fetched == 3 and summary.trades == 3 * 43_200
    sources = [td.read_day_meta(td.trades_day_path(tmp_path, "BTCUSDT", date(2024, 3, d))).source for d in (1, 2, 3)]
    assert sources == ["vision", "rest", "rest"]
    frame = td.load_trades(tmp_path, "BTCUSDT")
    assert list(frame.id) == [t["a"] for t in venue.trades if t["T"] < D0 + 3 * 86_400_000]
