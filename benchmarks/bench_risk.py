"""Pre-trade risk: cost of every check for one accepted LIMIT order.

The order passes every check, so every check runs: all Binance filters (with price and
quantity units finer than tick/step, so the grid checks do their modulo too), price
band, max order notional, max position, gross exposure over three symbols, open
orders, and both rate buckets (timestamps advance 540 ms per order, so each call also
refills). Figures: check_c in a Cython loop (target <= 100 ns), the Python `check`
call, and the pure-Python twin as the baseline of both.
"""

from __future__ import annotations

from abidance._core.risk import (
    OrderSide,
    OrderType,
    PreTradeRisk,
    RiskLimits,
    RiskReason,
    SymbolFilters,
    _bench_check_loop,
    quote_units,
)
from tests.twins.risk import PreTradeRiskTwin, RiskLimitsTwin, SymbolFiltersTwin

# Current-format BTCUSDT-like filters (NOTIONAL, PERCENT_PRICE_BY_SIDE), values as on Binance.
ENTRY = {
    "symbol": "BTCUSDT", "quoteAsset": "USDT", "baseAssetPrecision": 8, "quoteAssetPrecision": 8,
    "filters": [
        {"filterType": "PRICE_FILTER", "minPrice": "0.01", "maxPrice": "1000000.00", "tickSize": "0.01"},
        {"filterType": "LOT_SIZE", "minQty": "0.00001", "maxQty": "9000.00000", "stepSize": "0.00001"},
        {"filterType": "MARKET_LOT_SIZE", "minQty": "0", "maxQty": "112.21108820", "stepSize": "0"},
        {"filterType": "NOTIONAL", "minNotional": "5.00", "maxNotional": "9000000.00",
         "applyMinToMarket": True, "applyMaxToMarket": False, "avgPriceMins": 5},
        {"filterType": "PERCENT_PRICE_BY_SIDE", "bidMultiplierUp": "5", "bidMultiplierDown": "0.2",
         "askMultiplierUp": "5", "askMultiplierDown": "0.2", "avgPriceMins": 5},
        {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
    ],
}
UNITS = {"price_unit": "0.001", "qty_unit": "0.000001"}     # tick = 10 units, step = 10 units
LIMITS = {
    "max_order_notional": quote_units("10000"), "max_gross_exposure": quote_units("1000000"),
    "max_open_orders": 50, "orders_per_10s": 50, "orders_per_day": 160_000,
    "price_band_bps": 200, "daily_loss_limit": quote_units("1000"), "max_drawdown": quote_units("5000"),
}
PX = 65_000_120                 # 65000.120
QTY = 1_000                     # 0.001000
TS0 = 1_700_000_000 * 10**9
TS_STEP = 540_000_000           # >= both refill intervals (200 ms, 540 ms): never rate-limited
CY_OPS = 1_000_000
PY_OPS = 100_000
TWIN_OPS = 20_000


def build(risk_cls, limits_cls, filters_cls):
    risk = risk_cls(limits_cls(**LIMITS))
    slots = [risk.add_symbol(filters_cls.from_exchange_info(dict(ENTRY, symbol=s), **UNITS), 10**9)
             for s in ("BTCUSDT", "ETHUSDT", "BNBUSDT")]
    for slot in slots:                                   # some state for the exposure sums
        risk.update_position(slot, 20_000)
        risk.update_mark(slot, PX)
        risk.on_order_open(slot, OrderSide.BUY, 5_000)
    risk.update_equity(quote_units("50000"))
    return risk, slots[0]


def per_check_ns(risk, slot, n, timer, repeat):
    """Per-call ns of risk.check from Python (Cython or twin), timestamps advancing."""
    clock = {"ts": TS0}
    args = (slot, OrderSide.BUY, OrderType.LIMIT, PX, QTY, PX, PX)

    def run():
        check, ts = risk.check, clock["ts"]
        for i in range(n):
            check(*args, ts + i * TS_STEP)
        clock["ts"] = ts + n * TS_STEP

    # every call must have taken the accepted path
    assert risk.check(*args, clock["ts"]) == RiskReason.ACCEPTED
    return timer(run, repeat=repeat) / n


def twin_baseline(disabled, timer):
    twin, slot = build(PreTradeRiskTwin, RiskLimitsTwin, SymbolFiltersTwin)
    n, repeat = (200, 1) if disabled else (TWIN_OPS, 5)
    return per_check_ns(twin, slot, n, timer, repeat)


def test_bench_check_c_all_checks_accepted_limit(benchmark, measure, timer, report):
    risk, slot = build(PreTradeRisk, RiskLimits, SymbolFilters)
    n = 10_000 if benchmark.disabled else CY_OPS
    clock = {"ts": TS0}

    def run():
        accepted = _bench_check_loop(risk, n, slot, OrderSide.BUY, OrderType.LIMIT, PX, QTY,
                                     PX, PX, clock["ts"], TS_STEP)
        clock["ts"] += n * TS_STEP
        assert accepted == n

    measured = measure(benchmark, run, ops=n, rounds=20)
    report("risk.check_c all checks, accepted LIMIT (Cython loop)", measured, "ns/check",
           target=100.0, baseline=("pure-Python twin", twin_baseline(benchmark.disabled, timer)),
           benchmark=benchmark)


def test_bench_check_python_call_accepted_limit(benchmark, measure, timer, report):
    risk, slot = build(PreTradeRisk, RiskLimits, SymbolFilters)
    n = 1_000 if benchmark.disabled else PY_OPS
    clock = {"ts": TS0}
    args = (slot, OrderSide.BUY, OrderType.LIMIT, PX, QTY, PX, PX)

    def run():
        check, ts = risk.check, clock["ts"]
        for i in range(n):
            check(*args, ts + i * TS_STEP)
        clock["ts"] = ts + n * TS_STEP

    measured = measure(benchmark, run, ops=n, rounds=10)
    assert risk.check(*args, clock["ts"]) == RiskReason.ACCEPTED
    report("risk.check from Python, accepted LIMIT (call + loop overhead)", measured, "ns/call",
           baseline=("pure-Python twin", twin_baseline(benchmark.disabled, timer)),
           benchmark=benchmark)
