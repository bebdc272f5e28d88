# Streaming technical indicators: O(1) per update, typed, one kernel for streaming and batch.
#
# Each indicator's state is a plain struct advanced by one inline step function in
# indicators.pyx. The class owns the struct: `update_c` commits one input and returns the
# primary value (NaN until ready); `peek_c` returns what update_c would return, without
# committing. The batch functions run the same step function on a local copy of a new
# instance's state and store it back, so streaming and batch cannot diverge; the local copy
# lets the C compiler keep the state in registers (state written through `self` round-trips
# memory every bar: SMA batch 8.9 -> 3.0 ns/bar).
#
# The `_c` methods do not validate: the caller has checked its inputs (finite, volume >= 0,
# high >= low, prices > 0 where a price is required). Classes are final, so calls inside
# this module are direct; other modules call through the vtable declared here.
cimport cython
from libc.stdint cimport int64_t

from abidance._core.ringbuf cimport Ring


# A compensated running sum: the exact sum is hi + lo up to the rounding of lo itself.
ctypedef struct CompSum:
    double hi
    double lo


# A plain running sum (one add per update), re-summed exactly every `resum_every` updates.
ctypedef struct SMAState:
    int64_t period
    int64_t count
    Ring window
    double sum
    int64_t resum_every     # max(period, 1024)
    int64_t until_resum     # updates left until the next exact re-sum
    double value


ctypedef struct EMAState:
    int64_t period
    int64_t count
    double k                # 2 / (period + 1)
    double keep             # 1 - k
    CompSum seed            # sum of the first `period` inputs
    double value


ctypedef struct WMAState:
    int64_t period
    int64_t count
    Ring window
    CompSum sum             # plain sum of the window
    CompSum wsum            # sum of weight * value, newest weight = period
    double divisor          # period * (period + 1) / 2
    double value


# Wilder smoothing: avg' = avg * keep + x * new_w, keep = (n-1)/n, new_w = 1/n.
ctypedef struct RSIState:
    int64_t period
    int64_t count
    double keep
    double new_w
    double prev
    double gain
    double loss
    double value


ctypedef struct ATRState:
    int64_t period
    int64_t count
    double keep
    double new_w
    double prev_close
    double tr_sum
    double value


# Rolling variance: plain running sums of y = fl(x - K) and y*y, K the window mean at the
# last re-sum, with running bounds on their rounding errors; the window is re-summed exactly
# (compensated) whenever the bound on M2's error could pass 1e-12 of M2 (see _std_slide).
ctypedef struct StdState:
    int64_t period
    int64_t count
    int64_t ddof
    double inv_n            # 1 / period: multiplies, keeping the divider free for sqrt
    double two_inv_n        # 2 / period
    double inv_nd           # 1 / (period - ddof)
    Ring window             # raw inputs
    double last             # the newest input (NaN when empty)
    double shift            # K
    double s1               # sum of y over the window
    double s2               # sum of y*y over the window
    double e1               # bound on |error of s1| / u, u = DBL_EPSILON / 2
    double e2               # bound on |error of s2| / u
    double m2               # s2 - s1*s1/n: sum of squared deviations from the mean
    int64_t run             # consecutive inputs equal to the newest one
    int64_t resyncs         # exact re-sums so far (diagnostic)
    double value


ctypedef struct BBState:
    StdState std
    double k_up
    double k_down
    double middle
    double upper
    double lower


ctypedef struct MACDState:
    int64_t fast
    int64_t slow
    int64_t count
    double k_fast
    double keep_fast
    double k_slow
    double keep_slow
    Ring fast_window        # warm-up only: the last `fast` inputs for the fast seed
    CompSum fast_sum
    CompSum slow_sum
    double fast_ema
    double slow_ema
    EMAState signal_ema
    double macd
    double signal
    double hist


# Rolling maximum by a monotonic deque of (value, input position) in power-of-two rings.
# A rolling minimum is the same deque over negated inputs (negation is exact).
ctypedef struct ExtremeState:
    int64_t period
    int64_t count
    bint is_min
    double* vals
    int64_t* pos
    int64_t mask
    int64_t front
    int64_t back            # one past the last element
    double value


ctypedef struct VWAPState:
    int64_t period
    int64_t count
    Ring pv
    Ring vol
    CompSum pv_sum
    CompSum vol_sum
    int64_t traded          # bars in the window with volume > 0
    double value


ctypedef struct SessionVWAPState:
    int64_t session_ns
    int64_t offset_ns
    int64_t count
    int64_t session_count   # bars in the current session
    int64_t session_start   # ns
    int64_t last_ts
    CompSum pv_sum
    CompSum vol_sum
    double value


ctypedef struct OBVState:
    int64_t count
    double prev_close
    CompSum obv
    double value


ctypedef struct StochFState:
    int64_t fastk_period
    int64_t count
    ExtremeState highest
    ExtremeState lowest
    SMAState d
    double raw_k
    double k
    double d_value


ctypedef struct StochState:
    StochFState fast        # its %D is this indicator's slow %K
    SMAState d
    double k
    double d_value


ctypedef struct ROCState:
    int64_t period
    int64_t count
    Ring window
    double value


ctypedef struct ZState:
    StdState std
    double value


@cython.final
cdef class SMA:
    cdef SMAState _st
    cdef double update_c(self, double x) noexcept nogil
    cdef double peek_c(self, double x) noexcept nogil
    cdef void reset_c(self) noexcept nogil


@cython.final
cdef class EMA:
    cdef EMAState _st
    cdef double update_c(self, double x) noexcept nogil
    cdef double peek_c(self, double x) noexcept nogil
    cdef void reset_c(self) noexcept nogil


@cython.final
cdef class WMA:
    cdef WMAState _st
    cdef double update_c(self, double x) noexcept nogil
    cdef double peek_c(self, double x) noexcept nogil
    cdef void reset_c(self) noexcept nogil


@cython.final
cdef class RSI:
    cdef RSIState _st
    cdef double update_c(self, double x) noexcept nogil
    cdef double peek_c(self, double x) noexcept nogil
    cdef void reset_c(self) noexcept nogil


@cython.final
cdef class ATR:
    cdef ATRState _st
    cdef double update_c(self, double high, double low, double close) noexcept nogil
    cdef double peek_c(self, double high, double low, double close) noexcept nogil
    cdef void reset_c(self) noexcept nogil


@cython.final
cdef class RollingStd:
    cdef StdState _st
    cdef double update_c(self, double x) noexcept nogil
    cdef double peek_c(self, double x) noexcept nogil
    cdef void reset_c(self) noexcept nogil


@cython.final
cdef class BollingerBands:
    cdef BBState _st
    cdef double update_c(self, double x) noexcept nogil
    cdef void reset_c(self) noexcept nogil


@cython.final
cdef class MACD:
    cdef MACDState _st
    cdef double update_c(self, double x) noexcept nogil
    cdef void reset_c(self) noexcept nogil


cdef class _RollingExtreme:
    cdef ExtremeState _st
    cdef str _name
    cdef double update_c(self, double x) noexcept nogil
    cdef double peek_c(self, double x) noexcept nogil
    cdef void reset_c(self) noexcept nogil


@cython.final
cdef class RollingMin(_RollingExtreme):
    pass


@cython.final
cdef class RollingMax(_RollingExtreme):
    pass


@cython.final
cdef class VWAP:
    cdef VWAPState _st
    cdef double update_c(self, double price, double volume) noexcept nogil
    cdef void reset_c(self) noexcept nogil


@cython.final
cdef class SessionVWAP:
    cdef SessionVWAPState _st
    cdef double update_c(self, int64_t ts, double price, double volume) noexcept nogil
    cdef void reset_c(self) noexcept nogil


@cython.final
cdef class OBV:
    cdef OBVState _st
    cdef double update_c(self, double close, double volume) noexcept nogil
    cdef void reset_c(self) noexcept nogil


@cython.final
cdef class StochasticFast:
    cdef StochFState _st
    cdef double update_c(self, double high, double low, double close) noexcept nogil
    cdef void reset_c(self) noexcept nogil


@cython.final
cdef class Stochastic:
    cdef StochState _st
    cdef double update_c(self, double high, double low, double close) noexcept nogil
    cdef void reset_c(self) noexcept nogil


@cython.final
cdef class ROC:
    cdef ROCState _st
    cdef double update_c(self, double x) noexcept nogil
    cdef double peek_c(self, double x) noexcept nogil
    cdef void reset_c(self) noexcept nogil


@cython.final
cdef class ZScore:
    cdef ZState _st
    cdef double update_c(self, double x) noexcept nogil
    cdef double peek_c(self, double x) noexcept nogil
    cdef void reset_c(self) noexcept nogil
