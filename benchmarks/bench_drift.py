"""`abidance report drift` on a recorded run with known faults (issue 21): how close each named line
comes to the true amount of its injected effect, what the fitted fill model leaves of the gap, and
what a report costs against the replay alone.

The recorded run: the kernel trading every real XRP/ETH trade of ../shared/data (12,477, Oct 2019)
through the in-process venue with 15 bps slippage, 20 s latency, participation 0.5 and a 5-minute
stretch of the feed never received, every event into a served store (tests/integration/drift/kit.py).
True amounts: from the injected model and the original trades, not from the store.
Figures:
- recovery error of the slippage, latency and partial-fill lines, % of the true amount (target <= 5);
- the residual, in ETH (target: 0, to the last digit);
- the gap left with the fitted fill model, % of the gap with the config's (target < 100: it shrinks);
- seconds per report (load, replay, attribution), against the replay alone (a Backtest over the same
  trades) in the same run: the report's cost beyond the backtest it must run anyway.
With --benchmark-disable (the test suite's smoke run): the first 1,500 trades, one report.
"""

from __future__ import annotations

import time
from decimal import Decimal

from abidance.backtest.engine import Backtest
from abidance.drift.report import drift_report
from abidance.store.client import connect
from tests.integration.drift.kit import BALANCES, market, record, stall_window, truths
from tests.kit import ServedStore

SLIPPAGE_BPS, LATENCY_MS, PARTICIPATION = Decimal(15), 20_000, Decimal("0.5")


def test_drift_recovers_injected_effects(benchmark, report, tmp_path):
    trades, config, instruments = market(1_500 if benchmark.disabled else None)
    start, end = stall_window(config, trades, instruments)
    seen = [t for t in trades if not start <= t.ts_trade < end]
    with ServedStore(tmp_path / "store") as store:
        live = record(store.url, "live", config, seen, instruments, tmp_path / "spool", slippage_bps=SLIPPAGE_BPS,
                      latency_ms=LATENCY_MS, participation=PARTICIPATION)
        window = (trades[0].ts_trade, trades[-1].ts_trade + 1)
        out = {}

        def run():
            out["report"] = drift_report(connect(store.url, "live"), "live", *window, config=config,
                                         instruments=instruments, trades={"XRPETH": trades}, balances=BALANCES,
                                         calibrate=True)
        benchmark.pedantic(run, rounds=1 if benchmark.disabled else 3, iterations=1)
        seconds = benchmark.stats.stats.median if not benchmark.disabled else None
        t0 = time.perf_counter()
        Backtest(config, trades={"XRPETH": trades}, instruments=instruments, balances=BALANCES).run()
        replay_s = time.perf_counter() - t0
    rep = out["report"]
    d = rep.strategies["xrp-ema"]
    truth = truths(live, trades, instruments, SLIPPAGE_BPS)
    n = len(trades)
    figures, exact = [], {}
    for line, key in (("slippage", "slippage"), ("latency", "latency"),
                      ("partial fills and unfilled limits", "partial")):
        error = abs(d.lines[line] - truth[key]) / abs(truth[key]) * 100
        exact[line] = {"line": str(d.lines[line]), "truth": str(truth[key]), "error_pct": str(error)}
        figures.append(report(f"drift {line} line vs injected truth ({truth[key]:.8f} ETH), {n:,} trades",
                              float(error), "% off", target=5.0, benchmark=benchmark))
    figures.append(report(f"drift residual, {n:,} trades", float(abs(d.residual)), "ETH", target=0.0,
                          benchmark=benchmark))
    left = abs(rep.fitted["xrp-ema"]) / abs(d.difference) * 100
    figures.append(report(f"drift gap left with the fitted fill model (was {d.difference:.8f} ETH)", float(left),
                          "%", target=99.99, benchmark=benchmark))
    if seconds is not None:
        figures.append(report(f"drift report with calibration (2 replays), {n:,} trades", seconds, "s",
                              baseline=("one replay alone, same run", replay_s), benchmark=benchmark))
    # Every figure into the JSON (`report` keeps only the last one in extra_info).
    benchmark.extra_info["figures"] = [f.line() for f in figures]
    benchmark.extra_info["exact"] = {**exact, "residual": str(d.residual), "difference": str(d.difference),
                                     "fitted_difference": str(rep.fitted["xrp-ema"])}
