"""One backtest, four readers, one set of figures (issue 18: on the same backtest written to the
store, the dashboard showed round trips 0, win rate n/a, profit factor n/a, exposure 99 % where
the command line said 117, 0.24, 0.55, 57 %).

The run: config/backtest-ethbtc-5m.toml on the real ETHBTC candles, written with --to-store. Read by
the command line (its printed summary), its HTML report, the store reader
(`StoreReader.performance`) and the dashboard's Performance page (AppTest)."""

from __future__ import annotations

import re
import subprocess
import sys
from decimal import Decimal

import pytest

pytest.importorskip("streamlit", reason="streamlit is not installed (pip install -e '.[dashboard]')")
pytest.importorskip("clickhouse_connect", reason="the store extra is not installed (pip install -e '.[store]')")
pytest.importorskip("pyarrow")

from streamlit.testing.v1 import AppTest  # noqa: E402

from abidance.reports import metrics as M  # noqa: E402
from abidance.store.client import connect  # noqa: E402
from abidance.store.reader import StoreReader  # noqa: E402
from tests.dashboard.conftest import APP  # noqa: E402
from tests.kit import PROJECT_ROOT, shared_data  # noqa: E402

DATABASE = "bt_paths"
FIGURES = ("round_trips", "win_rate", "profit_factor", "exposure", "max_drawdown", "total_return", "cagr", "sharpe",
           "sortino", "calmar", "expectancy", "fees_in_trips", "max_drawdown_duration_h")


def same(text: str, value) -> bool:
    """`text` (as the command line and the HTML report print a figure) shows `value`: floats to 4
    decimals, money exactly (the store keeps 18 decimals, the run fewer: equal as numbers)."""
    if isinstance(value, Decimal):
        return Decimal(text) == value
    return text == ("None" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value))


@pytest.fixture(scope="module")
def run(store_server, tmp_path_factory):
    candles = shared_data("market", "ETH_BTC-5m.feather")
    report = tmp_path_factory.mktemp("paths") / "bt.html"
    out = subprocess.run([sys.executable, "-m", "abidance.cli", "backtest", "--config", "config/backtest-ethbtc-5m.toml",
                          "--candles", f"ETHBTC={candles}", "--balance", "BTC=1", "--report", str(report),
                          "--to-store", store_server.url, "--store-database", DATABASE],
                         cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    cli = dict(line.strip().split(": ", 1) for line in out.stdout.splitlines() if ": " in line)
    html = dict(re.findall(r"<tr><td>([^<]+)</td><td>([^<]*)</td></tr>", report.read_text()))
    perf = StoreReader(connect(store_server.url, DATABASE), DATABASE).performance()
    return cli, html, perf


def test_the_command_line_the_report_and_the_store_reader_agree(run):
    cli, html, perf = run
    assert perf.round_trips == 117 and perf.fills == int(cli["fills"])
    for name in FIGURES:
        value = getattr(perf, name) if name != "max_drawdown" else perf.max_drawdown.fraction
        assert same(cli[name], value), name
        assert html[name] == "-" if value is None else same(html[name], value), name


def test_the_dashboard_shows_the_same_figures(run, store_server, monkeypatch):
    _, _, perf = run
    monkeypatch.setenv("ABIDANCE_STORE_URL", store_server.url)
    monkeypatch.setenv("ABIDANCE_STORE_DATABASE", DATABASE)
    monkeypatch.delenv("ABIDANCE_CONFIG", raising=False)
    monkeypatch.setenv("ABIDANCE_DASHBOARD_REFRESH_S", "0")
    monkeypatch.delenv("ABIDANCE_DASHBOARD_PASSWORD", raising=False)
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    at.switch_page("app_pages/performance.py").run()
    shown = {m.label: m.value for m in at.metric}
    assert shown["Round trips"] == str(perf.round_trips) == "117"
    assert shown["Win rate"] == M.fmt_pct(perf.win_rate)
    assert shown["Profit factor"] == M.fmt_num(perf.profit_factor)
    assert shown["Exposure"] == M.fmt_pct(perf.exposure)
    assert shown["Max drawdown"] == M.fmt_pct(perf.max_drawdown.fraction)
    assert shown["Total return"] == M.fmt_pct(perf.total_return)
    assert shown["Sharpe"] == M.fmt_num(perf.sharpe) and shown["CAGR"] == M.fmt_pct(perf.cagr)
    assert shown["Fills"] == str(perf.fills)
