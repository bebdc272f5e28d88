"""The look-ahead check passes an honest strategy and flags one whose past depends on the future."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pandas as pd

from abidance.backtest.data import bars_from_frame
from abidance.backtest.engine import sim_instruments
from abidance.backtest.lookahead import lookahead_check
from abidance.config import parse_config
from tests.kit import shared_data
from tests.unit.backtest.kit import research_risk

LEAKY = '''
import os

from abidance.strategy import Strategy

# Kept outside the strategy's own state, across runs (like a disk cache of indicators
# computed over the whole file): a leak of future information into later runs.
BEST = os.__dict__.setdefault("_abidance_test_leak", {})


class Leaky(Strategy):
    def on_bar(self, bar):
        top = BEST.get(bar.symbol, 0)
        BEST[bar.symbol] = max(top, bar.close)
        if top and bar.close * 1000 >= top * 995 and self.position(bar.symbol) == 0:
            self.buy(bar.symbol, 1.0, reason="near the data set's top")
        elif self.position(bar.symbol) > 0 and bar.close * 1000 < top * 985:  # noqa
            self.sell(bar.symbol, 1.0)
'''


def config(tmp_path, cls: str, params: str = ""):
    return parse_config(f"""
config_version = 1
[node]
mode = "live"
strategies_dir = "{tmp_path}"
{research_risk()}[[strategies]]
id = "s"
class = "{cls}"
symbols = ["ETHBTC"]
timeframe = "5m"
{params}
""", tmp_path, env={})


def bars():
    frame = pd.read_feather(shared_data("market", "ETH_BTC-5m.feather")).iloc[:1500]
    return {"ETHBTC": bars_from_frame(frame, "ETHBTC", "5m", sim_instruments()["ETHBTC"])}


def test_an_honest_strategy_passes(tmp_path):
    cfg = config(tmp_path, "ema_cross", "params = { fast = 5, slow = 12 }")
    assert asyncio.run(lookahead_check(cfg, bars(), cuts=3, balances={"BTC": Decimal("1")})) == []


def test_a_strategy_that_uses_future_data_is_flagged(tmp_path):
    import os

    os.__dict__.pop("_abidance_test_leak", None)
    (tmp_path / "leaky.py").write_text(LEAKY)
    cfg = config(tmp_path, "leaky:Leaky")
    changed = asyncio.run(lookahead_check(cfg, bars(), cuts=3, balances={"BTC": Decimal("1")}))
    os.__dict__.pop("_abidance_test_leak", None)
    assert changed and all(c.ts_event <= c.cut_ns for c in changed)
