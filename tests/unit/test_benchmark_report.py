"""The benchmark report's verdicts (benchmarks/conftest.py): MET only when something was met."""

from __future__ import annotations

from benchmarks.conftest import Figure


def figure(measured, target=None, kind="max", baseline=None, min_ratio=None, smoke=False) -> Figure:
    return Figure("f", measured, "us", target, kind, "base" if baseline else None, baseline, min_ratio, smoke)


def test_a_figure_with_nothing_to_meet_says_n_a_not_met():
    assert figure(5.0).verdict() == "n/a"
    assert figure(5.0, baseline=10.0).verdict() == "n/a"            # a ratio is printed, none is required
    assert figure(5.0, kind="min", min_ratio=2.0).verdict() == "n/a"  # a required ratio but no baseline
    assert figure(5.0).line().endswith("| n/a")


def test_targets_and_ratios_are_met_or_missed():
    assert figure(5.0, target=10.0).verdict() == "MET"
    assert figure(15.0, target=10.0).verdict() == "MISSED"
    assert figure(5.0, target=10.0, kind="min").verdict() == "MISSED"
    assert figure(5.0, baseline=20.0, min_ratio=3.0).verdict() == "MET"          # 4x faster
    assert figure(5.0, baseline=10.0, min_ratio=3.0).verdict() == "MISSED"       # 2x
    assert figure(5.0, target=10.0, baseline=10.0, min_ratio=3.0).verdict() == "MISSED"
    assert figure(5.0, smoke=True).verdict().startswith("SMOKE RUN")
