"""abidance.reports.metrics against answers computed by hand (the arithmetic is in the comments)."""

from __future__ import annotations

import math
from decimal import Decimal as D

import pandas as pd
import pytest

from abidance.reports import metrics as M

T0 = pd.Timestamp("2024-01-01", tz="UTC")


def hours(h: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(hours=h)


def test_total_return_is_last_over_first_minus_one():
    assert M.total_return([D("100"), D("110"), D("99")]) == pytest.approx(-0.01)
    assert M.total_return([D("100")]) is None


def test_cagr_of_21_percent_over_two_years_is_10_percent():
    # 100 -> 121 in two years: 1.21 ** (1/2) - 1 = 0.1
    assert M.cagr(D("100"), D("121"), 2 * M.SECONDS_PER_YEAR) == pytest.approx(0.1)
    assert M.cagr(D("100"), D("121"), 0) is None


def test_periodic_returns_sample_the_last_value_of_each_day():
    ts = [T0, hours(12), hours(36), hours(54)]
    eq = [D("100"), D("105"), D("110"), D("99")]
    # day closes 105, 110, 99 against the opening 100: 0.05, 110/105-1, 99/110-1 = -0.1
    r = M.periodic_returns(ts, eq, "1D")
    assert list(r) == pytest.approx([0.05, 110 / 105 - 1, -0.1])


def test_sharpe_of_four_known_returns():
    # mean 0.005; deviations .005 -.015 .015 -.005 -> sample var 0.0005/3; x sqrt(4)
    # = 0.005 / sqrt(0.0005/3) * 2 = sqrt(0.6)
    assert M.sharpe([0.01, -0.01, 0.02, 0.0], 4) == pytest.approx(math.sqrt(0.6))
    assert M.sharpe([0.01, 0.01, 0.01], 365) is None        # no variation: undefined
    assert M.sharpe([0.01], 365) is None


def test_sortino_uses_downside_deviation_over_all_periods():
    # downside terms 0, 0.0001, 0, 0 -> mean 0.000025 -> deviation 0.005; 0.005 / 0.005 x sqrt(4) = 2
    assert M.sortino([0.01, -0.01, 0.02, 0.0], 4) == pytest.approx(2.0)
    assert M.sortino([0.01, 0.02], 4) is None              # no losing period


def test_max_drawdown_is_the_largest_fall_from_a_running_peak():
    dd = M.max_drawdown([D("100"), D("120"), D("90"), D("130"), D("117")])
    # 120 -> 90 is 25%; 130 -> 117 only 10%
    assert dd.fraction == pytest.approx(0.25)
    assert dd.amount == D("30")
    assert (dd.peak_index, dd.trough_index) == (1, 2)
    assert M.drawdown_series([D("100"), D("120"), D("90")]) == pytest.approx([0, 0, 0.25])


def test_time_share_weights_each_state_by_its_duration():
    # states last 1h (on), 1h (off), 2h (on): 3 of 4 hours
    assert M.time_share([T0, hours(1), hours(2), hours(4)], [True, False, True, False]) == pytest.approx(0.75)


def test_pnl_since_starts_from_the_last_value_before_the_day():
    ts = [hours(10), hours(25), hours(44)]
    assert M.pnl_since(ts, [D("100"), D("105"), D("98")], hours(24)) == D("-2")


def _fills():
    rows = [
        # strategy s, BTCUSDT, round trip 1
        (hours(0), "s", "BTCUSDT", "BUY", "1", "100", "0.1", "USDT"),       # fee in quote: 0.1
        (hours(1), "s", "BTCUSDT", "BUY", "1", "110", "0.001", "BTC"),      # fee in base: 0.11, receives 0.999
        (hours(2), "s", "BTCUSDT", "SELL", "1.999", "120", "0.2", "USDT"),
        # round trip 2: a loss
        (hours(3), "s", "BTCUSDT", "BUY", "1", "100", "0", "USDT"),
        (hours(4), "s", "BTCUSDT", "SELL", "1", "90", "0.09", "USDT"),
        # strategy t, ETHUSDT: still open at the end; the fee in BNB is not valued
        (hours(1), "t", "ETHUSDT", "BUY", "2", "10", "0.02", "BNB"),
        (hours(2), "t", "ETHUSDT", "SELL", "1", "12", "0", "USDT"),
    ]
    return pd.DataFrame([(ts, s, sym, side, D(q), D(p), D(c), a) for ts, s, sym, side, q, p, c, a in rows],
                        columns=["ts", "strategy_id", "symbol", "side", "qty", "price", "commission",
                                 "commission_asset"])


def test_round_trips_book_fees_like_the_portfolio():
    trips, books = M.round_trips(_fills())
    assert [(t.strategy_id, t.symbol) for t in trips] == [("s", "BTCUSDT")] * 2
    # trip 1: cost 100 + 110 x 0.999 = 209.89; sale 1.999 x 120 = 239.88; fees 0.1 + 0.11 + 0.2
    assert trips[0].pnl == D("239.88") - D("209.89") - D("0.41")      # 29.58
    assert trips[0].fees == D("0.41")
    assert trips[0].fills == 3
    # trip 2: 90 - 100 - 0.09
    assert trips[1].pnl == D("-10.09")
    eth = books[("t", "ETHUSDT")]
    assert eth["qty"] == D("1") and eth["realized"] == D("2")        # 12 - 10 on the half sold


def test_win_rate_and_profit_factor_per_strategy_and_symbol():
    table = M.per_strategy_symbol(_fills()).set_index(["strategy_id", "symbol"])
    btc = table.loc[("s", "BTCUSDT")]
    assert btc["round_trips"] == 2 and btc["fills"] == 5
    assert btc["win_rate"] == pytest.approx(0.5)
    assert btc["profit_factor"] == pytest.approx(29.58 / 10.09)
    assert btc["realized_pnl"] == D("19.49")                          # 29.58 - 10.09
    assert btc["fees"] == D("0.50")
    # held 0h-2h and 3h-4h of the fills' span 0h-4h
    assert btc["exposure"] == pytest.approx(0.75)
    eth = table.loc[("t", "ETHUSDT")]
    assert eth["round_trips"] == 0 and pd.isna(eth["win_rate"])
    assert eth["exposure"] == pytest.approx(0.75)                     # open from 1h to the end (4h)


def test_profit_factor_edges():
    assert M.profit_factor([D("1"), D("2")]) == math.inf
    assert M.profit_factor([]) is None
    assert M.profit_factor([D("3"), D("-1"), D("-2")]) == pytest.approx(1.0)


def test_account_summary_on_a_doubling_in_one_year():
    ts = [T0 + pd.Timedelta(days=d) for d in range(366)]
    eq = [D(100) * (D(2) ** (D(d) / D(365))) for d in range(366)]
    df = pd.DataFrame({"ts": ts, "equity": eq, "positions_value": [D(1)] * 183 + [D(0)] * 183})
    s = M.account_summary(df)
    assert s.period == "1D" and s.periods == 365
    assert s.total_return == pytest.approx(1.0)
    assert s.cagr == pytest.approx(1.0)
    assert s.max_drawdown.fraction == 0
    assert s.exposure == pytest.approx(183 / 365)
    assert s.sharpe is None or s.sharpe > 100           # constant returns: (near) zero variance
    assert M.account_summary(pd.DataFrame(columns=["ts", "equity"])) is None


def test_formatting():
    assert M.fmt_money(D("1234.5")) == "1,234.50"
    assert M.fmt_pct(0.1234) == "12.34%"
    assert M.fmt_pct(None) == "n/a"
    assert M.fmt_num(math.inf) == "inf"


# ---- issue 18: figures that meant nothing were shown unqualified ------------------------------

def _minutes(values) -> pd.DataFrame:
    return pd.DataFrame({"ts": [T0 + pd.Timedelta(minutes=i) for i in range(len(values))],
                         "equity": [D(v) for v in values]})


def test_annualised_figures_are_withheld_with_the_reason_on_a_ten_minute_run():
    # 100 -> 101 in 10 minutes compounds to a CAGR of ~1e226: not a figure to show
    perf = M.performance(_minutes(["100", "100.2", "99.9", "100.4", "100.1", "100.5", "100.3", "100.7", "100.6",
                                   "100.9", "101"]), None)
    assert perf.total_return == pytest.approx(0.01)
    assert perf.cagr is None and perf.sharpe is None and perf.sortino is None and perf.calmar is None
    assert perf.withheld == "withheld: 10 min of equity; CAGR, Sharpe, Sortino and Calmar need at least 1.0 days"


def test_sharpe_is_withheld_on_too_few_returns_but_cagr_is_given():
    days = pd.DataFrame({"ts": [T0 + pd.Timedelta(days=d) for d in range(5)],
                         "equity": [D("100"), D("101"), D("100"), D("102"), D("103")]})
    summary = M.account_summary(days, period="1D")
    assert summary.cagr is not None and summary.sharpe is None and summary.sortino is None
    assert "4 periodic returns, they need at least 30" in summary.withheld


def test_fee_dust_closes_the_round_trip_without_knowing_the_lot_step():
    # bought 1 BTC, the 0.001 fee paid in BTC, sold the 0.999 a lot step allows: the 0.000 dust left
    # is no position (the dashboard, without the instrument, counted 0 round trips and 99 % exposure)
    fills = pd.DataFrame([(hours(0), "s", "BTCUSDT", "BUY", D("1"), D("100"), D("0.001"), "BTC"),
                          (hours(1), "s", "BTCUSDT", "SELL", D("0.999"), D("110"), D("0.10989"), "USDT"),
                          (hours(2), "s", "BTCUSDT", "BUY", D("0.5"), D("100"), D("0.0005"), "BTC"),
                          (hours(3), "s", "BTCUSDT", "SELL", D("0.4995"), D("90"), D("0.0449550"), "USDT")],
                         columns=["ts", "strategy_id", "symbol", "side", "qty", "price", "commission",
                                  "commission_asset"])
    assert M.lot_steps(fills) == {"BTCUSDT": D("0.0001")}
    equity = pd.DataFrame({"ts": [hours(h) for h in range(5)], "equity": [D("100")] * 5})
    perf = M.performance(equity, fills)
    assert perf.round_trips == 2 and perf.win_rate == pytest.approx(0.5)
    assert perf.exposure == pytest.approx(0.5)                         # held 0h-1h and 2h-3h of 0h-4h


def test_a_small_drawdown_is_not_shown_as_zero():
    assert M.fmt_pct(0.0000099) == "0.00099%"
    assert M.fmt_pct(0.0) == "0.00%" and M.fmt_pct(0.1234) == "12.34%"
