"""The live engines over real recorded candles (ETH/BTC, 5 minutes, 20 days)."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import pandas as pd

from abidance.backtest.data import bars_from_frame
from abidance.backtest.engine import run_backtest, sim_instruments
from abidance.config import parse_config
from tests.kit import shared_data
from tests.unit.backtest.kit import research_risk


def test_ema_cross_over_real_eth_btc_candles(tmp_path):
    frame = pd.read_feather(shared_data("market", "ETH_BTC-5m.feather"))
    instruments = sim_instruments()
    bars = bars_from_frame(frame, "ETHBTC", "5m", instruments["ETHBTC"])
    cfg = parse_config("""
config_version = 1
[node]
mode = "live"
""" + research_risk() + """[[strategies]]
id = "ema"
class = "ema_cross"
symbols = ["ETHBTC"]
timeframe = "5m"
params = { fast = 12, slow = 26 }
""", tmp_path, env={})
    t0 = time.perf_counter()
    result = asyncio.run(run_backtest(cfg, {"ETHBTC": bars}, instruments=instruments,
                                      balances={"BTC": Decimal("1")}))
    elapsed = time.perf_counter() - t0
    assert result.bars == len(frame) == 5760
    buys = [f for f in result.fills if f.side == "BUY"]
    sells = [f for f in result.fills if f.side == "SELL"]
    assert len(buys) > 10 and len(sells) >= len(buys) - 1
    # Spot: never more sold than bought; cash never negative.
    assert sum(f.quantity for f in sells) <= sum(f.quantity for f in buys)
    assert all(p.cash >= 0 for p in result.equity)
    assert result.final_equity == result.equity[-1].equity
    assert elapsed < 20, f"{len(frame)} bars took {elapsed:.1f}s"
