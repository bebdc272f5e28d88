"""The Cython pre-trade risk and its pure-Python twin agree on random sequences.

Hypothesis drives both with the same filters, limits and a random mix of order
intents and state updates (fills, open orders, marks, equity, state changes), with
small values near the filter bounds and occasional int64-sized ones. Every step must
give the same reason code (or the same exception type) and the same full state.
"""

from __future__ import annotations

import json
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from abidance._core.risk import PreTradeRisk, RiskLimits, SymbolFilters
from tests.kit import shared_data
from tests.twins.risk import PreTradeRiskTwin, RiskLimitsTwin, SymbolFiltersTwin

I64_MAX = 2**63 - 1
SEC = 10**9

huge = st.sampled_from([2**31, 2**53, 2**62, I64_MAX - 1, I64_MAX])
small = st.integers(-2, 300)
off = st.just(0)


@st.composite
def mostly(draw, common, rare):
    """common nine times in ten: random values must mostly pass validity to reach later checks."""
    return draw(rare) if draw(st.integers(0, 9)) == 0 else draw(common)


units = st.sampled_from(["1", "10", "0.01", "0.001", "0.0001", "0.00001"])


@st.composite
def filters_kwargs(draw):
    kw = {"price_unit": draw(units), "qty_unit": draw(units)}
    for low, high, lo_range, hi_range, grid in (
        ("min_price", "max_price", (0, 60), (60, 400), "tick"),
        ("min_qty", "max_qty", (0, 40), (40, 400), "step"),
        ("market_min_qty", "market_max_qty", (0, 40), (40, 400), "market_step"),
    ):
        kw[low] = draw(st.one_of(off, off, st.integers(*lo_range)))
        kw[high] = draw(st.one_of(off, off, st.integers(*hi_range)))
        kw[grid] = draw(st.one_of(off, st.just(1), st.integers(1, 6)))
    kw["min_notional"] = draw(st.one_of(off, off, st.integers(1, 3_000)))
    kw["max_notional"] = draw(st.one_of(off, off, st.integers(3_000, 60_000)))
    kw["apply_min_to_market"] = draw(st.booleans())
    kw["apply_max_to_market"] = draw(st.booleans())
    for side in ("bid", "ask"):
        kw[f"{side}_up_e8"] = draw(st.one_of(off, off, st.integers(100_000_000, 300_000_000)))
        kw[f"{side}_down_e8"] = draw(st.one_of(off, off, st.integers(10_000_000, 100_000_000)))
    kw["max_num_orders"] = draw(st.one_of(off, off, st.integers(1, 6)))
    return kw


@st.composite
def limits_kwargs(draw):
    money = st.one_of(off, off, st.integers(1, 10**6), st.integers(10**6, 10**14))
    return {
        "max_order_notional": draw(money),
        "max_gross_exposure": draw(money),
        "max_open_orders": draw(st.one_of(off, off, st.integers(1, 8))),
        "orders_per_10s": draw(st.one_of(off, st.integers(1, 6))),
        "orders_per_day": draw(st.one_of(off, st.integers(1, 12))),
        "price_band_bps": draw(st.one_of(off, off, st.integers(1, 5_000))),
        "daily_loss_limit": draw(money),
        "max_drawdown": draw(money),
    }


sides = mostly(st.sampled_from([1, 2]), st.sampled_from([0, 3]))
order_types = mostly(st.sampled_from([1, 1, 1, 2, 2, 3, 4, 5]), st.sampled_from([0, 6]))
equities = mostly(st.integers(-10**6, 10**6), st.sampled_from([-I64_MAX, I64_MAX, -10**15, 10**15]))
quantities = mostly(st.integers(1, 120), st.one_of(st.integers(-2, 0), huge))


@st.composite
def operations(draw, n_slots):
    ops = []
    ts = 1_700_000_000 * SEC
    slot = mostly(st.integers(0, n_slots - 1), st.sampled_from([-1, n_slots]))
    for _ in range(draw(st.integers(1, 60))):
        kind = draw(st.sampled_from(["check"] * 24 + [
            "open", "open", "done", "fill", "fill", "position", "mark", "mark", "equity", "equity",
            "new_day", "halt", "reducing", "resume", "resume", "restore"]))
        if kind == "check":
            ts += draw(st.sampled_from([0, 0, 1, SEC, 3 * SEC, 11 * SEC, 3 * 3600 * SEC, -SEC]))
            price = draw(mostly(st.integers(1, 300), st.one_of(st.integers(-2, 0), huge)))
            # references near the price, so the bands are hit from both sides
            near = price if 1 <= price <= 300 else 100
            ref = mostly(st.integers(max(1, near - near // 3), near + near // 3 + 1),
                         st.one_of(off, st.integers(-1, 300), huge))
            mid, avg = draw(ref), draw(ref)
            if draw(st.integers(0, 14)) == 0:
                mid = avg = 0                                   # no reference at all
            ops.append(("check", draw(slot), draw(sides), draw(order_types), price,
                        draw(quantities), mid, avg, ts))
        elif kind in ("open", "done", "fill"):
            ops.append((kind, draw(slot), draw(sides), draw(quantities)))
        elif kind == "position":
            ops.append((kind, draw(slot), draw(mostly(st.integers(-400, 400),
                                                      st.one_of(huge, huge.map(lambda v: -v))))))
        elif kind == "mark":
            ops.append((kind, draw(slot), draw(mostly(st.integers(0, 300), st.one_of(st.just(-1), huge)))))
        elif kind == "equity":
            ops.append((kind, draw(equities)))
        elif kind == "new_day":
            ops.append((kind, draw(st.one_of(st.none(), equities))))
        elif kind == "halt":
            ops.append((kind, draw(st.integers(0, 27))))
        elif kind == "restore":
            # A state file's buckets and equity: tokens past the capacity, times before and after now.
            bucket = st.one_of(st.none(), st.tuples(st.integers(-2, 14), st.integers(-SEC, ts + 20 * SEC)))
            peak, start = draw(equities), draw(equities)
            equity = draw(st.sampled_from([(None, None), (max(peak, start), min(peak, start)), (start, peak)]))
            ops.append((kind, draw(bucket), draw(bucket), *equity))
        else:
            ops.append((kind,))
    return ops


def apply(risk, op):
    kind, args = op[0], op[1:]
    method = {
        "check": risk.check, "open": risk.on_order_open, "done": risk.on_order_done,
        "fill": risk.on_fill, "position": risk.update_position, "mark": risk.update_mark,
        "equity": risk.update_equity, "new_day": risk.new_day, "halt": risk.halt,
        "reducing": risk.set_reducing, "resume": risk.resume, "restore": risk.restore,
    }[kind]
    try:
        out = method(*args)
    except (ValueError, IndexError) as exc:
        return type(exc).__name__
    return None if out is None else int(out)


@st.composite
def scenarios(draw):
    n_slots = draw(st.integers(1, 3))
    filters = [draw(filters_kwargs()) for _ in range(n_slots)]
    max_positions = [draw(st.one_of(off, st.integers(1, 500))) for _ in range(n_slots)]
    return draw(limits_kwargs()), filters, max_positions, draw(operations(n_slots))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_parity_when_random_intents_and_updates_then_same_codes_and_state(scenario):
    limits, filters, max_positions, ops = scenario
    fast = PreTradeRisk(RiskLimits(**limits))
    ref = PreTradeRiskTwin(RiskLimitsTwin(**limits))
    for i, (kw, max_pos) in enumerate(zip(filters, max_positions)):
        kw = dict(kw, symbol=f"S{i}")
        assert fast.add_symbol(SymbolFilters(**kw), max_pos) == ref.add_symbol(SymbolFiltersTwin(**kw), max_pos)
    assert fast.snapshot() == ref.snapshot()
    for step, op in enumerate(ops):
        got, want = apply(fast, op), apply(ref, op)
        assert got == want, f"step {step} {op}: cython {got} twin {want}"
        assert fast.snapshot() == ref.snapshot(), f"state differs after step {step} {op}"


# ---------------------------------------------------------------- exchangeInfo parsing

decimal_text = st.decimals(min_value=0, max_value=10**6, places=8, allow_nan=False,
                           allow_infinity=False).map(lambda d: format(d, "f"))
grid_text = st.sampled_from(["0", "0.00000001", "0.00001", "0.001", "0.01", "0.05", "1"])


@st.composite
def symbol_entries(draw):
    tick, step, mstep = draw(grid_text), draw(grid_text), draw(grid_text)

    def on_grid(g):   # a min bound on its grid (Binance's own symbols always are)
        return format(Decimal(g) * draw(st.integers(0, 50)), "f")

    return {
        "symbol": "XUSDT", "quoteAsset": "USDT",
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": on_grid(tick), "maxPrice": draw(decimal_text),
             "tickSize": tick},
            {"filterType": "LOT_SIZE", "minQty": on_grid(step), "maxQty": draw(decimal_text), "stepSize": step},
            {"filterType": "MARKET_LOT_SIZE", "minQty": on_grid(mstep), "maxQty": draw(decimal_text),
             "stepSize": mstep},
            draw(st.sampled_from([
                {"filterType": "NOTIONAL", "minNotional": draw(decimal_text),
                 "maxNotional": draw(decimal_text), "applyMinToMarket": draw(st.booleans()),
                 "applyMaxToMarket": draw(st.booleans())},
                {"filterType": "MIN_NOTIONAL", "minNotional": draw(decimal_text),
                 "applyToMarket": draw(st.booleans())},
            ])),
            {"filterType": "PERCENT_PRICE_BY_SIDE", "bidMultiplierUp": draw(decimal_text),
             "bidMultiplierDown": draw(decimal_text), "askMultiplierUp": draw(decimal_text),
             "askMultiplierDown": draw(decimal_text)},
            {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": draw(st.integers(0, 300))},
        ],
    }


def _parse(cls, entry, **kw):
    try:
        return cls.from_exchange_info(entry, **kw).units
    except ValueError:
        return "ValueError"


@settings(max_examples=300, deadline=None)
@given(symbol_entries(), st.sampled_from([None, "0.00000001", "0.001"]))
def test_parity_when_random_exchange_info_then_same_units(entry, price_unit):
    got = _parse(SymbolFilters, entry, price_unit=price_unit)
    want = _parse(SymbolFiltersTwin, entry, price_unit=price_unit)
    assert got == want


def test_parity_when_real_exchange_info_then_same_units():
    info = json.loads(shared_data("binance-nt", "http", "http_spot_market_exchange_info.json").read_text())
    for entry in info["symbols"]:
        assert SymbolFilters.from_exchange_info(entry).units == SymbolFiltersTwin.from_exchange_info(entry).units
