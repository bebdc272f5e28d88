"""The second pass: rules across keys and the values derived from other keys."""

from __future__ import annotations

from pathlib import Path

from abidance.config import parse_config
from tests.unit.config import STRATEGY, errors_of


def strategy(id: str, symbols: str = '"BTCUSDT"', extra: str = "") -> str:
    return f'[[strategies]]\nid = "{id}"\nclass = "ema_cross"\nsymbols = [{symbols}]\n{extra}'


def test_duplicate_strategy_ids_then_error_names_both():
    [error] = errors_of(strategy("a") + strategy("b") + strategy("a", '"ETHUSDT"'))
    assert error == "strategies[2].id 'a' is already used by strategies[0]; ids must be unique"


def test_strategy_timeframes_and_symbols_are_added_in_order():
    cfg = parse_config('[node]\nsymbols = ["BNBUSDT"]\n[data]\nbar_intervals = ["1h"]\n'
                       + strategy("a", '"ETHUSDT", "BTCUSDT"', 'timeframe = "5m"\n')
                       + strategy("b", '"BTCUSDT"', 'timeframe = "1s"\n'), ".", env={})
    assert cfg.data.bar_intervals == ("1s", "5m", "1h")
    assert cfg.node.symbols == ("BNBUSDT", "ETHUSDT", "BTCUSDT")


def test_max_position_for_untraded_symbol_then_error():
    [error] = errors_of('[risk]\nmax_position = { BTCUSDT = "0.1", ETHUSDT = "2" }\n' + STRATEGY)
    assert error.startswith("risk.max_position.ETHUSDT names a symbol no strategy trades")


def test_symbol_not_in_quote_asset_then_error():
    [error] = errors_of(strategy("a", '"ETHBTC"'))
    assert error.startswith("strategies[0].symbols[0] 'ETHBTC' is not quoted in risk.quote_asset 'USDT'")


def test_fixed_quote_sizing_needs_a_positive_amount_within_the_order_limit():
    [error] = errors_of('[risk]\nfixed_quote = "0"\n')
    assert error == "risk.fixed_quote must be > 0 when risk.sizing = 'fixed_quote', got '0'"
    [error] = errors_of('[risk]\nfixed_quote = "200"\nmax_order_notional = "100"\n')
    assert error.startswith("risk.fixed_quote '200' exceeds risk.max_order_notional '100'")
    parse_config('[risk]\nsizing = "kelly"\nfixed_quote = "0"\nkelly_cap = 0.5\n', ".", env={})


def test_strategy_file_class_needs_strategies_dir():
    [error] = errors_of('[[strategies]]\nid = "a"\nclass = "mine.py:Breakout"\nsymbols = ["BTCUSDT"]\n')
    assert error.startswith("strategies[0].class 'mine.py:Breakout' names a strategy file: set node.strategies_dir")
    text = '[node]\nstrategies_dir = "user"\n[[strategies]]\nid = "a"\nclass = "mine:Breakout"\nsymbols = ["BTCUSDT"]\n'
    assert parse_config(text, "/srv/bot", env={}).node.strategies_dir == Path("/srv/bot/user")


def test_paths_resolve_against_the_config_folder_and_kill_switch_against_state_dir():
    cfg = parse_config('[node]\nstate_dir = "../var"\n[risk]\nkill_switch_file = "stop/NOW"\n', "/srv/bot/conf", env={})
    assert cfg.node.state_dir == Path("/srv/bot/var") and cfg.risk.kill_switch_file == Path("/srv/bot/var/stop/NOW")
    cfg = parse_config('[node]\nstate_dir = "/abs"\n[risk]\nkill_switch_file = ""\n', "/srv", env={})
    assert cfg.node.state_dir == Path("/abs") and cfg.risk.kill_switch_file is None


def test_a_strategy_weight_is_refused_because_nothing_reads_it():
    # issue 18: `weight` was documented as a capital share and set in the demo config, but no code read it
    [error] = errors_of(strategy("a", extra="weight = 0.5\n"))
    assert error.startswith("strategies[0].weight is not read by anything: remove it")
