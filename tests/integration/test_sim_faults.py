"""Injected faults reach clients the way a bad day on Binance would, and are seeded."""

from __future__ import annotations

import asyncio
import time
from urllib.request import Request, urlopen

import orjson
import pytest

from abidance.exchange.sim.config import SimConfig
from abidance.exchange.sim.faults import FaultSettings
from tests.integration.conftest import RunningSim
from tests.integration.sim_kit import admin, call

websockets = pytest.importorskip("websockets")


async def depth_ids(sim, seconds: float) -> list[tuple[int, int]]:
    out = []
    async with websockets.connect(sim.ws_url + "/ws/btcusdt@depth@100ms") as ws:
        end = asyncio.get_running_loop().time() + seconds
        while asyncio.get_running_loop().time() < end:
            ev = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
            out.append((ev["U"], ev["u"]))
    return out


def test_depth_faults_break_continuity_and_clean_stream_does_not():
    sim = RunningSim(SimConfig(seed=5))
    try:
        clean = asyncio.run(depth_ids(sim, 1.5))
        assert all(b[0] == a[1] + 1 for a, b in zip(clean, clean[1:])), "a clean stream is continuous"
        admin(sim, "/admin/faults", {"seed": 42, "depth_drop_rate": 0.3, "depth_duplicate_rate": 0.2})
        faulty = asyncio.run(depth_ids(sim, 2.0))
        breaks = sum(b[0] != a[1] + 1 for a, b in zip(faulty, faulty[1:]))
        assert breaks >= 1
        assert sim.server.venue.faults.injected >= breaks
    finally:
        sim.close()


def test_rest_faults_and_clock_skew():
    sim = RunningSim(SimConfig(seed=6))
    try:
        admin(sim, "/admin/faults", {"rest_5xx_rate": 1.0})
        status, body, _ = call(sim, "GET", "/api/v3/ping", key=None)
        assert status == 503 and body["code"] == -1007
        admin(sim, "/admin/faults", {"rest_5xx_rate": 0.0, "clock_skew_ms": 30_000})
        status, body, _ = call(sim, "GET", "/api/v3/account", signed=True)
        assert body["code"] == -1021
        server_time = call(sim, "GET", "/api/v3/time", key=None)[1]["serverTime"]
        assert server_time - time.time() * 1000 > 25_000
        status, body, _ = call(sim, "GET", "/api/v3/account", signed=True, ts_offset=30_000)
        assert status == 200, body          # a client that syncs with /time signs correctly again
    finally:
        sim.close()


def test_connection_lifetime_cut_and_admin_close():
    sim = RunningSim(SimConfig(seed=8, faults=FaultSettings(max_connection_s=0.5)))
    try:
        async def lifetime():
            async with websockets.connect(sim.ws_url + "/ws/btcusdt@bookTicker") as ws:
                t0 = asyncio.get_running_loop().time()
                with pytest.raises(websockets.ConnectionClosed):
                    while True:
                        await asyncio.wait_for(ws.recv(), 5)
                return asyncio.get_running_loop().time() - t0

        assert 0.3 < asyncio.run(lifetime()) < 3
        admin(sim, "/admin/faults", {"max_connection_s": 86_400})

        async def closed_by_admin():
            async with websockets.connect(sim.ws_url + "/ws/btcusdt@bookTicker") as ws:
                await asyncio.wait_for(ws.recv(), 5)
                await asyncio.get_running_loop().run_in_executor(None, admin, sim, "/admin/close-connections")
                with pytest.raises(websockets.ConnectionClosed):
                    while True:
                        await asyncio.wait_for(ws.recv(), 5)

        asyncio.run(closed_by_admin())
    finally:
        sim.close()


def test_stall_silences_depth_streams():
    sim = RunningSim(SimConfig(seed=9))
    try:
        async def run():
            async with websockets.connect(sim.ws_url + "/ws/btcusdt@depth@100ms") as ws:
                await asyncio.wait_for(ws.recv(), 5)
                await asyncio.get_running_loop().run_in_executor(
                    None, lambda: urlopen(Request(sim.rest_url + "/admin/stall?seconds=1.5", method="POST"), timeout=5))
                # drain what was already queued, then nothing for about a second
                with pytest.raises(asyncio.TimeoutError):
                    while True:
                        await asyncio.wait_for(ws.recv(), 0.8)
                ev = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
                assert ev["e"] == "depthUpdate"

        asyncio.run(run())
    finally:
        sim.close()


def test_bad_fault_settings_are_refused_naming_the_key(sim):
    req = Request(sim.rest_url + "/admin/faults", method="POST", data=b'{"depth_drop_rate": 3}')
    with pytest.raises(Exception) as exc:
        urlopen(req, timeout=5)
    assert exc.value.code == 400 and b"depth_drop_rate" in exc.value.read()
