# Pre-trade risk checks: Binance Spot symbol filters plus the account's own limits.
#
# Money is exact int64: prices in price units (the symbol's tick by default), quantities
# in qty units (the step by default), notionals in price_unit * qty_unit, account-level
# money (limits, exposure, equity) in quote units of 1e-8 of the quote asset.
from libc.stdint cimport int64_t

# Values are stable (stored with decisions): append new codes, never renumber.
# ACCEPTED, then the denial reasons in the order check_c evaluates them.
cpdef enum RiskReason:
    ACCEPTED = 0
    TRADING_HALTED = 1        # state is HALTED: everything is denied
    INVALID_INPUT = 2         # qty <= 0, price <= 0 on a priced order, unknown side/type/slot
    REDUCING_ONLY = 3         # state is REDUCING and the order would not shrink the position
    NO_REFERENCE_PRICE = 4    # a reference-based check is needed but mid and avg are both 0
    PRICE_BELOW_MIN = 5
    PRICE_ABOVE_MAX = 6
    PRICE_NOT_ON_TICK = 7
    QTY_BELOW_MIN = 8
    QTY_ABOVE_MAX = 9
    QTY_NOT_ON_STEP = 10
    MARKET_QTY_BELOW_MIN = 11
    MARKET_QTY_ABOVE_MAX = 12
    MARKET_QTY_NOT_ON_STEP = 13
    NOTIONAL_BELOW_MIN = 14
    NOTIONAL_ABOVE_MAX = 15
    PERCENT_PRICE_BY_SIDE = 16
    PRICE_BAND = 17           # fat finger: limit price too far from the mid
    MAX_ORDER_NOTIONAL = 18
    MAX_POSITION = 19
    MAX_GROSS_EXPOSURE = 20
    MAX_OPEN_ORDERS = 21
    ORDER_RATE_10S = 22
    ORDER_RATE_DAY = 23
    DAILY_LOSS_LIMIT = 24     # halt reasons reported by update_equity, not by check
    DRAWDOWN_LIMIT = 25
    OVERFLOW = 26             # an int64 product or sum would overflow: denied, never wrapped

cpdef enum TradingState:
    ACTIVE = 0
    REDUCING = 1              # only orders that shrink |position| without flipping it
    HALTED = 2

cpdef enum OrderSide:
    BUY = 1
    SELL = 2

cpdef enum OrderType:
    LIMIT = 1
    MARKET = 2
    LIMIT_MAKER = 3
    STOP_LOSS_LIMIT = 4
    TAKE_PROFIT_LIMIT = 5

cdef enum:
    # Up to this many symbols per PreTradeRisk: slot state lives in a fixed C array.
    MAX_SLOTS = 64

# One symbol's filters in fixed point. A 0 disables that part (as on Binance).
ctypedef struct Filters:
    int64_t min_price             # price units; also the anchor of the tick grid
    int64_t max_price
    int64_t tick                  # tickSize in price units (1 with the default units)
    int64_t min_qty               # qty units; anchor of the step grid
    int64_t max_qty
    int64_t step
    int64_t market_min_qty        # MARKET_LOT_SIZE, same units
    int64_t market_max_qty
    int64_t market_step
    int64_t min_notional          # price_unit * qty_unit
    int64_t max_notional
    bint apply_min_to_market
    bint apply_max_to_market
    int64_t bid_up_e8             # PERCENT_PRICE_BY_SIDE multipliers in parts per 1e8
    int64_t bid_down_e8
    int64_t ask_up_e8
    int64_t ask_down_e8
    int64_t max_num_orders        # MAX_NUM_ORDERS: open orders on this symbol
    int64_t quote_mul             # notional -> quote units: ceil(notional * mul / div)
    int64_t quote_div

ctypedef struct Bucket:
    int64_t capacity              # tokens per window; 0 disables the bucket
    int64_t interval_ns           # one token back every interval (ceil(window / capacity))
    int64_t tokens
    int64_t last_ns               # time the token count was last brought up to date

ctypedef struct Slot:
    Filters f
    int64_t max_position          # |position| limit in qty units; 0 disables
    int64_t position              # signed qty units, + long
    int64_t open_buy_qty          # remaining qty of open orders: the worst case fills them
    int64_t open_sell_qty
    int64_t open_orders
    int64_t mark                  # price units; values the position in gross exposure
    int64_t exposure              # |position| * mark in quote units (saturated)


# Binance's filters alone (no account state): ACCEPTED or the first failing filter.
# price is ignored for MARKET; avg_ref values a MARKET order's notional and anchors
# PERCENT_PRICE_BY_SIDE (must be > 0 when those parts are enabled).
cdef int check_filters_c(const Filters* f, bint is_market, int side, int64_t price,
                         int64_t qty, int64_t avg_ref) noexcept nogil


cdef class SymbolFilters:
    cdef readonly Filters units       # the filters in fixed point (a dict from Python)
    cdef readonly str symbol
    cdef readonly str quote_asset
    cdef readonly object price_fp     # FixedPoint of the price unit: text <-> price units
    cdef readonly object qty_fp       # FixedPoint of the qty unit


cdef class RiskLimits:
    cdef readonly int64_t max_order_notional    # quote units
    cdef readonly int64_t max_gross_exposure    # quote units
    cdef readonly int64_t max_open_orders
    cdef readonly int64_t orders_per_10s
    cdef readonly int64_t orders_per_day
    cdef readonly int64_t price_band_bps
    cdef readonly int64_t daily_loss_limit      # quote units
    cdef readonly int64_t max_drawdown          # quote units


cdef class PreTradeRisk:
    cdef Slot _slots[MAX_SLOTS]
    cdef Py_ssize_t _n_slots
    cdef list _filters                # SymbolFilters per slot (Python side only)
    cdef readonly RiskLimits limits
    cdef int _state                   # TradingState
    cdef int _halt_reason             # RiskReason of the last halt, ACCEPTED if never
    cdef int64_t _open_orders
    cdef int64_t _gross_exposure      # quote units, saturated sum of slot exposures
    cdef bint _has_equity
    cdef int64_t _equity              # quote units
    cdef int64_t _peak_equity
    cdef int64_t _day_start_equity
    cdef Bucket _rate_10s
    cdef Bucket _rate_day

    cdef int check_c(self, Py_ssize_t slot, int side, int order_type, int64_t price_ticks,
                     int64_t qty_steps, int64_t mid_ticks, int64_t avg_price_ticks,
                     int64_t ts_ns) noexcept nogil
    cdef int _check_limits(self, const Slot* s, bint is_market, int64_t price, int64_t est,
                           int64_t qty, int64_t base, int64_t after, int64_t band_ref) noexcept nogil
    cdef int _take_tokens(self, int64_t ts_ns) noexcept nogil
    cdef void _set_exposure(self, Slot* s) noexcept nogil
    cdef void _halt(self, int reason) noexcept nogil
