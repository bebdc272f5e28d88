"""The model registry on a real embedded store (chdb): CRUD, promotion rules, events, the CLI."""

from __future__ import annotations

import hashlib
import itertools
import json

import pytest

pytest.importorskip("chdb")
pytest.importorskip("clickhouse_connect")

from abidance.cli import main as cli  # noqa: E402
from abidance.ml.registry import Criteria, ModelRegistry, PromotionRefused, RegistryError  # noqa: E402
from abidance.store import schema  # noqa: E402
from abidance.store.migrations import MIGRATIONS, applied_versions, apply_migrations  # noqa: E402

GOOD = {"auc": 0.6, "n_acted": 120, "hit_rate": 0.56}
T0, T1 = "2024-01-01", "2024-02-01"
_names = itertools.count(1)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One chdb directory for the module (chdb opens one directory per process at a time)."""
    path = tmp_path_factory.mktemp("registry") / "store"
    clock = itertools.count(1_700_000_000_000_000_000, 1_000)      # a deterministic, increasing clock
    reg = ModelRegistry.open(f"chdb://{path}", criteria=Criteria(0.55, 50), author="tester",
                             now_ns=lambda: next(clock))
    yield path, reg
    reg.close()


@pytest.fixture
def reg(store):
    return store[1]


@pytest.fixture
def name():
    return f"model-{next(_names)}"


@pytest.fixture
def artifact(tmp_path):
    path = tmp_path / "model.joblib"
    path.write_bytes(b"not really a model, but bytes with a hash")
    return path


def _register(reg, name, artifact, oos=GOOD, **kw):
    return reg.register(name, artifact, feature_set={"names": ["ret_1", "rsi_14"]}, train_start=T0, train_end=T1,
                        params={"kind": "logistic"}, in_sample={"auc": 0.7}, out_of_sample=oos, **kw)


def test_register_hashes_the_artifact_and_numbers_versions(reg, name, artifact):
    digest = hashlib.sha256(artifact.read_bytes()).hexdigest()
    v1 = _register(reg, name, artifact, reference={"format": "x"})
    v2 = _register(reg, name, artifact, expected_sha256=digest.upper())
    assert (v1.version, v2.version) == (1, 2)
    assert v1.artifact_sha256 == digest and v1.artifact_path == str(artifact.resolve())
    assert v1.status == "candidate" and v1.reason == "registered" and v1.author == "tester"
    got = reg.get(name, 1)
    assert got == v1                                 # every field survives the round trip
    assert got.feature_set == {"names": ["ret_1", "rsi_14"]} and got.out_of_sample == GOOD
    assert got.train_start == 1_704_067_200_000_000_000 and got.train_end == 1_706_745_600_000_000_000
    assert [m.version for m in reg.list(name)] == [1, 2]
    assert [m.version for m in reg.list(name, "candidate")] == [1, 2] and reg.list(name, "live") == []
    assert reg.by_sha256(digest).version == 2        # the newest version with that file
    events = reg.events(name)
    assert [(e["version"], e["event"], e["from_status"], e["to_status"]) for e in events] == \
        [(1, "registered", "", "candidate"), (2, "registered", "", "candidate")]
    assert events[0]["details"] == {"artifact_sha256": digest} and events[0]["author"] == "tester"


def test_register_refuses_bad_input(reg, name, artifact, tmp_path):
    with pytest.raises(RegistryError, match="does not exist"):
        _register(reg, name, tmp_path / "missing.joblib")
    with pytest.raises(RegistryError, match="changed since it was saved"):
        _register(reg, name, artifact, expected_sha256="0" * 64)
    with pytest.raises(RegistryError, match="model name"):
        _register(reg, "bad name!", artifact)
    with pytest.raises(RegistryError, match="empty or reversed"):
        reg.register(name, artifact, feature_set=[], train_start=T1, train_end=T0)
    with pytest.raises(RegistryError, match="not a time"):
        reg.register(name, artifact, feature_set=[], train_start="yesterday-ish", train_end=T1)
    with pytest.raises(RegistryError, match="out_of_sample must be a dict"):
        _register(reg, name, artifact, oos=[0.6])
    _register(reg, name, artifact, version=7)
    with pytest.raises(RegistryError, match="already registered"):
        _register(reg, name, artifact, version=7)
    assert [m.version for m in reg.list(name)] == [7]            # nothing half-written by the refusals
    with pytest.raises(RegistryError, match="status 'staging'"):
        reg.list(name, "staging")
    with pytest.raises(RegistryError, match=r"v9 is not registered \(versions of .*: v7\)"):
        reg.get(name, 9)


def test_candidate_to_shadow_to_live_one_live_per_name(reg, name, artifact):
    _register(reg, name, artifact)
    _register(reg, name, artifact)
    assert reg.promote(name, 1, reason="looks sane").status == "shadow"
    assert reg.shadow(name).version == 1 and reg.live(name) is None
    assert reg.promote(name, 1, reason="shadow week ok").status == "live"
    reg.promote(name, 2)
    assert [m.version for m in reg.shadows(name)] == [2]
    live2 = reg.promote(name, 2, reason="better")
    assert live2.status == "live" and reg.live(name).version == 2
    old = reg.get(name, 1)
    assert old.status == "retired" and old.reason == "replaced by v2"
    assert [m.version for m in reg.list(name, "live")] == [2]
    steps = [(e["version"], e["event"], e["from_status"], e["to_status"], e["reason"]) for e in reg.events(name)]
    assert steps[2:] == [(1, "promoted", "candidate", "shadow", "looks sane"),
                         (1, "promoted", "shadow", "live", "shadow week ok"),
                         (2, "promoted", "candidate", "shadow", "promoted to shadow"),
                         (1, "retired", "live", "retired", "replaced by v2"),
                         (2, "promoted", "shadow", "live", "better")]
    assert reg.events(name, 2)[-1]["details"]["criteria"] == {"min_oos_auc": 0.55, "min_oos_signals": 50}


def test_live_refused_below_the_criteria_unless_forced_with_a_reason(reg, name, artifact):
    _register(reg, name, artifact, oos={"auc": 0.53, "n_acted": 120})
    _register(reg, name, artifact, oos={"auc": 0.6, "n_acted": 12})
    _register(reg, name, artifact, oos={"log_loss": 0.69})
    for v in (1, 2, 3):
        reg.promote(name, v)
    with pytest.raises(PromotionRefused, match="AUC 0.5300 < ml.min_oos_auc 0.55"):
        reg.promote(name, 1)
    with pytest.raises(PromotionRefused, match="signals 12 < ml.min_oos_signals 50"):
        reg.promote(name, 2)
    with pytest.raises(PromotionRefused, match="AUC is missing.*signal count is missing"):
        reg.promote(name, 3)
    with pytest.raises(PromotionRefused, match="needs a reason"):
        reg.promote(name, 1, force=True, reason="  ")
    assert reg.live(name) is None and [m.status for m in reg.list(name)] == ["shadow"] * 3
    forced = reg.promote(name, 1, force=True, reason="operator accepts 0.53")
    assert forced.status == "live" and forced.reason == "operator accepts 0.53"
    details = reg.events(name, 1)[-1]["details"]
    assert details["forced"] is True and details["unmet"] == ["out-of-sample AUC 0.5300 < ml.min_oos_auc 0.55"]


def test_live_refused_when_the_artifact_changed_even_forced(reg, name, artifact):
    _register(reg, name, artifact)
    reg.promote(name, 1)
    artifact.write_bytes(b"swapped after registration")
    with pytest.raises(PromotionRefused, match="changed since registration"):
        reg.promote(name, 1, force=True, reason="anyway")
    artifact.unlink()
    with pytest.raises(PromotionRefused, match="is missing"):
        reg.promote(name, 1)
    assert reg.get(name, 1).status == "shadow"


def test_demote_and_retire_rules(reg, name, artifact):
    _register(reg, name, artifact)
    with pytest.raises(RegistryError, match="only a live version can be demoted"):
        reg.demote(name, 1, reason="drift")
    reg.promote(name, 1)
    reg.promote(name, 1)
    with pytest.raises(RegistryError, match="needs a reason"):
        reg.demote(name, 1, reason="")
    demoted = reg.demote(name, 1, reason="feature drift: PSI 0.4", details={"psi": {"atr_14": 0.4}})
    assert demoted.status == "shadow" and reg.live(name) is None
    event = reg.events(name, 1)[-1]
    assert (event["event"], event["from_status"], event["to_status"], event["reason"]) == \
        ("demoted", "live", "shadow", "feature drift: PSI 0.4")
    assert event["details"] == {"psi": {"atr_14": 0.4}}
    with pytest.raises(RegistryError, match="needs a reason"):
        reg.retire(name, 1, reason="")
    assert reg.retire(name, 1, reason="superseded").status == "retired"
    with pytest.raises(RegistryError, match="already retired"):
        reg.retire(name, 1, reason="again")
    with pytest.raises(RegistryError, match="register it again"):
        reg.promote(name, 1)


def test_name_level_and_step_events(reg, name, artifact):
    reg.record_event(name, 0, "retrain_started", "nightly", {"bars": 5000})
    _register(reg, name, artifact)
    reg.record_event(name, 1, "retrain_compared", "auc 0.61 > 0.58", {"better": True})
    events = reg.events(name)
    assert [(e["version"], e["event"], e["to_status"]) for e in events] == \
        [(0, "retrain_started", ""), (1, "registered", "candidate"), (1, "retrain_compared", "candidate")]
    assert events[0]["details"] == {"bars": 5000} and reg.get(name, 1).status == "candidate"
    with pytest.raises(RegistryError, match="needs a name"):
        reg.record_event(name, 1, "")


def test_migration_2_adds_the_registry_to_an_older_store(reg):
    """A store created before the registry (only migration 1, without these tables) gets them."""
    run = reg.client.command
    run("CREATE DATABASE IF NOT EXISTS older")
    old_tables = [t for t in schema.TABLES if t.name not in ("models", "model_events", "shadow_signals")]
    for t in old_tables:
        run(t.ddl("older"))
    run("CREATE TABLE IF NOT EXISTS older.schema_migrations (`version` UInt32, `applied_at` DateTime64(3, 'UTC'), "
        "`description` String) ENGINE = ReplacingMergeTree ORDER BY version")
    run("INSERT INTO older.schema_migrations VALUES (1, now64(3), 'before the registry')")
    assert run("EXISTS TABLE older.models") == 0
    assert apply_migrations(run, "older") == [2, 3]      # 3: a no-op on these current tables
    assert apply_migrations(run, "older") == []
    assert applied_versions(run, "older") == [m.version for m in MIGRATIONS]
    for table in ("models", "model_events", "shadow_signals"):
        assert run(f"EXISTS TABLE older.{table}") == 1
    assert ModelRegistry(reg.client, "older").list() == []


def test_cli_list_show_promote_demote_retire(store, name, artifact, capsys):
    path, reg = store
    _register(reg, name, artifact, oos={"auc": 0.52, "n_acted": 80, "hit_rate": 0.51})
    url = f"chdb://{path}"

    def run(*args):
        code = cli(["models", "--store", url, "--author", "ops", *args])
        out = capsys.readouterr()
        return code, out.out, out.err

    code, out, _ = run("list", "--name", name)
    assert code == 0 and name in out and "candidate" in out and "0.52" in out
    head, row = out.splitlines()[:2]
    assert head.split()[4] == "oos_signals" and row.split()[4] == "80"      # confident calls, not trades
    assert run("promote", name, "1", "--reason", "shadow it")[:2] == (0, f"{name} v1 is now shadow (shadow it)\n")
    code, _, err = run("promote", name, "1")
    assert code == 1 and "AUC 0.5200 < ml.min_oos_auc 0.55" in err       # the [ml] default criteria
    code, _, err = run("promote", name, "1", "--force")
    assert code == 1 and "needs a reason" in err
    assert run("promote", name, "1", "--force", "--reason", "ok for a test")[0] == 0
    assert run("demote", name, "1", "--reason", "manual")[1] == f"{name} v1 is now shadow (manual)\n"
    assert run("retire", name, "1", "--reason", "done")[0] == 0
    code, out, _ = run("show", name, "1")
    shown = json.loads(out)
    assert code == 0 and shown["model"]["status"] == "retired"
    assert [e["event"] for e in shown["events"]] == ["registered", "promoted", "promoted", "demoted", "retired"]
    assert {e["author"] for e in shown["events"][1:]} == {"ops"}
    code, out, _ = run("list", "--status", "retired", "--json")
    assert code == 0 and any(json.loads(line)["name"] == name for line in out.splitlines())
    code, _, err = run("show", name, "5")
    assert code == 1 and "v5 is not registered" in err
    assert cli(["models", "--store", "ftp://nowhere", "list"]) == 2
    assert "cannot open the store at ftp://nowhere" in capsys.readouterr().err
