"""Retraining: a challenger trained on new data, judged against the champion, promoted only if better.

    outcome = retrain(registry, "eth-lr", candles, model_dir="models", symbol="ETHBTC", interval="5m")

One run, every step a `model_events` row of the name:

1. `retrain_started` (version 0 = the name): the data range and the held-out window, the last
   `holdout_fraction` of the bars.
2. The challenger is trained (train_model: purged CV metrics) on the bars before the held-out
   window, purged: no training row's label reaches into it. Saved (save_model), registered as a
   candidate (`registered`) with the held-out metrics as its out-of-sample metrics (the CV ones
   under "cv") and its training feature histograms as the drift reference. Its train_end is
   the open time of the last bar a training label reads (not of the last feature row: a label
   reads `horizon` bars beyond it).
3. `retrain_compared` on the challenger: both models predict the same held-out rows with the
   same labels (each with its own feature spec) and are scored by `metric` (AUC by default).
   A champion trained into the held-out window (its train_end at or after the window's first
   bar: it has seen those prices) is flagged in the details. The champion is loaded and
   scored before the challenger is registered: when that fails, `retrain_failed` is recorded
   and the error raised, and no candidate is left behind.
4. Better (score > champion's + min_improvement, and the [ml] criteria met; any challenger that
   meets them is better than no champion): promoted to shadow, where it runs beside the live
   champion without trading; with promote_to="live" also to live (which retires the champion):
   only for an operator who chose that for the timer. Not better: retired, with the reason.

The scheduler (`abidance train --retrain` under a systemd timer) calls `retrain(...)`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from abidance.config.sections import MlSection
from abidance.ml.dataset import build_dataset, market_arrays_from_frame
from abidance.ml.drift import reference_histograms
from abidance.ml.features import FeatureSpec
from abidance.ml.labels import ForwardReturn, labeler_from_dict
from abidance.ml.models import classification_metrics, load_model, save_model, train_model
from abidance.ml.registry import (AUC_KEYS, Criteria, ModelRegistry, ModelVersion, PromotionRefused, metric,
                                  unmet_criteria)

METRICS = ("auc", "hit_rate", "neg_log_loss", "neg_brier")


@dataclass
class RetrainOutcome:
    name: str
    challenger: ModelVersion
    champion: ModelVersion | None
    metric: str
    challenger_score: float | None
    champion_score: float | None
    promoted: bool
    reason: str
    holdout: dict = field(default_factory=dict)     # start/end ns and rows of the held-out window


def _score(metrics: dict, name: str) -> float | None:
    if name == "auc":
        v = metric(metrics, AUC_KEYS)
    elif name.startswith("neg_"):
        v = metrics.get(name[4:])
        v = -v if v is not None else None
    else:
        v = metrics.get(name)
    return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None


def _label_spec(champion: ModelVersion | None, labeler):
    if labeler is not None:
        return labeler
    labels = (champion.params or {}).get("labels") if champion is not None else None
    return labeler_from_dict(labels) if labels else ForwardReturn()


def _feature_spec(champion: ModelVersion | None, spec):
    if spec is not None:
        return spec
    if champion is not None and isinstance(champion.feature_set, dict):
        return FeatureSpec.from_dict(champion.feature_set)
    return FeatureSpec()


def _holdout_rows(dataset, cut_bar: int) -> np.ndarray:
    return np.flatnonzero(dataset.index >= cut_bar)


def _bar_times(candles) -> np.ndarray:
    """Open time (ns) of every source bar, by position (what Dataset.label_end indexes)."""
    if isinstance(candles, (list, tuple)):
        return np.array([b.open_time for b in candles], dtype=np.int64)
    return market_arrays_from_frame(candles)["times"]


def _champion_scores(champion, candles, labeler, tick_size, symbol, interval, cut_bar, test, model, ml):
    """(challenger metrics, champion metrics) on the held-out rows where both feature sets are warm."""
    loaded = load_model(champion.artifact_path, champion.artifact_sha256)
    champion_data = build_dataset(candles, loaded.spec, labeler, tick_size=tick_size, symbol=symbol,
                                  interval=interval)
    champion_test = champion_data.subset(_holdout_rows(champion_data, cut_bar))
    common = np.intersect1d(test.index, champion_test.index)
    mine, theirs = np.isin(test.index, common), np.isin(champion_test.index, common)
    challenger_metrics = classification_metrics(test.y[mine], model.predict_proba(test.X[mine])[:, 1],
                                                ml.min_confidence)
    champion_metrics = classification_metrics(
        champion_test.y[theirs], np.array([loaded.predict_up(x) for x in champion_test.X[theirs]]),
        ml.min_confidence)
    return challenger_metrics, champion_metrics


def retrain(registry: ModelRegistry, name: str, candles, *, model_dir: str | Path, tick_size: float | None = None,
            symbol: str = "", interval: str = "", spec=None, labeler=None, kind: str = "logistic", seed: int = 0,
            holdout_fraction: float = 0.2, ml=None, metric_name: str = "auc", min_improvement: float = 0.0,
            promote_to: str = "shadow", train_options: dict | None = None,
            author: str = "retrain") -> RetrainOutcome:
    """Train a challenger on `candles` (a DataFrame of candles, or Bars with `tick_size`), compare it
    with the live champion of `name` on the same held-out window, register it, promote only if better.

    spec / labeler default to the champion's (else FeatureSpec() / ForwardReturn()); `ml` is the [ml]
    config section (min_confidence, the promotion criteria; defaults when None)."""
    ml = ml or MlSection()
    if metric_name not in METRICS:
        raise ValueError(f"metric must be one of {', '.join(METRICS)}, got {metric_name!r}")
    if promote_to not in ("shadow", "live"):
        raise ValueError(f"promote_to must be 'shadow' or 'live', got {promote_to!r}")
    if not (isinstance(holdout_fraction, (int, float)) and 0.05 <= holdout_fraction <= 0.5):
        raise ValueError(f"holdout_fraction must be within [0.05, 0.5], got {holdout_fraction!r}")
    criteria = Criteria.from_config(ml)
    champion = registry.live(name)
    spec = _feature_spec(champion, spec)
    labeler = _label_spec(champion, labeler)
    data = build_dataset(candles, spec, labeler, tick_size=tick_size, symbol=symbol, interval=interval)
    if len(data) == 0:
        raise ValueError("retrain: the candles give no row with both features and a label")
    cut_bar = int(data.bars * (1.0 - holdout_fraction))
    train_rows = np.flatnonzero(data.label_end < cut_bar)          # purged: no label reads the held-out bars
    test_rows = _holdout_rows(data, cut_bar)
    if len(test_rows) < 20 or len(train_rows) < 100:
        raise ValueError(f"retrain: {len(train_rows)} training and {len(test_rows)} held-out rows are too few "
                         f"({data.bars} bars, holdout_fraction {holdout_fraction})")
    holdout = {"start_ns": int(data.times[test_rows[0]]), "end_ns": int(data.times[test_rows[-1]]),
               "rows": int(len(test_rows)), "cut_bar": cut_bar, "bars": int(data.bars)}
    registry.record_event(name, 0, "retrain_started", f"retraining {name} on {data.bars} bars",
                          {"holdout": holdout, "kind": kind, "seed": seed, "metric": metric_name,
                           "champion": champion.version if champion else None}, author)

    train = data.subset(train_rows)
    try:
        result = train_model(train, kind, seed=seed, min_confidence=ml.min_confidence, **(train_options or {}))
    except Exception as exc:
        registry.record_event(name, 0, "retrain_failed", f"training failed: {type(exc).__name__}: {exc}",
                              {"train_rows": int(len(train_rows))}, author)
        raise
    test = data.subset(test_rows)
    holdout_metrics = classification_metrics(test.y, result.model.predict_proba(test.X)[:, 1], ml.min_confidence)
    challenger_metrics, champion_metrics, champion_score, overlap = holdout_metrics, None, None, False
    if champion is not None:
        # Before the challenger is registered: a champion that cannot be judged leaves no candidate behind.
        try:
            challenger_metrics, champion_metrics = _champion_scores(
                champion, candles, labeler, tick_size, symbol, interval, cut_bar, test, result.model, ml)
        except Exception as exc:
            registry.record_event(name, 0, "retrain_failed", f"champion v{champion.version} could not be scored: "
                                  f"{type(exc).__name__}: {exc}", {"champion": champion.version}, author)
            raise
        champion_score = _score(champion_metrics, metric_name)
        overlap = champion.train_end >= holdout["start_ns"]
    challenger_score = _score(challenger_metrics, metric_name)
    model_dir = Path(model_dir)
    version = max((m.version for m in registry.list(name)), default=0) + 1
    path = model_dir / f"{name}-v{version}.joblib"
    sha = save_model(path, result.model, spec, result.meta())
    labels = labeler.to_dict() if hasattr(labeler, "to_dict") else dict(train.labels)
    challenger = registry.register(
        name, path, expected_sha256=sha, version=version, feature_set=spec.to_dict(),
        train_start=int(train.times[0]), train_end=int(_bar_times(candles)[int(train.label_end.max())]),
        params={"kind": kind, "labels": labels, "symbol": data.symbol, "interval": data.interval,
                "min_confidence": ml.min_confidence, **result.params},
        in_sample=result.in_sample, out_of_sample={**holdout_metrics, "cv": result.oos, "holdout": holdout},
        reference=reference_histograms(train.X, spec.names, window=ml.drift_window), reason="retrained challenger",
        author=author)

    problems = unmet_criteria(challenger, criteria)
    if challenger_score is None:
        better, why = False, f"challenger has no {metric_name} on the held-out window"
    elif problems:
        better, why = False, "challenger misses the criteria: " + "; ".join(problems)
    elif champion is None:
        better, why = True, f"no live champion; challenger {metric_name} {challenger_score:.4f}"
    elif champion_score is None or challenger_score > champion_score + min_improvement:
        better = True
        why = (f"challenger {metric_name} {challenger_score:.4f} > champion v{champion.version} "
               f"{champion_score if champion_score is None else round(champion_score, 4)} + {min_improvement}")
    else:
        better = False
        why = (f"challenger {metric_name} {challenger_score:.4f} <= champion v{champion.version} "
               f"{champion_score:.4f} + {min_improvement}")
    registry.record_event(name, challenger.version, "retrain_compared", why,
                          {"metric": metric_name, "challenger": challenger_metrics, "champion": champion_metrics,
                           "champion_version": champion.version if champion else None,
                           "champion_trained_into_holdout": overlap, "better": better}, author)

    promoted = False
    if better:
        challenger = registry.promote(name, challenger.version, reason=f"retrain: {why}", author=author)
        promoted = True
        if promote_to == "live":
            try:
                challenger = registry.promote(name, challenger.version, reason=f"retrain: {why}", author=author)
            except PromotionRefused as exc:
                registry.record_event(name, challenger.version, "retrain_not_live", str(exc), None, author)
    else:
        challenger = registry.retire(name, challenger.version, reason=f"retrain: not better: {why}", author=author)
    return RetrainOutcome(name, challenger, champion, metric_name, challenger_score, champion_score, promoted, why,
                          holdout)
