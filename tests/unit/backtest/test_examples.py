"""The shipped example configs run as documented: each example's header names its commands, the
same commands are in docs/backtest.md, and each one runs on the shared candles and trades."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.kit import PROJECT_ROOT, SHARED_DATA, shared_data

EXAMPLES = PROJECT_ROOT / "abidance" / "config" / "examples"
DOCS = (PROJECT_ROOT / "docs" / "backtest.md").read_text()


COMMAND = re.compile(r"^#\s+(?:\(terminal \d\)\s+)?(abidance (?:backtest|optimize) .+)$")


def documented(example) -> list[str]:
    """The backtest and optimize commands an example's header gives (`#   abidance ...`)."""
    return [m.group(1).strip() for line in example.read_text().splitlines() if (m := COMMAND.match(line))]


RESEARCH = sorted(p for p in EXAMPLES.glob("*.toml") if p.name != "sim.toml")
DOCUMENTED = [(p.name, c) for p in RESEARCH for c in documented(p)]
# Run here: the commands over the shared recorded data (a depth recording needs the simulator first:
# tests/integration/test_depth_recording.py runs that path).
COMMANDS = [(n, c) for n, c in DOCUMENTED if "../shared/data" in c]


def test_every_example_is_linked_from_config_and_documents_a_command():
    assert len(RESEARCH) >= 5
    for example in RESEARCH:
        assert (PROJECT_ROOT / "config" / example.name).resolve() == example.resolve(), example.name
        assert documented(example), f"{example.name} names no command in its header"


@pytest.mark.parametrize("command", [c for _, c in DOCUMENTED])
def test_the_docs_give_the_examples_commands(command):
    assert command in DOCS, f"docs/backtest.md does not show: {command}"


def test_the_docs_use_no_config_that_does_not_exist():
    assert "my.toml" not in DOCS
    for word in DOCS.split():
        if word.startswith("config/") and word.endswith(".toml"):
            assert (PROJECT_ROOT / word).is_file(), word


@pytest.mark.parametrize("name,command", COMMANDS, ids=[f"{n}:{i}" for i, (n, _) in enumerate(COMMANDS)])
def test_the_example_command_runs_and_trades(name, command, tmp_path):
    shared_data("market")
    pytest.importorskip("pyarrow")
    if " optimize " in f" {command} ":
        pytest.importorskip("optuna")
    argv = command.replace("../shared/data", str(SHARED_DATA)).replace("config/", f"{PROJECT_ROOT}/config/").split()
    out = subprocess.run([sys.executable, "-m", "abidance.cli", *argv[1:]], cwd=tmp_path, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Traceback" not in out.stderr and "Warning" not in out.stderr, out.stderr
    if " backtest " in f" {command} ":
        lines = dict(line.strip().split(": ", 1) for line in out.stdout.splitlines() if ": " in line)
        assert int(lines["fills"]) > 0 and int(lines["round_trips"]) > 0, out.stdout
    else:
        assert "best " in out.stdout or "out-of-sample" in out.stdout, out.stdout
