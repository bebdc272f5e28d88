"""The candle loader's policy (abidance/backtest/data.py): column names in any case; off-grid values
rounded and counted, or refused naming the row when asked; missing values refused naming the
row, or dropped when asked (issue 18: the docstring said off-grid values were refused while the
loader rounded them silently, and a NaN ended in a traceback)."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from abidance.backtest.data import CandleError, bars_from_frame, load_candle_args
from abidance.backtest.engine import sim_instruments
from tests.kit import PROJECT_ROOT, shared_data

INST = sim_instruments()


def frame(rows, columns=("date", "open", "high", "low", "close", "volume")):
    return pd.DataFrame([(pd.Timestamp("2018-01-10 00:00", tz="UTC") + pd.Timedelta(minutes=5 * i), *r)
                         for i, r in enumerate(rows)], columns=list(columns))


GOOD = [(0.09, 0.091, 0.089, 0.0905, 12.5), (0.0905, 0.0906, 0.0901, 0.0902, 3.0)]


def test_column_names_are_matched_without_regard_to_case():
    bars = bars_from_frame(frame(GOOD, (" Date", "OPEN", "High", "low", "Close ", "Volume")), "ETHBTC", "5m",
                           INST["ETHBTC"])
    assert [b.close for b in bars] == [9050, 9020]            # ticks of 0.00001


def test_a_missing_column_is_named():
    with pytest.raises(CandleError, match="no volume column"):
        bars_from_frame(frame(GOOD).drop(columns=["volume"]), "ETHBTC", "5m", INST["ETHBTC"])


def test_an_off_grid_price_is_rounded_and_counted_or_refused_naming_the_row():
    rows = [GOOD[0], (0.0905, 0.0906, 0.0901, 0.090234, 3.0)]
    bars = bars_from_frame(frame(rows), "ETHBTC", "5m", INST["ETHBTC"])
    assert bars[1].close == 9023 and bars.rounded == 1
    with pytest.raises(CandleError, match=r"ETHBTC row 2 \(2018-01-10 00:05:00\+00:00\): close 0.090234 is not on "
                                          r"the grid of 0.00001"):
        bars_from_frame(frame(rows), "ETHBTC", "5m", INST["ETHBTC"], off_grid="refuse")


def test_a_missing_value_is_refused_naming_the_row_unless_dropping_is_asked_for():
    rows = [GOOD[0], (0.0905, float("nan"), 0.0901, 0.0902, 3.0), GOOD[1]]
    with pytest.raises(CandleError, match=r"ETHBTC row 2 .*: no value in high \(give --nan drop"):
        bars_from_frame(frame(rows), "ETHBTC", "5m", INST["ETHBTC"])
    assert len(bars_from_frame(frame(rows), "ETHBTC", "5m", INST["ETHBTC"], nan="drop")) == 2


def test_the_command_reads_capitalised_columns_and_refuses_a_missing_value_naming_the_row(tmp_path):
    candles = pd.read_feather(shared_data("market", "ETH_BTC-5m.feather"))
    capital = candles.rename(columns=str.capitalize)
    capital.to_csv(tmp_path / "eth.csv", index=False)
    bars = load_candle_args([f"ETHBTC={tmp_path / 'eth.csv'}"], None, INST)["ETHBTC"]
    assert len(bars) == len(candles) and bars.rounded > 0       # 2018's 7-decimal closes on today's grid
    capital.loc[10, "Close"] = float("nan")
    capital.to_csv(tmp_path / "bad.csv", index=False)
    out = subprocess.run([sys.executable, "-m", "abidance.cli", "backtest",
                          "--config", "config/backtest-ethbtc-5m.toml",
                          "--candles", f"ETHBTC={tmp_path / 'bad.csv'}", "--balance", "BTC=1"], cwd=PROJECT_ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "ETHBTC row 11 (2018-01-10 05:45:00+00:00): no value in close" in out.stderr, \
        out.stderr
    assert "Traceback" not in out.stderr
