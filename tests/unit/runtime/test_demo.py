"""`abidance demo` owns its state and says only what is true (issue 18, item 7): the kill file is
the demo's own, --no-dashboard prints no dashboard URL, a busy dashboard port is refused before
anything starts, and the config it writes holds the ports in use."""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from abidance.runtime import demo


def demo_args(tmp_path, **over) -> argparse.Namespace:
    values = dict(data=None, speed=60.0, port=0, address="127.0.0.1", state_dir=str(tmp_path / "demo"), seconds=1,
                  no_dashboard=False)
    return argparse.Namespace(**{**values, **over})


def test_the_demo_kill_file_is_in_its_own_state_dir_not_the_example_configs(tmp_path):
    # Before: the example's kill file resolved against its own state dir (state/sim/KILL), so
    # `abidance kill --config config/sim.toml` made every later demo start HALTED.
    state = tmp_path / "demo"
    config = demo.load_demo_config(demo_args(tmp_path), state, "http://127.0.0.1:9")
    assert config.risk.kill_switch_file == state / "KILL"
    assert config.node.state_dir == state and config.store.spool_dir == state / "store-spool"


def test_without_a_dashboard_the_ready_line_shows_no_dashboard_url(tmp_path):
    state = Path("/srv/demo")
    line = demo.ready_line(demo_args(tmp_path, no_dashboard=True, port=8501), "http://127.0.0.1:4000", state,
                           state / "node.toml")
    assert "dashboard" not in line and ":8501" not in line and "store http://127.0.0.1:4000" in line
    assert "dashboard http://127.0.0.1:8501" in demo.ready_line(demo_args(tmp_path, port=8501), "http://x",
                                                                tmp_path, tmp_path / "node.toml")


def test_a_busy_dashboard_port_is_refused_before_anything_starts(tmp_path, capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert demo.main(demo_args(tmp_path, port=port)) == 2
    out = capsys.readouterr()
    assert f"cannot serve the dashboard on 127.0.0.1:{port}: Address already in use" in out.err
    assert "http://" not in out.out and not (tmp_path / "demo").exists()


def test_the_written_config_holds_the_simulators_real_ports(tmp_path):
    config = demo.load_demo_config(demo_args(tmp_path), tmp_path / "demo", "http://127.0.0.1:9")
    running = demo.running_config(config, SimpleNamespace(rest_port=40001, ws_port=40002))
    assert (running.sim["rest_port"], running.sim["ws_port"]) == (40001, 40002)
    assert config.sim["rest_port"] == 8700          # the example's, replaced


@pytest.mark.parametrize("argv", [["store", "--data-dir", "{tmp}/store", "--port", "{port}"],
                                  ["sim", "--rest-port", "{port}"], ["sim", "--ws-port", "{port}"]])
def test_every_server_command_refuses_a_busy_port_before_printing_a_url(argv, tmp_path):
    # The dashboard's and the demo's own checks are above and in tests/dashboard/test_cli.py.
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        out = subprocess.run([sys.executable, "-m", "abidance.cli",
                              *(a.format(tmp=tmp_path, port=port) for a in argv)],
                             capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "http" not in out.stdout
    assert f"('127.0.0.1', {port}): " in out.stderr and "address already in use" in out.stderr
