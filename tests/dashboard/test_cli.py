"""`abidance dashboard`: the streamlit command line it builds, the loopback rule, and a real start."""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from abidance import dashboard_cli
from tests.dashboard.seed import CONFIG_TEXT


def parse(*argv: str):
    parser = argparse.ArgumentParser()
    dashboard_cli.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["dashboard", *argv])


def test_build_when_defaults_then_streamlit_on_loopback_headless():
    argv, env = dashboard_cli.build(parse(), {"PATH": "/bin"})
    assert argv[:4] == [sys.executable, "-m", "streamlit", "run"]
    assert argv[4] == str(dashboard_cli.app_path()) and dashboard_cli.app_path().is_file()
    flags = dict(zip(argv[5::2], argv[6::2]))
    assert flags == {"--server.headless": "true", "--server.address": "127.0.0.1", "--server.port": "8501",
                     "--browser.gatherUsageStats": "false", "--server.fileWatcherType": "none",
                     "--client.toolbarMode": "minimal"}
    assert env["ABIDANCE_STORE_URL"] == "http://127.0.0.1:8123"
    assert env["PYTHONPATH"].split(os.pathsep)[0] == str(dashboard_cli.app_path().parent.parent)


@pytest.mark.parametrize("address", ["0.0.0.0", "192.168.1.5", "::", "example.com"])
def test_build_when_non_loopback_without_password_then_refused(address):
    with pytest.raises(SystemExit, match="ABIDANCE_DASHBOARD_PASSWORD"):
        dashboard_cli.build(parse("--address", address), {})


def test_build_when_non_loopback_with_password_then_allowed():
    argv, _ = dashboard_cli.build(parse("--address", "0.0.0.0", "--port", "9000"),
                                  {"ABIDANCE_DASHBOARD_PASSWORD": "x"})
    assert argv[argv.index("--server.address") + 1] == "0.0.0.0"
    assert argv[argv.index("--server.port") + 1] == "9000"


@pytest.mark.parametrize("address", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_loopback_addresses(address):
    assert dashboard_cli.is_loopback(address)


def test_build_store_url_and_config_precedence(tmp_path):
    cfg = tmp_path / "node.toml"
    cfg.write_text(CONFIG_TEXT.replace('[store]\n', '[store]\nurl = "http://127.0.0.1:8999"\n'), encoding="utf-8")
    _, env = dashboard_cli.build(parse("--config", str(cfg)), {})
    assert env["ABIDANCE_CONFIG"] == str(cfg.resolve())
    assert env["ABIDANCE_STORE_URL"] == "http://127.0.0.1:8999"               # the config's store.url
    _, env = dashboard_cli.build(parse("--config", str(cfg)), {"ABIDANCE_STORE_URL": "http://h:1"})
    assert env["ABIDANCE_STORE_URL"] == "http://h:1"                          # the environment wins
    _, env = dashboard_cli.build(parse("--config", str(cfg), "--store-url", "http://h:2"), {"ABIDANCE_STORE_URL": "x"})
    assert env["ABIDANCE_STORE_URL"] == "http://h:2"                          # the flag wins
    with pytest.raises(SystemExit, match="not found"):
        dashboard_cli.build(parse("--config", str(tmp_path / "missing.toml")), {})


def test_main_when_non_loopback_without_password_then_exit_2(monkeypatch, capsys):
    monkeypatch.delenv("ABIDANCE_DASHBOARD_PASSWORD", raising=False)
    assert dashboard_cli.main(parse("--address", "0.0.0.0")) == 2
    assert "refusing to bind 0.0.0.0" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_dashboard_command_serves_the_app_and_stops_on_a_signal_to_it_alone(tmp_path, stop):
    """The real command: a streamlit server on loopback answering its health check and the page;
    SIGTERM or SIGINT sent to the command's process alone (a service manager, `kill -INT`) stops
    the server too, at once (issue 18: SIGINT to the parent alone was ignored for 10 s)."""
    pytest.importorskip("streamlit", reason="streamlit is not installed (pip install -e '.[dashboard]')")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ABIDANCE_")}
    proc = subprocess.Popen([sys.executable, "-m", "abidance.dashboard_cli", "--port", str(port),
                             "--store-url", "http://127.0.0.1:9"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        health = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1) as r:
                    health = r.read().decode()
                    break
            except OSError:
                time.sleep(0.2)
        assert health == "ok", f"no health answer; exit {proc.poll()}"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
            assert r.status == 200 and b"<html" in r.read().lower()
    finally:
        asked = time.monotonic()
        proc.send_signal(stop)                    # to the command alone: it stops streamlit
        try:
            out, _ = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
    assert time.monotonic() - asked < 6, f"{stop.name}: took {time.monotonic() - asked:.1f} s to stop"
    assert f"http://127.0.0.1:{port}" in out
    with pytest.raises(OSError):                  # nothing serves the port any more
        urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1)


def test_main_when_the_port_is_busy_then_exit_2_before_printing_a_url(capsys):
    # issue 18: a second `abidance dashboard` printed its URL, then Streamlit failed to bind
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert dashboard_cli.main(parse("--port", str(port))) == 2
    out = capsys.readouterr()
    assert "http://" not in out.out
    assert f"cannot serve on 127.0.0.1:{port}: Address already in use" in out.err
