"""Bringing your own data and instruments (issue 18, item 5): instruments from a Binance
exchangeInfo file and from [[instruments]] tables; the common headerless exports (Binance's kline
CSV in ms and, from 2025, in microseconds; ccxt OHLCV rows); weekly and calendar-month bars."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from abidance.backtest.data import CandleError, frame_interval, load_candle_args, read_candles
from abidance.backtest.instruments import research_instruments
from abidance.cli import main as cli
from abidance.config import ConfigError, parse_config
from abidance.core.clock import TestClock
from abidance.data.bars import BarAggregator, bar_close, bar_open
from abidance.exchange.backtest.instruments import exchange_info_file, sim_instruments
from tests.kit import PROJECT_ROOT, shared_data
from tests.unit.backtest.kit import binance_kline_csv, closes, own_config

S = 1_000_000_000
INST = sim_instruments()
DOCS = (PROJECT_ROOT / "docs" / "backtest.md").read_text()

# The declared stock of docs/backtest.md ("Your own instruments"): the docs' table is the one tested.
STOCK = "\n" + re.search(r"\n(      \[\[instruments\]\]\n(?:      .+\n)+)", DOCS).group(1).replace("      ", "")


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp() * 1000)


def candle_rows(opens_ms: list[int]) -> list[list]:
    return [[t, c, c, c, c, "5"] for t, c in zip(opens_ms, closes(len(opens_ms)))]


def month_opens(first_year: int, n: int) -> list[int]:
    return [ms(f"{first_year + i // 12}-{i % 12 + 1:02d}-01") for i in range(n)]


def write_config(tmp_path, symbol="AAPLUSD", timeframe="1d", extra=STOCK):
    path = tmp_path / "own.toml"
    path.write_text(own_config(symbol, timeframe) + extra)
    return path


# ---- instruments ----------------------------------------------------------------------------------

def test_declared_instruments_are_checked_and_named_in_errors(tmp_path):
    with pytest.raises(ConfigError) as err:
        parse_config(own_config("AAPLUSD", "1d") + STOCK.replace('"0.01"', "0.01") + STOCK,
                     tmp_path)
    assert any("instruments[0].tick_size must be a quoted decimal string" in e for e in err.value.errors)
    with pytest.raises(ConfigError) as err:
        parse_config(own_config("AAPLUSD", "1d") + STOCK + STOCK, tmp_path)
    assert err.value.errors == ["instruments[1].symbol 'AAPLUSD' is already declared by instruments[0]"]


def test_a_declared_instrument_has_the_filters_it_states(tmp_path):
    config = parse_config(own_config("AAPLUSD", "1d") + STOCK, tmp_path)
    instruments, skipped = research_instruments(config)
    stock = instruments["AAPLUSD"]
    assert (stock.base_asset, stock.quote_asset, stock.tick_size, stock.step_size) == ("AAPL", "USD",
                                                                                       Decimal("0.01"), Decimal(1))
    assert (stock.min_qty, stock.min_notional, stock.max_qty) == (Decimal(1), Decimal(1), Decimal(0))
    assert skipped == [] and "BTCUSDT" in instruments          # the simulator's stay


def test_a_captured_binance_exchange_info_loads_and_later_sources_win(tmp_path):
    captured = shared_data("binance-nt", "http", "http_spot_market_exchange_info.json")
    found, skipped = exchange_info_file(captured)
    assert set(found) == {"BTCUSDT", "ETHUSDT"} and skipped == []
    # Binance's 2021 BTCUSDT: 0.00001 steps and a MIN_NOTIONAL of 10, not the simulator's.
    assert (found["BTCUSDT"].step_size, found["BTCUSDT"].min_notional) == (Decimal("0.00001"), Decimal(10))
    config = parse_config(f'[backtest]\nexchange_info = "{captured}"\n', tmp_path)
    assert research_instruments(config)[0]["BTCUSDT"].min_notional == Decimal(10)
    assert sim_instruments()["BTCUSDT"].min_notional != Decimal(10)


def test_a_bad_exchange_info_file_is_refused_naming_it(tmp_path, capsys):
    bad = tmp_path / "info.json"
    bad.write_text('{"symbols": [{"symbol": "XUSD"}]}')
    with pytest.raises(ValueError, match=r"info.json: no usable symbol \(XUSD: baseAssetPrecision"):
        exchange_info_file(bad)
    config = write_config(tmp_path)
    assert cli(["backtest", "--config", str(config), "--candles", "AAPLUSD=x.csv", "--exchange-info",
                str(tmp_path / "none.json")]) == 2
    assert "exchangeInfo file" in capsys.readouterr().err


# ---- formats ----------------------------------------------------------------------------------------

def test_binance_kline_csv_in_milliseconds_and_microseconds_reads_as_one_series(tmp_path):
    # The last minutes of 2024 in ms, the first of 2025 in microseconds (Binance's spot files change
    # unit on 2025-01-01).
    opens = [ms("2024-12-31T23:57:00") + 60_000 * i for i in range(6)]
    binance_kline_csv(tmp_path / "k.csv", opens, micro_from=ms("2025-01-01"))
    frame = read_candles(str(tmp_path / "k.csv"))
    assert [int(d.value) // 1_000_000 for d in frame["date"]] == opens
    bars = load_candle_args([f"BTCUSDT={tmp_path / 'k.csv'}"], None, INST)["BTCUSDT"]
    assert bars[0].interval == "1m" and len(bars) == 6 and bars[3].open_time == ms("2025-01-01") * 1_000_000


def test_ccxt_ohlcv_rows_load_from_json_and_from_a_headerless_csv(tmp_path):
    opens = [ms("2024-03-01") + 3_600_000 * i for i in range(5)]
    rows = [[t, float(o), float(h), float(l), float(c), 5.0] for t, o, h, l, c, _ in candle_rows(opens)]
    (tmp_path / "c.json").write_text(json.dumps(rows))
    (tmp_path / "c.csv").write_text("\n".join(",".join(map(str, r)) for r in rows))
    a = load_candle_args([f"BTCUSDT={tmp_path / 'c.json'}"], None, INST)["BTCUSDT"]
    b = load_candle_args([f"BTCUSDT={tmp_path / 'c.csv'}"], None, INST)["BTCUSDT"]
    assert a == b and a[0].interval == "1h" and [x.close for x in a] == [int(Decimal(c) * 100) for c in
                                                                         closes(5)]


def test_a_headerless_file_of_another_shape_is_refused_with_the_shapes_known(tmp_path):
    (tmp_path / "x.csv").write_text("1704067200000,1,2,3\n")
    with pytest.raises(CandleError, match="12 columns .Binance kline CSV. or 6 .ccxt OHLCV., not 4"):
        read_candles(str(tmp_path / "x.csv"))


# ---- weeks and calendar months ---------------------------------------------------------------------

def test_week_and_month_bars_are_bounded_as_binance_bounds_them():
    wed = ms("2024-02-14T15:00") * 1_000_000
    assert bar_open("1w", wed) == ms("2024-02-12") * 1_000_000                  # Monday 00:00 UTC
    assert bar_close("1w", bar_open("1w", wed)) == ms("2024-02-19") * 1_000_000
    assert bar_open("1M", wed) == ms("2024-02-01") * 1_000_000
    assert bar_close("1M", ms("2024-02-01") * 1_000_000) == ms("2024-03-01") * 1_000_000      # 29 days (leap)
    assert bar_close("1M", ms("2023-12-01") * 1_000_000) == ms("2024-01-01") * 1_000_000


def test_month_bars_from_trades_close_on_month_ends(tmp_path):
    clock, bars = TestClock(ms("2024-01-15") * 1_000_000), []
    agg = BarAggregator("BTCUSDT", "1M", clock, bars.append)
    for day, price in (("2024-01-15", 100), ("2024-02-29T23:59", 101), ("2024-05-02", 102)):
        t = ms(day) * 1_000_000
        clock.advance_to(t)
        agg.on_trade(type("T", (), {"ts_trade": t, "price": price, "qty": 1})())
    assert [(datetime.fromtimestamp(b.open_time // S, timezone.utc).date().isoformat(), b.close, b.trades)
            for b in bars] == [("2024-01-01", 100, 1), ("2024-02-01", 101, 1), ("2024-03-01", 101, 0),
                               ("2024-04-01", 101, 0)]
    assert bars[1].close_time == ms("2024-03-01") * 1_000_000


@pytest.mark.parametrize("timeframe,opens", [
    ("1w", [ms("2022-01-03") + 7 * 86_400_000 * i for i in range(60)]),
    ("1M", month_opens(2015, 60)),
])
def test_own_instrument_on_weekly_and_monthly_candles_backtests(timeframe, opens, tmp_path, capsys):
    frame = pd.DataFrame(candle_rows(opens), columns=["Date", "Open", "High", "Low", "Close", "Volume"])
    frame["Date"] = pd.to_datetime(frame["Date"], unit="ms", utc=True)
    frame.to_csv(tmp_path / "aapl.csv", index=False)
    assert frame_interval(read_candles(str(tmp_path / "aapl.csv")).rename(columns=str.lower)) == timeframe
    config = write_config(tmp_path, timeframe=timeframe)
    code = cli(["backtest", "--config", str(config), "--candles", f"AAPLUSD={tmp_path / 'aapl.csv'}"])
    out = capsys.readouterr()
    assert code == 0, out.err
    lines = dict(line.strip().split(": ", 1) for line in out.out.splitlines() if ": " in line)
    assert lines["bars"] == "60" and int(lines["round_trips"]) >= 2



def test_a_grid_builds_the_declared_instruments_in_its_worker_processes_too(tmp_path, capsys):
    # Workers rebuild instruments (compiled filters do not pickle): from the config, as the command did.
    opens = [ms("2023-01-02") + 86_400_000 * i for i in range(60)]
    binance_kline_csv(tmp_path / "aapl.csv", opens)
    config = write_config(tmp_path)
    assert cli(["backtest", "--config", str(config), "--candles", f"AAPLUSD={tmp_path / 'aapl.csv'}",
                "--grid", "fast=2,3", "--jobs", "2"]) == 0, capsys.readouterr().err
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[1:]]
    assert [r[0] for r in rows if r] == ["2", "3"]


def test_a_declared_symbol_is_quoted_in_its_declared_quote_not_by_its_name(tmp_path):
    # A stock ticker does not end in its quote asset: the declared quote decides.
    spy = STOCK.replace("AAPLUSD", "SPY")
    assert parse_config(own_config("SPY", "1d") + spy, tmp_path).instruments[0].quote == "USD"
    with pytest.raises(ConfigError, match=r"strategies\[0\].symbols\[0\] 'SPY' is not quoted in risk.quote_asset"):
        parse_config(own_config("SPY", "1d") + spy.replace('quote = "USD"', 'quote = "EUR"'), tmp_path)


def test_monthly_bars_are_one_run_for_the_ml_dataset_and_a_missing_month_cuts_it():
    from abidance.ml.dataset import month_runs

    times = np.array([t * 1_000_000 for t in month_opens(2020, 14)], dtype=np.int64)    # 28 to 31 days apart
    assert month_runs(times) == [(0, 14)]
    assert month_runs(np.delete(times, 5)) == [(0, 5), (5, 13)]
