"""docs/drift.md's "Try it" commands run as written (the store URL is this test's own store)."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal

import pytest

from tests.kit import PROJECT_ROOT, SHARED_DATA, ServedStore, shared_data

pytest.importorskip("chdb")
DOC_URL = "http://127.0.0.1:8124"


def demo_commands() -> list[str]:
    lines = (PROJECT_ROOT / "docs" / "drift.md").read_text().splitlines()
    i = lines.index("<!-- drift-demo -->")
    assert lines[i + 1].startswith("```")
    end = lines.index("```", i + 2)
    return [line.strip() for line in lines[i + 2:end]]


def test_the_documented_drift_demo_runs_and_adds_up(tmp_path):
    shared_data("market", "XRP_ETH-trades.feather")
    commands = demo_commands()
    assert [c.split()[:2] for c in commands] == [["abidance", "backtest"], ["abidance", "report"]]
    with ServedStore(tmp_path / "store") as store:
        outs = []
        for command in commands:
            argv = command.replace(DOC_URL, store.url).replace("../shared/data", str(SHARED_DATA)).split()
            out = subprocess.run([sys.executable, "-m", "abidance.cli", *argv[1:]], cwd=PROJECT_ROOT,
                                 capture_output=True, text=True, timeout=120)
            assert out.returncode == 0, out.stderr
            outs.append(out.stdout)
    report = outs[-1]
    rows = {line[:44].strip(): line[44:].strip() for line in report.splitlines() if line.startswith("  ")}
    assert Decimal(rows["residual (not explained)"]) == 0
    assert Decimal(rows["slippage"]) < 0                     # live paid 15 bps, the example's model 2
    assert "side by side" in report and "strategy xrp-ema" in report
