"""Purged and embargoed splits: hand-computed folds and, on real labels, no overlap anywhere."""

from __future__ import annotations

import numpy as np
import pytest

from abidance.ml.dataset import build_dataset
from abidance.ml.labels import TripleBarrier
from abidance.ml.splits import PurgedKFold, PurgedWalkForward
from tests.kit import load_candles


def test_purged_k_fold_by_hand():
    start = np.arange(10)
    end = start + 2                 # each label reads the next two bars
    folds = list(PurgedKFold(5, embargo=1).split(start, end))
    expected = [
        # test rows, train rows
        ([0, 1], [5, 6, 7, 8, 9]),  # window [0, 3]: rows 2, 3 overlap it; row 4 is the embargo
        ([2, 3], [7, 8, 9]),        # window [2, 5]: rows 0, 1 (their labels reach bar 2, 3), 4, 5; embargo 6
        ([4, 5], [0, 1, 9]),        # window [4, 7]: rows 2, 3, 6, 7; embargo 8
        ([6, 7], [0, 1, 2, 3]),     # window [6, 9]: rows 4, 5, 8, 9; nothing after it
        ([8, 9], [0, 1, 2, 3, 4, 5]),  # window [8, 11]: rows 6, 7
    ]
    assert [(test.tolist(), train.tolist()) for train, test in folds] == expected


def test_purged_walk_forward_by_hand():
    start = np.arange(12)
    end = start + 2
    folds = list(PurgedWalkForward(n_splits=2, test_size=3, gap=1).split(start, end))
    # test 6..8: train rows must end before bar 6 - 1 = 5: rows 0..2. test 9..11: rows 0..5.
    assert [(train.tolist(), test.tolist()) for train, test in folds] == [([0, 1, 2], [6, 7, 8]),
                                                                         ([0, 1, 2, 3, 4, 5], [9, 10, 11])]
    rolling = list(PurgedWalkForward(n_splits=2, test_size=3, train_size=4).split(start, end))
    assert [train.tolist() for train, _ in rolling] == [[2, 3], [5, 6]]


def _real_spans():
    frame = load_candles("ETH_BTC-5m")
    ds = build_dataset(frame, labeler=TripleBarrier(36, 0.01, 0.01))
    return ds.index, ds.label_end


@pytest.mark.parametrize("embargo", [0, 36])
def test_no_training_label_window_overlaps_a_test_window_and_the_embargo_holds(embargo):
    start, end = _real_spans()
    assert len(np.unique(end - start)) > 10             # variable label spans: a real test of purging
    n = len(start)
    tested = np.zeros(n, dtype=int)
    for train, test in PurgedKFold(5, embargo).split(start, end):
        tested[test] += 1
        lo, hi = start[test].min(), end[test].max()
        # every training window is disjoint from every test row's window ...
        for i in test[:: max(1, len(test) // 50)]:
            assert not np.any((start[train] <= end[i]) & (end[train] >= start[i]))
        assert not np.any((start[train] <= hi) & (end[train] >= lo))
        # ... no training row starts within the embargo after the test window ...
        assert not np.any((start[train] > hi) & (start[train] <= hi + embargo))
        # ... and nothing else is dropped.
        others = np.setdiff1d(np.arange(n), test)
        clean = others[~(((start[others] <= hi) & (end[others] >= lo))
                         | ((start[others] > hi) & (start[others] <= hi + embargo)))]
        assert np.array_equal(train, clean)
        if embargo:
            after = np.flatnonzero(start > hi)
            if len(after):
                assert start[train[train > test[-1]]].min() > hi + embargo
    assert (tested == 1).all()


def test_walk_forward_on_real_labels_trains_only_on_labels_ended_before_the_test():
    start, end = _real_spans()
    for train, test in PurgedWalkForward(n_splits=4, gap=5).split(start, end):
        assert train.max() < test.min()
        assert end[train].max() < start[test[0]] - 5


def test_splits_refuse_bad_input_with_the_reason():
    with pytest.raises(ValueError, match=r"rows must be in time order; start\[2\]=1 < start\[1\]=5"):
        list(PurgedKFold(2).split([0, 5, 1, 6], [1, 6, 2, 7]))
    with pytest.raises(ValueError, match=r"cannot end before it starts: end\[1\]=0 < start\[1\]=1"):
        list(PurgedKFold(2).split([0, 1, 2, 3], [1, 0, 3, 4]))
    with pytest.raises(ValueError, match=r"3 rows cannot make 5 folds"):
        list(PurgedKFold(5).split([0, 1, 2], [0, 1, 2]))
    with pytest.raises(ValueError, match=r"n_splits must be an integer >= 2"):
        PurgedKFold(1)
    for bad in ("x", None, float("nan"), -1, True):
        with pytest.raises(ValueError, match=r"PurgedKFold: embargo must be a finite number >= 0"):
            PurgedKFold(2, embargo=bad)
        with pytest.raises(ValueError, match=r"PurgedWalkForward: gap must be a finite number >= 0"):
            PurgedWalkForward(2, gap=bad)
    assert PurgedKFold(2, embargo=np.int64(3)).embargo == 3 and PurgedWalkForward(2, gap=1.5).gap == 1.5
    with pytest.raises(ValueError, match=r"has no training row left after purging"):
        list(PurgedWalkForward(n_splits=2, test_size=2).split(np.arange(6), np.arange(6) + 5))
