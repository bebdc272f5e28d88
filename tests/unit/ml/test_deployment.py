"""The node's side of deployment: which ML strategies run how, registry reads and writes off the loop."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("chdb")
pytest.importorskip("clickhouse_connect")

from abidance.config import parse_config  # noqa: E402
from abidance.config.sections import MlSection  # noqa: E402
from abidance.core import topics  # noqa: E402
from abidance.core.bus import MessageBus  # noqa: E402
from abidance.core.clock import LiveClock  # noqa: E402
from abidance.ml import deployment  # noqa: E402
from abidance.core.events import Bar  # noqa: E402
from abidance.ml.drift import DriftVerdict, reference_histograms  # noqa: E402
from abidance.ml.features import FeatureSpec  # noqa: E402
from abidance.ml.labels import ForwardReturn, TripleBarrier  # noqa: E402
from abidance.ml.models import save_model  # noqa: E402
from abidance.ml.registry import Criteria, ModelRegistry, ModelVersion  # noqa: E402
from abidance.ml.registry_link import InlineRegistry  # noqa: E402
from abidance.ml.ml_signal import MLSignal  # noqa: E402

SHA = "ab" * 32


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("deploy") / "store"
    reg = ModelRegistry.open(f"chdb://{path}", criteria=Criteria(0.5, 10), author="ops")
    yield f"chdb://{path}", reg
    reg.close()


def ml_strategy(sid="ml", sha=SHA):
    return MLSignal(sid, ["ETHBTC"], {"model_path": "unused.joblib", "model_sha256": sha})


def fake_node(url: str, strategies, tmp_path, poll_s=0.05, ml: str = ""):
    cfg = parse_config(f'config_version = 1\n[store]\nurl = "{url}"\n[ml]\nregistry_poll_s = {poll_s}\n{ml}',
                       tmp_path, env={}) if url else parse_config("config_version = 1\n", tmp_path, env={})
    return SimpleNamespace(config=cfg, strategies=strategies, bus=MessageBus(), clock=LiveClock())


def register(reg, name, artifact, sha_file_bytes=b"model bytes"):
    artifact.write_bytes(sha_file_bytes)
    X = np.random.default_rng(0).normal(size=(500, 2))
    return reg.register(name, artifact, feature_set=["a", "b"], train_start="2024-01-01", train_end="2024-02-01",
                        out_of_sample={"auc": 0.6, "n_acted": 50, "hit_rate": 0.55},
                        reference=reference_histograms(X, ["a", "b"]))


def test_without_a_store_ml_strategies_run_predict_only(tmp_path):
    async def go():
        s, rule = ml_strategy(), SimpleNamespace(id="ema")
        node = fake_node("", [s, rule], tmp_path)
        alerts = []
        node.bus.subscribe(topics.ALERTS, alerts.append)
        parts = await deployment.in_node(node)
        assert parts == [] and s.predict_only and alerts == []      # the alert waits for the store writer
        await asyncio.sleep(0)
        assert [(a.code, a.source) for a in alerts] == [("model_not_deployed", "strategy.ml")]
        assert "no store" in alerts[0].message
    asyncio.run(go())


def test_no_ml_strategy_no_components(tmp_path):
    assert asyncio.run(deployment.in_node(fake_node("chdb:///nowhere", [SimpleNamespace(id="ema")], tmp_path))) == []


def test_unregistered_model_runs_predict_only(store, tmp_path):
    url, _ = store

    async def go():
        s = ml_strategy(sha="cd" * 32)
        node = fake_node(url, [s], tmp_path)
        alerts = []
        node.bus.subscribe(topics.ALERTS, alerts.append)
        assert await deployment.in_node(node) == []
        await asyncio.sleep(0)
        assert s.predict_only and "not in the model registry" in alerts[0].message
    asyncio.run(go())


def test_model_without_a_drift_reference_runs_predict_only(store, tmp_path):
    url, reg = store
    artifact = tmp_path / "bare.joblib"
    artifact.write_bytes(b"bare model bytes")
    mv = reg.register("bare", artifact, feature_set=[], train_start="2024-01-01", train_end="2024-02-01")

    async def go():
        s = ml_strategy(sha=mv.artifact_sha256)
        node = fake_node(url, [s], tmp_path)
        alerts = []
        node.bus.subscribe(topics.ALERTS, alerts.append)
        assert await deployment.in_node(node) == []
        await asyncio.sleep(0)
        assert s.predict_only and "no drift reference" in alerts[0].message
    asyncio.run(go())


def test_node_deployment_follows_the_registry_and_writes_demotions_off_the_loop(store, tmp_path):
    url, reg = store
    mv = register(reg, "node-model", tmp_path / "m.joblib")
    reg.promote("node-model", mv.version)                         # shadow

    async def go():
        s = ml_strategy(sha=mv.artifact_sha256)
        node = fake_node(url, [s], tmp_path)
        alerts = []
        node.bus.subscribe(topics.ALERTS, alerts.append)
        parts = await deployment.in_node(node)
        assert [type(p).__name__ for p in parts] == ["RegistryLinkOwner", "ModelDeployment"]
        owner, dep = parts
        for p in parts:
            p.start()
        assert dep.status == "shadow" and s.predict_only
        assert s.p.min_confidence == max(0.6, MlSection().min_confidence)
        reg.promote("node-model", mv.version, reason="operator")      # `abidance models promote`
        for _ in range(100):                                          # picked up by the poll
            await asyncio.sleep(0.02)
            if dep.status == "live":
                break
        assert dep.status == "live" and not s.predict_only
        assert alerts[-1].code == "model_live"
        dep._demote(DriftVerdict(True, "feature drift: test", {"a": 9.0}, 0.5, 60, 0.55))
        assert s.predict_only and alerts[-1].code == "model_demoted"   # at once, on the loop
        for _ in range(100):
            await asyncio.sleep(0.02)
            if reg.get("node-model", mv.version).status == "shadow":
                break
        await asyncio.sleep(0.1)                                       # polls keep coming: no flip back
        assert dep.status == "shadow" and s.predict_only
        for p in reversed(parts):
            p.stop()
        return dep
    dep = asyncio.run(go())
    record = reg.get("node-model", mv.version)
    assert record.status == "shadow" and record.reason == "feature drift: test"
    event = reg.events("node-model", mv.version)[-1]
    assert (event["event"], event["author"], event["details"]["psi"]) == ("demoted", "node:ml", {"a": 9.0})
    assert dep.record.updated_at == record.updated_at


def test_a_newer_promotion_lifts_the_drift_latch(store, tmp_path):
    _, reg = store
    mv = register(reg, "latch", tmp_path / "l.joblib", b"other bytes")
    reg.promote("latch", mv.version)
    live = reg.promote("latch", mv.version)
    s = ml_strategy(sha=mv.artifact_sha256)
    s.shadow_held = {"ETHBTC": False}
    dep = deployment.ModelDeployment(MessageBus(), LiveClock(), s, live, MlSection(), InlineRegistry(reg))
    dep.apply_record(live)
    dep._demote(DriftVerdict(True, "drift", {}, None, 0, None))
    dep.apply_record(live)                   # a stale read from before the demotion: ignored
    assert dep.status == "shadow" and s.predict_only
    again = reg.promote("latch", mv.version, reason="drift understood, back to live")
    dep.refresh()
    assert dep.status == "live" and not s.predict_only and dep.record == again


def test_deployment_refuses_what_it_cannot_watch(store, tmp_path):
    _, reg = store
    mv = register(reg, "noref", tmp_path / "n.joblib", b"n")
    with pytest.raises(ValueError, match="not an ML strategy"):
        deployment.ModelDeployment(MessageBus(), LiveClock(), SimpleNamespace(id="ema"), mv, MlSection(), None)
    bare = reg.register("noref", tmp_path / "n.joblib", feature_set=[], train_start="2024-01-01",
                        train_end="2024-02-01")
    with pytest.raises(ValueError, match="no drift reference"):
        deployment.ModelDeployment(MessageBus(), LiveClock(), ml_strategy(), bare, MlSection(), None)


def test_shadow_signals_reach_the_store_writer(tmp_path):
    from abidance.backtest.engine import sim_instruments
    from abidance.exchange.binance.ids import ClientOrderIds
    from abidance.exchange.binance.rest_orders import BinanceExecutionClient
    from abidance.runtime.node import TradingNode

    cfg = parse_config('config_version = 1\n[risk]\nquote_asset = "BTC"\n[store]\nurl = "http://127.0.0.1:1"\n',
                       tmp_path, env={})
    instruments = {"ETHBTC": sim_instruments()["ETHBTC"]}
    kernel = TradingNode(cfg).build_kernel(instruments, {}, BinanceExecutionClient(None, instruments),
                                           ClientOrderIds("t", seed=1))
    writer = kernel.store_writer
    assert writer.routes[deployment.SHADOW_SIGNALS][0] == "shadow_signals"
    from abidance.core.events import ShadowSignal
    from abidance.store.rows import shadow_signal

    row = shadow_signal(ShadowSignal("m", 3, "ml", "ETHBTC", "BUY", 0.61, 5123, "p(up) 0.61 >= 0.6", 7),
                        writer.scales, "e1")
    # ETHBTC's tick is 0.00001: 5123 ticks = 0.05123 = 5_123_000 x 1e-8
    assert row == (7, "e1", "m", 3, "ml", "ETHBTC", "BUY", 0.61, 5_123_000, "p(up) 0.61 >= 0.6")
    assert Decimal(row[8]).scaleb(-8) == Decimal("0.05123")


# ---- the live hit rate: calls labelled by the training label rule -------------------------------

TICK = 1e-5


class ScriptedML:
    """An ML strategy (the deployment's hooks) whose p(up) per bar is given; prices in ticks x 1e-5."""

    def __init__(self, ps, symbol="ETHBTC"):
        self.id, self.p = "ml", SimpleNamespace(min_confidence=0.6, horizon=0)
        self.traded_symbols, self.ps = (symbol,), list(ps)
        self.predict_only, self.last_p, self.current_bar, self._reason = False, {}, None, ""
        self.shadow_held, self.sold = {symbol: False}, []

    def price(self, symbol, ticks):
        return ticks * TICK

    def on_bar(self, bar):
        self.current_bar = bar
        self.on_features(bar.symbol, bar, np.zeros(2))
        self.last_p[bar.symbol] = self.ps.pop(0)

    def on_features(self, symbol, bar, x): ...

    def on_shadow_signal(self, side, p, confidence): ...

    def on_fill(self, fill): ...

    def sell(self, symbol, confidence, reason=""):
        self.sold.append(symbol)


def bar(i, high, low, close, symbol="ETHBTC"):
    t = 1_700_000_000_000_000_000 + i * 300_000_000_000
    return Bar(symbol, "5m", t, t + 300_000_000_000, close, high, low, close, 1, 1)


def record(labels: dict, status="shadow", **oos) -> ModelVersion:
    ref = reference_histograms(np.random.default_rng(0).normal(size=(500, 2)), ["a", "b"])
    return ModelVersion("m", 1, status, "m.joblib", "ab" * 32, ["a", "b"], 0, 1, {"labels": labels}, {},
                        {"auc": 0.6, "n_acted": 60, "hit_rate": 0.55, "min_confidence": 0.6, **oos}, ref)


@pytest.mark.parametrize("labels, hit", [
    (TripleBarrier(horizon=3, take_profit=0.01, stop_loss=0.01).to_dict(), True),   # take profit touched first
    (ForwardReturn(horizon=3).to_dict(), False),                                   # down at the horizon
], ids=["triple_barrier", "forward_return"])
def test_live_calls_are_scored_by_the_models_own_label_rule(labels, hit):
    s = ScriptedML([0.9, 0.5, 0.5, 0.5, 0.5])          # one confident up call, at bar 0
    dep = deployment.ModelDeployment(MessageBus(), LiveClock(), s, record(labels), MlSection(), None)
    dep.start()
    path = [(100_000, 100_000, 100_000), (101_500, 99_900, 100_500), (100_000, 98_950, 99_000),
            (99_000, 97_900, 98_000), (98_000, 98_000, 98_000)]     # +1.5 % high first, then down 2 %
    for i, (high, low, close) in enumerate(path):
        s.on_bar(bar(i, high, low, close))
    assert dep.monitor.outcomes == 1 and dep.monitor.hit_rate() == (1.0 if hit else 0.0)


def test_shadow_signals_carry_the_confidence_the_live_signal_would():
    s = ScriptedML([0.7])
    bus, shadow = MessageBus(), []
    bus.subscribe(deployment.SHADOW_SIGNALS, shadow.append)
    dep = deployment.ModelDeployment(bus, LiveClock(), s, record({}), MlSection(), None)
    dep.start()
    s.current_bar = bar(0, 100, 100, 100)
    s.on_shadow_signal("SELL", 0.7, 1.0)                # the horizon exit: a rule, full confidence
    s.on_shadow_signal("SELL", 0.3, 0.7)                # a model call: 1 - p
    assert [(x.side, x.confidence) for x in shadow] == [("SELL", 1.0), ("SELL", 0.7)]


# ---- registry reads and writes -------------------------------------------------------------------


class HeldLink:
    """A registry link whose calls wait until the test answers them (a slow store)."""

    def __init__(self, registry):
        self.registry, self.waiting = registry, []

    def submit(self, call, on_done=None, on_error=None):
        self.waiting.append((call, on_done))

    def answer(self):
        call, on_done = self.waiting.pop(0)
        on_done(call(self.registry))


def test_a_poll_in_flight_skips_the_next_poll(store, tmp_path):
    _, reg = store
    mv = register(reg, "slow", tmp_path / "s.joblib", b"slow store bytes")
    s, link = ml_strategy(sha=mv.artifact_sha256), HeldLink(reg)
    dep = deployment.ModelDeployment(MessageBus(), LiveClock(), s, mv, MlSection(), link)
    dep.refresh()
    dep.refresh()                                       # the store has not answered: no second read
    assert len(link.waiting) == 1
    reg.promote("slow", mv.version)
    link.answer()
    assert dep.status == "shadow"
    dep.refresh()
    assert len(link.waiting) == 1                       # answered: the next poll reads again


class FlakyRegistry:
    """The registry, with its next `failures` demotion writes failing (the store went away)."""

    def __init__(self, registry, failures=1):
        self.registry, self.failures = registry, failures

    def demote(self, *args, **kwargs):
        if self.failures:
            self.failures -= 1
            raise OSError("store unreachable")
        return self.registry.demote(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.registry, name)


def test_a_failed_demotion_write_is_retried_on_the_next_poll(store, tmp_path):
    _, reg = store
    mv = register(reg, "flaky", tmp_path / "f.joblib", b"flaky bytes")
    reg.promote("flaky", mv.version)
    live = reg.promote("flaky", mv.version)
    s = ml_strategy(sha=mv.artifact_sha256)
    bus, alerts = MessageBus(), []
    bus.subscribe(topics.ALERTS, alerts.append)
    dep = deployment.ModelDeployment(bus, LiveClock(), s, live, MlSection(close_on_demote=False),
                                     InlineRegistry(FlakyRegistry(reg)))
    dep.apply_record(live)
    dep._demote(DriftVerdict(True, "feature drift: flaky store", {"a": 9.0}, None, 0, None))
    assert s.predict_only and reg.get("flaky", mv.version).status == "live"
    assert alerts[-1].code == "model_registry_error" and "retried on the next poll" in alerts[-1].message
    dep.refresh()
    record = reg.get("flaky", mv.version)
    assert record.status == "shadow" and record.reason == "feature drift: flaky store"
    assert dep.status == "shadow" and dep.record.updated_at == record.updated_at
    dep.refresh()                                       # written once, not again
    assert [e["event"] for e in reg.events("flaky", mv.version)].count("demoted") == 1


def test_a_demotion_still_unwritten_gets_a_last_try_at_stop(store, tmp_path):
    _, reg = store
    mv = register(reg, "stopping", tmp_path / "st.joblib", b"stopping bytes")
    reg.promote("stopping", mv.version)
    live = reg.promote("stopping", mv.version)
    s = ml_strategy(sha=mv.artifact_sha256)
    dep = deployment.ModelDeployment(MessageBus(), LiveClock(), s, live, MlSection(close_on_demote=False),
                                     InlineRegistry(FlakyRegistry(reg)))
    dep.start()
    dep._demote(DriftVerdict(True, "drift before a restart", {}, None, 0, None))
    assert reg.get("stopping", mv.version).status == "live"
    dep.stop()                                          # else a restart would trade the drifted model again
    assert reg.get("stopping", mv.version).status == "shadow"


def test_a_pending_demotion_yields_to_a_change_made_meanwhile(store, tmp_path):
    _, reg = store
    mv = register(reg, "meanwhile", tmp_path / "w.joblib", b"meanwhile bytes")
    reg.promote("meanwhile", mv.version)
    live = reg.promote("meanwhile", mv.version)
    s = ml_strategy(sha=mv.artifact_sha256)
    dep = deployment.ModelDeployment(MessageBus(), LiveClock(), s, live, MlSection(close_on_demote=False),
                                     InlineRegistry(FlakyRegistry(reg)))
    dep.apply_record(live)
    dep._demote(DriftVerdict(True, "drift", {}, None, 0, None))
    reg.retire("meanwhile", mv.version, reason="operator retired it")
    dep.refresh()
    assert dep.status == "retired" and reg.get("meanwhile", mv.version).reason == "operator retired it"
    assert "demoted" not in [e["event"] for e in reg.events("meanwhile", mv.version)]


# ---- which strategies are deployed ---------------------------------------------------------------


def test_close_on_demote_deploys_a_model_whose_symbol_another_strategy_trades(store, tmp_path):
    # A demotion's SELL is sized from the ML strategy's own position (positions are per strategy):
    # sharing a symbol with another strategy no longer keeps a model from being deployed.
    url, reg = store
    mv = register(reg, "shared", tmp_path / "sh.joblib", b"shared symbol bytes")

    async def go():
        s = ml_strategy(sha=mv.artifact_sha256)
        rule = SimpleNamespace(id="ema", traded_symbols=("ETHBTC", "LTCBTC"))
        node = fake_node(url, [s, rule], tmp_path)
        alerts = []
        node.bus.subscribe(topics.ALERTS, alerts.append)
        parts = await deployment.in_node(node)
        await asyncio.sleep(0)
        for p in parts:
            if isinstance(p, deployment.RegistryLinkOwner):
                p.link.close()
        return s, parts, alerts
    s, parts, alerts = asyncio.run(go())
    assert node_ml_config_close_on_demote(tmp_path)
    assert [type(p).__name__ for p in parts] == ["RegistryLinkOwner", "ModelDeployment"] and alerts == []


def node_ml_config_close_on_demote(tmp_path) -> bool:
    return fake_node("", [], tmp_path).config.ml.close_on_demote


def tiny_model_file(path, seed=0) -> str:
    """A real model file (a fitted logistic regression on the default features' columns)."""
    from sklearn.linear_model import LogisticRegression

    spec = FeatureSpec()
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(200, len(spec.names)))
    model = LogisticRegression().fit(X, (X[:, 0] > 0).astype(int))
    return save_model(path, model, spec, {"test": True})


def test_one_unreadable_model_file_keeps_only_its_strategy_out(store, tmp_path):
    pytest.importorskip("sklearn")
    url, reg = store
    mv = register(reg, "readable", tmp_path / "ok.joblib", b"readable model bytes")
    missing = tmp_path / "gone.joblib"

    async def go():
        good = MLSignal("good", ["ETHBTC"], {"model_path": "unused.joblib", "model_sha256": mv.artifact_sha256})
        bad = MLSignal("bad", ["LTCBTC"], {"model_path": str(missing)})      # no sha: its file is read
        node = fake_node(url, [good, bad], tmp_path)
        alerts = []
        node.bus.subscribe(topics.ALERTS, alerts.append)
        parts = await deployment.in_node(node)
        await asyncio.sleep(0)
        parts[0].link.close()
        return good, bad, parts, alerts
    good, bad, parts, alerts = asyncio.run(go())
    assert [type(p).__name__ for p in parts] == ["RegistryLinkOwner", "ModelDeployment"]
    assert parts[1].strategy is good and bad.predict_only
    (alert,) = alerts
    assert alert.source == "strategy.bad" and f"model file {missing} cannot be read" in alert.message
    assert "registry cannot be read" not in alert.message
    # a strategy without load(): its file is hashed, an OSError is that strategy's problem too
    bare = SimpleNamespace(id="bare", p=SimpleNamespace(model_sha256="", model_path=str(missing)))
    assert deployment.resolve(reg, [bare])["bare"].problem.startswith(f"model file {missing} cannot be read")


def test_without_a_configured_hash_the_model_is_read_once(store, tmp_path):
    pytest.importorskip("sklearn")
    url, reg = store
    path = tmp_path / "once.joblib"
    sha = tiny_model_file(path)
    mv = reg.register("once", path, expected_sha256=sha, feature_set=FeatureSpec().to_dict(),
                      train_start="2024-01-01", train_end="2024-02-01",
                      out_of_sample={"auc": 0.6, "n_acted": 50, "hit_rate": 0.55},
                      reference=reference_histograms(np.random.default_rng(0).normal(size=(100, 2)), ["a", "b"]))
    reg.promote("once", mv.version)

    async def go():
        s = MLSignal("ml", ["ETHBTC"], {"model_path": str(path)})           # model_sha256 empty
        parts = await deployment.in_node(fake_node(url, [s], tmp_path))
        parts[0].link.close()
        return s, parts
    s, parts = asyncio.run(go())
    assert parts[1].record.version == mv.version
    assert tiny_model_file(path, seed=1) != sha         # the file is replaced before the strategy starts
    s.on_start()
    assert s.model.sha256 == sha                        # it runs the model that was looked up, not the new file

