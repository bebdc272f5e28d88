"""Pre-trade risk checks: one behaviour per reason code, boundaries, units, state moves.

Every test runs against the Cython classes and again against the pure-Python twin
(tests/twins/risk.py), except those marked @cython_only (FixedPoint views, messages).
"""

from __future__ import annotations

import json

import pytest

from abidance._core.risk import (
    REASON_MESSAGES,
    OrderSide,
    OrderType,
    PreTradeRisk,
    RiskLimits,
    RiskReason as R,
    SymbolFilters,
    TradingState,
    describe,
    quote_units,
)
from tests.kit import shared_data
from tests.twins import risk as twin

IMPLS = {
    "cython": {"PreTradeRisk": PreTradeRisk, "RiskLimits": RiskLimits, "SymbolFilters": SymbolFilters},
    "twin": {"PreTradeRisk": twin.PreTradeRiskTwin, "RiskLimits": twin.RiskLimitsTwin,
             "SymbolFilters": twin.SymbolFiltersTwin},
}


def cython_only(fn):
    fn.cython_only = True
    return fn


def pytest_generate_tests(metafunc):
    if "impl" in metafunc.fixturenames:
        cython_only_test = getattr(metafunc.function, "cython_only", False)
        metafunc.parametrize("impl", ["cython"] if cython_only_test else list(IMPLS), indirect=True)


@pytest.fixture(autouse=True)
def impl(request, monkeypatch):
    """Rebind the class names this module uses to one implementation."""
    for name, cls in IMPLS[request.param].items():
        monkeypatch.setitem(globals(), name, cls)
    return request.param

BUY, SELL = OrderSide.BUY, OrderSide.SELL
LIMIT, MARKET = OrderType.LIMIT, OrderType.MARKET
I64_MAX = 2**63 - 1
SEC = 1_000_000_000
T0 = 1_700_000_000 * SEC

# A symbol shaped like a current Binance entry, with round numbers:
# prices in 0.01 (100.00 -> 10000), quantities in 0.001 (1.0 -> 1000),
# notionals in 0.00001 quote (price * qty), limits in 1e-8 quote.
TOY = {
    "symbol": "TOYUSDT",
    "quoteAsset": "USDT",
    "baseAssetPrecision": 8,
    "quoteAssetPrecision": 8,
    "filters": [
        {"filterType": "PRICE_FILTER", "minPrice": "1.00", "maxPrice": "1000.00", "tickSize": "0.01"},
        {"filterType": "LOT_SIZE", "minQty": "0.001", "maxQty": "100.000", "stepSize": "0.001"},
        {"filterType": "MARKET_LOT_SIZE", "minQty": "0.010", "maxQty": "10.000", "stepSize": "0.010"},
        {"filterType": "NOTIONAL", "minNotional": "5.00", "maxNotional": "50000.00",
         "applyMinToMarket": True, "applyMaxToMarket": False, "avgPriceMins": 5},
        {"filterType": "PERCENT_PRICE_BY_SIDE", "bidMultiplierUp": "1.2", "bidMultiplierDown": "0.8",
         "askMultiplierUp": "1.25", "askMultiplierDown": "0.9", "avgPriceMins": 5},
        {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 3},
        {"filterType": "ICEBERG_PARTS", "limit": 10},
    ],
}
PX = 10_000      # 100.00
QTY = 1_000      # 1.000


def toy(**kw) -> SymbolFilters:
    return SymbolFilters.from_exchange_info(TOY, **kw)


def risk_with(limits: RiskLimits | None = None, filters: SymbolFilters | None = None,
              max_position: int = 0) -> tuple[PreTradeRisk, int]:
    risk = PreTradeRisk(limits or RiskLimits())
    return risk, risk.add_symbol(filters or toy(), max_position)


def check(risk, slot=0, side=BUY, order_type=LIMIT, price=PX, qty=QTY, mid=PX, avg=PX, ts=T0):
    return risk.check(slot, side, order_type, price, qty, mid, avg, ts)


def bare_filters(**kw) -> SymbolFilters:
    """Every Binance filter disabled; units 1 and 1 (notional unit 1 quote)."""
    return SymbolFilters(symbol="BARE", **kw)


# ---------------------------------------------------------------- units at the edge

def test_from_exchange_info_when_toy_symbol_then_units_exact():
    u = toy().units
    assert (u["min_price"], u["max_price"], u["tick"]) == (100, 100_000, 1)
    assert (u["min_qty"], u["max_qty"], u["step"]) == (1, 100_000, 1)
    assert (u["market_min_qty"], u["market_max_qty"], u["market_step"]) == (10, 10_000, 10)
    assert (u["min_notional"], u["max_notional"]) == (500_000, 5_000_000_000)
    assert (u["apply_min_to_market"], u["apply_max_to_market"]) == (True, False)
    assert (u["bid_up_e8"], u["bid_down_e8"]) == (120_000_000, 80_000_000)
    assert (u["ask_up_e8"], u["ask_down_e8"]) == (125_000_000, 90_000_000)
    assert u["max_num_orders"] == 3
    # notional unit 1e-5 quote = 1000 quote units of 1e-8
    assert (u["quote_mul"], u["quote_div"]) == (1000, 1)


def test_from_exchange_info_when_bound_between_units_then_min_rounds_up_max_rounds_down():
    entry = json.loads(json.dumps(TOY))
    entry["filters"][3].update(minNotional="5.000001", maxNotional="49999.999999")
    entry["filters"][2].update(maxQty="10.0159", minQty="0", stepSize="0")
    u = SymbolFilters.from_exchange_info(entry).units
    # price * qty >= 5.000001 <=> units >= ceil(500000.1); <= 49999.999999 <=> floor(4999999999.9)
    assert (u["min_notional"], u["max_notional"]) == (500_001, 4_999_999_999)
    assert u["market_max_qty"] == 10_015
    risk, slot = risk_with(filters=SymbolFilters.from_exchange_info(entry))
    assert check(risk, qty=50) == R.NOTIONAL_BELOW_MIN          # exactly 5.00000 < 5.000001
    assert check(risk, price=10_001, qty=50) == R.ACCEPTED       # 5.0005


def test_from_exchange_info_when_multiplier_finer_than_1e8_then_band_narrows():
    entry = json.loads(json.dumps(TOY))
    entry["filters"][4].update(bidMultiplierUp="1.000000019", bidMultiplierDown="0.999999991")
    u = SymbolFilters.from_exchange_info(entry).units
    assert (u["bid_up_e8"], u["bid_down_e8"]) == (100_000_001, 100_000_000)


def test_from_exchange_info_when_tick_not_commensurable_with_unit_then_value_error():
    with pytest.raises(ValueError, match="tickSize"):
        toy(price_unit="0.004")


def test_from_exchange_info_when_unit_finer_than_tick_then_tick_is_a_multiple():
    u = toy(price_unit="0.001", qty_unit="0.0001").units
    assert (u["tick"], u["min_price"], u["step"], u["min_qty"]) == (10, 1000, 10, 10)
    assert u["quote_mul"] == 10


@cython_only
def test_quote_units_when_decimal_text_then_exact_1e8_units():
    assert quote_units("1000") == 100_000_000_000
    assert quote_units("0.00000001") == 1
    with pytest.raises(ValueError):
        quote_units("0.000000001")


# ---------------------------------------------------------------- one test per reason

def test_check_when_order_within_every_limit_then_accepted():
    limits = RiskLimits(max_order_notional=quote_units("1000"), max_gross_exposure=quote_units("5000"),
                        max_open_orders=10, orders_per_10s=10, orders_per_day=100, price_band_bps=500,
                        daily_loss_limit=quote_units("100"), max_drawdown=quote_units("200"))
    risk, slot = risk_with(limits, max_position=10_000)
    assert check(risk) == R.ACCEPTED
    assert check(risk, side=SELL, order_type=OrderType.LIMIT_MAKER) == R.ACCEPTED
    assert check(risk, order_type=MARKET, price=0) == R.ACCEPTED


def test_check_when_halted_then_every_order_denied():
    risk, slot = risk_with()
    risk.halt()
    for side in (BUY, SELL):
        for order_type in OrderType:
            assert check(risk, side=side, order_type=order_type) == R.TRADING_HALTED
    assert check(risk, qty=0) == R.TRADING_HALTED                # state comes before validity
    assert risk.state == TradingState.HALTED and risk.halt_reason == R.TRADING_HALTED


@pytest.mark.parametrize("kw", [
    {"qty": 0}, {"qty": -1}, {"price": 0}, {"price": -5}, {"side": 0}, {"side": 3},
    {"order_type": 0}, {"order_type": 6}, {"slot": 1}, {"slot": -1}, {"mid": -1}, {"avg": -1},
])
def test_check_when_input_invalid_then_denied(kw):
    risk, slot = risk_with()
    assert check(risk, **kw) == R.INVALID_INPUT


def test_check_when_market_order_then_price_is_ignored():
    risk, slot = risk_with()
    assert check(risk, order_type=MARKET, price=0) == R.ACCEPTED
    assert check(risk, order_type=MARKET, price=-1) == R.ACCEPTED


def test_check_when_reducing_then_only_shrinking_orders_pass():
    risk, slot = risk_with()
    risk.update_position(slot, 5_000)
    risk.set_reducing()
    assert risk.state == TradingState.REDUCING
    assert check(risk, side=SELL, qty=2_000) == R.ACCEPTED        # reduce
    assert check(risk, side=SELL, qty=5_000) == R.ACCEPTED        # to exactly flat
    assert check(risk, side=BUY, qty=1) == R.REDUCING_ONLY         # increase
    assert check(risk, side=SELL, qty=5_001) == R.REDUCING_ONLY    # flip
    risk.on_order_open(slot, SELL, 4_000)                          # open sells count
    assert check(risk, side=SELL, qty=1_001) == R.REDUCING_ONLY
    assert check(risk, side=SELL, qty=1_000) == R.ACCEPTED


def test_check_when_reducing_and_short_or_flat_then_only_buys_that_shrink():
    risk, slot = risk_with()
    risk.set_reducing()
    assert check(risk, side=BUY) == R.REDUCING_ONLY                # flat: nothing to reduce
    assert check(risk, side=SELL) == R.REDUCING_ONLY
    risk.update_position(slot, -3_000)
    assert check(risk, side=BUY, qty=3_000) == R.ACCEPTED
    assert check(risk, side=BUY, qty=3_001) == R.REDUCING_ONLY
    risk.resume()
    assert check(risk, side=BUY, qty=3_001) == R.ACCEPTED


def test_check_when_market_order_without_reference_then_denied():
    risk, slot = risk_with()
    assert check(risk, order_type=MARKET, mid=0, avg=0) == R.NO_REFERENCE_PRICE
    assert check(risk, order_type=MARKET, mid=0, avg=PX) == R.ACCEPTED
    assert check(risk, order_type=MARKET, mid=PX, avg=0) == R.ACCEPTED


def test_check_when_limit_order_needs_reference_and_none_then_denied():
    risk, slot = risk_with()                                       # PERCENT_PRICE_BY_SIDE on
    assert check(risk, mid=0, avg=0) == R.NO_REFERENCE_PRICE
    banded, s2 = risk_with(RiskLimits(price_band_bps=100), bare_filters())
    assert check(banded, mid=0, avg=0) == R.NO_REFERENCE_PRICE
    free, s3 = risk_with(filters=bare_filters())                   # nothing needs a reference
    assert check(free, mid=0, avg=0) == R.ACCEPTED


def test_check_when_price_below_min_then_denied_and_exactly_min_passes():
    risk, slot = risk_with()
    # min 1.00; notional >= 5 needs qty 5.000 at that price
    assert check(risk, price=100, qty=5_000, mid=100, avg=100) == R.ACCEPTED
    assert check(risk, price=99, qty=5_100, mid=100, avg=100) == R.PRICE_BELOW_MIN


def test_check_when_price_above_max_then_denied_and_exactly_max_passes():
    risk, slot = risk_with()
    assert check(risk, price=100_000, mid=100_000, avg=100_000) == R.ACCEPTED
    assert check(risk, price=100_001, mid=100_000, avg=100_000) == R.PRICE_ABOVE_MAX


def test_check_when_price_not_on_tick_then_denied():
    # price unit 0.001, tick 0.01 = 10 units anchored at minPrice 1.000
    risk, slot = risk_with(filters=toy(price_unit="0.001"))
    assert check(risk, price=100_000, mid=100_000, avg=100_000) == R.ACCEPTED        # 100.000
    assert check(risk, price=100_005, mid=100_000, avg=100_000) == R.PRICE_NOT_ON_TICK
    assert check(risk, price=100_010, mid=100_000, avg=100_000) == R.ACCEPTED


def test_check_when_tick_grid_anchored_off_zero_then_measured_from_min_price():
    f = bare_filters(min_price=3, tick=5)
    risk, slot = risk_with(filters=f)
    assert check(risk, price=8) == R.ACCEPTED
    assert check(risk, price=10) == R.PRICE_NOT_ON_TICK


def test_check_when_qty_below_min_then_denied_and_exactly_min_passes():
    # qty unit 0.0001: LOT_SIZE minQty 0.001 = 10 units
    risk, slot = risk_with(filters=toy(qty_unit="0.0001"))
    assert check(risk, qty=9) == R.QTY_BELOW_MIN
    assert check(risk, qty=10) == R.NOTIONAL_BELOW_MIN             # past LOT_SIZE, too small a notional
    bare, _ = risk_with(filters=bare_filters(min_qty=10))
    assert check(bare, qty=10) == R.ACCEPTED
    assert check(bare, qty=9) == R.QTY_BELOW_MIN


def test_check_when_qty_above_max_then_denied_and_exactly_max_passes():
    risk, slot = risk_with()
    assert check(risk, qty=100_000) == R.ACCEPTED                  # 100 x 100.00 = 10000
    assert check(risk, qty=100_001) == R.QTY_ABOVE_MAX


def test_check_when_qty_not_on_step_then_denied():
    risk, slot = risk_with(filters=toy(qty_unit="0.0001"))
    assert check(risk, qty=10_000) == R.ACCEPTED                   # 1.0000
    assert check(risk, qty=10_005) == R.QTY_NOT_ON_STEP


def test_check_when_market_qty_below_min_then_denied():
    risk, slot = risk_with(filters=toy(), limits=RiskLimits())
    assert check(risk, order_type=MARKET, qty=10, mid=1000_00, avg=1000_00) == R.ACCEPTED   # 0.010
    assert check(risk, order_type=MARKET, qty=9, mid=1000_00, avg=1000_00) == R.MARKET_QTY_BELOW_MIN
    assert check(risk, order_type=LIMIT, price=1000_00, qty=9, mid=1000_00, avg=1000_00) == R.ACCEPTED


def test_check_when_market_qty_above_max_then_denied():
    risk, slot = risk_with()
    assert check(risk, order_type=MARKET, qty=10_000) == R.ACCEPTED
    assert check(risk, order_type=MARKET, qty=10_010) == R.MARKET_QTY_ABOVE_MAX
    assert check(risk, order_type=LIMIT, qty=10_010) == R.ACCEPTED


def test_check_when_market_qty_not_on_step_then_denied():
    risk, slot = risk_with()
    assert check(risk, order_type=MARKET, qty=1_005) == R.MARKET_QTY_NOT_ON_STEP
    assert check(risk, order_type=LIMIT, qty=1_005) == R.ACCEPTED


def test_check_when_notional_below_min_then_denied_and_exactly_min_passes():
    risk, slot = risk_with()
    assert check(risk, qty=50) == R.ACCEPTED                       # 0.050 x 100.00 = 5.00
    assert check(risk, qty=49) == R.NOTIONAL_BELOW_MIN


def test_check_when_market_notional_below_min_then_applied_only_if_apply_min_to_market():
    risk, slot = risk_with()
    # MARKET notional is valued at the average price, not the mid
    assert check(risk, order_type=MARKET, qty=50, mid=PX, avg=PX - 1) == R.NOTIONAL_BELOW_MIN
    assert check(risk, order_type=MARKET, qty=50, mid=PX - 1, avg=PX) == R.ACCEPTED
    entry = json.loads(json.dumps(TOY))
    entry["filters"][3]["applyMinToMarket"] = False
    free, _ = risk_with(filters=SymbolFilters.from_exchange_info(entry))
    assert check(free, order_type=MARKET, qty=10) == R.ACCEPTED


def test_check_when_notional_above_max_then_denied_and_exactly_max_passes():
    risk, slot = risk_with()
    top = 1000_00
    assert check(risk, price=top, qty=50_000, mid=top, avg=top) == R.ACCEPTED      # 50000.00
    assert check(risk, price=top, qty=50_001, mid=top, avg=top) == R.NOTIONAL_ABOVE_MAX


def test_check_when_market_notional_above_max_then_applied_only_if_apply_max_to_market():
    on = bare_filters(max_notional=100, apply_max_to_market=True)
    off = bare_filters(max_notional=100, apply_max_to_market=False)
    for f, expected in ((on, R.NOTIONAL_ABOVE_MAX), (off, R.ACCEPTED)):
        risk, slot = risk_with(filters=f)
        assert check(risk, order_type=MARKET, qty=11, mid=10, avg=10) == expected
        assert check(risk, order_type=MARKET, qty=10, mid=10, avg=10) == R.ACCEPTED


def test_check_when_legacy_min_notional_then_min_applies():
    entry = json.loads(json.dumps(TOY))
    entry["filters"][3] = {"filterType": "MIN_NOTIONAL", "minNotional": "5.00", "applyToMarket": False}
    u = SymbolFilters.from_exchange_info(entry).units
    assert (u["min_notional"], u["max_notional"], u["apply_min_to_market"]) == (500_000, 0, False)


def test_check_when_price_outside_percent_price_by_side_then_denied():
    risk, slot = risk_with()
    # avg 100.00: BUY in [80.00, 120.00], SELL in [90.00, 125.00]; bounds included
    for side, low, high in ((BUY, 8_000, 12_000), (SELL, 9_000, 12_500)):
        assert check(risk, side=side, price=low, mid=low, avg=PX) == R.ACCEPTED
        assert check(risk, side=side, price=high, mid=high, avg=PX) == R.ACCEPTED
        assert check(risk, side=side, price=low - 1, mid=low, avg=PX) == R.PERCENT_PRICE_BY_SIDE
        assert check(risk, side=side, price=high + 1, mid=high, avg=PX) == R.PERCENT_PRICE_BY_SIDE


def test_check_when_no_avg_price_then_percent_price_uses_mid():
    risk, slot = risk_with()
    assert check(risk, price=12_001, mid=PX, avg=0) == R.PERCENT_PRICE_BY_SIDE
    assert check(risk, price=12_000, mid=PX, avg=0) == R.ACCEPTED


def test_check_when_price_beyond_fat_finger_band_then_denied():
    risk, slot = risk_with(RiskLimits(price_band_bps=100), bare_filters())   # 1%
    assert check(risk, price=10_100, mid=PX) == R.ACCEPTED
    assert check(risk, price=9_900, mid=PX) == R.ACCEPTED
    assert check(risk, price=10_101, mid=PX) == R.PRICE_BAND
    assert check(risk, side=SELL, price=9_899, mid=PX) == R.PRICE_BAND
    assert check(risk, price=10_101, mid=0, avg=PX) == R.PRICE_BAND           # falls back to avg
    assert check(risk, order_type=MARKET, price=0, mid=PX) == R.ACCEPTED      # no price to band


def test_check_when_order_notional_above_max_then_denied_and_exactly_max_passes():
    risk, slot = risk_with(RiskLimits(max_order_notional=quote_units("1000")))
    assert check(risk, qty=10_000) == R.ACCEPTED                   # 10 x 100.00
    assert check(risk, qty=10_001) == R.MAX_ORDER_NOTIONAL
    # MARKET is valued at the mid (what it will likely pay), not the average price
    assert check(risk, order_type=MARKET, qty=10_000, mid=PX + 1, avg=PX) == R.MAX_ORDER_NOTIONAL


def test_check_when_notional_unit_finer_than_quote_unit_then_rounds_up():
    # price unit 0.0001 x qty unit 0.00001 = 1e-9 quote: 10 notional units per quote unit
    f = SymbolFilters(price_unit="0.0001", qty_unit="0.00001")
    assert (f.units["quote_mul"], f.units["quote_div"]) == (1, 10)
    risk, slot = risk_with(RiskLimits(max_order_notional=10), f)
    assert check(risk, price=10, qty=10) == R.ACCEPTED             # 100 units = 10 quote units
    assert check(risk, price=101, qty=1) == R.MAX_ORDER_NOTIONAL    # 10.1 -> 11 quote units


def test_check_when_position_would_exceed_max_then_denied():
    risk, slot = risk_with(max_position=5_000)
    risk.update_position(slot, 4_000)
    assert check(risk, qty=1_000) == R.ACCEPTED
    assert check(risk, qty=1_001) == R.MAX_POSITION
    risk.on_order_open(slot, BUY, 1_000)                           # worst case: it fills
    assert check(risk, qty=50) == R.MAX_POSITION
    assert check(risk, side=SELL, qty=9_000) == R.ACCEPTED         # to -5000
    assert check(risk, side=SELL, qty=9_001) == R.MAX_POSITION


def test_check_when_position_over_max_then_reducing_order_still_passes():
    risk, slot = risk_with(max_position=5_000)
    risk.update_position(slot, 8_000)
    assert check(risk, side=SELL, qty=1_000) == R.ACCEPTED
    assert check(risk, side=BUY, qty=50) == R.MAX_POSITION


def test_check_when_gross_exposure_would_exceed_max_then_denied():
    limits = RiskLimits(max_gross_exposure=quote_units("1000"))
    risk = PreTradeRisk(limits)
    a = risk.add_symbol(toy())
    other = dict(TOY, symbol="TOY2USDT")
    b = risk.add_symbol(SymbolFilters.from_exchange_info(other))
    risk.update_position(b, 5_000)
    risk.update_mark(b, PX)                                        # 5 x 100.00 = 500
    assert risk.gross_exposure == quote_units("500")
    assert check(risk, slot=a, qty=5_000) == R.ACCEPTED            # 500 + 500 = 1000
    assert check(risk, slot=a, qty=5_001) == R.MAX_GROSS_EXPOSURE
    assert check(risk, slot=b, side=SELL, qty=1_000) == R.ACCEPTED  # reduces
    risk.update_mark(b, 3 * PX)                                    # now 1500: over the limit
    assert check(risk, slot=b, side=SELL, price=3 * PX, qty=1_000, mid=3 * PX, avg=3 * PX) == R.ACCEPTED
    assert check(risk, slot=a, qty=50) == R.MAX_GROSS_EXPOSURE


def test_add_symbol_when_other_quote_asset_then_value_error():
    risk, slot = risk_with()
    with pytest.raises(ValueError, match="quoted in BTC"):
        risk.add_symbol(SymbolFilters.from_exchange_info(dict(TOY, symbol="TOYBTC", quoteAsset="BTC")))
    with pytest.raises(ValueError, match="already registered"):
        risk.add_symbol(toy())


def test_check_when_open_orders_at_account_max_then_denied():
    risk, slot = risk_with(RiskLimits(max_open_orders=2), bare_filters())
    risk.on_order_open(slot, BUY, 1)
    assert check(risk) == R.ACCEPTED
    risk.on_order_open(slot, SELL, 1)
    assert check(risk) == R.MAX_OPEN_ORDERS
    risk.on_order_done(slot, SELL, 1)
    assert check(risk) == R.ACCEPTED
    assert risk.open_orders == 1


def test_check_when_open_orders_at_max_num_orders_filter_then_denied():
    risk, slot = risk_with()                                       # MAX_NUM_ORDERS 3
    for _ in range(3):
        assert check(risk) == R.ACCEPTED
        risk.on_order_open(slot, BUY, 1)
    assert check(risk) == R.MAX_OPEN_ORDERS


def test_check_when_10s_rate_used_up_then_denied_until_refilled():
    risk, slot = risk_with(RiskLimits(orders_per_10s=3))
    for _ in range(3):
        assert check(risk, ts=T0) == R.ACCEPTED
    assert check(risk, ts=T0) == R.ORDER_RATE_10S
    interval = -(-10 * SEC // 3)                                   # ceil: 3.333333334 s
    assert check(risk, ts=T0 + interval - 1) == R.ORDER_RATE_10S
    assert check(risk, ts=T0 + interval) == R.ACCEPTED
    assert check(risk, ts=T0 + interval) == R.ORDER_RATE_10S
    assert check(risk, ts=T0 + 60 * SEC) == R.ACCEPTED             # refill caps at capacity
    assert risk.tokens_10s == 2


def test_check_when_day_rate_used_up_then_denied_until_refilled():
    risk, slot = risk_with(RiskLimits(orders_per_day=2))
    assert check(risk, ts=T0) == R.ACCEPTED
    assert check(risk, ts=T0) == R.ACCEPTED
    assert check(risk, ts=T0 + 3600 * SEC) == R.ORDER_RATE_DAY
    assert check(risk, ts=T0 + 12 * 3600 * SEC) == R.ACCEPTED      # one token per 12 h


def test_token_bucket_when_time_goes_backwards_then_no_refill():
    risk, slot = risk_with(RiskLimits(orders_per_10s=1))
    assert check(risk, ts=T0) == R.ACCEPTED
    assert check(risk, ts=T0 - 100 * SEC) == R.ORDER_RATE_10S
    assert check(risk, ts=T0 + 10 * SEC) == R.ACCEPTED


def test_token_bucket_when_full_then_idle_time_is_not_banked():
    risk, slot = risk_with(RiskLimits(orders_per_10s=2))
    assert check(risk, ts=T0 + 3600 * SEC) == R.ACCEPTED
    assert check(risk, ts=T0 + 3600 * SEC) == R.ACCEPTED
    assert check(risk, ts=T0 + 3600 * SEC) == R.ORDER_RATE_10S


def test_check_when_denied_then_no_rate_token_consumed():
    risk, slot = risk_with(RiskLimits(orders_per_10s=2, orders_per_day=5))
    for _ in range(10):
        assert check(risk, qty=100_001) == R.QTY_ABOVE_MAX
    assert (risk.tokens_10s, risk.tokens_day) == (2, 5)
    assert check(risk) == R.ACCEPTED
    assert (risk.tokens_10s, risk.tokens_day) == (1, 4)


def test_check_when_day_bucket_empty_then_10s_token_not_consumed():
    risk, slot = risk_with(RiskLimits(orders_per_10s=5, orders_per_day=1))
    assert check(risk) == R.ACCEPTED
    assert check(risk) == R.ORDER_RATE_DAY
    assert (risk.tokens_10s, risk.tokens_day) == (4, 0)


def test_update_equity_when_daily_loss_reached_then_halted():
    risk, slot = risk_with(RiskLimits(daily_loss_limit=quote_units("100")))
    assert risk.new_day(quote_units("10000")) == R.ACCEPTED
    assert risk.update_equity(quote_units("9900.00000001")) == R.ACCEPTED
    assert risk.day_pnl == -quote_units("99.99999999")
    assert risk.update_equity(quote_units("9900")) == R.DAILY_LOSS_LIMIT
    assert risk.state == TradingState.HALTED and risk.halt_reason == R.DAILY_LOSS_LIMIT
    assert check(risk) == R.TRADING_HALTED
    risk.new_day()                                                 # a new day does not resume
    assert risk.state == TradingState.HALTED
    risk.resume()
    assert check(risk) == R.ACCEPTED
    assert risk.halt_reason == R.DAILY_LOSS_LIMIT                  # the last halt stays recorded


def test_update_equity_when_drawdown_from_peak_reached_then_halted():
    risk, slot = risk_with(RiskLimits(max_drawdown=quote_units("500")))
    risk.update_equity(quote_units("10000"))
    risk.update_equity(quote_units("11000"))
    assert risk.peak_equity == quote_units("11000")
    assert risk.update_equity(quote_units("10500.00000001")) == R.ACCEPTED
    assert risk.update_equity(quote_units("10500")) == R.DRAWDOWN_LIMIT
    assert risk.state == TradingState.HALTED and risk.halt_reason == R.DRAWDOWN_LIMIT
    assert check(risk) == R.TRADING_HALTED


def test_update_equity_when_reducing_and_breach_then_halted():
    risk, slot = risk_with(RiskLimits(daily_loss_limit=10))
    risk.new_day(1_000)
    risk.set_reducing()
    assert risk.update_equity(990) == R.DAILY_LOSS_LIMIT
    assert risk.state == TradingState.HALTED


def test_halt_when_reason_given_then_recorded_and_accepted_is_refused():
    risk, slot = risk_with()
    risk.halt(R.MAX_GROSS_EXPOSURE)
    assert risk.halt_reason == R.MAX_GROSS_EXPOSURE
    with pytest.raises(ValueError):
        risk.halt(R.ACCEPTED)


def test_check_when_products_overflow_int64_then_denied_not_raised():
    risk, slot = risk_with(RiskLimits(max_order_notional=quote_units("10")), bare_filters())
    assert check(risk, price=I64_MAX, qty=2, mid=I64_MAX, avg=I64_MAX) == R.OVERFLOW
    nf, _ = risk_with(filters=bare_filters(min_notional=1))
    assert check(nf, price=2**62, qty=4, mid=2**62, avg=2**62) == R.OVERFLOW
    pp, _ = risk_with(filters=bare_filters(bid_up_e8=10**8))
    assert check(pp, price=2**62, qty=1, mid=2**62, avg=2**62) == R.OVERFLOW
    band, _ = risk_with(RiskLimits(price_band_bps=100), bare_filters())
    assert check(band, price=2**62, qty=1, mid=2**62, avg=2**62) == R.OVERFLOW
    assert check(risk, price=1, qty=1, mid=1, avg=1) == R.ACCEPTED


def test_check_when_position_near_int64_then_overflow_denied():
    risk, slot = risk_with(filters=bare_filters())
    risk.update_position(slot, I64_MAX - 1)
    assert check(risk, qty=2) == R.OVERFLOW
    assert check(risk, side=SELL, qty=2) == R.ACCEPTED
    risk.update_position(slot, -I64_MAX)
    assert check(risk, side=SELL, qty=1) == R.OVERFLOW             # would reach INT64_MIN


def test_state_updates_when_values_overflow_then_saturate():
    risk, slot = risk_with(RiskLimits(max_gross_exposure=100), bare_filters())
    risk.update_position(slot, I64_MAX - 1)
    risk.on_fill(slot, BUY, 10)
    assert risk.position(slot) == I64_MAX
    risk.update_mark(slot, 10)
    assert risk.gross_exposure == I64_MAX
    assert check(risk, side=SELL, qty=1) == R.ACCEPTED             # reducing is still allowed
    assert check(risk, side=BUY, qty=1) == R.OVERFLOW
    assert risk.update_equity(0) == R.ACCEPTED


def test_update_equity_when_loss_overflows_then_halted_with_overflow():
    risk, slot = risk_with(RiskLimits(daily_loss_limit=1))
    risk.new_day(I64_MAX)
    assert risk.update_equity(-I64_MAX) == R.OVERFLOW
    assert risk.state == TradingState.HALTED and risk.halt_reason == R.OVERFLOW


# ---------------------------------------------------------------- fills and open orders

def test_on_fill_when_orders_fill_then_position_and_open_qty_move():
    risk, slot = risk_with()
    risk.on_order_open(slot, BUY, 3_000)
    risk.on_fill(slot, BUY, 1_000)
    risk.update_mark(slot, PX)
    assert risk.slot_state(slot) == {"position": 1_000, "open_buy_qty": 2_000, "open_sell_qty": 0,
                                     "open_orders": 1, "mark": PX, "exposure": quote_units("100")}
    risk.on_order_done(slot, BUY, 2_000)
    risk.on_fill(slot, SELL, 1_500)
    assert risk.position(slot) == -500
    assert risk.open_orders == 0 and risk.gross_exposure == quote_units("50")


def test_state_methods_when_bad_arguments_then_value_error():
    risk, slot = risk_with()
    with pytest.raises(ValueError):
        risk.on_fill(slot, 3, 1)
    with pytest.raises(ValueError):
        risk.on_order_open(slot, BUY, 0)
    with pytest.raises(IndexError):
        risk.update_position(7, 1)
    with pytest.raises(ValueError):
        risk.update_mark(slot, -1)
    with pytest.raises(ValueError):
        RiskLimits(max_open_orders=-1)
    with pytest.raises(ValueError):
        SymbolFilters(min_qty=-1)


# ---------------------------------------------------------------- disabled filters

def test_check_when_filters_are_zero_then_disabled():
    zero = {
        "symbol": "ZEROUSDT", "quoteAsset": "USDT",
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": "0", "maxPrice": "0", "tickSize": "0.01"},
            {"filterType": "LOT_SIZE", "minQty": "0", "maxQty": "0", "stepSize": "0.001"},
            {"filterType": "MARKET_LOT_SIZE", "minQty": "0", "maxQty": "0", "stepSize": "0"},
            {"filterType": "NOTIONAL", "minNotional": "0", "maxNotional": "0",
             "applyMinToMarket": True, "applyMaxToMarket": True},
            {"filterType": "PERCENT_PRICE_BY_SIDE", "bidMultiplierUp": "0", "bidMultiplierDown": "0",
             "askMultiplierUp": "0", "askMultiplierDown": "0"},
        ],
    }
    f = SymbolFilters.from_exchange_info(zero)
    assert all(v == 0 for k, v in f.units.items()
               if k not in ("tick", "step", "quote_mul", "quote_div", "apply_min_to_market",
                            "apply_max_to_market"))
    risk, slot = risk_with(filters=f)
    assert check(risk, price=1, qty=1, mid=0, avg=0) == R.ACCEPTED
    assert check(risk, price=10**12, qty=10**6, mid=1, avg=1) == R.ACCEPTED
    assert check(risk, order_type=MARKET, qty=10**9, mid=1, avg=1) == R.ACCEPTED


def test_check_when_only_one_side_of_band_enabled_then_other_side_free():
    risk, slot = risk_with(filters=bare_filters(bid_up_e8=110_000_000))
    assert check(risk, price=111, mid=100, avg=100) == R.PERCENT_PRICE_BY_SIDE
    assert check(risk, price=1, mid=100, avg=100) == R.ACCEPTED                # no down bound
    assert check(risk, side=SELL, price=10**6, mid=0, avg=0) == R.ACCEPTED     # ask side off


# ---------------------------------------------------------------- real exchangeInfo

def _real_symbol(name: str, *parts: str) -> dict:
    info = json.loads(shared_data(*parts).read_text())
    return next(s for s in info["symbols"] if s["symbol"] == name)


@cython_only
def test_from_exchange_info_when_real_btcusdt_then_real_filters_in_units():
    entry = _real_symbol("BTCUSDT", "binance-nt", "http", "http_spot_market_exchange_info.json")
    f = SymbolFilters.from_exchange_info(entry)
    u = f.units
    assert (str(f.price_fp.increment), str(f.qty_fp.increment)) == ("0.01", "0.00001")
    assert (u["min_price"], u["max_price"], u["tick"]) == (1, 100_000_000, 1)
    assert (u["min_qty"], u["max_qty"], u["step"]) == (1, 900_000_000, 1)
    # MARKET_LOT_SIZE maxQty 112.21108820 is not whole steps: floor to 112.21108
    assert (u["market_min_qty"], u["market_max_qty"], u["market_step"]) == (0, 11_221_108, 0)
    # MIN_NOTIONAL 10 USDT in units of 0.01 x 0.00001 = 1e-7 USDT
    assert (u["min_notional"], u["apply_min_to_market"]) == (100_000_000, True)
    # legacy PERCENT_PRICE 5 / 0.2 applies to both sides
    assert (u["bid_up_e8"], u["bid_down_e8"], u["ask_up_e8"], u["ask_down_e8"]) == (
        500_000_000, 20_000_000, 500_000_000, 20_000_000)
    assert u["max_num_orders"] == 200
    assert (u["quote_mul"], u["quote_div"]) == (10, 1)


@cython_only
def test_check_when_real_btcusdt_orders_then_binance_rules_hold():
    entry = _real_symbol("BTCUSDT", "binance-nt", "http", "http_spot_market_exchange_info.json")
    f = SymbolFilters.from_exchange_info(entry)
    risk, slot = risk_with(filters=f)
    px = f.price_fp.to_units("65000.12")
    q = f.qty_fp.to_units
    assert check(risk, price=px, qty=q("0.00016"), mid=px, avg=px) == R.ACCEPTED      # 10.40 USDT
    assert check(risk, price=px, qty=q("0.00015"), mid=px, avg=px) == R.NOTIONAL_BELOW_MIN
    assert check(risk, order_type=MARKET, qty=q("112.21108"), mid=px, avg=px) == R.ACCEPTED
    assert check(risk, order_type=MARKET, qty=q("112.21109"), mid=px, avg=px) == R.MARKET_QTY_ABOVE_MAX
    # PERCENT_PRICE: at most 5x the average price
    avg = f.price_fp.to_units("20000.00")
    assert check(risk, price=5 * avg, qty=q("0.001"), mid=avg, avg=avg) == R.ACCEPTED
    assert check(risk, price=5 * avg + 1, qty=q("0.001"), mid=avg, avg=avg) == R.PERCENT_PRICE_BY_SIDE


@cython_only
def test_from_exchange_info_when_symbol_has_no_filters_then_all_disabled():
    entry = _real_symbol("ETHBTC", "binance-nt", "http", "exchange_info_response.json")
    f = SymbolFilters.from_exchange_info(entry)
    assert str(f.price_fp.increment) == "1E-8" and f.quote_asset == "BTC"
    assert all(v == 0 for k, v in f.units.items()
               if k not in ("quote_mul", "quote_div", "apply_min_to_market", "apply_max_to_market"))
    risk, slot = risk_with(filters=f)
    assert check(risk, price=1, qty=1, mid=0, avg=0) == R.ACCEPTED


# ---------------------------------------------------------------- messages

@cython_only
def test_describe_when_any_code_then_text_names_it():
    assert set(REASON_MESSAGES) == set(R)
    for code in R:
        assert code.name in describe(code)
    assert describe(R.PRICE_BAND, symbol="BTCUSDT", detail="2.5% from mid").startswith("BTCUSDT PRICE_BAND")
    assert "unknown" in describe(999)


@cython_only
def test_reason_codes_when_listed_then_stable_check_order():
    assert [r.name for r in R][:4] == ["ACCEPTED", "TRADING_HALTED", "INVALID_INPUT", "REDUCING_ONLY"]
    assert R.OVERFLOW == 26 and R.ORDER_RATE_DAY == 23
