"""The config a node starts with, recorded in the store (`config_versions`, version 0, author "node").

`abidance report drift` replays a window with the config that was in force (docs/drift.md) and
counts each start as a restart. Version 0 is never newer than a version the dashboard saved, so
the config watcher (abidance/store/config_watch.py) never applies these rows. A store that is
down only costs the record: a warning, and the node starts.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone

from abidance.config.render import to_toml
from abidance.drift.recording import NODE_AUTHOR as AUTHOR

log = logging.getLogger("abidance.runtime.config_record")

COMMENT = "in force when the node started"


def config_row(cfg, ts_ns: int) -> list:
    when = datetime.fromtimestamp(ts_ns // 1_000_000_000, timezone.utc).replace(
        microsecond=ts_ns // 1000 % 1_000_000)
    return [when, 0, AUTHOR, to_toml(cfg), COMMENT]


async def record_config(cfg, connect, ts_ns: int, database: str | None = None) -> bool:
    def insert() -> None:
        connect().insert(f"{database or cfg.store.database}.config_versions", [config_row(cfg, ts_ns)],
                         column_names=["ts", "version", "author", "text", "comment"])

    try:
        await asyncio.to_thread(insert)
        return True
    except Exception as exc:  # noqa: BLE001 - the record is optional; trading is not
        log.warning("could not record the config in the store (drift reports need --config): %s", exc)
        return False
