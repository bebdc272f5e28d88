"""The ML page through Streamlit's AppTest against the served store: a model trained on real ETH/BTC
candles by `abidance train`'s own pipeline, registered, promoted to shadow and run in shadow over
held-out bars on the backtester (its would-be signals written as the node's store writer writes
them). The page shows those rows and charts; promote / retire go to the registry after a confirm,
under the config's promotion criteria."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("streamlit", reason="streamlit is not installed (pip install -e '.[dashboard]')")
pytest.importorskip("plotly", reason="plotly is not installed (pip install -e '.[dashboard]')")
pytest.importorskip("clickhouse_connect", reason="the store extra is not installed (pip install -e '.[store]')")
pytest.importorskip("sklearn")

from threadpoolctl import threadpool_limits  # noqa: E402

from abidance.store.client import connect  # noqa: E402
from tests.dashboard.test_pages import charts, errors, metric, open_page, table, trace, values  # noqa: E402

NAME = "eth-page"
BARS = 2500


@pytest.fixture(scope="module")
def registered(seeded, tmp_path_factory):
    """(registry, the training run, shadow signals written): v1 in shadow with its would-be signals, v2 a
    candidate (the same artifact, registered again)."""
    from decimal import Decimal

    from abidance.backtest.data import bars_from_frame
    from abidance.backtest.engine import Backtest, sim_instruments
    from abidance.config.sections import MlSection
    from abidance.core import topics
    from abidance.ml import deployment
    from abidance.ml.labels import ForwardReturn
    from abidance.ml.registry import ModelRegistry
    from abidance.backtest.research_config import research_config as backtest_config
    from abidance.ml.signal_training import register_run, train_signal
    from abidance.store.arrow_batch import to_arrow
    from abidance.store.rows import ROUTES, Scales
    from abidance.store.schema import BY_NAME
    from tests.kit import load_candles

    server, _ = seeded
    instruments = sim_instruments()
    inst = instruments["ETHBTC"]
    bars = bars_from_frame(load_candles("ETH_BTC-5m").iloc[-BARS:], "ETHBTC", "5m", inst)
    folder = tmp_path_factory.mktemp("ml-page")
    with threadpool_limits(1):
        run = train_signal(bars, inst, folder / f"{NAME}.joblib", labeler=ForwardReturn(6), n_splits=3,
                           curve_points=2, min_confidence=0.52)
    client = connect(server.url, "abidance")
    reg = ModelRegistry(client, "abidance", author="test")
    v1 = register_run(reg, NAME, run, symbol="ETHBTC", interval="5m", drift_window=200)
    reg.promote(NAME, v1.version, reason="shadow first")
    # v1 in shadow over the held-out bars, on the backtester, deployed from the registry as the node does
    strategy = (f'[[strategies]]\nid = "ml"\nclass = "ml_signal"\nsymbols = ["ETHBTC"]\ntimeframe = "5m"\n'
                f'params = {{ model_path = {json.dumps(run.model_path)}, model_sha256 = "{run.sha256}", '
                f'min_confidence = 0.52 }}\n')
    bt = Backtest(backtest_config("BTC", 0.95, strategy), {"ETHBTC": bars[run.holdout["cut_bar"]:]},
                  instruments=instruments, balances={"BTC": Decimal(1)})
    shadow = []
    bt.bus.subscribe(topics.SHADOW_SIGNALS, shadow.append)
    deployment.in_backtest(bt, reg, MlSection(min_confidence=0.52, drift_psi_threshold=1e6))
    result = bt.run()
    assert shadow and not result.fills                          # predicted, recorded, never traded
    route, convert, _ = ROUTES[topics.SHADOW_SIGNALS]          # the node's store writer route
    rows = [convert(s, Scales(instruments), f"page-{i}") for i, s in enumerate(shadow)]
    client.insert_arrow(f"abidance.{route}", to_arrow(BY_NAME[route], rows))
    # v2 after the shadow run: the node finds a model by its artifact's hash, the newest version first
    reg.register(NAME, run.model_path, expected_sha256=run.sha256, feature_set=run.train.spec.to_dict(),
                 train_start=int(run.train.times[0]), train_end=int(run.train.times[-1]),
                 params=run.params("ETHBTC", "5m"), out_of_sample=run.out_of_sample(), reason="second candidate")
    return reg, run, shadow


def select(at, version: int):
    models = table(at, "name", "version", "status", "sha256")
    index = [i for i, (n, v) in enumerate(zip(models["name"], models["version"])) if (n, v) == (NAME, version)]
    at.selectbox(key="ml_version").set_value(index[0]).run()
    return at


def test_ml_page_shows_the_registry_its_events_shadow_signals_and_training_charts(seeded_env, registered):
    reg, run, shadow = registered
    at = open_page("ml")
    assert errors(at) == []
    models = table(at, "name", "version", "status", "sha256").set_index("version")
    mine = models[models["name"] == NAME]
    assert list(mine["status"].loc[[1, 2]]) == ["shadow", "candidate"]
    assert mine.loc[1, "sha256"] == run.sha256[:12]
    assert mine.loc[1, "oos_auc"] == pytest.approx(run.holdout_metrics["auc"])
    assert mine.loc[1, "oos_signals"] == run.holdout_metrics["n_acted"]
    assert int(metric(at, "Shadow")) >= 1 and int(metric(at, "Candidate")) >= 1

    select(at, 1)
    assert metric(at, "Status") == "shadow"
    specs = {s["layout"]["title"]["text"]: s for s in charts(at)}
    assert {"Learning curve", "Purged cross-validation: score of each test fold", "Held-out equity",
            "Feature importances (held out)"} <= set(specs)
    equity = specs["Held-out equity"]
    for name in ("model", "buy_and_hold", "ema_cross"):
        y = values(trace(equity, name)["y"])
        assert y[-1] == pytest.approx(float(run.comparison.table[name]["final_equity"]))
    shown = values(trace(specs["Feature importances (held out)"], "importance")["y"])
    assert set(shown) == set(run.importances["names"])

    events = table(at, "event", "from_status", "to_status")
    mine = events[events["name"] == NAME]
    assert {"registered", "oos_backtest", "promoted"} <= set(mine["event"])
    signals = table(at, "model", "side", "confidence")
    assert len(signals) == min(200, len(shadow)) and set(signals["model"]) == {NAME}
    assert all(c >= 0.52 for c in signals["confidence"])


def test_promote_to_live_when_config_criteria_unmet_then_refused_and_nothing_changes(seeded_env, registered,
                                                                                     tmp_path, monkeypatch):
    from tests.dashboard.seed import CONFIG_TEXT

    reg, run, _ = registered
    strict = tmp_path / "strict.toml"                 # the node's [ml] criteria: an AUC no model here reaches
    strict.write_text(CONFIG_TEXT + "\n[ml]\nmin_oos_auc = 0.99\n", encoding="utf-8")
    monkeypatch.setenv("ABIDANCE_CONFIG", str(strict))
    at = select(open_page("ml"), 1)
    assert any("min_oos_auc 0.99" in c.value for c in at.caption)
    at.button(key="ml_promote_button").click().run()
    assert any("Confirm promote eth-page v1" in w.value for w in at.warning)
    at.button(key="ml_confirm").click().run()
    assert not at.exception
    assert any("not promoted to live" in e and "< ml.min_oos_auc 0.99" in e for e in errors(at)), errors(at)
    assert reg.get(NAME, 1).status == "shadow" and run.holdout_metrics["auc"] < 0.99


def test_promote_candidate_when_confirmed_then_shadow_and_cancel_writes_nothing(seeded_env, registered):
    reg, _, _ = registered
    before = len(reg.events(NAME, 2))
    at = select(open_page("ml"), 2)
    at.button(key="ml_retire_button").click().run()
    at.button(key="ml_cancel").click().run()
    assert not [w for w in at.warning if "Confirm" in w.value]
    assert reg.get(NAME, 2).status == "candidate" and len(reg.events(NAME, 2)) == before

    at.text_input(key="ml_reason").input("test: watch it in shadow")
    at.button(key="ml_promote_button").click().run()
    assert reg.get(NAME, 2).status == "candidate"                 # nothing before the confirmation
    at.button(key="ml_confirm").click().run()
    assert not at.exception and errors(at) == []
    v2 = reg.get(NAME, 2)
    assert (v2.status, v2.reason, v2.author) == ("shadow", "test: watch it in shadow", "dashboard")
    assert any("eth-page v2 is now shadow" in s.value for s in at.success)
    assert reg.events(NAME, 2)[-1]["event"] == "promoted" and len(reg.events(NAME, 2)) == before + 1
