"""PSI and the DriftMonitor on hand-made distributions (numbers worked out by hand)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from abidance.config.sections import MlSection
from abidance.ml.drift import EPS, DriftMonitor, bin_edges, bin_shares, psi, reference_histograms, window_psi


def test_psi_of_identical_shares_is_zero():
    assert psi([0.25, 0.25, 0.25, 0.25], [0.25, 0.25, 0.25, 0.25]) == 0.0


def test_psi_by_hand():
    # sum (a - e) ln(a / e) with e = 0.25 everywhere:
    # 0.15 ln 2.5 + 0.05 ln 1.25 + 0.05 ln 1.2 + 0.15 ln 1.6 = 0.137444 + 0.011157 + 0.009116 + 0.070501
    assert psi([0.25] * 4, [0.1, 0.2, 0.3, 0.4]) == pytest.approx(0.228218, abs=1e-6)
    # PSI is symmetric in expected and actual
    assert psi([0.1, 0.2, 0.3, 0.4], [0.25] * 4) == pytest.approx(0.228218, abs=1e-6)


def test_psi_empty_bin_is_floored_not_infinite():
    # 0.5 ln 2 + (1e-4 - 0.5) ln(1e-4 / 0.5) = 0.346574 + 4.257745
    assert EPS == 1e-4
    assert psi([0.5, 0.5], [1.0, 0.0]) == pytest.approx(4.604319, abs=1e-6)


def test_psi_refuses_different_bins():
    with pytest.raises(ValueError, match="2 bins, actual 3"):
        psi([0.5, 0.5], [0.2, 0.3, 0.5])


def test_edges_have_an_outside_bin_each_side():
    values = np.arange(100.0)                        # 0 .. 99
    edges = bin_edges(values, bins=4)
    assert edges[0] == 0.0 and edges[-1] == np.nextafter(99.0, np.inf)
    assert list(edges[1:-1]) == [24.0, 49.0, 74.0]   # the observed values at or below each quartile
    assert list(bin_shares(edges, values)) == [0.0, 0.24, 0.25, 0.25, 0.26, 0.0]
    # below the training minimum / above its maximum land in the outside bins
    assert list(bin_shares(edges, [-5.0, 99.0, 1000.0, float("nan")])) == [1 / 3, 0.0, 0.0, 0.0, 1 / 3, 1 / 3]


def test_discrete_feature_gets_fewer_bins():
    edges = bin_edges(np.array([0.0] * 70 + [1.0] * 30), bins=10)
    assert list(edges) == [0.0, 1.0, np.nextafter(1.0, np.inf)]     # deciles 0 (x7) and 1 (x2), merged
    assert list(bin_shares(edges, [0.0] * 70 + [1.0] * 30)) == [0.0, 0.7, 0.3, 0.0]


def _normal(n, shift=0.0, seed=0, features=2):
    return np.random.default_rng(seed).normal(shift, 1.0, size=(n, features))


def test_same_distribution_does_not_drift_shifted_one_does():
    ref = reference_histograms(_normal(20_000), ["a", "b"], bins=10)
    m = DriftMonitor(ref, window=2000, psi_threshold=0.25)
    for x in _normal(2000, seed=1):
        m.observe_features(x)
    calm = m.check()
    assert not calm.demote and max(calm.psi.values()) < 0.02
    for x in _normal(2000, shift=1.0, seed=2):       # one standard deviation up: a large shift
        m.observe_features(x)
    verdict = m.check()
    assert verdict.demote
    assert verdict.reason.startswith("feature drift") and "2 of 2 features drifted" in verdict.reason
    assert min(verdict.psi.values()) > 0.5


def test_window_psi_equals_direct_computation():
    """The monitor's incremental counts give exactly the PSI of the last `window` vectors."""
    train = _normal(5000, features=1)
    ref = reference_histograms(train, ["a"], bins=10)
    edges, expected = np.array(ref["features"]["a"]["edges"]), np.array(ref["features"]["a"]["shares"])
    live = _normal(1300, shift=0.5, seed=3, features=1)
    m = DriftMonitor(ref, window=500)
    for x in live:
        m.observe_features(x)
    direct = psi(expected, bin_shares(edges, live[-500:, 0]))
    assert m.psi()["a"] == pytest.approx(direct, abs=1e-12)
    assert window_psi(edges, expected, live[-500:, 0], 500)[0] == pytest.approx(direct, abs=1e-12)


def test_old_vectors_leave_the_window():
    ref = reference_histograms(_normal(20_000), ["a", "b"])
    m = DriftMonitor(ref, window=1000)
    for x in _normal(1000, shift=3.0, seed=4):
        m.observe_features(x)
    assert m.check().demote
    for x in _normal(1000, seed=5):
        m.observe_features(x)
    fresh = DriftMonitor(ref, window=1000)
    for x in _normal(1000, seed=5):
        fresh.observe_features(x)
    assert m.psi() == pytest.approx(fresh.psi(), abs=1e-12)
    assert not m.check().demote


def test_psi_is_judged_on_a_full_window_only():
    ref = reference_histograms(_normal(5000), ["a", "b"])
    m = DriftMonitor(ref, window=100)
    for x in _normal(99, shift=5.0, seed=6):
        m.observe_features(x)
    assert max(m.psi().values()) > 5 and not m.check().demote
    m.observe_features(_normal(1, shift=5.0, seed=7)[0])
    assert m.check().demote


def _ar1(n, phi, seed, level=0.0):
    rng = np.random.default_rng(seed)
    out = np.empty(n)
    x = 0.0
    for i in range(n):
        x = phi * x + rng.normal(0.0, math.sqrt(1 - phi * phi))
        out[i] = x + level
    return out.reshape(-1, 1)


def test_slow_feature_calibrated_against_its_own_training_windows():
    """A persistent feature (like ATR) covers a narrow part of its range in any short window: raw PSI
    flags drift inside the training data itself; the null level keeps that from demoting, while
    values beyond anything seen in training still do."""
    train = _ar1(20_000, 0.995, seed=8)
    raw = reference_histograms(train, ["atr"])
    calibrated = reference_histograms(train, ["atr"], window=300)
    null = calibrated["features"]["atr"]["null_psi"]
    assert null > 1.0                                  # windows of the training data itself
    same_process = _ar1(300, 0.995, seed=9)
    m_raw, m_cal = DriftMonitor(raw, window=300), DriftMonitor(calibrated, window=300)
    assert m_cal.calibrated and not m_raw.calibrated
    assert m_cal.thresholds["atr"] == pytest.approx(max(0.25, null))
    for x in same_process:
        m_raw.observe_features(x)
        m_cal.observe_features(x)
    raw_verdict, cal_verdict = m_raw.check(), m_cal.check()
    assert raw_verdict.psi == cal_verdict.psi
    assert raw_verdict.demote and not cal_verdict.demote
    for x in _ar1(300, 0.995, seed=10, level=10.0):   # far above the training maximum
        m_cal.observe_features(x)
    verdict = m_cal.check()
    assert verdict.demote and verdict.psi["atr"] > 9 and "'atr'" in verdict.reason


def test_null_level_used_only_for_its_own_window_length():
    ref = reference_histograms(_ar1(5000, 0.99, seed=11), ["f"], window=200)
    assert not DriftMonitor(ref, window=300).calibrated
    assert DriftMonitor(ref, window=300).thresholds["f"] == 0.25


def test_hit_rate_collapse():
    ref = reference_histograms(_normal(1000), ["a", "b"])
    m = DriftMonitor(ref, baseline_hit_rate=0.6, window=100, min_hit_rate_ratio=0.7, min_outcomes=50)
    for i in range(49):
        m.observe_outcome(i % 5 < 2)                  # 40 % hits
    assert m.hit_rate() == pytest.approx(20 / 49) and not m.check().demote      # too few outcomes yet
    m.observe_outcome(False)
    verdict = m.check()
    assert verdict.demote and verdict.outcomes == 50 and verdict.hit_rate == pytest.approx(0.4)
    assert "hit rate collapsed" in verdict.reason and "0.420" in verdict.reason       # 0.7 x 0.6
    for i in range(100):                               # the window forgets: 60 % hits now
        m.observe_outcome(i % 5 < 3)
    assert m.hit_rate() == pytest.approx(0.6) and not m.check().demote


def test_hit_rate_check_off_without_baseline_or_ratio():
    ref = reference_histograms(_normal(1000), ["a", "b"])
    for kwargs in ({"baseline_hit_rate": None}, {"baseline_hit_rate": 0.6, "min_hit_rate_ratio": 0.0}):
        m = DriftMonitor(ref, window=100, min_outcomes=10, **kwargs)
        for _ in range(100):
            m.observe_outcome(False)
        assert m.hit_rate() == 0.0 and not m.check().demote


def test_bad_vectors_are_counted_not_fatal():
    ref = reference_histograms(_normal(1000), ["a", "b"])
    m = DriftMonitor(ref, window=10)
    assert not m.observe_features([1.0])
    assert not m.observe_features([1.0, float("nan")])
    assert not m.observe_features([[1.0, 2.0]])
    assert m.observe_features([0.1, 0.2])
    assert m.invalid == 3 and m.vectors == 1


def test_bad_reference_and_settings_name_the_problem():
    with pytest.raises(ValueError, match="reference_histograms"):
        DriftMonitor({"names": ["a"]})
    ref = reference_histograms(_normal(100), ["a", "b"])
    broken = {**ref, "features": {"a": ref["features"]["a"]}}
    with pytest.raises(ValueError, match="'b'"):
        DriftMonitor(broken)
    with pytest.raises(ValueError, match="window"):
        DriftMonitor(ref, window=1)
    with pytest.raises(ValueError, match="baseline_hit_rate"):
        DriftMonitor(ref, baseline_hit_rate=1.5)
    for kwargs, name in (({"min_outcomes": None}, "min_outcomes must be an integer >= 1"),
                         ({"min_outcomes": 0}, "min_outcomes must be an integer >= 1"),
                         ({"min_hit_rate_ratio": "0.7"}, "min_hit_rate_ratio must be a number"),
                         ({"psi_threshold": float("nan")}, "psi_threshold must be a number")):
        with pytest.raises(ValueError, match=name):          # a named ValueError, never a TypeError
            DriftMonitor(ref, **kwargs)
    with pytest.raises(ValueError, match="2 columns but 1"):
        reference_histograms(_normal(10), ["a"])
    with pytest.raises(ValueError, match="'b' has no finite"):
        reference_histograms(np.column_stack([np.ones(5), np.full(5, np.nan)]), ["a", "b"])


def test_from_config_uses_the_ml_section():
    ref = reference_histograms(_normal(3000), ["a", "b"], window=250)
    ml = MlSection(drift_window=250, drift_psi_threshold=0.3, min_live_hit_rate_ratio=0.5, drift_min_outcomes=7)
    m = DriftMonitor.from_config(ref, 0.55, ml)
    assert (m.window, m.psi_threshold, m.min_hit_rate_ratio, m.min_outcomes) == (250, 0.3, 0.5, 7)
    assert m.calibrated and m.baseline_hit_rate == 0.55
