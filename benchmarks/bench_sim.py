"""Simulator throughput: stream messages pushed on one connection, orders matched.

Targets (issue 3): >= 200k pre-encoded depth/trade messages per second on one
connection. Baseline in the same run: the same messages from an aiohttp WebSocket server
(uvloop). Both servers run in their own process; the client (picows) counts frames here.
Orders per second: user orders matched by the in-process SimExchange against
market-maker liquidity (no target in the issue; reported with the pure request rate).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from urllib.request import Request, urlopen

import pytest
from picows import WSListener, WSMsgType, ws_connect

HERE = Path(__file__).parent


class Counter(WSListener):
    def __init__(self):
        self.n = 0
        self.first = None
        self.done = asyncio.get_event_loop().create_future()

    def on_ws_frame(self, transport, frame):
        if frame.msg_type != WSMsgType.TEXT:
            return
        payload = frame.get_payload_as_bytes()
        if payload == b'{"blast":"done"}':
            if not self.done.done():
                self.done.set_result(time.perf_counter())
            return
        if payload.startswith(b'{"e":"depthUpdate","E":'):
            if self.first is None:
                self.first = time.perf_counter()
            self.n += 1


async def receive(url: str, trigger=None) -> float:
    transport, counter = await ws_connect(Counter, url)
    try:
        if trigger is not None:
            await asyncio.sleep(0.2)
            asyncio.get_running_loop().run_in_executor(None, trigger)
        end = await asyncio.wait_for(counter.done, 120)
        return counter.n / (end - counter.first)
    finally:
        transport.disconnect()


def start(cmd) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    return proc, proc.stdout.readline()


@pytest.fixture(scope="module")
def sim_process():
    proc, line = start([sys.executable, "-m", "abidance.cli", "sim", "--log-level", "WARNING"])
    assert line.startswith("abidance sim ready"), line
    rest, ws = line.split("REST ")[1].split()[0], line.split("streams ")[1].split()[0]
    yield rest, ws
    proc.terminate()
    proc.wait(10)


def test_sim_stream_push_rate(benchmark, report, sim_process):
    rest, ws = sim_process
    count = 30_000 if benchmark.disabled else 400_000
    # A stream name nothing else publishes on, so the client counts only the blast.
    url = ws + "/ws/bnbusdt@depth20"

    def trigger():
        urlopen(Request(f"{rest}/admin/blast?stream=bnbusdt@depth20&count={count}", method="POST"), timeout=120)

    rate = asyncio.run(receive(url, trigger))
    proc, port = start([sys.executable, str(HERE / "_aiohttp_blast_server.py")])
    try:
        base = asyncio.run(receive(f"ws://127.0.0.1:{port.strip()}/?count={count}"))
    finally:
        proc.terminate()
        proc.wait(10)
    benchmark.extra_info["count"] = count
    report("sim stream push, one connection (pre-encoded depthUpdate)", rate, "msgs/s", target=200_000,
           target_kind="min", baseline=("aiohttp WebSocket server", base), benchmark=benchmark)
    benchmark.pedantic(lambda: None, rounds=1)


def test_sim_orders_matched_per_second(benchmark, report, measure):
    from abidance.exchange.sim.clock import ManualClock
    from abidance.exchange.sim.exchange import SimExchange
    from abidance.exchange.sim.symbols import default_symbols

    n = 2_000 if benchmark.disabled else 20_000

    def setup():
        clock = ManualClock(1_700_000_000_000)
        ex = SimExchange(default_symbols()[:1], clock.now_ms)
        user = ex.create_account("k", "s", {"USDT": Decimal("100000000"), "BTC": Decimal("1000")})
        for i in range(1, 51):
            ex.mm_quote("BTCUSDT", "BUY", 6_500_000 - i, 10_000_000)
            ex.mm_quote("BTCUSDT", "SELL", 6_500_000 + i, 10_000_000)
        return (ex, user), {}

    def run(ex, user):
        for i in range(n):
            side = "BUY" if i & 1 else "SELL"
            ex.new_order(user, symbol="BTCUSDT", side=side, type="MARKET", quantity="0.00100")

    ns = measure(benchmark, run, ops=n, setup=setup, rounds=3)
    report("sim matching: MARKET orders filled against the book", 1e9 / ns, "orders/s", benchmark=benchmark)
