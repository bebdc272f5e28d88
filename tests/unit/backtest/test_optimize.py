"""`abidance optimize`: Optuna search inside the declared ranges, invalid combinations pruned, resumable
SQLite studies, parallel workers, walk-forward windows and the objectives."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from decimal import Decimal

import pandas as pd
import pytest

from abidance.backtest.data import bars_from_frame
from abidance.backtest.engine import sim_instruments
from abidance.backtest.optimize import (RunSettings, check_params, evaluate, format_walk_forward, objective_value,
                                        optimize, walk_forward, windows)
from abidance.config import parse_config
from abidance.strategy.builtin.ema_cross import EmaCross
from tests.kit import PROJECT_ROOT, shared_data
from tests.unit.backtest.test_cli import CONFIG

# These tests are about the search's mechanics (ranges, resuming, workers, windows) on a short
# series where few parameter sets trade: every trial is scored, even one without a trade. The
# minimum trades a trial needs (1 fill and 1 round trip by default) are tested in
# test_optimize_explains.py.
SETTINGS = RunSettings(balances={"BTC": Decimal(1)}, min_trades=0, min_round_trips=0)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    instruments = sim_instruments()
    frame = pd.read_feather(shared_data("market", "ETH_BTC-5m.feather")).iloc[:1500]
    cfg = parse_config(CONFIG, tmp_path_factory.mktemp("cfg"), env={})
    return cfg, {"ETHBTC": bars_from_frame(frame, "ETHBTC", "5m", instruments["ETHBTC"])}, instruments


def _trials(db) -> int:
    with sqlite3.connect(db) as c:
        return c.execute("select count(*) from trials").fetchone()[0]


def test_objectives_on_hand_made_summaries():
    s = {"sharpe": 1.5, "sortino": 2.0, "cagr": 0.3, "total_return": 0.1, "max_drawdown": 0.05}
    assert objective_value("sharpe", s) == 1.5
    assert objective_value("sortino", s) == 2.0
    assert objective_value("calmar", s) == pytest.approx(6.0)
    assert objective_value("return_dd", s) == pytest.approx(0.05)
    assert objective_value("return_dd", s, dd_penalty=2.0) == pytest.approx(0.0)
    flat = {"sharpe": None, "sortino": None, "cagr": 0.0, "total_return": 0.0, "max_drawdown": 0.0}
    assert objective_value("sharpe", flat) is None and objective_value("calmar", flat) is None
    assert objective_value("return_dd", flat) == 0.0
    assert objective_value("sortino", {"sortino": float("inf")}) is None
    with pytest.raises(ValueError):
        objective_value("nope", s)


def test_proposals_stay_inside_the_declared_ranges_and_invalid_combos_are_pruned(data):
    cfg, bars, inst = data
    assert check_params(cfg, "ema", {"fast": 30, "slow": 20}).startswith("ValueError")
    assert check_params(cfg, "ema", {"fast": 5, "slow": 20}) is None
    res = optimize(cfg, "ema", bars, n_trials=12, sampler="random", objective="return_dd", seed=3,
                   settings=SETTINGS, instruments=inst)
    assert res.trials == 12 and res.failed == 0 and res.best_params is not None
    seen = []
    optimize(cfg, "ema", bars, n_trials=12, sampler="random", objective="return_dd", seed=3, settings=SETTINGS,
             instruments=inst, log=lambda n, p, v: seen.append((p, v)))
    assert len(seen) == 12
    spec = EmaCross.params
    for params, _ in seen:
        assert type(params["fast"]) is int and type(params["slow"]) is int and type(params["min_gap_bps"]) is float
        for name, value in params.items():
            assert spec[name].low <= value <= spec[name].high
    invalid = [p for p, v in seen if p["fast"] >= p["slow"]]
    assert invalid and all(v is None for p, v in seen if p["fast"] >= p["slow"])
    assert res.pruned >= len(invalid)
    # A trial is a real backtest: parameters that trade give a non-zero score and round trips.
    value, summary = evaluate(cfg, "ema", {"fast": 5, "slow": 20, "min_gap_bps": 0.0}, bars, SETTINGS, inst)
    assert value and summary["round_trips"] > 0


def test_the_study_resumes_from_the_sqlite_file(data, tmp_path):
    cfg, bars, inst = data
    db = tmp_path / "study.sqlite"
    a = optimize(cfg, "ema", bars, n_trials=3, sampler="tpe", objective="return_dd", storage=f"sqlite:///{db}",
                 study_name="s1", settings=SETTINGS, instruments=inst)
    assert a.trials == 3 and _trials(db) == 3
    b = optimize(cfg, "ema", bars, n_trials=4, sampler="tpe", objective="return_dd", storage=f"sqlite:///{db}",
                 study_name="s1", settings=SETTINGS, instruments=inst)
    assert b.trials == 7 and _trials(db) == 7
    assert b.best_value >= a.best_value


def test_two_worker_processes(data, tmp_path):
    cfg, bars, inst = data
    db = tmp_path / "par.sqlite"
    res = optimize(cfg, "ema", bars, n_trials=6, sampler="tpe", objective="return_dd", jobs=2,
                   storage=f"sqlite:///{db}", settings=SETTINGS, instruments=inst)
    assert res.trials == 6 == _trials(db) and res.failed == 0 and res.complete >= 1


def test_window_ranges_rolling_and_anchored():
    assert windows(1000, 400, 200, False) == [(0, 400, 400, 600), (200, 600, 600, 800), (400, 800, 800, 1000)]
    assert windows(1000, 400, 200, True) == [(0, 400, 400, 600), (0, 600, 600, 800), (0, 800, 800, 1000)]
    assert windows(500, 400, 200, False) == []


@pytest.mark.parametrize("anchored", [False, True])
def test_walk_forward_reports_in_and_out_of_sample(data, anchored):
    cfg, bars, inst = data
    rows = walk_forward(cfg, "ema", bars, 600, 300, anchored, 3, "return_dd", sampler="random",
                        settings=SETTINGS, instruments=inst)
    assert len(rows) == 3
    five = 300 * 10**9
    t0 = bars["ETHBTC"][0].open_time
    for i, r in enumerate(rows):
        assert r.test_start == t0 + (600 + 300 * i) * five and r.train_end == r.test_start
        assert r.train_start == (t0 if anchored else t0 + 300 * i * five)
        assert r.train_bars == (600 + 300 * i if anchored else 600) and r.test_bars == 300
        assert r.best_params is not None and r.in_sample is not None and r.out_of_sample is not None
    table = format_walk_forward(rows, "return_dd")
    assert "IS return_dd" in table and "OOS return_dd" in table and len(table.splitlines()) == 6
    json.dumps([r.as_dict() for r in rows])


def test_optimize_command_writes_best_json_and_resumes(tmp_path):
    candles = shared_data("market", "ETH_BTC-5m.feather")
    frame = pd.read_feather(candles).iloc[:1000]
    small = tmp_path / "eth.feather"
    frame.reset_index(drop=True).to_feather(small)
    (tmp_path / "bt.toml").write_text(CONFIG)
    cmd = [sys.executable, "-c", "import argparse, sys; from abidance.backtest import optimize_cli as c; "
           "p = argparse.ArgumentParser(); c.add_parser(p.add_subparsers()); a = p.parse_args(sys.argv[1:]); "
           "sys.exit(a.func(a))",
           "optimize", "--config", str(tmp_path / "bt.toml"), "--strategy", "ema", "--candles", f"ETHBTC={small}",
           "--trials", "3", "--objective", "return_dd", "--balance", "BTC=1", "--min-trades", "0",
           "--min-round-trips", "0", "--study-db", str(tmp_path / "s.db"), "--out", str(tmp_path / "best.json")]
    for n in (3, 6):
        out = subprocess.run(cmd, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert f"{n} trials" in out.stdout and "best params" in out.stdout
    best = json.loads((tmp_path / "best.json").read_text())
    assert best["trials"] == 6 and set(best["best_params"]) == {"fast", "slow", "min_gap_bps"}
    wf = subprocess.run(cmd[:-4] + ["--walk-forward", "500:250:anchored", "--out", str(tmp_path / "wf.json")],
                        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
    assert wf.returncode == 0, wf.stderr
    assert len(json.loads((tmp_path / "wf.json").read_text())["windows"]) == 2
    bad = subprocess.run(cmd[:-4] + ["--walk-forward", "x"], cwd=PROJECT_ROOT, capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode == 2 and "--walk-forward" in bad.stderr


def test_two_worker_processes_share_one_study_through_a_journal_file(tmp_path):
    """Two `abidance optimize` processes (as on two machines) fill one study on a shared journal
    file: every trial of both is in it, none lost and none numbered twice."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    frame = pd.read_feather(shared_data("market", "ETH_BTC-5m.feather")).iloc[:800]
    small = tmp_path / "eth.feather"
    frame.reset_index(drop=True).to_feather(small)
    (tmp_path / "bt.toml").write_text(CONFIG)
    journal = tmp_path / "study.log"
    cmd = [sys.executable, "-m", "abidance.cli", "optimize", "--config", str(tmp_path / "bt.toml"), "--strategy",
           "ema", "--candles", f"ETHBTC={small}", "--trials", "4", "--objective", "return_dd", "--sampler", "random",
           "--min-trades", "0", "--min-round-trips", "0", "--balance", "BTC=1", "--storage", f"journal://{journal}",
           "--study-name", "shared"]
    workers = [subprocess.Popen(cmd + ["--seed", str(seed)], cwd=PROJECT_ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for seed in (1, 2)]
    outs = [w.communicate(timeout=180) for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outs
    study = optuna.load_study(study_name="shared", storage=JournalStorage(JournalFileBackend(str(journal))))
    numbers = [t.number for t in study.trials]
    assert len(numbers) == 8 and sorted(numbers) == list(range(8))
    assert all(t.state.is_finished() for t in study.trials)


def test_storage_urls_are_checked():
    from abidance.backtest.optimize import study_storage

    assert study_storage(None) is None and study_storage("sqlite:///x.db") == "sqlite:///x.db"
    assert study_storage("postgresql://u:p@db/abidance").startswith("postgresql://")
    for bad in ("journal://", "redis://x", "x.db"):
        with pytest.raises(ValueError, match="--storage"):
            study_storage(bad)
