"""Drift of a deployed model: feature distribution shift (PSI) and the live hit rate.

Reference: at training, `reference_histograms(X, names, window=...)` bins every feature at
the deciles of its training values, plus one bin below the training minimum and one above
the maximum (a value never seen in training counts as strong drift), and keeps the share
of rows in each bin; the registry stores it with the model (`ModelVersion.reference`).

Slow features (ATR, Bollinger width, long EMA gaps) sit in a narrow part of their range
over any short window, so their PSI over a window is large even in the training data
itself (measured on ETH/BTC 5m, 500-bar windows inside the training period: 4.2 on atr_14
at the 99th percentile; docs/registry.md). With `window`, the reference also keeps each feature's null level: the 99th
percentile of the PSI of rolling windows of that length inside the training data. A
feature counts as drifted only above both the threshold and its null level (when the
monitor's window is the reference's; otherwise the threshold alone).

Live: `DriftMonitor` keeps the last `window` feature vectors (their bin per feature, O(1)
per vector: a ring of bin indices and running counts) and the last `window` realised
outcomes of the model's signals (hit or miss). `check()` says to demote when

- any feature's population stability index over a full window exceeds the threshold:
  PSI = sum over bins of (actual - expected) * ln(actual / expected), shares floored at
  `EPS` so an empty bin counts as very unlikely instead of infinite (0.1 is a moderate,
  0.25 a large shift, by the usual rule of thumb), or
- with at least `min_outcomes` outcomes, the live hit rate is below
  `min_hit_rate_ratio` x the out-of-sample hit rate the model was promoted on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

EPS = 1e-4               # floor of a bin share in PSI
REFERENCE_FORMAT = "abidance.drift.reference/1"


def _is_number(value) -> bool:
    """A finite real number (not a bool, a string or NaN): what a setting here must be."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) \
        and bool(np.isfinite(value))


def _finite_2d(X, what: str) -> np.ndarray:
    arr = np.asarray(X, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{what} must be a 2-d array (rows x features), got shape {arr.shape}")
    return arr


def bin_edges(values, bins: int = 10) -> np.ndarray:
    """Edges: the minimum, the inner quantiles, just above the maximum (repeated edges merged: a
    discrete feature gets fewer bins). Bin 0 is below the training range, the last bin above it."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        raise ValueError("bin_edges: no finite values")
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 2:
        raise ValueError(f"bins must be an integer >= 2, got {bins!r}")
    inner = np.quantile(v, np.arange(1, bins) / bins, method="lower")     # observed values, never in between
    return np.unique(np.concatenate([[v.min()], inner, [np.nextafter(v.max(), np.inf)]]))


def bin_shares(edges, values) -> np.ndarray:
    """Share of the finite `values` in each bin (len(edges) + 1 bins; bin i holds edges[i-1] <= x < edges[i])."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    counts = np.bincount(np.searchsorted(np.asarray(edges, dtype=np.float64), v, side="right"),
                         minlength=len(edges) + 1)
    return counts / max(1, v.size)


def psi(expected, actual, eps: float = EPS) -> float:
    """Population stability index of two share vectors over the same bins."""
    e = np.maximum(np.asarray(expected, dtype=np.float64), eps)
    a = np.maximum(np.asarray(actual, dtype=np.float64), eps)
    if e.shape != a.shape:
        raise ValueError(f"psi: expected has {e.size} bins, actual {a.size}")
    return float(np.sum((a - e) * np.log(a / e)))


def window_psi(edges, expected, values, window: int, stride: int = 1) -> np.ndarray:
    """PSI of every `window`-long run of `values` (every `stride`-th start) against `expected`."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size < window:
        return np.empty(0)
    nb = len(edges) + 1
    onehot = np.zeros((v.size + 1, nb))
    onehot[np.arange(1, v.size + 1), np.searchsorted(edges, v, side="right")] = 1.0
    cum = np.cumsum(onehot, axis=0)                           # counts of the first i values, per bin
    starts = np.arange(0, v.size - window + 1, stride)
    actual = np.maximum((cum[starts + window] - cum[starts]) / window, EPS)
    e = np.maximum(np.asarray(expected, dtype=np.float64), EPS)
    return np.sum((actual - e) * np.log(actual / e), axis=1)


def reference_histograms(X, names: Sequence[str], bins: int = 10, window: int | None = None) -> dict:
    """The training distribution of every feature (JSON-ready), for the registry and DriftMonitor;
    with `window` (ml.drift_window) also each feature's null PSI level for windows of that length."""
    arr = _finite_2d(X, "X")
    names = list(names)
    if arr.shape[1] != len(names):
        raise ValueError(f"X has {arr.shape[1]} columns but {len(names)} feature names were given")
    if window is not None and (isinstance(window, bool) or not isinstance(window, int) or window < 2):
        raise ValueError(f"window must be an integer >= 2, got {window!r}")
    features = {}
    for j, name in enumerate(names):
        col = arr[:, j]
        if not np.isfinite(col).any():
            raise ValueError(f"feature {name!r} has no finite training value")
        edges = bin_edges(col, bins)
        shares = bin_shares(edges, col)
        features[name] = {"edges": edges.tolist(), "shares": shares.tolist()}
        if window is not None:
            null = window_psi(edges, shares, col, window, stride=max(1, window // 20))
            if null.size:
                features[name]["null_psi"] = float(np.percentile(null, 99))
    return {"format": REFERENCE_FORMAT, "bins": bins, "rows": int(arr.shape[0]), "names": names,
            "window": window, "features": features}


def _check_reference(reference: dict) -> tuple[list[str], list[np.ndarray], list[np.ndarray], list]:
    fmt = reference.get("format") if isinstance(reference, dict) else None
    if fmt != REFERENCE_FORMAT:
        raise ValueError(f"drift reference must be made by reference_histograms (format {REFERENCE_FORMAT!r}), "
                         f"got a {type(reference).__name__} with format {fmt!r}")
    names = list(reference["names"])
    edges, shares, nulls = [], [], []
    for name in names:
        f = reference["features"].get(name)
        if f is None:
            raise ValueError(f"drift reference has no histogram for feature {name!r}")
        e, s = np.asarray(f["edges"], dtype=np.float64), np.asarray(f["shares"], dtype=np.float64)
        if s.size != e.size + 1 or not np.isfinite(s).all() or abs(s.sum() - 1.0) > 1e-6:
            raise ValueError(f"drift reference for {name!r} is malformed ({e.size} edges, {s.size} shares)")
        edges.append(e)
        shares.append(s)
        nulls.append(f.get("null_psi"))
    return names, edges, shares, nulls


@dataclass
class DriftVerdict:
    demote: bool
    reason: str                                        # why (empty when not demoting)
    psi: dict[str, float] = field(default_factory=dict)  # per feature, over the current window
    hit_rate: float | None = None                      # live, over the outcomes in the window
    outcomes: int = 0
    baseline_hit_rate: float | None = None


class DriftMonitor:
    """Rolling feature drift and hit rate of one deployed model (see the module doc)."""

    def __init__(self, reference: dict, *, baseline_hit_rate: float | None = None, window: int = 500,
                 psi_threshold: float = 0.25, min_hit_rate_ratio: float = 0.7, min_outcomes: int = 50):
        self.names, self._edges, self._expected, nulls = _check_reference(reference)
        if isinstance(window, bool) or not isinstance(window, int) or window < 2:
            raise ValueError(f"window must be an integer >= 2, got {window!r}")
        if not (_is_number(psi_threshold) and psi_threshold > 0):
            raise ValueError(f"psi_threshold must be a number > 0, got {psi_threshold!r}")
        if not (_is_number(min_hit_rate_ratio) and 0 <= min_hit_rate_ratio <= 1):
            raise ValueError(f"min_hit_rate_ratio must be a number within [0, 1], got {min_hit_rate_ratio!r}")
        if baseline_hit_rate is not None and not (_is_number(baseline_hit_rate) and 0 < baseline_hit_rate <= 1):
            raise ValueError(f"baseline_hit_rate must be a number within (0, 1], got {baseline_hit_rate!r}")
        if isinstance(min_outcomes, bool) or not isinstance(min_outcomes, (int, np.integer)) or min_outcomes < 1:
            raise ValueError(f"min_outcomes must be an integer >= 1, got {min_outcomes!r}")
        self.window = window
        self.psi_threshold = float(psi_threshold)
        self.min_hit_rate_ratio = float(min_hit_rate_ratio)
        self.min_outcomes = int(min_outcomes)
        self.baseline_hit_rate = baseline_hit_rate
        # Per feature: above the threshold and above its null level for windows of this length.
        self.calibrated = reference.get("window") == window and all(x is not None for x in nulls)
        self.thresholds = {name: max(self.psi_threshold, float(null)) if self.calibrated else self.psi_threshold
                           for name, null in zip(self.names, nulls)}
        self._threshold_vec = np.array([self.thresholds[name] for name in self.names])
        # All features at once (a few numpy calls per vector, not one per feature): edges padded
        # with +inf (never <= a finite value), expected shares padded with EPS (a padded bin's
        # count stays 0, floored to EPS too, so it adds (EPS - EPS) ln 1 = 0 to the PSI).
        n, width = len(self.names), max(e.size for e in self._edges)
        self._edges2d = np.full((n, width), np.inf)
        self._expected2d = np.full((n, width + 1), EPS)
        for j, (e, sh) in enumerate(zip(self._edges, self._expected)):
            self._edges2d[j, :e.size] = e
            self._expected2d[j, :sh.size] = np.maximum(sh, EPS)
        self._rows = np.arange(n)
        self._bins = np.zeros((window, n), dtype=np.int64)          # ring of bin indices
        self._counts = np.zeros((n, width + 1), dtype=np.int64)
        self._seen = 0                                            # vectors observed in total
        self._outcomes = np.zeros(window, dtype=bool)
        self._n_outcomes = 0
        self._hits = 0
        self.invalid = 0                                          # vectors refused (wrong size, not finite)

    @classmethod
    def from_config(cls, reference: dict, baseline_hit_rate: float | None, ml) -> DriftMonitor:
        """With the [ml] config section's drift keys."""
        return cls(reference, baseline_hit_rate=baseline_hit_rate, window=ml.drift_window,
                   psi_threshold=ml.drift_psi_threshold, min_hit_rate_ratio=ml.min_live_hit_rate_ratio,
                   min_outcomes=ml.drift_min_outcomes)

    # ---- inputs ----------------------------------------------------------------------------

    def observe_features(self, x) -> bool:
        """One live feature vector, in the reference's feature order; False (counted) when refused."""
        v = np.asarray(x, dtype=np.float64)
        if v.shape != (len(self.names),) or not np.isfinite(v).all():
            self.invalid += 1
            return False
        slot = self._seen % self.window
        b = (self._edges2d <= v[:, None]).sum(axis=1)             # = searchsorted(edges, x, "right")
        if self._seen >= self.window:
            self._counts[self._rows, self._bins[slot]] -= 1
        self._counts[self._rows, b] += 1
        self._bins[slot] = b
        self._seen += 1
        return True

    def observe_outcome(self, hit: bool) -> None:
        """The realised outcome of one signal: True when the price went the predicted way."""
        slot = self._n_outcomes % self.window
        if self._n_outcomes >= self.window:
            self._hits -= int(self._outcomes[slot])
        self._outcomes[slot] = bool(hit)
        self._hits += int(bool(hit))
        self._n_outcomes += 1

    # ---- measures --------------------------------------------------------------------------

    @property
    def vectors(self) -> int:
        """Vectors in the current window."""
        return min(self._seen, self.window)

    @property
    def outcomes(self) -> int:
        return min(self._n_outcomes, self.window)

    def _psi_vec(self) -> np.ndarray:
        a = np.maximum(self._counts / self.vectors, EPS)
        e = self._expected2d
        return ((a - e) * np.log(a / e)).sum(axis=1)

    def psi(self) -> dict[str, float]:
        """PSI per feature over the vectors in the window (empty before the first one)."""
        if self.vectors == 0:
            return {}
        return dict(zip(self.names, self._psi_vec().tolist()))

    def hit_rate(self) -> float | None:
        n = self.outcomes
        return self._hits / n if n else None

    def check(self) -> DriftVerdict:
        """Demote or not, and why. PSI is judged on a full window only, the hit rate from min_outcomes on."""
        rate, n = self.hit_rate(), self.outcomes
        vec = self._psi_vec() if self.vectors else None
        values = dict(zip(self.names, vec.tolist())) if vec is not None else {}
        verdict = DriftVerdict(False, "", values, rate, n, self.baseline_hit_rate)
        if vec is not None and self.vectors >= self.window:
            over = np.flatnonzero(vec > self._threshold_vec)
            if over.size:
                order = over[np.argsort(-(vec[over] / self._threshold_vec[over]), kind="stable")]
                drifted = [self.names[j] for j in order]       # most over its threshold first
                worst = drifted[0]
                verdict.demote = True
                verdict.reason = (f"feature drift: PSI {values[worst]:.3f} of {worst!r} > "
                                  f"{self.thresholds[worst]:.3f} over the last {self.vectors} predictions "
                                  f"({len(drifted)} of {len(values)} features drifted: {', '.join(drifted[:5])})")
                return verdict
        base = self.baseline_hit_rate
        if base is not None and self.min_hit_rate_ratio > 0 and n >= self.min_outcomes and rate is not None:
            floor = self.min_hit_rate_ratio * base
            if rate < floor:
                verdict.demote = True
                verdict.reason = (f"hit rate collapsed: live {rate:.3f} over the last {n} outcomes < "
                                  f"{self.min_hit_rate_ratio} x out-of-sample {base:.3f} = {floor:.3f}")
        return verdict

