"""`abidance report drift` on recorded runs: each injected effect recovered, the stall's missed
signals named, every line adding up to the PnL difference to the last digit; the fill model
fitted from the live fills brackets the injected one and closes the gap; and a run without
faults drifts by exactly nothing.

The "live" runs are the kernel trading real XRP/ETH trades through the in-process venue with a
fill model that slips (15 bps), lags (20 s), fills each order in parts (at most half of each
trade) and never sees a 5-minute stretch of the feed, writing every event to a served store as
the node does. The true amount of each effect is computed here from the injected model and the
original trade file, not from the store.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from decimal import Decimal

import pytest

from abidance.config import parse_config
from abidance.core.bus import MessageBus
from abidance.core.clock import TestClock
from abidance.drift.daily import DailyDrift
from abidance.runtime.config_record import record_config
from abidance.store.client import connect
from tests.integration.drift.kit import CONFIG, market, record, report_drift, stall_window, trades_file, truths
from tests.kit import PROJECT_ROOT, ServedStore

pytest.importorskip("chdb")
pytest.importorskip("clickhouse_connect")

SLIPPAGE_BPS = Decimal(15)
LATENCY_MS = 20_000
PARTICIPATION = Decimal("0.5")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    with ServedStore(tmp_path_factory.mktemp("drift-store")) as served:
        yield served


def _sum(values) -> Decimal:
    return sum((Decimal(v) for v in values), Decimal(0))


@pytest.fixture(scope="module")
def faulty(store, tmp_path_factory):
    """The faulty run recorded, and `abidance report drift --calibrate` on it (the stall's trades given)."""
    tmp = tmp_path_factory.mktemp("faulty")
    trades, config, instruments = market()
    start, end = stall_window(config, trades, instruments)
    seen = [t for t in trades if not start <= t.ts_trade < end]
    live = record(store.url, "faulty", config, seen, instruments, tmp / "spool", slippage_bps=SLIPPAGE_BPS,
                  latency_ms=LATENCY_MS, participation=PARTICIPATION)
    report, text = report_drift(store.url, "faulty", trades, tmp, "--trades", f"XRPETH={trades_file()}",
                                "--calibrate", str(tmp / "fitted.toml"), "--html", str(tmp / "drift.html"))
    return live, trades, instruments, (start, end), report, text, (tmp / "fitted.toml").read_text(), tmp


def test_drift_recovers_each_injected_effect_names_the_stall_and_adds_up_to_the_unit(faulty):
    live, trades, instruments, (start, end), report, text, _, tmp = faulty
    d = report["strategies"]["xrp-ema"]
    lines = {k: Decimal(v) for k, v in d["lines"].items()}

    # Exact: the lines add up to live minus replay PnL, to the last digit; nothing is left over.
    assert Decimal(d["live_pnl"]) - Decimal(d["replay_pnl"]) == Decimal(d["difference"]) == _sum(lines.values())
    assert Decimal(d["residual"]) == 0 and "residual (not explained)" in text

    truth = truths(live, trades, instruments, SLIPPAGE_BPS)
    for line, key in (("slippage", "slippage"), ("latency", "latency"),
                      ("partial fills and unfilled limits", "partial")):
        assert truth[key] != 0
        assert abs(lines[line] - truth[key]) <= abs(truth[key]) * Decimal("0.05"), (line, lines[line], truth[key])

    # The stall: the signals the replay acted on inside it and live missed are the stall's.
    assert [g[0] for g in report["gaps"]["XRPETH"]][0] < end
    missed = [p for p in d["pairs"] if start <= p["decided"] < end and p["live"] == "-"]
    assert missed and all(p["reason"] == "data gap" for p in missed)
    assert lines["only in one run: data gap"] != 0
    assert "data gap XRPETH" in text and "side by side" in text
    page = (tmp / "drift.html").read_text()          # --html: the same report, with the waterfall and curves
    assert "Live minus replay, explained" in page and "Live and replayed PnL" in page and d["difference"] in page


def test_the_fitted_fill_model_brackets_the_injected_one_and_shrinks_the_gap(faulty):
    *_, report, text, snippet, _ = faulty
    fit = report["calibration"]["XRPETH"]
    for name, injected in (("slippage_bps", SLIPPAGE_BPS), ("latency_ms", LATENCY_MS),
                           ("participation", PARTICIPATION)):
        low, value, high = (Decimal(fit[name][k]) for k in ("low", "value", "high"))
        assert low <= injected <= high and low <= value <= high, (name, fit[name])
    # The snippet is a config section the user can adopt as it is.
    # The snippet replaces the config's own [backtest] section, as the user adopts it.
    adopted = parse_config(re.sub(r"\[backtest\].*?(?=\[\[strategies\]\])", snippet, CONFIG, flags=re.S),
                           PROJECT_ROOT).backtest
    assert adopted.slippage_bps == Decimal(fit["slippage_bps"]["value"])
    assert adopted.latency_ms == int(Decimal(fit["latency_ms"]["value"]))
    # Replayed with the fitted model, live and backtest are closer.
    before = Decimal(report["strategies"]["xrp-ema"]["difference"])
    after = Decimal(report["fitted_difference"]["xrp-ema"])
    assert abs(after) < abs(before) / 10
    assert "calibration (the fill model fitted to the live fills)" in text


def test_the_daily_drift_sends_each_strategy_s_figure_and_warns_beyond_the_threshold(store, faulty):
    live, trades, instruments, *_ = faulty
    _, config, _ = market()
    # As a node does when it starts: its config into the store (the daily drift replays with it).
    assert asyncio.run(record_config(config, lambda: connect(store.url, "faulty"), trades[0].ts_trade - 1, "faulty"))
    settings = dataclasses.replace(config.alerts, drift_report=True, drift_alert=Decimal("0.001"))
    now = trades[-1].ts_trade + 1
    bus = MessageBus()
    daily = DailyDrift(bus, TestClock(now), settings, lambda: connect(store.url, "faulty"), "faulty", instruments)
    alerts = asyncio.run(daily.run(now))
    assert [(a.level, a.source, a.code) for a in alerts] == [("info", "drift", "daily"),
                                                             ("warning", "drift", "threshold")]
    assert "xrp-ema: live " in alerts[0].message and "beyond alerts.drift_alert 0.001" in alerts[1].message


def test_a_run_without_faults_drifts_by_nothing(store, tmp_path):
    trades, config, instruments = market()
    record(store.url, "clean", config, trades, instruments, tmp_path / "spool")
    report, _ = report_drift(store.url, "clean", trades, tmp_path)
    d = report["strategies"]["xrp-ema"]
    assert report["gaps"]["XRPETH"] == []
    assert Decimal(d["difference"]) == 0 and Decimal(d["live_pnl"]) != 0
    assert all(Decimal(v) == 0 for v in d["lines"].values())
    assert d["counts"]["paired"] == len(d["pairs"]) > 20
