"""Leakage checks on labels that have no relation to the features.

The labels are "shuffled" by shuffling the one-bar returns of the real ETH/BTC candles and
labelling the rebuilt path: the labels keep the real overlap structure (each reads 24 bars,
so neighbours share most of their window) but have nothing to do with the real features.
A feature that only says where a row sits in time (the bar index) is worthless out of
sample, yet lets a model read a neighbour's label when that neighbour trains.

What these tests show:
- a shuffled (plain, unpurged) KFold lets the model read the neighbours of nearly every test
  row: a false edge (AUC ~0.75), while the same model under PurgedKFold has none (~0.5);
- a contiguous unpurged KFold leaks only at its fold edges, too few rows to move the AUC of
  a whole fold; a nearest-neighbour model on the bar index, scored on the rows next to the
  fold edges, shows it (AUC ~0.85) and shows PurgedKFold removing it (~0.5);
- train_model (purged folds) reports no edge on such labels.
The exact purge and embargo (which rows are dropped, for any label spans) are proven in
tests/unit/ml/test_splits.py; this file shows that the leak they remove is real and matters.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import KFold
from sklearn.neighbors import KNeighborsClassifier
from threadpoolctl import threadpool_limits

from abidance.ml.dataset import build_dataset
from abidance.ml.labels import ForwardReturn
from abidance.ml.models import make_estimator, out_of_sample_proba, train_model
from abidance.ml.splits import PurgedKFold
from tests.kit import load_candles

HORIZON = 24
TOLERANCE = 0.05        # |AUC - 0.5| allowed for "no edge"; the leaky split must miss it by far


def _shuffled_label_data(seed: int):
    frame = load_candles("ETH_BTC-5m")
    ds = build_dataset(frame, labeler=ForwardReturn(HORIZON))
    close = frame.close.to_numpy()
    steps = close[1:] / close[:-1]
    rng = np.random.default_rng(seed)
    path = np.concatenate([[close[0]], close[0] * np.cumprod(steps[rng.permutation(len(steps))])])
    labels = ForwardReturn(HORIZON).apply(path)
    assert labels.valid[ds.index].all()
    y = labels.y[ds.index].astype(np.int64)
    X = np.column_stack([ds.X, ds.index.astype(np.float64)])      # + the bar index: a neighbour finder
    return ds, X, y


def _oos_auc(X, y, splits) -> float:
    def fit_predict(train, test):
        model = make_estimator("hgb", seed=0, max_iter=50)
        return model.fit(X[train], y[train]).predict_proba(X[test])[:, 1]

    with threadpool_limits(1):
        p, _ = out_of_sample_proba(fit_predict, X, y, splits)
    assert not np.isnan(p).any()
    return roc_auc_score(y, p)


def _no_edge(auc: float) -> bool:
    return abs(auc - 0.5) < TOLERANCE


def test_shuffled_labels_give_no_edge_under_purged_splits_but_a_false_one_under_a_leaky_split():
    purged, leaky = [], []
    for seed in (0, 1, 2):
        ds, X, y = _shuffled_label_data(seed)
        purged.append(_oos_auc(X, y, PurgedKFold(5, embargo=HORIZON).split(ds.index, ds.label_end)))
        leaky.append(_oos_auc(X, y, KFold(5, shuffle=True, random_state=0).split(X)))
    assert _no_edge(float(np.mean(purged))), f"purged out-of-sample AUC {purged}: an edge on noise = a leak"
    # The same check fails for the shuffled unpurged split: this check can tell that leak.
    assert not _no_edge(float(np.mean(leaky)))
    assert min(leaky) > 0.5 + 3 * TOLERANCE, f"unpurged AUC {leaky}"


EDGE = 4        # rows on each side of a fold edge that are scored


def _edge_auc(position, y, splits) -> float:
    """AUC of a 5-nearest-neighbour model on the bar index, over the test rows within EDGE
    rows of a fold edge: where an unpurged contiguous split trains on the overlapping labels."""
    n = len(y)

    def fit_predict(train, test):
        return KNeighborsClassifier(5).fit(position[train], y[train]).predict_proba(position[test])[:, 1]

    p, folds = out_of_sample_proba(fit_predict, position, y, splits)
    near = np.zeros(n, dtype=bool)
    for _, test in folds:
        if test[0] > 0:
            near[test[0]:test[0] + EDGE] = True
        if test[-1] < n - 1:
            near[test[-1] - EDGE + 1:test[-1] + 1] = True
    return roc_auc_score(y[near], p[near])


def test_a_contiguous_unpurged_split_leaks_at_its_fold_edges_and_purging_removes_it():
    purged, contiguous = [], []
    for seed in (0, 1, 2):
        ds, _, y = _shuffled_label_data(seed)
        position = ds.index.astype(np.float64).reshape(-1, 1)
        # 50 folds: 98 fold edges, about 400 rows next to one.
        contiguous.append(_edge_auc(position, y, list(KFold(50).split(position))))
        purged.append(_edge_auc(position, y, list(PurgedKFold(50, embargo=HORIZON).split(ds.index, ds.label_end))))
    assert _no_edge(float(np.mean(purged))), f"purged AUC at the fold edges {purged}"
    assert min(contiguous) > 0.5 + 3 * TOLERANCE, f"contiguous unpurged AUC at the fold edges {contiguous}"


def test_train_model_reports_no_out_of_sample_edge_on_shuffled_labels():
    ds, X, y = _shuffled_label_data(3)
    noisy = dataclasses.replace(ds, X=X, y=y)
    result = train_model(noisy, "hgb", seed=0, params={"max_iter": 50})
    assert _no_edge(result.oos["auc"]), result.oos
    assert all(f["dropped_rows"] >= 2 * HORIZON for f in result.folds[1:-1])     # purged on both sides
