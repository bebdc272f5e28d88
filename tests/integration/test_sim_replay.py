"""The simulator replays real recorded candles: history over REST, then the live path."""

from __future__ import annotations

import time
from decimal import Decimal

import pandas as pd

from abidance.exchange.sim.config import MarketConfig, SimConfig
from tests.integration.conftest import RunningSim
from tests.integration.sim_kit import call
from tests.kit import shared_data


def test_candle_replay_serves_real_history_and_trades_along_the_real_path():
    path = shared_data("market", "ETH_BTC-5m.feather")
    frame = pd.read_feather(path)
    sim = RunningSim(SimConfig(seed=4, speed=600.0, markets=[MarketConfig("ETHBTC", "candles", str(path))]))
    try:
        status, bars, _ = call(sim, "GET", "/api/v3/klines", {"symbol": "ETHBTC", "interval": "5m", "limit": 5},
                               key=None)
        assert status == 200 and len(bars) == 5
        first_ms = int(frame["date"].iloc[0].timestamp() * 1000)
        # History bars are the recorded ones, on the symbol's tick grid.
        by_time = {int(d.timestamp() * 1000): row for d, row in zip(frame["date"], frame.itertuples())}
        for bar in bars[:-1]:
            if bar[0] in by_time:
                rec = by_time[bar[0]]
                assert abs(Decimal(bar[4]) - Decimal(repr(rec.close))) <= Decimal("0.00001")
        assert bars[0][0] >= first_ms
        assert sum(bar[0] in by_time for bar in bars[:-1]) >= 3
        time.sleep(1.0)
        status, trades, _ = call(sim, "GET", "/api/v3/trades", {"symbol": "ETHBTC", "limit": 50}, key=None)
        assert status == 200 and trades, "the replay prints trades"
        server_time = sim.server.venue.clock.now_ms()
        assert first_ms < server_time < int(frame["date"].iloc[-1].timestamp() * 1000) + 300_000
    finally:
        sim.close()
