"""Operator commands from the store (the dashboard's kill switch, REDUCING, resume).

The dashboard writes a row into `commands`; the node polls the table twice a second off
the event loop and acts on each new row once, on the loop: "kill" -> the risk engine's
kill switch (halt + cancel all), "reduce" -> REDUCING, "resume" -> ACTIVE. The newest
handled command's time is kept in the node's state, so a restart neither repeats old
commands nor misses ones written while it was down.
"""

from __future__ import annotations

import logging

from abidance.core import topics
from abidance.store.poller import StorePoller

log = logging.getLogger("abidance.store.commands")

COMMANDS = ("kill", "reduce", "resume")


class CommandPoller(StorePoller):
    what = "operator commands"

    def __init__(self, bus, clock, connect, risk, database: str = "abidance", interval_s: float = 0.5,
                 since_ns: int | None = None):
        super().__init__("CommandPoller", bus, clock, connect, database, interval_s)
        self.risk = risk
        self.since_ns = since_ns if since_ns is not None else clock.time_ns()
        self.handled = 0

    def query(self, client) -> list:
        return client.query(
            f"SELECT toUnixTimestamp64Nano(ts), command_id, command, reason, author "
            f"FROM {self.database}.commands WHERE ts > fromUnixTimestamp64Nano({{since:Int64}}, 'UTC') "
            f"ORDER BY ts, command_id", parameters={"since": self.since_ns}).result_rows

    def handle(self, rows) -> None:
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
