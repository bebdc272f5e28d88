"""Retraining on real candles (ETH/BTC 5m): challenger vs champion on one held-out window, every step recorded."""

from __future__ import annotations

import dataclasses
import itertools
import shutil

import pytest

pytest.importorskip("chdb")
pytest.importorskip("clickhouse_connect")
pytest.importorskip("sklearn")

from abidance.config.sections import MlSection  # noqa: E402
from abidance.ml.dataset import build_dataset, market_arrays_from_frame  # noqa: E402
from abidance.ml.drift import reference_histograms  # noqa: E402
from abidance.ml.features import FeatureSpec  # noqa: E402
from abidance.ml.labels import ForwardReturn  # noqa: E402
from abidance.ml.models import load_model, save_model, train_model  # noqa: E402
from abidance.ml.registry import Criteria, ModelRegistry, file_sha256  # noqa: E402
from abidance.ml.retrain import retrain  # noqa: E402
from tests.kit import load_candles  # noqa: E402

BARS = 2400
LABELS = ForwardReturn(horizon=6)
# The promotion criteria out of the way (these candles give no model an AUC of 0.55), so the
# comparison itself decides; test_criteria_still_apply puts them back.
OPEN = MlSection(min_oos_auc=0.0, min_oos_signals=0, drift_window=200)
FAST = {"n_splits": 3}
_names = itertools.count(1)


@pytest.fixture(scope="module")
def candles():
    return load_candles("ETH_BTC-5m").iloc[:BARS].reset_index(drop=True)


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    reg = ModelRegistry.open(f"chdb://{tmp_path_factory.mktemp('retrain') / 'store'}",
                             criteria=Criteria.from_config(OPEN), author="ops")
    yield reg
    reg.close()


@pytest.fixture(scope="module")
def champion_file(candles, tmp_path_factory):
    """A champion trained on the first 1200 bars (before any held-out window below)."""
    spec = FeatureSpec()
    data = build_dataset(candles.iloc[:1200], spec, LABELS)
    result = train_model(data, "logistic", seed=1, n_splits=3, min_confidence=OPEN.min_confidence)
    path = tmp_path_factory.mktemp("champion") / "champion.joblib"
    return path, save_model(path, result.model, spec, result.meta()), data, result


def live_champion(registry, champion_file, path=None) -> str:
    name = f"eth-{next(_names)}"
    fixture_path, sha, data, result = champion_file
    path = path or fixture_path
    registry.register(name, path, expected_sha256=sha, feature_set=data.spec.to_dict(), train_start=int(data.times[0]),
                      train_end=int(data.times[-1]), params={"kind": "logistic", "labels": LABELS.to_dict()},
                      out_of_sample=result.oos, reference=reference_histograms(data.X, data.spec.names))
    registry.promote(name, 1)
    registry.promote(name, 1, reason="the champion")
    return name


def test_first_challenger_without_champion_goes_to_shadow(registry, candles, tmp_path):
    name = f"eth-{next(_names)}"
    out = retrain(registry, name, candles, model_dir=tmp_path, labeler=LABELS, ml=OPEN, train_options=FAST)
    assert out.promoted and out.champion is None and out.champion_score is None
    mv = registry.get(name, 1)
    assert mv.status == "shadow" and out.challenger == mv
    assert mv.artifact_sha256 == file_sha256(mv.artifact_path)
    assert load_model(mv.artifact_path, mv.artifact_sha256).spec == FeatureSpec()
    held = mv.out_of_sample["holdout"]
    assert held == out.holdout and held["cut_bar"] == int(BARS * 0.8) and held["bars"] == BARS
    # trained before the held-out window only (purged: its labels end before the cut)
    assert mv.train_end < held["start_ns"]
    assert mv.out_of_sample["auc"] == pytest.approx(out.challenger_score)
    assert mv.out_of_sample["cv"]["n"] > 0 and mv.params["labels"] == LABELS.to_dict()
    assert mv.reference["window"] == OPEN.drift_window and set(mv.reference["names"]) == set(FeatureSpec().names)
    steps = [(e["version"], e["event"], e["to_status"]) for e in registry.events(name)]
    assert steps == [(0, "retrain_started", ""), (1, "registered", "candidate"), (1, "retrain_compared", "candidate"),
                     (1, "promoted", "shadow")]
    compared = registry.events(name, 1)[1]["details"]
    assert compared["better"] is True and compared["champion"] is None


def test_challenger_not_better_is_retired_champion_stays_live(registry, candles, champion_file, tmp_path):
    name = live_champion(registry, champion_file)
    out = retrain(registry, name, candles, model_dir=tmp_path, ml=OPEN, train_options=FAST, min_improvement=1.0)
    assert not out.promoted and out.champion.version == 1
    assert registry.get(name, 2).status == "retired" and registry.live(name).version == 1
    assert "not better" in registry.get(name, 2).reason
    compared = [e for e in registry.events(name, 2) if e["event"] == "retrain_compared"][0]["details"]
    # both judged on the same held-out rows with the same labels
    assert compared["champion"]["n"] == compared["challenger"]["n"] > 0
    assert compared["better"] is False and compared["champion_version"] == 1
    assert compared["champion"]["auc"] == pytest.approx(out.champion_score)
    assert compared["champion_trained_into_holdout"] is False


def test_better_challenger_goes_to_shadow_not_live(registry, candles, champion_file, tmp_path):
    name = live_champion(registry, champion_file)
    out = retrain(registry, name, candles, model_dir=tmp_path, ml=OPEN, train_options=FAST, min_improvement=-1.0)
    assert out.promoted and out.challenger.status == "shadow"
    assert registry.live(name).version == 1           # live only by an operator, or promote_to="live"


def test_promote_to_live_replaces_the_champion(registry, candles, champion_file, tmp_path):
    name = live_champion(registry, champion_file)
    out = retrain(registry, name, candles, model_dir=tmp_path, ml=OPEN, train_options=FAST, min_improvement=-1.0,
                  promote_to="live")
    assert out.challenger.status == "live" and registry.live(name).version == 2
    assert registry.get(name, 1).status == "retired" and registry.get(name, 1).reason == "replaced by v2"
    assert [e["event"] for e in registry.events(name, 2)] == ["registered", "retrain_compared", "promoted", "promoted"]


def test_criteria_still_apply(registry, candles, tmp_path):
    name = f"eth-{next(_names)}"
    strict = dataclasses.replace(OPEN, min_oos_auc=1.0)
    out = retrain(registry, name, candles, model_dir=tmp_path, labeler=LABELS, ml=strict, train_options=FAST)
    assert not out.promoted and "misses the criteria" in out.reason and "min_oos_auc 1.0" in out.reason
    assert registry.get(name, 1).status == "retired"


def test_bad_arguments_name_the_problem(registry, candles, tmp_path):
    for kwargs, match in (({"holdout_fraction": 0.9}, "holdout_fraction"), ({"promote_to": "prod"}, "promote_to"),
                          ({"metric_name": "sharpe"}, "metric")):
        with pytest.raises(ValueError, match=match):
            retrain(registry, "eth-bad", candles, model_dir=tmp_path, ml=OPEN, **kwargs)
    with pytest.raises(ValueError, match="too few"):
        retrain(registry, "eth-bad", candles.iloc[:120], model_dir=tmp_path, ml=OPEN)
    assert registry.list("eth-bad") == [] and registry.events("eth-bad") == []


def test_a_failed_training_is_recorded(registry, candles, tmp_path):
    # 200 bars: enough rows to try, too few for every fold to hold both classes
    with pytest.raises(ValueError) as failure:
        retrain(registry, "eth-short", candles.iloc[:200], model_dir=tmp_path, ml=OPEN)
    events = registry.events("eth-short")
    assert [e["event"] for e in events] == ["retrain_started", "retrain_failed"]
    assert str(failure.value) in events[-1]["reason"] and registry.list("eth-short") == []


def test_train_end_is_where_the_training_labels_end_and_a_champion_reading_into_the_holdout_is_flagged(
        registry, candles, tmp_path):
    name = f"eth-{next(_names)}"
    first = retrain(registry, name, candles.iloc[:2000], model_dir=tmp_path, labeler=LABELS, ml=OPEN,
                    train_options=FAST, promote_to="live")
    champion = registry.live(name)
    assert first.promoted and champion.version == 1
    open_ns = market_arrays_from_frame(candles)["times"]
    cut = first.holdout["cut_bar"]                                       # 1600: labels end at bar 1599
    assert cut == 1600 and champion.train_end == int(open_ns[cut - 1]) < first.holdout["start_ns"]
    # Held out from bar 1597 on: the champion's last feature row (bar 1593) is before it, but its
    # labels read bars 1594..1599, inside it.
    out = retrain(registry, name, candles, model_dir=tmp_path, ml=OPEN, train_options=FAST, holdout_fraction=0.3344)
    assert out.holdout["cut_bar"] == cut - 3
    compared = [e for e in registry.events(name, 2) if e["event"] == "retrain_compared"][0]["details"]
    assert compared["champion_trained_into_holdout"] is True


def test_a_champion_that_cannot_be_scored_is_recorded_and_leaves_no_candidate(
        registry, candles, champion_file, tmp_path):
    copy = tmp_path / "champion-copy.joblib"
    shutil.copy(champion_file[0], copy)
    name = live_champion(registry, champion_file, path=copy)
    copy.write_bytes(b"overwritten after registration")
    with pytest.raises(ValueError, match="refused") as failure:
        retrain(registry, name, candles, model_dir=tmp_path / "models", ml=OPEN, train_options=FAST)
    events = registry.events(name)
    assert (events[-1]["version"], events[-1]["event"]) == (0, "retrain_failed")
    assert "champion v1 could not be scored" in events[-1]["reason"] and str(failure.value) in events[-1]["reason"]
    assert [m.version for m in registry.list(name)] == [1] and registry.live(name).version == 1
    assert not (tmp_path / "models").exists()            # no challenger file either
