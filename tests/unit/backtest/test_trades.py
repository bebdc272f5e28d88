"""Backtests fed by trades: the node's DataEngine builds the bars, orders fill at the next trade."""

from __future__ import annotations

from decimal import Decimal

import pandas as pd
import pytest

from abidance._core.wire import trade_event
from abidance.backtest.data import BarSeries, trades_from_frame
from abidance.backtest.engine import Backtest, sim_instruments
from abidance.exchange.backtest.venue import BacktestVenue, FillModel
from abidance.config import parse_config
from abidance.core import topics
from abidance.core.bus import MessageBus
from abidance.core.clock import TestClock
from abidance.data.bars import BarAggregator
from tests.kit import shared_data
from tests.unit.backtest.kit import research_risk

CONFIG = """
config_version = 1
[node]
mode = "live"
""" + research_risk("ETH", "0.5") + """[[strategies]]
id = "ema"
class = "ema_cross"
symbols = ["XRPETH"]
timeframe = "1m"
params = { fast = 3, slow = 8 }
"""


@pytest.fixture(scope="module")
def xrp_trades():
    frame = pd.read_feather(shared_data("market", "XRP_ETH-trades.feather"))
    instruments = sim_instruments()
    return trades_from_frame(frame, "XRPETH", instruments["XRPETH"]), instruments


def test_recorded_trades_drive_the_engines_and_fill_at_the_next_trade(tmp_path, xrp_trades):
    trades, instruments = xrp_trades
    cfg = parse_config(CONFIG, tmp_path, env={})
    bars_seen = []
    bt = Backtest(cfg, trades={"XRPETH": trades}, instruments=instruments, balances={"ETH": Decimal("10")},
                  on_bus=lambda bus: bus.subscribe(topics.BARS, bars_seen.append))
    result = bt.run()
    assert result.trades == len(trades) > 10_000
    # The bars the engines saw are exactly the ones an aggregator builds from the same trades.
    clock, expected = TestClock(trades[0].ts_trade), []
    agg = BarAggregator("XRPETH", "1m", clock, expected.append)
    for t in trades:
        clock.advance_to(max(clock.time_ns(), t.ts_trade))
        agg.on_trade(t)
    assert [b for b in bars_seen if b.interval == "1m"][: len(expected)] == expected
    assert len(expected) > 100
    # Every order fills at the price of a trade printed after the decision, never the same one.
    by_time = {}
    for t in trades:
        by_time.setdefault(t.ts_trade, set()).add(t.price)
    decided = {d.client_order_id: d.ts_event for d in result.decisions if d.accepted}
    assert len(result.fills) >= 4
    tick = instruments["XRPETH"].filters.price_fp.increment
    for f in result.fills:
        assert f.ts_event >= decided[f.client_order_id]
        assert f.price / tick in by_time[f.ts_event]
    # One curve point per closed bar of the strategy's timeframe.
    assert len(result.equity) == result.bars == len([b for b in bars_seen if b.interval == "1m"])


def test_a_limit_fills_only_when_a_later_trade_goes_through_it():
    from abidance.execution.orders import Order

    instruments = sim_instruments()
    bus, clock = MessageBus(), TestClock(1_000)
    updates = []
    bus.subscribe(topics.ORDER_UPDATES, updates.append)
    venue = BacktestVenue(bus, clock, {"XRPETH": instruments["XRPETH"]}, FillModel(maker_bps=Decimal(0)),
                          {"ETH": Decimal(1)}, source="trades")
    t = lambda i, price, qty=100: trade_event("XRPETH", i, price, qty, False, 1_000 + i)   # noqa: E731
    venue.on_trade(t(1, 14_000))
    order = Order(client_order_id="c1", strategy_id="s", symbol="XRPETH", side="BUY", order_type="LIMIT",
                  quantity=50, price=13_990, time_in_force="GTC", ts_init=1_000)
    import asyncio

    asyncio.run(venue.submit(order))
    venue.on_trade(t(1, 13_000))          # the same trade id again (a replay): not after the order
    venue.on_trade(t(2, 14_000))          # above the limit: nothing
    venue.on_trade(t(3, 13_990))          # at the limit, not first: the queue ahead is unknown
    assert updates == []
    venue.on_trade(t(4, 13_980))          # through it: filled at the limit, as a maker
    [u] = updates
    assert (u.last_price, u.is_maker, u.commission, u.status) == (Decimal("0.0013990"), True, Decimal(0), "FILLED")
    with pytest.raises(ValueError, match="price and quantity must be > 0"):
        trade_event("XRPETH", 5, 0, 1, False, 0)


def test_on_data_with_a_gap_trade_mode_emits_the_empty_bars_live_would_and_bar_mode_has_only_the_file_rows(
        tmp_path):
    """The documented difference (docs/backtest.md, "Gaps"): from trades the data engine closes a bar
    on time even when no trade printed in it (previous close, volume 0: what the live node and
    Binance's klines do); candles have only the rows in the file, so a missing hour is no bar."""
    inst = sim_instruments()["XRPETH"]
    t0 = 1_700_000_040 * 1_000_000_000 // 60_000_000_000 * 60_000_000_000
    minutes = [*range(0, 10), *range(15, 25)]                  # minutes 10-14: no trade
    trades = [trade_event("XRPETH", i, 9000 + (m % 7), 10, False, t0 + m * 60_000_000_000 + 1_000)
              for i, m in enumerate(minutes)]
    cfg = parse_config(CONFIG, tmp_path, env={})

    def bars_seen(**data) -> list:
        seen = []
        Backtest(cfg, instruments=sim_instruments(), balances={"ETH": Decimal("10")},
                 on_bus=lambda bus: bus.subscribe(topics.BARS, seen.append), **data).run()
        return [b for b in seen if b.interval == "1m"]

    from_trades = bars_seen(trades={"XRPETH": trades})
    empty = [b for b in from_trades if b.trades == 0]
    assert [(b.open_time - t0) // 60_000_000_000 for b in empty] == [10, 11, 12, 13, 14]
    assert {(b.open, b.high, b.low, b.close, b.volume) for b in empty} == {(9002, 9002, 9002, 9002, 0)}
    rows = [b for b in from_trades if b.trades]                 # the candle file a recorder would write
    from_candles = bars_seen(bars_by_symbol={"XRPETH": BarSeries(rows)})
    assert len(from_candles) == len(from_trades) - 5
    assert [(b.open_time, b.close) for b in from_candles] == [(b.open_time, b.close) for b in rows]
