# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""A strategy's streaming indicators updated by one Python call per bar (issue 17).

A Python call to one streaming indicator costs 40-60 ns, and the call, not the kernel, is
most of it: five indicators are five calls. `IndicatorSet` holds the set and updates every
one of them from C in one call, returning their primary values as a tuple (what each
`update` would have returned, in the order given):

    ind = IndicatorSet([EMA(12), EMA(26), RSI(14), ATR(14), OBV()])
    fast, slow, rsi, atr, obv = ind.update_bar(high, low, close, volume)

`update(x)` serves a set of one-input indicators (closes). The input is checked once, as
the indicators' own `update` checks it, before any indicator commits: a bad bar changes
nothing and raises ValueError naming the value.
"""

from libc.math cimport isfinite
from cpython.tuple cimport PyTuple_New, PyTuple_SET_ITEM
from cpython.ref cimport Py_INCREF

from abidance._core.indicators cimport (ATR, EMA, MACD, OBV, ROC, RSI, SMA, VWAP, WMA, BollingerBands,
                                        RollingMax, RollingMin, RollingStd, Stochastic, StochasticFast,
                                        ZScore)

# What each indicator reads: the close alone, the bar's high, low and close, or close and volume.
cdef enum Kind:
    K_SMA, K_EMA, K_WMA, K_RSI, K_STD, K_BB, K_MACD, K_MIN, K_MAX, K_ROC, K_Z,     # one input
    K_ATR, K_STOCHF, K_STOCH,                                                       # high, low, close
    K_VWAP, K_OBV                                                                   # close, volume

_KINDS = {SMA: K_SMA, EMA: K_EMA, WMA: K_WMA, RSI: K_RSI, RollingStd: K_STD, BollingerBands: K_BB, MACD: K_MACD,
          RollingMin: K_MIN, RollingMax: K_MAX, ROC: K_ROC, ZScore: K_Z, ATR: K_ATR, StochasticFast: K_STOCHF,
          Stochastic: K_STOCH, VWAP: K_VWAP, OBV: K_OBV}


cdef class IndicatorSet:
    cdef list _items
    cdef int[32] _kinds
    cdef Py_ssize_t _n
    cdef bint _one_input        # every indicator reads one value: update(x) serves the set
    cdef bint _positive         # ROC, VWAP and OBV need a price > 0

    def __init__(self, indicators):
        items = list(indicators)
        if not 0 < len(items) <= 32:
            raise ValueError(f"IndicatorSet: 1 to 32 indicators, got {len(items)}")
        self._items = items
        self._n = len(items)
        self._one_input = True
        self._positive = False
        for i, ind in enumerate(items):
            kind = _KINDS.get(type(ind))
            if kind is None:
                raise ValueError(f"IndicatorSet: {type(ind).__name__} is not a streaming indicator it can update "
                                 f"(one of {', '.join(sorted(t.__name__ for t in _KINDS))})")
            self._kinds[i] = kind
            if kind > K_Z:
                self._one_input = False
            if kind == K_ROC or kind >= K_VWAP:
                self._positive = True

    def __len__(self):
        return self._n

    @property
    def indicators(self) -> list:
        return list(self._items)

    def update(self, double x):
        """Every indicator of a one-input set commits x; their primary values, in order."""
        if not self._one_input:
            raise ValueError("IndicatorSet.update: the set holds bar indicators (ATR, Stochastic, VWAP, OBV...); "
                             "use update_bar(high, low, close, volume)")
        if not isfinite(x) or (self._positive and x <= 0.0):
            raise ValueError(f"IndicatorSet.update: {'a finite price > 0' if self._positive else 'a finite value'} "
                             f"is needed, got {x!r}")
        return self._step(x, x, x, 0.0)

    def update_bar(self, double high, double low, double close, double volume=0.0):
        """Every indicator commits the bar (one-input ones its close); their primary values, in order."""
        if not ((low > 0.0) and (high >= low) and isfinite(high) and (close > 0.0) and isfinite(close)):
            raise ValueError(f"IndicatorSet.update_bar: prices must be finite and > 0 with high >= low, got "
                             f"high {high!r}, low {low!r}, close {close!r}")
        if not (volume >= 0.0 and isfinite(volume)):
            raise ValueError(f"IndicatorSet.update_bar: volume must be finite and >= 0, got {volume!r}")
        return self._step(high, low, close, volume)

    cdef tuple _step(self, double high, double low, double close, double volume):
        cdef tuple out = PyTuple_New(self._n)
        cdef Py_ssize_t i
        cdef double v
        cdef int k
        cdef object ind, value
        for i in range(self._n):
            ind = <object>self._items[i]
            k = self._kinds[i]
            if k == K_SMA:
                v = (<SMA>ind).update_c(close)
            elif k == K_EMA:
                v = (<EMA>ind).update_c(close)
            elif k == K_WMA:
                v = (<WMA>ind).update_c(close)
            elif k == K_RSI:
                v = (<RSI>ind).update_c(close)
            elif k == K_STD:
                v = (<RollingStd>ind).update_c(close)
            elif k == K_BB:
                v = (<BollingerBands>ind).update_c(close)
            elif k == K_MACD:
                v = (<MACD>ind).update_c(close)
            elif k == K_MIN:
                v = (<RollingMin>ind).update_c(close)
            elif k == K_MAX:
                v = (<RollingMax>ind).update_c(close)
            elif k == K_ROC:
                v = (<ROC>ind).update_c(close)
            elif k == K_Z:
                v = (<ZScore>ind).update_c(close)
            elif k == K_ATR:
                v = (<ATR>ind).update_c(high, low, close)
            elif k == K_STOCHF:
                v = (<StochasticFast>ind).update_c(high, low, close)
            elif k == K_STOCH:
                v = (<Stochastic>ind).update_c(high, low, close)
            elif k == K_VWAP:
                v = (<VWAP>ind).update_c(close, volume)
            else:
                v = (<OBV>ind).update_c(close, volume)
            value = v
            Py_INCREF(value)
            PyTuple_SET_ITEM(out, i, value)
        return out
