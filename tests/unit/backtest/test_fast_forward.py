"""The compiled fast path decides exactly as the Python strategy, and the cheap equity curve
equals the portfolio's own valuation on every bar."""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from abidance._core.barloop import Action, BarKernel, EmaCrossKernel, run_until_action
from abidance._core.indicators import EMA
from abidance.backtest.data import BarSeries, bars_from_frame
from abidance.backtest.engine import Backtest, sim_instruments
from abidance.config import parse_config
from abidance.core import topics
from tests.kit import shared_data

CONFIG = """
config_version = 1
[node]
mode = "live"
[risk]
quote_asset = "BTC"
max_order_notional = "0"
max_gross_exposure = "0"
daily_loss_limit = "0"
max_drawdown = "{max_drawdown}"
price_band_bps = 0
sizing = "fixed_quote"
fixed_quote = "0.1"
min_confidence = 0.0
[[strategies]]
id = "ema"
class = "{cls}"
symbols = ["ETHBTC"]
timeframe = "5m"
params = {{ fast = {fast}, slow = {slow} }}
"""


@pytest.fixture(scope="module")
def eth_bars():
    frame = pd.read_feather(shared_data("market", "ETH_BTC-5m.feather"))
    instruments = sim_instruments()
    return bars_from_frame(frame, "ETHBTC", "5m", instruments["ETHBTC"]), instruments


def run(tmp_path, bars, instruments, cls, fast=12, slow=26, max_drawdown="0", on_bus=None):
    cfg = parse_config(CONFIG.format(cls=cls, fast=fast, slow=slow, max_drawdown=max_drawdown), tmp_path, env={})
    bt = Backtest(cfg, {"ETHBTC": bars}, instruments=instruments, balances={"BTC": Decimal("1")}, on_bus=on_bus)
    steps = 0
    bt.start()
    while bt.step() is not None:
        steps += 1
    return bt.finish(), steps


def fills(result):
    return [(f.side, f.quantity, f.price, f.commission, f.ts_event) for f in result.fills]


@pytest.mark.parametrize("fast, slow", [(12, 26), (50, 200)])
def test_compiled_strategy_trades_exactly_as_the_python_one(tmp_path, eth_bars, fast, slow):
    bars, instruments = eth_bars
    py, py_steps = run(tmp_path, bars, instruments, "ema_cross", fast, slow)
    c, c_steps = run(tmp_path, bars, instruments, "ema_cross_c", fast, slow)
    assert len(py.fills) > 10
    assert fills(c) == fills(py)
    assert [(d.side, d.quantity, d.reason, d.confidence) for d in c.decisions] == \
        [(d.side, d.quantity, d.reason, d.confidence) for d in py.decisions]
    assert c.final_equity == py.final_equity and c.balances == py.balances
    assert c.bars == py.bars == py_steps == len(bars)
    assert list(c.equity.equity) == list(py.equity.equity)
    # The fast path really ran: the engines saw only a few bars one by one.
    assert c_steps < len(bars) / 3


def test_fast_path_stands_aside_when_every_bar_must_be_valued(tmp_path, eth_bars):
    # A drawdown breaker needs the account valued on every bar: the engines see every bar.
    bars, instruments = eth_bars
    c, steps = run(tmp_path, bars, instruments, "ema_cross_c", max_drawdown="0.9")
    py, _ = run(tmp_path, bars, instruments, "ema_cross", max_drawdown="0.9")
    assert steps == len(bars)
    assert fills(c) == fills(py)


def test_the_equity_curve_equals_the_portfolios_valuation_on_every_bar(tmp_path, eth_bars):
    bars, instruments = eth_bars
    snapshots = []
    result, _ = run(tmp_path, bars, instruments, "ema_cross", max_drawdown="0.9",
                    on_bus=lambda bus: bus.subscribe(topics.EQUITY, snapshots.append))
    per_bar = {p.ts_event: p for p in snapshots}     # the per-bar snapshot (daily ones share a time)
    assert len(result.equity) == len(bars)
    held = 0
    for point in result.equity:
        snap = per_bar[point.ts_event]
        assert (point.equity, point.cash, point.positions_value) == (snap.equity, snap.cash, snap.positions_value)
        held += point.positions_value != 0
    assert held > len(bars) // 10          # the comparison covered bars with a position
    assert result.equity[-1].equity == result.final_equity
    frame = result.equity.frame()
    assert list(frame.equity) == list(result.equity.equity)
    peak = frame.equity.cummax()
    assert list(frame.drawdown) == list(peak - frame.equity)


def test_kernel_matches_the_python_rule_on_a_random_walk():
    rng = np.random.default_rng(3)
    closes = np.round(10_000 * np.exp(np.cumsum(rng.normal(0, 0.002, 3000)))).astype(np.int64)
    kernel = EmaCrossKernel(5, 13, 0.01)
    fast, slow, above, expected = EMA(5), EMA(13), None, []
    for c in closes:
        f, s = fast.update(c * 0.01), slow.update(c * 0.01)
        action = 0
        if slow.ready:
            gap = (f - s) / s * 1e4
            was, above = above, gap > 0
            if was is not None and above != was:
                action = Action.BUY if above else Action.SELL
        expected.append(action)
    got = [kernel.on_bar(int(c), int(c), int(c), int(c), 1) for c in closes]
    assert got == expected and sum(1 for a in got if a) > 20


def test_run_until_action_stops_at_each_action_and_checks_bounds():
    rng = np.random.default_rng(5)
    c = np.round(10_000 * np.exp(np.cumsum(rng.normal(0, 0.002, 2000)))).astype(np.int64)
    one_by_one = EmaCrossKernel(5, 13, 0.01)
    acted = [i for i, x in enumerate(c) if one_by_one.on_bar(int(x), int(x), int(x), int(x), 1)]
    batched, i, found = EmaCrossKernel(5, 13, 0.01), 0, []
    while True:
        j = run_until_action(batched, c, c, c, c, c, i, len(c))
        if j == len(c):
            assert batched.action == 0
            break
        assert batched.action in (Action.BUY, Action.SELL)
        found.append(j)
        i = j + 1
    assert found == acted
    with pytest.raises(IndexError, match=r"bars \[0, 2001\) outside 0..2000"):
        run_until_action(batched, c, c, c, c, c, 0, 2001)
    assert run_until_action(BarKernel(), c, c, c, c, c, 0, len(c)) == len(c)     # the base never acts
    with pytest.raises(ValueError, match="fast"):
        EmaCrossKernel(26, 12, 0.01)
    with pytest.raises(ValueError, match="tick"):
        EmaCrossKernel(5, 13, math.nan)


def test_bar_series_sorts_and_keeps_columns(eth_bars):
    bars, _ = eth_bars
    shuffled = BarSeries(list(reversed(bars[:100])))
    assert [b.open_time for b in shuffled] == [b.open_time for b in bars[:100]]
    assert list(shuffled.columns["close"]) == [b.close for b in bars[:100]]
