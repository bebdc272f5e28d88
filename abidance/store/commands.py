"""Operator commands from the store (the dashboard's kill switch, REDUCING, resume).

The dashboard writes a row into `commands`; the node polls the table twice a second off
the event loop and acts on each new row once, on the loop: "kill" -> the risk engine's
kill switch (halt + cancel all), "reduce" -> REDUCING, "resume" -> ACTIVE. The newest
handled command's time is kept in the node's state, so a restart neither repeats old
commands nor misses ones written while it was down.
"""

from __future__ import annotations

import logging
import time
import uuid

from abidance.core import topics
from abidance.store.poller import StorePoller

log = logging.getLogger("abidance.store.commands")

COMMANDS = ("kill", "reduce", "resume")


def write_command(client, database: str, command: str, reason: str, author: str) -> str:
    """One row in `commands` for the node to act on (the dashboard's and chat's path); returns its id.

    INSERT ... SELECT with bound parameters: exact ns time, no client-side formatting."""
    if command not in COMMANDS:
        raise ValueError(f"command must be one of {', '.join(COMMANDS)}, got {command!r}")
    command_id = uuid.uuid4().hex
    client.command(f"INSERT INTO {database}.commands (ts, command_id, command, reason, author) "
                   "SELECT fromUnixTimestamp64Nano({ts:Int64}, 'UTC'), {id:String}, {command:String}, "
                   "{reason:String}, {author:String}",
                   parameters={"ts": time.time_ns(), "id": command_id, "command": command,
                               "reason": reason or command, "author": author})
    return command_id


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
