"""`abidance train` as a user runs it (a subprocess) on real ETH/BTC and LTC/BTC 5m candles, small settings,
fixed seeds: the printed metrics, the HTML report's charts, and with a store (its own process) the
registry rows; `--retrain` on the store's bars; `abidance optimize` searching ml_signal's parameters."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys

import pytest

pytest.importorskip("sklearn")
pytest.importorskip("plotly")

from tests.kit import PROJECT_ROOT, shared_data  # noqa: E402

# One BLAS/OpenMP thread in the subprocesses: 2 shared cores, and thread contention made fits 30-100x slower.
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
       "PYTHONUNBUFFERED": "1"}
LAST = 3000              # the newest 3000 bars (about 10 days): quick, and the same data in every test
SIGNAL = ["--last", str(LAST), "--folds", "3", "--curve-points", "3", "--seed", "0"]


def train(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "abidance.cli", "train", *args], cwd=PROJECT_ROOT, env=ENV,
                          capture_output=True, text=True, timeout=timeout)


def printed(out: str) -> dict[str, str]:
    """The `key: value` lines of the output (keys without spaces)."""
    return dict(m.groups() for m in re.finditer(r"^([a-z_]+): (.*)$", out, re.M))


def chart_traces(html: str, key: str) -> list[dict]:
    """The traces of one chart of the report: the data of plotly's inline Plotly.newPlot call for its div."""
    marker = f'"plot-{key}",'
    assert marker in html, f"no chart {key!r} in the report"
    data, _ = json.JSONDecoder().raw_decode(html.split(marker, 1)[1].strip())
    return data


def pct(text: str) -> float:
    return float(text.rstrip("%")) / 100


@pytest.fixture(scope="module")
def eth():
    return shared_data("market", "ETH_BTC-5m.feather")


@pytest.fixture(scope="module")
def signal_run(eth, tmp_path_factory):
    folder = tmp_path_factory.mktemp("train-signal")
    out = train("signal", "--candles", f"ETHBTC={eth}", *SIGNAL, "--model-dir", str(folder),
                "--report", str(folder / "report.html"))
    assert out.returncode == 0, out.stderr
    return out.stdout, folder


def test_signal_prints_out_of_sample_metrics_and_the_held_out_backtest(signal_run, eth):
    stdout, folder = signal_run
    cut = int(LAST * 0.75)
    got = printed(stdout)
    model = folder / "ethbtc-logistic.joblib"
    sha = hashlib.sha256(model.read_bytes()).hexdigest()
    assert got["model"] == f"{model} sha256 {sha}"
    # The held-out AUC is the saved model's on the rows of the last 25 % of the bars, never trained on,
    # recomputed here from the files alone. In a fresh interpreter, as the command ran: within a
    # full suite run this process computed 0.5599 where both fresh ones give 0.5597 (some state an
    # earlier test leaves behind; BLAS threads ruled out) -- noted, not yet found.
    script = f"""
import json, sys
import numpy as np
from threadpoolctl import threadpool_limits
from abidance.backtest.data import bars_from_frame, read_candles
from abidance.backtest.engine import sim_instruments
from abidance.ml.dataset import build_dataset
from abidance.ml.labels import ForwardReturn
from abidance.ml.models import classification_metrics, load_model
inst = sim_instruments()["ETHBTC"]
bars = bars_from_frame(read_candles({str(eth)!r}).iloc[-{LAST}:], "ETHBTC", "5m", inst)
data = build_dataset(bars, None, ForwardReturn(12), tick_size=float(inst.filters.price_fp.increment))
held = data.subset(np.flatnonzero(data.index >= {cut}))
loaded = load_model({str(model)!r}, {sha!r})
with threadpool_limits(limits=1):
    m = classification_metrics(held.y, loaded.model.predict_proba(held.X)[:, 1], 0.55)
print(json.dumps({{"auc": m["auc"], "n_acted": m["n_acted"], "end_ns": loaded.meta["data"]["end_ns"],
                  "first_held_ns": int(held.times[0])}}))
"""
    fresh = subprocess.run([sys.executable, "-c", script], cwd=PROJECT_ROOT, capture_output=True, text=True,
                           timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert fresh.returncode == 0, fresh.stderr
    expected = json.loads(fresh.stdout)
    assert got["holdout_auc"] == f"{expected['auc']:.4f}" and got["holdout_signals"] == str(expected["n_acted"])
    assert expected["end_ns"] < expected["first_held_ns"]            # trained only on rows before the held-out bars
    assert 0.3 < float(got["cv_auc"]) < 0.7 and float(got["in_sample_auc"]) > float(got["cv_auc"]) - 0.05
    # The backtest on the held-out bars: the model, buy-and-hold and the rule, side by side.
    assert f"held-out backtest ({LAST - cut} bars" in stdout
    assert int(got["buy_and_hold_round_trips"]) == 0 and pct(got["buy_and_hold_return"]) > 0.05   # ETH rose
    assert int(got["ema_cross_round_trips"]) > 5 and int(got["model_round_trips"]) > 0
    assert got["verdict"].startswith("the model beat")
    assert len(got["top_features"].split(", ")) == 3


def test_signal_report_has_the_learning_curve_equity_and_importances(signal_run):
    from abidance.ml.features import FeatureSpec

    stdout, folder = signal_run
    html = (folder / "report.html").read_text()
    assert "plotly" in html and "report: " in stdout and "(4 charts)" in stdout
    curve = {t["name"]: t for t in chart_traces(html, "learning_curve")}
    assert len(curve["held-out AUC"]["x"]) == 3 and curve["in-sample AUC"]["x"][-1] > curve["in-sample AUC"]["x"][0]
    folds = {t["name"]: t for t in chart_traces(html, "cv_folds")}
    assert len(folds["AUC"]["y"]) == 3
    equity = {t["name"]: t for t in chart_traces(html, "equity")}
    assert set(equity) == {"model", "buy_and_hold", "ema_cross"}
    table = [line.split() for line in stdout.splitlines()]
    final = {row[0]: float(row[-1]) for row in table if len(row) == 7 and row[0] in equity}
    assert len(final) == 3
    for name, trace in equity.items():
        assert trace["y"][-1] == pytest.approx(final[name])         # the chart ends at the printed final equity
    importances = chart_traces(html, "importances")[0]
    assert importances["orientation"] == "h" and sorted(importances["y"]) == sorted(FeatureSpec().names)


def test_signal_with_store_registers_a_candidate_and_retrain_runs_on_the_stores_bars(eth, tmp_path):
    clickhouse_connect = pytest.importorskip("clickhouse_connect")
    pytest.importorskip("chdb")
    from abidance.backtest.data import bars_from_frame, read_candles
    from abidance.backtest.engine import sim_instruments
    from abidance.ml.features import FeatureSpec
    from abidance.ml.registry import ModelRegistry
    from abidance.store.arrow_batch import to_arrow
    from abidance.store.rows import Scales, bar
    from abidance.store.schema import BY_NAME

    # The store in its own process: chdb allows one data directory per process at a time.
    store = subprocess.Popen([sys.executable, "-m", "abidance.cli", "store", "--data-dir", str(tmp_path / "chdb"),
                              "--port", "0"], stdout=subprocess.PIPE, text=True, env=ENV)
    try:
        url = store.stdout.readline().split("ready: ")[1].split()[0]
        out = train("signal", "--candles", f"ETHBTC={eth}", *SIGNAL, "--curve-points", "0", "--store", url,
                    "--name", "eth-t", "--model-dir", str(tmp_path / "models"), "--author", "tester")
        assert out.returncode == 0, out.stderr
        got = printed(out.stdout)
        assert got["registered"].startswith(f"eth-t v1 as candidate in {url} (abidance)")
        client = clickhouse_connect.get_client(host="127.0.0.1", port=int(url.rsplit(":", 1)[1]), compress=False)
        reg = ModelRegistry(client, "abidance")
        mv = reg.get("eth-t", 1)
        assert (mv.status, mv.author) == ("candidate", "tester")
        assert got["model"] == f"{mv.artifact_path} sha256 {mv.artifact_sha256}"
        oos = mv.out_of_sample
        assert f"{oos['auc']:.4f}" == got["holdout_auc"] and f"{oos['cv']['auc']:.4f}" == got["cv_auc"]
        assert mv.train_end < oos["holdout"]["start_ns"]             # training range ends before the held-out bars
        assert f"{oos['backtest']['model']['total_return']:+.2%}" == got["model_return"]
        assert f"{oos['backtest']['buy_and_hold']['total_return']:+.2%}" == got["buy_and_hold_return"]
        assert set(oos["charts"]) == {"cv_folds", "learning_curve", "importances", "equity"}
        assert mv.params["labels"] == {"kind": "forward_return", "horizon": 12, "threshold": 0.0, "neutral": "down"}
        assert mv.in_sample["auc"] is not None                       # kept for comparison
        assert mv.reference["names"] == list(FeatureSpec.from_dict(mv.feature_set).names)    # the drift reference
        assert [e["event"] for e in reg.events("eth-t", 1)] == ["registered", "oos_backtest"]

        # The node's recorded bars in the store; the timer's retrain takes symbol and interval from the registry.
        inst = sim_instruments()
        bars = bars_from_frame(read_candles(str(eth)).iloc[-LAST:], "ETHBTC", "5m", inst["ETHBTC"])
        rows = [bar(b, Scales(inst), "") for b in bars]
        client.insert_arrow("abidance.bars", to_arrow(BY_NAME["bars"], rows))
        out = train("signal", "--retrain", "eth-t", "--store", url, "--model-dir", str(tmp_path / "models"),
                    "--folds", "3")
        assert out.returncode == 0, out.stderr
        got = printed(out.stdout)
        assert got["retrain"].startswith(f"eth-t on {LAST} ETHBTC 5m bars")
        v2 = reg.get("eth-t", 2)
        assert got["outcome"].startswith(f"eth-t v2 is {v2.status}") and v2.status in ("shadow", "retired")
        events = [e["event"] for e in reg.events("eth-t")]
        assert events[-4:-1] == ["retrain_started", "registered", "retrain_compared"]

        too_few = train("signal", "--retrain", "eth-t", "--store", url, "--last", "150",
                        "--model-dir", str(tmp_path / "models"))
        assert too_few.returncode == 1 and "--retrain eth-t: failed: ValueError" in too_few.stderr
        unknown = train("signal", "--retrain", "nope", "--store", url)
        assert unknown.returncode == 2 and "nope has no registered version" in unknown.stderr
    finally:
        store.send_signal(signal.SIGTERM)
        store.wait(15)


def test_bad_input_is_refused_with_the_flag_named(eth, tmp_path):
    cases = [(["signal", "--candles", "NOPE=missing.feather"], "unknown symbol or missing file"),
             (["signal", "--candles", f"ETHBTC={eth}", "--holdout", "0.9"], "--holdout must be within [0.05, 0.5]"),
             (["signal", "--candles", f"ETHBTC={eth}", "--fee-bps", "ten"], "--fee-bps 'ten' is not a number"),
             (["signal", "--candles", f"ETHBTC={eth}", "--take-profit", "0.01"], "belong to --label triple"),
             (["signal"], "no data: give --candles"),
             (["signal", "--retrain", "eth"], "--retrain needs --store")]
    for args, message in cases:
        out = train(*args, "--model-dir", str(tmp_path), timeout=60)
        assert out.returncode == 2 and message in out.stderr, (args, out.stderr)


def test_regime_prints_the_walk_forward_and_saves_the_model(tmp_path):
    eth, ltc = shared_data("market", "ETH_BTC-5m.feather"), shared_data("market", "LTC_BTC-5m.feather")
    out = train("regime", "--candles", f"ETHBTC={eth}", f"LTCBTC={ltc}", "--last", "2500", "--train", "1500",
                "--test", "500", "--out", str(tmp_path / "regime.joblib"), "--report", str(tmp_path / "r.html"))
    assert out.returncode == 0, out.stderr
    got = printed(out.stdout)
    assert got["windows"] == "2" and "Regime switching" in out.stdout
    sha = hashlib.sha256((tmp_path / "regime.joblib").read_bytes()).hexdigest()
    assert got["model"].startswith(f"{tmp_path / 'regime.joblib'} sha256 {sha}")
    windows = {t["name"]: t for t in chart_traces((tmp_path / "r.html").read_text(), "windows")}
    assert set(windows) == {"regime", "static", "buy_and_hold"} and len(windows["regime"]["x"]) == 2


def test_rl_trains_and_judges_the_agent_on_the_held_out_bars(eth, tmp_path):
    pytest.importorskip("stable_baselines3")
    out = train("rl", "--candles", f"ETHBTC={eth}", "--last", "2000", "--timesteps", "2048", "--envs", "4",
                "--episode-bars", "128", "--seed", "7", "--out", str(tmp_path / "agent"),
                "--report", str(tmp_path / "rl.html"))
    assert out.returncode == 0, out.stderr
    got = printed(out.stdout)
    assert int(got["episodes"]) >= 16 and int(got["buy_and_hold_trades"]) == 1 and int(got["ema_cross_trades"]) > 0
    assert "held out bars 1400..1999" in out.stdout
    assert (tmp_path / "agent" / "policy.zip").is_file() and (tmp_path / "agent" / "agent.json").is_file()
    html = (tmp_path / "rl.html").read_text()
    episodes = {t["name"]: t for t in chart_traces(html, "episodes")}
    assert "episode return" in episodes
    assert {t["name"] for t in chart_traces(html, "equity")} == {"agent", "buy_and_hold", "ema_cross"}


def test_optimize_searches_ml_signals_declared_params(signal_run, eth, tmp_path):
    _, folder = signal_run
    model = folder / "ethbtc-logistic.joblib"
    (tmp_path / "ml.toml").write_text(f"""
config_version = 1
[node]
mode = "live"
[risk]
quote_asset = "BTC"
max_order_notional = "0"
max_gross_exposure = "0"
daily_loss_limit = "0"
max_drawdown = "0"
price_band_bps = 0
sizing = "fixed_fraction"
fraction = 0.95
min_confidence = 0.0
[[strategies]]
id = "eth-ml"
class = "ml_signal"
symbols = ["ETHBTC"]
timeframe = "5m"
params = {{ model_path = {json.dumps(str(model))}, model_sha256 = "{hashlib.sha256(model.read_bytes()).hexdigest()}" }}
""")
    out = subprocess.run([sys.executable, "-m", "abidance.cli", "optimize", "--config", str(tmp_path / "ml.toml"),
                          "--strategy", "eth-ml", "--candles", f"ETHBTC={eth}", "--trials", "3", "--sampler", "random",
                          "--balance", "BTC=1", "--objective", "return_dd", "--out", str(tmp_path / "best.json")],
                         cwd=PROJECT_ROOT, env=ENV, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "searching eth-ml: min_confidence in [0.5, 1.0], horizon in [0, 1440]" in out.stdout
    best = json.loads((tmp_path / "best.json").read_text())
    assert best["complete"] >= 1 and set(best["best_params"]) == {"min_confidence", "horizon"}
    assert 0.5 <= best["best_params"]["min_confidence"] <= 1.0 and 0 <= best["best_params"]["horizon"] <= 1440
