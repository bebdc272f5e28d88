# distutils: extra_compile_args = -fno-tree-slp-vectorize -ffp-contract=off
# GCC's SLP vectorizer packs paired state (gain/loss, hi/lo) into one SIMD register and
# unpacks it every bar, which puts shuffles on the loop-carried chain: 2x slower batches.
# -ffp-contract=off: the compiler never fuses a*b + c on its own (GCC does by default where
# FMA is available: on aarch64, and in the FMA-dispatched loops below), so that a step
# rounds the same in update_c and in every batch build; fma() is used where it is meant.
"""Streaming technical indicators, O(1) per update, and batch functions on the same kernels.

Each class commits one input with `update(...)` (Python, validated) or `update_c(...)`
(C, unchecked) and returns its primary value, NaN until `ready`. The batch functions
(`sma(x, 14)`, ...) validate as they go and run the very same step function over the
array (see indicators.pxd), so streaming and batch cannot diverge. Seeding and warm-up
follow TA-Lib; docs/indicators.md lists each indicator's first ready index.
"""

from libc.float cimport DBL_EPSILON
from libc.math cimport INFINITY, NAN, fabs, fma, isfinite, sqrt
from libc.stdint cimport int64_t
from posix.time cimport CLOCK_MONOTONIC, clock_gettime, timespec
from cpython.mem cimport PyMem_Free, PyMem_Malloc

from abidance._core.ringbuf cimport (
    Ring, ring_clear, ring_free, ring_get, ring_init, ring_newest, ring_oldest, ring_push,
)

import numpy as np


# Runtime dispatch for batch loops (ATR, Bollinger): on x86-64 the loop is compiled a second
# time for CPUs with FMA (and so AVX), with the GCC/Clang `target` attribute given on the
# prototype below and inherited by Cython's definition, and picked once at import, as
# TA-Lib 0.6+ does with target_clones. No CPU-specific build flags: the module runs on any
# x86-64 (and builds once, plainly, elsewhere; aarch64 has FMA anyway). Results do not
# depend on the path: with contraction off the FMA build rounds exactly like the baseline,
# and the one fused multiply-add (ATR's Wilder step) is an explicit fma(), correctly rounded
# wherever it runs (the instruction, or libm in update_c and the baseline build).
cdef extern from *:
    """
    #include <float.h>
    #include <string.h>
    #if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
    #define ABIDANCE_TARGET_FMA __attribute__((target("fma")))
    static int abidance_cpu_has_fma(void) {
        __builtin_cpu_init();
        return __builtin_cpu_supports("fma");
    }
    #else
    #define ABIDANCE_TARGET_FMA
    static int abidance_cpu_has_fma(void) { return 0; }
    #endif

    /* `flatten` inlines every call in a batch loop whatever the inliner's budget for this
       (large) module, so that the step's state stays in registers. */
    #if defined(__GNUC__) || defined(__clang__)
    #define ABIDANCE_FLATTEN __attribute__((flatten))
    #else
    #define ABIDANCE_FLATTEN
    #endif

    static Py_ssize_t abidance_run_atr_fma(void *, const double *, const double *,
                                           const double *, double *, Py_ssize_t) ABIDANCE_TARGET_FMA;
    static Py_ssize_t abidance_run_bb(void *, const double *, double *, double *, double *,
                                      Py_ssize_t) ABIDANCE_FLATTEN;
    static Py_ssize_t abidance_run_bb_fma(void *, const double *, double *, double *, double *,
                                          Py_ssize_t) ABIDANCE_FLATTEN ABIDANCE_TARGET_FMA;

    /* Whether any of 4 bars fails 0 < low <= high <= DBL_MAX, 0 < close <= DBL_MAX (NaN
       fails every comparison). Generic vectors, so that it inlines into any caller and is
       compiled for the caller's ISA: one AVX test in the FMA build, SSE2 or NEON pairs
       otherwise. */
    #if defined(__GNUC__) || defined(__clang__)
    typedef double abidance_v4d __attribute__((vector_size(32)));
    typedef long long abidance_v4l __attribute__((vector_size(32)));
    typedef long long abidance_v2l __attribute__((vector_size(16)));
    static inline int abidance_bad_bars4(const double *h, const double *l, const double *c) {
        abidance_v4d vh, vl, vc;
        abidance_v4l ok;
        abidance_v2l lo, hi;
        memcpy(&vh, h, sizeof vh);
        memcpy(&vl, l, sizeof vl);
        memcpy(&vc, c, sizeof vc);
        ok = (vl > 0.0) & (vh >= vl) & (vh <= DBL_MAX) & (vc > 0.0) & (vc <= DBL_MAX);
        memcpy(&lo, &ok, sizeof lo);
        memcpy(&hi, (const char *)&ok + sizeof lo, sizeof hi);
        lo &= hi;
        return (lo[0] & lo[1]) == 0;
    }
    #else
    static int abidance_bad_bars4(const double *h, const double *l, const double *c) {
        int ok = 1, k;
        for (k = 0; k < 4; k++)
            ok &= (l[k] > 0.0) & (h[k] >= l[k]) & (h[k] <= DBL_MAX) & (c[k] > 0.0) & (c[k] <= DBL_MAX);
        return !ok;
    }
    #endif
    """
    int abidance_cpu_has_fma() noexcept nogil
    bint abidance_bad_bars4(const double* high, const double* low, const double* close) noexcept nogil

cdef bint _HAS_FMA = abidance_cpu_has_fma()


def _set_fma_dispatch(bint on):
    """Use the FMA build of the batch loops when on (and the CPU has FMA); returns the
    previous setting. For tests: every path must give the same bits."""
    global _HAS_FMA
    cdef bint was = _HAS_FMA
    _HAS_FMA = on and abidance_cpu_has_fma()
    return was

# TA-Lib's RSI reports 0 when average gain + average loss is inside this band
# (TA_EPSILON in its ta_utility.h); kept so that RSI matches it exactly.
cdef double TA_EPSILON = 1e-14

# RollingStd re-sums its window exactly once the rounding-error bound of M2 could exceed
# this fraction of M2 (std is then good to ~5e-13 relative; see _std_slide).
cdef double STD_TOLERANCE = 1e-12
# The bound is kept in units of u = DBL_EPSILON / 2, with 1% headroom for the second-order
# terms that a first-order rounding analysis drops.
cdef double STD_BOUND_SCALE = 1.01 * (0.5 * DBL_EPSILON) / STD_TOLERANCE

# SMA re-sums its window exactly every max(period, SMA_RESUM_EVERY) updates: between re-sums
# its running sum drifts by at most one rounding per update (see docs/indicators.md).
cdef int64_t SMA_RESUM_EVERY = 1024

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

cdef double _window_fsum(Ring w, int64_t skip_oldest, bint with_x, double x) noexcept nogil:
    """Compensated sum of the ring's values oldest first, less its oldest `skip_oldest`, then
    x when with_x: within about one rounding of the exact sum. The ring comes by value so
    that a batch loop's state never has its address taken (it stays in registers)."""
    cdef CompSum s
    cdef int64_t i
    csum_clear(&s)
    for i in range(w.count - 1 - skip_oldest, -1, -1):
        csum_add(&s, ring_get(&w, i))
    if with_x:
        csum_add(&s, x)
    return csum(&s)


cdef inline void sma_reset(SMAState* st) noexcept nogil:
    ring_clear(&st.window)
    st.sum = 0.0
    st.until_resum = 1              # the update that fills the window sums it exactly
    st.count = 0
    st.value = NAN


cdef int sma_init(SMAState* st, str who, int64_t period) except -1:
    _check_period(who, "period", period, 1)
    st.period = period
    st.resum_every = period if period > SMA_RESUM_EVERY else SMA_RESUM_EVERY
    ring_init(&st.window, period)
    sma_reset(st)
    return 0


cdef inline double sma_step(SMAState* st, double x) noexcept nogil:
    # TA-Lib's plain running sum, one add on the loop-carried chain (x - old is formed off
    # it, and is exact for prices within a factor 2 of each other), with an exact re-sum of
    # the window every `resum_every` updates so that its rounding cannot drift (bound in
    # docs/indicators.md). The window fill is such a re-sum.
    cdef double old = ring_push(&st.window, x)
    st.count += 1
    if st.count < st.period:
        return NAN
    st.until_resum -= 1
    if st.until_resum > 0:
        st.sum += x - old
    else:
        st.sum = _window_fsum(st.window, 0, False, 0.0)
        st.until_resum = st.resum_every
    st.value = st.sum / st.period
    return st.value


cdef inline double sma_peek(const SMAState* st, double x) noexcept nogil:
    # The same arithmetic as sma_step, in the same order (bit-identical), nothing committed.
    if st.count + 1 < st.period:
        return NAN
    if st.until_resum > 1:
        return (st.sum + (x - ring_oldest(&st.window))) / st.period
    return _window_fsum(st.window, 1 if st.count >= st.period else 0, True, x) / st.period


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


cdef inline double _atr_warmup(ATRState* st, double tr) noexcept nogil:
    if st.count == 1:
        return NAN                  # TA-Lib has no true range for the first bar
    st.tr_sum += tr
    if st.count <= st.period:
        return NAN
    st.value = st.tr_sum / st.period
    return st.value


cdef inline double atr_step(ATRState* st, double high, double low, double close) noexcept nogil:
    # On the first bar prev_close is NaN and the true range, unused, is high - low.
    cdef double tr = _true_range(high, low, st.prev_close)
    st.prev_close = close
    st.count += 1
    if st.count > st.period + 1:
        # Wilder, avg*(n-1)/n + tr/n, with one fused multiply-add on the loop-carried
        # chain as in TA-Lib's FMA build (see the dispatch note at the top).
        st.value = fma(st.value, st.keep, tr * st.new_w)
        return st.value
    return _atr_warmup(st, tr)


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
    st.last = NAN
    st.shift = 0.0
    st.s1 = 0.0
    st.s2 = 0.0
    st.e1 = 0.0
    st.e2 = 0.0
    st.m2 = 0.0
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
    st.two_inv_n = 2.0 / period
    st.inv_nd = 1.0 / (period - ddof)
    st.resyncs = 0
    ring_init(&st.window, period)
    std_reset(st)
    return 0


ctypedef struct _StdSums:
    double shift
    double s1
    double s2


cdef _StdSums _std_resum(Ring w, int64_t skip_oldest, bint with_x, double x) noexcept nogil:
    """Shifted sums of the window (less its oldest `skip_oldest` values, plus x when with_x),
    re-centred on its mean: compensated, each within about one rounding of the exact sum of
    the shifted values. The ring comes by value and the result goes back by value, so that
    a batch loop's state never has its address taken (it stays in registers)."""
    cdef _StdSums r
    cdef int64_t i, kept = w.count - skip_oldest
    cdef CompSum total, s1, s2
    cdef double y
    csum_clear(&total)
    csum_clear(&s1)
    csum_clear(&s2)
    if with_x:
        csum_add(&total, x)
    for i in range(kept):
        csum_add(&total, ring_get(&w, i))
    r.shift = csum(&total) / (kept + with_x)
    for i in range(kept - 1, -1, -1):
        y = ring_get(&w, i) - r.shift
        csum_add(&s1, y)
        csum_add(&s2, y * y)
    if with_x:
        y = x - r.shift
        csum_add(&s1, y)
        csum_add(&s2, y * y)
    r.s1 = csum(&s1)
    r.s2 = csum(&s2)
    return r


cdef inline void _std_set(StdState* st, _StdSums r) noexcept nogil:
    cdef double m2
    st.shift = r.shift
    st.s1 = r.s1
    st.s2 = r.s2
    # Rounding left by the re-sum: u|S1| in S1; u per square plus u for the sum in S2.
    st.e1 = fabs(r.s1)
    st.e2 = 2.0 * r.s2
    m2 = r.s2 - r.s1 * r.s1 * st.inv_n
    st.m2 = m2 if m2 > 0.0 else 0.0
    st.resyncs += 1


cdef inline void _std_flat(StdState* st, double x) noexcept nogil:
    # A window of identical values: exactly zero, centred on x, all carried rounding dropped.
    st.shift = x
    st.s1 = 0.0
    st.s2 = 0.0
    st.e1 = 0.0
    st.e2 = 0.0
    st.m2 = 0.0


cdef inline bint _std_slide(StdState* st, double x, double old) noexcept nogil:
    """Replace old by x in a full window's shifted sums S1 = sum(y), S2 = sum(y*y), where
    y = fl(v - K) for every value v in the window (the same y when v leaves as when it came
    in); M2 = S2 - S1*S1/n. Returns whether M2 is still within STD_TOLERANCE (relative).

    With u = DBL_EPSILON/2, to first order: each update adds at most u(|y-yo| + |S1'|) to
    the error of S1 (accumulated in e1) and u(2(y^2 + yo^2) + S2') to that of S2 (e2). The
    error of M2 is then at most u(e2 + 2|S1|e1/n + 3 S1^2/n + M2) (the last two: forming
    S1^2/n and the subtraction), plus u(S2 + M2) for y being fl(v - K) rather than v - K
    (2 sum |v - mean| |y| u <= 2u sqrt(M2 S2)); in all u(e2 + 2|S1|e1/n + 3 S2 + S1^2/n).
    K is the window mean at the last re-sum, so S2 stays close to M2 until the mean drifts
    or the window goes quiet after a spike; then the bound runs out and the caller re-sums.
    """
    cdef double k = st.shift
    cdef double y = x - k
    cdef double yo = old - k
    cdef double q = y * y
    cdef double qo = yo * yo
    cdef double d = y - yo
    cdef double s1 = st.s1 + d
    cdef double s2 = st.s2 + (q - qo)
    cdef double s1n = s1 * s1 * st.inv_n
    cdef double m2 = s2 - s1n
    cdef double e1 = st.e1 + (fabs(d) + fabs(s1))
    cdef double e2 = st.e2 + (2.0 * (q + qo) + s2)
    st.s1 = s1
    st.s2 = s2
    st.e1 = e1
    st.e2 = e2
    st.m2 = m2
    # False for a negative or NaN m2 too.
    return (e2 + 3.0 * s2 + s1n + st.two_inv_n * fabs(s1) * e1) * STD_BOUND_SCALE <= m2


cdef inline double std_step(StdState* st, double x) noexcept nogil:
    cdef int64_t n = st.period
    # run + 1 after an equal input, else 1; branch-free (repeated prices are common).
    st.run = (st.run & -<int64_t>(x == st.last)) + 1
    st.last = x
    cdef double old = ring_push(&st.window, x)
    st.count += 1
    if st.count < n:
        return NAN
    if st.run >= n:
        _std_flat(st, x)
    elif st.count == n or not _std_slide(st, x, old):
        # The window just filled, or the error bound ran out: one out-of-line re-sum.
        _std_set(st, _std_resum(st.window, 0, False, 0.0))
    st.value = sqrt(st.m2 * st.inv_nd)
    return st.value


cdef inline double std_mean(const StdState* st) noexcept nogil:
    return st.shift + st.s1 * st.inv_n


cdef bint std_peek(const StdState* st, double x, double* mean, double* m2) noexcept nogil:
    """Window mean and M2 if x were committed (the arithmetic of std_step, nothing
    committed); False while that would still be warm-up."""
    cdef int64_t n = st.period
    cdef StdState tmp = st[0]           # scalars only: nothing here touches the ring
    if st.count + 1 < n:
        return False
    if (st.run + 1 if x == st.last else 1) >= n:
        _std_flat(&tmp, x)
    elif st.count + 1 == n:
        _std_set(&tmp, _std_resum(st.window, 0, True, x))
    elif not _std_slide(&tmp, x, ring_oldest(&st.window)):
        _std_set(&tmp, _std_resum(st.window, 1, True, x))
    mean[0] = std_mean(&tmp)
    m2[0] = tmp.m2
    return True


cdef class RollingStd:
    """Standard deviation of the last `period` values (population, or sample with ddof=1);
    matches TA-Lib STDDEV (nbdev=1) with ddof=0. First value at index period-1.

    Running sums of the values shifted by a recent mean, with a running bound on their
    rounding error and an exact re-sum of the window when that bound could exceed 1e-12
    of M2: O(1) amortised per update, and accurate even for a quiet window right after a
    spike. A window of identical values reports exactly 0.
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
        return sqrt(m2 * self._st.inv_nd)

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
        sd = sqrt(m2 * self._st.std.inv_nd)
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


cdef class _RollingExtreme:
    """Shared body of RollingMin and RollingMax: one monotonic-deque kernel, two orders."""

    def __dealloc__(self):
        extreme_free(&self._st)

    cdef double update_c(self, double x) noexcept nogil:
        return extreme_step(&self._st, x)

    cdef double peek_c(self, double x) noexcept nogil:
        return extreme_peek(&self._st, x)

    cdef void reset_c(self) noexcept nogil:
        extreme_reset(&self._st)

    def update(self, double x):
        if not isfinite(x):   # the name is built only on the error path
            _check_finite(self._name + ".update", x)
        return extreme_step(&self._st, x)

    def peek(self, double x):
        if not isfinite(x):
            _check_finite(self._name + ".peek", x)
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
        return f"{self._name}(period={self.period}, count={self.count}, value={self.value!r})"


cdef class RollingMin(_RollingExtreme):
    """Lowest of the last `period` values (TA-Lib MIN), O(1) amortised by a monotonic deque.
    First value at index period-1."""

    def __cinit__(self, int64_t period):
        self._name = "RollingMin"
        extreme_init(&self._st, "RollingMin", period, True)


cdef class RollingMax(_RollingExtreme):
    """Highest of the last `period` values (TA-Lib MAX), O(1) amortised by a monotonic deque.
    First value at index period-1."""

    def __cinit__(self, int64_t period):
        self._name = "RollingMax"
        extreme_init(&self._st, "RollingMax", period, False)


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
    st.value = ((x - st.std.shift) - st.std.s1 * st.std.inv_n) / sd if sd > 0.0 else 0.0
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
        return (x - mean) / sqrt(m2 * self._st.std.inv_nd) if m2 > 0.0 else 0.0

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


cdef inline Py_ssize_t _atr_loop(ATRState* state, const double* high, const double* low,
                                const double* close, double* out, Py_ssize_t n) noexcept nogil:
    # Bars are checked 4 at a time (one vector test), then stepped; the first group with
    # an invalid bar, and the tail, go bar by bar to stop at the exact index.
    cdef ATRState st = state[0]
    cdef Py_ssize_t i = 0, k
    while i + 4 <= n:
        if abidance_bad_bars4(high + i, low + i, close + i):
            break
        for k in range(i, i + 4):
            out[k] = atr_step(&st, high[k], low[k], close[k])
        i += 4
    while i < n:
        if _bad_bar(high[i], low[i], close[i]):
            break
        out[i] = atr_step(&st, high[i], low[i], close[i])
        i += 1
    state[0] = st
    return i if i < n else -1


cdef Py_ssize_t _run_atr_fma "abidance_run_atr_fma"(
        void* state, const double* high, const double* low, const double* close, double* out,
        Py_ssize_t n) noexcept nogil:
    return _atr_loop(<ATRState*>state, high, low, close, out, n)


cdef Py_ssize_t _run_atr(ATRState* state, const double* high, const double* low,
                         const double* close, double* out, Py_ssize_t n) noexcept nogil:
    if _HAS_FMA:
        return _run_atr_fma(state, high, low, close, out, n)
    return _atr_loop(state, high, low, close, out, n)


def atr(high, low, close, int64_t period=14):
    """Average true range (matches talib.ATR)."""
    _same_length("atr", high, close)
    _same_length("atr", low, close)
    cdef ATR ind = ATR(period)
    cdef const double[::1] h = _f64(high)
    cdef const double[::1] l = _f64(low)
    cdef const double[::1] c = _f64(close)
    cdef Py_ssize_t bad, n = c.shape[0]
    out = np.empty(n, dtype=np.float64)
    cdef double[::1] o = out
    if n == 0:
        return out
    with nogil:
        bad = _run_atr(&ind._st, &h[0], &l[0], &c[0], &o[0], n)
    if bad >= 0:
        _raise_bad_bar("atr", bad, h[bad], l[bad], c[bad])
    return out


cdef inline Py_ssize_t _bb_loop(BBState* state, const double* x, double* upper, double* middle,
                               double* lower, Py_ssize_t n) noexcept nogil:
    cdef BBState st = state[0]
    cdef Py_ssize_t i, bad = -1
    for i in range(n):
        if not isfinite(x[i]):
            bad = i
            break
        middle[i] = bb_step(&st, x[i])
        upper[i] = st.upper         # the bands stay NaN until ready, like the middle
        lower[i] = st.lower
    state[0] = st
    return bad


cdef Py_ssize_t _run_bb_fma "abidance_run_bb_fma"(void* state, const double* x, double* upper,
                                                  double* middle, double* lower,
                                                  Py_ssize_t n) noexcept nogil:
    return _bb_loop(<BBState*>state, x, upper, middle, lower, n)


cdef Py_ssize_t _run_bb_base "abidance_run_bb"(void* state, const double* x, double* upper,
                                               double* middle, double* lower,
                                               Py_ssize_t n) noexcept nogil:
    return _bb_loop(<BBState*>state, x, upper, middle, lower, n)


cdef Py_ssize_t _run_bb(BBState* state, const double* x, double* upper, double* middle,
                        double* lower, Py_ssize_t n) noexcept nogil:
    if _HAS_FMA:
        return _run_bb_fma(state, x, upper, middle, lower, n)
    return _run_bb_base(state, x, upper, middle, lower, n)


def bbands(x, int64_t period=20, double nbdev_up=2.0, double nbdev_dn=2.0):
    """(upper, middle, lower) Bollinger bands (matches talib.BBANDS with matype=0)."""
    cdef BollingerBands ind = BollingerBands(period, nbdev_up, nbdev_dn)
    cdef const double[::1] xv = _f64(x)
    cdef Py_ssize_t bad, n = xv.shape[0]
    upper = np.empty(n, dtype=np.float64)
    middle = np.empty(n, dtype=np.float64)
    lower = np.empty(n, dtype=np.float64)
    cdef double[::1] u = upper, m = middle, lo = lower
    if n == 0:
        return upper, middle, lower
    with nogil:
        bad = _run_bb(&ind._st, &xv[0], &u[0], &m[0], &lo[0], n)
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
