# Streaming technical indicators: O(1) per update, typed, one kernel for streaming
# and batch. `update_c` commits one input and returns the primary value (NaN until
# ready); `peek_c` returns what update_c would return, without committing. The `_c`
# methods do not validate: the caller has checked its inputs (finite, volume >= 0,
# high >= low, prices > 0 where a price is required).
#
# Classes are final: inside this module the calls are direct and inlinable; from other
# modules they go through the vtable declared here.
cimport cython
from libc.stdint cimport int64_t

from abidance._core.ringbuf cimport RingBuffer


# A compensated running sum: the exact sum is hi + lo up to the rounding of lo itself.
ctypedef struct CompSum:
    double hi
    double lo


# Rolling variance of the last `period` values (sliding Welford). Also the engine of
# BollingerBands and ZScore.
@cython.final
cdef class RollingStd:
    cdef readonly int64_t period
    cdef readonly int64_t count
    cdef readonly int64_t ddof
    cdef RingBuffer _window
    cdef CompSum _sum               # mean = sum / n, never drifts
    cdef CompSum _m2                # sum of squared deviations from the mean
    cdef int64_t _run               # consecutive inputs equal to the newest one
    cdef double _mean
    cdef double _value

    cdef double update_c(self, double x) noexcept nogil
    cdef double peek_c(self, double x) noexcept nogil
    cdef void reset_c(self) noexcept nogil
    cdef double mean_c(self) noexcept nogil
    cdef double pvar_c(self) noexcept nogil   # population variance of the window
    cdef void peek_stats_c(self, double x, double* mean, double* pvar) noexcept nogil
    cdef double _m2_value(self) noexcept nogil


@cython.final
cdef class SMA:
    cdef readonly int64_t period
    cdef readonly int64_t count
    cdef RingBuffer _window
    cdef CompSum _sum
    cdef double _value

    cdef double update_c(self, double x) noexcept nogil
    cdef double peek_c(self, double x) noexcept nogil
    cdef void reset_c(self) noexcept nogil


@cython.final
cdef class EMA:
    cdef readonly int64_t period
    cdef readonly int64_t count
    cdef readonly double k
    cdef CompSum _seed
    cdef double _value

    cdef double update_c(self, double x) noexcept nogil
    cdef double peek_c(self, double x) noexcept nogil
    cdef void reset_c(self) noexcept nogil


@cython.final
cdef class WMA:
    cdef readonly int64_t period
    cdef readonly int64_t count
    cdef RingBuffer _window
    cdef CompSum _sum               # plain sum of the window
    cdef CompSum _wsum              # sum of weight * value, newest weight = period
    cdef double _divisor
    cdef double _value

    cdef double update_c(self, double x) noexcept nogil
    cdef double peek_c(self, double x) noexcept nogil
    cdef void reset_c(self) noexcept nogil


@cython.final
cdef class RSI:
    cdef readonly int64_t period
    cdef readonly int64_t count
    cdef double _prev
    cdef double _gain
    cdef double _loss
    cdef double _value

    cdef double update_c(self, double x) noexcept nogil
    cdef double peek_c(self, double x) noexcept nogil
    cdef void reset_c(self) noexcept nogil


@cython.final
cdef class ATR:
    cdef readonly int64_t period
    cdef readonly int64_t count
    cdef double _prev_close
    cdef double _tr_sum
    cdef double _value

    cdef double update_c(self, double high, double low, double close) noexcept nogil
    cdef double peek_c(self, double high, double low, double close) noexcept nogil
    cdef void reset_c(self) noexcept nogil


@cython.final
cdef class BollingerBands:
    cdef readonly double k_up
    cdef readonly double k_down
    cdef RollingStd _std
    cdef double _middle
    cdef double _upper
    cdef double _lower

    cdef double update_c(self, double x) noexcept nogil
    cdef void reset_c(self) noexcept nogil


@cython.final
cdef class MACD:
    cdef readonly int64_t fast
    cdef readonly int64_t slow
    cdef readonly int64_t count
    cdef double _k_fast
    cdef double _k_slow
    cdef RingBuffer _fast_seed_window
    cdef CompSum _fast_sum
    cdef CompSum _slow_sum
    cdef double _fast_ema
    cdef double _slow_ema
    cdef EMA _signal_ema
    cdef double _macd
    cdef double _signal
    cdef double _hist

    cdef double update_c(self, double x) noexcept nogil
    cdef void reset_c(self) noexcept nogil


# Monotonic deque: rolling extreme in O(1) amortised. Values and their input
# positions are kept in power-of-two rings of at least `period` slots.
@cython.final
cdef class RollingMin:
    cdef readonly int64_t period
    cdef readonly int64_t count
    cdef double* _vals
    cdef int64_t* _pos
    cdef int64_t _mask
    cdef int64_t _front
    cdef int64_t _back              # one past the last element
    cdef double _value

    cdef double update_c(self, double x) noexcept nogil
    cdef double peek_c(self, double x) noexcept nogil
    cdef void reset_c(self) noexcept nogil


@cython.final
cdef class RollingMax:
    cdef readonly int64_t period
    cdef readonly int64_t count
    cdef double* _vals
    cdef int64_t* _pos
    cdef int64_t _mask
    cdef int64_t _front
    cdef int64_t _back
    cdef double _value

    cdef double update_c(self, double x) noexcept nogil
    cdef double peek_c(self, double x) noexcept nogil
    cdef void reset_c(self) noexcept nogil


@cython.final
cdef class VWAP:
    cdef readonly int64_t period
    cdef readonly int64_t count
    cdef RingBuffer _pv
    cdef RingBuffer _vol
    cdef CompSum _pv_sum
    cdef CompSum _vol_sum
    cdef int64_t _traded            # bars in the window with volume > 0
    cdef double _value

    cdef double update_c(self, double price, double volume) noexcept nogil
    cdef void reset_c(self) noexcept nogil


@cython.final
cdef class SessionVWAP:
    cdef readonly int64_t session_ns
    cdef readonly int64_t offset_ns
    cdef readonly int64_t count
    cdef readonly int64_t session_count   # bars in the current session
    cdef readonly int64_t session_start   # ns; meaningful once count > 0
    cdef CompSum _pv_sum
    cdef CompSum _vol_sum
    cdef int64_t _last_ts
    cdef double _value

    cdef double update_c(self, int64_t ts, double price, double volume) noexcept nogil
    cdef int64_t session_of_c(self, int64_t ts) noexcept nogil
    cdef void reset_c(self) noexcept nogil


@cython.final
cdef class OBV:
    cdef readonly int64_t count
    cdef double _prev_close
    cdef CompSum _obv
    cdef double _value

    cdef double update_c(self, double close, double volume) noexcept nogil
    cdef void reset_c(self) noexcept nogil


@cython.final
cdef class StochasticFast:
    cdef readonly int64_t fastk_period
    cdef readonly int64_t fastd_period
    cdef readonly int64_t count
    cdef RollingMax _highest
    cdef RollingMin _lowest
    cdef SMA _d
    cdef double _raw_k              # unsmoothed %K of the last bar
    cdef double _k
    cdef double _dv

    cdef double update_c(self, double high, double low, double close) noexcept nogil
    cdef void reset_c(self) noexcept nogil


@cython.final
cdef class Stochastic:
    cdef readonly int64_t slowd_period
    cdef StochasticFast _fast       # its %D is this indicator's slow %K
    cdef SMA _d
    cdef double _k
    cdef double _dv

    cdef double update_c(self, double high, double low, double close) noexcept nogil
    cdef void reset_c(self) noexcept nogil


@cython.final
cdef class ROC:
    cdef readonly int64_t period
    cdef readonly int64_t count
    cdef RingBuffer _window
    cdef double _value

    cdef double update_c(self, double x) noexcept nogil
    cdef double peek_c(self, double x) noexcept nogil
    cdef void reset_c(self) noexcept nogil


@cython.final
cdef class ZScore:
    cdef RollingStd _std
    cdef double _value

    cdef double update_c(self, double x) noexcept nogil
    cdef double peek_c(self, double x) noexcept nogil
    cdef void reset_c(self) noexcept nogil
