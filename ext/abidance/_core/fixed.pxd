# Exact conversion between decimal text and fixed-point int64 units.
from libc.stdint cimport int64_t

# Status codes of parse_scaled_c / FixedPoint.units_c.
cdef enum ParseStatus:
    PARSE_OK = 0
    PARSE_EMPTY = 1
    PARSE_BAD_CHAR = 2
    PARSE_TOO_PRECISE = 3   # non-zero digits beyond the allowed decimals
    PARSE_OVERFLOW = 4
    PARSE_NEGATIVE = 5

cdef int parse_scaled_c(const char* s, Py_ssize_t n, int decimals, int64_t* out) noexcept nogil

cdef class FixedPoint:
    cdef readonly int decimals
    cdef readonly int64_t increment_scaled   # increment * 10**decimals
    cdef readonly object increment           # Decimal

    cdef int units_c(self, const char* s, Py_ssize_t n, int64_t* out) noexcept nogil
