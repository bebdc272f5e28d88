"""Purged and embargoed time-series splits (López de Prado, Advances in Financial ML, ch. 7).

Each row i is an observation whose information spans [start[i], end[i]]: its features are
known at start[i] (a bar index or a time), its label reads up to end[i]. Rows are in time
order. A test fold covers the window [first start, last end] of its rows; a training row
is dropped when
  - its window overlaps the test window (purging: its label would read the test's
    prices, or the test's labels would read its features' period), or
  - it starts within `embargo` after the test window (embargo: features right after the
    test still carry the test period's information through serial correlation).
Units of `embargo`/`gap` are those of start/end (bars when they are bar indices).

Splits yield (train_rows, test_rows) as int64 positions into the arrays given, so they
can be passed as `cv=` to scikit-learn (as a list).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np


def _spans(who: str, start, end) -> tuple[np.ndarray, np.ndarray]:
    start, end = np.asarray(start), np.asarray(end)
    if start.ndim != 1 or end.ndim != 1 or len(start) != len(end):
        raise ValueError(f"{who}: start and end must be one-dimensional and of equal length, "
                         f"got shapes {start.shape} and {end.shape}")
    if len(start) and (np.any(np.diff(start) < 0)):
        i = int(np.argmax(np.diff(start) < 0)) + 1
        raise ValueError(f"{who}: rows must be in time order; start[{i}]={start[i].item()!r} < "
                         f"start[{i - 1}]={start[i - 1].item()!r}")
    if np.any(end < start):
        i = int(np.argmax(end < start))
        raise ValueError(f"{who}: a label cannot end before it starts: end[{i}]={end[i].item()!r} < "
                         f"start[{i}]={start[i].item()!r}")
    return start, end


def _count(who: str, name: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{who}: {name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _amount(who: str, name: str, value):
    """A finite number >= 0 (an embargo or gap, in the units of start/end)."""
    real = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
    if not real or not np.isfinite(value) or value < 0:
        raise ValueError(f"{who}: {name} must be a finite number >= 0 (in the units of start/end), got {value!r}")
    return value


def purge_mask(start: np.ndarray, end: np.ndarray, test_rows: np.ndarray, embargo=0) -> np.ndarray:
    """Rows that may train against `test_rows`: not in the test, not overlapping the test
    window [start of the first test row, latest end of the test rows], not embargoed."""
    test_lo = start[test_rows].min()
    test_hi = end[test_rows].max()
    overlaps = (start <= test_hi) & (end >= test_lo)
    embargoed = (start > test_hi) & (start <= test_hi + embargo)
    keep = ~(overlaps | embargoed)
    keep[test_rows] = False
    return keep


class PurgedKFold:
    """K contiguous test folds in time order; training rows on both sides, purged and embargoed."""

    def __init__(self, n_splits: int = 5, embargo=0):
        self.n_splits = _count("PurgedKFold", "n_splits", n_splits, 2)
        self.embargo = _amount("PurgedKFold", "embargo", embargo)

    def get_n_splits(self, *_args) -> int:
        return self.n_splits

    def split(self, start, end) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        start, end = _spans("PurgedKFold", start, end)
        n = len(start)
        if n < self.n_splits:
            raise ValueError(f"PurgedKFold: {n} rows cannot make {self.n_splits} folds")
        for test in np.array_split(np.arange(n, dtype=np.int64), self.n_splits):
            train = np.flatnonzero(purge_mask(start, end, test, self.embargo)).astype(np.int64)
            yield train, test


class PurgedWalkForward:
    """Test blocks at the end, one after another; each trains only on earlier rows whose
    labels end before the test starts (minus `gap`). `train_size` rows at most (rolling),
    or every earlier row when None (anchored)."""

    def __init__(self, n_splits: int = 5, test_size: int | None = None, train_size: int | None = None, gap=0):
        who = "PurgedWalkForward"
        self.n_splits = _count(who, "n_splits", n_splits, 1)
        self.test_size = None if test_size is None else _count(who, "test_size", test_size, 1)
        self.train_size = None if train_size is None else _count(who, "train_size", train_size, 1)
        self.gap = _amount(who, "gap", gap)

    def get_n_splits(self, *_args) -> int:
        return self.n_splits

    def split(self, start, end) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        start, end = _spans("PurgedWalkForward", start, end)
        n = len(start)
        test_size = self.test_size or n // (self.n_splits + 1)
        first_test = n - self.n_splits * test_size
        if test_size < 1 or first_test < 1:
            raise ValueError(f"PurgedWalkForward: {n} rows cannot hold {self.n_splits} test blocks of "
                             f"{test_size} rows after some training rows")
        for k in range(self.n_splits):
            lo = first_test + k * test_size
            test = np.arange(lo, lo + test_size, dtype=np.int64)
            begin = 0 if self.train_size is None else max(0, lo - self.train_size)
            candidates = np.arange(begin, lo, dtype=np.int64)
            train = candidates[end[candidates] < start[lo] - self.gap]
            if len(train) == 0:
                raise ValueError(f"PurgedWalkForward: test block {k} (rows {lo}..{lo + test_size - 1}) "
                                 "has no training row left after purging")
            yield train, test
