"""`config check` refuses what would crash `run`: absurd numbers, bad strategy parameters, an empty file."""

from __future__ import annotations

import pytest

from abidance.config.schema import FLOAT, INT, QTY
from abidance.config.sections import SECTIONS, STRATEGY
from tests.unit.config import STRATEGY as ONE_STRATEGY, errors_of
from tests.unit.config.test_docs_cli import run


def check(capsys, tmp_path, text: str) -> tuple[int, str]:
    path = tmp_path / "node.toml"
    path.write_text(text)
    code, out, err = run(capsys, "check", str(path))
    return code, out + err


@pytest.mark.parametrize("text,key", [
    ("[node]\nheartbeat_s = 1e308\n", "node.heartbeat_s"),
    ("[risk]\norders_per_10s = 99999999999999999999\n", "risk.orders_per_10s"),
    ("[risk]\norders_per_day = 9223372036854775807\n", "risk.orders_per_day"),
    ("[binance]\nstale_after_s = 1e308\n", "binance.stale_after_s"),
    ("[binance]\nrequest_timeout_s = 1e300\n", "binance.request_timeout_s"),
    ("[store]\nflush_s = 1e308\n", "store.flush_s"),
    ("[execution]\nlimit_timeout_s = 1e308\n", "execution.limit_timeout_s"),
    ("[backtest]\ntaker_bps = \"100000000000000000000000\"\n", "backtest.taker_bps"),
    ("[backtest]\nbalances = { USDT = \"1000000000000000000000\" }\n", "backtest.balances.USDT"),
    ("[backtest]\ntaker_bps_by_symbol = { BTCUSDT = \"20000\" }\n", "backtest.taker_bps_by_symbol.BTCUSDT"),
])
def test_check_refuses_absurd_numbers_naming_the_key(capsys, tmp_path, text, key):
    # issue 16: heartbeat_s = 1e308 and orders_per_10s = 99999999999999999999 passed `check`, then OverflowError in run
    code, out = check(capsys, tmp_path, text)
    assert code == 2 and f"- {key} must be" in out, out


def test_every_numeric_key_has_an_upper_bound():
    for section in (*SECTIONS.values(), STRATEGY):
        for name, spec in section.keys.items():
            if spec.kind in (INT, FLOAT) and not spec.choices:
                assert spec.le is not None or spec.lt is not None, f"{section.name}.{name} has no upper bound"
            if spec.kind is QTY and spec.le is None:
                assert spec.check("1000000000000000") is not None
                with pytest.raises(ValueError):
                    spec.check("1000000000000001")


@pytest.mark.parametrize("params,message", [
    ("fast = -5", "strategies[0].params.fast must be within [2, 200], got -5"),
    ("fast = 5.5", "strategies[0].params.fast must be int"),
    ("speed = 3", "strategies[0].params.speed is not a parameter of EmaCross"),
])
def test_check_builds_strategies_and_refuses_parameters_outside_their_declared_range(capsys, tmp_path, params,
                                                                                   message):
    # issue 16: `fast = -5` passed `check`
    code, out = check(capsys, tmp_path, ONE_STRATEGY + f"[strategies.params]\n{params}\n")
    assert code == 2 and message in out, out


def test_check_refuses_a_strategy_class_that_does_not_load(capsys, tmp_path):
    (tmp_path / "user").mkdir()
    (tmp_path / "user" / "mine.py").write_text("raise RuntimeError('broken on import')\n")
    code, out = check(capsys, tmp_path, '[node]\nstrategies_dir = "user"\n[[strategies]]\nid = "m"\n'
                                        'class = "mine:Mine"\nsymbols = ["BTCUSDT"]\n')
    assert code == 2 and "strategies[0].class" in out and "broken on import" in out, out


def test_check_passes_a_strategy_within_its_ranges(capsys, tmp_path):
    code, out = check(capsys, tmp_path, ONE_STRATEGY + "[strategies.params]\nfast = 5\nslow = 30\n")
    assert code == 0 and out.startswith("ok\n"), out


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "[node]\n[risk]\n"])
def test_empty_file_is_refused(capsys, tmp_path, text):
    # issue 16: an empty file was reported valid, and `run` then reached for the default venue
    code, out = check(capsys, tmp_path, text)
    assert code == 2 and "the config has no keys" in out, out
    assert errors_of(text)[0].startswith("the config has no keys")
