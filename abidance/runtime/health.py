"""`abidance health`: is the process in this container (or on this host) alive? For HEALTHCHECK and probes.

Two signs of life, whichever is there:
- a URL that answers 2xx (`--url`, or $ABIDANCE_HEALTH_URL): the store's `/ping`, the
  dashboard's `/_stcore/health`;
- while the node retries a venue that does not answer yet, its start-up file says what it waits
  for (unhealthy, with the venue's last error);
- the node's state file, rewritten on every heartbeat: the newest `node-state.json` under
  `--state-dir` (default $ABIDANCE_STATE_DIR, searched two folders deep) must be younger than
  `--max-age` seconds.
Exit status 0 when healthy, 1 when not, with one line saying why.
"""

from __future__ import annotations

import os
import sys
import time
import urllib.request
from pathlib import Path

from abidance.runtime.startup import read_startup
from abidance.runtime.state import STATE_FILE

DEFAULT_MAX_AGE_S = 60.0


def add_parser(sub) -> None:
    p = sub.add_parser("health", help="exit 0 if the node's heartbeat is fresh or a health URL answers",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("--url", default=os.environ.get("ABIDANCE_HEALTH_URL", ""),
                   help="a URL that must answer 2xx (default $ABIDANCE_HEALTH_URL)")
    p.add_argument("--state-dir", default=os.environ.get("ABIDANCE_STATE_DIR", ""),
                   help="where the node keeps its state (default $ABIDANCE_STATE_DIR)")
    p.add_argument("--max-age", type=float, default=DEFAULT_MAX_AGE_S,
                   help=f"seconds since the last heartbeat before the node counts as dead (default {DEFAULT_MAX_AGE_S:g})")
    p.set_defaults(func=main)


def newest_state_file(root: Path) -> Path | None:
    candidates = [root / STATE_FILE, *root.glob(f"*/{STATE_FILE}"), *root.glob(f"*/*/{STATE_FILE}")]
    found = [p for p in candidates if p.is_file()]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def check(url: str, state_dir: str, max_age_s: float, now: float | None = None) -> tuple[bool, str]:
    if url:
        try:
            with urllib.request.urlopen(url, timeout=4) as resp:
                return 200 <= resp.status < 300, f"{url} answered {resp.status}"
        except OSError as exc:
            return False, f"{url} did not answer: {exc}"
    if not state_dir:
        return False, "nothing to check: give --url or --state-dir (or $ABIDANCE_HEALTH_URL / $ABIDANCE_STATE_DIR)"
    state = newest_state_file(Path(state_dir))
    starting = read_startup(Path(state_dir))
    if starting is not None:
        # Retrying a venue that does not answer yet: not healthy, but say what it waits for.
        return False, (f"starting: {starting.get('phase')} failed (attempt {starting.get('attempt')}): "
                       f"{starting.get('error')}")
    if state is None:
        return False, f"no {STATE_FILE} under {state_dir}: the node has not started (or writes elsewhere)"
    age = (time.time() if now is None else now) - state.stat().st_mtime
    if age > max_age_s:
        return False, f"{state} is {age:.0f} s old (more than {max_age_s:g} s): the node's heartbeat stopped"
    return True, f"{state} written {age:.0f} s ago"


def main(args) -> int:
    ok, why = check(args.url, args.state_dir, args.max_age)
    print(f"abidance health: {'ok' if ok else 'UNHEALTHY'}: {why}", file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1
