"""Walk-forward: regime switching vs the static mix vs buy-and-hold, on real candles.

Nothing here asserts that regime switching wins: the comparison must run, be computed
out of sample, and report whatever happened."""

from __future__ import annotations

import math
from decimal import Decimal

import pandas as pd
import pytest

from abidance.backtest.data import bars_from_frame
from abidance.backtest.engine import sim_instruments
from abidance.backtest.research_config import research_config
from abidance.ml.regime_eval import (
    VARIANTS, RegimeWindowResult, StrategyDisabledError, VariantResult, static_mapping, totals, verdict,
    walk_forward_regimes,
)
from tests.kit import shared_data


@pytest.fixture(scope="module")
def instruments():
    return sim_instruments()


@pytest.fixture(scope="module")
def bars(instruments):
    out = {}
    for symbol, name in (("ETHBTC", "ETH_BTC-5m"), ("LTCBTC", "LTC_BTC-5m")):
        frame = pd.read_feather(shared_data("market", f"{name}.feather")).iloc[:3000]
        out[symbol] = bars_from_frame(frame, symbol, "5m", instruments[symbol])
    return out


def test_walk_forward_on_eth_and_ltc_reports_every_window_and_an_honest_verdict(bars, instruments, tmp_path):
    ev = walk_forward_regimes(bars, train_bars=1200, test_bars=800, regimes="0:rsi_reversion,1:ema_cross,2:",
                              config=research_config("BTC", fraction=0.45), instruments=instruments, workdir=tmp_path)
    times = sorted({b.open_time for bs in bars.values() for b in bs})
    assert [(w.train_start, w.test_start, w.test_bars) for w in ev.windows] == [
        (times[0], times[1200], 800), (times[800], times[2000], 800)]
    for w in ev.windows:
        assert w.train_end <= w.test_start                  # the model never saw the test bars
        assert set(w.results) == set(VARIANTS)
        for r in w.results.values():
            assert r.total_return is not None and math.isfinite(r.total_return)
            assert 0.0 <= r.max_drawdown < 1.0
        assert w.results["buy_and_hold"].fills == 2          # one buy per symbol, then held
        assert w.results["static"].trades > 0
        assert math.isclose(sum(w.regime_share.values()), 1.0) and set(w.regime_share) <= {0, 1, 2}
        assert (tmp_path / f"regime-w{w.window}.joblib").is_file() and len(w.model_sha256) == 64
    t = ev.totals
    for name in VARIANTS:
        expected = math.prod(1 + w.results[name].total_return for w in ev.windows) - 1
        assert math.isclose(t[name]["compounded_return"], expected)
    reg, sta = t["regime"]["compounded_return"], t["static"]["compounded_return"]
    assert ("Regime switching BEAT" in ev.verdict) == (reg > sta)
    assert ("did NOT beat" in ev.verdict) == (reg < sta)
    assert "too few to call" in ev.verdict
    table = ev.table()
    assert all(name in table for name in VARIANTS) and ev.verdict in table
    print("\n" + table)


def test_buy_and_hold_is_the_engine_baseline_on_the_test_bars(bars, instruments, tmp_path):
    from abidance.backtest.baselines import buy_and_hold

    config = research_config("BTC", fraction=0.45)
    ev = walk_forward_regimes(bars, train_bars=1200, test_bars=800, config=config, instruments=instruments,
                              workdir=tmp_path)
    w = ev.windows[0]
    test = {s: [b for b in bs if w.test_start <= b.open_time < w.test_end] for s, bs in bars.items()}
    direct = buy_and_hold(config, test, instruments=instruments, balances={"BTC": Decimal(1)},
                          taker_bps=Decimal(10), maker_bps=Decimal(10))
    assert w.results["buy_and_hold"].total_return == pytest.approx(float(direct.final_equity) - 1.0, abs=1e-12)
    assert w.results["buy_and_hold"].fills == len(direct.fills) == 2


def test_a_mapping_the_model_cannot_serve_is_refused_before_any_backtest(bars, instruments):
    # Regime 2 does not exist in a 2-regime model: the strategy would be disabled in every
    # window and its flat 0 % could have been declared the winner.
    with pytest.raises(ValueError, match=r"regimes: regime 2 is not a regime of the model \(it has 2: 0-1\)"):
        walk_forward_regimes(bars, train_bars=1200, test_bars=800, n_regimes=2, instruments=instruments)
    with pytest.raises(ValueError, match=r"regimes: regime 3 of the model is not mapped"):
        walk_forward_regimes(bars, train_bars=1200, test_bars=800, n_regimes=4, instruments=instruments)
    with pytest.raises(ValueError, match=r"n_regimes must be a whole number in \[1, 8\]"):
        walk_forward_regimes(bars, train_bars=1200, test_bars=800, n_regimes=0, instruments=instruments)


def test_a_strategy_disabled_during_a_run_stops_the_evaluation_naming_it_and_why(bars, instruments, tmp_path):
    with pytest.raises(StrategyDisabledError, match=r"regime: strategy 'regime' was disabled during the backtest "
                                                    r"\(on_start raised ValueError: .*fast \(50\) must be below slow"):
        walk_forward_regimes(bars, train_bars=1200, test_bars=800, hosted_params="ema_cross.fast=50,ema_cross.slow=20",
                             instruments=instruments, workdir=tmp_path)


def row(reg: float, sta: float, bh: float, sharpe=(1.0, 0.5, 0.2)) -> RegimeWindowResult:
    res = {n: VariantResult(r, 0.01, s, 1, 2) for n, r, s in zip(VARIANTS, (reg, sta, bh), sharpe)}
    return RegimeWindowResult(0, 0, 1, 1, 2, 1, 1, res, {0: 1.0})


def test_verdict_says_who_won_in_plain_words():
    rows = [row(0.02, 0.01, -0.01), row(-0.01, 0.0, 0.0)]
    text = verdict(rows, totals(rows))
    assert text.startswith("Regime switching did NOT beat the static mix out of sample: compounded return "
                           "+0.98% vs +1.00%, ahead in 1 of 2 window(s)")
    assert "Sharpe says the opposite" in text          # mean Sharpe 1.0 vs 0.5 while the return lost
    rows = [row(0.03, 0.01, 0.02, sharpe=(0.1, 0.5, 0.2))]
    text = verdict(rows, totals(rows))
    assert "Regime switching BEAT the static mix" in text and "best of the three: regime" in text
    rows = [row(0.0, 0.0, 0.05)] * 12
    text = verdict(rows, totals(rows))
    assert text.startswith("Regime switching TIED") and "best of the three: buy-and-hold" in text
    assert "too few" not in text
    assert verdict([], totals([])).startswith("No verdict")


def test_bad_arguments_are_refused(bars, instruments):
    with pytest.raises(ValueError, match="enables no strategy in any regime"):
        static_mapping("0:,1:")
    with pytest.raises(ValueError, match="warmup_bars must be within"):
        walk_forward_regimes(bars, train_bars=100, test_bars=100, warmup_bars=200, instruments=instruments)
    with pytest.raises(ValueError, match="start with the quote asset BTC only"):
        walk_forward_regimes(bars, train_bars=1000, test_bars=500, balances={"ETH": Decimal(1)},
                             instruments=instruments)
    with pytest.raises(ValueError, match="not quoted in risk.quote_asset USDT"):
        walk_forward_regimes(bars, train_bars=1000, test_bars=500, config=research_config("USDT"),
                             instruments=instruments)
    with pytest.raises(ValueError, match="unknown strategy 'macd'"):
        walk_forward_regimes(bars, train_bars=1000, test_bars=500, regimes="0:macd", instruments=instruments)
