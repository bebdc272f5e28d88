"""The simulator disconnects slow consumers as Binance does, with a bounded send buffer per connection.

Issue 16, finding 4: 30 subscribers that never read took the simulator from 125 MB to 2.26 GB in
40 s, and it stayed at 1.1 GB after they left.
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import threading

import pytest

from abidance.exchange.sim.config import SimConfig
from tests.integration.conftest import RunningSim

LIMIT = 256 * 1024
PAYLOAD = {"e": "trade", "pad": "x" * 4000}          # ~4 KB a message
MESSAGES = 2000                                      # ~8 MB to every subscriber


@pytest.fixture
def sim():
    running = RunningSim(SimConfig(seed=16))
    running.server.venue.hub.max_send_buffer_bytes = LIMIT
    yield running
    running.close()


def ws_connect(sim, path: str, rcvbuf: int | None = None) -> socket.socket:
    """A raw WebSocket client: the upgrade, then whatever the test does (or does not) read."""
    host, port = sim.ws_url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.connect((host, int(port)))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return s


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:")) / 1024


def publish_burst(sim, name: str) -> dict:
    """Publish MESSAGES payloads on the simulator's loop, yielding often; report the largest send
    buffer any subscriber reached and who was still subscribed at the end."""
    hub = sim.server.venue.hub

    async def burst():
        biggest = 0
        for i in range(MESSAGES):
            hub.publish(name, PAYLOAD)
            if i % 16 == 0:
                for conn in hub.subscribers.get(name, ()):
                    biggest = max(biggest, conn.transport.underlying_transport.get_write_buffer_size())
                await asyncio.sleep(0.002)        # a market's pace: the reading client keeps up
        await asyncio.sleep(0.2)
        left = hub.subscribers.get(name, set())
        return {"biggest": biggest, "subscribed": len(left),
                "buffered": sum(c.transport.underlying_transport.get_write_buffer_size() for c in left)}

    return sim.call(burst(), timeout=120)


def test_thirty_subscribers_that_never_read_are_disconnected_and_counted(sim):
    hub = sim.server.venue.hub
    slow = [ws_connect(sim, "/ws/btcusdt@trade", rcvbuf=4096) for _ in range(30)]
    drained = []
    reader = ws_connect(sim, "/ws/btcusdt@trade")

    def read_all():
        while True:
            try:
                chunk = reader.recv(1 << 16)
            except OSError:             # closed by the test's end
                return
            if not chunk:
                return
            drained.append(len(chunk))

    t = threading.Thread(target=read_all, daemon=True)
    t.start()
    try:
        before = getattr(hub, "slow_consumers_dropped", 0)
        rss_before = rss_mb()
        result = publish_burst(sim, "btcusdt@trade")
        grown = rss_mb() - rss_before
        # every slow subscriber was cut once its buffer passed the bound, the reader stays
        assert result["biggest"] <= LIMIT + 8 * 1024, result
        assert result["subscribed"] == 1 and result["buffered"] < LIMIT, result
        assert hub.slow_consumers_dropped - before == 30, result
        assert grown < 64, f"the simulator grew {grown:.0f} MB for 30 readers that never read"
        assert sum(drained) > MESSAGES * 4000 * 0.9
        for s in slow:                               # they were disconnected, not left hanging
            s.settimeout(5)
            try:
                while s.recv(1 << 16):
                    pass
            except ConnectionResetError:
                pass
    finally:
        for s in slow:
            s.close()
        reader.close()


def test_a_websocket_api_session_that_never_reads_is_disconnected(sim):
    hub = sim.server.venue.hub
    s = ws_connect(sim, "/ws-api/v3", rcvbuf=4096)
    try:
        def flood():
            async def go():
                session = next(iter(hub.api_sessions))
                for i in range(MESSAGES):
                    session.send_event(1, b'{"e":"pad","p":"' + b"x" * 4000 + b'"}')
                    if i % 16 == 0:
                        await asyncio.sleep(0)
                await asyncio.sleep(0.2)
                return len(hub.api_sessions)
            return sim.call(go(), timeout=120)

        before = getattr(hub, "slow_consumers_dropped", 0)
        assert flood() == 0
        assert hub.slow_consumers_dropped == before + 1
    finally:
        s.close()
