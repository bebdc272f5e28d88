"""The buy-and-hold baseline on the engine, and the research config every comparison runs with."""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal

import pandas as pd
import pytest

from abidance.backtest.baselines import BUY_AND_HOLD, buy_and_hold
from abidance.backtest.data import bars_from_frame
from abidance.backtest.engine import sim_instruments
from abidance.backtest.research_config import research_config
from tests.kit import shared_data


@pytest.fixture(scope="module")
def instruments():
    return sim_instruments()


def bars(instruments, symbol: str, name: str, n: int):
    frame = pd.read_feather(shared_data("market", f"{name}.feather")).iloc[:n]
    return bars_from_frame(frame, symbol, "5m", instruments[symbol])


def test_buy_and_hold_buys_at_the_second_open_by_the_venue_rules_and_holds(instruments):
    eth = bars(instruments, "ETHBTC", "ETH_BTC-5m", 100)
    result = buy_and_hold(research_config("BTC", 0.5), {"ETHBTC": eth}, instruments=instruments,
                          balances={"BTC": Decimal(1)}, taker_bps=Decimal(10), slippage_bps=Decimal(0))
    tick = instruments["ETHBTC"].filters.price_fp.increment
    step = instruments["ETHBTC"].filters.qty_fp.increment
    (fill,) = result.fills
    assert fill.strategy_id == BUY_AND_HOLD and fill.side == "BUY"
    assert fill.price == tick * eth[1].open and fill.ts_event == eth[1].open_time
    # Sized at the first close like any strategy's BUY: half the equity, whole steps, rounded down.
    steps = (Decimal("0.5") / (tick * eth[0].close) / step).to_integral_value(rounding=ROUND_DOWN)
    assert fill.quantity == steps * step
    assert fill.commission == (fill.quantity * Decimal("0.001")).quantize(Decimal("1e-8"))
    points = list(result.equity)
    cash = 1 - fill.quantity * fill.price
    assert points[0].equity == 1 and len(points) == len(eth)
    assert result.final_equity == points[-1].equity == cash + (fill.quantity - fill.commission) * tick * eth[-1].close


def test_buy_and_hold_buys_every_symbol_once_with_slippage(instruments):
    both = {"ETHBTC": bars(instruments, "ETHBTC", "ETH_BTC-5m", 60),
            "LTCBTC": bars(instruments, "LTCBTC", "LTC_BTC-5m", 60)}
    result = buy_and_hold(research_config("BTC", 0.45), both, instruments=instruments,
                          balances={"BTC": Decimal(1)}, taker_bps=Decimal(10), slippage_bps=Decimal(5))
    assert sorted(f.symbol for f in result.fills) == ["ETHBTC", "LTCBTC"]
    for f in result.fills:
        tick = instruments[f.symbol].filters.price_fp.increment
        open_ = both[f.symbol][1].open
        assert f.price == (tick * open_ * Decimal("1.0005")).quantize(tick)     # moved against the buy
    with pytest.raises(ValueError, match="the bars must share one interval"):
        buy_and_hold(research_config(), {"ETHBTC": []})


def test_research_config_turns_off_every_limit_but_the_exchange_filters():
    risk = research_config("ETH", 0.5).risk
    assert risk.quote_asset == "ETH" and risk.sizing == "fixed_fraction" and risk.fraction == 0.5
    # A KILL file in the working folder, rate limits or breakers must not decide a research result.
    assert risk.kill_switch_file is None
    assert (risk.max_open_orders, risk.orders_per_10s, risk.orders_per_day, risk.max_errors_per_minute) == (0, 0, 0, 0)
    assert risk.stale_data_s == 0 and risk.price_band_bps == 0
    with pytest.raises(ValueError, match="quote_asset must be an asset name"):
        research_config('BTC"\nmode = "live')
    with pytest.raises(ValueError, match="fraction must be a number"):
        research_config("BTC", "most")
    with pytest.raises(ValueError, match=r"risk.fraction must be within \(0, 1\]"):
        research_config("BTC", 1.5)
