"""The README's set-up commands stay true: CI runs exactly the README's test command, and
the main command's job starts, trades against its embedded simulator and stops cleanly."""

import os
import subprocess
import sys

import pytest

from tests.kit import PROJECT_ROOT


def command_after(marker: str) -> str:
    lines = (PROJECT_ROOT / "README.md").read_text().splitlines()
    i = lines.index(marker)
    assert lines[i + 1].startswith("```"), f"a fenced command must follow {marker}"
    return lines[i + 2].strip()


def test_ci_runs_the_readme_test_command_verbatim():
    ci = (PROJECT_ROOT / ".ci" / "run").read_text().splitlines()
    assert command_after("<!-- test-command -->") in [line.strip() for line in ci]


MAIN_JOB = "abidance demo"


def test_readme_main_command_runs_the_demo():
    assert command_after("<!-- main-command -->").endswith(".venv/bin/" + MAIN_JOB)


def test_the_main_job_runs_offline_and_stops_cleanly(tmp_path):
    pytest.importorskip("chdb")
    pytest.importorskip("streamlit")
    args = MAIN_JOB.split()[1:] + ["--seconds", "8", "--port", "0", "--state-dir", str(tmp_path / "demo")]
    out = subprocess.run([sys.executable, "-m", "abidance.cli", *args], cwd=PROJECT_ROOT,
                         capture_output=True, text=True, timeout=90)
    log = out.stdout + out.stderr
    assert out.returncode == 0, log
    assert "abidance demo: dashboard http://127.0.0.1:" in log and "store http://127.0.0.1:" in log
    assert "node sim-demo running: BTCUSDT, ETHUSDT" in log and "book ready" in log
    assert " ERROR " not in log and "Traceback" not in log, log
