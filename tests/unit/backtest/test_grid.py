"""Backtest grids: the same rows (fills, equity, metrics, byte for byte) serially, in worker
processes and on a Dask cluster; grids parsed against the strategy's declared parameters;
bad input refused with exit 2."""

from __future__ import annotations

from decimal import Decimal

import pandas as pd
import pytest

from abidance.backtest.data import bars_from_frame
from abidance.backtest.engine import Backtest, sim_instruments
from abidance.backtest.grid import grid_points, parse_grid, run_grid
from abidance.backtest.optimize import with_params
from abidance.cli import main as cli_main
from abidance.config import parse_config
from abidance.strategy.builtin.ema_cross import EmaCross
from tests.kit import shared_data
from tests.unit.backtest.test_cli import CONFIG

BALANCES = {"BTC": Decimal(1)}
GRID = {"fast": [8, 12], "slow": [26, 50]}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    frame = pd.read_feather(shared_data("market", "ETH_BTC-5m.feather")).iloc[:2000]
    cfg = parse_config(CONFIG, tmp_path_factory.mktemp("cfg"), env={})
    return cfg, {"ETHBTC": bars_from_frame(frame, "ETHBTC", "5m", sim_instruments()["ETHBTC"])}


@pytest.fixture(scope="module")
def serial(data):
    cfg, bars = data
    return run_grid(cfg, "ema", GRID, bars, balances=BALANCES)


def test_two_worker_processes_give_the_serial_rows_byte_for_byte(data, serial):
    cfg, bars = data
    parallel = run_grid(cfg, "ema", GRID, bars, jobs=2, balances=BALANCES)
    assert [r.to_json() for r in parallel] == [r.to_json() for r in serial]
    assert [r.params for r in serial] == grid_points(GRID)
    # the points really differ (a row that ignored its parameters would compare equal too)
    assert len({r.fills_sha256 for r in serial}) == 4 and all(r.fills > 10 for r in serial)


def test_a_row_is_the_backtest_of_its_parameters(data, serial):
    cfg, bars = data
    alone = Backtest(with_params(cfg, "ema", {"fast": 12, "slow": 50}), bars, balances=BALANCES).run()
    row = serial[3]
    assert row.params == {"fast": 12, "slow": 50}
    assert row.final_equity == alone.final_equity and row.fills == len(alone.fills)
    assert row.orders == len(alone.orders) and row.summary["round_trips"] > 0


def test_a_dask_cluster_gives_the_serial_rows(data, serial):
    distributed = pytest.importorskip("distributed")
    cfg, bars = data
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=True, dashboard_address=None) as c:
        rows = run_grid(cfg, "ema", GRID, bars, cluster="dask://" + c.scheduler_address.removeprefix("tcp://"),
                        balances=BALANCES)
    assert [r.to_json() for r in rows] == [r.to_json() for r in serial]


def test_invalid_points_are_rows_that_say_why(data):
    cfg, bars = data
    rows = run_grid(cfg, "ema", {"fast": [30], "slow": [20]}, bars, balances=BALANCES)
    assert rows[0].invalid.startswith("ValueError") and rows[0].fills == 0


def test_grids_are_typed_by_the_strategys_declared_parameters():
    assert parse_grid(["fast=8,12", "slow=26"], EmaCross) == {"fast": [8, 12], "slow": [26]}
    assert grid_points({"a": [1, 2], "b": ["x", "y"]}) == [{"a": 1, "b": "x"}, {"a": 1, "b": "y"},
                                                           {"a": 2, "b": "x"}, {"a": 2, "b": "y"}]
    for specs, message in ((["nope=1"], "EmaCross has no parameter 'nope'"), (["fast=8,x"], "'x' is not a int"),
                           (["fast"], "write PARAM=v1,v2"), (["fast=1", "fast=2"], "given twice"),
                           ([], "an empty grid")):
        with pytest.raises(ValueError, match=message):
            parse_grid(specs, EmaCross)


@pytest.mark.parametrize("flags, message", [
    (["--grid", "fast=8,oops"], "--grid fast: 'oops' is not a int"),
    (["--jobs", "2"], "--jobs and --cluster run a grid"),
    (["--grid", "fast=8", "--cluster", "ray://head:10001"], "give dask://HOST:PORT"),
    (["--grid", "fast=8", "--jobs", "0"], "--jobs must be >= 1"),
    (["--grid", "fast=8", "--strategy", "other"], "--strategy 'other': not in the config"),
    (["--grid", "fast=8", "--report", "r.html"], "--grid writes rows, not a report"),
])
def test_bad_grid_input_exits_2_naming_it(tmp_path, capsys, flags, message):
    candles = shared_data("market", "ETH_BTC-5m.feather")
    (tmp_path / "bt.toml").write_text(CONFIG)
    code = cli_main(["backtest", "--config", str(tmp_path / "bt.toml"), "--candles", f"ETHBTC={candles}", *flags])
    assert code == 2 and message in capsys.readouterr().err


def test_the_grid_command_prints_a_row_per_point_and_writes_them(tmp_path, capsys):
    candles = shared_data("market", "ETH_BTC-5m.feather")
    (tmp_path / "bt.toml").write_text(CONFIG)
    code = cli_main(["backtest", "--config", str(tmp_path / "bt.toml"), "--candles", f"ETHBTC={candles}",
                     "--balance", "BTC=1", "--grid", "fast=8,12", "--grid", "slow=26", "--out",
                     str(tmp_path / "rows.jsonl")])
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert out[0].split()[:3] == ["fast", "slow", "final_equity"] and len(out) == 4
    assert (tmp_path / "rows.jsonl").read_bytes().count(b"\n") == 2


def test_the_documented_grid_command_runs(tmp_path, capsys):
    """docs/backtest.md's grid command, as written (the shipped example config, two workers)."""
    from tests.kit import PROJECT_ROOT, SHARED_DATA

    shared_data("market", "ETH_BTC-5m.feather")
    docs = (PROJECT_ROOT / "docs" / "backtest.md").read_text()
    end = docs.index("--jobs 2 --out rows.jsonl") + len("--jobs 2 --out rows.jsonl")
    start = docs.rindex("    abidance backtest --config", 0, end)
    command = docs[start:end].replace("\\\n", " ")
    argv = command.replace("../shared/data", str(SHARED_DATA)).replace("config/", f"{PROJECT_ROOT}/config/")
    argv = argv.replace("rows.jsonl", str(tmp_path / "rows.jsonl")).split()
    assert cli_main(argv[1:]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:2] == ["fast", "slow"] and len(out) == 1 + 6 + 1         # header, rows, "rows: FILE"
    assert (tmp_path / "rows.jsonl").read_bytes().count(b"\n") == 6
