"""Loading: defaults, the shipped example, round trips, environment overrides, secrets, TOML syntax."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from abidance.config import ConfigError, NodeSection, as_dict, load_config, parse_config, to_toml
from abidance.exchange.binance.config import BinanceConfig
from abidance.exchange.sim.config import load_config as load_sim_config
from tests.unit.config import STRATEGY, errors_of

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "config" / "sim.toml"


def test_no_file_then_all_defaults_with_paths_resolved_against_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = load_config(None, env={})
    assert cfg.node == NodeSection(state_dir=tmp_path / "state") and cfg.config_version == 1
    assert cfg.binance == BinanceConfig() and cfg.strategies == () and cfg.sim == {}
    assert cfg.node.state_dir == tmp_path / "state" and cfg.node.strategies_dir is None
    assert cfg.risk.kill_switch_file == tmp_path / "state" / "KILL"
    assert cfg.risk.max_order_notional == Decimal("100") and cfg.data.bar_intervals == ("1m",)


def test_example_sim_config_loads_and_the_simulator_accepts_its_sim_table():
    cfg = load_config(EXAMPLE, env={})
    assert cfg.binance.venue == "sim" and cfg.node.mode == "live"
    assert [s.id for s in cfg.strategies] == ["btc-ema", "eth-rsi", "btc-imbalance"]
    assert cfg.node.symbols == ("BTCUSDT", "ETHUSDT")
    assert cfg.node.state_dir == ROOT / "state" / "sim"
    assert cfg.sim["rest_port"] == 8700
    sim = load_sim_config(EXAMPLE)
    assert (sim.rest_port, sim.ws_port) == (8700, 8701)
    assert cfg.binance.rest_url.endswith(f":{sim.rest_port}") and cfg.binance.ws_url.endswith(f":{sim.ws_port}")


def test_to_toml_when_loaded_again_then_same_config():
    cfg = load_config(EXAMPLE, env={"ABIDANCE__RISK__MAX_OPEN_ORDERS": "3"})
    again = parse_config(to_toml(cfg), "/elsewhere", env={})
    assert again == cfg and again.risk.max_open_orders == 3
    assert as_dict(cfg)["strategies"][1]["class"] == "rsi_reversion"


def test_risk_limits_are_in_quote_units():
    limits = parse_config('[risk]\nmax_order_notional = "1000.5"\nmax_drawdown = 0\n', ".", env={}).risk.limits()
    assert limits.max_order_notional == 1000_5000_0000 and limits.max_drawdown == 0
    assert limits.max_open_orders == 10


def test_env_override_is_parsed_by_the_key_type():
    env = {"ABIDANCE__RISK__MAX_OPEN_ORDERS": "5", "ABIDANCE__NODE__CANCEL_ORDERS_ON_STOP": "false",
           "ABIDANCE__DATA__BAR_INTERVALS": "5m, 1h", "ABIDANCE__RISK__DAILY_LOSS_LIMIT": "12.5",
           "ABIDANCE__BINANCE__VENUE": "testnet", "ABIDANCE__RISK__MAX_POSITION": '{ BTCUSDT = "0.5" }',
           "ABIDANCE_BINANCE_API_KEY": "not an override"}
    cfg = parse_config("[risk]\nmax_open_orders = 9\n" + STRATEGY, ".", env=env)
    assert cfg.risk.max_open_orders == 5 and cfg.node.cancel_orders_on_stop is False
    assert cfg.data.bar_intervals == ("1m", "5m", "1h") and cfg.risk.daily_loss_limit == Decimal("12.5")
    assert cfg.binance.rest_url == "https://testnet.binance.vision"
    assert cfg.risk.max_position == {"BTCUSDT": Decimal("0.5")}


NAMED = '[node]\nname = "t"\n'      # a file with a key: an empty one is refused first


@pytest.mark.parametrize("var, value, expected", [
    ("ABIDANCE__RISK__MAX_OPEN_ORDERS", "five", "risk.max_open_orders must be an integer, got 'five'"),
    ("ABIDANCE__RISK__MAX_OPEN_ORDERS", "-1", "risk.max_open_orders must be within [0, 1000000], got -1"),
    ("ABIDANCE__DATA__DEPTH", "maybe", "data.depth must be true or false, got 'maybe'"),
    ("ABIDANCE__NODE__MODE", "paperr", "node.mode must be one of 'live', 'paper', got 'paperr'"),
    ("ABIDANCE__BINANCE__RECV_WINDOW_MS", "70000", "binance.recv_window_ms must be within (0, 60000]"),
])
def test_env_override_when_bad_then_error_names_key_and_variable(var, value, expected):
    [error] = errors_of(NAMED, env={var: value})
    assert error.startswith(expected) and error.endswith(f"(from the environment variable {var})")


def test_env_override_when_unknown_then_suggests():
    errors = errors_of(NAMED, env={"ABIDANCE__RISK__MAX_OPEN_ORDRES": "1", "ABIDANCE__RSK__X": "1",
                                "ABIDANCE__STRATEGIES__ID": "x"})
    assert any("ABIDANCE__RISK__MAX_OPEN_ORDRES" in e and "did you mean 'max_open_orders'" in e for e in errors)
    assert any(e.startswith("ABIDANCE__RSK__X") and "ABIDANCE__RISK__" in e for e in errors)
    assert any(e.startswith("ABIDANCE__STRATEGIES__ID is not a config override") for e in errors)


@pytest.mark.parametrize("text, path", [
    ('[binance]\napi_key = "S3CR3T-VALUE"\n', "binance.api_key"),
    ('[binance]\nAPI_SECRET = "S3CR3T-VALUE"\n', "binance.API_SECRET"),
    ('[sim]\napiKey = "S3CR3T-VALUE"\n', "sim.apiKey"),
    (STRATEGY + 'params = { db = { password = "S3CR3T-VALUE" } }\n', "strategies[0].params.db.password"),
    ('private_key = "S3CR3T-VALUE"\n', "private_key"),
])
def test_secret_key_anywhere_then_refused_without_echoing_the_value(text, path):
    [error] = errors_of(text)
    assert error.startswith(f"{path} secrets are never read from the config file")
    assert "ABIDANCE_BINANCE_API_KEY" in error and "S3CR3T" not in error


def test_secret_in_override_variable_then_refused_without_echo():
    [error] = errors_of(NAMED, env={"ABIDANCE__BINANCE__API_SECRET": "S3CR3T-VALUE"})
    assert error.startswith("ABIDANCE__BINANCE__API_SECRET is refused") and "S3CR3T" not in error


def test_bad_toml_syntax_then_error_with_line_number(tmp_path):
    path = tmp_path / "node.toml"
    path.write_text('[node]\nname = "x"\nmode = \n')
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    [error] = info.value.errors
    assert error.startswith("invalid TOML") and "line 3" in error and str(path) in str(info.value)


def test_missing_file_then_error():
    with pytest.raises(ConfigError, match="not found"):
        load_config("/nonexistent/abidance.toml", env={})
