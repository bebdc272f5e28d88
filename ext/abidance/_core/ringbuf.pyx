"""Fixed-window ring buffer of double (see ringbuf.pxd for the C-level contract).

`push(x)` appends and returns the value that fell out of the window (NaN while the
buffer is filling). Index 0 is the newest value; `to_array()` is oldest -> newest.
"""

from libc.math cimport isfinite
from libc.stdint cimport int64_t

import numpy as np


cdef class RingBuffer:
    """The last `capacity` doubles pushed, with O(1) push, evict and indexed read."""

    def __cinit__(self, int64_t capacity):
        ring_init(&self._r, capacity)

    def __dealloc__(self):
        ring_free(&self._r)

    def push(self, double x):
        """Append x; return the evicted value, or NaN while the buffer is filling."""
        if not isfinite(x):
            raise ValueError(f"RingBuffer.push: non-finite value {x!r}")
        return ring_push(&self._r, x)

    def get(self, int64_t i):
        """The i-th most recent value: 0 is the newest, count - 1 the oldest."""
        if i < 0 or i >= self._r.count:
            raise IndexError(f"RingBuffer.get: index {i} out of range for {self._r.count} values")
        return ring_get(&self._r, i)

    @property
    def newest(self):
        if self._r.count == 0:
            raise IndexError("RingBuffer.newest: buffer is empty")
        return ring_newest(&self._r)

    @property
    def oldest(self):
        if self._r.count == 0:
            raise IndexError("RingBuffer.oldest: buffer is empty")
        return ring_oldest(&self._r)

    @property
    def capacity(self):
        return self._r.capacity

    @property
    def count(self):
        return self._r.count

    @property
    def full(self):
        return self._r.count == self._r.capacity

    def to_array(self):
        """The held values as a new float64 array, oldest first."""
        cdef int64_t i, n = self._r.count
        out = np.empty(n, dtype=np.float64)
        cdef double[::1] o = out
        for i in range(n):
            o[i] = ring_get(&self._r, n - 1 - i)
        return out

    def clear(self):
        ring_clear(&self._r)

    def __len__(self):
        return self._r.count

    def __repr__(self):
        return f"RingBuffer(capacity={self._r.capacity}, count={self._r.count})"
