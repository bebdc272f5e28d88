"""Connector ingest: frames from the simulator over loopback -> events on the bus.

Target (issue 4): sustained ingest >= 200k msgs/s with no growing backlog. The
simulator runs in its own process and pushes a real-sized depthUpdate (5 + 5 levels) as
fast as the socket takes it (/admin/blast); TCP back-pressure means the figure is the
client's pace. Our side is the full live path: picows frame -> MarketParser -> bus
publish -> the data engine's book keeper for the symbol. Baseline in the same run: a `websockets` client doing
json.loads + Decimal conversion of every level, the way a plain-Python bot would.
"""

from __future__ import annotations

import asyncio
import json
import time
from decimal import Decimal
from urllib.request import Request, urlopen

import uvloop

from abidance.core import topics
from abidance.core.bus import MessageBus
from abidance.core.clock import LiveClock
from abidance.data.engine import DataEngine
from abidance.exchange.binance.config import BinanceConfig
from abidance.exchange.binance.connector import BinanceConnector
from abidance.exchange.binance.rest import BinanceRest
from benchmarks.bench_sim import sim_process  # noqa: F401 - the simulator process fixture

DONE = b'{"blast":"done"}'
STREAM = "btcusdt@depth@100ms"


def blast(rest: str, count: int) -> None:
    urlopen(Request(f"{rest}/admin/blast?stream={STREAM}&count={count}", method="POST"), timeout=300)


async def connector_ingest(rest_url: str, ws_url: str, count: int) -> tuple[float, float, float]:
    """(msgs/s overall, msgs/s first quarter, msgs/s last quarter)."""
    cfg = BinanceConfig(venue="sim", rest_url=rest_url, ws_url=ws_url)
    bus = MessageBus()
    delivered = [0]
    bus.subscribe(topics.DEPTH_DIFFS, lambda ev: delivered.__setitem__(0, delivered[0] + 1))
    async with BinanceRest(cfg, None, bus) as rest:
        conn = BinanceConnector(cfg, bus, rest)
        data = DataEngine(bus, LiveClock(), ["BTCUSDT"], [], bar_source="bars", book_symbols=["BTCUSDT"])
        conn.snapshots.start()
        data.start()
        await conn.start(["BTCUSDT"], ("depth",))
        try:
            await asyncio.wait_for(conn.streams.wait_connected(), 10)
            stream_conn = conn.streams.connections[0]
            inner = stream_conn.on_frame
            done = asyncio.get_running_loop().create_future()
            marks: list[float] = []
            quarter = count // 4

            def on_frame(c, payload, ts):
                if payload == DONE:
                    if not done.done():
                        done.set_result(time.perf_counter())
                    return
                inner(c, payload, ts)
                if delivered[0] % quarter == 0:
                    marks.append(time.perf_counter())

            stream_conn.on_frame = on_frame
            await asyncio.sleep(0.5)
            delivered[0] = 0
            start = time.perf_counter()
            asyncio.get_running_loop().run_in_executor(None, blast, rest_url, count)
            end = await asyncio.wait_for(done, 300)
            assert delivered[0] >= count, (delivered[0], count)
            first = quarter / (marks[0] - start)
            last = quarter / (marks[3] - marks[2]) if len(marks) >= 4 else 0.0
            return count / (end - start), first, last
        finally:
            data.stop()
            await conn.stop()


async def plain_python_ingest(rest_url: str, ws_url: str, count: int) -> float:
    import websockets

    n = 0
    async with websockets.connect(f"{ws_url}/ws/{STREAM}", max_size=None, max_queue=None) as ws:
        await asyncio.sleep(0.3)
        start = time.perf_counter()
        asyncio.get_running_loop().run_in_executor(None, blast, rest_url, count)
        async for raw in ws:
            msg = json.loads(raw)
            if msg.get("blast") == "done":
                break
            if msg.get("e") == "depthUpdate":
                [(Decimal(p), Decimal(q)) for p, q in msg["b"]]
                [(Decimal(p), Decimal(q)) for p, q in msg["a"]]
                n += 1
    return n / (time.perf_counter() - start)


def test_connector_sustained_ingest_from_simulator(benchmark, report, sim_process):  # noqa: F811
    rest, ws = sim_process
    count = 20_000 if benchmark.disabled else 400_000
    rate, first, last = uvloop.run(connector_ingest(rest, ws, count))
    base = uvloop.run(plain_python_ingest(rest, ws, count // 4))
    benchmark.extra_info.update(count=count, first_quarter_rate=first, last_quarter_rate=last)
    report("connector ingest: sim -> picows -> parser -> bus -> book", rate, "msgs/s", target=200_000,
           target_kind="min", baseline=("websockets + json + Decimal", base), benchmark=benchmark)
    # No growing backlog: the pace at the end of the burst is the pace at its start.
    report("  first-quarter pace", first, "msgs/s", target_kind="min", benchmark=benchmark)
    report("  last-quarter pace", last, "msgs/s", target_kind="min", benchmark=benchmark)
    benchmark.pedantic(lambda: None, rounds=1)
