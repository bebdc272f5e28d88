"""Config edits from the dashboard, applied to the running node where that is safe.

The dashboard saves a validated config as a new row of `config_versions`. The node polls
for a newer version every second (off the loop), validates it again with the same schema,
and applies the safe changes at once: the risk section's limits, sizing and breaker
thresholds (not its quote asset, kill file or position caps) and the execution section's
timeout, slippage and re-pricing. Everything else needs a restart. Either way an alert
says which keys were applied and which wait for a restart; an invalid version is refused
with every error named. Versions saved before the node started are not replayed: the
node runs the config it was started with.
"""

from __future__ import annotations

import logging
from pathlib import Path

from abidance.config import ConfigError, as_dict, parse_config
from abidance.core import topics
from abidance.core.events import Alert
from abidance.store.poller import StorePoller

log = logging.getLogger("abidance.store.config")

LIVE_RISK_KEYS_EXCLUDED = {"quote_asset", "kill_switch_file", "max_position"}
LIVE_EXECUTION_KEYS = {"limit_timeout_s", "max_slippage_bps", "cancel_replace"}
PATH_KEYS = {("node", "state_dir"), ("node", "strategies_dir"), ("risk", "kill_switch_file"), ("store", "spool_dir")}


def config_diff(old: dict, new: dict) -> list[str]:
    """Changed keys as 'section.key' (strategies compared as a whole table list)."""
    changed = []
    for section in sorted(set(old) | set(new)):
        a, b = old.get(section), new.get(section)
        if isinstance(a, dict) and isinstance(b, dict):
            for key in sorted(set(a) | set(b)):
                if (section, key) not in PATH_KEYS and a.get(key) != b.get(key):
                    changed.append(f"{section}.{key}")
        elif a != b:
            changed.append(section)
    return changed


def is_live(key: str) -> bool:
    section, _, name = key.partition(".")
    return (section == "risk" and name not in LIVE_RISK_KEYS_EXCLUDED) or \
        (section == "execution" and name in LIVE_EXECUTION_KEYS)


class ConfigWatcher(StorePoller):
    what = "config versions"

    def __init__(self, bus, clock, connect, node, base_dir: Path, database: str = "abidance",
                 interval_s: float = 1.0):
        super().__init__("ConfigWatcher", bus, clock, connect, database, interval_s)
        self.node = node
        self.base_dir = Path(base_dir)
        self.version: int | None = None      # newest version seen (None until the first look)
        self.applied: list[str] = []
        self.pending_restart: list[str] = []

    def query(self, client) -> list:
        return client.query(
            f"SELECT version, text FROM {self.database}.config_versions "
            f"WHERE version > {{v:UInt32}} ORDER BY version DESC LIMIT 1",
            parameters={"v": self.version or 0}).result_rows

    def handle(self, rows: list) -> None:
        if self.version is None:
            # First look: whatever is there already predates this run.
            self.version = rows[0][0] if rows else 0
        elif rows:
            self._consider(int(rows[0][0]), rows[0][1])

    def _alert(self, level: str, code: str, message: str) -> None:
        self.bus.publish(topics.ALERTS, Alert(level, "config", code, message, self.clock.time_ns()))

    def _consider(self, version: int, text: str) -> None:
        if version <= (self.version or 0):
            return
        self.version = version
        try:
            new = parse_config(text, self.base_dir, env={})
        except ConfigError as exc:
            self._alert("error", "config_invalid", f"config version {version} refused: " + "; ".join(exc.errors))
            return
        changed = config_diff(as_dict(self.node.config), as_dict(new))
        live = [k for k in changed if is_live(k)]
        later = [k for k in changed if not is_live(k)]
        if live:
            self.node.apply_live_config(new)
        self.applied, self.pending_restart = live, later
        log.warning("config version %d: applied %s; needs a restart: %s", version, live or "nothing",
                    later or "nothing")
        self._alert("info" if not later else "warning", "config_applied",
                    f"config version {version}: applied now: {', '.join(live) or 'nothing'}; "
                    f"needs a restart: {', '.join(later) or 'nothing'}")
