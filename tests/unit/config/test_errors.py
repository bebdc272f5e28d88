"""Each kind of bad value gives an error naming its key path, the value and what is allowed; all at once."""

from __future__ import annotations

import pytest

from tests.unit.config import STRATEGY, errors_of


@pytest.mark.parametrize("text, expected", [
    ('[node]\nheartbeat_s = "fast"\n', "node.heartbeat_s must be a finite number, got 'fast'"),
    ("[risk]\nmax_open_orders = 2.5\n", "risk.max_open_orders must be an integer, got 2.5"),
    ("[data]\ndepth = 1\n", "data.depth must be true or false, got 1"),
    ("[risk]\nmax_open_orders = -1\n", "risk.max_open_orders must be within [0, 1000000], got -1"),
    ("[risk]\nfraction = 1.5\n", "risk.fraction must be within (0, 1], got 1.5"),
    ('[node]\nlog_level = "VERBOSE"\n', "node.log_level must be one of 'DEBUG', 'INFO', 'WARNING', 'ERROR', got 'VERBOSE'"),
    ('[node]\nmode = "papr"\n', "node.mode must be one of 'live', 'paper', got 'papr' (did you mean 'paper'?)"),
    ("[execution]\nemulate_stops = true\n", 'execution.emulate_stops was replaced by execution.exits = "auto" | '
                                            '"native" | "emulated"'),
    ('[execution]\nexits = "exchange"\n', "execution.exits must be one of 'auto', 'native', 'emulated'"),
    ("[risk]\nmax_open_ordrs = 3\n", "risk.max_open_ordrs is not a known key; did you mean 'max_open_orders'?"),
    ("[risks]\n", "risks is not a known key; did you mean 'risk'?"),
    ("[risk]\nmax_order_notional = 1000.5\n",
     'risk.max_order_notional must be a quoted decimal string, not the float 1000.5 (binary floats are not exact): '
     'write it as "1000.5"'),
    ('[risk]\ndaily_loss_limit = "0.000000001"\n', "risk.daily_loss_limit must be a non-negative decimal string with at most 8 decimals"),
    ('[risk]\nmax_position = { BTCUSDT = 0.5 }\n' + STRATEGY, "risk.max_position.BTCUSDT must be a quoted decimal string"),
    ('[data]\nbar_intervals = ["1m", "7m"]\n', "data.bar_intervals[1] must be one of '1s', '1m'"),
    (STRATEGY.replace('"ema_cross"', '"ema_cross"\ntimeframe = "2m"'), "strategies[0].timeframe must be one of '1s'"),
    ('[[strategies]]\nid = "bad id"\nclass = "x"\nsymbols = ["BTCUSDT"]\n',
     "strategies[0].id must be 1-32 letters, digits, '-' or '_', got 'bad id'"),
    ('[[strategies]]\nclass = "x"\nsymbols = ["BTCUSDT"]\n', "strategies[0].id is required"),
    (STRATEGY.replace('["BTCUSDT"]', "[]"), "strategies[0].symbols must not be empty"),
    ('[node]\nsymbols = ["btcusdt"]\n', "node.symbols[0] must be an uppercase Binance symbol like 'BTCUSDT', got 'btcusdt'"),
    ("config_version = 2\n", "config_version must be one of 1, got 2"),
    ("node = 3\n", "node must be a table ([node]), got 3"),
    ("[binance]\nrecv_window_ms = 90000\n", "binance.recv_window_ms must be within (0, 60000] (Binance's maximum), got 90000"),
    ('[binance]\nvenue = "moon"\n', "binance.venue 'moon' is unknown"),
    ('[binance]\nrequest_timeout_s = "10"\n', "binance.request_timeout_s must be a finite number, got '10'"),
    ("[binance]\nreconnect_initial_s = 60.0\n", "binance.reconnect_initial_s must not exceed binance.reconnect_max_s"),
])
def test_bad_value_then_one_error_naming_the_key_path(text, expected):
    [error] = errors_of(text)
    assert error.startswith(expected)


def test_all_errors_are_reported_together():
    text = """
    colour = "blue"
    [node]
    mode = "papr"
    heartbeat_s = 0
    [binance]
    recv_window_ms = 90000
    reconnect_jitter = 2.0
    api_key = "x"
    [risk]
    max_order_notional = 10.5
    max_open_orders = -1
    [data]
    bar_intervals = ["7m"]
    [[strategies]]
    id = "a"
    class = "ema_cross"
    symbols = ["BTCUSDT"]
    [[strategies]]
    id = "a"
    class = "rsi_reversion"
    symbols = ["ETHUSDT"]
    """
    errors = errors_of(text, env={"ABIDANCE__EXECUTION__MAX_SLIPPAGE_BPS": "-3"})
    paths = [e.split(" ")[0] for e in errors]
    assert sorted(paths) == sorted([
        "colour", "node.mode", "node.heartbeat_s", "binance.recv_window_ms", "binance.reconnect_jitter",
        "binance.api_key", "risk.max_order_notional", "risk.max_open_orders", "data.bar_intervals[0]",
        "strategies[1].id", "execution.max_slippage_bps"])
