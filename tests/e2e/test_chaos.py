"""`abidance chaos` for 50 s (issue 16): the node, the simulator and the store in their own
processes, faults of each kind in turn, the node and the store killed with SIGKILL. The command's
exit code says whether every invariant held, and every invariant holds but one known gap: the
store loses fills when the node is killed with SIGKILL before its store writer flushed them (the
campaign found it; see KNOWN_GAP). No fill is ever stored twice. The 30-minute campaign is
recorded in benchmarks/results/issue16-chaos.json (a long run: docs/node.md)."""

from __future__ import annotations

import json
import subprocess
import sys

# Open: fills (and order events) the node's store writer held in memory are lost when the node is
# killed with SIGKILL; the venue has them, the store does not. Remove once the writer spools first.
KNOWN_GAP = "every fill stored once"


def test_a_short_chaos_campaign_keeps_every_invariant_but_the_known_gap(tmp_path):
    out = tmp_path / "report.json"
    proc = subprocess.run([sys.executable, "-m", "abidance.cli", "chaos", "--seconds", "50", "--node-kill-every",
                           "15", "--store-kill-every", "20", "--workdir", str(tmp_path / "run"), "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    log = proc.stdout[-4000:] + proc.stderr[-4000:]
    report = json.loads(out.read_text())
    assert proc.returncode == (0 if report["ok"] else 1), log
    checks = {c["name"]: c for c in report["invariants"]}
    assert all(c["ok"] for name, c in checks.items() if name != KNOWN_GAP), log
    assert checks[KNOWN_GAP]["trade_ids_stored_twice"] == 0, log
    assert report["node_restarts"] >= 2 and report["store_restarts"] >= 1
    assert report["fills"] > 0 and report["orders"] > 0
    assert {"rest_5xx", "rest_429", "order_reply_lost", "connection_cut"} <= set(report["faults"])
