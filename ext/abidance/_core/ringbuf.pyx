"""Fixed-window ring buffer of double (see ringbuf.pxd for the C-level contract).

`push(x)` appends and returns the value that fell out of the window (NaN while the
buffer is filling). Index 0 is the newest value; `to_array()` is oldest -> newest.
"""

from cpython.mem cimport PyMem_Free, PyMem_Malloc
from libc.math cimport isfinite
from libc.stdint cimport int64_t

import numpy as np

# 2**40 doubles is 8 TiB: anything larger is a caller bug, not a window.
cdef int64_t MAX_CAPACITY = 1LL << 40


cdef class RingBuffer:
    """Last `capacity` doubles pushed, with O(1) push, evict and indexed read."""

    def __cinit__(self, int64_t capacity):
        if capacity < 1 or capacity > MAX_CAPACITY:
            raise ValueError(f"RingBuffer capacity must be in [1, 2**40], got {capacity}")
        cdef int64_t size = 1
        while size < capacity:
            size <<= 1
        self._buf = <double*>PyMem_Malloc(size * sizeof(double))
        if self._buf == NULL:
            raise MemoryError(f"RingBuffer: cannot allocate {capacity} doubles")
        self._mask = size - 1
        self._head = 0
        self.capacity = capacity
        self.count = 0

    def __dealloc__(self):
        PyMem_Free(self._buf)

    def push(self, double x):
        """Append x; return the evicted value, or NaN while the buffer is filling."""
        if not isfinite(x):
            raise ValueError(f"RingBuffer.push: non-finite value {x!r}")
        return self.push_c(x)

    def get(self, int64_t i):
        """The i-th most recent value: 0 is the newest, count - 1 the oldest."""
        if i < 0 or i >= self.count:
            raise IndexError(f"RingBuffer.get: index {i} out of range for {self.count} values")
        return self.get_c(i)

    @property
    def newest(self):
        if self.count == 0:
            raise IndexError("RingBuffer.newest: buffer is empty")
        return self.newest_c()

    @property
    def oldest(self):
        if self.count == 0:
            raise IndexError("RingBuffer.oldest: buffer is empty")
        return self.oldest_c()

    @property
    def full(self):
        return self.count == self.capacity

    def to_array(self):
        """The held values as a new float64 array, oldest first."""
        out = np.empty(self.count, dtype=np.float64)
        cdef double[::1] o = out
        cdef int64_t i, n = self.count
        for i in range(n):
            o[i] = self.get_c(n - 1 - i)
        return out

    def clear(self):
        self.clear_c()

    def __len__(self):
        return self.count

    def __repr__(self):
        return f"RingBuffer(capacity={self.capacity}, count={self.count})"
