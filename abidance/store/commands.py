"""Operator commands from the store (the dashboard's kill switch, REDUCING, resume).

The dashboard writes a row into `commands`; the node polls the table twice a second off
the event loop and acts on each new row once, on the loop: "kill" -> the risk engine's
kill switch (halt + cancel all), "reduce" -> REDUCING, "resume" -> ACTIVE. The newest
handled command's time is kept in the node's state, so a restart neither repeats old
commands nor misses ones written while it was down.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

from abidance.core import topics
from abidance.core.component import Component

log = logging.getLogger("abidance.store.commands")

COMMANDS = ("kill", "reduce", "resume")


class CommandPoller(Component):
    def __init__(self, bus, clock, connect, risk, database: str = "abidance", interval_s: float = 0.5,
                 since_ns: int | None = None):
        super().__init__("CommandPoller", bus, clock)
        self.connect = connect
        self.risk = risk
        self.database = database
        self.interval_s = interval_s
        self.since_ns = since_ns if since_ns is not None else clock.time_ns()
        self.handled = 0
        self.errors = 0
        self._client = None
        self._timer = None
        self._busy = False
        self._executor: ThreadPoolExecutor | None = None
        self._loop = None

    def on_start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="store-commands")
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
            rows = self._client.query(
                f"SELECT toUnixTimestamp64Nano(ts), command_id, command, reason, author "
                f"FROM {self.database}.commands WHERE ts > fromUnixTimestamp64Nano({{since:Int64}}, 'UTC') "
                f"ORDER BY ts, command_id", parameters={"since": self.since_ns}).result_rows
        except Exception as exc:  # noqa: BLE001 - the store may be down: try again next tick
            self._client = None
            self.errors += 1
            if self.errors == 1 or self.errors % 100 == 0:
                log.warning("reading operator commands failed (%s); retrying", exc)
            rows = []
        finally:
            self._busy = False
        if rows:
            self._loop.call_soon_threadsafe(self._apply, rows)

    def _apply(self, rows) -> None:
        for ts, command_id, command, reason, author in rows:
            if ts <= self.since_ns:
                continue
            self.since_ns = ts
            self.handled += 1
            why = f"{reason or command} (by {author or 'operator'}, command {command_id})"
            log.warning("operator command %s: %s", command, why)
            if command == "kill":
                self.bus.send(topics.KILL, why)
            elif command == "reduce":
                self.risk.set_reducing(why, "operator")
            elif command == "resume":
                self.risk.resume(why, "operator")
            else:
                log.error("unknown operator command %r ignored (known: %s)", command, ", ".join(COMMANDS))
