"""The regime_switch strategy: only the strategies its regime enables may trade."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from abidance.backtest.data import bars_from_frame
from abidance.backtest.engine import sim_instruments
from abidance.core.clock import TestClock
from abidance.ml.regime import RegimeModel, features_from_bars
from abidance.strategy.base import StrategyContext
from abidance.strategy.loader import load_strategy_class
from abidance.strategy.builtin.ema_cross import EmaCross
from abidance.ml.regime_switch import RegimeSwitch
from abidance.strategy.builtin.rsi_reversion import RsiReversion
from tests.kit import shared_data

SYMBOL = "ETHBTC"


@pytest.fixture(scope="module")
def bars():
    frame = pd.read_feather(shared_data("market", "ETH_BTC-5m.feather")).iloc[:3000]
    return bars_from_frame(frame, SYMBOL, "5m", sim_instruments()[SYMBOL])


@pytest.fixture(scope="module")
def model_path(bars, tmp_path_factory):
    path = tmp_path_factory.mktemp("regime") / "regime.joblib"
    RegimeModel(3, "kmeans", seed=0).fit_bars(bars).save(path)
    return path


@pytest.fixture(scope="module")
def regimes(bars, model_path):
    """The regime of every bar, from the batch path (None while warming up)."""
    labels = RegimeModel.load(model_path).predict(features_from_bars(bars))
    return [None if r < 0 else int(r) for r in labels]


class Book:
    """A portfolio stand-in that fills every signal at once (enough to exercise exits)."""

    def __init__(self):
        self.held = Decimal(0)

    def position(self, symbol, strategy_id=None):
        return self.held

    tradable_position = position


def run(strategy, bars, portfolio=None):
    """Feed the bars; returns [(bar index, Signal)] as the strategy emitted them."""
    out, clock, index = [], TestClock(0), [0]

    def emit(_s, signal):
        out.append((index[0], signal))
        if portfolio is not None:
            portfolio.held = Decimal(1) if signal.side == "BUY" else Decimal(0)

    strategy._abd_ctx = StrategyContext(emit, clock, portfolio, {}, {SYMBOL: 1e-5})
    strategy.on_start()
    for i, bar in enumerate(bars):
        index[0] = i
        clock.advance_to(bar.close_time)
        strategy.on_bar(bar)
    return out


def test_registered_as_a_builtin():
    assert load_strategy_class("regime_switch") is RegimeSwitch


def test_only_strategies_enabled_in_the_bars_regime_emit_with_weighted_confidence(bars, model_path, regimes):
    mapping = {0: {"rsi_reversion": 1.0}, 1: {"ema_cross": 0.5}, 2: {}}
    host = RegimeSwitch("rs", [SYMBOL], {"model_path": str(model_path), "regimes": "0:rsi_reversion,1:ema_cross@0.5,2:"},
                        "5m")
    got = [(i, s.side, s.confidence, s.reason, s.strategy_id) for i, s in run(host, bars)]
    # The same strategies run alone: every signal they would have sent, bar by bar.
    raw = {"ema_cross": run(EmaCross("rs", [SYMBOL], {}, "5m"), bars),
           "rsi_reversion": run(RsiReversion("rs", [SYMBOL], {}, "5m"), bars)}
    expected, blocked = [], {"ema_cross": 0, "rsi_reversion": 0}
    for name in ("ema_cross", "rsi_reversion"):           # the host forwards bars in this order
        for i, s in raw[name]:
            weight = mapping.get(regimes[i], {}).get(name, 0.0)
            if weight:
                expected.append((i, s.side, s.confidence * weight, f"regime {regimes[i]}: {name}: {s.reason}", "rs"))
            else:
                blocked[name] += 1
    expected.sort(key=lambda e: (e[0], e[3].split(": ")[1]))
    assert got == expected
    assert all(blocked.values()) and len(got) > 10     # both were held back, both traded
    assert host.passed == len(got) and host.blocked == sum(blocked.values())
    assert host.regime_changes > 10


def test_the_strategy_that_opened_a_position_may_close_it_in_any_regime(bars, model_path, regimes):
    enabled = {0: {"rsi_reversion"}, 1: {"ema_cross"}, 2: set()}
    host = RegimeSwitch("rs", [SYMBOL], {"model_path": str(model_path), "regimes": "0:rsi_reversion,1:ema_cross,2:"},
                        "5m")
    owner, owner_exits = None, 0
    for i, s in run(host, bars, Book()):
        name = s.reason.split(": ")[1]
        if s.side == "BUY":
            assert name in enabled[regimes[i]]
            owner = name
        else:
            assert name in enabled[regimes[i]] or name == owner
            owner_exits += name not in enabled[regimes[i]]
    assert owner_exits > 0


def test_exit_on_disable_sells_when_the_regime_turns_the_owner_off(bars, model_path, regimes):
    enabled = {None: set(), 0: {"rsi_reversion"}, 1: {"ema_cross"}, 2: set()}
    host = RegimeSwitch("rs", [SYMBOL], {"model_path": str(model_path), "regimes": "0:rsi_reversion,1:ema_cross,2:",
                                         "exit_on_disable": True}, "5m")
    owner, forced = None, 0
    for i, s in run(host, bars, Book()):
        if s.side == "BUY":
            owner = s.reason.split(": ")[1]
        elif s.reason.endswith("disabled, exit"):
            forced += 1
            assert regimes[i] != regimes[i - 1] and owner not in enabled[regimes[i]]
            assert s.confidence == 1.0
    assert forced > 0


def test_nothing_trades_before_trade_from_ns_and_the_rest_is_unchanged(bars, model_path):
    params = {"model_path": str(model_path), "regimes": "0:rsi_reversion,1:ema_cross,2:"}
    full = run(RegimeSwitch("rs", [SYMBOL], params, "5m"), bars)
    start = bars[1500].close_time
    late = run(RegimeSwitch("rs", [SYMBOL], {**params, "trade_from_ns": start}, "5m"), bars)
    assert late and all(i >= 1500 for i, _ in late)
    assert [(i, s.reason) for i, s in late] == [(i, s.reason) for i, s in full if i >= 1500]


def test_static_mix_needs_no_model_and_passes_everything(bars):
    host = RegimeSwitch("rs", [SYMBOL], {"regimes": "*:ema_cross+rsi_reversion",
                                         "hosted_params": "ema_cross.fast=8,ema_cross.slow=30"}, "5m")
    got = run(host, bars)
    alone = run(EmaCross("rs", [SYMBOL], {"fast": 8, "slow": 30}, "5m"), bars) + \
        run(RsiReversion("rs", [SYMBOL], {}, "5m"), bars)
    assert host.blocked == 0 and len(got) == len(alone) > 0
    assert all(s.reason.startswith("regime warm-up: ") for _, s in got)


@pytest.mark.parametrize("regimes, problem", [
    ("", "regimes is empty"),
    ("0:ema_cross,1", "entry '1' has no ':'"),
    ("x:ema_cross", "regime 'x' in 'x:ema_cross' must be a whole number >= 0 or '*'"),
    ("-1:ema_cross", "regime '-1' in '-1:ema_cross' must be a whole number"),
    ("0:ema_cross,0:rsi_reversion", "regime 0 is listed twice"),
    ("0:foo", "unknown strategy 'foo' in regime 0 (hostable: "),
    ("0:regime_switch", "unknown strategy 'regime_switch' in regime 0"),
    ("1:ema_cross@2", "weight '2' of ema_cross in regime 1 must be a number in (0, 1]"),
    ("1:ema_cross@0", "weight '0' of ema_cross in regime 1"),
    ("1:ema_cross@x", "weight 'x' of ema_cross in regime 1"),
    ("*:ema_cross+ema_cross", "ema_cross is listed twice in regime *"),
])
def test_bad_mapping_strings_are_refused_naming_the_problem(regimes, problem):
    with pytest.raises(ValueError) as err:
        RegimeSwitch("rs", [SYMBOL], {"model_path": "m.joblib", "regimes": regimes}, "5m")
    assert str(err.value).startswith("strategies.rs.params.regimes")
    assert problem in str(err.value)


@pytest.mark.parametrize("hosted, problem", [
    ("ema_cross.fast", "'ema_cross.fast' must look like STRATEGY.PARAM=VALUE"),
    ("fast=3", "'fast=3' must look like STRATEGY.PARAM=VALUE"),
    ("bollinger_breakout.period=3", "names 'bollinger_breakout', which regimes does not host"),
    ("ema_cross.nope=3", "hosted_params.ema_cross.nope is not a parameter of EmaCross"),
    ("ema_cross.fast=abc", "hosted_params.ema_cross.fast must be int, got 'abc'"),
    ("rsi_reversion.oversold=0.5", "hosted_params.rsi_reversion.oversold must be within [1.0, 49.0]"),
])
def test_bad_hosted_params_are_refused_naming_the_problem(hosted, problem):
    with pytest.raises(ValueError, match="strategies.rs.params.hosted_params") as err:
        RegimeSwitch("rs", [SYMBOL], {"model_path": "m.joblib", "regimes": "0:ema_cross,1:rsi_reversion",
                                      "hosted_params": hosted}, "5m")
    assert problem in str(err.value)


def test_model_problems_are_refused_at_start(model_path, tmp_path):
    with pytest.raises(ValueError, match="params.model_path is required: regimes names numbered regimes"):
        RegimeSwitch("rs", [SYMBOL], {"regimes": "0:ema_cross,*:"}, "5m")
    digest = Path(f"{model_path}.sha256").read_text().strip()
    cases = [({"regimes": "0:ema_cross,5:rsi_reversion,*:"}, "regime 5 is not a regime of the model (it has 3"),
             ({"regimes": "0:ema_cross,1:"}, "regime 2 of the model is not mapped"),
             ({"regimes": "0:ema_cross,*:", "model_sha256": "ab" * 32}, f"refused: its sha256 is {digest}, expected"),
             ({"regimes": "0:ema_cross,*:", "model_path": str(tmp_path / "nope.joblib")}, "does not exist")]
    for params, problem in cases:
        host = RegimeSwitch("rs", [SYMBOL], {"model_path": str(model_path), **params}, "5m")
        host._abd_ctx = StrategyContext(lambda *a: None, TestClock(0), None, {}, {SYMBOL: 1e-5})
        with pytest.raises(ValueError) as err:
            host.on_start()
        assert problem in str(err.value)
    host = RegimeSwitch("rs", [SYMBOL], {"model_path": str(model_path), "regimes": "*:ema_cross",
                                         "hosted_params": "ema_cross.fast=30,ema_cross.slow=20"}, "5m")
    host._abd_ctx = StrategyContext(lambda *a: None, TestClock(0), None, {}, {SYMBOL: 1e-5})
    with pytest.raises(ValueError, match="hosted ema_cross refused to start: .*fast .30. must be below slow .20."):
        host.on_start()


def test_through_the_config_a_bad_mapping_fails_when_the_node_builds_its_strategies(tmp_path):
    from abidance.config import parse_config
    from abidance.runtime.node import build_strategies

    cfg = parse_config("""
config_version = 1
[risk]
quote_asset = "BTC"
[[strategies]]
id = "adaptive"
class = "regime_switch"
symbols = ["ETHBTC"]
timeframe = "5m"
params = { model_path = "m.joblib", regimes = "0:ema_cross,1:macd" }
""", tmp_path, env={})
    with pytest.raises(ValueError, match=r"strategies.adaptive.params.regimes: unknown strategy 'macd' in regime 1"):
        build_strategies(cfg)
