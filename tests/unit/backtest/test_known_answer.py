"""A backtest with a hand-computed result: orders, fees and final equity to the unit."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from abidance.backtest.engine import run_backtest
from abidance.core.events import Bar
from tests.unit.backtest.kit import bar, config


def test_buy_then_sell_matches_the_hand_computed_result(tmp_path):
    bars = [bar(0, "100", "101", "99", "100"),      # signal BUY at this close
            bar(1, "100", "105", "99", "104"),      # BUY fills at this open: 10 BTC for 1000 USDT
            bar(2, "104", "111", "103", "110"),     # signal SELL at this close
            bar(3, "110", "112", "108", "109"),     # SELL fills at this open: 9.99 BTC at 110
            bar(4, "109", "109", "109", "109")]
    result = asyncio.run(run_backtest(config(tmp_path), {"BTCUSDT": bars}, balances={"USDT": Decimal("10000")}))

    buys = [f for f in result.fills if f.side == "BUY"]
    sells = [f for f in result.fills if f.side == "SELL"]
    assert [(f.quantity, f.price, f.commission, f.commission_asset) for f in buys] == [
        (Decimal("10.00000"), Decimal("100.00"), Decimal("0.01000000"), "BTC")]       # 0.1 % of 10 BTC
    assert [(f.quantity, f.price, f.commission, f.commission_asset) for f in sells] == [
        (Decimal("9.99000"), Decimal("110.00"), Decimal("1.09890000"), "USDT")]       # 0.1 % of 1098.9
    assert buys[0].ts_event == bars[1].open_time and sells[0].ts_event == bars[3].open_time   # no look-ahead
    # 10000 - 1000 + 9.99 * 110 - 1.0989 = 10097.8011 USDT, and no BTC left.
    assert result.balances["USDT"] == Decimal("10097.8011")
    assert result.balances.get("BTC", Decimal(0)) == 0
    assert result.final_equity == Decimal("10097.8011")
    assert [o.status for o in result.orders if o.status in ("FILLED",)] == ["FILLED", "FILLED"]
    assert [d.reason for d in result.decisions] == ["ACCEPTED", "ACCEPTED"]
    assert result.bars == 5 and len(result.equity) == 5


def test_volume_participation_splits_a_fill_over_bars_and_latency_delays_it(tmp_path):
    # Bar volume is 3 BTC (300000 steps); 50 % participation fills at most 1.5 BTC a bar.
    def vbar(i, price):
        b = bar(i, price, price, price, price)
        return Bar(b.symbol, b.interval, b.open_time, b.close_time, b.open, b.high, b.low, b.close, 300_000, 1)

    bars = [vbar(i, "100") for i in range(12)]
    result = asyncio.run(run_backtest(config(tmp_path), {"BTCUSDT": bars}, balances={"USDT": Decimal("10000")},
                                      participation=Decimal("0.5"), latency_ms=90_000))
    buys = [f for f in result.fills if f.side == "BUY"]
    assert [f.quantity for f in buys] == [Decimal("1.50000")] * 6 + [Decimal("1.00000")]   # 10 BTC in 7 bars
    # Sent at bar 0's close (T0 + 60 s); with 90 s latency it can reach only bars opening at or after
    # T0 + 150 s: bars 1 (T0 + 60 s) and 2 (T0 + 120 s) are skipped, the first fill is in bar 3.
    assert buys[0].ts_event == bars[3].open_time
    statuses = [o.status for o in result.orders if o.side == "BUY"]
    assert "PARTIALLY_FILLED" in statuses and statuses[-1] == "FILLED"


FIVE_BARS = [("100", "101", "99", "100"), ("100", "105", "99", "104"), ("104", "111", "103", "110"),
             ("110", "112", "108", "109"), ("109", "109", "109", "109")]


def test_fees_per_instrument_come_from_the_config(tmp_path):
    bars = [bar(i, *p) for i, p in enumerate(FIVE_BARS)]
    cfg = config(tmp_path, '[backtest]\ntaker_bps = "10"\ntaker_bps_by_symbol = { BTCUSDT = "25" }')
    result = asyncio.run(run_backtest(cfg, {"BTCUSDT": bars}, balances={"USDT": Decimal("10000")}))
    buy, sell = result.fills
    assert (buy.quantity, buy.commission, buy.commission_asset) == (Decimal("10.00000"), Decimal("0.025"), "BTC")
    # 9.975 BTC left, sold in whole steps at 110, 0.25 % fee in USDT.
    assert (sell.quantity, sell.commission) == (Decimal("9.97500"), Decimal("2.7431250"))
    assert result.final_equity == Decimal("10000") - 1000 + Decimal("9.975") * 110 - Decimal("2.743125")
    # A keyword on top of the config wins over it (the CLI's flags do this).
    zero = asyncio.run(run_backtest(cfg, {"BTCUSDT": bars}, balances={"USDT": Decimal("10000")},
                                    taker_by_symbol={}, taker_bps=Decimal(0)))
    assert [f.commission for f in zero.fills] == [0, 0]
    assert zero.final_equity == Decimal("10100")


def test_a_bad_fill_model_is_refused_naming_the_setting(tmp_path):
    import pytest

    from abidance.exchange.backtest.venue import FillModel
    from abidance.config import ConfigError

    with pytest.raises(ValueError, match="participation must be within"):
        FillModel(participation=Decimal("1.5"))
    with pytest.raises(ValueError, match=r"taker_by_symbol.BTCUSDT must be a finite decimal >= 0"):
        FillModel(taker_by_symbol={"BTCUSDT": Decimal("NaN")})
    with pytest.raises(TypeError, match="unknown fill model setting 'fee'"):
        FillModel.from_config(config(tmp_path).backtest, fee=1)
    with pytest.raises(ConfigError, match="backtest.participation"):
        config(tmp_path, '[backtest]\nparticipation = "2"')
