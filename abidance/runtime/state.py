"""What a restart needs, on disk: open orders, exits, trading state, portfolio.

Written atomically (temporary file, fsync, rename) so a crash leaves either the old or
the new file, never half of one. The exchange stays the truth: after a restart the
reconciliation settles whatever changed while the node was down.

Small by construction: only open orders (closed ones leave the execution engine), one
bracket per (strategy, symbol), one position per (strategy, symbol). Written off the event
loop by `StateWriter`: one thread, and a one-slot mailbox, so a burst of order events costs
one write of the newest state, never a queue of stale ones.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path

log = logging.getLogger("abidance.state")

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


class StateWriter:
    """Writes states with `StateFile.save` in a thread of its own; only the newest waiting state is
    written (`superseded` counts the ones replaced before their turn). `on_error(exc)` runs in the
    writer thread when a write fails."""

    def __init__(self, state_file: StateFile, on_error=None):
        self.state_file = state_file
        self.on_error = on_error
        self.writes = 0
        self.superseded = 0
        self.failures = 0
        self._pending: dict | None = None
        self._written = 0           # serial of the last state written (or failed)
        self._serial = 0
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="state-writer", daemon=True)
        self._thread.start()

    def save(self, state: dict, wait: bool = False, timeout: float = 10.0) -> None:
        with self._cond:
            if self._closed:
                raise RuntimeError("the state writer is closed")
            if self._pending is not None:
                self.superseded += 1
            self._serial += 1
            serial = self._serial
            self._pending = state
            self._cond.notify_all()
            if wait and not self._cond.wait_for(lambda: self._written >= serial, timeout):
                raise TimeoutError(f"the node state was not written within {timeout}s")

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending is not None or self._closed)
                if self._pending is None:
                    return
                state, serial, self._pending = self._pending, self._serial, None
            try:
                self.state_file.save(state)
                self.writes += 1
            except OSError as exc:
                self.failures += 1
                log.error("saving the node state failed: %s", exc)
                if self.on_error is not None:
                    self.on_error(exc)
            with self._cond:
                self._written = serial
                self._cond.notify_all()

    def close(self, timeout: float = 10.0) -> None:
        """Write what is pending, then stop the thread."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout)
