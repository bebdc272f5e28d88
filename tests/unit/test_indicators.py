"""Behaviour of the streaming indicators: the same spec runs against the Cython classes and
their pure-Python twins (tests/twins/indicators.py)."""

import math

import numpy as np
import pytest

from abidance._core import indicators as cy
from tests.twins import indicators as twin

NAN = math.nan
HOUR_NS = 3_600_000_000_000
DAY_NS = 24 * HOUR_NS


@pytest.fixture(params=[cy, twin], ids=["cython", "twin"])
def impl(request):
    return request.param


def _prices(n, seed=7):
    rng = np.random.default_rng(seed)
    return (100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))).tolist()


def _bars(n, seed=7):
    close = _prices(n, seed)
    rng = np.random.default_rng(seed + 1)
    spread = rng.uniform(0.0, 0.02, (n, 2))
    return [(c * (1 + a), c * (1 - b), c) for c, (a, b) in zip(close, spread)]


# (class name, constructor args, input kind, updates until ready)
WARMUPS = [
    ("SMA", (5,), "x", 5),
    ("EMA", (5,), "x", 5),
    ("WMA", (5,), "x", 5),
    ("RSI", (5,), "x", 6),
    ("RollingStd", (5,), "x", 5),
    ("RollingMin", (5,), "x", 5),
    ("RollingMax", (5,), "x", 5),
    ("ZScore", (5,), "x", 5),
    ("ROC", (5,), "x", 6),
    ("BollingerBands", (5,), "x", 5),
    ("MACD", (3, 6, 4), "x", 9),
    ("ATR", (5,), "bar", 6),
    ("StochasticFast", (5, 3), "bar", 7),
    ("Stochastic", (5, 3, 4), "bar", 10),
    ("VWAP", (3,), "pv", 3),
    ("OBV", (), "pv", 1),
]


def _feed(ind, kind, i):
    if kind == "x":
        return ind.update(_prices(40)[i])
    if kind == "bar":
        return ind.update(*_bars(40)[i])
    return ind.update(_prices(40)[i], 10.0 + i)


@pytest.mark.parametrize("name,args,kind,ready_after", WARMUPS, ids=[w[0] for w in WARMUPS])
def test_value_is_nan_until_ready_then_finite(impl, name, args, kind, ready_after):
    ind = getattr(impl, name)(*args)
    for i in range(ready_after - 1):
        assert math.isnan(_feed(ind, kind, i)), f"update {i + 1} should still be warm-up"
        assert not ind.ready and math.isnan(ind.value)
    assert math.isfinite(_feed(ind, kind, ready_after - 1))
    assert ind.ready and ind.count == ready_after and math.isfinite(ind.value)


@pytest.mark.parametrize("name,args,kind,ready_after", WARMUPS, ids=[w[0] for w in WARMUPS])
def test_reset_then_same_inputs_give_the_same_outputs(impl, name, args, kind, ready_after):
    ind = getattr(impl, name)(*args)
    first = [_feed(ind, kind, i) for i in range(30)]
    ind.reset()
    assert ind.count == 0 and not ind.ready and math.isnan(ind.value)
    again = [_feed(ind, kind, i) for i in range(30)]
    np.testing.assert_array_equal(first, again)


PEEKABLE = [("SMA", (5,)), ("EMA", (5,)), ("WMA", (5,)), ("RSI", (5,)), ("RollingStd", (5,)),
            ("RollingMin", (5,)), ("RollingMax", (5,)), ("ZScore", (5,)), ("ROC", (5,))]


@pytest.mark.parametrize("name,args", PEEKABLE, ids=[p[0] for p in PEEKABLE])
def test_peek_returns_the_next_value_without_committing(impl, name, args):
    ind = getattr(impl, name)(*args)
    for x in _prices(30):
        before = (ind.count, ind.value)
        peeked = ind.peek(x)
        np.testing.assert_array_equal((ind.count, ind.value), before)
        np.testing.assert_array_equal(ind.peek(x), peeked, "peeking twice gives the same answer")
        assert ind.update(x) == pytest.approx(peeked, rel=1e-12, nan_ok=True)


def test_bollinger_peek_returns_the_bands_without_committing(impl):
    bb = impl.BollingerBands(5, 2.0, 1.5)
    for x in _prices(12):
        bb.update(x)
    state = (bb.count, bb.upper, bb.middle, bb.lower)
    upper, middle, lower = bb.peek(101.0)
    assert (bb.count, bb.upper, bb.middle, bb.lower) == state
    bb.update(101.0)
    assert (bb.upper, bb.middle, bb.lower) == pytest.approx((upper, middle, lower), rel=1e-12)


def test_atr_peek_matches_update(impl):
    atr = impl.ATR(3)
    for bar in _bars(10):
        peeked = atr.peek(*bar)
        assert atr.update(*bar) == pytest.approx(peeked, rel=1e-12, nan_ok=True)


@pytest.mark.parametrize("name", ["SMA", "EMA", "WMA", "RSI", "RollingStd", "RollingMin",
                                  "RollingMax", "ZScore", "BollingerBands", "MACD"])
@pytest.mark.parametrize("bad", [NAN, math.inf, -math.inf])
def test_update_when_non_finite_then_value_error_naming_indicator_and_value(impl, name, bad):
    cls = getattr(impl, name)
    ind = cls(5) if name != "MACD" else cls(3, 6, 2)
    ind.update(1.0)
    with pytest.raises(ValueError, match=rf"{name}\.update: non-finite value {bad!r}"):
        ind.update(bad)
    assert ind.count == 1, "a rejected input must not be committed"


@pytest.mark.parametrize("name", ["VWAP", "OBV"])
@pytest.mark.parametrize("volume", [-1.0, NAN, math.inf])
def test_update_when_volume_negative_or_non_finite_then_value_error(impl, name, volume):
    ind = getattr(impl, name)(3) if name == "VWAP" else getattr(impl, name)()
    with pytest.raises(ValueError, match=rf"{name}\.update: volume must be finite and >= 0, got {volume!r}"):
        ind.update(100.0, volume)


@pytest.mark.parametrize("price", [0.0, -2.5, NAN])
def test_vwap_when_price_not_positive_then_value_error(impl, price):
    with pytest.raises(ValueError, match=rf"VWAP\.update: price must be a finite price > 0, got {price!r}"):
        impl.VWAP(3).update(price, 1.0)


@pytest.mark.parametrize("name", ["ATR", "Stochastic", "StochasticFast"])
def test_bar_when_high_below_low_then_value_error_naming_both(impl, name):
    ind = getattr(impl, name)()
    with pytest.raises(ValueError, match=rf"{name}\.update: high 99\.0 is below low 100\.5"):
        ind.update(99.0, 100.5, 100.0)


@pytest.mark.parametrize("field,bar", [("high", (math.inf, 1.0, 1.0)), ("low", (2.0, 0.0, 1.0)),
                                       ("close", (2.0, 1.0, -1.0))])
def test_bar_when_price_not_positive_finite_then_value_error_naming_it(impl, field, bar):
    with pytest.raises(ValueError, match=rf"ATR\.update: {field} must be a finite price > 0"):
        impl.ATR(3).update(*bar)


def test_roc_when_value_not_positive_then_value_error(impl):
    with pytest.raises(ValueError, match=r"ROC\.update: value must be a finite price > 0, got 0\.0"):
        impl.ROC(3).update(0.0)


@pytest.mark.parametrize("factory", [lambda m: m.SMA(0), lambda m: m.RSI(1), lambda m: m.MACD(12, 12),
                                     lambda m: m.RollingStd(1, 1), lambda m: m.SessionVWAP(0)])
def test_invalid_parameters_are_rejected(impl, factory):
    with pytest.raises(ValueError):
        factory(impl)


def test_sma_of_a_flat_series_is_exactly_the_price(impl):
    sma = impl.SMA(7)
    for _ in range(50):
        v = sma.update(0.1)
    assert v == 0.1


@pytest.mark.parametrize("name", ["RollingStd", "ZScore"])
def test_a_window_that_fills_flat_reads_exactly_zero(impl, name):
    ind = getattr(impl, name)(3)
    assert [ind.update(0.1) for _ in range(4)][2:] == [0.0, 0.0]


def test_rolling_std_of_a_flat_window_is_exactly_zero_even_after_volatility(impl):
    std = impl.RollingStd(4)
    for x in (1e5, 1e-3, 7.0, 1e5, 3.0, 3.0, 3.0):
        std.update(x)
    assert std.update(3.0) == 0.0


def test_rolling_std_stays_accurate_for_a_quiet_window_after_a_spike():
    # Sliding updates alone would keep the spike's rounding (~1e-13 absolute) in a window
    # whose variance is ~1e-16: the exact re-sum must kick in.
    std, ref = cy.RollingStd(5), twin.RollingStd(5)
    quiet = [0.0912, 0.0912, 0.09120001, 0.09120003, 0.09120003, 0.09120002]
    for x in [0.0912, 0.0931, 0.0899, 0.0950, 0.0912] + quiet * 5:
        assert std.update(x) == pytest.approx(ref.update(x), rel=1e-12, nan_ok=True)
    assert std.resyncs > 1


def test_rsi_of_a_flat_series_is_zero_like_talib(impl):
    rsi = impl.RSI(3)
    values = [rsi.update(5.0) for _ in range(6)]
    assert values[3:] == [0.0, 0.0, 0.0]


def test_rolling_min_and_max_expire_old_extremes(impl):
    lo, hi = impl.RollingMin(3), impl.RollingMax(3)
    xs = [5.0, 1.0, 4.0, 3.0, 2.0, 6.0, 0.5]
    assert [lo.update(x) for x in xs][2:] == [1.0, 1.0, 2.0, 2.0, 0.5]
    assert [hi.update(x) for x in xs][2:] == [5.0, 4.0, 4.0, 6.0, 6.0]


def test_vwap_of_a_window_without_volume_is_nan(impl):
    vwap = impl.VWAP(2)
    vwap.update(10.0, 5.0)
    assert vwap.update(20.0, 15.0) == pytest.approx(17.5)
    vwap.update(30.0, 0.0)
    assert math.isnan(vwap.update(40.0, 0.0))
    assert vwap.update(50.0, 2.0) == 50.0


def test_obv_starts_at_the_first_volume_and_follows_the_close(impl):
    obv = impl.OBV()
    assert [obv.update(c, v) for c, v in [(10, 5), (11, 2), (11, 7), (9, 4)]] == [5.0, 7.0, 7.0, 3.0]


def test_session_vwap_resets_at_the_utc_day_boundary(impl):
    vwap = impl.SessionVWAP()
    day = 19_000 * DAY_NS
    vwap.update(day + 23 * HOUR_NS, 100.0, 1.0)
    assert vwap.update(day + DAY_NS - 1, 200.0, 1.0) == 150.0
    assert vwap.session_count == 2 and vwap.session_start == day
    assert vwap.update(day + DAY_NS, 400.0, 3.0) == 400.0
    assert vwap.session_count == 1 and vwap.session_start == day + DAY_NS
    assert vwap.count == 3


def test_session_vwap_with_an_offset_session_starts_at_the_offset(impl):
    vwap = impl.SessionVWAP(session_ns=DAY_NS, offset_ns=8 * HOUR_NS)
    day = 19_000 * DAY_NS
    vwap.update(day + 7 * HOUR_NS, 100.0, 1.0)
    assert vwap.session_start == day - DAY_NS + 8 * HOUR_NS
    assert vwap.update(day + 8 * HOUR_NS, 300.0, 1.0) == 300.0
    assert vwap.session_of(day + 9 * HOUR_NS) == day + 8 * HOUR_NS


def test_session_vwap_is_nan_until_the_session_trades(impl):
    vwap = impl.SessionVWAP()
    assert math.isnan(vwap.update(DAY_NS, 100.0, 0.0)) and not vwap.ready
    assert vwap.update(DAY_NS + 1, 101.0, 2.0) == 101.0 and vwap.ready


def test_session_vwap_when_time_goes_backwards_then_value_error(impl):
    vwap = impl.SessionVWAP()
    vwap.update(2 * DAY_NS, 100.0, 1.0)
    with pytest.raises(ValueError, match=rf"timestamp {2 * DAY_NS - 1} is before the previous {2 * DAY_NS}"):
        vwap.update(2 * DAY_NS - 1, 100.0, 1.0)


def test_macd_outputs_appear_together_at_slow_plus_signal_minus_two(impl):
    m = impl.MACD(3, 6, 4)
    outs = [m.update(x) for x in _prices(12)]
    assert all(math.isnan(v) for v in outs[:8]) and math.isfinite(outs[8])
    assert m.histogram == pytest.approx(m.macd - m.signal)


# ---------------------------------------------------------------- batch functions (Cython)

SINGLE_BATCH = [
    ("sma", "SMA", (14,)), ("ema", "EMA", (14,)), ("wma", "WMA", (14,)), ("rsi", "RSI", (14,)),
    ("rolling_std", "RollingStd", (14,)), ("rolling_min", "RollingMin", (14,)),
    ("rolling_max", "RollingMax", (14,)), ("zscore", "ZScore", (14,)), ("roc", "ROC", (14,)),
]


@pytest.mark.parametrize("func,cls,args", SINGLE_BATCH, ids=[b[0] for b in SINGLE_BATCH])
def test_batch_is_bit_identical_to_streaming(func, cls, args):
    x = _prices(3000)
    ind = getattr(cy, cls)(*args)
    streamed = [ind.update(v) for v in x]
    np.testing.assert_array_equal(getattr(cy, func)(np.array(x), *args), streamed)


def test_multi_output_batches_are_bit_identical_to_streaming():
    x = _prices(500)
    bars = _bars(500)
    h, l, c = (np.array(col) for col in zip(*bars))
    bb, m = cy.BollingerBands(20, 2.0, 1.0), cy.MACD(12, 26, 9)
    stoch, atr = cy.Stochastic(14, 3, 3), cy.ATR(14)
    streamed_bb, streamed_macd, streamed_stoch, streamed_atr = [], [], [], []
    for v, bar in zip(x, bars):
        bb.update(v)
        m.update(v)
        stoch.update(*bar)
        streamed_atr.append(atr.update(*bar))
        streamed_bb.append((bb.upper, bb.middle, bb.lower))
        streamed_macd.append((m.macd, m.signal, m.histogram))
        streamed_stoch.append((stoch.k, stoch.d))
    np.testing.assert_array_equal(np.column_stack(cy.bbands(np.array(x), 20, 2.0, 1.0)), streamed_bb)
    np.testing.assert_array_equal(np.column_stack(cy.macd(np.array(x))), streamed_macd)
    np.testing.assert_array_equal(np.column_stack(cy.stoch(h, l, c, 14, 3, 3)), streamed_stoch)
    np.testing.assert_array_equal(cy.atr(h, l, c, 14), streamed_atr)


@pytest.mark.parametrize("bad", [NAN, math.inf])
def test_batch_when_non_finite_then_value_error_naming_index_and_value(bad):
    x = np.array([1.0, 2.0, 3.0, bad, 5.0])
    with pytest.raises(ValueError, match=rf"sma: value at index 3 must be a finite value, got {bad!r}"):
        cy.sma(x, 2)
    with pytest.raises(ValueError, match=r"bbands: value at index 3"):
        cy.bbands(x, 2)


def test_batch_bar_when_high_below_low_then_value_error_naming_the_bar():
    h, l, c = np.array([2.0, 2.0, 1.0]), np.array([1.0, 1.0, 1.5]), np.array([1.5, 1.5, 1.2])
    with pytest.raises(ValueError, match=r"atr: invalid bar at index 2: high=1\.0 low=1\.5 close=1\.2"):
        cy.atr(h, l, c, 2)
    with pytest.raises(ValueError, match=r"stoch: invalid bar at index 2"):
        cy.stoch(h, l, c)


def test_batch_volume_when_negative_then_value_error_naming_index():
    with pytest.raises(ValueError, match=r"vwap: invalid input at index 1: price=2\.0 volume=-3\.0"):
        cy.vwap([1.0, 2.0], [1.0, -3.0], 2)
    with pytest.raises(ValueError, match=r"obv: invalid input at index 0"):
        cy.obv([1.0, 2.0], [-1.0, 3.0])


def test_batch_session_vwap_when_time_goes_backwards_then_value_error():
    with pytest.raises(ValueError, match=r"session_vwap: invalid input at index 2: ts=5"):
        cy.session_vwap([1, 10, 5], [1.0, 1.0, 1.0], [1.0, 1.0, 1.0])


def test_batch_when_lengths_differ_then_value_error():
    with pytest.raises(ValueError, match=r"atr: inputs differ in length"):
        cy.atr([1.0, 2.0], [1.0], [1.0, 2.0])


def test_batch_accepts_lists_and_read_only_arrays():
    x = np.arange(1.0, 11.0)
    x.setflags(write=False)
    np.testing.assert_array_equal(cy.sma(x, 2), cy.sma(list(x), 2))


def test_bench_helper_reports_a_positive_cost_and_rejects_unknown_names():
    x = np.array(_prices(1000))
    assert cy._bench_update_loop("sma", x, period=14) > 0.0
    with pytest.raises(ValueError, match="unknown indicator 'nope'"):
        cy._bench_update_loop("nope", x)


# ---------------------------------------------------------------- numerics of the fast paths

U = 2.0 ** -53


@pytest.mark.parametrize("period", [1, 14, 1500])
def test_sma_drift_stays_within_the_documented_bound_across_resums(period):
    # A plain running sum, re-summed exactly every max(period, 1024) updates: the error of
    # every value is at most (3K + 2) u max|x| (docs/indicators.md); here K is crossed
    # several times, on a walk and on signed values that cancel.
    k = max(period, 1024)
    rng = np.random.default_rng(11)
    for xs in (np.array(_prices(4 * k + 7, seed=3)), rng.normal(0.0, 1e3, 4 * k + 7)):
        got = cy.sma(xs, period)
        ref = np.array([math.fsum(xs[i - period + 1:i + 1]) / period if i >= period - 1 else NAN
                        for i in range(len(xs))])
        ok = ~np.isnan(ref)
        bound = (3 * k + 2) * U * np.max(np.abs(xs))
        assert np.max(np.abs(got[ok] - ref[ok])) <= bound


def test_sma_peek_is_bit_identical_to_update_across_a_resum():
    sma = cy.SMA(3)
    for x in _prices(2100, seed=5):
        peeked = sma.peek(x)
        assert sma.update(x) == peeked or math.isnan(peeked)


def test_rolling_std_peek_is_bit_identical_to_update():
    std = cy.RollingStd(7)
    xs = _prices(600, seed=9)
    for x in xs + [xs[-1]] * 9 + xs[:50]:
        peeked = std.peek(x)
        assert std.update(x) == peeked or math.isnan(peeked)


def test_rolling_std_is_exact_to_1e12_on_a_trending_series_with_quiet_stretches():
    # The running sums are shifted by the mean at the last re-sum: a trend drags the mean
    # away from it and quiet stretches shrink M2, which both eat the error bound and force
    # re-sums. Checked against exact Fraction moments (the twin).
    rng = np.random.default_rng(21)
    steps = np.concatenate([rng.normal(2e-3, 1e-3, 400), np.zeros(30),
                            rng.normal(0.0, 1e-9, 200), rng.normal(-5e-3, 2e-2, 300)])
    xs = (50.0 * np.exp(np.cumsum(steps))).tolist()
    ours, ref = cy.RollingStd(20), twin.RollingStd(20)
    for x in xs:
        a, b = ours.update(x), ref.update(x)
        assert a == pytest.approx(b, rel=1e-12, abs=0.0, nan_ok=True)
    assert ours.resyncs > 1


BAD_BARS = [(math.nan, 1.0, 1.5), (2.0, math.nan, 1.5), (2.0, 1.0, math.nan), (math.inf, 1.0, 1.5),
            (2.0, 1.0, math.inf), (2.0, 0.0, 1.5), (2.0, 1.0, -1.5), (1.0, 2.0, 1.5)]


@pytest.mark.parametrize("bar", BAD_BARS, ids=[str(b) for b in BAD_BARS])
@pytest.mark.parametrize("at", [0, 3, 5, 13, 16, 18])
def test_batch_atr_names_the_first_invalid_bar_wherever_it_falls(bar, at):
    # Bars are checked in vector groups of 4, then the group with a bad bar bar by bar.
    bars = _bars(19)
    h, l, c = (np.array(col) for col in zip(*bars))
    h[at], l[at], c[at] = bar
    with pytest.raises(ValueError, match=rf"atr: invalid bar at index {at}:"):
        cy.atr(h, l, c, 3)


@pytest.fixture(params=[True, False], ids=["fma-build", "baseline-build"])
def dispatch(request):
    previous = cy._set_fma_dispatch(request.param)
    yield request.param
    cy._set_fma_dispatch(previous)


def test_batch_paths_are_bit_identical_to_streaming(dispatch):
    # The FMA build of the ATR and Bollinger loops (picked at import where the CPU has FMA)
    # and the baseline build round identically, and both equal update() bar by bar.
    x = _prices(3000, seed=13)
    bars = _bars(3000, seed=13)
    h, l, c = (np.array(col) for col in zip(*bars))
    atr, bb = cy.ATR(14), cy.BollingerBands(20, 2.0, 1.5)
    streamed_atr = [atr.update(*bar) for bar in bars]
    streamed_bb = []
    for v in x:
        bb.update(v)
        streamed_bb.append((bb.upper, bb.middle, bb.lower))
    np.testing.assert_array_equal(cy.atr(h, l, c, 14), streamed_atr)
    np.testing.assert_array_equal(np.column_stack(cy.bbands(np.array(x), 20, 2.0, 1.5)), streamed_bb)
