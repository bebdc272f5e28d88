"""The connector against a RunningSim on a private uvloop: scenarios, waits and admin calls."""

from __future__ import annotations

import asyncio

import uvloop

from abidance.core.bus import MessageBus
from abidance.core.clock import LiveClock
from abidance.data.engine import DataEngine
from abidance.exchange.binance.config import BinanceConfig
from abidance.exchange.binance.connector import BinanceConnector
from abidance.exchange.binance.credentials import Credentials
from abidance.exchange.binance.rest import BinanceRest
from abidance.exchange.sim.config import DEMO_API_KEY, DEMO_API_SECRET

SYMBOLS = ("BTCUSDT", "ETHUSDT")


def set_paused(sim, paused: bool) -> None:
    sim.run(lambda: setattr(sim.server.venue, "paused", paused))


def run_with_connector(sim, scenario, *, symbols=SYMBOLS, channels=("trade", "depth"), user_data=False,
                       timeout=40.0, credentials=None, **overrides):
    cfg = BinanceConfig(venue="sim", rest_url=sim.rest_url, ws_url=sim.ws_url, **overrides)
    creds = credentials or Credentials(DEMO_API_KEY, DEMO_API_SECRET)

    async def main():
        bus = MessageBus()
        async with BinanceRest(cfg, creds, bus) as rest:
            conn = BinanceConnector(cfg, bus, rest)
            # The books are the data engine's, fed by the connector (as in the node); kept with it here.
            conn.data = DataEngine(bus, LiveClock(), symbols, [], bar_source="bars",
                                   book_symbols=symbols if "depth" in channels else ())
            conn.snapshots.start()
            conn.data.start()
            await conn.start(symbols, channels, user_data=user_data)
            try:
                return await asyncio.wait_for(scenario(conn, bus, rest), timeout)
            finally:
                conn.data.stop()
                await conn.stop()

    return uvloop.run(main())


async def until(predicate, timeout: float = 10.0, what: str = "condition"):
    end = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def books_ready(conn, timeout: float = 10.0):
    await until(lambda: all(b.ready for b in conn.data.books.keepers.values()), timeout, "books ready")
