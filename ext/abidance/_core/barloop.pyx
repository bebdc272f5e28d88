# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""Compiled bar strategies: a strategy's per-bar logic as a typed kernel.

A `BarKernel` takes a closed bar (ticks and steps) and returns an action: NONE, BUY or
SELL (a cross, a breakout...). The Python strategy that hosts it (abidance.strategy.compiled)
feeds it bar by bar in the live node, and turns an action into a signal with the usual
checks (position, confidence). The backtester can also run `run_until_action` over
columns of bars: the kernel sees every bar, in C, and control returns to the engines only
at the first bar that asks for something. Both paths run the same kernel code, so they
decide the same.
"""

from libc.math cimport fabs
from libc.stdint cimport int64_t

from abidance._core.indicators cimport EMA

cpdef enum Action:
    NONE = 0
    BUY = 1
    SELL = 2


cdef class BarKernel:
    """Base kernel: never acts. Subclasses override on_bar_c (and keep their state)."""

    cdef int on_bar_c(self, int64_t open_, int64_t high, int64_t low, int64_t close, int64_t volume) noexcept:
        return 0

    def on_bar(self, int64_t open_, int64_t high, int64_t low, int64_t close, int64_t volume):
        """One closed bar; the action (also kept in `.action`)."""
        self.action = self.on_bar_c(open_, high, low, close, volume)
        return self.action


cdef class EmaCrossKernel(BarKernel):
    """The ema_cross rule: BUY when the fast EMA crosses above the slow one, SELL below;
    crosses closer than min_gap_bps ignored. Same float operations as the Python rule."""

    cdef EMA fast, slow
    cdef double tick
    cdef double min_gap_bps
    cdef int above                  # -1 before the first ready bar
    cdef public double gap_bps      # of the last cross

    def __init__(self, int64_t fast, int64_t slow, double tick, double min_gap_bps=0.0):
        if not 0 < fast < slow:
            raise ValueError(f"fast ({fast}) must be positive and below slow ({slow})")
        if not tick > 0:
            raise ValueError(f"tick must be positive, got {tick}")
        self.fast = EMA(fast)
        self.slow = EMA(slow)
        self.tick = tick
        self.min_gap_bps = min_gap_bps
        self.above = -1
        self.gap_bps = 0.0

    cdef int on_bar_c(self, int64_t open_, int64_t high, int64_t low, int64_t close, int64_t volume) noexcept:
        cdef double price = close * self.tick
        cdef double f = self.fast.update_c(price)
        cdef double s = self.slow.update_c(price)
        if self.slow._st.count < self.slow._st.period:
            return 0
        cdef double gap = (f - s) / s * 1e4
        cdef int above = gap > 0
        cdef int was = self.above
        self.above = above
        if was == -1 or above == was or fabs(gap) < self.min_gap_bps:
            return 0
        self.gap_bps = gap
        return 1 if above else 2


def run_until_action(BarKernel kernel, const int64_t[:] open_, const int64_t[:] high, const int64_t[:] low,
                     const int64_t[:] close, const int64_t[:] volume, Py_ssize_t start, Py_ssize_t stop):
    """Feed bars [start, stop) to the kernel; the index of the first bar it acts on (its
    action in kernel.action), or stop when it never does."""
    cdef Py_ssize_t n = close.shape[0]
    if start < 0 or stop > n or start > stop:
        raise IndexError(f"bars [{start}, {stop}) outside 0..{n}")
    cdef Py_ssize_t i
    cdef int a
    for i in range(start, stop):
        a = kernel.on_bar_c(open_[i], high[i], low[i], close[i], volume[i])
        if a != 0:
            kernel.action = a
            return i
    kernel.action = 0
    return stop
