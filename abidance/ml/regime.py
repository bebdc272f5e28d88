"""Market regimes: per-bar features and a clustering model that labels each bar.

Features (scale-free, so one model serves any price level and several symbols):
- volatility: rolling std (ddof 0) of simple close-to-close returns over `vol_period` bars;
- trend: |EMA(fast) - EMA(slow)| / ATR(atr_period), how far the averages have parted, in
  true ranges (an ADX-like strength, direction left out);
- volume_z: z-score of the bar's volume over `volume_period` bars.

`RegimeFeatures` (streaming, one bar at a time, for the node) and `regime_features` (batch,
for training and evaluation) take (close, high, low, volume), the order of
abidance.ml.features.StreamingFeatures. They are built on abidance._core.indicators, whose batch functions
are bit-identical to the streaming classes; the arithmetic on top is the same correctly
rounded operations in the same order, so both give the same floats.

`RegimeModel`: standardised features clustered by scikit-learn with a fixed seed: KMeans
(the default: on the real candles it finds the same partition whatever the seed or row
order) or GaussianMixture (full covariances; its optima lie closer together there and can
flip between seeds). Clusters are relabelled by mean volatility, ascending, so regime 0 is
the calmest and a refit keeps the meaning of each number. Only plain floats are kept (no
scikit-learn object): inference is a few multiply-adds written out by hand, the same in
`predict_one` and `predict`, so streaming and batch agree exactly and one bar costs a few us.
Saved with joblib atomically; loaded only after the bytes' sha256 matched (abidance.ml.artifacts).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from abidance._core import indicators as ind
from abidance.ml import artifacts

FEATURE_NAMES = ("volatility", "trend", "volume_z")
METHODS = ("kmeans", "gmm")
FORMAT = "abidance.regime/1"
MAX_REGIMES = 8


@dataclass(frozen=True)
class RegimeFeatureSpec:
    """Indicator periods of the regime features, in bars."""

    vol_period: int = 48
    fast: int = 12
    slow: int = 48
    atr_period: int = 14
    volume_period: int = 48

    def __post_init__(self) -> None:
        for name in ("vol_period", "fast", "slow", "atr_period", "volume_period"):
            value = getattr(self, name)
            if type(value) is not int or value < 2:
                raise ValueError(f"RegimeFeatureSpec.{name} must be a whole number of bars >= 2, got {value!r}")
        if self.fast >= self.slow:
            raise ValueError(f"RegimeFeatureSpec.fast ({self.fast}) must be below slow ({self.slow})")

    @property
    def warmup(self) -> int:
        """Bars before the first complete feature row (returns need one bar more)."""
        return max(self.vol_period + 1, self.slow, self.atr_period + 1, self.volume_period)


class RegimeFeatures:
    """Streaming features of one symbol: `update(close, high, low, volume)` per closed bar."""

    __slots__ = ("spec", "_std", "_fast", "_slow", "_atr", "_vz", "_prev")

    def __init__(self, spec: RegimeFeatureSpec | None = None):
        self.spec = spec = spec or RegimeFeatureSpec()
        self._std = ind.RollingStd(spec.vol_period)
        self._fast = ind.EMA(spec.fast)
        self._slow = ind.EMA(spec.slow)
        self._atr = ind.ATR(spec.atr_period)
        self._vz = ind.ZScore(spec.volume_period)
        self._prev = math.nan

    def update(self, close: float, high: float, low: float, volume: float) -> tuple[float, float, float] | None:
        """(volatility, trend, volume_z) after this bar, or None while any of them warms up."""
        vol = self._std.update(close / self._prev - 1.0) if self._prev == self._prev else math.nan
        self._prev = close
        gap = abs(self._fast.update(close) - self._slow.update(close))
        atr = self._atr.update(high, low, close)
        trend = gap / atr if atr != 0.0 else 0.0       # flat bars: no range, no trend to measure
        vz = self._vz.update(volume)
        if vol != vol or trend != trend or vz != vz:
            return None
        return vol, trend, vz

    def update_bar(self, bar) -> tuple[float, float, float] | None:
        """From a Bar in ticks and steps (the features are ratios: units cancel)."""
        return self.update(float(bar.close), float(bar.high), float(bar.low), float(bar.volume))


def regime_features(close, high, low, volume, spec: RegimeFeatureSpec | None = None) -> np.ndarray:
    """Batch features, shape (n, 3); rows still warming up are NaN. Equal to `RegimeFeatures`."""
    spec = spec or RegimeFeatureSpec()
    cols = {}
    for name, values in (("close", close), ("high", high), ("low", low), ("volume", volume)):
        arr = np.asarray(values, dtype=np.float64)
        if arr.ndim != 1:
            raise ValueError(f"regime_features: {name} must be one-dimensional, got shape {arr.shape}")
        cols[name] = arr
    n = len(cols["close"])
    wrong = [k for k, v in cols.items() if len(v) != n]
    if wrong:
        raise ValueError(f"regime_features: {', '.join(wrong)} must have the length of close ({n})")
    h, lo, c, v = cols["high"], cols["low"], cols["close"], cols["volume"]
    out = np.full((n, 3), np.nan)
    if n == 0:
        return out
    if n > 1:
        out[1:, 0] = ind.rolling_std(c[1:] / c[:-1] - 1.0, spec.vol_period)
    gap = np.abs(ind.ema(c, spec.fast) - ind.ema(c, spec.slow))
    atr = ind.atr(h, lo, c, spec.atr_period)
    with np.errstate(divide="ignore", invalid="ignore"):
        out[:, 1] = np.where(atr != 0.0, gap / atr, 0.0)
    out[:, 2] = ind.zscore(v, spec.volume_period)
    out[np.isnan(out).any(axis=1)] = np.nan
    return out


def features_from_bars(bars, spec: RegimeFeatureSpec | None = None) -> np.ndarray:
    """Batch features of one symbol's Bars (ticks and steps), in their order."""
    return regime_features([float(b.close) for b in bars], [float(b.high) for b in bars],
                           [float(b.low) for b in bars], [float(b.volume) for b in bars], spec)


class RegimeModel:
    """Clusters of standardised regime features; regime 0 = lowest mean volatility.

        model = RegimeModel(n_regimes=3, method="kmeans", seed=0).fit(features)
        model.predict(features)            # batch: int array, -1 where a row is incomplete
        model.predict_one((vol, trend, vz))  # streaming: one int
        digest = model.save("regime.joblib")   # also writes regime.joblib.sha256
        model = RegimeModel.load("regime.joblib")
    """

    def __init__(self, n_regimes: int = 3, method: str = "kmeans", seed: int = 0,
                 spec: RegimeFeatureSpec | None = None):
        if type(n_regimes) is not int or not 1 <= n_regimes <= MAX_REGIMES:
            raise ValueError(f"n_regimes must be a whole number in [1, {MAX_REGIMES}], got {n_regimes!r}")
        if method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
        if type(seed) is not int:
            raise ValueError(f"seed must be an int, got {seed!r}")
        self.n_regimes = n_regimes
        self.method = method
        self.seed = seed
        self.spec = spec or RegimeFeatureSpec()
        self.fitted = False
        # Per regime (relabelled order), all plain floats: centre and Cholesky factor of the
        # precision in standardised units, and log(weight) + log det(factor) (0 for KMeans).
        self._mean: tuple[float, ...] = ()
        self._scale: tuple[float, ...] = ()
        self._centers: tuple[tuple[float, ...], ...] = ()
        self._prec_chol: tuple[tuple[tuple[float, ...], ...], ...] = ()
        self._log_norm: tuple[float, ...] = ()
        self.profile: list[dict] = []       # per regime: share of training rows, mean features
        self.train_rows = 0

    # ---- fitting ---------------------------------------------------------------------------

    def fit(self, features) -> RegimeModel:
        """Fit on a (n, 3) feature array; incomplete (NaN) rows are left out."""
        x = np.asarray(features, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != len(FEATURE_NAMES):
            raise ValueError(f"fit: features must have shape (n, {len(FEATURE_NAMES)}) "
                             f"({', '.join(FEATURE_NAMES)}), got {x.shape}")
        x = x[np.isfinite(x).all(axis=1)]
        need = max(50, 10 * self.n_regimes)
        if len(x) < need:
            raise ValueError(f"fit: needs at least {need} complete feature rows, got {len(x)} "
                             f"(the features need {self.spec.warmup} bars of warm-up)")
        mean = x.mean(axis=0)
        scale = x.std(axis=0)
        scale[scale == 0] = 1.0                 # a constant feature: leave it unscaled
        z = (x - mean) / scale
        k, d = self.n_regimes, x.shape[1]
        with threadpool_limits(1):      # a few thousand rows: threads only add contention on shared cores
            centers, chol, log_norm = self._cluster(z, k, d)
        # Stable labels: by the centre's volatility in real units, then by trend.
        real = centers * scale + mean
        order = sorted(range(k), key=lambda c: (real[c, 0], real[c, 1]))
        self._mean = tuple(float(v) for v in mean)
        self._scale = tuple(float(v) for v in scale)
        self._centers = tuple(tuple(float(v) for v in centers[c]) for c in order)
        self._prec_chol = tuple(tuple(tuple(float(v) for v in row) for row in chol[c]) for c in order)
        self._log_norm = tuple(float(log_norm[c]) for c in order)
        self.fitted = True
        labels = self.predict(x)
        self.train_rows = len(x)
        self.profile = []
        for r in range(k):
            rows = x[labels == r]
            self.profile.append({"regime": r, "share": len(rows) / len(x),
                                 **{name: float(rows[:, j].mean()) if len(rows) else math.nan
                                    for j, name in enumerate(FEATURE_NAMES)}})
        return self

    def _cluster(self, z: np.ndarray, k: int, d: int) -> tuple:
        """(centres, Cholesky factors of the precisions, log weight + log det) in standardised units."""
        if self.method == "gmm":
            # Lazy: scikit-learn is the ml extra: only training or running a model needs it.
            from sklearn.mixture import GaussianMixture

            gm = GaussianMixture(n_components=k, covariance_type="full", random_state=self.seed, n_init=5,
                                 reg_covar=1e-6).fit(z)
            centers, chol = gm.means_, gm.precisions_cholesky_
            log_norm = np.log(gm.weights_) + np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(axis=1)
        else:
            # Lazy: scikit-learn is the ml extra: only training or running a model needs it.
            from sklearn.cluster import KMeans

            km = KMeans(n_clusters=k, random_state=self.seed, n_init=10).fit(z)
            centers, chol, log_norm = km.cluster_centers_, np.repeat(np.eye(d)[None], k, axis=0), np.zeros(k)
        return centers, chol, log_norm

    def fit_bars(self, bars_by_symbol) -> RegimeModel:
        """Fit on the features of every symbol's bars ({symbol: [Bar]} or one list of Bars)."""
        groups = bars_by_symbol.values() if isinstance(bars_by_symbol, dict) else [bars_by_symbol]
        parts = [features_from_bars(bars, self.spec) for bars in groups if bars]
        return self.fit(np.concatenate(parts) if parts else np.empty((0, len(FEATURE_NAMES))))

    # ---- inference -------------------------------------------------------------------------

    def _check_fitted(self) -> None:
        if not self.fitted:
            raise ValueError("the regime model is not fitted (call fit or load)")

    def predict_one(self, features) -> int:
        """The regime of one complete feature row (volatility, trend, volume_z)."""
        self._check_fitted()
        d = len(self._mean)
        if len(features) != d:
            raise ValueError(f"predict_one: expected {d} features ({', '.join(FEATURE_NAMES)}), got {len(features)}")
        z = [(float(features[j]) - self._mean[j]) / self._scale[j] for j in range(d)]
        if not all(math.isfinite(v) for v in z):
            raise ValueError(f"predict_one: features must be finite, got {tuple(features)!r}")
        best, best_score = 0, -math.inf
        for c in range(self.n_regimes):
            score = self._score(z, c)
            if score > best_score:
                best, best_score = c, score
        return best

    def predict(self, features) -> np.ndarray:
        """Regimes of a (n, 3) feature array (int64); -1 for rows that are not complete.
        The same operations in the same order as `predict_one`, one column at a time."""
        self._check_fitted()
        x = np.asarray(features, dtype=np.float64)
        d = len(self._mean)
        if x.ndim != 2 or x.shape[1] != d:
            raise ValueError(f"predict: features must have shape (n, {d}), got {x.shape}")
        z = [(x[:, j] - self._mean[j]) / self._scale[j] for j in range(d)]
        scores = np.empty((len(x), self.n_regimes))
        with np.errstate(invalid="ignore", over="ignore"):    # incomplete rows: marked -1 below
            self._scores(z, scores)
        out = np.argmax(scores, axis=1).astype(np.int64)
        out[~np.isfinite(x).all(axis=1)] = -1
        return out

    def _scores(self, z: list, scores: np.ndarray) -> None:
        for c in range(self.n_regimes):
            scores[:, c] = self._score(z, c)

    def _score(self, z: list, c: int):
        """Log density of regime c at z: one row (floats) or a column of rows (arrays), with the same
        operations in the same order either way, so streaming and batch agree to the bit."""
        d = len(z)
        mu, chol = self._centers[c], self._prec_chol[c]
        diff = [z[i] - mu[i] for i in range(d)]
        s = 0.0
        for j in range(d):
            y = diff[0] * chol[0][j]
            for i in range(1, d):
                y = y + diff[i] * chol[i][j]
            s = s + y * y
        return self._log_norm[c] - 0.5 * s

    def describe(self) -> str:
        """One line per regime: share of the training rows and mean features."""
        self._check_fitted()
        lines = [f"{self.method} model, {self.n_regimes} regimes, {self.train_rows} training rows"]
        for p in self.profile:
            lines.append(f"regime {p['regime']}: {p['share']:6.1%} of rows, " +
                         ", ".join(f"{name} {p[name]:.4g}" for name in FEATURE_NAMES))
        return "\n".join(lines)

    # ---- persistence -----------------------------------------------------------------------

    def save(self, path) -> str:
        """Write the model (joblib, atomically) and `<path>.sha256`; returns the file's sha256."""
        self._check_fitted()
        path = Path(path)
        state = {"format": FORMAT, "n_regimes": self.n_regimes, "method": self.method, "seed": self.seed,
                 "spec": asdict(self.spec), "mean": self._mean, "scale": self._scale, "centers": self._centers,
                 "prec_chol": self._prec_chol, "log_norm": self._log_norm, "profile": self.profile,
                 "train_rows": self.train_rows}
        digest = artifacts.dump_joblib(path, state)
        artifacts.write_atomic(Path(f"{path}.sha256"), (digest + "\n").encode())
        return digest

    @classmethod
    def load(cls, path, sha256: str = "") -> RegimeModel:
        """Read a saved model after checking its sha256 (given, or from `<path>.sha256`);
        the bytes hashed are the bytes unpickled."""
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"regime model file {path} does not exist")
        expected = sha256
        if expected is None or (isinstance(expected, str) and not expected.strip()):
            side = Path(f"{path}.sha256")
            try:
                expected = side.read_text()
            except FileNotFoundError:
                raise ValueError(f"regime model file {path}: no sha256 given and no {side.name} beside it") from None
            except (OSError, UnicodeDecodeError) as exc:
                raise ValueError(f"regime model file {path}: {side.name} cannot be read: {exc}") from None
        state, _ = artifacts.load_joblib(path, expected, what="regime model file")
        if not isinstance(state, dict) or state.get("format") != FORMAT:
            raise ValueError(f"regime model file {path} is not a {FORMAT} model")
        try:
            model = cls._from_state(state)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"regime model file {path} is damaged: {type(exc).__name__}: {exc}") from None
        return model

    @classmethod
    def _from_state(cls, state: dict) -> RegimeModel:
        model = cls(state["n_regimes"], state["method"], state["seed"], RegimeFeatureSpec(**state["spec"]))
        k, d = model.n_regimes, len(FEATURE_NAMES)
        shapes_ok = (len(state["mean"]) == d and len(state["scale"]) == d and len(state["centers"]) == k
                     and len(state["prec_chol"]) == k and len(state["log_norm"]) == k)
        if not shapes_ok:
            raise ValueError(f"inconsistent shapes for {k} regimes")
        model._mean, model._scale = tuple(state["mean"]), tuple(state["scale"])
        model._centers, model._prec_chol = tuple(state["centers"]), tuple(state["prec_chol"])
        model._log_norm = tuple(state["log_norm"])
        model.profile, model.train_rows = list(state["profile"]), int(state["train_rows"])
        model.fitted = True
        return model
