# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""Compiled predictor for scikit-learn gradient boosting: the raw score of one row in C.

scikit-learn's `decision_function` costs milliseconds for one row (validation, thread
pools, a Python loop over the trees); the walk itself is a few hundred comparisons. A
`TreeEnsemble` holds the trees flattened into contiguous arrays (see trees.pxd) and walks
them in a nogil C loop:

    ens = TreeEnsemble.from_estimator(fitted)     # HistGradientBoostingClassifier or GradientBoostingClassifier
    z = ens.raw_score(x)                          # == fitted.decision_function(x[None])[0]

It reproduces scikit-learn 1.9's own arithmetic, so the scores are the same bits:

- HistGradientBoosting (`_predict_from_raw_data`): the baseline, then each tree's leaf value
  added in turn; a node sends x to the left when x <= its raw threshold `num_threshold`
  (not the binned one, which applies to binned training data), and a NaN the way
  `missing_go_to_left` says. Leaf values already carry the learning rate.
- GradientBoosting (`predict_stages`): the init estimator's raw prediction (a constant for
  the default class prior, or 0 for init="zero"), then learning_rate * leaf value added
  per tree. The rows are float32 in scikit-learn, so each feature is rounded to float32
  before it meets a (double) threshold, and a NaN, an infinity or a value beyond float32
  is refused as scikit-learn refuses it.

Binary classification with numeric features only: anything else is refused at build,
naming why. `raw_score` keeps the GIL: a call is about a microsecond, and dropping the GIL
in the node's event loop thread could hand it to another thread for a whole switch interval.
"""

cimport cython
from libc.math cimport isfinite, isnan
from libc.stdint cimport int32_t, uint8_t

import numpy as np

INT32_MAX = 2**31 - 1


def _int32(name: str, values) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim == 1 and arr.size == 0:
        return np.zeros(0, dtype=np.int32)
    if arr.ndim != 1 or not (np.issubdtype(arr.dtype, np.integer) or arr.dtype == np.bool_):
        raise TypeError(f"TreeEnsemble: {name} must be a 1-D integer array, got {arr.dtype} of shape {arr.shape}")
    if len(arr) and (arr.min() < -1 or arr.max() > INT32_MAX):
        raise ValueError(f"TreeEnsemble: {name} holds {arr.min()}..{arr.max()}, outside -1..{INT32_MAX}")
    return np.ascontiguousarray(arr, dtype=np.int32).copy()


def _float64(name: str, values) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.floating):
        raise TypeError(f"TreeEnsemble: {name} must be a 1-D float array, got {arr.dtype} of shape {arr.shape}")
    return np.ascontiguousarray(arr, dtype=np.float64).copy()


@cython.wraparound(True)          # numpy indexing in build-time code
def _check_layout(feature, threshold, left, right, missing_left, value, roots, n_features) -> None:
    """Every index in range and every child after its parent within its own tree, so that
    the C walk can neither read out of bounds nor loop."""
    n = len(feature)
    for name, arr in (("threshold", threshold), ("left", left), ("right", right),
                      ("missing_left", missing_left), ("value", value)):
        if len(arr) != n:
            raise ValueError(f"TreeEnsemble: {name} has {len(arr)} nodes, feature has {n}")
    if len(roots) == 0 or n == 0:
        raise ValueError("TreeEnsemble: no trees")
    if roots[0] != 0 or (np.diff(roots) <= 0).any() or roots[-1] >= n:
        raise ValueError(f"TreeEnsemble: roots must start at 0 and increase within the {n} nodes")
    ends = np.append(roots[1:], n)
    end_of = np.repeat(ends, ends - roots)          # one past the last node of each node's tree
    node = np.arange(n)
    inner = feature >= 0
    if (feature[inner] >= n_features).any():
        raise ValueError(f"TreeEnsemble: a node reads a feature >= n_features ({n_features})")
    for name, child in (("left", left), ("right", right)):
        c, i = child[inner], node[inner]
        if ((c <= i) | (c >= end_of[inner])).any():
            bad = int(i[(c <= i) | (c >= end_of[inner])][0])
            raise ValueError(f"TreeEnsemble: node {bad}'s {name} child {int(child[bad])} is not after it "
                             "within its tree")
    if np.isnan(threshold[inner]).any():
        raise ValueError("TreeEnsemble: a split threshold is NaN")
    if not np.isfinite(value[~inner]).all():
        raise ValueError("TreeEnsemble: a leaf value is not finite")
    if (missing_left > 1).any():
        raise ValueError("TreeEnsemble: missing_left must hold 0 or 1")


cdef class TreeEnsemble:
    """A binary classifier's boosted trees; `raw_score(x)` is its decision function of one row.

    Built by `from_estimator(fitted)`, or from flat arrays (node i: `feature[i]` (-1 for a
    leaf), `threshold[i]`, absolute child indices `left[i]` / `right[i]`, `missing_left[i]`
    (where a NaN goes), leaf `value[i]`; `roots[t]` the first node of tree t), `baseline`
    the score before the first tree.
    """

    def __init__(self, feature, threshold, left, right, missing_left, value, roots, double baseline,
                 Py_ssize_t n_features, bint float32_input=False, str source=""):
        if n_features < 1:
            raise ValueError(f"TreeEnsemble: n_features must be >= 1, got {n_features}")
        if not isfinite(baseline):
            raise ValueError(f"TreeEnsemble: baseline must be finite, got {baseline!r}")
        arrays = (_int32("feature", feature), _float64("threshold", threshold), _int32("left", left),
                  _int32("right", right), _int32("missing_left", missing_left).astype(np.uint8),
                  _float64("value", value), _int32("roots", roots))
        _check_layout(*arrays, n_features)
        for arr in arrays:
            arr.flags.writeable = False         # shared with pickles and views: never changed after the check
        self._arrays = arrays
        self._feature, self._threshold, self._left, self._right, self._missing_left, self._value, self._roots = arrays
        self.n_features = n_features
        self.n_trees = len(arrays[6])
        self.n_nodes = len(arrays[0])
        self.baseline = baseline
        self.float32_input = float32_input
        self.source = source

    def __reduce__(self):
        return (TreeEnsemble, self._arrays + (self.baseline, self.n_features, self.float32_input, self.source))

    def __repr__(self):
        return (f"TreeEnsemble(source={self.source!r}, trees={self.n_trees}, nodes={self.n_nodes}, "
                f"features={self.n_features})")

    @property
    def arrays(self) -> dict:
        """The flat arrays (read-only), by name."""
        names = ("feature", "threshold", "left", "right", "missing_left", "value", "roots")
        return dict(zip(names, self._arrays)) if self._arrays else {}

    cdef double raw_score_c(self, const double* x) noexcept nogil:
        # x holds n_features doubles (the caller checks); for float32 models, finite ones.
        cdef double total = self.baseline
        cdef double v
        cdef Py_ssize_t t, i
        cdef int32_t f
        cdef bint f32 = self.float32_input
        for t in range(self.n_trees):
            i = self._roots[t]
            f = self._feature[i]
            while f >= 0:
                v = x[f]
                if f32:
                    v = <double><float>v
                if v <= self._threshold[i]:
                    i = self._left[i]
                elif isnan(v):
                    i = self._left[i] if self._missing_left[i] else self._right[i]
                else:
                    i = self._right[i]
                f = self._feature[i]
            total += self._value[i]         # in tree order, as scikit-learn adds them
        return total

    def raw_score(self, const double[:] x) -> float:
        """The raw score (scikit-learn's decision_function) of one feature vector (float64)."""
        cdef Py_ssize_t j, n = x.shape[0]
        cdef double v
        if self.n_trees == 0:
            raise ValueError("TreeEnsemble: not built (construct it with arrays or from_estimator)")
        if n != self.n_features:
            raise ValueError(f"TreeEnsemble.raw_score: expected {self.n_features} features, got {n}")
        if x.strides[0] != sizeof(double):
            return self.raw_score(np.ascontiguousarray(x))
        if self.float32_input:
            for j in range(n):
                v = <float>x[j]
                if not isfinite(v):
                    raise ValueError(f"TreeEnsemble.raw_score: feature {j} is {x[j]!r}; this "
                                     f"{self.source or 'float32'} model takes finite values within float32 range "
                                     "(as scikit-learn requires)")
        return self.raw_score_c(&x[0])

    @staticmethod
    def from_estimator(estimator) -> TreeEnsemble:
        """From a fitted binary HistGradientBoostingClassifier or GradientBoostingClassifier;
        TypeError for another estimator, ValueError for one these trees cannot reproduce."""
        from sklearn.ensemble import GradientBoostingClassifier, HistGradientBoostingClassifier

        if isinstance(estimator, HistGradientBoostingClassifier):
            return _from_hist_gradient_boosting(estimator)
        if isinstance(estimator, GradientBoostingClassifier):
            return _from_gradient_boosting(estimator)
        raise TypeError(f"TreeEnsemble.from_estimator: {type(estimator).__name__} is not supported "
                        "(HistGradientBoostingClassifier or GradientBoostingClassifier only)")


def _binary(estimator, trees_per_iteration: int) -> None:
    name = type(estimator).__name__
    classes = getattr(estimator, "classes_", None)
    if classes is None:
        raise ValueError(f"TreeEnsemble.from_estimator: this {name} is not fitted")
    if len(classes) != 2 or trees_per_iteration != 1:
        raise ValueError(f"TreeEnsemble.from_estimator: binary classification only; this {name} has "
                         f"{len(classes)} classes")


@cython.wraparound(True)          # numpy indexing in build-time code
def _from_hist_gradient_boosting(est) -> TreeEnsemble:
    predictors = getattr(est, "_predictors", None)
    if predictors is None:
        raise ValueError("TreeEnsemble.from_estimator: this HistGradientBoostingClassifier is not fitted")
    _binary(est, est.n_trees_per_iteration_)
    if est.is_categorical_ is not None and np.asarray(est.is_categorical_).any():
        raise ValueError("TreeEnsemble.from_estimator: categorical features are not supported "
                         "(their splits are bitsets, not thresholds)")
    nodes = [iteration[0].nodes for iteration in predictors]
    if any(n["is_categorical"].any() for n in nodes):
        raise ValueError("TreeEnsemble.from_estimator: a tree splits on a categorical feature (not supported)")
    sizes = np.array([len(n) for n in nodes], dtype=np.int64)
    roots = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    offset = np.repeat(roots, sizes)
    flat = np.concatenate(nodes)
    leaf = flat["is_leaf"].astype(bool)
    baseline = np.asarray(est._baseline_prediction, dtype=np.float64).ravel()
    if baseline.shape != (1,):
        raise ValueError(f"TreeEnsemble.from_estimator: expected one baseline, got {baseline.shape[0]}")
    return TreeEnsemble(
        feature=np.where(leaf, -1, flat["feature_idx"]),
        threshold=flat["num_threshold"],
        left=np.where(leaf, -1, flat["left"].astype(np.int64) + offset),
        right=np.where(leaf, -1, flat["right"].astype(np.int64) + offset),
        missing_left=flat["missing_go_to_left"],
        value=flat["value"],
        roots=roots,
        baseline=float(baseline[0]),
        n_features=int(est.n_features_in_),
        float32_input=False,
        source="hgb",
    )


@cython.wraparound(True)          # numpy indexing in build-time code
def _from_gradient_boosting(est) -> TreeEnsemble:
    import warnings

    from sklearn.dummy import DummyClassifier

    stages = getattr(est, "estimators_", None)
    if stages is None:
        raise ValueError("TreeEnsemble.from_estimator: this GradientBoostingClassifier is not fitted")
    _binary(est, stages.shape[1])
    n_features = int(est.n_features_in_)
    init = est.init_
    baseline = 0.0                  # init="zero"
    if isinstance(init, str) and init == "zero":
        pass
    elif isinstance(init, DummyClassifier) and init.strategy == "prior":
        # A constant: scikit-learn's own computation on any row (clipped prior, then the loss's link).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            baseline = float(est._raw_predict_init(np.zeros((1, n_features), dtype=np.float32))[0, 0])
    else:
        raise ValueError(f"TreeEnsemble.from_estimator: the init estimator {init!r} is not supported "
                         "(its start depends on the row; the default prior or init='zero' only)")
    scale = float(est.learning_rate)
    trees = [stage[0].tree_ for stage in stages]
    if any(t.n_outputs != 1 or t.value.shape[1:] != (1, 1) for t in trees):
        raise ValueError("TreeEnsemble.from_estimator: expected single-output regression trees")
    sizes = np.array([t.node_count for t in trees], dtype=np.int64)
    roots = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    offset = np.repeat(roots, sizes)
    left = np.concatenate([t.children_left for t in trees]).astype(np.int64)
    leaf = left == -1
    return TreeEnsemble(
        feature=np.where(leaf, -1, np.concatenate([t.feature for t in trees])),
        threshold=np.concatenate([t.threshold for t in trees]),
        left=np.where(leaf, -1, left + offset),
        right=np.where(leaf, -1, np.concatenate([t.children_right for t in trees]).astype(np.int64) + offset),
        missing_left=np.zeros(len(leaf), dtype=np.uint8),       # NaN is refused, as scikit-learn refuses it
        # scikit-learn adds learning_rate * value per tree: the same product, taken once here.
        value=scale * np.concatenate([t.value[:, 0, 0] for t in trees]),
        roots=roots,
        baseline=baseline,
        n_features=n_features,
        float32_input=True,
        source="gb",
    )
