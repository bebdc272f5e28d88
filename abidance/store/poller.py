"""StorePoller: read the store on a timer, off the event loop, and act on the loop.

The base of the node's store readers (operator commands, config versions). One query at a
time in its own thread; a failure (store down) drops the client and is retried on the next
tick; the rows of a successful query are handed to `handle` on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

from abidance.core.component import Component

log = logging.getLogger("abidance.store.poller")


class StorePoller(Component):
    what = "the store"          # for log lines: what is being read

    def __init__(self, name: str, bus, clock, connect, database: str, interval_s: float):
        super().__init__(name, bus, clock)
        self.connect = connect
        self.database = database
        self.interval_s = interval_s
        self.errors = 0
        self._client = None
        self._timer = None
        self._busy = False
        self._executor: ThreadPoolExecutor | None = None
        self._loop = None

    # Subclasses: `query` runs in the poller's thread; `handle` on the loop.
    def query(self, client) -> list:
        raise NotImplementedError

    def handle(self, rows: list) -> None:
        raise NotImplementedError

    def on_start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"store-{self.name}")
        self._timer = self.clock.call_every(int(self.interval_s * 1e9), self._tick)

    def on_stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _tick(self, now: int) -> None:
        if not self._busy:
            self._busy = True
            self._executor.submit(self._poll)

    def _poll(self) -> None:
        try:
            if self._client is None:
                self._client = self.connect()
            rows = self.query(self._client)
        except Exception as exc:  # noqa: BLE001 - the store may be down: try again next tick
            self._client = None
            self.errors += 1
            if self.errors == 1 or self.errors % 100 == 0:
                log.warning("%s: reading %s failed (%s); retrying", self.name, self.what, exc)
            return
        finally:
            self._busy = False
        self._loop.call_soon_threadsafe(self.handle, rows)
