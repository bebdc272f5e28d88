"""`abidance backtest` over real candles prints the metrics and writes the HTML report."""

from __future__ import annotations

import subprocess
import sys

from tests.kit import PROJECT_ROOT, shared_data
from tests.unit.backtest.kit import research_risk

CONFIG = """
config_version = 1
[node]
mode = "live"
""" + research_risk() + """[[strategies]]
id = "ema"
class = "ema_cross"
symbols = ["ETHBTC"]
timeframe = "5m"
params = { fast = 12, slow = 26 }
"""


def test_backtest_command_prints_metrics_and_writes_the_report(tmp_path):
    candles = shared_data("market", "ETH_BTC-5m.feather")
    (tmp_path / "bt.toml").write_text(CONFIG)
    report = tmp_path / "report.html"
    out = subprocess.run([sys.executable, "-m", "abidance.cli", "backtest", "--config", str(tmp_path / "bt.toml"),
                          "--candles", f"ETHBTC={candles}", "--balance", "BTC=1", "--report", str(report)],
                         cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = dict(line.strip().split(": ", 1) for line in out.stdout.splitlines() if ": " in line)
    assert lines["bars"] == "5760" and int(lines["round_trips"]) > 10
    for key in ("total_return", "cagr", "sharpe", "sortino", "calmar", "max_drawdown", "max_drawdown_duration_h",
                "win_rate", "profit_factor", "expectancy", "exposure", "fees_paid", "round_trips", "final_equity"):
        assert key in lines
    html = report.read_text()
    assert "<table>" in html and "plotly" in html and "ETHBTC" in html


def test_backtest_command_refuses_an_unknown_symbol(tmp_path):
    (tmp_path / "bt.toml").write_text(CONFIG)
    out = subprocess.run([sys.executable, "-m", "abidance.cli", "backtest", "--config", str(tmp_path / "bt.toml"),
                          "--candles", "NOPE=missing.feather"], cwd=PROJECT_ROOT, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 2 and "unknown symbol or missing file" in out.stderr


def test_backtest_results_go_to_the_store(tmp_path):
    import os
    import signal

    import pytest

    clickhouse_connect = pytest.importorskip("clickhouse_connect")
    pytest.importorskip("chdb")
    candles = shared_data("market", "ETH_BTC-5m.feather")
    (tmp_path / "bt.toml").write_text(CONFIG)
    # The store in its own process: chdb allows one data directory per process at a time.
    store = subprocess.Popen([sys.executable, "-m", "abidance.cli", "store", "--data-dir", str(tmp_path / "chdb"),
                              "--port", "0"], stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        line = store.stdout.readline()
        url = line.split("ready: ")[1].split()[0]
        out = subprocess.run([sys.executable, "-m", "abidance.cli", "backtest", "--config", str(tmp_path / "bt.toml"),
                              "--candles", f"ETHBTC={candles}", "--balance", "BTC=1", "--to-store", url,
                              "--store-database", "bt_test"], cwd=PROJECT_ROOT, capture_output=True, text=True,
                             timeout=120)
        assert out.returncode == 0, out.stderr
        lines = dict(line.strip().split(": ", 1) for line in out.stdout.splitlines() if ": " in line)
        client = clickhouse_connect.get_client(host="127.0.0.1", port=int(url.rsplit(":", 1)[1]), compress=False)
        count = lambda t: client.query(f"SELECT count() FROM bt_test.{t}").result_rows[0][0]   # noqa: E731
        assert count("fills") == int(lines["fills"]) and count("bars") == 5760
        assert count("risk_decisions") > 0 and count("order_events") > 0 and count("equity") > 0
    finally:
        store.send_signal(signal.SIGTERM)
        store.wait(15)


def test_backtest_command_runs_on_recorded_trades(tmp_path):
    trades = shared_data("market", "XRP_ETH-trades.feather")
    (tmp_path / "bt.toml").write_text(CONFIG.replace('"BTC"', '"ETH"').replace("ETHBTC", "XRPETH")
                                      .replace('timeframe = "5m"', 'timeframe = "1m"').replace('"0.1"', '"0.5"')
                                      .replace("fast = 12, slow = 26", "fast = 3, slow = 8"))
    report = tmp_path / "report.html"
    out = subprocess.run([sys.executable, "-m", "abidance.cli", "backtest", "--config", str(tmp_path / "bt.toml"),
                          "--trades", f"XRPETH={trades}", "--balance", "ETH=10", "--fee-bps", "7.5",
                          "--report", str(report)], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = dict(line.strip().split(": ", 1) for line in out.stdout.splitlines() if ": " in line)
    assert int(lines["bars"]) > 3000 and int(lines["round_trips"]) > 10 and "exposure" in lines
    assert "XRPETH" in report.read_text()
    both = subprocess.run([sys.executable, "-m", "abidance.cli", "backtest", "--config", str(tmp_path / "bt.toml"),
                           "--trades", f"XRPETH={trades}", "--candles", f"XRPETH={trades}"],
                          cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
    assert both.returncode == 2 and "give --candles, or --trades and/or --depth" in both.stderr
