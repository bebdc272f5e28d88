# Fixed-window ring buffer of double: the storage of every windowed indicator.
#
# Storage is a power of two so that wrapping is `& mask` (no division, and a negative
# index wraps correctly in two's complement); `capacity` is the exact window the
# caller asked for, kept separately. The hot methods are defined here, inline, so
# that a cimporting module calls them directly (no vtable) and the C compiler can
# inline them into its loops.
cimport cython
from libc.math cimport NAN
from libc.stdint cimport int64_t


@cython.final
cdef class RingBuffer:
    cdef double* _buf
    cdef int64_t _mask
    cdef int64_t _head              # slot of the next write
    cdef readonly int64_t capacity  # exact window length
    cdef readonly int64_t count     # values held, <= capacity

    cdef inline double push_c(self, double x) noexcept nogil:
        """Append x; return the value it evicted, or NaN while not yet full."""
        cdef double evicted = NAN
        cdef int64_t head = self._head
        if self.count == self.capacity:
            evicted = self._buf[(head - self.capacity) & self._mask]
        else:
            self.count += 1
        self._buf[head] = x
        self._head = (head + 1) & self._mask
        return evicted

    cdef inline double get_c(self, int64_t i) noexcept nogil:
        """i-th most recent value (0 = newest); the caller keeps 0 <= i < count."""
        return self._buf[(self._head - 1 - i) & self._mask]

    cdef inline double newest_c(self) noexcept nogil:
        return self._buf[(self._head - 1) & self._mask]

    cdef inline double oldest_c(self) noexcept nogil:
        return self._buf[(self._head - self.count) & self._mask]

    cdef inline void clear_c(self) noexcept nogil:
        self._head = 0
        self.count = 0
