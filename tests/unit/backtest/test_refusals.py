"""A backtest that could say nothing is refused with the reason (exit 2), never printed as an empty
result with exit 0 (issue 18: config/sim.toml on the shared candles gave 0 fills, final equity 0,
a numpy warning and exit 0)."""

from __future__ import annotations

import subprocess
import sys
import warnings

from abidance.reports import metrics as M
from tests.kit import PROJECT_ROOT, shared_data


def backtest(*argv: str, cwd=PROJECT_ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "abidance.cli", "backtest", *argv], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def test_sim_config_on_candles_of_other_symbols_is_refused_naming_them():
    candles = shared_data("market", "ETH_BTC-5m.feather")
    out = backtest("--config", "config/sim.toml", "--candles", f"ETHBTC={candles}", "--balance", "BTC=1")
    assert out.returncode == 2, out.stdout + out.stderr
    assert "strategy 'btc-ema' trades BTCUSDT, but the data is for ETHBTC" in out.stderr
    assert "ETHBTC is quoted in BTC, but risk.quote_asset is 'USDT'" in out.stderr
    assert "Warning" not in out.stderr and "Traceback" not in out.stderr and "final_equity" not in out.stdout


def test_an_interval_that_is_not_the_files_is_refused():
    candles = shared_data("market", "ETH_BTC-5m.feather")
    out = backtest("--config", "config/backtest-ethbtc-5m.toml", "--candles", f"ETHBTC={candles}", "--interval", "1m")
    assert out.returncode == 2 and "the bars are 5m apart, not 1m (--interval)" in out.stderr, out.stderr


def test_a_strategy_on_another_timeframe_than_the_candles_is_refused(tmp_path):
    candles = shared_data("market", "XRP_ETH-1m.feather")
    cfg = (PROJECT_ROOT / "config" / "backtest-xrpeth-1m.toml").read_text().replace('timeframe = "1m"',
                                                                                     'timeframe = "5m"')
    (tmp_path / "c.toml").write_text(cfg)
    out = backtest("--config", str(tmp_path / "c.toml"), "--candles", f"XRPETH={candles}", "--balance", "ETH=10")
    assert out.returncode == 2, out.stdout
    assert "strategy 'xrp-ema' acts on 5m bars, but the candles are 1m" in out.stderr


def test_a_run_without_a_single_fill_is_refused_saying_why(tmp_path):
    pd = __import__("pytest").importorskip("pandas")
    frame = pd.read_feather(shared_data("market", "ETH_BTC-5m.feather")).iloc[:150]
    frame.to_csv(tmp_path / "short.csv", index=False)
    cfg = (PROJECT_ROOT / "config" / "backtest-ethbtc-5m.toml").read_text().replace("slow = 26", "slow = 300")
    (tmp_path / "c.toml").write_text(cfg)
    out = backtest("--config", str(tmp_path / "c.toml"), "--candles", f"ETHBTC={tmp_path / 'short.csv'}",
                   "--balance", "BTC=1")
    assert out.returncode == 2, out.stdout
    assert "no fill: the strategies gave no signal" in out.stderr and "150 bars" in out.stderr


def test_metrics_of_a_worthless_account_raise_no_numpy_warning():
    import pandas as pd

    ts = pd.date_range("2024-01-01", periods=5, freq="1min", tz="UTC")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = M.periodic_returns(ts, [0, 0, 0, 0, 0], "1min")
        assert M.sortino(r, 365 * 24 * 60) is None and M.sharpe(r, 365 * 24 * 60) is None
        summary = M.account_summary(pd.DataFrame({"ts": ts, "equity": [0] * 5}))
    assert summary.total_return is None and summary.sortino is None
