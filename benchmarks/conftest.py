"""Benchmark reporting: every figure is printed beside its target and a baseline.

Use the `report` fixture after measuring:

    report("book.apply_diff", measured=31.0, unit="ns/level", target=40.0,
           baseline=("pure-Python twin", 1450.0), min_ratio=30.0, benchmark=benchmark)

The figures also go into the benchmark's extra_info, so `--benchmark-json` keeps them.
The summary table is printed at the end of the session. Targets are reported, not
asserted: benchmarks measure, tests check correctness.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pytest


@dataclass
class Figure:
    name: str
    measured: float
    unit: str
    target: float | None
    target_kind: str
    baseline_name: str | None
    baseline: float | None
    min_ratio: float | None
    smoke: bool = False

    @property
    def ratio(self) -> float | None:
        """How many times better than the baseline (times: lower wins; rates: higher wins)."""
        if self.baseline is None or self.measured <= 0 or self.baseline <= 0:
            return None
        return self.measured / self.baseline if self.target_kind == "min" else self.baseline / self.measured

    def verdict(self) -> str:
        """MET / MISSED against the target and the minimum ratio; "n/a" when there is nothing to
        meet (a reference figure: no target, no min_ratio, or no ratio to compare with it)."""
        if self.smoke:
            return "SMOKE RUN (--benchmark-disable: one pass, not a measurement)"
        checks = []
        if self.target is not None:
            checks.append(self.measured <= self.target if self.target_kind == "max" else self.measured >= self.target)
        if self.min_ratio is not None and self.ratio is not None:
            checks.append(self.ratio >= self.min_ratio)
        if not checks:
            return "n/a"
        return "MET" if all(checks) else "MISSED"

    def line(self) -> str:
        sign = "<=" if self.target_kind == "max" else ">="
        parts = [f"{self.name}: {self.measured:,.2f} {self.unit}"]
        if self.target is not None:
            parts.append(f"target {sign} {self.target:,.2f}")
        if self.baseline is not None:
            parts.append(f"baseline {self.baseline_name} {self.baseline:,.2f} {self.unit}")
            parts.append(f"ratio {self.ratio:,.2f}x" + (f" (target >= {self.min_ratio:g}x)" if self.min_ratio else ""))
        parts.append(self.verdict())
        return " | ".join(parts)


_FIGURES: list[Figure] = []


@pytest.fixture
def report(request):
    smoke = bool(request.config.getoption("benchmark_disable", False))

    def _report(name, measured, unit, target=None, target_kind="max", baseline=None,
                min_ratio=None, benchmark=None):
        baseline_name, baseline_value = baseline if baseline else (None, None)
        fig = Figure(name, float(measured), unit, target, target_kind, baseline_name,
                     None if baseline_value is None else float(baseline_value), min_ratio, smoke)
        _FIGURES.append(fig)
        print("\n" + fig.line())
        if benchmark is not None:
            benchmark.extra_info.update({
                "figure": fig.name, "measured": fig.measured, "unit": fig.unit,
                "target": fig.target, "target_kind": fig.target_kind,
                "baseline_name": fig.baseline_name, "baseline": fig.baseline,
                "ratio": fig.ratio, "min_ratio": fig.min_ratio, "verdict": fig.verdict(),
            })
        return fig
    return _report


def best_ns(fn, repeat: int = 7, number: int = 1) -> float:
    """Best wall time of fn() in ns over `repeat` rounds of `number` calls (per call)."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter_ns()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter_ns() - t0) / number)
    return best


@pytest.fixture
def timer():
    return best_ns


def measure_ns(benchmark, fn, ops: int = 1, rounds: int = 20, iterations: int = 1,
               setup=None) -> float:
    """Run fn under pytest-benchmark and return the median ns per op.

    With --benchmark-disable (the test suite's smoke run) fn runs once and that
    single timing is returned, so the code path is still exercised.
    """
    if benchmark.disabled:
        if setup is not None:
            args, kwargs = setup()
            t0 = time.perf_counter_ns()
            fn(*args, **kwargs)
        else:
            t0 = time.perf_counter_ns()
            fn()
        return (time.perf_counter_ns() - t0) / ops
    if setup is not None:
        benchmark.pedantic(fn, setup=setup, rounds=rounds, iterations=1, warmup_rounds=1)
    else:
        benchmark.pedantic(fn, rounds=rounds, iterations=iterations, warmup_rounds=1)
    return benchmark.stats.stats.median * 1e9 / ops


def log_histogram(series: dict, first_us: float = 1.0, per_octave: int = 2, octaves: int = 11) -> dict:
    """Latency histograms (ns samples) in log-spaced buckets of microseconds, side by side: prints a
    table (bucket, then count and share per series) and returns it for extra_info. The last bucket
    holds everything above the range."""
    edges = [first_us * 2 ** (k / per_octave) for k in range(octaves * per_octave + 1)]
    bounds = np.array(edges + [float("inf")]) * 1000.0
    counts = {name: np.histogram(t, bins=np.concatenate(([0.0], bounds)))[0].tolist() for name, t in series.items()}
    labels = [f"< {edges[0]:.1f}"] + [f"{a:.1f}-{b:.1f}" for a, b in zip(edges, edges[1:])] + [f">= {edges[-1]:.0f}"]
    print("\nlatency histogram (us): " + " | ".join(f"{name} count, share" for name in series))
    for i, label in enumerate(labels):
        row = [(c[i], c[i] / max(1, sum(c))) for c in counts.values()]
        if any(n for n, _ in row):
            print(f"  {label:>13}  " + "  ".join(f"{n:>9,} {share:7.2%}" for n, share in row))
    return {"bucket_us": labels, **counts}


@pytest.fixture
def histogram():
    return log_histogram


@pytest.fixture
def measure():
    return measure_ns


def pytest_terminal_summary(terminalreporter):
    if not _FIGURES:
        return
    terminalreporter.section("abidance figures (measured | target | baseline | ratio)")
    for fig in _FIGURES:
        terminalreporter.write_line(fig.line())
