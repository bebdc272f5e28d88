"""What a restart needs, on disk: open orders, exits, trading state, portfolio.

Written atomically (temporary file, fsync, rename) so a crash leaves either the old or
the new file, never half of one. The exchange stays the truth: after a restart the
reconciliation settles whatever changed while the node was down.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

STATE_FILE = "node-state.json"
STATE_VERSION = 1


class StateFile:
    def __init__(self, state_dir: str | Path):
        self.dir = Path(state_dir)
        self.path = self.dir / STATE_FILE

    def load(self) -> dict:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise ValueError(f"state file {self.path} is unreadable ({exc}); move it away to start fresh") from exc
        if data.get("version") != STATE_VERSION:
            raise ValueError(f"state file {self.path} has version {data.get('version')!r}, expected {STATE_VERSION}")
        return data

    def save(self, state: dict) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        data = json.dumps({"version": STATE_VERSION, **state}, separators=(",", ":"), default=str)
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
