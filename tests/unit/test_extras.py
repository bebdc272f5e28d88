"""A command whose extra is missing says which extra and how to install it (never an ImportError
traceback), and the command line itself works with no extra installed at all."""

from __future__ import annotations

import subprocess
import sys

import pytest

from abidance import extras
from tests.kit import PROJECT_ROOT

EVERY_OPTIONAL = sorted({m for modules in extras.EXTRAS.values() for m in modules})


def run_without(modules, *args: str) -> subprocess.CompletedProcess:
    """`abidance ARGS` in a fresh interpreter where `modules` cannot be imported."""
    code = ("import sys; sys.modules.update({m: None for m in %r}); from abidance.cli import main; "
            "sys.exit(main(%r))" % (list(modules), list(args)))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PROJECT_ROOT,
                          timeout=120)


def test_the_command_line_loads_with_no_extra_installed():
    out = run_without(EVERY_OPTIONAL, "--help")
    assert out.returncode == 0, out.stderr
    assert "optimize" in out.stdout and "health" in out.stdout


@pytest.mark.parametrize("blocked,args,extra", [
    (["optuna"], ["optimize", "--config", "x.toml", "--strategy", "s", "--candles", "BTCUSDT=x.feather"], "optimize"),
    (["torch", "sklearn"], ["train", "signal", "--config", "x.toml"], "ml"),
    (["pandas", "pyarrow"], ["backtest", "--config", "x.toml", "--candles", "BTCUSDT=x.feather"], "backtest"),
    (["chdb"], ["store", "--port", "0"], "store"),
    (["streamlit"], ["dashboard", "--port", "8599"], "dashboard"),
    (["chdb"], ["demo", "--seconds", "1"], "store"),
])
def test_a_missing_extra_is_named_with_the_install_command(blocked, args, extra):
    out = run_without(blocked, *args)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "Traceback" not in out.stderr, out.stderr
    assert f"abidance[{extra}" in out.stderr and "pip install" in out.stderr, out.stderr


def test_installed_reports_every_extra():
    report = extras.installed()
    assert set(report) == set(extras.EXTRAS) and report["store"] is True
