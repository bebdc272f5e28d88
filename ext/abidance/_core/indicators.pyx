# distutils: extra_compile_args = -fno-tree-slp-vectorize
# GCC's SLP vectorizer packs paired state (gain/loss, hi/lo) into one SIMD register and
# unpacks it every bar, which puts shuffles on the loop-carried chain: 2x slower batches.
"""Streaming technical indicators, O(1) per update, and batch functions on the same kernels.

Each class commits one input with `update(...)` (Python, validated) or `update_c(...)`
(C, unchecked) and returns its primary value, NaN until `ready`. The batch functions
(`sma(x, 14)`, ...) validate as they go and run the very same step function over the
array (see indicators.pxd), so streaming and batch cannot diverge. Seeding and warm-up
follow TA-Lib; docs/indicators.md lists each indicator's first ready index.
"""

from libc.float cimport DBL_EPSILON
from libc.math cimport INFINITY, NAN, fabs, isfinite, sqrt
from libc.stdint cimport int64_t
from posix.time cimport CLOCK_MONOTONIC, clock_gettime, timespec
from cpython.mem cimport PyMem_Free, PyMem_Malloc

from abidance._core.ringbuf cimport (
    Ring, ring_clear, ring_free, ring_get, ring_init, ring_newest, ring_oldest, ring_push,
)

import numpy as np

# TA-Lib's RSI reports 0 when average gain + average loss is inside this band
# (TA_EPSILON in its ta_utility.h); kept so that RSI matches it exactly.
cdef double TA_EPSILON = 1e-14

# RollingStd re-sums its window exactly once the rounding-error bound of M2 could exceed
# this fraction of M2 (std is then good to ~5e-13 relative; see _std_slide).
cdef double STD_TOLERANCE = 1e-12
cdef double STD_ERR_RATIO = STD_TOLERANCE / (5.0 * DBL_EPSILON)

UTC_DAY_NS = 86_400_000_000_000


# ---------------------------------------------------------------- numeric kernels

cdef inline void csum_add(CompSum* s, double x) noexcept nogil:
    # TwoSum (Knuth) recovers the exact rounding error of hi + x into lo. As accurate as
    # Kahan's compensation, but the loop-carried chain through hi is one add (Kahan's is
    # four), so a compensated running sum costs throughput, not latency.
    cdef double hi = s.hi
    cdef double t = hi + x
    cdef double z = t - hi
    s.lo += (hi - (t - z)) + (x - z)
    s.hi = t


cdef inline void csum_add2(CompSum* s, double a, double b) noexcept nogil:
    # Adds a + b (a value entering and one leaving a window) with one add on the running
    # sum: a + b is formed first and its exact rounding error goes straight into lo.
    cdef double d = a + b
    cdef double z = d - a
    cdef double e = (a - (d - z)) + (b - z)
    csum_add(s, d)
    s.lo += e


cdef inline double csum(const CompSum* s) noexcept nogil:
    return s.hi + s.lo


cdef inline void csum_clear(CompSum* s) noexcept nogil:
    s.hi = 0.0
    s.lo = 0.0


cdef inline double _true_range(double high, double low, double prev_close) noexcept nogil:
    # Same comparisons in the same order as TA-Lib's TRANGE.
    cdef double greatest = high - low
    cdef double v = fabs(prev_close - high)
    if v > greatest:
        greatest = v
    v = fabs(low - prev_close)
    if v > greatest:
        greatest = v
    return greatest


cdef inline double _rsi_of(double gain, double loss) noexcept nogil:
    cdef double total = gain + loss
    if -TA_EPSILON < total < TA_EPSILON:
        return 0.0
    return 100.0 * (gain / total)


cdef inline bint _exact_shift(double x, double k) noexcept nogil:
    # Sterbenz: x - k is exact when k/2 <= x <= 2k (k = 0 is trivially exact).
    if k > 0.0:
        return 0.5 * k <= x <= 2.0 * k
    if k < 0.0:
        return 2.0 * k <= x <= 0.5 * k
    return True


# ---------------------------------------------------------------- validation

cdef int _check_finite(str who, double x) except -1:
    if not isfinite(x):
        raise ValueError(f"{who}: non-finite value {x!r}")
    return 0


cdef int _check_price(str who, str what, double x) except -1:
    if not isfinite(x) or x <= 0.0:
        raise ValueError(f"{who}: {what} must be a finite price > 0, got {x!r}")
    return 0


cdef int _check_volume(str who, double v) except -1:
    if not isfinite(v) or v < 0.0:
        raise ValueError(f"{who}: volume must be finite and >= 0, got {v!r}")
    return 0


cdef int _check_bar(str who, double high, double low, double close) except -1:
    _check_price(who, "high", high)
    _check_price(who, "low", low)
    _check_price(who, "close", close)
    if high < low:
        raise ValueError(f"{who}: high {high!r} is below low {low!r}")
    return 0


cdef int _check_period(str who, str what, int64_t p, int64_t minimum) except -1:
    if p < minimum:
        raise ValueError(f"{who}: {what} must be >= {minimum}, got {p}")
    return 0


# The batch checks use non-short-circuit `&` so that a bar costs one branch, not six;
# NaN fails every comparison, so these also reject NaN.
cdef inline bint _bad_price(double x) noexcept nogil:
    return not ((x > 0.0) & (x < INFINITY))


cdef inline bint _bad_volume(double v) noexcept nogil:
    return not ((v >= 0.0) & (v < INFINITY))


cdef inline bint _bad_bar(double high, double low, double close) noexcept nogil:
    # low > 0 and high >= low make high > 0 and low finite.
    return not ((low > 0.0) & (high >= low) & (high < INFINITY) & (close > 0.0) & (close < INFINITY))


# ---------------------------------------------------------------- SMA

cdef inline void sma_reset(SMAState* st) noexcept nogil:
    ring_clear(&st.window)
    csum_clear(&st.sum)
    st.count = 0
    st.value = NAN


cdef int sma_init(SMAState* st, str who, int64_t period) except -1:
    _check_period(who, "period", period, 1)
    st.period = period
    ring_init(&st.window, period)
    sma_reset(st)
    return 0


cdef inline double sma_step(SMAState* st, double x) noexcept nogil:
    cdef double old = ring_push(&st.window, x)
    st.count += 1
    if st.count > st.period:
        csum_add2(&st.sum, x, -old)
    else:
        csum_add(&st.sum, x)
        if st.count < st.period:
            return NAN
    st.value = csum(&st.sum) / st.period
    return st.value


cdef inline double sma_peek(const SMAState* st, double x) noexcept nogil:
    cdef CompSum s = st.sum
    if st.count + 1 < st.period:
        return NAN
    if st.count >= st.period:
        csum_add2(&s, x, -ring_oldest(&st.window))
    else:
        csum_add(&s, x)
    return csum(&s) / st.period


cdef class SMA:
    """Simple moving average over `period` values (TA-Lib SMA). First value at index period-1."""

    def __cinit__(self, int64_t period):
        sma_init(&self._st, "SMA", period)

    def __dealloc__(self):
        ring_free(&self._st.window)

    cdef double update_c(self, double x) noexcept nogil:
        return sma_step(&self._st, x)

    cdef double peek_c(self, double x) noexcept nogil:
        return sma_peek(&self._st, x)

    cdef void reset_c(self) noexcept nogil:
        sma_reset(&self._st)

    def update(self, double x):
        _check_finite("SMA.update", x)
        return sma_step(&self._st, x)

    def peek(self, double x):
        _check_finite("SMA.peek", x)
        return sma_peek(&self._st, x)

    def reset(self):
        sma_reset(&self._st)

    @property
    def period(self):
        return self._st.period

    @property
    def count(self):
        return self._st.count

    @property
    def value(self):
        return self._st.value

    @property
    def ready(self):
        return self._st.count >= self._st.period

    def __repr__(self):
        return f"SMA(period={self.period}, count={self.count}, value={self.value!r})"


# ---------------------------------------------------------------- EMA

cdef inline void ema_reset(EMAState* st) noexcept nogil:
    csum_clear(&st.seed)
    st.count = 0
    st.value = NAN


cdef int ema_init(EMAState* st, str who, int64_t period) except -1:
    _check_period(who, "period", period, 1)
    st.period = period
    st.k = 2.0 / (period + 1)
    st.keep = 1.0 - st.k
    ema_reset(st)
    return 0


cdef inline double ema_step(EMAState* st, double x) noexcept nogil:
    st.count += 1
    if st.count > st.period:
        # keep*v + k*x rather than TA-Lib's (x - v)*k + v: equal up to rounding, and one
        # multiply-add on the loop-carried chain instead of subtract-multiply-add.
        st.value = st.value * st.keep + x * st.k
        return st.value
    csum_add(&st.seed, x)
    if st.count < st.period:
        return NAN
    st.value = csum(&st.seed) / st.period
    return st.value


cdef class EMA:
    """Exponential moving average, k = 2/(period+1), seeded with the SMA of the first
    `period` values (TA-Lib EMA). First value at index period-1."""

    def __cinit__(self, int64_t period):
        ema_init(&self._st, "EMA", period)

    cdef double update_c(self, double x) noexcept nogil:
        return ema_step(&self._st, x)

    cdef double peek_c(self, double x) noexcept nogil:
        cdef EMAState tmp = self._st
        return ema_step(&tmp, x)

    cdef void reset_c(self) noexcept nogil:
        ema_reset(&self._st)

    def update(self, double x):
        _check_finite("EMA.update", x)
        return ema_step(&self._st, x)

    def peek(self, double x):
        _check_finite("EMA.peek", x)
        return self.peek_c(x)

    def reset(self):
        ema_reset(&self._st)

    @property
    def period(self):
        return self._st.period

    @property
    def k(self):
        return self._st.k

    @property
    def count(self):
        return self._st.count

    @property
    def value(self):
        return self._st.value

    @property
    def ready(self):
        return self._st.count >= self._st.period

    def __repr__(self):
        return f"EMA(period={self.period}, count={self.count}, value={self.value!r})"


# ---------------------------------------------------------------- WMA

cdef inline void wma_reset(WMAState* st) noexcept nogil:
    ring_clear(&st.window)
    csum_clear(&st.sum)
    csum_clear(&st.wsum)
    st.count = 0
    st.value = NAN


cdef inline double wma_step(WMAState* st, double x) noexcept nogil:
    cdef int64_t n = st.period
    cdef double old = ring_push(&st.window, x)
    st.count += 1
    if st.count > n:
        # Every weight drops by one (the oldest's to zero) and x enters at weight n.
        csum_add2(&st.wsum, n * x, -csum(&st.sum))
        csum_add2(&st.sum, x, -old)
    else:
        csum_add(&st.sum, x)
        csum_add(&st.wsum, st.count * x)
        if st.count < n:
            return NAN
    st.value = csum(&st.wsum) / st.divisor
    return st.value


cdef inline double wma_peek(const WMAState* st, double x) noexcept nogil:
    cdef int64_t n = st.period
    cdef CompSum ws = st.wsum
    if st.count + 1 < n:
        return NAN
    if st.count >= n:
        csum_add2(&ws, n * x, -csum(&st.sum))
    else:
        csum_add(&ws, n * x)
    return csum(&ws) / st.divisor


cdef class WMA:
    """Linearly weighted moving average, newest weight `period`, oldest 1 (TA-Lib WMA).
    First value at index period-1."""

    def __cinit__(self, int64_t period):
        _check_period("WMA", "period", period, 1)
        self._st.period = period
        self._st.divisor = period * (period + 1) / 2.0
        ring_init(&self._st.window, period)
        wma_reset(&self._st)

    def __dealloc__(self):
        ring_free(&self._st.window)

    cdef double update_c(self, double x) noexcept nogil:
        return wma_step(&self._st, x)

    cdef double peek_c(self, double x) noexcept nogil:
        return wma_peek(&self._st, x)

    cdef void reset_c(self) noexcept nogil:
        wma_reset(&self._st)

    def update(self, double x):
        _check_finite("WMA.update", x)
        return wma_step(&self._st, x)

    def peek(self, double x):
        _check_finite("WMA.peek", x)
        return wma_peek(&self._st, x)

    def reset(self):
        wma_reset(&self._st)

    @property
    def period(self):
        return self._st.period

    @property
    def count(self):
        return self._st.count

    @property
    def value(self):
        return self._st.value

    @property
    def ready(self):
        return self._st.count >= self._st.period

    def __repr__(self):
        return f"WMA(period={self.period}, count={self.count}, value={self.value!r})"


# ---------------------------------------------------------------- RSI

cdef inline void rsi_reset(RSIState* st) noexcept nogil:
    st.prev = NAN
    st.gain = 0.0
    st.loss = 0.0
    st.count = 0
    st.value = NAN


cdef inline double rsi_step(RSIState* st, double x) noexcept nogil:
    st.count += 1
    if st.count == 1:
        st.prev = x
        return NAN
    cdef double d = x - st.prev
    st.prev = x
    if st.count > st.period + 1:
        # Wilder smoothing as avg*(n-1)/n + x/n: no division on the loop-carried chain.
        st.gain = st.gain * st.keep + (d if d > 0.0 else 0.0) * st.new_w
        st.loss = st.loss * st.keep + (-d if d < 0.0 else 0.0) * st.new_w
    else:
        # Seed: simple averages of the first `period` gains and losses (TA-Lib).
        if d < 0.0:
            st.loss -= d
        else:
            st.gain += d
        if st.count <= st.period:
            return NAN
        st.gain /= st.period
        st.loss /= st.period
    st.value = _rsi_of(st.gain, st.loss)
    return st.value


cdef class RSI:
    """Relative strength index with Wilder smoothing (TA-Lib RSI). The first value, at index
    `period`, uses the simple averages of the first `period` gains and losses.

    Like TA-Lib, the value is 0 when average gain + average loss is below 1e-14 (flat input).
    """

    def __cinit__(self, int64_t period=14):
        _check_period("RSI", "period", period, 2)
        self._st.period = period
        self._st.keep = (period - 1.0) / period
        self._st.new_w = 1.0 / period
        rsi_reset(&self._st)

    cdef double update_c(self, double x) noexcept nogil:
        return rsi_step(&self._st, x)

    cdef double peek_c(self, double x) noexcept nogil:
        cdef RSIState tmp = self._st
        return rsi_step(&tmp, x)

    cdef void reset_c(self) noexcept nogil:
        rsi_reset(&self._st)

    def update(self, double x):
        _check_finite("RSI.update", x)
        return rsi_step(&self._st, x)

    def peek(self, double x):
        _check_finite("RSI.peek", x)
        return self.peek_c(x)

    def reset(self):
        rsi_reset(&self._st)

    @property
    def period(self):
        return self._st.period

    @property
    def count(self):
        return self._st.count

    @property
    def value(self):
        return self._st.value

    @property
    def ready(self):
        return self._st.count > self._st.period

    def __repr__(self):
        return f"RSI(period={self.period}, count={self.count}, value={self.value!r})"


# ---------------------------------------------------------------- ATR

cdef inline void atr_reset(ATRState* st) noexcept nogil:
    st.prev_close = NAN
    st.tr_sum = 0.0
    st.count = 0
    st.value = NAN


cdef inline double atr_step(ATRState* st, double high, double low, double close) noexcept nogil:
    st.count += 1
    if st.count == 1:
        # TA-Lib has no true range for the first bar (no previous close).
        st.prev_close = close
        return NAN
    cdef double tr = _true_range(high, low, st.prev_close)
    st.prev_close = close
    if st.count > st.period + 1:
        st.value = st.value * st.keep + tr * st.new_w
        return st.value
    st.tr_sum += tr
    if st.count <= st.period:
        return NAN
    st.value = st.tr_sum / st.period
    return st.value


cdef class ATR:
    """Average true range (TA-Lib ATR): the mean of the first `period` true ranges, then
    Wilder smoothing. First value at index `period`."""

    def __cinit__(self, int64_t period=14):
        _check_period("ATR", "period", period, 1)
        self._st.period = period
        self._st.keep = (period - 1.0) / period
        self._st.new_w = 1.0 / period
        atr_reset(&self._st)

    cdef double update_c(self, double high, double low, double close) noexcept nogil:
        return atr_step(&self._st, high, low, close)

    cdef double peek_c(self, double high, double low, double close) noexcept nogil:
        cdef ATRState tmp = self._st
        return atr_step(&tmp, high, low, close)

    cdef void reset_c(self) noexcept nogil:
        atr_reset(&self._st)

    def update(self, double high, double low, double close):
        _check_bar("ATR.update", high, low, close)
        return atr_step(&self._st, high, low, close)

    def peek(self, double high, double low, double close):
        _check_bar("ATR.peek", high, low, close)
        return self.peek_c(high, low, close)

    def reset(self):
        atr_reset(&self._st)

    @property
    def period(self):
        return self._st.period

    @property
    def count(self):
        return self._st.count

    @property
    def value(self):
        return self._st.value

    @property
    def ready(self):
        return self._st.count > self._st.period

    def __repr__(self):
        return f"ATR(period={self.period}, count={self.count}, value={self.value!r})"


# ---------------------------------------------------------------- rolling variance

cdef inline void std_reset(StdState* st) noexcept nogil:
    ring_clear(&st.window)
    st.shift = 0.0
    csum_clear(&st.sum)
    st.mean = 0.0
    st.m2 = 0.0
    st.err = 0.0
    st.run = 0
    st.count = 0
    st.value = NAN


cdef int std_init(StdState* st, str who, int64_t period, int64_t ddof) except -1:
    _check_period(who, "period", period, 1)
    if ddof != 0 and ddof != 1:
        raise ValueError(f"{who}: ddof must be 0 or 1, got {ddof}")
    if period - ddof < 1:
        raise ValueError(f"{who}: period must be >= 2 with ddof=1, got {period}")
    st.period = period
    st.ddof = ddof
    st.inv_n = 1.0 / period
    st.inv_nd = 1.0 / (period - ddof)
    st.resyncs = 0
    ring_init(&st.window, period)
    std_reset(st)
    return 0


cdef void _exact_moments(const Ring* w, int64_t skip_oldest, bint with_x, double x,
                         double* mean, double* m2, double* lo, double* hi) noexcept nogil:
    """Two-pass mean and M2 (compensated) of the window, less its oldest `skip_oldest`
    values, plus x when with_x. Also the min and max, which pick the shift."""
    cdef int64_t i, kept = w.count - skip_oldest
    cdef int64_t n = kept + with_x
    cdef CompSum s, q
    cdef double v, d
    csum_clear(&s)
    csum_clear(&q)
    lo[0] = x if with_x else ring_newest(w)
    hi[0] = lo[0]
    if with_x:
        csum_add(&s, x)
    for i in range(kept):
        v = ring_get(w, i)
        csum_add(&s, v)
        if v < lo[0]:
            lo[0] = v
        if v > hi[0]:
            hi[0] = v
    if lo[0] == hi[0]:
        mean[0] = lo[0]                 # exact, where sum / n may be an ulp off
        m2[0] = 0.0
        return
    mean[0] = csum(&s) / n
    if with_x:
        d = x - mean[0]
        csum_add(&q, d * d)
    for i in range(kept):
        d = ring_get(w, i) - mean[0]
        csum_add(&q, d * d)
    d = csum(&q)
    m2[0] = d if d > 0.0 else 0.0


cdef void _std_resync(StdState* st) noexcept nogil:
    """Exact moments of the full window; re-centres the shift on its mean."""
    cdef double mean_x, m2, lo, hi, k
    cdef int64_t i
    _exact_moments(&st.window, 0, False, 0.0, &mean_x, &m2, &lo, &hi)
    # Shift by the mean only when every value minus it is exact; values that span more
    # than a factor of two have a spread large enough not to need it.
    k = mean_x if (_exact_shift(lo, mean_x) and _exact_shift(hi, mean_x)) else 0.0
    csum_clear(&st.sum)
    for i in range(st.window.count):
        csum_add(&st.sum, ring_get(&st.window, i) - k)
    st.shift = k
    st.mean = csum(&st.sum) / st.window.count
    st.m2 = m2
    st.err = 2.0 * m2
    st.resyncs += 1


cdef inline void _std_slide(StdState* st, double x, double old) noexcept nogil:
    """Replace old by x in a full window (sliding Welford, shifted by K).

    M2 changes by (x-old)((x-mean') + (old-mean)). Each update's rounding error is at most
    5 eps (|d|(|y|+|yo|+|mean'|+|mean|) + |M2|) (the shifted values are exact, the mean
    comes from a compensated sum); `err` accumulates that bound so that the caller can
    re-sum exactly when it grows past STD_TOLERANCE of M2: a quiet window after a spike,
    where M2 collapses and sliding updates alone would keep the spike's rounding.
    """
    cdef double k = st.shift
    cdef double y = x - k
    cdef double yo = old - k
    cdef double mo = st.mean
    cdef double m2 = st.m2
    cdef CompSum s = st.sum
    cdef double mn, d
    csum_add2(&s, y, -yo)
    mn = csum(&s) * st.inv_n
    d = y - yo
    m2 += d * ((y - mn) + (yo - mo))
    st.err += fabs(d) * (fabs(y) + fabs(yo) + fabs(mn) + fabs(mo)) + fabs(m2)
    st.sum = s
    st.mean = mn
    st.m2 = m2


cdef inline double std_step(StdState* st, double x) noexcept nogil:
    cdef int64_t n = st.period
    if st.window.count > 0 and x == ring_newest(&st.window):
        st.run += 1
    else:
        st.run = 1
    cdef double old = ring_push(&st.window, x)
    st.count += 1
    if st.count < n:
        return NAN
    if st.run >= n:
        # A flat window: exactly zero, centred on x, and all carried rounding dropped.
        st.shift = x
        csum_clear(&st.sum)
        st.mean = 0.0
        st.m2 = 0.0
        st.err = 0.0
    elif st.count == n or not _exact_shift(x, st.shift):
        _std_resync(st)                 # the window just filled, or x needs a new shift
    else:
        _std_slide(st, x, old)
        if not (st.err <= STD_ERR_RATIO * st.m2):
            _std_resync(st)
    st.value = sqrt(st.m2 * st.inv_nd)
    return st.value


cdef inline double std_mean(const StdState* st) noexcept nogil:
    return st.shift + st.mean


cdef bint std_peek(const StdState* st, double x, double* mean, double* m2) noexcept nogil:
    """Window mean and M2 if x were committed; False while that would still be warm-up."""
    cdef int64_t n = st.period
    cdef bint full = st.count >= n
    cdef StdState tmp
    cdef double lo, hi
    if st.count + 1 < n:
        return False
    if full and x == ring_newest(&st.window) and st.run + 1 >= n:
        mean[0] = x
        m2[0] = 0.0
        return True
    if full and _exact_shift(x, st.shift):
        tmp = st[0]                     # scalars only: the slide does not touch the ring
        _std_slide(&tmp, x, ring_oldest(&st.window))
        if tmp.err <= STD_ERR_RATIO * tmp.m2:
            mean[0] = std_mean(&tmp)
            m2[0] = tmp.m2
            return True
    _exact_moments(&st.window, 1 if full else 0, True, x, mean, m2, &lo, &hi)
    return True


cdef class RollingStd:
    """Standard deviation of the last `period` values (population, or sample with ddof=1);
    matches TA-Lib STDDEV (nbdev=1) with ddof=0. First value at index period-1.

    Sliding Welford over exactly shifted values, with an exact re-sum of the window when
    the running error bound exceeds 1e-12 of M2: O(1) per update, and accurate even for a
    quiet window right after a spike. A window of identical values reports exactly 0.
    """

    def __cinit__(self, int64_t period, int64_t ddof=0):
        std_init(&self._st, "RollingStd", period, ddof)

    def __dealloc__(self):
        ring_free(&self._st.window)

    cdef double update_c(self, double x) noexcept nogil:
        return std_step(&self._st, x)

    cdef double peek_c(self, double x) noexcept nogil:
        cdef double mean, m2
        if not std_peek(&self._st, x, &mean, &m2):
            return NAN
        return sqrt(m2 / (self._st.period - self._st.ddof))

    cdef void reset_c(self) noexcept nogil:
        std_reset(&self._st)

    def update(self, double x):
        _check_finite("RollingStd.update", x)
        return std_step(&self._st, x)

    def peek(self, double x):
        _check_finite("RollingStd.peek", x)
        return self.peek_c(x)

    def reset(self):
        std_reset(&self._st)

    @property
    def period(self):
        return self._st.period

    @property
    def ddof(self):
        return self._st.ddof

    @property
    def count(self):
        return self._st.count

    @property
    def value(self):
        return self._st.value

    @property
    def mean(self):
        return std_mean(&self._st) if self._st.count >= self._st.period else NAN

    @property
    def variance(self):
        return self._st.value * self._st.value

    @property
    def resyncs(self):
        """Exact re-sums of the window so far (one when it first fills)."""
        return self._st.resyncs

    @property
    def ready(self):
        return self._st.count >= self._st.period

    def __repr__(self):
        return f"RollingStd(period={self.period}, ddof={self.ddof}, count={self.count}, value={self.value!r})"


# ---------------------------------------------------------------- Bollinger bands

cdef inline void bb_reset(BBState* st) noexcept nogil:
    std_reset(&st.std)
    st.middle = NAN
    st.upper = NAN
    st.lower = NAN


cdef inline double bb_step(BBState* st, double x) noexcept nogil:
    cdef double sd = std_step(&st.std, x)
    if st.std.count < st.std.period:
        return NAN
    cdef double mid = std_mean(&st.std)
    st.middle = mid
    st.upper = mid + st.k_up * sd
    st.lower = mid - st.k_down * sd
    return mid


cdef class BollingerBands:
    """SMA middle band +/- k times the population standard deviation (TA-Lib BBANDS with
    matype=SMA). First value at index period-1. `value` is the middle band."""

    def __cinit__(self, int64_t period=20, double k_up=2.0, double k_down=2.0):
        if not (isfinite(k_up) and isfinite(k_down)):
            raise ValueError(f"BollingerBands: multipliers must be finite, got {k_up!r}, {k_down!r}")
        std_init(&self._st.std, "BollingerBands", period, 0)
        self._st.k_up = k_up
        self._st.k_down = k_down
        bb_reset(&self._st)

    def __dealloc__(self):
        ring_free(&self._st.std.window)

    cdef double update_c(self, double x) noexcept nogil:
        return bb_step(&self._st, x)

    cdef void reset_c(self) noexcept nogil:
        bb_reset(&self._st)

    def update(self, double x):
        _check_finite("BollingerBands.update", x)
        return bb_step(&self._st, x)

    def peek(self, double x):
        """(upper, middle, lower) if x were committed."""
        _check_finite("BollingerBands.peek", x)
        cdef double mean, m2, sd
        if not std_peek(&self._st.std, x, &mean, &m2):
            return (NAN, NAN, NAN)
        sd = sqrt(m2 / self._st.std.period)
        return (mean + self._st.k_up * sd, mean, mean - self._st.k_down * sd)

    def reset(self):
        bb_reset(&self._st)

    @property
    def period(self):
        return self._st.std.period

    @property
    def k_up(self):
        return self._st.k_up

    @property
    def k_down(self):
        return self._st.k_down

    @property
    def count(self):
        return self._st.std.count

    @property
    def ready(self):
        return self._st.std.count >= self._st.std.period

    @property
    def value(self):
        return self._st.middle

    @property
    def middle(self):
        return self._st.middle

    @property
    def upper(self):
        return self._st.upper

    @property
    def lower(self):
        return self._st.lower

    def __repr__(self):
        return (f"BollingerBands(period={self.period}, count={self.count}, "
                f"upper={self.upper!r}, middle={self.middle!r}, lower={self.lower!r})")


# ---------------------------------------------------------------- MACD

cdef inline void macd_reset(MACDState* st) noexcept nogil:
    ring_clear(&st.fast_window)
    csum_clear(&st.fast_sum)
    csum_clear(&st.slow_sum)
    st.fast_ema = NAN
    st.slow_ema = NAN
    ema_reset(&st.signal_ema)
    st.count = 0
    st.macd = NAN
    st.signal = NAN
    st.hist = NAN


cdef inline double macd_step(MACDState* st, double x) noexcept nogil:
    cdef double old, line, sig
    st.count += 1
    if st.count > st.slow:
        st.fast_ema = st.fast_ema * st.keep_fast + x * st.k_fast
        st.slow_ema = st.slow_ema * st.keep_slow + x * st.k_slow
    else:
        # Warm-up: both EMAs start at index slow-1 (how TA-Lib aligns them), the slow one
        # from the SMA of everything so far, the fast one from the SMA of its last `fast`.
        old = ring_push(&st.fast_window, x)
        if st.count > st.fast:
            csum_add2(&st.fast_sum, x, -old)
        else:
            csum_add(&st.fast_sum, x)
        csum_add(&st.slow_sum, x)
        if st.count < st.slow:
            return NAN
        st.fast_ema = csum(&st.fast_sum) / st.fast
        st.slow_ema = csum(&st.slow_sum) / st.slow
    line = st.fast_ema - st.slow_ema
    sig = ema_step(&st.signal_ema, line)
    if st.signal_ema.count < st.signal_ema.period:
        return NAN
    st.macd = line
    st.signal = sig
    st.hist = line - sig
    return line


cdef class MACD:
    """MACD line (fast EMA - slow EMA), signal line (EMA of the MACD line) and histogram,
    seeded like TA-Lib MACD: both EMAs start at index slow-1 from the SMA of their last
    `fast` / `slow` values; the signal EMA from the SMA of the first `signal` MACD values.
    All three appear together at index slow+signal-2. `value` is the MACD line."""

    def __cinit__(self, int64_t fast=12, int64_t slow=26, int64_t signal=9):
        _check_period("MACD", "fast", fast, 1)
        if slow <= fast:
            raise ValueError(f"MACD: slow ({slow}) must be greater than fast ({fast})")
        ema_init(&self._st.signal_ema, "MACD signal", signal)
        self._st.fast = fast
        self._st.slow = slow
        self._st.k_fast = 2.0 / (fast + 1)
        self._st.keep_fast = 1.0 - self._st.k_fast
        self._st.k_slow = 2.0 / (slow + 1)
        self._st.keep_slow = 1.0 - self._st.k_slow
        ring_init(&self._st.fast_window, fast)
        macd_reset(&self._st)

    def __dealloc__(self):
        ring_free(&self._st.fast_window)

    cdef double update_c(self, double x) noexcept nogil:
        return macd_step(&self._st, x)

    cdef void reset_c(self) noexcept nogil:
        macd_reset(&self._st)

    def update(self, double x):
        _check_finite("MACD.update", x)
        return macd_step(&self._st, x)

    def reset(self):
        macd_reset(&self._st)

    @property
    def fast(self):
        return self._st.fast

    @property
    def slow(self):
        return self._st.slow

    @property
    def signal_period(self):
        return self._st.signal_ema.period

    @property
    def count(self):
        return self._st.count

    @property
    def ready(self):
        return self._st.signal_ema.count >= self._st.signal_ema.period

    @property
    def value(self):
        return self._st.macd

    @property
    def macd(self):
        return self._st.macd

    @property
    def signal(self):
        return self._st.signal

    @property
    def histogram(self):
        return self._st.hist

    def __repr__(self):
        return (f"MACD(fast={self.fast}, slow={self.slow}, signal={self.signal_period}, "
                f"count={self.count}, macd={self.macd!r}, signal={self.signal!r})")


# ---------------------------------------------------------------- rolling min / max

cdef inline void extreme_reset(ExtremeState* st) noexcept nogil:
    st.front = 0
    st.back = 0
    st.count = 0
    st.value = NAN


cdef int extreme_init(ExtremeState* st, str who, int64_t period, bint is_min) except -1:
    _check_period(who, "period", period, 1)
    if period > (1LL << 40):
        raise ValueError(f"{who}: period too large: {period}")
    # At most period+1 entries are live: x is appended before the expired front leaves.
    cdef int64_t size = 1
    while size < period + 1:
        size <<= 1
    st.vals = <double*>PyMem_Malloc(size * sizeof(double))
    st.pos = <int64_t*>PyMem_Malloc(size * sizeof(int64_t))
    if st.vals == NULL or st.pos == NULL:
        raise MemoryError(f"{who}: cannot allocate a window of {period}")
    st.mask = size - 1
    st.period = period
    st.is_min = is_min
    extreme_reset(st)
    return 0


cdef void extreme_free(ExtremeState* st) noexcept:
    PyMem_Free(st.vals)
    PyMem_Free(st.pos)
    st.vals = NULL
    st.pos = NULL


cdef inline double extreme_step(ExtremeState* st, double x) noexcept nogil:
    cdef double v = -x if st.is_min else x
    cdef double* vals = st.vals
    cdef int64_t* pos = st.pos
    cdef int64_t mask = st.mask
    cdef int64_t front = st.front
    cdef int64_t back = st.back
    cdef int64_t t = st.count
    # An older value <= v can never be the maximum again while v is in the window.
    while back != front and vals[(back - 1) & mask] <= v:
        back -= 1
    vals[back & mask] = v
    pos[back & mask] = t
    back += 1
    if pos[front & mask] <= t - st.period:
        front += 1
    st.front = front
    st.back = back
    st.count = t + 1
    if t + 1 < st.period:
        return NAN
    v = vals[front & mask]
    st.value = -v if st.is_min else v
    return st.value


cdef inline double extreme_peek(const ExtremeState* st, double x) noexcept nogil:
    cdef double v = -x if st.is_min else x
    cdef int64_t front = st.front
    cdef int64_t t = st.count
    if t + 1 < st.period:
        return NAN
    if front != st.back and st.pos[front & st.mask] <= t - st.period:
        front += 1
    # The deque is decreasing: after the expired front, its head is the max of the rest.
    if front != st.back and st.vals[front & st.mask] > v:
        v = st.vals[front & st.mask]
    return -v if st.is_min else v


cdef class RollingMin:
    """Lowest of the last `period` values (TA-Lib MIN), O(1) amortised by a monotonic deque.
    First value at index period-1."""

    def __cinit__(self, int64_t period):
        extreme_init(&self._st, "RollingMin", period, True)

    def __dealloc__(self):
        extreme_free(&self._st)

    cdef double update_c(self, double x) noexcept nogil:
        return extreme_step(&self._st, x)

    cdef double peek_c(self, double x) noexcept nogil:
        return extreme_peek(&self._st, x)

    cdef void reset_c(self) noexcept nogil:
        extreme_reset(&self._st)

    def update(self, double x):
        _check_finite("RollingMin.update", x)
        return extreme_step(&self._st, x)

    def peek(self, double x):
        _check_finite("RollingMin.peek", x)
        return extreme_peek(&self._st, x)

    def reset(self):
        extreme_reset(&self._st)

    @property
    def period(self):
        return self._st.period

    @property
    def count(self):
        return self._st.count

    @property
    def value(self):
        return self._st.value

    @property
    def ready(self):
        return self._st.count >= self._st.period

    def __repr__(self):
        return f"RollingMin(period={self.period}, count={self.count}, value={self.value!r})"


cdef class RollingMax:
    """Highest of the last `period` values (TA-Lib MAX), O(1) amortised by a monotonic deque.
    First value at index period-1."""

    def __cinit__(self, int64_t period):
        extreme_init(&self._st, "RollingMax", period, False)

    def __dealloc__(self):
        extreme_free(&self._st)

    cdef double update_c(self, double x) noexcept nogil:
        return extreme_step(&self._st, x)

    cdef double peek_c(self, double x) noexcept nogil:
        return extreme_peek(&self._st, x)

    cdef void reset_c(self) noexcept nogil:
        extreme_reset(&self._st)

    def update(self, double x):
        _check_finite("RollingMax.update", x)
        return extreme_step(&self._st, x)

    def peek(self, double x):
        _check_finite("RollingMax.peek", x)
        return extreme_peek(&self._st, x)

    def reset(self):
        extreme_reset(&self._st)

    @property
    def period(self):
        return self._st.period

    @property
    def count(self):
        return self._st.count

    @property
    def value(self):
        return self._st.value

    @property
    def ready(self):
        return self._st.count >= self._st.period

    def __repr__(self):
        return f"RollingMax(period={self.period}, count={self.count}, value={self.value!r})"


# ---------------------------------------------------------------- VWAP

cdef inline void vwap_reset(VWAPState* st) noexcept nogil:
    ring_clear(&st.pv)
    ring_clear(&st.vol)
    csum_clear(&st.pv_sum)
    csum_clear(&st.vol_sum)
    st.traded = 0
    st.count = 0
    st.value = NAN


cdef inline double vwap_step(VWAPState* st, double price, double volume) noexcept nogil:
    # The ring keeps price*volume as added, so exactly that product leaves the sum later.
    cdef double pv = price * volume
    cdef double old_pv = ring_push(&st.pv, pv)
    cdef double old_v = ring_push(&st.vol, volume)
    st.traded += volume > 0.0
    st.count += 1
    if st.count > st.period:
        csum_add2(&st.pv_sum, pv, -old_pv)
        csum_add2(&st.vol_sum, volume, -old_v)
        st.traded -= old_v > 0.0
    else:
        csum_add(&st.pv_sum, pv)
        csum_add(&st.vol_sum, volume)
        if st.count < st.period:
            return NAN
    # Counting traded bars, not testing the sum, keeps an all-zero window exactly NaN
    # (a compensated sum of volumes that have all left may be 1e-30, not 0).
    st.value = csum(&st.pv_sum) / csum(&st.vol_sum) if st.traded > 0 else NAN
    return st.value


cdef class VWAP:
    """Volume-weighted average price over the last `period` bars: sum(price*volume) /
    sum(volume). First value at index period-1; NaN while the window holds no volume."""

    def __cinit__(self, int64_t period):
        _check_period("VWAP", "period", period, 1)
        self._st.period = period
        ring_init(&self._st.pv, period)
        ring_init(&self._st.vol, period)
        vwap_reset(&self._st)

    def __dealloc__(self):
        ring_free(&self._st.pv)
        ring_free(&self._st.vol)

    cdef double update_c(self, double price, double volume) noexcept nogil:
        return vwap_step(&self._st, price, volume)

    cdef void reset_c(self) noexcept nogil:
        vwap_reset(&self._st)

    def update(self, double price, double volume):
        _check_price("VWAP.update", "price", price)
        _check_volume("VWAP.update", volume)
        return vwap_step(&self._st, price, volume)

    def reset(self):
        vwap_reset(&self._st)

    @property
    def period(self):
        return self._st.period

    @property
    def count(self):
        return self._st.count

    @property
    def value(self):
        return self._st.value

    @property
    def ready(self):
        return self._st.count >= self._st.period

    def __repr__(self):
        return f"VWAP(period={self.period}, count={self.count}, value={self.value!r})"


cdef inline void svwap_reset(SessionVWAPState* st) noexcept nogil:
    csum_clear(&st.pv_sum)
    csum_clear(&st.vol_sum)
    st.count = 0
    st.session_count = 0
    st.session_start = 0
    st.last_ts = 0
    st.value = NAN


cdef inline int64_t svwap_session_of(const SessionVWAPState* st, int64_t ts) noexcept nogil:
    cdef int64_t d = ts - st.offset_ns
    cdef int64_t q = d / st.session_ns
    if d < 0 and q * st.session_ns != d:
        q -= 1          # floor, not C's truncation, before the offset
    return q * st.session_ns + st.offset_ns


cdef inline double svwap_step(SessionVWAPState* st, int64_t ts, double price, double volume) noexcept nogil:
    cdef int64_t start = svwap_session_of(st, ts)
    if st.count == 0 or start != st.session_start:
        csum_clear(&st.pv_sum)
        csum_clear(&st.vol_sum)
        st.session_start = start
        st.session_count = 0
    st.count += 1
    st.session_count += 1
    st.last_ts = ts
    csum_add(&st.pv_sum, price * volume)
    csum_add(&st.vol_sum, volume)
    # Volumes only accumulate within a session: the sum is exactly 0 until one trades.
    cdef double vs = csum(&st.vol_sum)
    st.value = csum(&st.pv_sum) / vs if vs > 0.0 else NAN
    return st.value


cdef class SessionVWAP:
    """VWAP since the start of the current session, reset when a bar's timestamp (int64 ns)
    falls in a new session. Sessions are [offset_ns + k*session_ns, offset_ns + (k+1)*session_ns):
    the default is the UTC day. NaN until the session has traded volume."""

    def __cinit__(self, int64_t session_ns=UTC_DAY_NS, int64_t offset_ns=0):
        if session_ns <= 0:
            raise ValueError(f"SessionVWAP: session_ns must be > 0, got {session_ns}")
        self._st.session_ns = session_ns
        self._st.offset_ns = offset_ns % session_ns
        svwap_reset(&self._st)

    cdef double update_c(self, int64_t ts, double price, double volume) noexcept nogil:
        return svwap_step(&self._st, ts, price, volume)

    cdef void reset_c(self) noexcept nogil:
        svwap_reset(&self._st)

    def update(self, int64_t ts, double price, double volume):
        _check_price("SessionVWAP.update", "price", price)
        _check_volume("SessionVWAP.update", volume)
        if self._st.count > 0 and ts < self._st.last_ts:
            raise ValueError(f"SessionVWAP.update: timestamp {ts} is before the previous "
                             f"{self._st.last_ts}")
        return svwap_step(&self._st, ts, price, volume)

    def session_of(self, int64_t ts):
        """Start (ns) of the session that contains ts."""
        return svwap_session_of(&self._st, ts)

    def reset(self):
        svwap_reset(&self._st)

    @property
    def session_ns(self):
        return self._st.session_ns

    @property
    def offset_ns(self):
        return self._st.offset_ns

    @property
    def count(self):
        return self._st.count

    @property
    def session_count(self):
        return self._st.session_count

    @property
    def session_start(self):
        return self._st.session_start if self._st.count > 0 else None

    @property
    def value(self):
        return self._st.value

    @property
    def ready(self):
        return isfinite(self._st.value)

    def __repr__(self):
        return (f"SessionVWAP(session_ns={self.session_ns}, offset_ns={self.offset_ns}, "
                f"count={self.count}, value={self.value!r})")


# ---------------------------------------------------------------- OBV

cdef inline void obv_reset(OBVState* st) noexcept nogil:
    st.prev_close = NAN
    csum_clear(&st.obv)
    st.count = 0
    st.value = NAN


cdef inline double obv_step(OBVState* st, double close, double volume) noexcept nogil:
    if st.count == 0 or close > st.prev_close:
        csum_add(&st.obv, volume)       # TA-Lib starts at the first bar's volume
    elif close < st.prev_close:
        csum_add(&st.obv, -volume)
    st.prev_close = close
    st.count += 1
    st.value = csum(&st.obv)
    return st.value


cdef class OBV:
    """On-balance volume (TA-Lib OBV): starts at the first bar's volume, then adds the
    volume on an up close and subtracts it on a down close. Ready from the first bar."""

    def __cinit__(self):
        obv_reset(&self._st)

    cdef double update_c(self, double close, double volume) noexcept nogil:
        return obv_step(&self._st, close, volume)

    cdef void reset_c(self) noexcept nogil:
        obv_reset(&self._st)

    def update(self, double close, double volume):
        _check_price("OBV.update", "close", close)
        _check_volume("OBV.update", volume)
        return obv_step(&self._st, close, volume)

    def reset(self):
        obv_reset(&self._st)

    @property
    def count(self):
        return self._st.count

    @property
    def value(self):
        return self._st.value

    @property
    def ready(self):
        return self._st.count >= 1

    def __repr__(self):
        return f"OBV(count={self.count}, value={self.value!r})"


# ---------------------------------------------------------------- stochastic

cdef inline void stochf_reset(StochFState* st) noexcept nogil:
    extreme_reset(&st.highest)
    extreme_reset(&st.lowest)
    sma_reset(&st.d)
    st.count = 0
    st.raw_k = NAN
    st.k = NAN
    st.d_value = NAN


cdef int stochf_init(StochFState* st, str who, int64_t fastk_period, int64_t fastd_period) except -1:
    _check_period(who, "fastk_period", fastk_period, 1)
    st.fastk_period = fastk_period
    extreme_init(&st.highest, who, fastk_period, False)
    extreme_init(&st.lowest, who, fastk_period, True)
    sma_init(&st.d, who, fastd_period)
    stochf_reset(st)
    return 0


cdef void stochf_free(StochFState* st) noexcept:
    extreme_free(&st.highest)
    extreme_free(&st.lowest)
    ring_free(&st.d.window)


cdef inline double stochf_step(StochFState* st, double high, double low, double close) noexcept nogil:
    cdef double hh = extreme_step(&st.highest, high)
    cdef double ll = extreme_step(&st.lowest, low)
    cdef double diff, raw, d
    st.count += 1
    if st.count < st.fastk_period:
        return NAN
    # TA-Lib divides by range/100 rather than multiplying by 100; 0 for a flat range.
    diff = (hh - ll) / 100.0
    raw = (close - ll) / diff if diff != 0.0 else 0.0
    st.raw_k = raw
    d = sma_step(&st.d, raw)
    if st.d.count < st.d.period:
        return NAN
    st.k = raw
    st.d_value = d
    return raw


cdef inline void stoch_reset(StochState* st) noexcept nogil:
    stochf_reset(&st.fast)
    sma_reset(&st.d)
    st.k = NAN
    st.d_value = NAN


cdef inline double stoch_step(StochState* st, double high, double low, double close) noexcept nogil:
    stochf_step(&st.fast, high, low, close)
    if st.fast.d.count < st.fast.d.period:
        return NAN
    cdef double slow_k = st.fast.d_value
    cdef double d = sma_step(&st.d, slow_k)
    if st.d.count < st.d.period:
        return NAN
    st.k = slow_k
    st.d_value = d
    return slow_k


cdef class StochasticFast:
    """Fast stochastic (TA-Lib STOCHF): %K = 100 (close - lowest low) / (highest high -
    lowest low) over `fastk_period` bars (0 when the range is 0), %D = SMA(%K, fastd_period).
    Both appear at index fastk_period + fastd_period - 2. `value` is %K."""

    def __cinit__(self, int64_t fastk_period=5, int64_t fastd_period=3):
        stochf_init(&self._st, "StochasticFast", fastk_period, fastd_period)

    def __dealloc__(self):
        stochf_free(&self._st)

    cdef double update_c(self, double high, double low, double close) noexcept nogil:
        return stochf_step(&self._st, high, low, close)

    cdef void reset_c(self) noexcept nogil:
        stochf_reset(&self._st)

    def update(self, double high, double low, double close):
        _check_bar("StochasticFast.update", high, low, close)
        return stochf_step(&self._st, high, low, close)

    def reset(self):
        stochf_reset(&self._st)

    @property
    def fastk_period(self):
        return self._st.fastk_period

    @property
    def fastd_period(self):
        return self._st.d.period

    @property
    def count(self):
        return self._st.count

    @property
    def ready(self):
        return self._st.d.count >= self._st.d.period

    @property
    def value(self):
        return self._st.k

    @property
    def k(self):
        return self._st.k

    @property
    def d(self):
        return self._st.d_value

    def __repr__(self):
        return (f"StochasticFast(fastk_period={self.fastk_period}, fastd_period={self.fastd_period}, "
                f"count={self.count}, k={self.k!r}, d={self.d!r})")


cdef class Stochastic:
    """Slow stochastic (TA-Lib STOCH, SMA smoothing): slow %K = SMA(fast %K, slowk_period),
    slow %D = SMA(slow %K, slowd_period). Both appear at index
    fastk_period + slowk_period + slowd_period - 3. `value` is slow %K."""

    def __cinit__(self, int64_t fastk_period=5, int64_t slowk_period=3, int64_t slowd_period=3):
        stochf_init(&self._st.fast, "Stochastic", fastk_period, slowk_period)
        sma_init(&self._st.d, "Stochastic", slowd_period)
        stoch_reset(&self._st)

    def __dealloc__(self):
        stochf_free(&self._st.fast)
        ring_free(&self._st.d.window)

    cdef double update_c(self, double high, double low, double close) noexcept nogil:
        return stoch_step(&self._st, high, low, close)

    cdef void reset_c(self) noexcept nogil:
        stoch_reset(&self._st)

    def update(self, double high, double low, double close):
        _check_bar("Stochastic.update", high, low, close)
        return stoch_step(&self._st, high, low, close)

    def reset(self):
        stoch_reset(&self._st)

    @property
    def fastk_period(self):
        return self._st.fast.fastk_period

    @property
    def slowk_period(self):
        return self._st.fast.d.period

    @property
    def slowd_period(self):
        return self._st.d.period

    @property
    def count(self):
        return self._st.fast.count

    @property
    def ready(self):
        return self._st.d.count >= self._st.d.period

    @property
    def value(self):
        return self._st.k

    @property
    def k(self):
        return self._st.k

    @property
    def d(self):
        return self._st.d_value

    def __repr__(self):
        return (f"Stochastic(fastk_period={self.fastk_period}, slowk_period={self.slowk_period}, "
                f"slowd_period={self.slowd_period}, count={self.count}, k={self.k!r}, d={self.d!r})")


# ---------------------------------------------------------------- ROC

cdef inline void roc_reset(ROCState* st) noexcept nogil:
    ring_clear(&st.window)
    st.count = 0
    st.value = NAN


cdef inline double roc_step(ROCState* st, double x) noexcept nogil:
    cdef double then = ring_push(&st.window, x)
    st.count += 1
    if st.count <= st.period:
        return NAN
    st.value = ((x / then) - 1.0) * 100.0      # TA-Lib's form, for bitwise parity
    return st.value


cdef class ROC:
    """Rate of change in percent, 100 * (x / x[t-period] - 1) (TA-Lib ROC). First value at
    index `period`. Inputs are prices (> 0)."""

    def __cinit__(self, int64_t period=10):
        _check_period("ROC", "period", period, 1)
        self._st.period = period
        ring_init(&self._st.window, period)
        roc_reset(&self._st)

    def __dealloc__(self):
        ring_free(&self._st.window)

    cdef double update_c(self, double x) noexcept nogil:
        return roc_step(&self._st, x)

    cdef double peek_c(self, double x) noexcept nogil:
        if self._st.count < self._st.period:
            return NAN
        return ((x / ring_oldest(&self._st.window)) - 1.0) * 100.0

    cdef void reset_c(self) noexcept nogil:
        roc_reset(&self._st)

    def update(self, double x):
        _check_price("ROC.update", "value", x)
        return roc_step(&self._st, x)

    def peek(self, double x):
        _check_price("ROC.peek", "value", x)
        return self.peek_c(x)

    def reset(self):
        roc_reset(&self._st)

    @property
    def period(self):
        return self._st.period

    @property
    def count(self):
        return self._st.count

    @property
    def value(self):
        return self._st.value

    @property
    def ready(self):
        return self._st.count > self._st.period

    def __repr__(self):
        return f"ROC(period={self.period}, count={self.count}, value={self.value!r})"


# ---------------------------------------------------------------- ZScore

cdef inline void z_reset(ZState* st) noexcept nogil:
    std_reset(&st.std)
    st.value = NAN


cdef inline double z_step(ZState* st, double x) noexcept nogil:
    cdef double sd = std_step(&st.std, x)
    if st.std.count < st.std.period:
        return NAN
    # x - shift is exact (the shift is re-chosen whenever it would not be).
    st.value = ((x - st.std.shift) - st.std.mean) / sd if sd > 0.0 else 0.0
    return st.value


cdef class ZScore:
    """(x - mean) / population std of the last `period` values, x included; 0 when the
    window is flat. First value at index period-1."""

    def __cinit__(self, int64_t period):
        std_init(&self._st.std, "ZScore", period, 0)
        z_reset(&self._st)

    def __dealloc__(self):
        ring_free(&self._st.std.window)

    cdef double update_c(self, double x) noexcept nogil:
        return z_step(&self._st, x)

    cdef double peek_c(self, double x) noexcept nogil:
        cdef double mean, m2
        if not std_peek(&self._st.std, x, &mean, &m2):
            return NAN
        return (x - mean) / sqrt(m2 / self._st.std.period) if m2 > 0.0 else 0.0

    cdef void reset_c(self) noexcept nogil:
        z_reset(&self._st)

    def update(self, double x):
        _check_finite("ZScore.update", x)
        return z_step(&self._st, x)

    def peek(self, double x):
        _check_finite("ZScore.peek", x)
        return self.peek_c(x)

    def reset(self):
        z_reset(&self._st)

    @property
    def period(self):
        return self._st.std.period

    @property
    def count(self):
        return self._st.std.count

    @property
    def value(self):
        return self._st.value

    @property
    def ready(self):
        return self._st.std.count >= self._st.std.period

    def __repr__(self):
        return f"ZScore(period={self.period}, count={self.count}, value={self.value!r})"


# ---------------------------------------------------------------- batch functions
#
# Each batch function builds an instance, copies its state struct into a local, runs the
# indicator's step function over the input (validating each value as it goes) and stores
# the state back: exactly the arithmetic of update_c, with the state in registers.

ctypedef fused OneState:
    SMAState
    EMAState
    WMAState
    RSIState
    StdState
    ExtremeState
    ROCState
    ZState

ctypedef fused StochStates:
    StochFState
    StochState


cdef inline double _step_one(OneState* st, double x) noexcept nogil:
    if OneState is SMAState:
        return sma_step(st, x)
    elif OneState is EMAState:
        return ema_step(st, x)
    elif OneState is WMAState:
        return wma_step(st, x)
    elif OneState is RSIState:
        return rsi_step(st, x)
    elif OneState is StdState:
        return std_step(st, x)
    elif OneState is ExtremeState:
        return extreme_step(st, x)
    elif OneState is ROCState:
        return roc_step(st, x)
    else:
        return z_step(st, x)


cdef Py_ssize_t _run_one(OneState* state, const double[::1] x, double[::1] out,
                         bint positive) noexcept nogil:
    """Run the step over x into out; return the index of the first invalid input, or -1."""
    cdef OneState st = state[0]
    cdef Py_ssize_t i, bad = -1
    cdef double v
    for i in range(x.shape[0]):
        v = x[i]
        if not isfinite(v) or (positive and v <= 0.0):
            bad = i
            break
        out[i] = _step_one(&st, v)
    state[0] = st
    return bad


cdef inline double _step_stoch(StochStates* st, double h, double l, double c) noexcept nogil:
    if StochStates is StochFState:
        return stochf_step(st, h, l, c)
    else:
        return stoch_step(st, h, l, c)


cdef Py_ssize_t _run_stoch(StochStates* state, const double[::1] high, const double[::1] low,
                           const double[::1] close, double[::1] k, double[::1] d) noexcept nogil:
    cdef StochStates st = state[0]
    cdef Py_ssize_t i, bad = -1
    for i in range(close.shape[0]):
        if _bad_bar(high[i], low[i], close[i]):
            bad = i
            break
        k[i] = _step_stoch(&st, high[i], low[i], close[i])
        d[i] = st.d_value           # NaN until ready, like %K
    state[0] = st
    return bad


cdef object _f64(object x):
    return np.ascontiguousarray(x, dtype=np.float64)


cdef int _same_length(str who, object a, object b) except -1:
    if len(a) != len(b):
        raise ValueError(f"{who}: inputs differ in length ({len(a)} vs {len(b)})")
    return 0


cdef int _raise_bad_value(str who, Py_ssize_t i, double v, bint positive) except -1:
    what = "a finite value > 0" if positive else "a finite value"
    raise ValueError(f"{who}: value at index {i} must be {what}, got {v!r}")


cdef int _raise_bad_bar(str who, Py_ssize_t i, double h, double l, double c) except -1:
    raise ValueError(f"{who}: invalid bar at index {i}: high={h!r} low={l!r} close={c!r} "
                     "(prices must be finite and > 0, high >= low)")


cdef object _single(str who, OneState* st, object x, bint positive=False):
    cdef const double[::1] xv = _f64(x)
    out = np.empty(xv.shape[0], dtype=np.float64)
    cdef double[::1] o = out
    cdef Py_ssize_t bad
    with nogil:
        bad = _run_one(st, xv, o, positive)
    if bad >= 0:
        _raise_bad_value(who, bad, xv[bad], positive)
    return out


def sma(x, int64_t period):
    """SMA of x, NaN during warm-up (matches talib.SMA)."""
    cdef SMA ind = SMA(period)
    return _single("sma", &ind._st, x)


def ema(x, int64_t period):
    """EMA of x seeded with the SMA of the first `period` values (matches talib.EMA)."""
    cdef EMA ind = EMA(period)
    return _single("ema", &ind._st, x)


def wma(x, int64_t period):
    """Linearly weighted moving average (matches talib.WMA)."""
    cdef WMA ind = WMA(period)
    return _single("wma", &ind._st, x)


def rsi(x, int64_t period=14):
    """Wilder RSI (matches talib.RSI)."""
    cdef RSI ind = RSI(period)
    return _single("rsi", &ind._st, x)


def rolling_std(x, int64_t period, int64_t ddof=0):
    """Rolling standard deviation (ddof=0 matches talib.STDDEV with nbdev=1)."""
    cdef RollingStd ind = RollingStd(period, ddof)
    return _single("rolling_std", &ind._st, x)


def rolling_min(x, int64_t period):
    """Rolling minimum (matches talib.MIN)."""
    cdef RollingMin ind = RollingMin(period)
    return _single("rolling_min", &ind._st, x)


def rolling_max(x, int64_t period):
    """Rolling maximum (matches talib.MAX)."""
    cdef RollingMax ind = RollingMax(period)
    return _single("rolling_max", &ind._st, x)


def zscore(x, int64_t period):
    """(x - rolling mean) / rolling population std, 0 on a flat window."""
    cdef ZScore ind = ZScore(period)
    return _single("zscore", &ind._st, x)


def roc(x, int64_t period=10):
    """Rate of change in percent (matches talib.ROC); x must be > 0."""
    cdef ROC ind = ROC(period)
    return _single("roc", &ind._st, x, True)


cdef Py_ssize_t _run_atr(ATRState* state, const double[::1] high, const double[::1] low,
                         const double[::1] close, double[::1] out) noexcept nogil:
    cdef ATRState st = state[0]
    cdef Py_ssize_t i, bad = -1
    for i in range(close.shape[0]):
        if _bad_bar(high[i], low[i], close[i]):
            bad = i
            break
        out[i] = atr_step(&st, high[i], low[i], close[i])
    state[0] = st
    return bad


def atr(high, low, close, int64_t period=14):
    """Average true range (matches talib.ATR)."""
    _same_length("atr", high, close)
    _same_length("atr", low, close)
    cdef ATR ind = ATR(period)
    cdef const double[::1] h = _f64(high)
    cdef const double[::1] l = _f64(low)
    cdef const double[::1] c = _f64(close)
    out = np.empty(c.shape[0], dtype=np.float64)
    cdef double[::1] o = out
    cdef Py_ssize_t bad
    with nogil:
        bad = _run_atr(&ind._st, h, l, c, o)
    if bad >= 0:
        _raise_bad_bar("atr", bad, h[bad], l[bad], c[bad])
    return out


cdef Py_ssize_t _run_bb(BBState* state, const double[::1] x, double[::1] upper,
                        double[::1] middle, double[::1] lower) noexcept nogil:
    cdef BBState st = state[0]
    cdef Py_ssize_t i, bad = -1
    for i in range(x.shape[0]):
        if not isfinite(x[i]):
            bad = i
            break
        middle[i] = bb_step(&st, x[i])
        upper[i] = st.upper         # the bands stay NaN until ready, like the middle
        lower[i] = st.lower
    state[0] = st
    return bad


def bbands(x, int64_t period=20, double nbdev_up=2.0, double nbdev_dn=2.0):
    """(upper, middle, lower) Bollinger bands (matches talib.BBANDS with matype=0)."""
    cdef BollingerBands ind = BollingerBands(period, nbdev_up, nbdev_dn)
    cdef const double[::1] xv = _f64(x)
    cdef Py_ssize_t bad, n = xv.shape[0]
    upper = np.empty(n, dtype=np.float64)
    middle = np.empty(n, dtype=np.float64)
    lower = np.empty(n, dtype=np.float64)
    cdef double[::1] u = upper, m = middle, lo = lower
    with nogil:
        bad = _run_bb(&ind._st, xv, u, m, lo)
    if bad >= 0:
        _raise_bad_value("bbands", bad, xv[bad], False)
    return upper, middle, lower


cdef Py_ssize_t _run_macd(MACDState* state, const double[::1] x, double[::1] line,
                          double[::1] signal, double[::1] hist) noexcept nogil:
    cdef MACDState st = state[0]
    cdef Py_ssize_t i, bad = -1
    for i in range(x.shape[0]):
        if not isfinite(x[i]):
            bad = i
            break
        line[i] = macd_step(&st, x[i])
        signal[i] = st.signal       # NaN until ready, like the MACD line
        hist[i] = st.hist
    state[0] = st
    return bad


def macd(x, int64_t fast=12, int64_t slow=26, int64_t signal=9):
    """(macd, signal, histogram) (matches talib.MACD)."""
    cdef MACD ind = MACD(fast, slow, signal)
    cdef const double[::1] xv = _f64(x)
    cdef Py_ssize_t bad, n = xv.shape[0]
    line = np.empty(n, dtype=np.float64)
    sig = np.empty(n, dtype=np.float64)
    hist = np.empty(n, dtype=np.float64)
    cdef double[::1] a = line, b = sig, h = hist
    with nogil:
        bad = _run_macd(&ind._st, xv, a, b, h)
    if bad >= 0:
        _raise_bad_value("macd", bad, xv[bad], False)
    return line, sig, hist


cdef object _stoch_batch(str who, StochStates* st, object high, object low, object close):
    _same_length(who, high, close)
    _same_length(who, low, close)
    cdef const double[::1] h = _f64(high)
    cdef const double[::1] l = _f64(low)
    cdef const double[::1] c = _f64(close)
    cdef Py_ssize_t bad, n = c.shape[0]
    k = np.empty(n, dtype=np.float64)
    d = np.empty(n, dtype=np.float64)
    cdef double[::1] ko = k, do = d
    with nogil:
        bad = _run_stoch(st, h, l, c, ko, do)
    if bad >= 0:
        _raise_bad_bar(who, bad, h[bad], l[bad], c[bad])
    return k, d


def stochf(high, low, close, int64_t fastk_period=5, int64_t fastd_period=3):
    """(fast %K, fast %D) (matches talib.STOCHF with fastd_matype=0)."""
    cdef StochasticFast ind = StochasticFast(fastk_period, fastd_period)
    return _stoch_batch("stochf", &ind._st, high, low, close)


def stoch(high, low, close, int64_t fastk_period=5, int64_t slowk_period=3, int64_t slowd_period=3):
    """(slow %K, slow %D) (matches talib.STOCH with both matypes 0)."""
    cdef Stochastic ind = Stochastic(fastk_period, slowk_period, slowd_period)
    return _stoch_batch("stoch", &ind._st, high, low, close)


cdef Py_ssize_t _run_vwap(VWAPState* state, const double[::1] price, const double[::1] volume,
                          double[::1] out) noexcept nogil:
    cdef VWAPState st = state[0]
    cdef Py_ssize_t i, bad = -1
    for i in range(price.shape[0]):
        if _bad_price(price[i]) or _bad_volume(volume[i]):
            bad = i
            break
        out[i] = vwap_step(&st, price[i], volume[i])
    state[0] = st
    return bad


cdef Py_ssize_t _run_svwap(SessionVWAPState* state, const int64_t[::1] ts, const double[::1] price,
                           const double[::1] volume, double[::1] out) noexcept nogil:
    cdef SessionVWAPState st = state[0]
    cdef Py_ssize_t i, bad = -1
    for i in range(price.shape[0]):
        if _bad_price(price[i]) or _bad_volume(volume[i]) or (i > 0 and ts[i] < ts[i - 1]):
            bad = i
            break
        out[i] = svwap_step(&st, ts[i], price[i], volume[i])
    state[0] = st
    return bad


cdef Py_ssize_t _run_obv(OBVState* state, const double[::1] close, const double[::1] volume,
                         double[::1] out) noexcept nogil:
    cdef OBVState st = state[0]
    cdef Py_ssize_t i, bad = -1
    for i in range(close.shape[0]):
        if _bad_price(close[i]) or _bad_volume(volume[i]):
            bad = i
            break
        out[i] = obv_step(&st, close[i], volume[i])
    state[0] = st
    return bad


def vwap(price, volume, int64_t period):
    """Rolling VWAP over `period` bars; NaN while the window holds no volume."""
    _same_length("vwap", price, volume)
    cdef VWAP ind = VWAP(period)
    cdef const double[::1] p = _f64(price)
    cdef const double[::1] v = _f64(volume)
    out = np.empty(p.shape[0], dtype=np.float64)
    cdef double[::1] o = out
    cdef Py_ssize_t bad
    with nogil:
        bad = _run_vwap(&ind._st, p, v, o)
    if bad >= 0:
        raise ValueError(f"vwap: invalid input at index {bad}: price={p[bad]!r} volume={v[bad]!r} "
                         "(price must be finite and > 0, volume finite and >= 0)")
    return out


def session_vwap(ts, price, volume, int64_t session_ns=UTC_DAY_NS, int64_t offset_ns=0):
    """VWAP since the start of each session (ts in int64 ns, non-decreasing)."""
    _same_length("session_vwap", ts, price)
    _same_length("session_vwap", volume, price)
    cdef SessionVWAP ind = SessionVWAP(session_ns, offset_ns)
    cdef const int64_t[::1] t = np.ascontiguousarray(ts, dtype=np.int64)
    cdef const double[::1] p = _f64(price)
    cdef const double[::1] v = _f64(volume)
    out = np.empty(p.shape[0], dtype=np.float64)
    cdef double[::1] o = out
    cdef Py_ssize_t bad
    with nogil:
        bad = _run_svwap(&ind._st, t, p, v, o)
    if bad >= 0:
        raise ValueError(f"session_vwap: invalid input at index {bad}: ts={t[bad]} price={p[bad]!r} "
                         f"volume={v[bad]!r} (price finite and > 0, volume finite and >= 0, "
                         "ts non-decreasing)")
    return out


def obv(close, volume):
    """On-balance volume (matches talib.OBV)."""
    _same_length("obv", close, volume)
    cdef OBV ind = OBV()
    cdef const double[::1] c = _f64(close)
    cdef const double[::1] v = _f64(volume)
    out = np.empty(c.shape[0], dtype=np.float64)
    cdef double[::1] o = out
    cdef Py_ssize_t bad
    with nogil:
        bad = _run_obv(&ind._st, c, v, o)
    if bad >= 0:
        raise ValueError(f"obv: invalid input at index {bad}: close={c[bad]!r} volume={v[bad]!r} "
                         "(close must be finite and > 0, volume finite and >= 0)")
    return out


# ---------------------------------------------------------------- benchmark helper

cdef inline int64_t _now_ns() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return <int64_t>ts.tv_sec * 1_000_000_000 + ts.tv_nsec


# Results land here so that the compiler cannot drop the loops being timed.
cdef double _bench_sink = 0.0

ctypedef fused OneInputClass:
    SMA
    EMA
    WMA
    RSI
    BollingerBands
    MACD
    RollingStd
    RollingMin
    RollingMax
    ROC
    ZScore

ctypedef fused TwoInputClass:
    VWAP
    OBV

ctypedef fused BarClass:
    ATR
    Stochastic
    StochasticFast


def _time_one(OneInputClass ind, const double[::1] x):
    global _bench_sink
    cdef Py_ssize_t i
    cdef double acc = 0.0
    cdef int64_t t0, t1
    with nogil:
        t0 = _now_ns()
        for i in range(x.shape[0]):
            acc += ind.update_c(x[i])
        t1 = _now_ns()
    _bench_sink = acc
    return t1 - t0


def _time_two(TwoInputClass ind, const double[::1] x, const double[::1] y):
    global _bench_sink
    cdef Py_ssize_t i
    cdef double acc = 0.0
    cdef int64_t t0, t1
    with nogil:
        t0 = _now_ns()
        for i in range(x.shape[0]):
            acc += ind.update_c(x[i], y[i])
        t1 = _now_ns()
    _bench_sink = acc
    return t1 - t0


def _time_bar(BarClass ind, const double[::1] high, const double[::1] low, const double[::1] close):
    global _bench_sink
    cdef Py_ssize_t i
    cdef double acc = 0.0
    cdef int64_t t0, t1
    with nogil:
        t0 = _now_ns()
        for i in range(close.shape[0]):
            acc += ind.update_c(high[i], low[i], close[i])
        t1 = _now_ns()
    _bench_sink = acc
    return t1 - t0


_BENCH = {
    "sma": (SMA, 1), "ema": (EMA, 1), "wma": (WMA, 1), "rsi": (RSI, 1),
    "bbands": (BollingerBands, 1), "macd": (MACD, 0), "stddev": (RollingStd, 1),
    "min": (RollingMin, 1), "max": (RollingMax, 1), "roc": (ROC, 1), "zscore": (ZScore, 1),
    "vwap": (VWAP, 1), "obv": (OBV, 0),
    "atr": (ATR, 1), "stoch": (Stochastic, 0), "stochf": (StochasticFast, 0),
}


def _bench_update_loop(str name, a, b=None, c=None, int64_t period=14):
    """Per-update cost in ns of `update_c` called from Cython on one instance, as the data
    engine calls it: a C loop over the inputs, timed with clock_gettime(CLOCK_MONOTONIC).

    `a` is the single input (or high / price / close); `b` low or volume; `c` close.
    Names: sma ema wma rsi atr bbands macd stddev min max vwap obv stoch stochf roc zscore.
    Indicators with several parameters use their defaults; the others take `period`.
    """
    if name not in _BENCH:
        raise ValueError(f"_bench_update_loop: unknown indicator {name!r}")
    cls, takes_period = _BENCH[name]
    ind = cls(period) if takes_period else cls()
    x = _f64(a)
    if len(x) == 0:
        return 0.0
    if isinstance(ind, (VWAP, OBV)):
        elapsed = _time_two(ind, x, _f64(b))
    elif isinstance(ind, (ATR, Stochastic, StochasticFast)):
        elapsed = _time_bar(ind, x, _f64(b), _f64(c))
    else:
        elapsed = _time_one(ind, x)
    return elapsed / len(x)
