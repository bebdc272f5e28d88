"""Pure-Python reference twin of abidance._core.risk (tests only).

Plain Python ints written for obviousness; int64 limits are emulated explicitly
(`_i64`) so overflow is a denial exactly where the C code detects it. Same API,
same check order; parity tests require identical reason codes and state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from math import ceil, floor

from abidance._core.risk import OrderSide, OrderType, RiskReason as R, TradingState

I64_MAX = 2**63 - 1
I64_MIN = -(2**63)
QUOTE_UNIT = Fraction(1, 10**8)
E8 = 10**8
WINDOW_10S_NS = 10 * 10**9
WINDOW_DAY_NS = 86_400 * 10**9
MAX_SLOTS = 64


class _Overflow(Exception):
    pass


def _int64_arg(x: int) -> int:
    """An int64 argument at the Python edge: Cython raises OverflowError for one that does not fit."""
    if not I64_MIN <= x <= I64_MAX:
        raise OverflowError(f"{x} does not fit int64")
    return x


def _i64(x: int) -> int:
    """x if it fits int64, else the overflow the C builtins report."""
    if not I64_MIN <= x <= I64_MAX:
        raise _Overflow
    return x


def _frac(value) -> Fraction:
    if isinstance(value, Fraction):
        return value
    return Fraction(Decimal(str(value)))


# ---------------------------------------------------------------- filters

FIELDS = ("min_price", "max_price", "tick", "min_qty", "max_qty", "step", "market_min_qty",
          "market_max_qty", "market_step", "min_notional", "max_notional", "apply_min_to_market",
          "apply_max_to_market", "bid_up_e8", "bid_down_e8", "ask_up_e8", "ask_down_e8",
          "max_num_orders", "quote_mul", "quote_div")


class SymbolFiltersTwin:
    def __init__(self, *, symbol="", quote_asset="", price_unit="1", qty_unit="1",
                 min_price=0, max_price=0, tick=0, min_qty=0, max_qty=0, step=0,
                 market_min_qty=0, market_max_qty=0, market_step=0,
                 min_notional=0, max_notional=0, apply_min_to_market=True,
                 apply_max_to_market=False, bid_up_e8=0, bid_down_e8=0, ask_up_e8=0,
                 ask_down_e8=0, max_num_orders=0):
        self.symbol = symbol
        self.quote_asset = quote_asset
        self.price_unit = _frac(price_unit)
        self.qty_unit = _frac(qty_unit)
        ratio = self.price_unit * self.qty_unit / QUOTE_UNIT
        self.units = dict(
            min_price=min_price, max_price=max_price, tick=tick, min_qty=min_qty,
            max_qty=max_qty, step=step, market_min_qty=market_min_qty,
            market_max_qty=market_max_qty, market_step=market_step,
            min_notional=min_notional, max_notional=max_notional,
            apply_min_to_market=bool(apply_min_to_market),
            apply_max_to_market=bool(apply_max_to_market),
            bid_up_e8=bid_up_e8, bid_down_e8=bid_down_e8, ask_up_e8=ask_up_e8,
            ask_down_e8=ask_down_e8, max_num_orders=max_num_orders,
            quote_mul=ratio.numerator, quote_div=ratio.denominator)
        for k, v in self.units.items():
            if not 0 <= v <= I64_MAX:
                raise ValueError(f"{k} must be >= 0 and fit int64")

    @classmethod
    def from_exchange_info(cls, entry: dict, price_unit=None, qty_unit=None):
        flt = {f["filterType"]: f for f in entry.get("filters", [])}
        pf, lot, mlot = (flt.get(k, {}) for k in ("PRICE_FILTER", "LOT_SIZE", "MARKET_LOT_SIZE"))
        if price_unit is None:
            price_unit = pf.get("tickSize", "0")
            if _frac(price_unit) == 0:
                price_unit = Fraction(1, 10 ** int(entry.get("quoteAssetPrecision", 8)))
        if qty_unit is None:
            qty_unit = lot.get("stepSize", "0")
            if _frac(qty_unit) == 0:
                qty_unit = Fraction(1, 10 ** int(entry.get("baseAssetPrecision", 8)))
        pu, qu = _frac(price_unit), _frac(qty_unit)

        def grid(v, unit, what):
            v = _frac(v)
            if v == 0:
                return 0
            if (v / unit).denominator == 1:
                return int(v / unit)
            if (unit / v).denominator == 1:
                return 1
            raise ValueError(f"{what} {v} is not commensurable with the unit {unit}")

        def lo(v, unit):
            return ceil(_frac(v) / unit)

        def anchor(v, unit, step, what):
            if step > 1 and (_frac(v) / unit).denominator != 1:
                raise ValueError(f"{what} {v} is not a whole number of units {unit}")
            return lo(v, unit)

        def hi(v, unit):
            return floor(_frac(v) / unit)

        kw = dict(tick=grid(pf.get("tickSize", "0"), pu, "tickSize"),
                  step=grid(lot.get("stepSize", "0"), qu, "stepSize"),
                  market_step=grid(mlot.get("stepSize", "0"), qu, "market stepSize"))
        kw.update(min_price=anchor(pf.get("minPrice", "0"), pu, kw["tick"], "minPrice"),
                  max_price=hi(pf.get("maxPrice", "0"), pu),
                  min_qty=anchor(lot.get("minQty", "0"), qu, kw["step"], "minQty"),
                  max_qty=hi(lot.get("maxQty", "0"), qu),
                  market_min_qty=anchor(mlot.get("minQty", "0"), qu, kw["market_step"], "market minQty"),
                  market_max_qty=hi(mlot.get("maxQty", "0"), qu))
        nu = pu * qu
        if "NOTIONAL" in flt:
            n = flt["NOTIONAL"]
            kw.update(min_notional=lo(n.get("minNotional", "0"), nu),
                      max_notional=hi(n.get("maxNotional", "0"), nu),
                      apply_min_to_market=bool(n.get("applyMinToMarket", True)),
                      apply_max_to_market=bool(n.get("applyMaxToMarket", False)))
        elif "MIN_NOTIONAL" in flt:
            n = flt["MIN_NOTIONAL"]
            kw.update(min_notional=lo(n.get("minNotional", "0"), nu),
                      apply_min_to_market=bool(n.get("applyToMarket", True)))
        if "PERCENT_PRICE_BY_SIDE" in flt:
            p = flt["PERCENT_PRICE_BY_SIDE"]
            kw.update(bid_up_e8=floor(_frac(p.get("bidMultiplierUp", "0")) * E8),
                      bid_down_e8=ceil(_frac(p.get("bidMultiplierDown", "0")) * E8),
                      ask_up_e8=floor(_frac(p.get("askMultiplierUp", "0")) * E8),
                      ask_down_e8=ceil(_frac(p.get("askMultiplierDown", "0")) * E8))
        elif "PERCENT_PRICE" in flt:
            p = flt["PERCENT_PRICE"]
            up = floor(_frac(p.get("multiplierUp", "0")) * E8)
            down = ceil(_frac(p.get("multiplierDown", "0")) * E8)
            kw.update(bid_up_e8=up, ask_up_e8=up, bid_down_e8=down, ask_down_e8=down)
        if "MAX_NUM_ORDERS" in flt:
            kw["max_num_orders"] = int(flt["MAX_NUM_ORDERS"].get("maxNumOrders", 0))
        return cls(symbol=entry.get("symbol", ""), quote_asset=entry.get("quoteAsset", ""),
                   price_unit=pu, qty_unit=qu, **kw)


def check_filters(f: dict, is_market: bool, side: int, price: int, qty: int, avg_ref: int) -> int:
    if not is_market:
        if f["min_price"] > 0 and price < f["min_price"]:
            return R.PRICE_BELOW_MIN
        if f["max_price"] > 0 and price > f["max_price"]:
            return R.PRICE_ABOVE_MAX
        if f["tick"] > 1 and (price - f["min_price"]) % f["tick"] != 0:
            return R.PRICE_NOT_ON_TICK
    if f["min_qty"] > 0 and qty < f["min_qty"]:
        return R.QTY_BELOW_MIN
    if f["max_qty"] > 0 and qty > f["max_qty"]:
        return R.QTY_ABOVE_MAX
    if f["step"] > 1 and (qty - f["min_qty"]) % f["step"] != 0:
        return R.QTY_NOT_ON_STEP
    if is_market:
        if f["market_min_qty"] > 0 and qty < f["market_min_qty"]:
            return R.MARKET_QTY_BELOW_MIN
        if f["market_max_qty"] > 0 and qty > f["market_max_qty"]:
            return R.MARKET_QTY_ABOVE_MAX
        if f["market_step"] > 1 and (qty - f["market_min_qty"]) % f["market_step"] != 0:
            return R.MARKET_QTY_NOT_ON_STEP
    check_min = f["min_notional"] > 0 and (not is_market or f["apply_min_to_market"])
    check_max = f["max_notional"] > 0 and (not is_market or f["apply_max_to_market"])
    if check_min or check_max:
        notional = _i64((avg_ref if is_market else price) * qty)
        if check_min and notional < f["min_notional"]:
            return R.NOTIONAL_BELOW_MIN
        if check_max and notional > f["max_notional"]:
            return R.NOTIONAL_ABOVE_MAX
    if not is_market:
        up = f["bid_up_e8"] if side == OrderSide.BUY else f["ask_up_e8"]
        down = f["bid_down_e8"] if side == OrderSide.BUY else f["ask_down_e8"]
        if up > 0 or down > 0:
            p8 = _i64(price * E8)
            if down > 0 and p8 < _i64(avg_ref * down):
                return R.PERCENT_PRICE_BY_SIDE
            if up > 0 and p8 > _i64(avg_ref * up):
                return R.PERCENT_PRICE_BY_SIDE
    return R.ACCEPTED


def _quote(notional: int, f: dict) -> int:
    t = _i64(notional * f["quote_mul"])
    return -(-t // f["quote_div"])


def _sat(x: int) -> int:
    return max(-I64_MAX, min(I64_MAX, x))


# ---------------------------------------------------------------- limits and state

class RiskLimitsTwin:
    KEYS = ("max_order_notional", "max_gross_exposure", "max_open_orders", "orders_per_10s",
            "orders_per_day", "price_band_bps", "daily_loss_limit", "max_drawdown")

    def __init__(self, **kw):
        for k in self.KEYS:
            v = kw.pop(k, 0)
            if v < 0:
                raise ValueError(k)
            setattr(self, k, v)
        if kw:
            raise TypeError(f"unknown limits {sorted(kw)}")

    def as_dict(self):
        return {k: getattr(self, k) for k in self.KEYS}


@dataclass
class Bucket:
    capacity: int
    window_ns: int
    tokens: int = 0
    last_ns: int = 0
    interval_ns: int = field(init=False)

    def __post_init__(self):
        self.interval_ns = -(-self.window_ns // self.capacity) if self.capacity > 0 else 0
        self.tokens = self.capacity

    def refill(self, now: int) -> None:
        if now <= self.last_ns:
            return
        if self.tokens >= self.capacity:
            self.last_ns = now
            return
        n = (now - self.last_ns) // self.interval_ns
        if n >= self.capacity - self.tokens:
            self.tokens, self.last_ns = self.capacity, now
        elif n > 0:
            self.tokens += n
            self.last_ns += n * self.interval_ns


@dataclass
class SlotTwin:
    f: dict
    max_position: int
    position: int = 0
    open_buy_qty: int = 0
    open_sell_qty: int = 0
    open_orders: int = 0
    mark: int = 0
    exposure: int = 0


class PreTradeRiskTwin:
    def __init__(self, limits: RiskLimitsTwin | None = None):
        self.limits = limits or RiskLimitsTwin()
        self.slots: list[SlotTwin] = []
        self.filters_: list[SymbolFiltersTwin] = []
        self._state = TradingState.ACTIVE
        self._halt_reason = R.ACCEPTED
        self.open_orders = 0
        self.gross_exposure = 0
        self.has_equity = False
        self.equity = self.peak_equity = self.day_start_equity = 0
        self.rate_10s = Bucket(self.limits.orders_per_10s, WINDOW_10S_NS)
        self.rate_day = Bucket(self.limits.orders_per_day, WINDOW_DAY_NS)

    state = property(lambda self: TradingState(self._state))
    halt_reason = property(lambda self: R(self._halt_reason))
    n_slots = property(lambda self: len(self.slots))

    def add_symbol(self, filters: SymbolFiltersTwin, max_position_steps: int = 0) -> int:
        if len(self.slots) >= MAX_SLOTS or max_position_steps < 0:
            raise ValueError("cannot add symbol")
        for other in self.filters_:
            if other.symbol and other.symbol == filters.symbol:
                raise ValueError(f"symbol {filters.symbol} is already registered")
            if other.quote_asset and filters.quote_asset and other.quote_asset != filters.quote_asset:
                raise ValueError(f"{filters.symbol} is quoted in {filters.quote_asset}")
        self.slots.append(SlotTwin(dict(filters.units), max_position_steps))
        self.filters_.append(filters)
        return len(self.slots) - 1

    # ------------------------------------------------------------ the check

    def check(self, slot, side, order_type, price_ticks, qty_steps, mid_ticks=0,
              avg_price_ticks=0, ts_ns=0) -> R:
        try:
            return R(self._check(slot, side, order_type, price_ticks, qty_steps,
                                 mid_ticks, avg_price_ticks, ts_ns))
        except _Overflow:
            return R.OVERFLOW

    def _check(self, slot, side, order_type, price, qty, mid, avg, ts):
        if self._state == TradingState.HALTED:
            return R.TRADING_HALTED
        if not 0 <= slot < len(self.slots) or side not in (OrderSide.BUY, OrderSide.SELL):
            return R.INVALID_INPUT
        if not OrderType.LIMIT <= order_type <= OrderType.TAKE_PROFIT_LIMIT:
            return R.INVALID_INPUT
        is_market = order_type == OrderType.MARKET
        if qty <= 0 or mid < 0 or avg < 0 or (not is_market and price <= 0):
            return R.INVALID_INPUT
        s = self._slot(slot)
        if side == OrderSide.BUY:
            base = _i64(s.position + s.open_buy_qty)
            after = _i64(base + qty)
        else:
            base = _i64(s.position - s.open_sell_qty)
            after = _i64(base - qty)
        if I64_MIN in (base, after):
            return R.OVERFLOW
        if self._state == TradingState.REDUCING:
            shrinks = (base < 0 and after <= 0) if side == OrderSide.BUY else (base > 0 and after >= 0)
            if not shrinks:
                return R.REDUCING_ONLY
        f = s.f
        avg_ref = avg if avg > 0 else mid
        band_ref = mid if mid > 0 else avg
        if avg_ref == 0:
            sided = ("bid_up_e8", "bid_down_e8") if side == OrderSide.BUY else ("ask_up_e8", "ask_down_e8")
            if is_market or self.limits.price_band_bps > 0 or any(f[k] > 0 for k in sided):
                return R.NO_REFERENCE_PRICE
        est = band_ref if is_market else price
        code = check_filters(f, is_market, side, price, qty, avg_ref)
        if code != R.ACCEPTED:
            return code
        code = self._check_limits(s, is_market, price, est, qty, base, after, band_ref)
        if code != R.ACCEPTED:
            return code
        return self._take_tokens(ts)

    def _check_limits(self, s, is_market, price, est, qty, base, after, band_ref):
        lim = self.limits
        if not is_market and lim.price_band_bps > 0:
            if _i64(abs(price - band_ref) * 10_000) > _i64(band_ref * lim.price_band_bps):
                return R.PRICE_BAND
        if lim.max_order_notional > 0:
            if _quote(_i64(est * qty), s.f) > lim.max_order_notional:
                return R.MAX_ORDER_NOTIONAL
        grows = abs(after) > abs(base)
        if s.max_position > 0 and abs(after) > s.max_position and grows:
            return R.MAX_POSITION
        if lim.max_gross_exposure > 0 and grows:
            m = band_ref if band_ref > 0 else est
            projected = _i64(self.gross_exposure - s.exposure + _quote(_i64(abs(after) * m), s.f))
            if projected > lim.max_gross_exposure:
                return R.MAX_GROSS_EXPOSURE
        if lim.max_open_orders > 0 and self.open_orders >= lim.max_open_orders:
            return R.MAX_OPEN_ORDERS
        if s.f["max_num_orders"] > 0 and s.open_orders >= s.f["max_num_orders"]:
            return R.MAX_OPEN_ORDERS
        return R.ACCEPTED

    def _take_tokens(self, ts):
        buckets = [(b, code) for b, code in ((self.rate_10s, R.ORDER_RATE_10S),
                                             (self.rate_day, R.ORDER_RATE_DAY)) if b.capacity > 0]
        for b, code in buckets:
            b.refill(ts)
            if b.tokens < 1:
                return code
        for b, _ in buckets:
            b.tokens -= 1
        return R.ACCEPTED

    # ------------------------------------------------------------ state updates

    def _set_exposure(self, s: SlotTwin) -> None:
        try:
            s.exposure = _quote(_i64(abs(s.position) * s.mark), s.f)
            s.exposure = _i64(s.exposure)
        except _Overflow:
            s.exposure = I64_MAX
        self.gross_exposure = min(I64_MAX, sum(x.exposure for x in self.slots))

    @staticmethod
    def _side_qty(side, qty, allow_zero=False):
        if side not in (OrderSide.BUY, OrderSide.SELL) or qty < 0 or (qty == 0 and not allow_zero):
            raise ValueError("bad side or quantity")

    def _slot(self, slot) -> SlotTwin:
        if not 0 <= slot < len(self.slots):
            raise IndexError(f"unknown symbol slot {slot}")
        return self.slots[slot]

    def on_order_open(self, slot, side, qty_steps):
        s = self._slot(slot)
        self._side_qty(side, qty_steps)
        self.open_orders += 1
        s.open_orders += 1
        if side == OrderSide.BUY:
            s.open_buy_qty = _sat(s.open_buy_qty + qty_steps)
        else:
            s.open_sell_qty = _sat(s.open_sell_qty + qty_steps)

    def on_order_done(self, slot, side, remaining_qty_steps=0):
        s = self._slot(slot)
        self._side_qty(side, remaining_qty_steps, allow_zero=True)
        self.open_orders = max(0, self.open_orders - 1)
        s.open_orders = max(0, s.open_orders - 1)
        if side == OrderSide.BUY:
            s.open_buy_qty = max(0, s.open_buy_qty - remaining_qty_steps)
        else:
            s.open_sell_qty = max(0, s.open_sell_qty - remaining_qty_steps)

    def on_fill(self, slot, side, qty_steps):
        s = self._slot(slot)
        self._side_qty(side, qty_steps)
        if side == OrderSide.BUY:
            s.position = _sat(s.position + qty_steps)
            s.open_buy_qty = max(0, s.open_buy_qty - qty_steps)
        else:
            s.position = _sat(s.position - qty_steps)
            s.open_sell_qty = max(0, s.open_sell_qty - qty_steps)
        self._set_exposure(s)

    def update_position(self, slot, position_steps):
        if not -I64_MAX <= position_steps <= I64_MAX:
            raise ValueError("position out of range")
        s = self._slot(slot)
        s.position = position_steps
        self._set_exposure(s)

    def update_mark(self, slot, mark_ticks):
        if mark_ticks < 0:
            raise ValueError("mark must be >= 0")
        s = self._slot(slot)
        s.mark = mark_ticks
        self._set_exposure(s)

    def update_equity(self, equity: int) -> R:
        if not self.has_equity:
            self.has_equity = True
            self.peak_equity = self.day_start_equity = equity
        self.equity = equity
        self.peak_equity = max(self.peak_equity, equity)
        breach = R.ACCEPTED
        for limit, start, code in ((self.limits.daily_loss_limit, self.day_start_equity, R.DAILY_LOSS_LIMIT),
                                   (self.limits.max_drawdown, self.peak_equity, R.DRAWDOWN_LIMIT)):
            if limit > 0:
                loss = start - equity
                if not I64_MIN <= loss <= I64_MAX:
                    breach = R.OVERFLOW
                elif loss >= limit:
                    breach = code
                if breach != R.ACCEPTED:
                    break
        if breach != R.ACCEPTED and self._state != TradingState.HALTED:
            self._state, self._halt_reason = TradingState.HALTED, breach
        return breach

    def new_day(self, equity=None) -> R:
        if equity is None:
            if self.has_equity:
                self.day_start_equity = self.equity
            return R.ACCEPTED
        self.day_start_equity = equity
        return self.update_equity(equity)

    def restore(self, rate_10s=None, rate_day=None, peak_equity=None, day_start_equity=None):
        for bucket, saved in ((self.rate_10s, rate_10s), (self.rate_day, rate_day)):
            if saved is not None and bucket.capacity > 0:
                tokens, last_ns = _int64_arg(saved[0]), _int64_arg(saved[1])
                bucket.tokens = min(max(tokens, 0), bucket.capacity)
                bucket.last_ns = max(last_ns, 0)
        if peak_equity is not None or day_start_equity is not None:
            if peak_equity is None or day_start_equity is None or peak_equity < day_start_equity:
                raise ValueError("bad equity restore")
            self.has_equity = True
            self.peak_equity, self.day_start_equity = _int64_arg(peak_equity), _int64_arg(day_start_equity)
            self.equity = self.day_start_equity

    def halt(self, reason=R.TRADING_HALTED):
        if not 0 < reason <= max(R):
            raise ValueError("bad halt reason")
        self._state, self._halt_reason = TradingState.HALTED, reason

    def set_reducing(self):
        self._state = TradingState.REDUCING

    def resume(self):
        self._state = TradingState.ACTIVE

    # ------------------------------------------------------------ views

    day_pnl = property(lambda self: self.equity - self.day_start_equity)
    drawdown = property(lambda self: self.peak_equity - self.equity)
    tokens_10s = property(lambda self: self.rate_10s.tokens)
    tokens_day = property(lambda self: self.rate_day.tokens)

    def position(self, slot):
        return self._slot(slot).position

    def slot_state(self, slot):
        s = self._slot(slot)
        return {k: getattr(s, k) for k in ("position", "open_buy_qty", "open_sell_qty",
                                            "open_orders", "mark", "exposure")}

    def snapshot(self) -> dict:
        return {
            "state": int(self._state), "halt_reason": int(self._halt_reason),
            "open_orders": self.open_orders, "gross_exposure": self.gross_exposure,
            "has_equity": self.has_equity, "equity": self.equity,
            "peak_equity": self.peak_equity, "day_start_equity": self.day_start_equity,
            "rate_10s": (self.rate_10s.tokens, self.rate_10s.last_ns),
            "rate_day": (self.rate_day.tokens, self.rate_day.last_ns),
            "slots": [self.slot_state(i) for i in range(len(self.slots))],
        }
