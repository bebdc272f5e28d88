"""L2 order book with Binance Spot sequencing, in fixed-point integers.

Each side is a sorted array of (key, qty) with the best level LAST: bids keyed by
price, asks by -price, so both sides sort ascending and share one code path.
Market activity concentrates near the top of the book, so keeping the best level at
the end makes the common insert/remove a short memmove and the common lookup a short
scan from the end (binary search beyond that).

Nothing here raises on the hot path: a gap, a crossed book or an invalid value sets
the book to NOT ready with a reason (`resync_reason`, `resync_message`) and every
further diff is refused until a new snapshot arrives.
"""

from libc.stdint cimport int64_t, uint64_t, INT64_MAX
from libc.stdlib cimport malloc, realloc, free
from libc.string cimport memmove

import numpy as np

cdef extern from *:
    """
    typedef __int128 abidance_i128;
    """
    ctypedef long long abidance_i128

cdef enum:
    INITIAL_CAPACITY = 64
    LINEAR_SCAN = 8   # levels scanned from the top before switching to binary search

_STATUS_TEXT = {
    BookStatus.APPLIED: "consistent",
    BookStatus.STALE: "stale diff dropped",
    BookStatus.NOT_READY: "no snapshot yet",
    BookStatus.GAP: "sequence gap: expected first update id <= {a} but got {b}",
    BookStatus.CROSSED: "crossed book: best bid {a} >= best ask {b}",
    BookStatus.INVALID_VALUE: "invalid level: price {a}, quantity {b}",
    BookStatus.INVALID_IDS: "invalid update ids: first {a}, final {b}",
    BookStatus.OUT_OF_MEMORY: "out of memory growing the book ({a} levels)",
}


cdef inline int side_reserve(BookSide* s, Py_ssize_t need) noexcept nogil:
    cdef Py_ssize_t cap = s.cap
    cdef Level* grown
    if need <= cap:
        return 0
    if cap < INITIAL_CAPACITY:
        cap = INITIAL_CAPACITY
    while cap < need:
        cap *= 2
    grown = <Level*>realloc(s.levels, cap * sizeof(Level))
    if grown == NULL:
        return -1
    s.levels = grown
    s.cap = cap
    return 0


cdef inline Py_ssize_t side_lower_bound(const BookSide* s, int64_t key) noexcept nogil:
    """First index whose key >= key (n when none)."""
    cdef const Level* lv = s.levels
    cdef Py_ssize_t hi = s.n
    cdef Py_ssize_t stop = hi - LINEAR_SCAN
    cdef Py_ssize_t base = 0
    cdef Py_ssize_t half
    if stop < 0:
        stop = 0
    # Scan down from the best level: most updates land near the top.
    while hi > stop:
        if lv[hi - 1].key < key:
            return hi
        hi -= 1
    # Branch-free binary search over the rest (the compiler emits cmov): the deeper
    # levels are hit at random, so a branchy search would mispredict half the time.
    while hi > 1:
        half = hi >> 1
        base = base + half if lv[base + half - 1].key < key else base
        hi -= half
    if hi == 1 and lv[base].key < key:
        base += 1
    return base


cdef inline int side_set(BookSide* s, int64_t key, int64_t qty) noexcept nogil:
    """Set a level's quantity; 0 removes it (removing an unknown level is not an error)."""
    cdef Py_ssize_t i = side_lower_bound(s, key)
    cdef Py_ssize_t n = s.n
    cdef Level* lv
    if i < n and s.levels[i].key == key:
        if qty == 0:
            memmove(&s.levels[i], &s.levels[i + 1], (n - i - 1) * sizeof(Level))
            s.n = n - 1
        else:
            s.levels[i].qty = qty
        return 0
    if qty == 0:
        return 0
    if side_reserve(s, n + 1) != 0:
        return -1
    lv = s.levels
    memmove(&lv[i + 1], &lv[i], (n - i) * sizeof(Level))
    lv[i].key = key
    lv[i].qty = qty
    s.n = n + 1
    return 0


cdef int side_build(BookSide* s, int64_t sign, const int64_t* px, const int64_t* qty,
                    Py_ssize_t n) noexcept nogil:
    """Fill an empty side from a snapshot's levels in any order, in O(n log n).

    The levels go in reversed (Binance sends best first, so they usually arrive already
    ascending: one pass and done; worst first, they are flipped in a second pass).
    Otherwise a stable merge sort orders them by key, and of equal keys the one given
    first in the snapshot wins (the last after reversal). Returns -1 when memory runs out.
    """
    cdef Level* lv
    cdef Level* tmp
    cdef Level* src
    cdef Level* dst
    cdef Level* swap
    cdef Level held
    cdef Py_ssize_t i, j, k, lo, mid, hi, width, out
    cdef bint ascending = True, descending = True
    s.n = 0
    if n == 0:
        return 0
    if side_reserve(s, n) != 0:
        return -1
    lv = s.levels
    for i in range(n):
        lv[i].key = sign * px[n - 1 - i]
        lv[i].qty = qty[n - 1 - i]
        if i:
            if lv[i - 1].key >= lv[i].key:
                ascending = False
            if lv[i - 1].key <= lv[i].key:
                descending = False
    if descending and not ascending:
        for i in range(n // 2):
            held = lv[i]
            lv[i] = lv[n - 1 - i]
            lv[n - 1 - i] = held
    elif not ascending:
        tmp = <Level*>malloc(n * sizeof(Level))
        if tmp == NULL:
            return -1
        src = lv
        dst = tmp
        width = 1
        while width < n:            # bottom-up merge sort: stable, no recursion
            lo = 0
            while lo < n:
                mid = min(lo + width, n)
                hi = min(lo + 2 * width, n)
                i = lo
                j = mid
                k = lo
                while i < mid and j < hi:
                    if src[j].key < src[i].key:
                        dst[k] = src[j]
                        j += 1
                    else:
                        dst[k] = src[i]
                        i += 1
                    k += 1
                while i < mid:
                    dst[k] = src[i]
                    i += 1
                    k += 1
                while j < hi:
                    dst[k] = src[j]
                    j += 1
                    k += 1
                lo = hi
            swap = src
            src = dst
            dst = swap
            width *= 2
        # keep the last of each run of equal keys (the first given), compacting into lv
        out = 0
        for i in range(n):
            if i + 1 < n and src[i + 1].key == src[i].key:
                continue
            lv[out] = src[i]
            out += 1
        free(tmp)
        n = out
    s.n = n
    return 0


cdef inline int64_t side_key(int side, int64_t px) noexcept nogil:
    return px if side == BID else -px


cdef inline abidance_i128 side_qty_through(const BookSide* s, int64_t key) noexcept nogil:
    """Total quantity of the levels from the best down to key, in 128 bits (no overflow)."""
    cdef abidance_i128 total = 0
    cdef Py_ssize_t i = s.n - 1
    while i >= 0 and s.levels[i].key >= key:
        total += s.levels[i].qty
        i -= 1
    return total


cdef class OrderBook:
    """An L2 book for one symbol, in int64 ticks (price) and steps (quantity).

    Feed it `apply_snapshot` (REST depth) then `apply_diff` (depthUpdate U/u) per
    Binance Spot's rules. Query only while `ready`; otherwise `resync_message` says why
    not and a new snapshot is needed.
    """

    def __cinit__(self, str symbol="", *args, **kwargs):
        self.symbol = symbol
        self._bids.levels = NULL
        self._bids.n = 0
        self._bids.cap = 0
        self._asks.levels = NULL
        self._asks.n = 0
        self._asks.cap = 0
        self.last_update_id = -1
        self._has_snapshot = False
        self._resync_reason = NOT_READY
        self._detail_a = 0
        self._detail_b = 0
        self.updates_applied = 0
        self.resyncs_needed = 0

    def __dealloc__(self):
        free(self._bids.levels)
        free(self._asks.levels)

    # ---- state ---------------------------------------------------------------------

    cdef int _fail(self, int reason, int64_t a, int64_t b) noexcept nogil:
        if self._resync_reason == APPLIED:
            self.resyncs_needed += 1
        self._resync_reason = reason
        self._detail_a = a
        self._detail_b = b
        return reason

    cdef bint is_ready_c(self) noexcept nogil:
        return self._resync_reason == APPLIED

    @property
    def ready(self) -> bool:
        """True when the book is consistent and safe to trade on."""
        return self._resync_reason == APPLIED

    @property
    def resync_reason(self) -> BookStatus:
        """APPLIED when consistent, else the BookStatus that made the book unusable."""
        return BookStatus(self._resync_reason)

    @property
    def resync_message(self) -> str:
        """Why the book is not ready, in words ("" when it is)."""
        if self._resync_reason == APPLIED:
            return ""
        text = _STATUS_TEXT[self._resync_reason]
        return f"{self.symbol}: " + text.format(a=self._detail_a, b=self._detail_b)

    def invalidate(self):
        """Mark the book unusable (e.g. the stream reconnected) until the next snapshot."""
        self._fail(NOT_READY, 0, 0)

    # ---- updates -------------------------------------------------------------------

    cdef int apply_snapshot_c(self, const int64_t* bid_px, const int64_t* bid_qty, Py_ssize_t nb,
                              const int64_t* ask_px, const int64_t* ask_qty, Py_ssize_t na,
                              int64_t last_update_id) noexcept nogil:
        cdef Py_ssize_t i
        self._bids.n = 0
        self._asks.n = 0
        self._has_snapshot = False
        if last_update_id < 0:
            return self._fail(INVALID_IDS, last_update_id, last_update_id)
        for i in range(nb):
            if bid_px[i] <= 0 or bid_qty[i] <= 0:
                return self._fail(INVALID_VALUE, bid_px[i], bid_qty[i])
        for i in range(na):
            if ask_px[i] <= 0 or ask_qty[i] <= 0:
                return self._fail(INVALID_VALUE, ask_px[i], ask_qty[i])
        # Binance sends best first (one pass); any other order, duplicates included, is
        # sorted in O(n log n) (see side_build).
        if side_build(&self._bids, 1, bid_px, bid_qty, nb) != 0 or \
                side_build(&self._asks, -1, ask_px, ask_qty, na) != 0:
            self._bids.n = 0
            self._asks.n = 0
            return self._fail(OUT_OF_MEMORY, nb + na, 0)
        self.last_update_id = last_update_id
        self._has_snapshot = True
        if self._bids.n and self._asks.n and self.best_bid_px_c() >= self.best_ask_px_c():
            return self._fail(CROSSED, self.best_bid_px_c(), self.best_ask_px_c())
        self._resync_reason = APPLIED
        return APPLIED

    cdef int apply_diff_c(self, int64_t first_id, int64_t final_id,
                          const int64_t* bid_px, const int64_t* bid_qty, Py_ssize_t nb,
                          const int64_t* ask_px, const int64_t* ask_qty, Py_ssize_t na) noexcept nogil:
        cdef Py_ssize_t i
        cdef int64_t expected
        if self._resync_reason != APPLIED:
            return NOT_READY
        if first_id < 0 or first_id > final_id:
            return self._fail(INVALID_IDS, first_id, final_id)
        if final_id <= self.last_update_id:
            return STALE
        # Spot rule: the first diff after a snapshot must straddle lastUpdateId + 1, and
        # each later one must start right after the previous one (U <= last u + 1).
        # An overlapping diff is applied: levels are absolute, so re-setting one is harmless.
        expected = self.last_update_id + 1
        if first_id > expected:
            return self._fail(GAP, expected, first_id)
        # Validate everything before touching the book so a bad diff changes nothing.
        for i in range(nb):
            if bid_px[i] <= 0 or bid_qty[i] < 0:
                return self._fail(INVALID_VALUE, bid_px[i], bid_qty[i])
        for i in range(na):
            if ask_px[i] <= 0 or ask_qty[i] < 0:
                return self._fail(INVALID_VALUE, ask_px[i], ask_qty[i])
        for i in range(nb):
            if side_set(&self._bids, bid_px[i], bid_qty[i]) != 0:
                return self._fail(OUT_OF_MEMORY, self._bids.n, 0)
        for i in range(na):
            if side_set(&self._asks, -ask_px[i], ask_qty[i]) != 0:
                return self._fail(OUT_OF_MEMORY, self._asks.n, 0)
        self.last_update_id = final_id
        self.updates_applied += nb + na
        if self._bids.n and self._asks.n and self._bids.levels[self._bids.n - 1].key >= -self._asks.levels[self._asks.n - 1].key:
            return self._fail(CROSSED, self.best_bid_px_c(), self.best_ask_px_c())
        return APPLIED

    def apply_snapshot(self, bids, asks, int64_t last_update_id) -> BookStatus:
        """Replace the book with a REST depth snapshot.

        bids/asks: int64 arrays of shape (n, 2) [[price_ticks, qty_steps], ...] or
        sequences of pairs, best first as Binance sends them (any order is accepted).
        """
        cdef int64_t[:, ::1] b = _levels_array(bids)
        cdef int64_t[:, ::1] a = _levels_array(asks)
        cdef int64_t[::1] bpx = np.ascontiguousarray(b[:, 0])
        cdef int64_t[::1] bq = np.ascontiguousarray(b[:, 1])
        cdef int64_t[::1] apx = np.ascontiguousarray(a[:, 0])
        cdef int64_t[::1] aq = np.ascontiguousarray(a[:, 1])
        return BookStatus(self.apply_snapshot_c(_ptr(bpx), _ptr(bq), bpx.shape[0],
                                                _ptr(apx), _ptr(aq), apx.shape[0], last_update_id))

    def apply_diff(self, int64_t first_id, int64_t final_id,
                   const int64_t[::1] bid_px, const int64_t[::1] bid_qty,
                   const int64_t[::1] ask_px, const int64_t[::1] ask_qty) -> int:
        """Apply one depthUpdate (U=first_id, u=final_id) from contiguous int64 arrays.

        Returns a BookStatus code (an int, to keep the call cheap). A quantity of 0
        removes the level.
        """
        if bid_px.shape[0] != bid_qty.shape[0] or ask_px.shape[0] != ask_qty.shape[0]:
            return self._fail(INVALID_VALUE, bid_px.shape[0], bid_qty.shape[0])
        return self.apply_diff_c(first_id, final_id,
                                 _cptr(bid_px), _cptr(bid_qty), bid_px.shape[0],
                                 _cptr(ask_px), _cptr(ask_qty), ask_px.shape[0])

    def apply_diff_levels(self, int64_t first_id, int64_t final_id, bids, asks) -> BookStatus:
        """apply_diff from sequences of (price_ticks, qty_steps) pairs (convenience)."""
        cdef int64_t[:, ::1] b = _levels_array(bids)
        cdef int64_t[:, ::1] a = _levels_array(asks)
        return BookStatus(self.apply_diff(first_id, final_id,
                                          np.ascontiguousarray(b[:, 0]), np.ascontiguousarray(b[:, 1]),
                                          np.ascontiguousarray(a[:, 0]), np.ascontiguousarray(a[:, 1])))

    # ---- queries -------------------------------------------------------------------
    # Prices are ticks, quantities steps; 0 where a side is empty.

    cdef int64_t best_bid_px_c(self) noexcept nogil:
        return self._bids.levels[self._bids.n - 1].key if self._bids.n else 0

    cdef int64_t best_ask_px_c(self) noexcept nogil:
        return -self._asks.levels[self._asks.n - 1].key if self._asks.n else 0

    cdef int64_t best_bid_qty_c(self) noexcept nogil:
        return self._bids.levels[self._bids.n - 1].qty if self._bids.n else 0

    cdef int64_t best_ask_qty_c(self) noexcept nogil:
        return self._asks.levels[self._asks.n - 1].qty if self._asks.n else 0

    cdef double mid_c(self) noexcept nogil:
        if not self._bids.n or not self._asks.n:
            return 0.0
        return (<double>self.best_bid_px_c() + <double>self.best_ask_px_c()) * 0.5

    cdef double microprice_c(self) noexcept nogil:
        # Size-weighted mid: leans toward the side with less quantity (the likely next move).
        cdef double bq, aq
        if not self._bids.n or not self._asks.n:
            return 0.0
        bq = <double>self.best_bid_qty_c()
        aq = <double>self.best_ask_qty_c()
        return (<double>self.best_bid_px_c() * aq + <double>self.best_ask_px_c() * bq) / (aq + bq)

    cdef double imbalance_c(self, Py_ssize_t depth) noexcept nogil:
        cdef double b = 0.0, a = 0.0
        cdef Py_ssize_t i
        cdef Py_ssize_t nb = min(depth, self._bids.n)
        cdef Py_ssize_t na = min(depth, self._asks.n)
        for i in range(nb):
            b += self._bids.levels[self._bids.n - 1 - i].qty
        for i in range(na):
            a += self._asks.levels[self._asks.n - 1 - i].qty
        if a + b == 0.0:
            return 0.0
        return (b - a) / (b + a)

    cdef int64_t cumulative_qty_c(self, int side, int64_t limit_px) noexcept nogil:
        # Saturates at INT64_MAX: a sum of huge levels must not wrap to a small or negative one.
        cdef abidance_i128 total = side_qty_through(&self._bids if side == BID else &self._asks,
                                                    side_key(side, limit_px))
        return INT64_MAX if total > <abidance_i128>INT64_MAX else <int64_t>total

    @property
    def bid_count(self) -> int:
        return self._bids.n

    @property
    def ask_count(self) -> int:
        return self._asks.n

    def best_bid(self):
        """(price_ticks, qty_steps) of the best bid, or None when the side is empty."""
        return (self.best_bid_px_c(), self.best_bid_qty_c()) if self._bids.n else None

    def best_ask(self):
        """(price_ticks, qty_steps) of the best ask, or None when the side is empty."""
        return (self.best_ask_px_c(), self.best_ask_qty_c()) if self._asks.n else None

    def spread(self):
        """Best ask - best bid in ticks, or None when a side is empty."""
        if not self._bids.n or not self._asks.n:
            return None
        return self.best_ask_px_c() - self.best_bid_px_c()

    def mid(self):
        """(bid + ask) / 2 in ticks (a float: it can fall between ticks), or None."""
        return self.mid_c() if self._bids.n and self._asks.n else None

    def microprice(self):
        """(bid * ask_qty + ask * bid_qty) / (bid_qty + ask_qty) in ticks, or None."""
        return self.microprice_c() if self._bids.n and self._asks.n else None

    def imbalance(self, Py_ssize_t depth=5) -> float:
        """(bid qty - ask qty) / (bid qty + ask qty) over the top `depth` levels, in [-1, 1]."""
        if depth <= 0:
            raise ValueError(f"imbalance depth must be positive, got {depth}")
        return self.imbalance_c(depth)

    def cumulative_qty(self, int side, int64_t limit_px) -> int:
        """Quantity on `side` at prices at least as good as limit_px (bids >=, asks <=).

        Exact as a Python int: the sum of many huge levels can exceed int64."""
        cdef abidance_i128 total = side_qty_through(&self._bids if side == BID else &self._asks,
                                                    side_key(side, limit_px))
        hi = <int64_t>(total >> 64)
        lo = <uint64_t>total
        return (int(hi) << 64) | int(lo)

    def top(self, int side, Py_ssize_t n=10):
        """Top n levels of one side as an int64 array (k, 2) [[price, qty], ...], best first."""
        cdef const BookSide* s = &self._bids if side == BID else &self._asks
        cdef Py_ssize_t k = max(0, min(n, s.n))
        cdef Py_ssize_t i
        out = np.empty((k, 2), dtype=np.int64)
        cdef int64_t[:, ::1] o = out
        cdef int64_t sign = 1 if side == BID else -1
        for i in range(k):
            o[i, 0] = sign * s.levels[s.n - 1 - i].key
            o[i, 1] = s.levels[s.n - 1 - i].qty
        return out

    def top_bids(self, Py_ssize_t n=10):
        return self.top(BID, n)

    def top_asks(self, Py_ssize_t n=10):
        return self.top(ASK, n)

    def fill_cost(self, int side, int64_t qty):
        """Walk the book to buy (side=BID: take asks) or sell (side=ASK: hit bids) qty.

        Returns (filled_qty_steps, cost) with cost exact in tick*step units, as Python
        ints (the cost of a deep walk can exceed int64). filled < qty when the book runs
        out. The average price in ticks is cost / filled.
        """
        if qty <= 0:
            raise ValueError(f"fill_cost quantity must be positive, got {qty}")
        cdef const BookSide* s = &self._asks if side == BID else &self._bids
        cdef int64_t sign = -1 if side == BID else 1
        cdef int64_t left = qty
        cdef int64_t take
        cdef abidance_i128 cost = 0
        cdef Py_ssize_t i = s.n - 1
        while i >= 0 and left > 0:
            take = s.levels[i].qty if s.levels[i].qty < left else left
            cost += <abidance_i128>(sign * s.levels[i].key) * take
            left -= take
            i -= 1
        hi = <int64_t>(cost >> 64)
        lo = <uint64_t>cost
        return qty - left, (int(hi) << 64) | int(lo)

    def average_fill_price(self, int side, int64_t qty):
        """Average price in ticks to fill qty by walking the book, or None if it is empty."""
        filled, cost = self.fill_cost(side, qty)
        return cost / filled if filled else None

    def __repr__(self):
        state = "ready" if self.ready else self.resync_message
        return (f"OrderBook({self.symbol!r}, bids={self._bids.n}, asks={self._asks.n}, "
                f"last_update_id={self.last_update_id}, {state})")


cdef inline const int64_t* _cptr(const int64_t[::1] v) noexcept:
    return &v[0] if v.shape[0] else NULL


cdef inline int64_t* _ptr(int64_t[::1] v) noexcept:
    return &v[0] if v.shape[0] else NULL


def _levels_array(levels):
    arr = np.asarray(levels)
    if arr.size == 0:
        return np.empty((0, 2), dtype=np.int64)
    if arr.dtype.kind not in "iu":
        # Floats would truncate silently: levels must already be fixed-point integers.
        raise ValueError(f"levels must be integer ticks/steps, got dtype {arr.dtype}")
    arr = arr.astype(np.int64, copy=False)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"levels must be (n, 2) [[price, qty], ...], got shape {arr.shape}")
    return np.ascontiguousarray(arr)


def _bench_apply_diffs(OrderBook book, const int64_t[::1] first_ids, const int64_t[::1] final_ids,
                       const Py_ssize_t[::1] bid_off, const int64_t[::1] bid_px, const int64_t[::1] bid_qty,
                       const Py_ssize_t[::1] ask_off, const int64_t[::1] ask_px, const int64_t[::1] ask_qty):
    """Apply a batch of pre-parsed diffs from a C loop (how the connector calls the book).

    Diff i's bids are bid_px[bid_off[i]:bid_off[i+1]] (asks alike). Returns how many
    diffs were APPLIED. For benchmarks and the replay command.
    """
    cdef Py_ssize_t i, n = first_ids.shape[0], applied = 0
    cdef Py_ssize_t b0, b1, a0, a1
    with nogil:
        for i in range(n):
            b0 = bid_off[i]
            b1 = bid_off[i + 1]
            a0 = ask_off[i]
            a1 = ask_off[i + 1]
            if book.apply_diff_c(first_ids[i], final_ids[i],
                                 &bid_px[b0], &bid_qty[b0], b1 - b0,
                                 &ask_px[a0], &ask_qty[a0], a1 - a0) == APPLIED:
                applied += 1
    return applied
