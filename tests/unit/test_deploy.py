"""Deployment files, checked without Docker or systemd running: the Compose file against the Compose
specification's schema, the Dockerfile with hadolint, the systemd units with systemd-analyze, the
example node config with `config check`, and `abidance health`."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from abidance.runtime import health
from tests.kit import PROJECT_ROOT

DEPLOY = PROJECT_ROOT / "deploy"
UNITS = sorted(DEPLOY.glob("*.service"))
BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    path = shutil.which(name) or (str(BIN / name) if (BIN / name).exists() else None)
    if path is None:
        pytest.skip(f"{name} is not installed (the dev extra installs it)")
    return path


def test_compose_file_follows_the_compose_specification():
    out = subprocess.run([tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec",
                          str(DEPLOY / "compose.yaml")], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_compose_keeps_secrets_out_of_the_file_and_the_dashboard_on_loopback():
    text = (DEPLOY / "compose.yaml").read_text()
    assert "env_file: .env" in text and "127.0.0.1:8501:8501" in text
    # Every secret-looking key takes its value from the environment (${...}), never written here.
    assert not re.search(r"^\s*\w*(SECRET|PASSWORD|API_KEY)\w*\s*:\s*(?!\$\{)\S", text, re.M), \
        "a secret value written into compose.yaml"
    assert "/deploy/.env" in (PROJECT_ROOT / ".gitignore").read_text()


def test_dockerfile_lints_clean():
    out = subprocess.run([tool("hadolint"), str(PROJECT_ROOT / "Dockerfile")], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    text = (PROJECT_ROOT / "Dockerfile").read_text()
    final = text[text.rindex("\nFROM "):]
    assert "USER 10001" in final and "HEALTHCHECK" in final and "VOLUME" in final
    assert "gcc" not in final, "build tools must stay in the build stage"


def test_example_node_config_is_valid():
    from abidance.cli import main

    assert main(["config", "check", str(DEPLOY / "node.example.toml")]) == 0


@pytest.mark.parametrize("unit", UNITS, ids=[u.name for u in UNITS])
def test_systemd_units_verify_and_are_hardened(unit, tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not on this machine")
    # verify checks that ExecStart's program exists: point it at this checkout's venv.
    copy = tmp_path / unit.name
    copy.write_text(unit.read_text().replace("/opt/abidance/.venv/bin/abidance", str(BIN / "abidance")))
    verify = subprocess.run([analyze, "verify", str(copy)], capture_output=True, text=True)
    problems = [line for line in (verify.stdout + verify.stderr).splitlines()
                if unit.stem in line and "Unknown" not in line.split(":")[0]]
    assert verify.returncode == 0 and not problems, verify.stdout + verify.stderr
    security = subprocess.run([analyze, "security", "--offline=true", str(copy)], capture_output=True, text=True)
    score = float(re.search(r"Overall exposure level for \S+: ([0-9.]+)", security.stdout).group(1))
    assert score <= 2.0, security.stdout[-2000:]
    text = unit.read_text()
    for setting in ("ProtectSystem=strict", "NoNewPrivileges=true", "PrivateTmp=true", "CapabilityBoundingSet=\n",
                    "ReadWritePaths=/var/lib/abidance"):
        assert setting in text, f"{unit.name}: {setting.strip()}"


def test_the_node_starts_after_the_store_but_does_not_need_it():
    node = (DEPLOY / "abidance.service").read_text()
    assert re.search(r"^After=.*abidance-store\.service", node, re.M)
    assert re.search(r"^Wants=.*abidance-store\.service", node, re.M) and "Requires=" not in node
    assert "WatchdogSec=" in node and "Restart=" in node


def test_health_is_ok_while_the_state_file_is_fresh_and_not_after(tmp_path):
    assert health.check("", str(tmp_path), 60)[0] is False                       # nothing yet
    node = tmp_path / "demo"
    node.mkdir()
    state = node / "node-state.json"
    state.write_text("{}")
    ok, why = health.check("", str(tmp_path), 60)
    assert ok, why
    old = time.time() - 120
    os.utime(state, (old, old))
    ok, why = health.check("", str(tmp_path), 60)
    assert not ok and "heartbeat stopped" in why


def test_health_checks_a_url(tmp_path):
    ok, why = health.check("http://127.0.0.1:9/", "", 60)
    assert not ok and "did not answer" in why
