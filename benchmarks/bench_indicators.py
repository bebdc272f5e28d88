"""Indicator benchmarks: per-update cost from Cython and from Python, and batch vs TA-Lib.

Input: 1,000,000 bars generated from the real candles in ../shared/data/market. Every
bar's log return (close to close), its high and low as log ratios to its close, and its
volume are drawn together, with replacement, from one real bar of the concatenated series
(numpy Generator, seed 20240601); the returns, less their mean, are chained from the first
real close: the real distribution of moves (10% of them exactly 0), ranges and volumes,
without repeating the path. Without the data: a seeded Gaussian random walk (sigma 1e-3)
with 0.1% ranges.

Figures (see conftest.report):
  1. `update_c` called from a Cython loop, timed inside Cython with CLOCK_MONOTONIC over
     the 1M bars (target <= 25 ns for SMA, EMA, RSI, ATR, Bollinger); `update()` from a
     Python loop beside it. Baseline for both: the pure-Python twin, timed in the same run.
  2. Batch over the 1M bars as our time / TA-Lib's (target <= 1.3 for SMA, EMA, RSI, ATR,
     Bollinger); both timed as the median of the same number of rounds.
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import pytest

from abidance._core import indicators as cy
from tests.kit import CANDLE_SETS, SHARED_DATA
from tests.twins import indicators as twin

talib = pytest.importorskip("talib")

N_BARS = 1_000_000
SEED = 20240601


def _real_candles():
    path = SHARED_DATA / "market"
    files = [path / f"{name}.feather" for name in CANDLE_SETS]
    if not all(f.exists() for f in files):
        return None
    pd = pytest.importorskip("pandas")
    return [pd.read_feather(f) for f in files]


@pytest.fixture(scope="module")
def bars():
    rng = np.random.default_rng(SEED)
    frames = _real_candles()
    if frames is None:
        ret = rng.normal(0.0, 1e-3, N_BARS)
        up, down = np.full(N_BARS, 1e-3), np.full(N_BARS, -1e-3)
        volume, start = rng.uniform(1.0, 100.0, N_BARS), 100.0
    else:
        rets, ups, downs, vols = [], [], [], []
        for df in frames:
            close = df["close"].to_numpy(np.float64)
            rets.append(np.diff(np.log(close)))
            ups.append(np.log(df["high"].to_numpy(np.float64) / close)[1:])
            downs.append(np.log(df["low"].to_numpy(np.float64) / close)[1:])
            vols.append(df["volume"].to_numpy(np.float64)[1:])
        pick = rng.integers(0, sum(map(len, rets)), N_BARS)
        ret, up, down, volume = (np.concatenate(a)[pick] for a in (rets, ups, downs, vols))
        ret -= ret.mean()               # else the real series' drift compounds to e^24
        start = float(frames[0]["close"].iloc[0])
    close = start * np.exp(np.cumsum(ret))
    return {"high": close * np.exp(up), "low": close * np.exp(down), "close": close,
            "volume": volume}


# name -> (Cython class factory, twin factory, input columns, bench-helper period)
INDICATORS = {
    "sma": (lambda: cy.SMA(14), lambda: twin.SMA(14), ("close",), 14),
    "ema": (lambda: cy.EMA(14), lambda: twin.EMA(14), ("close",), 14),
    "rsi": (lambda: cy.RSI(14), lambda: twin.RSI(14), ("close",), 14),
    "atr": (lambda: cy.ATR(14), lambda: twin.ATR(14), ("high", "low", "close"), 14),
    "bbands": (lambda: cy.BollingerBands(20), lambda: twin.BollingerBands(20), ("close",), 20),
    "macd": (lambda: cy.MACD(), lambda: twin.MACD(), ("close",), 0),
    "stddev": (lambda: cy.RollingStd(20), lambda: twin.RollingStd(20), ("close",), 20),
    "min": (lambda: cy.RollingMin(14), lambda: twin.RollingMin(14), ("close",), 14),
    "max": (lambda: cy.RollingMax(14), lambda: twin.RollingMax(14), ("close",), 14),
    "vwap": (lambda: cy.VWAP(20), lambda: twin.VWAP(20), ("close", "volume"), 20),
}
TARGETED = {"sma", "ema", "rsi", "atr", "bbands"}
LABEL = {"sma": "SMA(14)", "ema": "EMA(14)", "rsi": "RSI(14)", "atr": "ATR(14)",
         "bbands": "BollingerBands(20)", "macd": "MACD(12,26,9)", "stddev": "RollingStd(20)",
         "min": "RollingMin(14)", "max": "RollingMax(14)", "vwap": "VWAP(20)"}


def _columns(bars, name, n):
    return [bars[col][:n] for col in INDICATORS[name][2]]


def _python_loop_ns(factory, rows, repeat=3):
    """Best per-call ns of ind.update(*row) over rows from a plain Python loop."""
    best = float("inf")
    for _ in range(repeat):
        update = factory().update
        t0 = time.perf_counter_ns()
        for row in rows:
            update(*row)
        best = min(best, (time.perf_counter_ns() - t0) / len(rows))
    return best


_TWIN_NS: dict[str, float] = {}


def _twin_ns(bars, name, disabled):
    """The pure-Python twin's per-update cost, measured once per session."""
    if name not in _TWIN_NS:
        rows = list(zip(*(c.tolist() for c in _columns(bars, name, 400 if disabled else 4000))))
        _TWIN_NS[name] = _python_loop_ns(INDICATORS[name][1], rows, repeat=1 if disabled else 3)
    return _TWIN_NS[name]


@pytest.mark.parametrize("name", list(INDICATORS))
def test_update_cost_from_cython(benchmark, report, bars, name):
    n = 100_000 if benchmark.disabled else N_BARS
    a, *rest = _columns(bars, name, n)
    b, c = (rest + [None, None])[:2]
    helper = {"stddev": "stddev", "min": "min", "max": "max"}.get(name, name)
    period = INDICATORS[name][3] or 14
    runs = []
    if benchmark.disabled:
        runs.append(cy._bench_update_loop(helper, a, b, c, period))
    else:
        benchmark.pedantic(lambda: runs.append(cy._bench_update_loop(helper, a, b, c, period)),
                           rounds=15, iterations=1, warmup_rounds=1)
    report(f"{LABEL[name]}.update_c from Cython", statistics.median(runs), "ns/update",
           target=25.0 if name in TARGETED else None,
           baseline=("pure-Python twin", _twin_ns(bars, name, benchmark.disabled)),
           benchmark=benchmark)


@pytest.mark.parametrize("name", list(INDICATORS))
def test_update_cost_from_python(benchmark, report, measure, bars, name):
    n = 20_000 if benchmark.disabled else 200_000
    rows = list(zip(*(col.tolist() for col in _columns(bars, name, n))))
    factory = INDICATORS[name][0]

    def loop():
        update = factory().update
        for row in rows:
            update(*row)

    ns = measure(benchmark, loop, ops=len(rows), rounds=7)
    report(f"{LABEL[name]}.update() from a Python loop", ns, "ns/call",
           baseline=("pure-Python twin", _twin_ns(bars, name, benchmark.disabled)),
           benchmark=benchmark)


BATCH = {
    "sma": (lambda d: cy.sma(d["close"], 14), lambda d: talib.SMA(d["close"], 14)),
    "ema": (lambda d: cy.ema(d["close"], 14), lambda d: talib.EMA(d["close"], 14)),
    "rsi": (lambda d: cy.rsi(d["close"], 14), lambda d: talib.RSI(d["close"], 14)),
    "atr": (lambda d: cy.atr(d["high"], d["low"], d["close"], 14),
            lambda d: talib.ATR(d["high"], d["low"], d["close"], 14)),
    "bbands": (lambda d: cy.bbands(d["close"], 20, 2.0, 2.0),
               lambda d: talib.BBANDS(d["close"], 20, 2.0, 2.0, 0)),
    "wma": (lambda d: cy.wma(d["close"], 14), lambda d: talib.WMA(d["close"], 14)),
    "macd": (lambda d: cy.macd(d["close"]), lambda d: talib.MACD(d["close"])),
    "stddev": (lambda d: cy.rolling_std(d["close"], 20), lambda d: talib.STDDEV(d["close"], 20)),
    "stoch": (lambda d: cy.stoch(d["high"], d["low"], d["close"]),
              lambda d: talib.STOCH(d["high"], d["low"], d["close"])),
    "obv": (lambda d: cy.obv(d["close"], d["volume"]), lambda d: talib.OBV(d["close"], d["volume"])),
}
BATCH_LABEL = {**LABEL, "wma": "WMA(14)", "stoch": "STOCH(5,3,3)", "obv": "OBV"}


def _median_ns(fn, rounds):
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter_ns()
        fn()
        times.append(time.perf_counter_ns() - t0)
    return statistics.median(times)


@pytest.mark.parametrize("name", list(BATCH))
def test_batch_vs_talib(benchmark, report, measure, bars, name):
    ours, theirs = BATCH[name]
    rounds = 1 if benchmark.disabled else 15
    theirs(bars)                                   # warm both up (page faults, caches)
    ours_ns = measure(benchmark, lambda: ours(bars), ops=N_BARS, rounds=rounds)
    talib_ns = _median_ns(lambda: theirs(bars), rounds) / N_BARS
    benchmark.extra_info.update({"ours_ns_per_bar": ours_ns, "talib_ns_per_bar": talib_ns})
    report(f"{BATCH_LABEL[name]} batch, 1M bars: our time / TA-Lib's "
           f"({ours_ns:.2f} vs {talib_ns:.2f} ns/bar)", ours_ns / talib_ns, "x TA-Lib",
           target=1.3 if name in TARGETED else None, baseline=("TA-Lib C", 1.0),
           benchmark=benchmark)


def test_fused_update_of_five_indicators(benchmark, report, measure, bars):
    """A strategy's five indicators (EMA 12, EMA 26, RSI 14, ATR 14, OBV) per bar from Python:
    one IndicatorSet.update_bar call against five separate update calls, same bars, same run.
    Figure: ns per indicator per bar."""
    from abidance._core.fused import IndicatorSet

    n = 20_000 if benchmark.disabled else 200_000
    rows = list(zip(*(bars[c][:n].tolist() for c in ("high", "low", "close", "volume"))))

    def five():
        return cy.EMA(12), cy.EMA(26), cy.RSI(14), cy.ATR(14), cy.OBV()

    def separate():
        fast, slow, rsi, atr, obv = five()
        fu, su, ru, au, ou = fast.update, slow.update, rsi.update, atr.update, obv.update
        for h, lo, c, v in rows:
            fu(c), su(c), ru(c), au(h, lo, c), ou(c, v)

    def fused():
        update = IndicatorSet(five()).update_bar
        for h, lo, c, v in rows:
            update(h, lo, c, v)

    apart = _median_ns(separate, 1 if benchmark.disabled else 7) / (5 * n)
    ns = measure(benchmark, fused, ops=5 * n, rounds=7)
    report("IndicatorSet.update_bar, five indicators", ns, "ns/indicator/bar",
           baseline=("five separate update() calls", apart), benchmark=benchmark)
