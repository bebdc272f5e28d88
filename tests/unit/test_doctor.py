"""`abidance doctor` on a broken set-up names each problem and its fix; on a sound one it passes."""

from __future__ import annotations

import socket

from abidance.cli import main
from tests.kit import PROJECT_ROOT

BROKEN = """
config_version = 1
[node]
name = "broken"
mode = "live"
state_dir = "{state}"
[binance]
venue = "sim"
rest_url = "http://127.0.0.1:9"
ws_url = "ws://127.0.0.1:9"
[store]
url = "http://127.0.0.1:9"
"""


def test_doctor_names_every_problem_of_a_broken_set_up(tmp_path, monkeypatch, capsys):
    cfg = tmp_path / "node.toml"
    cfg.write_text(BROKEN.format(state=tmp_path / "state"))
    keys = tmp_path / "keys.txt"
    keys.write_text("key\nsecret\n")
    keys.chmod(0o644)                                   # readable by others: refused
    monkeypatch.setenv("ABIDANCE_BINANCE_KEY_FILE", str(keys))
    for var in ("ABIDANCE_BINANCE_API_KEY", "ABIDANCE_BINANCE_API_SECRET", "ABIDANCE_BINANCE_PRIVATE_KEY_FILE"):
        monkeypatch.delenv(var, raising=False)
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    try:
        rc = main(["doctor", "--config", str(cfg), "--ports", str(port), "--min-free-gb", "1e12"])
    finally:
        busy.close()
    out = capsys.readouterr().out
    assert rc == 1
    failed = {line.split(":")[0].split(None, 1)[1] for line in out.splitlines() if line.startswith("FAIL")}
    assert failed == {"API key", "venue", "store", "disk", "ports"}, out
    assert "chmod 600" in out and f"127.0.0.1:{port} is already in use" in out
    assert "127.0.0.1:9" in out and "less than 1e+12 GB" in out
    assert "6 problem(s)" in out          # the disk check fails for the state and the spool folders


def test_doctor_names_the_bad_keys_of_a_broken_config(tmp_path, capsys):
    cfg = tmp_path / "node.toml"
    cfg.write_text('config_version = 1\n[risk]\nmax_open_ordrs = 3\n')
    assert main(["doctor", "--config", str(cfg), "--ports", "", "--offline"]) == 1
    out = capsys.readouterr().out
    assert "FAIL  config" in out and "risk.max_open_ordrs" in out and "max_open_orders" in out


def test_doctor_passes_the_shipped_example_offline(capsys):
    assert main(["doctor", "--config", str(PROJECT_ROOT / "config" / "sim.toml"), "--ports", "", "--offline"]) == 0
    assert "0 problem(s)" in capsys.readouterr().out
