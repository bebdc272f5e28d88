"""Streaming technical indicators, O(1) per update, and batch functions on the same kernels.

Each class commits one input with `update(...)` (Python, validated) or `update_c(...)`
(C, unchecked) and returns its primary value, NaN until `ready`. The batch functions
(`sma(x, 14)`, ...) validate once and run the very same `update_c` over the array, so
streaming and batch cannot diverge. Seeding and warm-up follow TA-Lib exactly; see
docs/indicators.md for each indicator's first ready index.
"""

cimport cython
from libc.math cimport NAN, fabs, isfinite, sqrt
from libc.stdint cimport int64_t
from posix.time cimport CLOCK_MONOTONIC, clock_gettime, timespec
from cpython.mem cimport PyMem_Free, PyMem_Malloc

from abidance._core.ringbuf cimport RingBuffer

import numpy as np

# TA-Lib's RSI reports 0 when average gain + average loss is inside this band
# (TA_EPSILON in ta_utility.h, TA-Lib >= 0.6); kept so that RSI matches it exactly.
cdef double TA_EPSILON = 1e-14

DEF_SESSION_NS = 86_400_000_000_000


# ---------------------------------------------------------------- numeric kernels

cdef inline void csum_add(CompSum* s, double x) noexcept nogil:
    # TwoSum (Knuth): recovers the exact rounding error of hi + x into lo. As accurate as
    # Kahan's compensation, but the loop-carried chain through hi is a single add (Kahan's
    # is four), so a compensated rolling sum costs no more latency than a naive one.
    cdef double hi = s.hi
    cdef double t = hi + x
    cdef double z = t - hi
    s.lo += (hi - (t - z)) + (x - z)
    s.hi = t


cdef inline double csum(const CompSum* s) noexcept nogil:
    return s.hi + s.lo


cdef inline void csum_clear(CompSum* s) noexcept nogil:
    s.hi = 0.0
    s.lo = 0.0


cdef inline double _std_next(int64_t n_after, bint evicts, double x, double old,
                             double mean_old, CompSum* s, CompSum* m2) noexcept nogil:
    """Advance the window sum and sum of squared deviations by x; return the new mean.

    n_after is the window length after x; evicts says whether `old` leaves the window.
    """
    cdef double mean_new
    csum_add(s, x)
    if evicts:
        csum_add(s, -old)
        mean_new = csum(s) / n_after
        # Sliding Welford: replacing old by x changes M2 by (x-old)(x-mean'+old-mean).
        csum_add(m2, (x - old) * ((x - mean_new) + (old - mean_old)))
    else:
        mean_new = csum(s) / n_after
        csum_add(m2, (x - mean_old) * (x - mean_new))
    return mean_new


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


cdef inline double _wilder_next(double avg, double x, int64_t n) noexcept nogil:
    # TA-Lib's operation order (multiply, add, divide), so RSI/ATR match it bit for bit.
    avg *= <double>(n - 1)
    avg += x
    return avg / <double>n


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


cdef inline bint _bad_price(double x) noexcept nogil:
    return not (isfinite(x) and x > 0.0)


cdef inline bint _bad_volume(double v) noexcept nogil:
    return not (isfinite(v) and v >= 0.0)


cdef inline bint _bad_bar(double high, double low, double close) noexcept nogil:
    return _bad_price(high) or _bad_price(low) or _bad_price(close) or high < low


# ---------------------------------------------------------------- RollingStd

cdef class RollingStd:
    """Standard deviation of the last `period` values (population, or sample with ddof=1).

    Sliding Welford over a compensated window sum: no E[x^2] - E[x]^2 cancellation. A
    window of identical values reports exactly 0 and clears accumulated rounding.
    """

    def __cinit__(self, int64_t period, int64_t ddof=0):
        _check_period("RollingStd", "period", period, 1)
        if ddof != 0 and ddof != 1:
            raise ValueError(f"RollingStd: ddof must be 0 or 1, got {ddof}")
        if period - ddof < 1:
            raise ValueError(f"RollingStd: period must be >= 2 with ddof=1, got {period}")
        self.period = period
        self.ddof = ddof
        self._window = RingBuffer(period)
        self.reset_c()

    cdef void reset_c(self) noexcept nogil:
        self._window.clear_c()
        csum_clear(&self._sum)
        csum_clear(&self._m2)
        self._mean = 0.0
        self._run = 0
        self.count = 0
        self._value = NAN

    cdef double update_c(self, double x) noexcept nogil:
        cdef int64_t n = self.period
        cdef bint evicts = self.count == n
        cdef CompSum s = self._sum
        cdef CompSum m2 = self._m2
        cdef double mean
        if self._window.count > 0 and x == self._window.newest_c():
            self._run += 1
        else:
            self._run = 1
        cdef double old = self._window.push_c(x)
        if not evicts:
            self.count += 1
        mean = _std_next(self.count, evicts, x, old, self._mean, &s, &m2)
        if self._run >= n:
            # A flat window: exact zero, and the rounding M2 carried is dropped.
            csum_clear(&m2)
            mean = x
        self._sum = s
        self._m2 = m2
        self._mean = mean
        if self.count < n:
            return NAN
        self._value = sqrt(self._m2_value() / (n - self.ddof))
        return self._value

    cdef double _m2_value(self) noexcept nogil:
        cdef double v = csum(&self._m2)
        return v if v > 0.0 else 0.0

    cdef void peek_stats_c(self, double x, double* mean, double* pvar) noexcept nogil:
        cdef int64_t n = self.period
        cdef bint evicts = self.count == n
        cdef int64_t n_after = self.count if evicts else self.count + 1
        cdef CompSum s = self._sum
        cdef CompSum m2 = self._m2
        cdef double old = self._window.oldest_c() if evicts else NAN
        cdef double m2v
        mean[0] = _std_next(n_after, evicts, x, old, self._mean, &s, &m2)
        if self._window.count > 0 and x == self._window.newest_c() and self._run + 1 >= n:
            mean[0] = x
            pvar[0] = 0.0
            return
        m2v = csum(&m2)
        pvar[0] = (m2v if m2v > 0.0 else 0.0) / n_after

    cdef double peek_c(self, double x) noexcept nogil:
        cdef double mean, pvar
        cdef int64_t n = self.period
        if self.count + 1 < n:
            return NAN
        self.peek_stats_c(x, &mean, &pvar)
        return sqrt(pvar * n / (n - self.ddof))

    cdef double mean_c(self) noexcept nogil:
        return self._mean

    cdef double pvar_c(self) noexcept nogil:
        return self._m2_value() / self.period

    def update(self, double x):
        _check_finite("RollingStd.update", x)
        return self.update_c(x)

    def peek(self, double x):
        _check_finite("RollingStd.peek", x)
        return self.peek_c(x)

    def reset(self):
        self.reset_c()

    @property
    def value(self):
        return self._value

    @property
    def mean(self):
        return self._mean if self.count >= self.period else NAN

    @property
    def variance(self):
        return self._value * self._value

    @property
    def ready(self):
        return self.count >= self.period

    def __repr__(self):
        return f"RollingStd(period={self.period}, ddof={self.ddof}, count={self.count}, value={self._value!r})"


# ---------------------------------------------------------------- SMA

cdef class SMA:
    """Simple moving average over `period` values (TA-Lib SMA). First value at index period-1."""

    def __cinit__(self, int64_t period):
        _check_period("SMA", "period", period, 1)
        self.period = period
        self._window = RingBuffer(period)
        self.reset_c()

    cdef void reset_c(self) noexcept nogil:
        self._window.clear_c()
        csum_clear(&self._sum)
        self.count = 0
        self._value = NAN

    cdef double update_c(self, double x) noexcept nogil:
        cdef int64_t n = self.period
        cdef CompSum s = self._sum
        cdef double old = self._window.push_c(x)
        csum_add(&s, x)
        if self.count == n:
            csum_add(&s, -old)
        else:
            self.count += 1
        self._sum = s
        if self.count < n:
            return NAN
        self._value = csum(&s) / n
        return self._value

    cdef double peek_c(self, double x) noexcept nogil:
        cdef int64_t n = self.period
        cdef CompSum s = self._sum
        if self.count + 1 < n:
            return NAN
        csum_add(&s, x)
        if self.count == n:
            csum_add(&s, -self._window.oldest_c())
        return csum(&s) / n

    def update(self, double x):
        _check_finite("SMA.update", x)
        return self.update_c(x)

    def peek(self, double x):
        _check_finite("SMA.peek", x)
        return self.peek_c(x)

    def reset(self):
        self.reset_c()

    @property
    def value(self):
        return self._value

    @property
    def ready(self):
        return self.count >= self.period

    def __repr__(self):
        return f"SMA(period={self.period}, count={self.count}, value={self._value!r})"


# ---------------------------------------------------------------- EMA

cdef inline double _ema_next(int64_t n, double k, int64_t c, double x, double value,
                             CompSum* seed) noexcept nogil:
    """EMA after its c-th input x: NaN before n inputs, SMA seed at the n-th (TA-Lib)."""
    if c > n:
        return (x - value) * k + value
    csum_add(seed, x)
    if c < n:
        return NAN
    return csum(seed) / n


cdef class EMA:
    """Exponential moving average, k = 2/(period+1), seeded with the SMA of the first
    `period` values (TA-Lib EMA). First value at index period-1."""

    def __cinit__(self, int64_t period):
        _check_period("EMA", "period", period, 1)
        self.period = period
        self.k = 2.0 / (period + 1)
        self.reset_c()

    cdef void reset_c(self) noexcept nogil:
        csum_clear(&self._seed)
        self.count = 0
        self._value = NAN

    cdef double update_c(self, double x) noexcept nogil:
        self.count += 1
        cdef double v = _ema_next(self.period, self.k, self.count, x, self._value, &self._seed)
        if self.count >= self.period:
            self._value = v
        return v

    cdef double peek_c(self, double x) noexcept nogil:
        cdef CompSum seed = self._seed
        return _ema_next(self.period, self.k, self.count + 1, x, self._value, &seed)

    def update(self, double x):
        _check_finite("EMA.update", x)
        return self.update_c(x)

    def peek(self, double x):
        _check_finite("EMA.peek", x)
        return self.peek_c(x)

    def reset(self):
        self.reset_c()

    @property
    def value(self):
        return self._value

    @property
    def ready(self):
        return self.count >= self.period

    def __repr__(self):
        return f"EMA(period={self.period}, count={self.count}, value={self._value!r})"


# ---------------------------------------------------------------- WMA

cdef class WMA:
    """Linearly weighted moving average, newest weight `period`, oldest 1 (TA-Lib WMA).
    First value at index period-1."""

    def __cinit__(self, int64_t period):
        _check_period("WMA", "period", period, 1)
        self.period = period
        self._divisor = period * (period + 1) / 2.0
        self._window = RingBuffer(period)
        self.reset_c()

    cdef void reset_c(self) noexcept nogil:
        self._window.clear_c()
        csum_clear(&self._sum)
        csum_clear(&self._wsum)
        self.count = 0
        self._value = NAN

    cdef double update_c(self, double x) noexcept nogil:
        cdef int64_t n = self.period
        cdef CompSum s = self._sum
        cdef CompSum ws = self._wsum
        cdef double old = self._window.push_c(x)
        if self.count == n:
            # Every weight drops by one (the oldest's to zero) and x enters at weight n.
            csum_add(&ws, n * x)
            csum_add(&ws, -csum(&s))
            csum_add(&s, x)
            csum_add(&s, -old)
        else:
            self.count += 1
            csum_add(&s, x)
            csum_add(&ws, self.count * x)
        self._sum = s
        self._wsum = ws
        if self.count < n:
            return NAN
        self._value = csum(&ws) / self._divisor
        return self._value

    cdef double peek_c(self, double x) noexcept nogil:
        cdef int64_t n = self.period
        cdef CompSum ws = self._wsum
        if self.count + 1 < n:
            return NAN
        if self.count == n:
            csum_add(&ws, n * x)
            csum_add(&ws, -csum(&self._sum))
        else:
            csum_add(&ws, n * x)
        return csum(&ws) / self._divisor

    def update(self, double x):
        _check_finite("WMA.update", x)
        return self.update_c(x)

    def peek(self, double x):
        _check_finite("WMA.peek", x)
        return self.peek_c(x)

    def reset(self):
        self.reset_c()

    @property
    def value(self):
        return self._value

    @property
    def ready(self):
        return self.count >= self.period

    def __repr__(self):
        return f"WMA(period={self.period}, count={self.count}, value={self._value!r})"


# ---------------------------------------------------------------- RSI

cdef inline double _rsi_next(int64_t n, int64_t c, double x, double* prev,
                             double* gain, double* loss) noexcept nogil:
    """RSI after its c-th input x (TA-Lib RSI, Wilder smoothing, simple-average seed)."""
    if c == 1:
        prev[0] = x
        return NAN
    cdef double d = x - prev[0]
    prev[0] = x
    if c > n + 1:
        gain[0] = _wilder_next(gain[0], d if d > 0.0 else 0.0, n)
        loss[0] = _wilder_next(loss[0], -d if d < 0.0 else 0.0, n)
        return _rsi_of(gain[0], loss[0])
    if d < 0.0:
        loss[0] -= d
    else:
        gain[0] += d
    if c <= n:
        return NAN
    gain[0] /= <double>n
    loss[0] /= <double>n
    return _rsi_of(gain[0], loss[0])


cdef class RSI:
    """Relative strength index with Wilder smoothing (TA-Lib RSI). The first value, at index
    `period`, uses the simple averages of the first `period` gains and losses.

    Like TA-Lib, the value is 0 when average gain + average loss is below 1e-14 (flat input).
    """

    def __cinit__(self, int64_t period=14):
        _check_period("RSI", "period", period, 2)
        self.period = period
        self.reset_c()

    cdef void reset_c(self) noexcept nogil:
        self._prev = NAN
        self._gain = 0.0
        self._loss = 0.0
        self.count = 0
        self._value = NAN

    cdef double update_c(self, double x) noexcept nogil:
        self.count += 1
        cdef double v = _rsi_next(self.period, self.count, x, &self._prev, &self._gain, &self._loss)
        if self.count > self.period:
            self._value = v
        return v

    cdef double peek_c(self, double x) noexcept nogil:
        cdef double prev = self._prev, gain = self._gain, loss = self._loss
        return _rsi_next(self.period, self.count + 1, x, &prev, &gain, &loss)

    def update(self, double x):
        _check_finite("RSI.update", x)
        return self.update_c(x)

    def peek(self, double x):
        _check_finite("RSI.peek", x)
        return self.peek_c(x)

    def reset(self):
        self.reset_c()

    @property
    def value(self):
        return self._value

    @property
    def ready(self):
        return self.count > self.period

    def __repr__(self):
        return f"RSI(period={self.period}, count={self.count}, value={self._value!r})"


# ---------------------------------------------------------------- ATR

cdef inline double _atr_next(int64_t n, int64_t c, double high, double low, double close,
                             double* prev_close, double* tr_sum, double value) noexcept nogil:
    """ATR after its c-th bar (TA-Lib ATR): no true range for the first bar, then the mean
    of the first `period` true ranges, then Wilder smoothing."""
    if c == 1:
        prev_close[0] = close
        return NAN
    cdef double tr = _true_range(high, low, prev_close[0])
    prev_close[0] = close
    if c > n + 1:
        return _wilder_next(value, tr, n)
    tr_sum[0] += tr
    if c <= n:
        return NAN
    return tr_sum[0] / <double>n


cdef class ATR:
    """Average true range (TA-Lib ATR). First value at index `period`."""

    def __cinit__(self, int64_t period=14):
        _check_period("ATR", "period", period, 1)
        self.period = period
        self.reset_c()

    cdef void reset_c(self) noexcept nogil:
        self._prev_close = NAN
        self._tr_sum = 0.0
        self.count = 0
        self._value = NAN

    cdef double update_c(self, double high, double low, double close) noexcept nogil:
        self.count += 1
        cdef double v = _atr_next(self.period, self.count, high, low, close,
                                  &self._prev_close, &self._tr_sum, self._value)
        if self.count > self.period:
            self._value = v
        return v

    cdef double peek_c(self, double high, double low, double close) noexcept nogil:
        cdef double prev_close = self._prev_close, tr_sum = self._tr_sum
        return _atr_next(self.period, self.count + 1, high, low, close,
                         &prev_close, &tr_sum, self._value)

    def update(self, double high, double low, double close):
        _check_bar("ATR.update", high, low, close)
        return self.update_c(high, low, close)

    def peek(self, double high, double low, double close):
        _check_bar("ATR.peek", high, low, close)
        return self.peek_c(high, low, close)

    def reset(self):
        self.reset_c()

    @property
    def value(self):
        return self._value

    @property
    def ready(self):
        return self.count > self.period

    def __repr__(self):
        return f"ATR(period={self.period}, count={self.count}, value={self._value!r})"


# ---------------------------------------------------------------- Bollinger bands

cdef class BollingerBands:
    """SMA middle band +/- k times the population standard deviation (TA-Lib BBANDS with
    matype=SMA). First value at index period-1. `value` is the middle band."""

    def __cinit__(self, int64_t period=20, double k_up=2.0, double k_down=2.0):
        _check_period("BollingerBands", "period", period, 1)
        if not (isfinite(k_up) and isfinite(k_down)):
            raise ValueError(f"BollingerBands: multipliers must be finite, got {k_up!r}, {k_down!r}")
        self.k_up = k_up
        self.k_down = k_down
        self._std = RollingStd(period)
        self.reset_c()

    cdef void reset_c(self) noexcept nogil:
        self._std.reset_c()
        self._middle = NAN
        self._upper = NAN
        self._lower = NAN

    cdef double update_c(self, double x) noexcept nogil:
        cdef double sd = self._std.update_c(x)
        if self._std.count < self._std.period:
            return NAN
        cdef double mid = self._std.mean_c()
        self._middle = mid
        self._upper = mid + self.k_up * sd
        self._lower = mid - self.k_down * sd
        return mid

    def update(self, double x):
        _check_finite("BollingerBands.update", x)
        return self.update_c(x)

    def peek(self, double x):
        """(upper, middle, lower) if x were committed."""
        _check_finite("BollingerBands.peek", x)
        cdef double mean, pvar, sd
        if self._std.count + 1 < self._std.period:
            return (NAN, NAN, NAN)
        self._std.peek_stats_c(x, &mean, &pvar)
        sd = sqrt(pvar)
        return (mean + self.k_up * sd, mean, mean - self.k_down * sd)

    def reset(self):
        self.reset_c()

    @property
    def period(self):
        return self._std.period

    @property
    def count(self):
        return self._std.count

    @property
    def ready(self):
        return self._std.count >= self._std.period

    @property
    def value(self):
        return self._middle

    @property
    def middle(self):
        return self._middle

    @property
    def upper(self):
        return self._upper

    @property
    def lower(self):
        return self._lower

    def __repr__(self):
        return (f"BollingerBands(period={self.period}, count={self.count}, "
                f"upper={self._upper!r}, middle={self._middle!r}, lower={self._lower!r})")


# ---------------------------------------------------------------- MACD

cdef class MACD:
    """MACD line (fast EMA - slow EMA), signal line (EMA of the MACD line) and histogram,
    seeded like TA-Lib MACD: both EMAs start at index slow-1 from the SMA of their last
    `fast` / `slow` values; the signal EMA from the SMA of the first `signal` MACD values.
    All three outputs appear together at index slow+signal-2. `value` is the MACD line."""

    def __cinit__(self, int64_t fast=12, int64_t slow=26, int64_t signal=9):
        _check_period("MACD", "fast", fast, 1)
        _check_period("MACD", "signal", signal, 1)
        if slow <= fast:
            raise ValueError(f"MACD: slow ({slow}) must be greater than fast ({fast})")
        self.fast = fast
        self.slow = slow
        self._k_fast = 2.0 / (fast + 1)
        self._k_slow = 2.0 / (slow + 1)
        self._fast_seed_window = RingBuffer(fast)
        self._signal_ema = EMA(signal)
        self.reset_c()

    cdef void reset_c(self) noexcept nogil:
        self._fast_seed_window.clear_c()
        csum_clear(&self._fast_sum)
        csum_clear(&self._slow_sum)
        self._fast_ema = NAN
        self._slow_ema = NAN
        self._signal_ema.reset_c()
        self.count = 0
        self._macd = NAN
        self._signal = NAN
        self._hist = NAN

    cdef double update_c(self, double x) noexcept nogil:
        cdef double old, line, sig
        cdef int64_t c = self.count + 1
        self.count = c
        if c > self.slow:
            self._fast_ema = (x - self._fast_ema) * self._k_fast + self._fast_ema
            self._slow_ema = (x - self._slow_ema) * self._k_slow + self._slow_ema
        else:
            # Warm-up: the slow seed is the SMA of everything so far, the fast seed the
            # SMA of the last `fast` values at the same index (how TA-Lib aligns them).
            old = self._fast_seed_window.push_c(x)
            csum_add(&self._fast_sum, x)
            if c > self.fast:
                csum_add(&self._fast_sum, -old)
            csum_add(&self._slow_sum, x)
            if c < self.slow:
                return NAN
            self._fast_ema = csum(&self._fast_sum) / self.fast
            self._slow_ema = csum(&self._slow_sum) / self.slow
        line = self._fast_ema - self._slow_ema
        sig = self._signal_ema.update_c(line)
        if self._signal_ema.count < self._signal_ema.period:
            return NAN
        self._macd = line
        self._signal = sig
        self._hist = line - sig
        return line

    def update(self, double x):
        _check_finite("MACD.update", x)
        return self.update_c(x)

    def reset(self):
        self.reset_c()

    @property
    def signal_period(self):
        return self._signal_ema.period

    @property
    def ready(self):
        return self._signal_ema.count >= self._signal_ema.period

    @property
    def value(self):
        return self._macd

    @property
    def macd(self):
        return self._macd

    @property
    def signal(self):
        return self._signal

    @property
    def histogram(self):
        return self._hist

    def __repr__(self):
        return (f"MACD(fast={self.fast}, slow={self.slow}, signal={self.signal_period}, "
                f"count={self.count}, macd={self._macd!r}, signal={self._signal!r})")


# ---------------------------------------------------------------- rolling min / max

cdef int _deque_alloc(int64_t period, double** vals, int64_t** pos, int64_t* mask) except -1:
    # At most period+1 entries are live (x is appended before the expired front leaves).
    cdef int64_t size = 1
    while size < period + 1:
        size <<= 1
    vals[0] = <double*>PyMem_Malloc(size * sizeof(double))
    pos[0] = <int64_t*>PyMem_Malloc(size * sizeof(int64_t))
    if vals[0] == NULL or pos[0] == NULL:
        raise MemoryError(f"cannot allocate a rolling window of {period}")
    mask[0] = size - 1
    return 0


cdef class RollingMin:
    """Lowest of the last `period` values (TA-Lib MIN), O(1) amortised by a monotonic deque.
    First value at index period-1."""

    def __cinit__(self, int64_t period):
        _check_period("RollingMin", "period", period, 1)
        if period > (1LL << 40):
            raise ValueError(f"RollingMin: period too large: {period}")
        self.period = period
        _deque_alloc(period, &self._vals, &self._pos, &self._mask)
        self.reset_c()

    def __dealloc__(self):
        PyMem_Free(self._vals)
        PyMem_Free(self._pos)

    cdef void reset_c(self) noexcept nogil:
        self._front = 0
        self._back = 0
        self.count = 0
        self._value = NAN

    cdef double update_c(self, double x) noexcept nogil:
        cdef double* vals = self._vals
        cdef int64_t* pos = self._pos
        cdef int64_t mask = self._mask
        cdef int64_t front = self._front
        cdef int64_t back = self._back
        cdef int64_t t = self.count
        # An older value >= x can never be the minimum again while x is in the window.
        while back != front and vals[(back - 1) & mask] >= x:
            back -= 1
        vals[back & mask] = x
        pos[back & mask] = t
        back += 1
        if pos[front & mask] <= t - self.period:
            front += 1
        self._front = front
        self._back = back
        self.count = t + 1
        if t + 1 < self.period:
            return NAN
        self._value = vals[front & mask]
        return self._value

    cdef double peek_c(self, double x) noexcept nogil:
        cdef int64_t mask = self._mask
        cdef int64_t front = self._front
        cdef int64_t t = self.count
        if t + 1 < self.period:
            return NAN
        if front != self._back and self._pos[front & mask] <= t - self.period:
            front += 1
        if front != self._back and self._vals[front & mask] < x:
            return self._vals[front & mask]
        return x

    def update(self, double x):
        _check_finite("RollingMin.update", x)
        return self.update_c(x)

    def peek(self, double x):
        _check_finite("RollingMin.peek", x)
        return self.peek_c(x)

    def reset(self):
        self.reset_c()

    @property
    def value(self):
        return self._value

    @property
    def ready(self):
        return self.count >= self.period

    def __repr__(self):
        return f"RollingMin(period={self.period}, count={self.count}, value={self._value!r})"


cdef class RollingMax:
    """Highest of the last `period` values (TA-Lib MAX), O(1) amortised by a monotonic deque.
    First value at index period-1."""

    def __cinit__(self, int64_t period):
        _check_period("RollingMax", "period", period, 1)
        if period > (1LL << 40):
            raise ValueError(f"RollingMax: period too large: {period}")
        self.period = period
        _deque_alloc(period, &self._vals, &self._pos, &self._mask)
        self.reset_c()

    def __dealloc__(self):
        PyMem_Free(self._vals)
        PyMem_Free(self._pos)

    cdef void reset_c(self) noexcept nogil:
        self._front = 0
        self._back = 0
        self.count = 0
        self._value = NAN

    cdef double update_c(self, double x) noexcept nogil:
        cdef double* vals = self._vals
        cdef int64_t* pos = self._pos
        cdef int64_t mask = self._mask
        cdef int64_t front = self._front
        cdef int64_t back = self._back
        cdef int64_t t = self.count
        while back != front and vals[(back - 1) & mask] <= x:
            back -= 1
        vals[back & mask] = x
        pos[back & mask] = t
        back += 1
        if pos[front & mask] <= t - self.period:
            front += 1
        self._front = front
        self._back = back
        self.count = t + 1
        if t + 1 < self.period:
            return NAN
        self._value = vals[front & mask]
        return self._value

    cdef double peek_c(self, double x) noexcept nogil:
        cdef int64_t mask = self._mask
        cdef int64_t front = self._front
        cdef int64_t t = self.count
        if t + 1 < self.period:
            return NAN
        if front != self._back and self._pos[front & mask] <= t - self.period:
            front += 1
        if front != self._back and self._vals[front & mask] > x:
            return self._vals[front & mask]
        return x

    def update(self, double x):
        _check_finite("RollingMax.update", x)
        return self.update_c(x)

    def peek(self, double x):
        _check_finite("RollingMax.peek", x)
        return self.peek_c(x)

    def reset(self):
        self.reset_c()

    @property
    def value(self):
        return self._value

    @property
    def ready(self):
        return self.count >= self.period

    def __repr__(self):
        return f"RollingMax(period={self.period}, count={self.count}, value={self._value!r})"


# ---------------------------------------------------------------- VWAP

cdef class VWAP:
    """Volume-weighted average price over the last `period` bars: sum(price*volume) /
    sum(volume). First value at index period-1; NaN while the window holds no volume."""

    def __cinit__(self, int64_t period):
        _check_period("VWAP", "period", period, 1)
        self.period = period
        self._pv = RingBuffer(period)
        self._vol = RingBuffer(period)
        self.reset_c()

    cdef void reset_c(self) noexcept nogil:
        self._pv.clear_c()
        self._vol.clear_c()
        csum_clear(&self._pv_sum)
        csum_clear(&self._vol_sum)
        self._traded = 0
        self.count = 0
        self._value = NAN

    cdef double update_c(self, double price, double volume) noexcept nogil:
        cdef double pv = price * volume
        cdef CompSum pvs = self._pv_sum
        cdef CompSum vs = self._vol_sum
        cdef double old_pv = self._pv.push_c(pv)
        cdef double old_v = self._vol.push_c(volume)
        csum_add(&pvs, pv)
        csum_add(&vs, volume)
        self._traded += volume > 0.0
        if self.count == self.period:
            csum_add(&pvs, -old_pv)
            csum_add(&vs, -old_v)
            self._traded -= old_v > 0.0
        else:
            self.count += 1
        self._pv_sum = pvs
        self._vol_sum = vs
        if self.count < self.period:
            return NAN
        # Counting traded bars, not testing the sum, keeps an all-zero window exactly NaN
        # (a compensated sum of volumes that left the window may be 1e-30, not 0).
        self._value = csum(&pvs) / csum(&vs) if self._traded > 0 else NAN
        return self._value

    def update(self, double price, double volume):
        _check_price("VWAP.update", "price", price)
        _check_volume("VWAP.update", volume)
        return self.update_c(price, volume)

    def reset(self):
        self.reset_c()

    @property
    def value(self):
        return self._value

    @property
    def ready(self):
        return self.count >= self.period

    def __repr__(self):
        return f"VWAP(period={self.period}, count={self.count}, value={self._value!r})"


cdef class SessionVWAP:
    """VWAP since the start of the current session, reset when a bar's timestamp (int64 ns)
    falls in a new session. Sessions are [offset_ns + k*session_ns, offset_ns + (k+1)*session_ns):
    the default is the UTC day. NaN until the session has traded volume."""

    def __cinit__(self, int64_t session_ns=DEF_SESSION_NS, int64_t offset_ns=0):
        if session_ns <= 0:
            raise ValueError(f"SessionVWAP: session_ns must be > 0, got {session_ns}")
        self.session_ns = session_ns
        self.offset_ns = offset_ns % session_ns
        self.reset_c()

    cdef void reset_c(self) noexcept nogil:
        csum_clear(&self._pv_sum)
        csum_clear(&self._vol_sum)
        self.count = 0
        self.session_count = 0
        self.session_start = 0
        self._last_ts = 0
        self._value = NAN

    cdef int64_t session_of_c(self, int64_t ts) noexcept nogil:
        cdef int64_t d = ts - self.offset_ns
        cdef int64_t q = d / self.session_ns
        if d < 0 and q * self.session_ns != d:
            q -= 1          # floor, not C's truncation, for times before the offset
        return q * self.session_ns + self.offset_ns

    cdef double update_c(self, int64_t ts, double price, double volume) noexcept nogil:
        cdef int64_t start = self.session_of_c(ts)
        if self.count == 0 or start != self.session_start:
            csum_clear(&self._pv_sum)
            csum_clear(&self._vol_sum)
            self.session_start = start
            self.session_count = 0
        self.count += 1
        self.session_count += 1
        self._last_ts = ts
        csum_add(&self._pv_sum, price * volume)
        csum_add(&self._vol_sum, volume)
        cdef double vs = csum(&self._vol_sum)
        # Volumes only accumulate within a session, so the sum is exactly 0 until one trades.
        self._value = csum(&self._pv_sum) / vs if vs > 0.0 else NAN
        return self._value

    def update(self, int64_t ts, double price, double volume):
        _check_price("SessionVWAP.update", "price", price)
        _check_volume("SessionVWAP.update", volume)
        if self.count > 0 and ts < self._last_ts:
            raise ValueError(f"SessionVWAP.update: timestamp {ts} is before the previous {self._last_ts}")
        return self.update_c(ts, price, volume)

    def session_of(self, int64_t ts):
        """Start (ns) of the session that contains ts."""
        return self.session_of_c(ts)

    def reset(self):
        self.reset_c()

    @property
    def value(self):
        return self._value

    @property
    def ready(self):
        return isfinite(self._value)

    def __repr__(self):
        return (f"SessionVWAP(session_ns={self.session_ns}, offset_ns={self.offset_ns}, "
                f"count={self.count}, value={self._value!r})")


# ---------------------------------------------------------------- OBV

cdef class OBV:
    """On-balance volume (TA-Lib OBV): starts at the first bar's volume, then adds the
    volume on an up close and subtracts it on a down close. Ready from the first bar."""

    def __cinit__(self):
        self.reset_c()

    cdef void reset_c(self) noexcept nogil:
        self._prev_close = NAN
        csum_clear(&self._obv)
        self.count = 0
        self._value = NAN

    cdef double update_c(self, double close, double volume) noexcept nogil:
        if self.count == 0:
            csum_add(&self._obv, volume)
        elif close > self._prev_close:
            csum_add(&self._obv, volume)
        elif close < self._prev_close:
            csum_add(&self._obv, -volume)
        self._prev_close = close
        self.count += 1
        self._value = csum(&self._obv)
        return self._value

    def update(self, double close, double volume):
        _check_price("OBV.update", "close", close)
        _check_volume("OBV.update", volume)
        return self.update_c(close, volume)

    def reset(self):
        self.reset_c()

    @property
    def value(self):
        return self._value

    @property
    def ready(self):
        return self.count >= 1

    def __repr__(self):
        return f"OBV(count={self.count}, value={self._value!r})"


# ---------------------------------------------------------------- Stochastic

cdef class StochasticFast:
    """Fast stochastic (TA-Lib STOCHF): %K = 100 (close - lowest low) / (highest high -
    lowest low) over `fastk_period` bars (0 when the range is 0), %D = SMA(%K, fastd_period).
    Both appear at index fastk_period + fastd_period - 2. `value` is %K."""

    def __cinit__(self, int64_t fastk_period=5, int64_t fastd_period=3):
        _check_period("StochasticFast", "fastk_period", fastk_period, 1)
        _check_period("StochasticFast", "fastd_period", fastd_period, 1)
        self.fastk_period = fastk_period
        self.fastd_period = fastd_period
        self._highest = RollingMax(fastk_period)
        self._lowest = RollingMin(fastk_period)
        self._d = SMA(fastd_period)
        self.reset_c()

    cdef void reset_c(self) noexcept nogil:
        self._highest.reset_c()
        self._lowest.reset_c()
        self._d.reset_c()
        self.count = 0
        self._raw_k = NAN
        self._k = NAN
        self._dv = NAN

    cdef double update_c(self, double high, double low, double close) noexcept nogil:
        cdef double hh = self._highest.update_c(high)
        cdef double ll = self._lowest.update_c(low)
        cdef double diff, raw, d
        self.count += 1
        if self.count < self.fastk_period:
            return NAN
        # TA-Lib divides by range/100 rather than multiplying by 100: same rounding.
        diff = (hh - ll) / 100.0
        raw = (close - ll) / diff if diff != 0.0 else 0.0
        self._raw_k = raw
        d = self._d.update_c(raw)
        if self._d.count < self.fastd_period:
            return NAN
        self._k = raw
        self._dv = d
        return raw

    def update(self, double high, double low, double close):
        _check_bar("StochasticFast.update", high, low, close)
        return self.update_c(high, low, close)

    def reset(self):
        self.reset_c()

    @property
    def ready(self):
        return self._d.count >= self.fastd_period

    @property
    def value(self):
        return self._k

    @property
    def k(self):
        return self._k

    @property
    def d(self):
        return self._dv

    def __repr__(self):
        return (f"StochasticFast(fastk_period={self.fastk_period}, fastd_period={self.fastd_period}, "
                f"count={self.count}, k={self._k!r}, d={self._dv!r})")


cdef class Stochastic:
    """Slow stochastic (TA-Lib STOCH with SMA smoothing): slow %K = SMA(fast %K, slowk_period),
    slow %D = SMA(slow %K, slowd_period). Both appear at index
    fastk_period + slowk_period + slowd_period - 3. `value` is slow %K."""

    def __cinit__(self, int64_t fastk_period=5, int64_t slowk_period=3, int64_t slowd_period=3):
        _check_period("Stochastic", "slowd_period", slowd_period, 1)
        self.slowd_period = slowd_period
        self._fast = StochasticFast(fastk_period, slowk_period)
        self._d = SMA(slowd_period)
        self.reset_c()

    cdef void reset_c(self) noexcept nogil:
        self._fast.reset_c()
        self._d.reset_c()
        self._k = NAN
        self._dv = NAN

    cdef double update_c(self, double high, double low, double close) noexcept nogil:
        cdef double slow_k, d
        self._fast.update_c(high, low, close)
        if self._fast._d.count < self._fast.fastd_period:
            return NAN
        slow_k = self._fast._dv
        d = self._d.update_c(slow_k)
        if self._d.count < self.slowd_period:
            return NAN
        self._k = slow_k
        self._dv = d
        return slow_k

    def update(self, double high, double low, double close):
        _check_bar("Stochastic.update", high, low, close)
        return self.update_c(high, low, close)

    def reset(self):
        self.reset_c()

    @property
    def fastk_period(self):
        return self._fast.fastk_period

    @property
    def slowk_period(self):
        return self._fast.fastd_period

    @property
    def count(self):
        return self._fast.count

    @property
    def ready(self):
        return self._d.count >= self.slowd_period

    @property
    def value(self):
        return self._k

    @property
    def k(self):
        return self._k

    @property
    def d(self):
        return self._dv

    def __repr__(self):
        return (f"Stochastic(fastk_period={self.fastk_period}, slowk_period={self.slowk_period}, "
                f"slowd_period={self.slowd_period}, count={self.count}, k={self._k!r}, d={self._dv!r})")


# ---------------------------------------------------------------- ROC

cdef class ROC:
    """Rate of change in percent, 100 * (x / x[t-period] - 1) (TA-Lib ROC). First value at
    index `period`. Inputs are prices (> 0)."""

    def __cinit__(self, int64_t period=10):
        _check_period("ROC", "period", period, 1)
        self.period = period
        self._window = RingBuffer(period)
        self.reset_c()

    cdef void reset_c(self) noexcept nogil:
        self._window.clear_c()
        self.count = 0
        self._value = NAN

    cdef double update_c(self, double x) noexcept nogil:
        cdef double then = self._window.push_c(x)
        self.count += 1
        if self.count <= self.period:
            return NAN
        # TA-Lib's form ((x / then) - 1) * 100, for bitwise parity.
        self._value = ((x / then) - 1.0) * 100.0
        return self._value

    cdef double peek_c(self, double x) noexcept nogil:
        if self.count < self.period:
            return NAN
        return ((x / self._window.oldest_c()) - 1.0) * 100.0

    def update(self, double x):
        _check_price("ROC.update", "value", x)
        return self.update_c(x)

    def peek(self, double x):
        _check_price("ROC.peek", "value", x)
        return self.peek_c(x)

    def reset(self):
        self.reset_c()

    @property
    def value(self):
        return self._value

    @property
    def ready(self):
        return self.count > self.period

    def __repr__(self):
        return f"ROC(period={self.period}, count={self.count}, value={self._value!r})"


# ---------------------------------------------------------------- ZScore

cdef class ZScore:
    """(x - mean) / population std of the last `period` values, x included. 0 when the
    window is flat. First value at index period-1."""

    def __cinit__(self, int64_t period):
        _check_period("ZScore", "period", period, 1)
        self._std = RollingStd(period)
        self.reset_c()

    cdef void reset_c(self) noexcept nogil:
        self._std.reset_c()
        self._value = NAN

    cdef double update_c(self, double x) noexcept nogil:
        cdef double sd = self._std.update_c(x)
        if self._std.count < self._std.period:
            return NAN
        self._value = (x - self._std.mean_c()) / sd if sd > 0.0 else 0.0
        return self._value

    cdef double peek_c(self, double x) noexcept nogil:
        cdef double mean, pvar
        if self._std.count + 1 < self._std.period:
            return NAN
        self._std.peek_stats_c(x, &mean, &pvar)
        return (x - mean) / sqrt(pvar) if pvar > 0.0 else 0.0

    def update(self, double x):
        _check_finite("ZScore.update", x)
        return self.update_c(x)

    def peek(self, double x):
        _check_finite("ZScore.peek", x)
        return self.peek_c(x)

    def reset(self):
        self.reset_c()

    @property
    def period(self):
        return self._std.period

    @property
    def count(self):
        return self._std.count

    @property
    def value(self):
        return self._value

    @property
    def ready(self):
        return self._std.count >= self._std.period

    def __repr__(self):
        return f"ZScore(period={self.period}, count={self.count}, value={self._value!r})"


# ---------------------------------------------------------------- batch functions

ctypedef fused OneInput:
    SMA
    EMA
    WMA
    RSI
    RollingStd
    RollingMin
    RollingMax
    ZScore
    ROC

ctypedef fused StochInput:
    StochasticFast
    Stochastic


cdef Py_ssize_t _run_one(OneInput ind, const double[::1] x, double[::1] out,
                         bint positive) noexcept nogil:
    """Run ind over x into out; return the index of the first invalid input, or -1."""
    cdef Py_ssize_t i
    cdef double v
    for i in range(x.shape[0]):
        v = x[i]
        if not isfinite(v) or (positive and v <= 0.0):
            return i
        out[i] = ind.update_c(v)
    return -1


cdef Py_ssize_t _run_atr(ATR ind, const double[::1] high, const double[::1] low,
                          const double[::1] close, double[::1] out) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(close.shape[0]):
        if _bad_bar(high[i], low[i], close[i]):
            return i
        out[i] = ind.update_c(high[i], low[i], close[i])
    return -1


cdef object _f64(object x):
    return np.ascontiguousarray(x, dtype=np.float64)


cdef int _same_length(str who, object first, object second) except -1:
    if len(first) != len(second):
        raise ValueError(f"{who}: inputs differ in length ({len(first)} vs {len(second)})")
    return 0


cdef int _raise_bad_value(str who, Py_ssize_t i, double v, bint positive) except -1:
    what = "a finite value > 0" if positive else "a finite value"
    raise ValueError(f"{who}: value at index {i} must be {what}, got {v!r}")


cdef int _raise_bad_bar(str who, Py_ssize_t i, double h, double l, double c) except -1:
    raise ValueError(f"{who}: invalid bar at index {i}: high={h!r} low={l!r} close={c!r} "
                     "(prices must be finite and > 0, high >= low)")


cdef object _single(str who, OneInput ind, object x, bint positive=False):
    cdef const double[::1] xv = _f64(x)
    out = np.empty(xv.shape[0], dtype=np.float64)
    cdef double[::1] o = out
    cdef Py_ssize_t bad
    with nogil:
        bad = _run_one(ind, xv, o, positive)
    if bad >= 0:
        _raise_bad_value(who, bad, xv[bad], positive)
    return out


cdef object _atr_batch(str who, ATR ind, object high, object low, object close):
    _same_length(who, high, close)
    _same_length(who, low, close)
    cdef const double[::1] h = _f64(high)
    cdef const double[::1] l = _f64(low)
    cdef const double[::1] c = _f64(close)
    out = np.empty(c.shape[0], dtype=np.float64)
    cdef double[::1] o = out
    cdef Py_ssize_t bad
    with nogil:
        bad = _run_atr(ind, h, l, c, o)
    if bad >= 0:
        _raise_bad_bar(who, bad, h[bad], l[bad], c[bad])
    return out


cdef object _stoch_batch(str who, StochInput ind, object high, object low, object close):
    # %K comes from the shared bar loop; %D is read from the same instance as it goes.
    _same_length(who, high, close)
    _same_length(who, low, close)
    cdef const double[::1] h = _f64(high)
    cdef const double[::1] l = _f64(low)
    cdef const double[::1] c = _f64(close)
    cdef Py_ssize_t i, bad = -1, n = c.shape[0]
    k = np.empty(n, dtype=np.float64)
    d = np.empty(n, dtype=np.float64)
    cdef double[::1] ko = k, do = d
    with nogil:
        for i in range(n):
            if _bad_bar(h[i], l[i], c[i]):
                bad = i
                break
            ko[i] = ind.update_c(h[i], l[i], c[i])
            do[i] = ind._dv     # NaN until ready, like %K
    if bad >= 0:
        _raise_bad_bar(who, bad, h[bad], l[bad], c[bad])
    return k, d


def sma(x, int64_t period):
    """SMA of x, NaN during warm-up (matches talib.SMA)."""
    return _single("sma", SMA(period), x)


def ema(x, int64_t period):
    """EMA of x seeded with the SMA of the first `period` values (matches talib.EMA)."""
    return _single("ema", EMA(period), x)


def wma(x, int64_t period):
    """Linearly weighted moving average (matches talib.WMA)."""
    return _single("wma", WMA(period), x)


def rsi(x, int64_t period=14):
    """Wilder RSI (matches talib.RSI)."""
    return _single("rsi", RSI(period), x)


def rolling_std(x, int64_t period, int64_t ddof=0):
    """Rolling standard deviation (ddof=0 matches talib.STDDEV with nbdev=1)."""
    return _single("rolling_std", RollingStd(period, ddof), x)


def rolling_min(x, int64_t period):
    """Rolling minimum (matches talib.MIN)."""
    return _single("rolling_min", RollingMin(period), x)


def rolling_max(x, int64_t period):
    """Rolling maximum (matches talib.MAX)."""
    return _single("rolling_max", RollingMax(period), x)


def zscore(x, int64_t period):
    """(x - rolling mean) / rolling population std, 0 on a flat window."""
    return _single("zscore", ZScore(period), x)


def roc(x, int64_t period=10):
    """Rate of change in percent (matches talib.ROC); x must be > 0."""
    return _single("roc", ROC(period), x, True)


def atr(high, low, close, int64_t period=14):
    """Average true range (matches talib.ATR)."""
    return _atr_batch("atr", ATR(period), high, low, close)


def bbands(x, int64_t period=20, double nbdev_up=2.0, double nbdev_dn=2.0):
    """(upper, middle, lower) Bollinger bands (matches talib.BBANDS with matype=0)."""
    cdef BollingerBands ind = BollingerBands(period, nbdev_up, nbdev_dn)
    cdef const double[::1] xv = _f64(x)
    cdef Py_ssize_t i, bad = -1, n = xv.shape[0]
    upper = np.empty(n, dtype=np.float64)
    middle = np.empty(n, dtype=np.float64)
    lower = np.empty(n, dtype=np.float64)
    cdef double[::1] u = upper, m = middle, lo = lower
    with nogil:
        for i in range(n):
            if not isfinite(xv[i]):
                bad = i
                break
            m[i] = ind.update_c(xv[i])
            u[i] = ind._upper       # the bands stay NaN until ready, like the middle
            lo[i] = ind._lower
    if bad >= 0:
        _raise_bad_value("bbands", bad, xv[bad], False)
    return upper, middle, lower


def macd(x, int64_t fast=12, int64_t slow=26, int64_t signal=9):
    """(macd, signal, histogram) (matches talib.MACD)."""
    cdef MACD ind = MACD(fast, slow, signal)
    cdef const double[::1] xv = _f64(x)
    cdef Py_ssize_t i, bad = -1, n = xv.shape[0]
    line = np.empty(n, dtype=np.float64)
    sig = np.empty(n, dtype=np.float64)
    hist = np.empty(n, dtype=np.float64)
    cdef double[::1] a = line, b = sig, h = hist
    with nogil:
        for i in range(n):
            if not isfinite(xv[i]):
                bad = i
                break
            a[i] = ind.update_c(xv[i])
            b[i] = ind._signal      # NaN until ready, like the MACD line
            h[i] = ind._hist
    if bad >= 0:
        _raise_bad_value("macd", bad, xv[bad], False)
    return line, sig, hist


def stochf(high, low, close, int64_t fastk_period=5, int64_t fastd_period=3):
    """(fast %K, fast %D) (matches talib.STOCHF with fastd_matype=0)."""
    return _stoch_batch("stochf", StochasticFast(fastk_period, fastd_period), high, low, close)


def stoch(high, low, close, int64_t fastk_period=5, int64_t slowk_period=3, int64_t slowd_period=3):
    """(slow %K, slow %D) (matches talib.STOCH with both matypes 0)."""
    return _stoch_batch("stoch", Stochastic(fastk_period, slowk_period, slowd_period), high, low, close)


def vwap(price, volume, int64_t period):
    """Rolling VWAP over `period` bars; NaN while the window holds no volume."""
    _same_length("vwap", price, volume)
    cdef VWAP ind = VWAP(period)
    cdef const double[::1] p = _f64(price)
    cdef const double[::1] v = _f64(volume)
    cdef Py_ssize_t i, bad = -1, n = p.shape[0]
    out = np.empty(n, dtype=np.float64)
    cdef double[::1] o = out
    with nogil:
        for i in range(n):
            if _bad_price(p[i]) or _bad_volume(v[i]):
                bad = i
                break
            o[i] = ind.update_c(p[i], v[i])
    if bad >= 0:
        raise ValueError(f"vwap: invalid input at index {bad}: price={p[bad]!r} volume={v[bad]!r} "
                         "(price must be finite and > 0, volume finite and >= 0)")
    return out


def session_vwap(ts, price, volume, int64_t session_ns=DEF_SESSION_NS, int64_t offset_ns=0):
    """VWAP since the start of each session (ts in int64 ns, non-decreasing)."""
    _same_length("session_vwap", ts, price)
    _same_length("session_vwap", volume, price)
    cdef SessionVWAP ind = SessionVWAP(session_ns, offset_ns)
    cdef const int64_t[::1] t = np.ascontiguousarray(ts, dtype=np.int64)
    cdef const double[::1] p = _f64(price)
    cdef const double[::1] v = _f64(volume)
    cdef Py_ssize_t i, bad = -1, n = p.shape[0]
    out = np.empty(n, dtype=np.float64)
    cdef double[::1] o = out
    with nogil:
        for i in range(n):
            if _bad_price(p[i]) or _bad_volume(v[i]) or (i > 0 and t[i] < t[i - 1]):
                bad = i
                break
            o[i] = ind.update_c(t[i], p[i], v[i])
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
    cdef Py_ssize_t i, bad = -1, n = c.shape[0]
    out = np.empty(n, dtype=np.float64)
    cdef double[::1] o = out
    with nogil:
        for i in range(n):
            if _bad_price(c[i]) or _bad_volume(v[i]):
                bad = i
                break
            o[i] = ind.update_c(c[i], v[i])
    if bad >= 0:
        raise ValueError(f"obv: invalid input at index {bad}: close={c[bad]!r} volume={v[bad]!r} "
                         "(close must be finite and > 0, volume finite and >= 0)")
    return out
