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


COMMAND = re.compile(r"^#\s+(?:\(terminal \d\)\s+)?(abidance (?:backtest|optimize|train) .+)$")


def documented(example) -> list[str]:
    """The backtest, optimize and train commands an example's header gives (`#   abidance ...`)."""
    return [m.group(1).strip() for line in example.read_text().splitlines() if (m := COMMAND.match(line))]


RESEARCH = sorted(p for p in EXAMPLES.glob("*.toml") if p.name != "sim.toml")
DOCUMENTED = [(p.name, c) for p in RESEARCH for c in documented(p)]
# Run here: each example's commands over the shared recorded data, in order in one folder (the ML
# example's backtest reads the model its train command wrote); a depth recording needs the
# simulator first: tests/integration/test_depth_recording.py runs that path.
RUNS = [(p.name, [c for c in documented(p) if "../shared/data" in c]) for p in RESEARCH]
RUNS = [(n, cs) for n, cs in RUNS if cs]


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


@pytest.mark.parametrize("name,commands", RUNS, ids=[n for n, _ in RUNS])
def test_the_example_commands_run_and_trade(name, commands, tmp_path):
    shared_data("market")
    pytest.importorskip("pyarrow")
    for command in commands:
        if f" {command} ".split()[1] in ("optimize", "train"):
            pytest.importorskip("optuna" if " optimize " in f" {command} " else "sklearn")
        argv = command.replace("../shared/data", str(SHARED_DATA)).replace("config/", f"{PROJECT_ROOT}/config/").split()
        out = subprocess.run([sys.executable, "-m", "abidance.cli", *argv[1:]], cwd=tmp_path, capture_output=True,
                             text=True, timeout=300)
        assert out.returncode == 0, out.stdout + out.stderr
        assert "Traceback" not in out.stderr and "Warning" not in out.stderr, out.stderr
        if argv[1] == "backtest":
            lines = dict(line.strip().split(": ", 1) for line in out.stdout.splitlines() if ": " in line)
            assert int(lines["fills"]) > 0 and int(lines["round_trips"]) > 0, out.stdout
            assert "OUTSIDE THE ENGINE" not in out.stderr, out.stderr   # issue 18: a model's lazy imports were
        elif argv[1] == "train":
            # docs/backtest.md and the example say what training finds on these candles: no edge.
            assert "verdict: the model beat neither" in out.stdout and "sha256" in out.stdout, out.stdout
        else:
            assert "best " in out.stdout or "out-of-sample" in out.stdout, out.stdout
