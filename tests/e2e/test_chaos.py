"""`abidance chaos` for 50 s (issue 16): the node, the simulator and the store in their own
processes, faults of each kind in turn, the node and the store killed with SIGKILL; every
invariant of the report holds and the command says so with exit code 0. The 30-minute campaign
is recorded in benchmarks/results/issue16-chaos.json (a long run: docs/node.md)."""

from __future__ import annotations

import json
import subprocess
import sys


def test_a_short_chaos_campaign_keeps_every_invariant(tmp_path):
    out = tmp_path / "report.json"
    proc = subprocess.run([sys.executable, "-m", "abidance.cli", "chaos", "--seconds", "50", "--node-kill-every",
                           "15", "--store-kill-every", "20", "--workdir", str(tmp_path / "run"), "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    report = json.loads(out.read_text())
    assert report["ok"] and all(c["ok"] for c in report["invariants"])
    assert report["node_restarts"] >= 2 and report["store_restarts"] >= 1
    assert report["fills"] > 0 and report["orders"] > 0
    assert {"rest_5xx", "rest_429", "order_reply_lost", "connection_cut"} <= set(report["faults"])
    assert "every invariant holds" in proc.stdout
