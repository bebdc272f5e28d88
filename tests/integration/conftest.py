"""A real simulator on loopback ports, run on its own uvloop thread for the test session."""

from __future__ import annotations

import asyncio
import threading

import pytest

from abidance.exchange.sim.config import DEMO_API_KEY, DEMO_API_SECRET, SimConfig
from abidance.exchange.sim.server import SimServer


class LoopThread:
    """A uvloop event loop running on its own thread: submit coroutines or calls to it."""

    def __init__(self, name: str):
        import uvloop

        self.loop = uvloop.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def call(self, coro, timeout: float = 10.0):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def run(self, fn, timeout: float = 10.0):
        """Run fn() on the loop (what lives there is single-threaded) and return its result."""
        async def wrapper():
            return fn()
        return self.call(wrapper(), timeout)

    def shutdown(self) -> None:
        """Cancel what is left, stop the loop and its thread, close the loop."""
        async def cancel_the_rest():
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        self.call(cancel_the_rest())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        # Close the loop here, once: a stopped-but-open uvloop loop whose handles are later
        # garbage-collected from another thread crashes the interpreter.
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()


class RunningSim(LoopThread):
    def __init__(self, cfg: SimConfig):
        super().__init__("sim")
        self.server = SimServer(cfg)
        self.call(self.server.start())

    def close(self) -> None:
        self.call(self.server.stop())
        self.shutdown()

    @property
    def rest_url(self) -> str:
        return self.server.rest_url

    @property
    def ws_url(self) -> str:
        return self.server.ws_url


@pytest.fixture(scope="module")
def sim():
    running = RunningSim(SimConfig(seed=11))
    yield running
    running.close()


API_KEY, API_SECRET = DEMO_API_KEY, DEMO_API_SECRET
