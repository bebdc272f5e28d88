# Fixed-window ring buffer of double: the storage of every windowed indicator.
#
# Storage is a power of two so that wrapping is `& mask` (no division, and a negative
# index wraps correctly in two's complement); `capacity` is the exact window the
# caller asked for, kept separately.
#
# The state is a plain struct with inline functions, defined here so that a cimporting
# module inlines them: an indicator embeds a `Ring` in its own state struct, and a batch
# loop can keep that state in registers. `RingBuffer` is the Python-facing owner of one.
cimport cython
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from libc.math cimport NAN
from libc.stdint cimport int64_t


ctypedef struct Ring:
    double* buf
    int64_t mask
    int64_t head        # slot of the next write
    int64_t capacity    # exact window length
    int64_t count       # values held, <= capacity


cdef inline int ring_init(Ring* r, int64_t capacity) except -1:
    # 2**40 doubles is 8 TiB: anything larger is a caller bug, not a window.
    if capacity < 1 or capacity > (1LL << 40):
        raise ValueError(f"RingBuffer capacity must be in [1, 2**40], got {capacity}")
    cdef int64_t size = 1
    while size < capacity:
        size <<= 1
    r.buf = <double*>PyMem_Malloc(size * sizeof(double))
    if r.buf == NULL:
        raise MemoryError(f"cannot allocate a ring of {capacity} doubles")
    r.mask = size - 1
    r.head = 0
    r.capacity = capacity
    r.count = 0
    return 0


cdef inline void ring_free(Ring* r) noexcept:
    PyMem_Free(r.buf)
    r.buf = NULL


cdef inline double ring_push(Ring* r, double x) noexcept nogil:
    """Append x; return the value it evicted, or NaN while not yet full."""
    cdef double evicted = NAN
    cdef int64_t head = r.head
    if r.count == r.capacity:
        evicted = r.buf[(head - r.capacity) & r.mask]
    else:
        r.count += 1
    r.buf[head] = x
    r.head = (head + 1) & r.mask
    return evicted


cdef inline double ring_get(const Ring* r, int64_t i) noexcept nogil:
    """i-th most recent value (0 = newest); the caller keeps 0 <= i < count."""
    return r.buf[(r.head - 1 - i) & r.mask]


cdef inline double ring_newest(const Ring* r) noexcept nogil:
    return r.buf[(r.head - 1) & r.mask]


cdef inline double ring_oldest(const Ring* r) noexcept nogil:
    return r.buf[(r.head - r.count) & r.mask]


cdef inline void ring_clear(Ring* r) noexcept nogil:
    r.head = 0
    r.count = 0


@cython.final
cdef class RingBuffer:
    cdef Ring _r

    cdef inline double push_c(self, double x) noexcept nogil:
        return ring_push(&self._r, x)

    cdef inline double get_c(self, int64_t i) noexcept nogil:
        return ring_get(&self._r, i)

    cdef inline double newest_c(self) noexcept nogil:
        return ring_newest(&self._r)

    cdef inline double oldest_c(self) noexcept nogil:
        return ring_oldest(&self._r)

    cdef inline void clear_c(self) noexcept nogil:
        ring_clear(&self._r)
