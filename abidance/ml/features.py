"""The feature set, one definition for training and for the live node.

Every feature is built on the Cython indicators (abidance._core.indicators), whose batch
functions run the very step function of their streaming classes, and every derived value
below is computed by one function, `_compose`, from the indicator outputs with IEEE
+ - * / only (no log/exp, whose numpy and libm versions may round differently). So
`batch_features` over a history and `StreamingFeatures.update` bar by bar give the same
bits; tests/unit/ml/test_features.py checks it on real candles and through the engine.

All features are scale-free (ratios), finite once warm, and roughly centred on 0:

  ret_{h}        close / close[t-h] - 1                      (ROC(h) / 100)
  ema_gap_{p}    close / EMA(p) - 1
  rsi_{p}        RSI(p) / 100 - 0.5                          in [-0.5, 0.5]
  bb_pctb_{p}    Bollinger %b - 0.5: (close - lower) / (upper - lower) - 0.5; 0 on a flat band
  bb_width_{p}   (upper - lower) / middle
  atr_{p}        ATR(p) / close
  vol_{p}        population std of the last p one-bar returns
  volume_z_{p}   z-score of volume over p bars, clipped to [-10, 10]; 0 on a flat window
  macd_hist      MACD(fast, slow, signal) histogram / close
  range_pos_{p}  position of close in the p-bar low..high range - 0.5; 0 on a flat range
  hl_range       (high - low) / close of the bar

Prices must be finite and > 0 with low <= high; volume finite and >= 0. Volume enters
only through its z-score, so its unit (base asset or lot steps) does not matter.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import numpy as np

from abidance._core import indicators as ind

FEATURES_FORMAT = "abidance.features/1"
VOLUME_Z_CLIP = 10.0


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"FeatureSpec.{name} must be an integer >= 1, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class FeatureSpec:
    """Which features, with which indicator periods. Serialisable (`to_dict`) for the registry."""

    return_horizons: tuple[int, ...] = (1, 3, 12)
    ema_periods: tuple[int, ...] = (12, 48)
    rsi_period: int = 14
    bb_period: int = 20
    bb_k: float = 2.0
    atr_period: int = 14
    vol_period: int = 20
    volume_period: int = 20
    macd: tuple[int, int, int] = (12, 26, 9)
    range_period: int = 20

    def __post_init__(self):
        for name in ("return_horizons", "ema_periods"):
            raw = getattr(self, name)
            if isinstance(raw, (str, bytes)) or not hasattr(raw, "__iter__"):
                raise ValueError(f"FeatureSpec.{name} must be a list of integers, got {raw!r}")
            values = tuple(_positive_int(name, v) for v in raw)
            if not values or len(set(values)) != len(values):
                raise ValueError(f"FeatureSpec.{name} must be non-empty without repeats, got {list(values)}")
            object.__setattr__(self, name, values)
        for name in ("rsi_period", "bb_period", "atr_period", "vol_period", "volume_period", "range_period"):
            object.__setattr__(self, name, _positive_int(name, getattr(self, name)))
        for name in ("bb_period", "vol_period", "volume_period"):
            if getattr(self, name) < 2:
                raise ValueError(f"FeatureSpec.{name} must be >= 2 (a deviation needs two values), "
                                 f"got {getattr(self, name)}")
        k = self.bb_k
        if isinstance(k, bool) or not isinstance(k, (int, float)) or not math.isfinite(k) or k <= 0:
            raise ValueError(f"FeatureSpec.bb_k must be a finite number > 0, got {k!r}")
        object.__setattr__(self, "bb_k", float(k))
        macd = self.macd
        if isinstance(macd, (str, bytes)) or not hasattr(macd, "__iter__") or len(tuple(macd)) != 3:
            raise ValueError(f"FeatureSpec.macd must be [fast, slow, signal], got {macd!r}")
        fast, slow, signal = (_positive_int("macd", v) for v in macd)
        if slow <= fast:
            raise ValueError(f"FeatureSpec.macd: slow ({slow}) must be greater than fast ({fast})")
        object.__setattr__(self, "macd", (fast, slow, signal))

    @property
    def names(self) -> tuple[str, ...]:
        """Column names, in the order of the feature vector."""
        return (*(f"ret_{h}" for h in self.return_horizons),
                *(f"ema_gap_{p}" for p in self.ema_periods),
                f"rsi_{self.rsi_period}", f"bb_pctb_{self.bb_period}", f"bb_width_{self.bb_period}",
                f"atr_{self.atr_period}", f"vol_{self.vol_period}", f"volume_z_{self.volume_period}",
                "macd_hist", f"range_pos_{self.range_period}", "hl_range")

    def to_dict(self) -> dict:
        out = {"format": FEATURES_FORMAT}
        for k, v in asdict(self).items():
            out[k] = list(v) if isinstance(v, tuple) else v
        return out

    @classmethod
    def from_dict(cls, data: dict) -> FeatureSpec:
        if not isinstance(data, dict):
            raise ValueError(f"a feature spec must be a dict, got {type(data).__name__}")
        data = dict(data)
        fmt = data.pop("format", FEATURES_FORMAT)
        if fmt != FEATURES_FORMAT:
            raise ValueError(f"feature spec format {fmt!r} is not supported (expected {FEATURES_FORMAT!r})")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"feature spec key {unknown[0]!r} is unknown (known: {', '.join(sorted(known))})")
        return cls(**data)


# ---- the derived values: one definition for floats (streaming) and arrays (batch) ----------


class _ScalarOps:
    @staticmethod
    def ratio(num, den, fallback):
        return num / den if den > 0.0 else fallback

    @staticmethod
    def clip(x, lo, hi):
        return lo if x < lo else hi if x > hi else x


class _ArrayOps:
    @staticmethod
    def ratio(num, den, fallback):
        out = np.full(np.shape(num), fallback, dtype=np.float64)
        return np.divide(num, den, out=out, where=den > 0.0)

    @staticmethod
    def clip(x, lo, hi):
        return np.clip(x, lo, hi)


def _compose(spec: FeatureSpec, close, high, low, raw: dict, ops) -> list:
    """Features from the indicator outputs, for one bar (floats) or a history (arrays)."""
    out = [raw[f"roc{h}"] * 0.01 for h in spec.return_horizons]
    out += [close / raw[f"ema{p}"] - 1.0 for p in spec.ema_periods]
    out.append(raw["rsi"] * 0.01 - 0.5)
    width = raw["bb_upper"] - raw["bb_lower"]
    out.append(ops.ratio(close - raw["bb_lower"], width, 0.5) - 0.5)
    out.append(width / raw["bb_middle"])
    out.append(raw["atr"] / close)
    out.append(raw["vol"])
    out.append(ops.clip(raw["volume_z"], -VOLUME_Z_CLIP, VOLUME_Z_CLIP))
    out.append(raw["macd_hist"] / close)
    out.append(ops.ratio(close - raw["range_lo"], raw["range_hi"] - raw["range_lo"], 0.5) - 0.5)
    out.append((high - low) / close)
    return out


def _bad_bar(close: float, high: float, low: float, volume: float) -> bool:
    # NaN fails every comparison, so it is caught too.
    return not (0.0 < low <= high <= 1.7976931348623157e308 and 0.0 < close <= 1.7976931348623157e308
                and 0.0 <= volume <= 1.7976931348623157e308)


class StreamingFeatures:
    """The feature vector bar by bar, for one symbol: `update(...)` returns it once every
    indicator is warm (None before). O(1) per bar."""

    def __init__(self, spec: FeatureSpec | None = None):
        self.spec = spec or FeatureSpec()
        s = self.spec
        self._roc = {h: ind.ROC(h) for h in s.return_horizons}
        self._ema = {p: ind.EMA(p) for p in s.ema_periods}
        self._rsi = ind.RSI(s.rsi_period)
        self._bb = ind.BollingerBands(s.bb_period, s.bb_k, s.bb_k)
        self._atr = ind.ATR(s.atr_period)
        self._vol = ind.RollingStd(s.vol_period)
        self._volume_z = ind.ZScore(s.volume_period)
        self._macd = ind.MACD(*s.macd)
        self._lo = ind.RollingMin(s.range_period)
        self._hi = ind.RollingMax(s.range_period)
        self._prev_close = math.nan
        self._warm = False          # indicators never cool down: checked until first warm
        self.count = 0

    @property
    def names(self) -> tuple[str, ...]:
        return self.spec.names

    @property
    def ready(self) -> bool:
        return self._warm or self._all_ready()

    def _all_ready(self) -> bool:
        return (all(r.ready for r in self._roc.values()) and all(e.ready for e in self._ema.values())
                and self._rsi.ready and self._bb.ready and self._atr.ready and self._vol.ready
                and self._volume_z.ready and self._macd.ready and self._lo.ready and self._hi.ready)

    def update(self, close: float, high: float, low: float, volume: float) -> np.ndarray | None:
        """Commit one closed bar; the feature vector (float64, `names` order) once warm, else None."""
        close, high, low, volume = float(close), float(high), float(low), float(volume)
        if _bad_bar(close, high, low, volume):
            # Checked before any indicator moves, so a refused bar leaves the state intact.
            raise ValueError(f"StreamingFeatures.update: invalid bar close={close!r} high={high!r} low={low!r} "
                             f"volume={volume!r} (prices finite and > 0, low <= high, volume finite and >= 0)")
        raw = {f"roc{h}": r.update(close) for h, r in self._roc.items()}
        for p, e in self._ema.items():
            raw[f"ema{p}"] = e.update(close)
        raw["rsi"] = self._rsi.update(close)
        bb = self._bb
        raw["bb_middle"] = bb.update(close)
        raw["bb_upper"], raw["bb_lower"] = bb.upper, bb.lower
        raw["atr"] = self._atr.update(high, low, close)
        prev = self._prev_close
        raw["vol"] = self._vol.update(close / prev - 1.0) if prev == prev else math.nan
        self._prev_close = close
        raw["volume_z"] = self._volume_z.update(volume)
        self._macd.update(close)
        raw["macd_hist"] = self._macd.histogram
        raw["range_lo"] = self._lo.update(low)
        raw["range_hi"] = self._hi.update(high)
        self.count += 1
        if not self._warm:
            self._warm = self._all_ready()
            if not self._warm:
                return None
        return np.array(_compose(self.spec, close, high, low, raw, _ScalarOps), dtype=np.float64)


def _column(name: str, values) -> np.ndarray:
    arr = np.ascontiguousarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"batch_features: {name} must be one-dimensional, got shape {arr.shape}")
    return arr


def check_bars(who: str, close: np.ndarray, high: np.ndarray, low: np.ndarray, volume: np.ndarray) -> None:
    """ValueError naming the first invalid bar (float64 arrays of one length)."""
    with np.errstate(invalid="ignore"):
        bad = ~((low > 0.0) & (low <= high) & np.isfinite(high) & (close > 0.0) & np.isfinite(close)
                & (volume >= 0.0) & np.isfinite(volume))
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"{who}: invalid bar at row {i}: close={float(close[i])!r} high={float(high[i])!r} "
                         f"low={float(low[i])!r} volume={float(volume[i])!r} (prices finite and > 0, low <= high, "
                         "volume finite and >= 0)")


def batch_features(spec: FeatureSpec | None, data) -> tuple[np.ndarray, np.ndarray]:
    """The same features over a whole history: (matrix n x len(names), valid mask).

    `data` is a DataFrame (or mapping) with close, high, low and volume columns, in time
    order. Row t uses bars 0..t only; rows before warm-up are NaN and not valid.
    """
    spec = spec or FeatureSpec()
    missing = [c for c in ("close", "high", "low", "volume") if c not in data]
    if missing:
        raise ValueError(f"batch_features: missing column(s) {', '.join(missing)}")
    close, high, low, volume = (_column(c, data[c]) for c in ("close", "high", "low", "volume"))
    n = len(close)
    if not len(high) == len(low) == len(volume) == n:
        raise ValueError(f"batch_features: columns differ in length (close {n}, high {len(high)}, "
                         f"low {len(low)}, volume {len(volume)})")
    check_bars("batch_features", close, high, low, volume)
    raw = {f"roc{h}": ind.roc(close, h) for h in spec.return_horizons}
    for p in spec.ema_periods:
        raw[f"ema{p}"] = ind.ema(close, p)
    raw["rsi"] = ind.rsi(close, spec.rsi_period)
    raw["bb_upper"], raw["bb_middle"], raw["bb_lower"] = ind.bbands(close, spec.bb_period, spec.bb_k, spec.bb_k)
    raw["atr"] = ind.atr(high, low, close, spec.atr_period)
    vol = np.full(n, np.nan)
    if n > 1:
        # One-bar returns start at row 1; the streaming class feeds them from its second bar on.
        vol[1:] = ind.rolling_std(close[1:] / close[:-1] - 1.0, spec.vol_period)
    raw["vol"] = vol
    raw["volume_z"] = ind.zscore(volume, spec.volume_period)
    raw["macd_hist"] = ind.macd(close, *spec.macd)[2]
    raw["range_lo"] = ind.rolling_min(low, spec.range_period)
    raw["range_hi"] = ind.rolling_max(high, spec.range_period)
    valid = np.ones(n, dtype=bool)
    for arr in raw.values():
        valid &= np.isfinite(arr)
    with np.errstate(invalid="ignore", divide="ignore"):
        columns = _compose(spec, close, high, low, raw, _ArrayOps)
    matrix = np.column_stack(columns) if n else np.empty((0, len(spec.names)))
    matrix[~valid] = np.nan
    valid &= np.isfinite(matrix).all(axis=1)
    return matrix, valid
