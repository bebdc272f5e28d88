# L2 order book: fixed-point int64 prices (ticks) and quantities (steps).
from libc.stdint cimport int64_t

cpdef enum BookStatus:
    # Outcome of apply_snapshot / apply_diff.
    APPLIED = 0
    STALE = 1            # diff ends at or before the book's update id: dropped (normal during sync)
    NOT_READY = 2        # no consistent book to apply to: waiting for a snapshot
    GAP = 3              # updates were missed: resync needed
    CROSSED = 4          # best bid >= best ask after applying: resync needed
    INVALID_VALUE = 5    # non-positive price, negative quantity, zero quantity in a snapshot
    INVALID_IDS = 6      # first update id > final update id, or negative ids
    OUT_OF_MEMORY = 7

cpdef enum Side:
    BID = 0
    ASK = 1

ctypedef struct Level:
    int64_t key    # bids: price; asks: -price, so both sides sort ascending with the best last
    int64_t qty

ctypedef struct BookSide:
    Level* levels
    Py_ssize_t n
    Py_ssize_t cap


cdef class OrderBook:
    cdef BookSide _bids
    cdef BookSide _asks
    cdef readonly str symbol
    cdef readonly int64_t last_update_id
    cdef bint _has_snapshot
    cdef int _resync_reason          # BookStatus of the failure, APPLIED when consistent
    cdef int64_t _detail_a           # context of the failure for the message
    cdef int64_t _detail_b
    cdef readonly int64_t updates_applied
    cdef readonly int64_t resyncs_needed

    cdef int apply_snapshot_c(self, const int64_t* bid_px, const int64_t* bid_qty, Py_ssize_t nb,
                              const int64_t* ask_px, const int64_t* ask_qty, Py_ssize_t na,
                              int64_t last_update_id) noexcept nogil
    cdef int apply_diff_c(self, int64_t first_id, int64_t final_id,
                          const int64_t* bid_px, const int64_t* bid_qty, Py_ssize_t nb,
                          const int64_t* ask_px, const int64_t* ask_qty, Py_ssize_t na) noexcept nogil
    cdef int _fail(self, int reason, int64_t a, int64_t b) noexcept nogil
    cdef bint is_ready_c(self) noexcept nogil
    cdef int64_t best_bid_px_c(self) noexcept nogil
    cdef int64_t best_ask_px_c(self) noexcept nogil
    cdef int64_t best_bid_qty_c(self) noexcept nogil
    cdef int64_t best_ask_qty_c(self) noexcept nogil
    cdef double mid_c(self) noexcept nogil
    cdef double microprice_c(self) noexcept nogil
    cdef double imbalance_c(self, Py_ssize_t depth) noexcept nogil
    cdef int64_t cumulative_qty_c(self, int side, int64_t limit_px) noexcept nogil
