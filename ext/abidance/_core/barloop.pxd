from libc.stdint cimport int64_t


cdef class BarKernel:
    cdef public int action
    cdef int on_bar_c(self, int64_t open_, int64_t high, int64_t low, int64_t close, int64_t volume) noexcept
