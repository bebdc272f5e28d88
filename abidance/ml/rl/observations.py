"""What the agent sees after each bar: the shared feature set, standardised, plus its position.

    obs = [ (features(bar t) - mean) / std, clipped to +-10 ...,  holding,  100 x ln(close / entry) ]

The features are abidance.ml.features (the one definition used by the scikit-learn models and
the live node); row t uses bars <= t only. `mean`/`std` are fitted on the training window and
kept with the agent, so a held-out period is scaled with training statistics (no leakage).
`holding` is 1.0 with at least one whole lot step held; the last value is the open position's
log return from its entry fill price in percent (0 when flat).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from abidance.ml.features import FeatureSpec, batch_features

CLIP = 10.0
PNL_CLIP = 100.0


@dataclass(frozen=True)
class ObservationSpec:
    features: FeatureSpec
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @property
    def size(self) -> int:
        return len(self.features.names) + 2

    @property
    def names(self) -> tuple[str, ...]:
        return (*self.features.names, "holding", "unrealized_pct")

    def space(self):
        """The Gymnasium Box of one observation: features in [-10, 10], holding in [0, 1],
        unrealized percent in [-100, 100]."""
        # Lazy: gymnasium is the ml extra: only the RL environments need it.
        from gymnasium import spaces

        n = len(self.features.names)
        low = np.array([-CLIP] * n + [0.0, -PNL_CLIP], dtype=np.float32)
        high = np.array([CLIP] * n + [1.0, PNL_CLIP], dtype=np.float32)
        return spaces.Box(low, high, dtype=np.float32)

    @classmethod
    def fit(cls, bars, start: int, end: int, features: FeatureSpec | None = None) -> ObservationSpec:
        """Standardisation fitted on bars[start..end] (inclusive, warm rows only)."""
        spec = features or FeatureSpec()
        matrix, valid = batch_features(spec, bars.columns())
        rows = valid.copy()
        rows[:start] = False
        rows[end + 1:] = False
        if rows.sum() < 2:
            warm = int(np.argmax(valid)) if valid.any() else len(valid)
            raise ValueError(f"bars {start}..{end} hold fewer than 2 warm feature rows "
                             f"(the features need {warm} bars of history)")
        window = matrix[rows]
        std = window.std(axis=0)
        std[std == 0] = 1.0                     # a constant feature carries nothing: leave it at 0
        return cls(spec, tuple(window.mean(axis=0).tolist()), tuple(std.tolist()))

    def to_dict(self) -> dict:
        return {"features": self.features.to_dict(), "mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, data: dict) -> ObservationSpec:
        spec = FeatureSpec.from_dict(data["features"])
        mean, std = tuple(map(float, data["mean"])), tuple(map(float, data["std"]))
        if not len(mean) == len(std) == len(spec.names):
            raise ValueError(f"observation spec: {len(spec.names)} features but {len(mean)} means, {len(std)} stds")
        return cls(spec, mean, std)


class MarketObservations:
    """The standardised feature rows of one bar series, computed once (float32, n x features)."""

    def __init__(self, spec: ObservationSpec, bars):
        matrix, valid = batch_features(spec.features, bars.columns())
        scaled = (matrix - np.asarray(spec.mean)) / np.asarray(spec.std)
        scaled = np.clip(np.nan_to_num(scaled, nan=0.0), -CLIP, CLIP)
        self.spec = spec
        self.rows = np.ascontiguousarray(scaled, dtype=np.float32)
        self.valid = valid
        self.first_valid = int(np.argmax(valid)) if valid.any() else len(valid)

    def build(self, t: np.ndarray, holding: np.ndarray, close: np.ndarray, entry: np.ndarray) -> np.ndarray:
        """Observations for bar indices t (int64), holding flags, closes and entry prices (ticks)."""
        n_feat = self.rows.shape[1]
        out = np.empty((len(t), n_feat + 2), dtype=np.float32)
        out[:, :n_feat] = self.rows[t]
        out[:, n_feat] = holding
        with np.errstate(divide="ignore", invalid="ignore"):
            pnl = np.where(holding, 100.0 * np.log(close / np.where(entry > 0, entry, close)), 0.0)
        out[:, n_feat + 1] = np.clip(pnl, -PNL_CLIP, PNL_CLIP)
        return out


def observed_window(bars, window: tuple[int, int] | None, observation: ObservationSpec | None,
                    episode_bars: int | None) -> tuple[ObservationSpec, MarketObservations, tuple[int, int]]:
    """Both environments' set-up: the (start, end) bar window (the whole series by default),
    checked and moved past the features' warm-up, the observation spec (fitted on the window
    unless given) and the observations of every bar."""
    n = len(bars)
    start, end = window if window is not None else (0, n - 1)
    if not 0 <= start < end <= n - 1:
        raise ValueError(f"window must be (start, end) bar indices with 0 <= start < end <= {n - 1}, got {window}")
    spec = observation or ObservationSpec.fit(bars, start, end)
    market = MarketObservations(spec, bars)
    start = max(start, market.first_valid)      # no observation before the features are warm
    if start >= end:
        raise ValueError(f"window {window} ends before the features are warm (bar {market.first_valid})")
    if episode_bars is not None and not 1 <= episode_bars <= end - start:
        raise ValueError(f"episode_bars must be within [1, {end - start}] for window {start}..{end}, "
                         f"got {episode_bars}")
    return spec, market, (start, end)
