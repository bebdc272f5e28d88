"""The Cython indicators equal their pure-Python twins on random and real series, and the
indicators TA-Lib lacks (VWAP, SessionVWAP, ZScore) equal a direct numpy/fsum computation."""

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from abidance._core import indicators as cy
from tests.kit import CANDLE_SETS, load_candles
from tests.twins import indicators as twin

DAY_NS = 86_400_000_000_000


@st.composite
def walks(draw, max_size=160):
    """Positive price paths: a random start, log steps that are often exactly 0 (flat runs,
    the hard case for rolling variance) and sometimes large (spikes)."""
    start = draw(st.floats(1e-6, 1e6))
    step = st.one_of(st.just(0.0), st.floats(-0.02, 0.02), st.floats(-0.5, 0.5))
    steps = draw(st.lists(step, min_size=1, max_size=max_size))
    return (start * np.exp(np.cumsum(steps))).tolist()


signed_values = st.lists(st.floats(-1e6, 1e6, allow_nan=False, allow_subnormal=False),
                         min_size=1, max_size=120)


def run(ind, rows, outputs=("value",)):
    out = []
    for row in rows:
        ind.update(*row)
        out.append([getattr(ind, name) for name in outputs])
    return np.array(out, dtype=float).T


def assert_same(ours, ref, what, rtol=1e-9, atol=0.0):
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref), err_msg=f"{what}: warm-up differs")
    ok = ~np.isnan(ref)
    np.testing.assert_allclose(ours[ok], ref[ok], rtol=rtol, atol=atol, err_msg=what)


def bars_from(prices, seed):
    rng = np.random.default_rng(seed)
    spread = rng.uniform(0.0, 0.03, (len(prices), 2))
    return [(p * (1 + a), p * (1 - b), p) for p, (a, b) in zip(prices, spread)]


ONE_INPUT = ["SMA", "EMA", "WMA", "RSI", "RollingStd", "RollingMin", "RollingMax", "ZScore", "ROC"]
HYPO = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@HYPO
@given(prices=walks(), period=st.integers(1, 30), name=st.sampled_from(ONE_INPUT))
def test_one_input_indicators_equal_twins_on_random_walks(prices, period, name):
    if name == "RSI":
        period = max(period, 2)
    rows = [(p,) for p in prices]
    ours = run(getattr(cy, name)(period), rows)
    ref = run(getattr(twin, name)(period), rows)
    # ZScore is O(1) and crosses 0: its absolute error is what can be bounded.
    assert_same(ours[0], ref[0], f"{name}({period})", atol=1e-9 if name == "ZScore" else 0.0)


@HYPO
@given(values=signed_values, period=st.integers(1, 30),
       name=st.sampled_from(["SMA", "EMA", "WMA", "RollingStd", "RollingMin", "RollingMax"]))
def test_signed_series_indicators_equal_twins(values, period, name):
    rows = [(v,) for v in values]
    ours = run(getattr(cy, name)(period), rows)
    ref = run(getattr(twin, name)(period), rows)
    # Sums of mixed-sign values can cancel to ~0: rounding is relative to the inputs.
    assert_same(ours[0], ref[0], f"{name}({period})", atol=1e-12 * max(map(abs, values)))


@HYPO
@given(prices=walks(), period=st.integers(1, 25), k_up=st.floats(0.5, 3), k_down=st.floats(0.5, 3))
def test_bollinger_equals_twin(prices, period, k_up, k_down):
    rows = [(p,) for p in prices]
    names = ("upper", "middle", "lower")
    ours = run(cy.BollingerBands(period, k_up, k_down), rows, names)
    ref = run(twin.BollingerBands(period, k_up, k_down), rows, names)
    for name, a, b in zip(names, ours, ref):
        assert_same(a, b, f"BollingerBands({period}).{name}")


@HYPO
@given(prices=walks(), fast=st.integers(1, 12), extra=st.integers(1, 15), signal=st.integers(1, 9))
def test_macd_equals_twin(prices, fast, extra, signal):
    rows = [(p,) for p in prices]
    names = ("macd", "signal", "histogram")
    ours = run(cy.MACD(fast, fast + extra, signal), rows, names)
    ref = run(twin.MACD(fast, fast + extra, signal), rows, names)
    # Differences of EMAs cross 0: bound the error by a few hundred ulp of the price.
    atol = 1e-13 * max(prices)
    for name, a, b in zip(names, ours, ref):
        assert_same(a, b, f"MACD.{name}", atol=atol)


@HYPO
@given(prices=walks(), seed=st.integers(0, 2**32 - 1), period=st.integers(1, 20),
       slowd=st.integers(1, 5))
def test_bar_indicators_equal_twins(prices, seed, period, slowd):
    rows = bars_from(prices, seed)
    assert_same(run(cy.ATR(period), rows)[0], run(twin.ATR(period), rows)[0], f"ATR({period})")
    # %K/%D: 0-100 scale, often exactly 0.
    for ours, ref in ((run(cy.Stochastic(period, 3, slowd), rows, ("k", "d")),
                       run(twin.Stochastic(period, 3, slowd), rows, ("k", "d"))),
                      (run(cy.StochasticFast(period, slowd), rows, ("k", "d")),
                       run(twin.StochasticFast(period, slowd), rows, ("k", "d")))):
        for a, b in zip(ours, ref):
            assert_same(a, b, f"stochastic({period})", atol=1e-9)


# Volumes over 14 decades, or none. A compensated sum keeps ~32 significant digits of the
# largest sum it has held, so a window left with 1e-38 after a volume of 14 has gone is out
# of its reach (and of any bot's).
volume_lists = st.lists(st.one_of(st.just(0.0), st.floats(1e-8, 1e6)), min_size=160, max_size=160)


@HYPO
@given(prices=walks(), volumes=volume_lists, period=st.integers(1, 20))
def test_volume_indicators_equal_twins(prices, volumes, period):
    rows = list(zip(prices, volumes))
    assert_same(run(cy.VWAP(period), rows)[0], run(twin.VWAP(period), rows)[0], f"VWAP({period})")
    # OBV crosses 0: the error of a compensated sum is relative to the volumes summed.
    assert_same(run(cy.OBV(), rows)[0], run(twin.OBV(), rows)[0], "OBV", atol=1e-12 * sum(volumes))
    ts = np.cumsum(np.full(len(rows), DAY_NS // 7)).tolist()
    session_rows = [(t, p, v) for t, (p, v) in zip(ts, rows)]
    assert_same(run(cy.SessionVWAP(), session_rows)[0], run(twin.SessionVWAP(), session_rows)[0],
                "SessionVWAP")


# ---------------------------------------------------------------- real candles

@pytest.fixture(scope="module", params=CANDLE_SETS)
def candles(request):
    df = load_candles(request.param)
    out = {col: df[col].to_numpy(np.float64) for col in ("high", "low", "close", "volume")}
    out["ts"] = df["date"].astype("int64").to_numpy()   # ns since the epoch, UTC
    return out


# The twins' exact (Fraction) moments are slow; their first bars are enough on real data.
REAL_BARS = 2500


@pytest.mark.parametrize("name", ONE_INPUT + ["BollingerBands", "MACD"])
def test_one_input_indicators_equal_twins_on_real_candles(candles, name):
    close = candles["close"][:REAL_BARS]
    rows = [(p,) for p in close]
    args = (12, 26, 9) if name == "MACD" else (14,)
    ours, ref = run(getattr(cy, name)(*args), rows), run(getattr(twin, name)(*args), rows)
    atol = 1e-13 * close.max() if name == "MACD" else (1e-9 if name == "ZScore" else 0.0)
    assert_same(ours[0], ref[0], f"{name} on real candles", atol=atol)


def test_bar_and_volume_indicators_equal_twins_on_real_candles(candles):
    n = REAL_BARS
    bars = list(zip(candles["high"][:n], candles["low"][:n], candles["close"][:n]))
    pv = list(zip(candles["close"][:n], candles["volume"][:n]))
    assert_same(run(cy.ATR(14), bars)[0], run(twin.ATR(14), bars)[0], "ATR")
    for a, b in zip(run(cy.Stochastic(14, 3, 3), bars, ("k", "d")),
                    run(twin.Stochastic(14, 3, 3), bars, ("k", "d"))):
        assert_same(a, b, "Stochastic", atol=1e-9)
    assert_same(run(cy.VWAP(20), pv)[0], run(twin.VWAP(20), pv)[0], "VWAP")
    assert_same(run(cy.OBV(), pv)[0], run(twin.OBV(), pv)[0], "OBV",
                atol=1e-12 * candles["volume"][:n].sum())


def direct_vwap(price, volume, period):
    out = np.full(len(price), np.nan)
    for i in range(period - 1, len(price)):
        vol = math.fsum(volume[i - period + 1:i + 1])
        if vol > 0:
            out[i] = math.fsum(price[i - period + 1:i + 1] * volume[i - period + 1:i + 1]) / vol
    return out


def direct_session_vwap(ts, price, volume, session_ns=DAY_NS):
    out = np.full(len(price), np.nan)
    session = ts // session_ns
    start = 0
    for i in range(len(price)):
        if session[i] != session[start]:
            start = i
        vol = math.fsum(volume[start:i + 1])
        if vol > 0:
            out[i] = math.fsum(price[start:i + 1] * volume[start:i + 1]) / vol
    return out


def direct_zscore(x, period):
    out = np.full(len(x), np.nan)
    w = np.lib.stride_tricks.sliding_window_view(x, period)
    dev = w[:, -1] - w.mean(axis=1)
    std = np.sqrt(((w - w.mean(axis=1, keepdims=True)) ** 2).mean(axis=1))
    flat = w.min(axis=1) == w.max(axis=1)
    out[period - 1:] = np.where(flat, 0.0, dev / np.where(flat, 1.0, std))
    return out


@pytest.mark.parametrize("period", [5, 20, 60])
def test_vwap_equals_direct_fsum(candles, period):
    price, volume = candles["close"], candles["volume"]
    ref = direct_vwap(price, volume, period)
    assert_same(cy.vwap(price, volume, period), ref, f"vwap({period})", rtol=1e-12)
    assert_same(run(cy.VWAP(period), zip(price, volume))[0], ref, f"VWAP({period})", rtol=1e-12)


def test_session_vwap_equals_direct_fsum_per_utc_day(candles):
    ts, price, volume = candles["ts"], candles["close"], candles["volume"]
    ref = direct_session_vwap(ts, price, volume)
    assert_same(cy.session_vwap(ts, price, volume), ref, "session_vwap", rtol=1e-12)
    streamed = run(cy.SessionVWAP(), zip(ts.tolist(), price, volume))[0]
    assert_same(streamed, ref, "SessionVWAP", rtol=1e-12)


@pytest.mark.parametrize("period", [5, 20, 60])
def test_zscore_equals_direct_numpy(candles, period):
    x = candles["close"]
    ref = direct_zscore(x, period)
    # z is O(1) and crosses 0, so the error bound is absolute. The numpy reference rounds
    # the window mean to half an ulp of the price (~7e-18 at 0.09); divided by the std of a
    # near-flat window (~1e-8) that is ~1e-9 of z (1.4e-9 seen). Ours shifts exactly and
    # is the more accurate of the two (it equals the exact twin to 1e-9 above).
    assert_same(cy.zscore(x, period), ref, f"zscore({period})", atol=1e-8)
    assert_same(run(cy.ZScore(period), [(v,) for v in x])[0], ref, f"ZScore({period})", atol=1e-8)
