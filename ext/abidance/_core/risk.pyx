"""Pre-trade risk checks for Binance Spot orders, in exact int64 fixed point.

`PreTradeRisk.check_c` runs every check for one order intent without the GIL and
without raising: it returns a `RiskReason` code (ACCEPTED or the first failing check,
in the fixed order of the enum). Only an accepted order consumes rate tokens.

Units (see docs/risk.md):
- price: price units, by default the symbol's tickSize; quantity: qty units, by
  default its stepSize; notional = price * qty in price_unit * qty_unit.
- account money (limits, exposure, equity, PnL): quote units of 1e-8 quote asset.
"""

from libc.stdint cimport int64_t, INT64_MAX, INT64_MIN

from decimal import Decimal
from fractions import Fraction
from math import ceil, floor

from abidance._core.fixed import FixedPoint

# The builtins check the exact mathematical result, so an overflow is detected rather
# than wrapped (signed overflow is undefined behaviour in C).
cdef extern from *:
    bint mul_ovf "__builtin_mul_overflow"(int64_t a, int64_t b, int64_t* out) noexcept nogil
    bint add_ovf "__builtin_add_overflow"(int64_t a, int64_t b, int64_t* out) noexcept nogil
    bint sub_ovf "__builtin_sub_overflow"(int64_t a, int64_t b, int64_t* out) noexcept nogil

cdef enum:
    E8 = 100000000              # multiplier scale: parts per 1e8
    BPS = 10000

cdef int64_t WINDOW_10S_NS = 10_000_000_000
cdef int64_t WINDOW_DAY_NS = 86_400_000_000_000

QUOTE_UNIT = Decimal("0.00000001")
_QUOTE_FP = FixedPoint(QUOTE_UNIT)
_I64_MAX = INT64_MAX

REASON_MESSAGES = {
    ACCEPTED: "accepted",
    TRADING_HALTED: "trading is halted: every order is denied until resume()",
    INVALID_INPUT: "invalid order: quantity must be > 0, a priced order needs a price > 0, "
                   "side/type/symbol slot must be known",
    REDUCING_ONLY: "reduce-only mode: the order would not shrink the position (or would flip it)",
    NO_REFERENCE_PRICE: "no reference price (mid or average) to value or bound the order",
    PRICE_BELOW_MIN: "price below PRICE_FILTER minPrice",
    PRICE_ABOVE_MAX: "price above PRICE_FILTER maxPrice",
    PRICE_NOT_ON_TICK: "price not on PRICE_FILTER tickSize grid (from minPrice)",
    QTY_BELOW_MIN: "quantity below LOT_SIZE minQty",
    QTY_ABOVE_MAX: "quantity above LOT_SIZE maxQty",
    QTY_NOT_ON_STEP: "quantity not on LOT_SIZE stepSize grid (from minQty)",
    MARKET_QTY_BELOW_MIN: "market quantity below MARKET_LOT_SIZE minQty",
    MARKET_QTY_ABOVE_MAX: "market quantity above MARKET_LOT_SIZE maxQty",
    MARKET_QTY_NOT_ON_STEP: "market quantity not on MARKET_LOT_SIZE stepSize grid",
    NOTIONAL_BELOW_MIN: "notional (price x quantity) below NOTIONAL/MIN_NOTIONAL minNotional",
    NOTIONAL_ABOVE_MAX: "notional (price x quantity) above NOTIONAL maxNotional",
    PERCENT_PRICE_BY_SIDE: "price outside the PERCENT_PRICE(_BY_SIDE) band around the average price",
    PRICE_BAND: "price too far from the mid (fat-finger band)",
    MAX_ORDER_NOTIONAL: "order notional above the account's max order notional",
    MAX_POSITION: "the position (with open orders filled) would exceed the symbol's max position",
    MAX_GROSS_EXPOSURE: "gross exposure would exceed the account's max gross exposure",
    MAX_OPEN_ORDERS: "too many open orders (account limit or MAX_NUM_ORDERS)",
    ORDER_RATE_10S: "order rate limit per 10 seconds reached",
    ORDER_RATE_DAY: "order rate limit per day reached",
    DAILY_LOSS_LIMIT: "daily loss limit reached: trading halted",
    DRAWDOWN_LIMIT: "drawdown from the equity peak reached the limit: trading halted",
    OVERFLOW: "values too large: an int64 product or sum would overflow",
}

# Indexed by code: RiskReason(code) goes through EnumMeta.__call__, ~10x slower.
_REASONS = tuple(RiskReason(i) for i in range(len(REASON_MESSAGES)))
_STATES = tuple(TradingState(i) for i in range(3))


def describe(code, symbol=None, detail=None) -> str:
    """Human-readable text for a reason code, e.g. for logs and the dashboard."""
    reason = _REASONS[code] if 0 <= code < len(_REASONS) else None
    if reason is None:
        return f"unknown risk reason {code!r}"
    text = f"{reason.name}: {REASON_MESSAGES[reason]}"
    if symbol:
        text = f"{symbol} {text}"
    if detail:
        text = f"{text} ({detail})"
    return text


def quote_units(value) -> int:
    """Exact quote units (1e-8 quote asset) for decimal text: quote_units("1000") == 10**11."""
    return _QUOTE_FP.to_units(value)


# ---------------------------------------------------------------- edge conversion

def _frac(value) -> Fraction:
    return Fraction(Decimal(str(value)))


def _to_i64(n: int, what: str) -> int:
    if not -_I64_MAX <= n <= _I64_MAX:
        raise ValueError(f"{what} does not fit int64 in these units")
    return n


def _min_bound(value, unit: Fraction, what: str) -> int:
    # x >= v  <=>  units >= ceil(v / unit): a bound between units rounds up.
    return _to_i64(ceil(_frac(value) / unit), what)


def _max_bound(value, unit: Fraction, what: str) -> int:
    # x <= v  <=>  units <= floor(v / unit): a bound between units rounds down.
    return _to_i64(floor(_frac(value) / unit), what)


def _grid(value, unit: Fraction, what: str) -> int:
    """A tick/step in units: 0 stays 0 (disabled); finer than the unit -> 1 (always on grid)."""
    step = _frac(value)
    if step == 0:
        return 0
    ratio = step / unit
    if ratio.denominator == 1:
        return _to_i64(ratio.numerator, what)
    if (unit / step).denominator == 1:
        return 1
    raise ValueError(f"{what} {value} is not commensurable with the unit {unit}: choose a finer unit")


def _anchor(value, unit: Fraction, grid: int, what: str) -> int:
    # The tick/step grid starts at the min bound: it must be a whole number of units.
    low = _min_bound(value, unit, what)
    if grid > 1 and low * unit != _frac(value):
        raise ValueError(f"{what} {value} is not a whole number of units {unit}: choose a finer unit")
    return low


def _multiplier(value, rounding) -> int:
    # Rounded so the band only narrows: up multipliers down, down multipliers up.
    return _to_i64(rounding(_frac(value) * E8), "multiplier")


def _unit_text(value) -> str:
    return format(Decimal(str(value)).normalize(), "f")


# ---------------------------------------------------------------- hot-path kernels

cdef inline bint quote_of(int64_t notional, const Filters* f, int64_t* out) noexcept nogil:
    """ceil(notional * mul / div) for notional >= 0; True on overflow."""
    cdef int64_t t
    if mul_ovf(notional, f.quote_mul, &t):
        return True
    out[0] = t // f.quote_div + (1 if t % f.quote_div != 0 else 0)
    return False


cdef inline int64_t abs64(int64_t x) noexcept nogil:
    # Callers never pass INT64_MIN (positions saturate at +-INT64_MAX).
    return -x if x < 0 else x


cdef inline int64_t _sat_add(int64_t a, int64_t b) noexcept nogil:
    # Positions and open quantities saturate at +-INT64_MAX: never wrap, never INT64_MIN.
    cdef int64_t out
    if add_ovf(a, b, &out):
        return INT64_MAX if b > 0 else -INT64_MAX
    return -INT64_MAX if out == INT64_MIN else out


cdef inline void refill(Bucket* b, int64_t now) noexcept nogil:
    """Whole tokens back for each full interval elapsed; time running backwards adds none."""
    cdef int64_t n
    if now <= b.last_ns:
        return
    if b.tokens >= b.capacity:
        b.last_ns = now          # a full bucket does not bank idle time
        return
    n = (now - b.last_ns) // b.interval_ns
    if n >= b.capacity - b.tokens:
        b.tokens = b.capacity
        b.last_ns = now
    elif n > 0:
        b.tokens += n
        b.last_ns += n * b.interval_ns   # keep the partial interval


cdef void init_bucket(Bucket* b, int64_t capacity, int64_t window_ns) noexcept nogil:
    b.capacity = capacity
    # ceil: when the window is not a whole number of intervals, refill slightly slower.
    b.interval_ns = (window_ns - 1) // capacity + 1 if capacity > 0 else 0
    b.tokens = capacity
    b.last_ns = 0


cdef int check_filters_c(const Filters* f, bint is_market, int side, int64_t price,
                         int64_t qty, int64_t avg_ref) noexcept nogil:
    cdef int64_t notional, p8, bound, up, down
    cdef bint check_min, check_max
    if not is_market:
        if f.min_price > 0 and price < f.min_price:
            return PRICE_BELOW_MIN
        if f.max_price > 0 and price > f.max_price:
            return PRICE_ABOVE_MAX
        # price >= 0 and min_price <= price here, so the difference cannot overflow.
        if f.tick > 1 and (price - f.min_price) % f.tick != 0:
            return PRICE_NOT_ON_TICK
    if f.min_qty > 0 and qty < f.min_qty:
        return QTY_BELOW_MIN
    if f.max_qty > 0 and qty > f.max_qty:
        return QTY_ABOVE_MAX
    if f.step > 1 and (qty - f.min_qty) % f.step != 0:
        return QTY_NOT_ON_STEP
    if is_market:
        if f.market_min_qty > 0 and qty < f.market_min_qty:
            return MARKET_QTY_BELOW_MIN
        if f.market_max_qty > 0 and qty > f.market_max_qty:
            return MARKET_QTY_ABOVE_MAX
        if f.market_step > 1 and (qty - f.market_min_qty) % f.market_step != 0:
            return MARKET_QTY_NOT_ON_STEP
    check_min = f.min_notional > 0 and (not is_market or f.apply_min_to_market)
    check_max = f.max_notional > 0 and (not is_market or f.apply_max_to_market)
    if check_min or check_max:
        if mul_ovf(avg_ref if is_market else price, qty, &notional):
            return OVERFLOW
        if check_min and notional < f.min_notional:
            return NOTIONAL_BELOW_MIN
        if check_max and notional > f.max_notional:
            return NOTIONAL_ABOVE_MAX
    if not is_market:
        up = f.bid_up_e8 if side == BUY else f.ask_up_e8
        down = f.bid_down_e8 if side == BUY else f.ask_down_e8
        if up > 0 or down > 0:
            # price in [avg * down, avg * up], compared exactly as price * 1e8 vs avg * mult.
            if mul_ovf(price, E8, &p8):
                return OVERFLOW
            if down > 0:
                if mul_ovf(avg_ref, down, &bound):
                    return OVERFLOW
                if p8 < bound:
                    return PERCENT_PRICE_BY_SIDE
            if up > 0:
                if mul_ovf(avg_ref, up, &bound):
                    return OVERFLOW
                if p8 > bound:
                    return PERCENT_PRICE_BY_SIDE
    return ACCEPTED


# ---------------------------------------------------------------- classes

cdef class SymbolFilters:
    """One symbol's Binance filters in fixed point; 0 disables a part.

    Build it from exchangeInfo with `from_exchange_info(symbol_entry)`. The keyword
    constructor takes values already in units (tests, simulators).
    """

    def __init__(self, *, str symbol="", str quote_asset="", price_unit="1", qty_unit="1",
                 int64_t min_price=0, int64_t max_price=0, int64_t tick=0,
                 int64_t min_qty=0, int64_t max_qty=0, int64_t step=0,
                 int64_t market_min_qty=0, int64_t market_max_qty=0, int64_t market_step=0,
                 int64_t min_notional=0, int64_t max_notional=0,
                 bint apply_min_to_market=True, bint apply_max_to_market=False,
                 int64_t bid_up_e8=0, int64_t bid_down_e8=0,
                 int64_t ask_up_e8=0, int64_t ask_down_e8=0, int64_t max_num_orders=0):
        values = (min_price, max_price, tick, min_qty, max_qty, step, market_min_qty,
                  market_max_qty, market_step, min_notional, max_notional,
                  bid_up_e8, bid_down_e8, ask_up_e8, ask_down_e8, max_num_orders)
        if min(values) < 0:
            raise ValueError(f"{symbol or 'filters'}: filter values must be >= 0 (0 disables)")
        self.symbol = symbol
        self.quote_asset = quote_asset
        self.price_fp = FixedPoint(_unit_text(price_unit))
        self.qty_fp = FixedPoint(_unit_text(qty_unit))
        # notional unit / quote unit as a reduced fraction: exact conversion factors.
        ratio = _frac(price_unit) * _frac(qty_unit) / Fraction(QUOTE_UNIT)
        if ratio.numerator > _I64_MAX or ratio.denominator > _I64_MAX:
            raise ValueError(f"{symbol}: price_unit * qty_unit cannot be expressed in quote units")
        self.units = Filters(
            min_price=min_price, max_price=max_price, tick=tick,
            min_qty=min_qty, max_qty=max_qty, step=step,
            market_min_qty=market_min_qty, market_max_qty=market_max_qty,
            market_step=market_step, min_notional=min_notional, max_notional=max_notional,
            apply_min_to_market=apply_min_to_market, apply_max_to_market=apply_max_to_market,
            bid_up_e8=bid_up_e8, bid_down_e8=bid_down_e8,
            ask_up_e8=ask_up_e8, ask_down_e8=ask_down_e8, max_num_orders=max_num_orders,
            quote_mul=ratio.numerator, quote_div=ratio.denominator)

    @classmethod
    def from_exchange_info(cls, dict symbol_entry, price_unit=None, qty_unit=None):
        """Filters of one exchangeInfo `symbols[]` entry (Binance's decimal strings).

        Units default to tickSize/stepSize (or 10**-precision when a filter is absent or
        zero). Min bounds round up and max bounds round down to whole units, so a
        value inside the unit bounds is inside Binance's; tick/step grids must be whole
        units. Filters not checked here (ICEBERG_PARTS, TRAILING_DELTA, ...) are ignored.
        """
        sym = symbol_entry.get("symbol", "")
        by_type = {f["filterType"]: f for f in symbol_entry.get("filters", [])}
        price_f = by_type.get("PRICE_FILTER", {})
        lot = by_type.get("LOT_SIZE", {})
        market_lot = by_type.get("MARKET_LOT_SIZE", {})
        if price_unit is None:
            price_unit = price_f.get("tickSize", "0")
            if _frac(price_unit) == 0:
                price_unit = Decimal(1).scaleb(-int(symbol_entry.get("quoteAssetPrecision", 8)))
        if qty_unit is None:
            qty_unit = lot.get("stepSize", "0")
            if _frac(qty_unit) == 0:
                qty_unit = Decimal(1).scaleb(-int(symbol_entry.get("baseAssetPrecision", 8)))
        pu = _frac(price_unit)
        qu = _frac(qty_unit)
        kw = {}
        kw["tick"] = _grid(price_f.get("tickSize", "0"), pu, f"{sym} tickSize")
        kw["min_price"] = _anchor(price_f.get("minPrice", "0"), pu, kw["tick"], f"{sym} minPrice")
        kw["max_price"] = _max_bound(price_f.get("maxPrice", "0"), pu, f"{sym} maxPrice")
        kw["step"] = _grid(lot.get("stepSize", "0"), qu, f"{sym} stepSize")
        kw["min_qty"] = _anchor(lot.get("minQty", "0"), qu, kw["step"], f"{sym} minQty")
        kw["max_qty"] = _max_bound(lot.get("maxQty", "0"), qu, f"{sym} maxQty")
        kw["market_step"] = _grid(market_lot.get("stepSize", "0"), qu, f"{sym} market stepSize")
        kw["market_min_qty"] = _anchor(market_lot.get("minQty", "0"), qu, kw["market_step"],
                                       f"{sym} market minQty")
        kw["market_max_qty"] = _max_bound(market_lot.get("maxQty", "0"), qu, f"{sym} market maxQty")
        notional_unit = pu * qu
        if "NOTIONAL" in by_type:
            n = by_type["NOTIONAL"]
            kw["min_notional"] = _min_bound(n.get("minNotional", "0"), notional_unit, f"{sym} minNotional")
            kw["max_notional"] = _max_bound(n.get("maxNotional", "0"), notional_unit, f"{sym} maxNotional")
            kw["apply_min_to_market"] = bool(n.get("applyMinToMarket", True))
            kw["apply_max_to_market"] = bool(n.get("applyMaxToMarket", False))
        elif "MIN_NOTIONAL" in by_type:      # older symbols: min only
            n = by_type["MIN_NOTIONAL"]
            kw["min_notional"] = _min_bound(n.get("minNotional", "0"), notional_unit, f"{sym} minNotional")
            kw["apply_min_to_market"] = bool(n.get("applyToMarket", True))
        if "PERCENT_PRICE_BY_SIDE" in by_type:
            p = by_type["PERCENT_PRICE_BY_SIDE"]
            kw["bid_up_e8"] = _multiplier(p.get("bidMultiplierUp", "0"), floor)
            kw["bid_down_e8"] = _multiplier(p.get("bidMultiplierDown", "0"), ceil)
            kw["ask_up_e8"] = _multiplier(p.get("askMultiplierUp", "0"), floor)
            kw["ask_down_e8"] = _multiplier(p.get("askMultiplierDown", "0"), ceil)
        elif "PERCENT_PRICE" in by_type:     # older symbols: one band for both sides
            p = by_type["PERCENT_PRICE"]
            kw["bid_up_e8"] = kw["ask_up_e8"] = _multiplier(p.get("multiplierUp", "0"), floor)
            kw["bid_down_e8"] = kw["ask_down_e8"] = _multiplier(p.get("multiplierDown", "0"), ceil)
        if "MAX_NUM_ORDERS" in by_type:
            kw["max_num_orders"] = int(by_type["MAX_NUM_ORDERS"].get("maxNumOrders", 0))
        return cls(symbol=sym, quote_asset=symbol_entry.get("quoteAsset", ""),
                   price_unit=price_unit, qty_unit=qty_unit, **kw)

    def __repr__(self):
        return (f"SymbolFilters({self.symbol!r}, price_unit={str(self.price_fp.increment)!r}, "
                f"qty_unit={str(self.qty_fp.increment)!r})")


cdef class RiskLimits:
    """The account's own limits. Money in quote units (1e-8 quote asset); 0 disables."""

    def __init__(self, *, int64_t max_order_notional=0, int64_t max_gross_exposure=0,
                 int64_t max_open_orders=0, int64_t orders_per_10s=0, int64_t orders_per_day=0,
                 int64_t price_band_bps=0, int64_t daily_loss_limit=0, int64_t max_drawdown=0):
        if min(max_order_notional, max_gross_exposure, max_open_orders, orders_per_10s,
               orders_per_day, price_band_bps, daily_loss_limit, max_drawdown) < 0:
            raise ValueError("risk limits must be >= 0 (0 disables a limit)")
        self.max_order_notional = max_order_notional
        self.max_gross_exposure = max_gross_exposure
        self.max_open_orders = max_open_orders
        self.orders_per_10s = orders_per_10s
        self.orders_per_day = orders_per_day
        self.price_band_bps = price_band_bps
        self.daily_loss_limit = daily_loss_limit
        self.max_drawdown = max_drawdown

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in (
            "max_order_notional", "max_gross_exposure", "max_open_orders", "orders_per_10s",
            "orders_per_day", "price_band_bps", "daily_loss_limit", "max_drawdown")}

    def __repr__(self):
        return "RiskLimits(" + ", ".join(f"{k}={v}" for k, v in self.as_dict().items() if v) + ")"


cdef class PreTradeRisk:
    """Pre-trade checks and the state they need (positions, open orders, equity, rates).

    Register symbols with `add_symbol`, keep the state current with the `on_*` /
    `update_*` methods, and call `check` (or `check_c` from Cython) per order intent.
    """

    def __init__(self, RiskLimits limits=None):
        self.limits = limits if limits is not None else RiskLimits()
        self._filters = []
        self._n_slots = 0
        self._state = ACTIVE
        self._halt_reason = ACCEPTED
        init_bucket(&self._rate_10s, self.limits.orders_per_10s, WINDOW_10S_NS)
        init_bucket(&self._rate_day, self.limits.orders_per_day, WINDOW_DAY_NS)

    def set_limits(self, RiskLimits limits):
        """New account limits while running (a config change). A rate bucket whose capacity
        changed starts again full at its new size; positions, open orders and equity stay."""
        if limits is None:
            raise ValueError("limits must be a RiskLimits")
        cdef RiskLimits old = self.limits
        self.limits = limits
        if limits.orders_per_10s != old.orders_per_10s:
            init_bucket(&self._rate_10s, limits.orders_per_10s, WINDOW_10S_NS)
        if limits.orders_per_day != old.orders_per_day:
            init_bucket(&self._rate_day, limits.orders_per_day, WINDOW_DAY_NS)

    # ------------------------------------------------------------ the check

    cdef int check_c(self, Py_ssize_t slot, int side, int order_type, int64_t price_ticks,
                     int64_t qty_steps, int64_t mid_ticks, int64_t avg_price_ticks,
                     int64_t ts_ns) noexcept nogil:
        cdef Slot* s
        cdef bint is_market = order_type == MARKET
        cdef int64_t base, after, avg_ref, band_ref, est
        cdef bint overflow
        cdef int code
        # 1. state
        if self._state == HALTED:
            return TRADING_HALTED
        # 2. input validity
        if slot < 0 or slot >= self._n_slots or (side != BUY and side != SELL):
            return INVALID_INPUT
        if order_type < LIMIT or order_type > TAKE_PROFIT_LIMIT:
            return INVALID_INPUT
        if qty_steps <= 0 or mid_ticks < 0 or avg_price_ticks < 0:
            return INVALID_INPUT
        if not is_market and price_ticks <= 0:
            return INVALID_INPUT
        s = &self._slots[slot]
        # Worst case: every open order on this side fills, then this one.
        if side == BUY:
            overflow = add_ovf(s.position, s.open_buy_qty, &base) or add_ovf(base, qty_steps, &after)
        else:
            overflow = sub_ovf(s.position, s.open_sell_qty, &base) or sub_ovf(base, qty_steps, &after)
        if overflow or base == INT64_MIN or after == INT64_MIN:
            return OVERFLOW
        # 3. reduce-only: shrink |position| towards zero, never through it
        if self._state == REDUCING:
            if side == BUY and not (base < 0 and after <= 0):
                return REDUCING_ONLY
            if side == SELL and not (base > 0 and after >= 0):
                return REDUCING_ONLY
        # 4. reference prices. Binance values MARKET notional and PERCENT_PRICE at its
        # average price (avg, else mid); the fat-finger band and our own limits use the
        # mid (else avg). A check that cannot run denies instead of passing.
        avg_ref = avg_price_ticks if avg_price_ticks > 0 else mid_ticks
        band_ref = mid_ticks if mid_ticks > 0 else avg_price_ticks
        if avg_ref == 0:
            if is_market or self.limits.price_band_bps > 0:
                return NO_REFERENCE_PRICE
            if side == BUY and (s.f.bid_up_e8 > 0 or s.f.bid_down_e8 > 0):
                return NO_REFERENCE_PRICE
            if side == SELL and (s.f.ask_up_e8 > 0 or s.f.ask_down_e8 > 0):
                return NO_REFERENCE_PRICE
        est = band_ref if is_market else price_ticks
        # 5. exchange filters, 6. own limits, 7. rate (last: only accepted orders pay)
        code = check_filters_c(&s.f, is_market, side, price_ticks, qty_steps, avg_ref)
        if code != ACCEPTED:
            return code
        code = self._check_limits(s, is_market, price_ticks, est, qty_steps, base, after, band_ref)
        if code != ACCEPTED:
            return code
        return self._take_tokens(ts_ns)

    cdef int _check_limits(self, const Slot* s, bint is_market, int64_t price, int64_t est,
                           int64_t qty, int64_t base, int64_t after, int64_t band_ref) noexcept nogil:
        cdef int64_t dev, lhs, rhs, notional, quote, projected
        cdef int64_t abs_base = abs64(base)
        cdef int64_t abs_after = abs64(after)
        if not is_market and self.limits.price_band_bps > 0:
            # |price - mid| / mid > bps / 1e4, cross-multiplied to stay in integers.
            dev = price - band_ref if price >= band_ref else band_ref - price
            if mul_ovf(dev, BPS, &lhs) or mul_ovf(band_ref, self.limits.price_band_bps, &rhs):
                return OVERFLOW
            if lhs > rhs:
                return PRICE_BAND
        if self.limits.max_order_notional > 0:
            if mul_ovf(est, qty, &notional) or quote_of(notional, &s.f, &quote):
                return OVERFLOW
            if quote > self.limits.max_order_notional:
                return MAX_ORDER_NOTIONAL
        # Position and exposure limits deny only orders that grow |position|, so an
        # order that reduces an over-limit position is still allowed.
        if s.max_position > 0 and abs_after > s.max_position and abs_after > abs_base:
            return MAX_POSITION
        if self.limits.max_gross_exposure > 0 and abs_after > abs_base:
            # This symbol's exposure re-valued at the mid with the worst-case position.
            if (mul_ovf(abs_after, band_ref if band_ref > 0 else est, &notional)
                    or quote_of(notional, &s.f, &quote)
                    or add_ovf(self._gross_exposure - s.exposure, quote, &projected)):
                return OVERFLOW
            if projected > self.limits.max_gross_exposure:
                return MAX_GROSS_EXPOSURE
        if self.limits.max_open_orders > 0 and self._open_orders >= self.limits.max_open_orders:
            return MAX_OPEN_ORDERS
        if s.f.max_num_orders > 0 and s.open_orders >= s.f.max_num_orders:
            return MAX_OPEN_ORDERS
        return ACCEPTED

    cdef int _take_tokens(self, int64_t ts_ns) noexcept nogil:
        """Both buckets must hold a token; only then is one taken from each."""
        if self._rate_10s.capacity > 0:
            refill(&self._rate_10s, ts_ns)
            if self._rate_10s.tokens < 1:
                return ORDER_RATE_10S
        if self._rate_day.capacity > 0:
            refill(&self._rate_day, ts_ns)
            if self._rate_day.tokens < 1:
                return ORDER_RATE_DAY
        if self._rate_10s.capacity > 0:
            self._rate_10s.tokens -= 1
        if self._rate_day.capacity > 0:
            self._rate_day.tokens -= 1
        return ACCEPTED

    def check(self, Py_ssize_t slot, int side, int order_type, int64_t price_ticks,
              int64_t qty_steps, int64_t mid_ticks=0, int64_t avg_price_ticks=0,
              int64_t ts_ns=0):
        """RiskReason for one order intent (ACCEPTED consumes one token per rate bucket).

        price_ticks is ignored for MARKET; mid/avg 0 mean unknown. Values outside int64
        raise OverflowError here at the Python edge; check_c itself never raises.
        """
        return _REASONS[self.check_c(slot, side, order_type, price_ticks, qty_steps,
                                     mid_ticks, avg_price_ticks, ts_ns)]

    # ------------------------------------------------------------ symbols

    def add_symbol(self, SymbolFilters filters, int64_t max_position_steps=0) -> int:
        """Register a symbol; returns its slot. max_position_steps: |position| limit, 0 = none."""
        cdef Slot* s
        if filters is None:
            raise ValueError("filters must be a SymbolFilters")
        if self._n_slots >= MAX_SLOTS:
            raise ValueError(f"at most {MAX_SLOTS} symbols per PreTradeRisk")
        if max_position_steps < 0:
            raise ValueError("max_position_steps must be >= 0 (0 disables)")
        for other in self._filters:
            if other.symbol and other.symbol == filters.symbol:
                raise ValueError(f"symbol {filters.symbol} is already registered")
            # Gross exposure sums quote units: only meaningful in one quote asset.
            if other.quote_asset and filters.quote_asset and other.quote_asset != filters.quote_asset:
                raise ValueError(f"{filters.symbol} is quoted in {filters.quote_asset}, "
                                 f"the others in {other.quote_asset}: use one PreTradeRisk per quote asset")
        s = &self._slots[self._n_slots]
        s[0] = Slot(f=filters.units, max_position=max_position_steps, position=0,
                    open_buy_qty=0, open_sell_qty=0, open_orders=0, mark=0, exposure=0)
        self._filters.append(filters)
        self._n_slots += 1
        return self._n_slots - 1

    def filters(self, Py_ssize_t slot) -> SymbolFilters:
        return self._filters[self._slot(slot)]

    def _slot(self, Py_ssize_t slot) -> int:
        if not 0 <= slot < self._n_slots:
            raise IndexError(f"unknown symbol slot {slot} (have {self._n_slots})")
        return slot

    # ------------------------------------------------------------ state updates

    cdef void _set_exposure(self, Slot* s) noexcept nogil:
        """Re-value one slot and re-sum the gross (saturating at INT64_MAX, never wrapping)."""
        cdef int64_t notional, total = 0
        cdef Py_ssize_t i
        if mul_ovf(abs64(s.position), s.mark, &notional) or quote_of(notional, &s.f, &s.exposure):
            s.exposure = INT64_MAX
        for i in range(self._n_slots):
            if add_ovf(total, self._slots[i].exposure, &total):
                total = INT64_MAX
                break
        self._gross_exposure = total

    def on_order_open(self, Py_ssize_t slot, int side, int64_t qty_steps):
        """An order is working on the exchange: it counts as open until on_order_done."""
        cdef Slot* s = &self._slots[self._slot(slot)]
        _check_side_qty(side, qty_steps)
        self._open_orders += 1
        s.open_orders += 1
        if side == BUY:
            s.open_buy_qty = _sat_add(s.open_buy_qty, qty_steps)
        else:
            s.open_sell_qty = _sat_add(s.open_sell_qty, qty_steps)

    def on_order_done(self, Py_ssize_t slot, int side, int64_t remaining_qty_steps=0):
        """An open order ended (filled, cancelled, expired) with this much unfilled."""
        cdef Slot* s = &self._slots[self._slot(slot)]
        _check_side_qty(side, remaining_qty_steps, allow_zero=True)
        self._open_orders = max(0, self._open_orders - 1)
        s.open_orders = max(0, s.open_orders - 1)
        if side == BUY:
            s.open_buy_qty = max(0, s.open_buy_qty - remaining_qty_steps)
        else:
            s.open_sell_qty = max(0, s.open_sell_qty - remaining_qty_steps)

    def on_fill(self, Py_ssize_t slot, int side, int64_t qty_steps):
        """A fill moves the position and uses up that much of the side's open quantity."""
        cdef Slot* s = &self._slots[self._slot(slot)]
        _check_side_qty(side, qty_steps)
        if side == BUY:
            s.position = _sat_add(s.position, qty_steps)
            s.open_buy_qty = max(0, s.open_buy_qty - qty_steps)
        else:
            s.position = _sat_add(s.position, -qty_steps)
            s.open_sell_qty = max(0, s.open_sell_qty - qty_steps)
        self._set_exposure(s)

    def update_position(self, Py_ssize_t slot, int64_t position_steps):
        """Set the position outright (reconciliation with the exchange's balances)."""
        if position_steps == INT64_MIN:
            raise ValueError("position out of range")
        cdef Slot* s = &self._slots[self._slot(slot)]
        s.position = position_steps
        self._set_exposure(s)

    def update_mark(self, Py_ssize_t slot, int64_t mark_ticks):
        """The price (price units) that values this symbol's position in gross exposure."""
        if mark_ticks < 0:
            raise ValueError("mark must be >= 0")
        cdef Slot* s = &self._slots[self._slot(slot)]
        s.mark = mark_ticks
        self._set_exposure(s)

    def update_equity(self, int64_t equity):
        """New account equity (quote units). Returns DAILY_LOSS_LIMIT / DRAWDOWN_LIMIT
        (and halts) when a limit is reached, OVERFLOW if it cannot be computed, else ACCEPTED.

        A limit is reached when the loss equals it. The first equity seen also starts
        the day and the peak.
        """
        cdef int64_t loss
        cdef int breach = ACCEPTED
        if not self._has_equity:
            self._has_equity = True
            self._peak_equity = self._day_start_equity = equity
        self._equity = equity
        if equity > self._peak_equity:
            self._peak_equity = equity
        if self.limits.daily_loss_limit > 0:
            if sub_ovf(self._day_start_equity, equity, &loss):
                breach = OVERFLOW
            elif loss >= self.limits.daily_loss_limit:
                breach = DAILY_LOSS_LIMIT
        if breach == ACCEPTED and self.limits.max_drawdown > 0:
            if sub_ovf(self._peak_equity, equity, &loss):
                breach = OVERFLOW
            elif loss >= self.limits.max_drawdown:
                breach = DRAWDOWN_LIMIT
        if breach != ACCEPTED and self._state != HALTED:
            self._halt(breach)
        return _REASONS[breach]

    def new_day(self, equity=None):
        """Start a trading day: the daily loss is measured from this equity (default: current).
        Returns update_equity's code for the given equity.

        Does not resume a halted state: resume() is an explicit decision.
        """
        if equity is None:
            if self._has_equity:
                self._day_start_equity = self._equity
            return _REASONS[ACCEPTED]
        self._day_start_equity = equity
        return self.update_equity(equity)   # may still breach the drawdown limit

    def restore(self, rate_10s=None, rate_day=None, peak_equity=None, day_start_equity=None):
        """Carry state over a restart (the node's state file), so that no limit starts afresh.

        rate_10s / rate_day: (tokens, last_ns) of the order-rate buckets as `snapshot()` gave
        them; tokens are clamped to the current capacity (a limit may have changed), and the
        time since last_ns refills them as it would have. peak_equity / day_start_equity (quote
        units): the drawdown peak and the day's starting equity; the next update_equity
        measures the loss from them (a new day is only started by new_day()).
        """
        if rate_10s is not None:
            _restore_bucket(&self._rate_10s, rate_10s[0], rate_10s[1])
        if rate_day is not None:
            _restore_bucket(&self._rate_day, rate_day[0], rate_day[1])
        if peak_equity is not None or day_start_equity is not None:
            if peak_equity is None or day_start_equity is None:
                raise ValueError("peak_equity and day_start_equity are restored together")
            if peak_equity < day_start_equity:
                raise ValueError("peak_equity must be >= day_start_equity")
            self._has_equity = True
            self._peak_equity = peak_equity
            self._day_start_equity = day_start_equity
            self._equity = day_start_equity

    cdef void _halt(self, int reason) noexcept nogil:
        self._state = HALTED
        self._halt_reason = reason

    def halt(self, int reason=TRADING_HALTED):
        """Deny every order until resume() (kill switch). Records the reason."""
        if not 0 < reason < len(_REASONS):
            raise ValueError(f"halt reason must be a RiskReason other than ACCEPTED, not {reason!r}")
        self._halt(reason)

    def set_reducing(self):
        """Admit only orders that shrink |position| without flipping it."""
        self._state = REDUCING

    def resume(self):
        """Back to ACTIVE. The last halt reason stays recorded."""
        self._state = ACTIVE

    # ------------------------------------------------------------ read-only views

    @property
    def state(self):
        return _STATES[self._state]

    @property
    def halt_reason(self):
        return _REASONS[self._halt_reason]

    @property
    def n_slots(self) -> int:
        return self._n_slots

    @property
    def open_orders(self) -> int:
        return self._open_orders

    @property
    def gross_exposure(self) -> int:
        return self._gross_exposure

    @property
    def equity(self) -> int:
        return self._equity

    @property
    def peak_equity(self) -> int:
        return self._peak_equity

    @property
    def day_start_equity(self) -> int:
        return self._day_start_equity

    @property
    def day_pnl(self) -> int:
        """Realised + unrealised PnL since new_day, in quote units (equity - day start)."""
        return self._equity - self._day_start_equity

    @property
    def drawdown(self) -> int:
        return self._peak_equity - self._equity

    @property
    def tokens_10s(self) -> int:
        return self._rate_10s.tokens

    @property
    def tokens_day(self) -> int:
        return self._rate_day.tokens

    def position(self, Py_ssize_t slot) -> int:
        return self._slots[self._slot(slot)].position

    def slot_state(self, Py_ssize_t slot) -> dict:
        cdef Slot* s = &self._slots[self._slot(slot)]
        return {"position": s.position, "open_buy_qty": s.open_buy_qty,
                "open_sell_qty": s.open_sell_qty, "open_orders": s.open_orders,
                "mark": s.mark, "exposure": s.exposure}

    def snapshot(self) -> dict:
        """Every piece of state, as plain ints (parity tests compare these)."""
        return {
            "state": self._state, "halt_reason": self._halt_reason,
            "open_orders": self._open_orders, "gross_exposure": self._gross_exposure,
            "has_equity": bool(self._has_equity), "equity": self._equity,
            "peak_equity": self._peak_equity, "day_start_equity": self._day_start_equity,
            "rate_10s": (self._rate_10s.tokens, self._rate_10s.last_ns),
            "rate_day": (self._rate_day.tokens, self._rate_day.last_ns),
            "slots": [self.slot_state(i) for i in range(self._n_slots)],
        }


cdef void _restore_bucket(Bucket* b, int64_t tokens, int64_t last_ns) noexcept nogil:
    # A disabled bucket stays disabled; a smaller capacity than when saved caps the tokens.
    if b.capacity <= 0:
        return
    b.tokens = 0 if tokens < 0 else (b.capacity if tokens > b.capacity else tokens)
    b.last_ns = last_ns if last_ns > 0 else 0


def _check_side_qty(int side, int64_t qty, bint allow_zero=False):
    if side != BUY and side != SELL:
        raise ValueError(f"side must be OrderSide.BUY or OrderSide.SELL, not {side!r}")
    if qty < 0 or (qty == 0 and not allow_zero):
        raise ValueError(f"quantity must be {'>= 0' if allow_zero else '> 0'}, not {qty}")


def _bench_check_loop(PreTradeRisk risk, Py_ssize_t n, Py_ssize_t slot, int side, int order_type,
                      int64_t price_ticks, int64_t qty_steps, int64_t mid_ticks,
                      int64_t avg_price_ticks, int64_t ts0_ns, int64_t ts_step_ns) -> int:
    """Call check_c n times (ts advancing by ts_step_ns); returns how many were accepted."""
    cdef Py_ssize_t i
    cdef Py_ssize_t accepted = 0
    cdef int64_t ts = ts0_ns
    with nogil:
        for i in range(n):
            if risk.check_c(slot, side, order_type, price_ticks, qty_steps,
                            mid_ticks, avg_price_ticks, ts) == ACCEPTED:
                accepted += 1
            ts += ts_step_ns
    return accepted
