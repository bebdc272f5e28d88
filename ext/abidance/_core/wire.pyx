"""Binance market-stream frames (raw bytes) -> typed internal events.

The hot shapes (trade, aggTrade, depthUpdate, bookTicker, kline) are read by a strict
single-pass scanner straight from the frame: no Python objects are built except the
event. Anything unusual (escaped or non-ASCII text, replies to requests, malformed
JSON) takes the slow path through orjson, which either normalises the frame for a
second scan or names what is wrong. The scanner accepts only valid JSON.

Every field is checked: type, range, and exact conversion of decimal text to the
instrument's ticks/steps; times become int64 ns. A frame that fails a check is
dropped: `parse` returns None, `drop_counts[reason]` goes up and `last_error` names
the event, the field and the value. Nothing on this path raises.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE, PyBytes_FromStringAndSize
from libc.stdint cimport int64_t, INT64_MAX
from libc.stdlib cimport malloc, realloc, free
from libc.string cimport memcmp

from abidance._core.fixed cimport FixedPoint, PARSE_OK
from abidance._core.book cimport OrderBook

import numpy as np
from decimal import Decimal

import orjson

cdef extern from "Python.h":
    int PyObject_GetBuffer(object obj, Py_buffer* view, int flags) except -1
    void PyBuffer_Release(Py_buffer* view)
    int PyBUF_SIMPLE

DEF MAX_LEVELS = 100000          # per side per frame: bounds memory on hostile input
DEF MAX_DEPTH = 32               # nesting allowed in skipped values
cdef int64_t MAX_MS = INT64_MAX // 1000000

_JSONDecodeError = orjson.JSONDecodeError

# Kinds of scanned values.
cdef enum:
    K_STR = 1
    K_INT = 2          # an integer that fits int64
    K_BIGINT = 3       # an integer that does not
    K_NUM = 4          # a number with a fraction or exponent
    K_TRUE = 5
    K_FALSE = 6
    K_NULL = 7
    K_OBJ = 8
    K_ARR = 9

# Field check results.
cdef enum:
    F_OK = 0
    F_MISSING = 1
    F_TYPE = 2
    F_RANGE = 3
    F_DECIMAL = 4

_FIELD_TEXT = {F_MISSING: "missing", F_TYPE: "wrong type", F_RANGE: "out of range",
               F_DECIMAL: "not an exact decimal of the instrument's increment"}


# ---- scanner: each returns the position after the value, or NULL for "use the slow path"

cdef inline const char* skip_ws(const char* p, const char* end) noexcept nogil:
    while p < end and (p[0] == 32 or p[0] == 10 or p[0] == 13 or p[0] == 9):
        p += 1
    return p


cdef const char* scan_string(const char* p, const char* end, Span* s) noexcept nogil:
    # p is at the opening quote. Escapes, control and non-ASCII bytes go to the slow path.
    cdef const char* start = p + 1
    cdef unsigned char c
    p = start
    while p < end:
        c = <unsigned char>p[0]
        if c == 34:
            s.p = start
            s.n = p - start
            s.kind = K_STR
            return p + 1
        if c == 92 or c < 32 or c >= 128:
            return NULL
        p += 1
    return NULL


cdef inline bint is_digit(char c) noexcept nogil:
    return 48 <= c <= 57


cdef const char* scan_number(const char* p, const char* end, Span* s) noexcept nogil:
    cdef const char* start = p
    cdef bint neg = False
    cdef int64_t acc = 0
    cdef int d
    cdef bint big = False
    if p < end and p[0] == 45:
        neg = True
        p += 1
    if p >= end or not is_digit(p[0]):
        return NULL
    if p[0] == 48 and p + 1 < end and is_digit(p[1]):
        return NULL                      # JSON forbids leading zeros
    while p < end and is_digit(p[0]):
        d = p[0] - 48
        if acc > (INT64_MAX - d) // 10:
            big = True
        else:
            acc = acc * 10 + d
        p += 1
    s.kind = K_BIGINT if big else K_INT
    if p < end and p[0] == 46:           # fraction
        p += 1
        if p >= end or not is_digit(p[0]):
            return NULL
        while p < end and is_digit(p[0]):
            p += 1
        s.kind = K_NUM
    if p < end and (p[0] == 101 or p[0] == 69):   # exponent
        p += 1
        if p < end and (p[0] == 43 or p[0] == 45):
            p += 1
        if p >= end or not is_digit(p[0]):
            return NULL
        while p < end and is_digit(p[0]):
            p += 1
        s.kind = K_NUM
    if p >= end:
        return NULL                      # a number cannot end a valid frame
    s.p = start
    s.n = p - start
    s.ival = -acc if neg else acc
    return p


cdef inline const char* scan_literal(const char* p, const char* end, const char* word,
                                     Py_ssize_t n, int kind, Span* s) noexcept nogil:
    if end - p < n or memcmp(p, word, n) != 0:
        return NULL
    s.p = p
    s.n = n
    s.kind = kind
    return p + n


cdef const char* skip_container(const char* p, const char* end, int depth) noexcept nogil:
    # p is at '{' or '['; validates and skips the whole value.
    cdef Span tmp
    cdef bint is_obj = p[0] == 123
    cdef char close = 125 if is_obj else 93
    if depth > MAX_DEPTH:
        return NULL
    p = skip_ws(p + 1, end)
    if p < end and p[0] == close:
        return p + 1
    while p < end:
        if is_obj:
            if p[0] != 34:
                return NULL
            p = scan_string(p, end, &tmp)
            if p == NULL:
                return NULL
            p = skip_ws(p, end)
            if p >= end or p[0] != 58:
                return NULL
            p = skip_ws(p + 1, end)
        p = scan_value(p, end, &tmp, depth + 1)
        if p == NULL:
            return NULL
        p = skip_ws(p, end)
        if p >= end:
            return NULL
        if p[0] == close:
            return p + 1
        if p[0] != 44:
            return NULL
        p = skip_ws(p + 1, end)
    return NULL


cdef const char* scan_value(const char* p, const char* end, Span* s, int depth) noexcept nogil:
    cdef const char* start = p
    cdef char c
    if p >= end:
        return NULL
    c = p[0]
    if c == 34:
        return scan_string(p, end, s)
    if c == 45 or is_digit(c):
        return scan_number(p, end, s)
    if c == 116:
        return scan_literal(p, end, "true", 4, K_TRUE, s)
    if c == 102:
        return scan_literal(p, end, "false", 5, K_FALSE, s)
    if c == 110:
        return scan_literal(p, end, "null", 4, K_NULL, s)
    if c == 123 or c == 91:
        p = skip_container(p, end, depth)
        if p == NULL:
            return NULL
        s.p = start
        s.n = p - start
        s.kind = K_OBJ if c == 123 else K_ARR
        return p
    return NULL


cdef const char* scan_object(const char* p, const char* end, Span* table, unsigned int gen,
                             bint top, Span* stream, Span* inner_table) noexcept nogil:
    """Record every single-letter key of the object at p into table[letter].

    At the top level, "stream" is recorded and a "data" object is scanned into the same
    table (the combined-stream wrapper); other longer keys are validated and skipped.
    """
    cdef Span key
    cdef Span tmp
    cdef Span* slot
    cdef unsigned char k
    cdef bint seen_data = False
    cdef bint seen_letter = False
    if p >= end or p[0] != 123:
        return NULL
    p = skip_ws(p + 1, end)
    if p < end and p[0] == 125:
        return p + 1
    while p < end:
        if p[0] != 34:
            return NULL
        p = scan_string(p, end, &key)
        if p == NULL:
            return NULL
        p = skip_ws(p, end)
        if p >= end or p[0] != 58:
            return NULL
        p = skip_ws(p + 1, end)
        if key.n == 1:
            k = <unsigned char>key.p[0]
            slot = &table[k & 127]
            p = scan_value(p, end, slot, 1)
            slot.gen = gen
            seen_letter = True
        elif top and key.n == 4 and memcmp(key.p, "data", 4) == 0:
            # A combined frame's event is "data" alone. A "data" that is not an object or
            # comes twice, or event keys beside it, would mix two objects in one table:
            # the slow path reads those frames as JSON does (last key wins, data only).
            if seen_data or p >= end or p[0] != 123:
                return NULL
            seen_data = True
            p = scan_object(p, end, table, gen, False, stream, inner_table)
        elif top and key.n == 6 and memcmp(key.p, "stream", 6) == 0:
            p = scan_value(p, end, stream, 1)
            stream.gen = gen
        else:
            p = scan_value(p, end, &tmp, 1)
        if p == NULL:
            return NULL
        p = skip_ws(p, end)
        if p >= end:
            return NULL
        if p[0] == 125:
            if top and seen_data and seen_letter:
                return NULL
            return p + 1
        if p[0] != 44:
            return NULL
        p = skip_ws(p + 1, end)
    return NULL


# ---- field readers over a scanned table

cdef inline int get_int(Span* t, unsigned int gen, int key, int64_t* out) noexcept nogil:
    cdef Span* s = &t[key]
    if s.gen != gen:
        return F_MISSING
    if s.kind == K_BIGINT:
        return F_RANGE
    if s.kind != K_INT:
        return F_TYPE
    if s.ival < 0:
        return F_RANGE
    out[0] = s.ival
    return F_OK


cdef inline int get_ms_as_ns(Span* t, unsigned int gen, int key, int64_t* out) noexcept nogil:
    cdef int64_t ms = 0
    cdef int st = get_int(t, gen, key, &ms)
    if st != F_OK:
        return st
    if ms > MAX_MS:
        return F_RANGE
    out[0] = ms * 1000000
    return F_OK


cdef inline int get_bool(Span* t, unsigned int gen, int key, bint* out) noexcept nogil:
    cdef Span* s = &t[key]
    if s.gen != gen:
        return F_MISSING
    if s.kind == K_TRUE:
        out[0] = True
    elif s.kind == K_FALSE:
        out[0] = False
    else:
        return F_TYPE
    return F_OK


cdef inline int get_units(Span* t, unsigned int gen, int key, FixedPoint fp, int64_t* out,
                          bint positive) noexcept:
    cdef Span* s = &t[key]
    if s.gen != gen:
        return F_MISSING
    if s.kind != K_STR:
        return F_TYPE
    if fp.units_c(s.p, s.n, out) != PARSE_OK:
        return F_DECIMAL
    if positive and out[0] == 0:
        return F_RANGE
    return F_OK


cdef inline bint span_is(Span* s, const char* word, Py_ssize_t n) noexcept nogil:
    return s.kind == K_STR and s.n == n and memcmp(s.p, word, n) == 0


cdef str span_str(Span* s):
    # The whole value (span_text is for messages: it cuts at 60). Spans are ASCII.
    return PyBytes_FromStringAndSize(s.p, s.n).decode("ascii")


cdef bint plain_decimal(Span* s) noexcept nogil:
    # The grammar FixedPoint accepts: digits with at most one '.', at least one digit.
    cdef Py_ssize_t i
    cdef bint dot = False, digit = False
    for i in range(s.n):
        if s.p[i] == 46:
            if dot:
                return False
            dot = True
        elif is_digit(s.p[i]):
            digit = True
        else:
            return False
    return digit


def _preview(obj):
    # repr for a message; orjson nests up to 1024 deep, deeper than repr can go.
    try:
        return repr(obj)[:60]
    except RecursionError:
        return f"{type(obj).__name__} nested too deep to show"


cdef str span_text(Span* s):
    if s.n <= 0:
        return ""
    text = PyBytes_FromStringAndSize(s.p, min(s.n, 60)).decode("utf-8", "replace")
    return text if s.n <= 60 else text + "..."


cdef class InstrumentCodec:
    """How one symbol's decimal text maps to int64: its tick (price) and step (quantity)."""

    def __init__(self, str symbol, price_increment, qty_increment):
        self.symbol = symbol
        self.price = price_increment if isinstance(price_increment, FixedPoint) else FixedPoint(price_increment)
        self.qty = qty_increment if isinstance(qty_increment, FixedPoint) else FixedPoint(qty_increment)

    def __repr__(self):
        return f"InstrumentCodec({self.symbol!r}, {str(self.price.increment)!r}, {str(self.qty.increment)!r})"


cdef class TradeEvent:
    def __repr__(self):
        return (f"TradeEvent({self.symbol} #{self.trade_id} px={self.price} qty={self.qty} "
                f"maker={'buyer' if self.buyer_is_maker else 'seller'} ts={self.ts_event})")


def trade_event(str symbol, int64_t trade_id, int64_t price, int64_t qty, bint buyer_is_maker,
                int64_t ts_trade, int64_t ts_event=-1, int64_t ts_init=-1):
    """A TradeEvent from values already in ticks and steps (recorded trades, backtests).
    Checked as the parser checks a frame: positive price and quantity."""
    if price <= 0 or qty <= 0:
        raise ValueError(f"trade {symbol} #{trade_id}: price and quantity must be > 0 ticks/steps, "
                         f"got {price} / {qty}")
    cdef TradeEvent ev = TradeEvent.__new__(TradeEvent)
    ev.symbol = symbol
    ev.trade_id = trade_id
    ev.price = price
    ev.qty = qty
    ev.buyer_is_maker = buyer_is_maker
    ev.ts_trade = ts_trade
    ev.ts_event = ts_trade if ts_event < 0 else ts_event
    ev.ts_init = ev.ts_event if ts_init < 0 else ts_init
    return ev


cdef class AggTradeEvent:
    def __repr__(self):
        return (f"AggTradeEvent({self.symbol} #{self.agg_id} [{self.first_trade_id}..{self.last_trade_id}] "
                f"px={self.price} qty={self.qty})")


cdef class BookTickerEvent:
    def __repr__(self):
        return (f"BookTickerEvent({self.symbol} u={self.update_id} {self.bid_qty}@{self.bid_price} / "
                f"{self.ask_qty}@{self.ask_price})")


cdef class DepthDiffEvent:
    def __dealloc__(self):
        free(self._data)

    cpdef int apply_to(self, OrderBook book):
        """Apply to a book (U/u rules in the book); returns its BookStatus code."""
        cdef Py_ssize_t nb = self.n_bids, na = self.n_asks
        cdef int64_t* d = self._data
        if book is None:                 # a typed argument admits None: it would crash below
            raise TypeError("apply_to() needs an OrderBook, not None")
        return book.apply_diff_c(self.first_id, self.final_id, d, d + nb, nb, d + 2 * nb, d + 2 * nb + na, na)

    cdef object _side(self, Py_ssize_t offset, Py_ssize_t n):
        out = np.empty((n, 2), dtype=np.int64)
        cdef int64_t[:, ::1] v = out
        cdef Py_ssize_t i
        for i in range(n):
            v[i, 0] = self._data[offset + i]
            v[i, 1] = self._data[offset + n + i]
        return out

    def bids(self):
        """[[price_ticks, qty_steps], ...] as an (n, 2) int64 array, in message order."""
        return self._side(0, self.n_bids)

    def asks(self):
        return self._side(2 * self.n_bids, self.n_asks)

    def __repr__(self):
        return f"DepthDiffEvent({self.symbol} U={self.first_id} u={self.final_id} bids={self.n_bids} asks={self.n_asks})"


cdef class KlineEvent:
    def __repr__(self):
        return (f"KlineEvent({self.symbol} {self.interval} t={self.open_time} o={self.open} h={self.high} "
                f"l={self.low} c={self.close} v={self.volume} closed={self.closed})")


cdef class StreamResponse:
    """A reply to SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS."""

    def __init__(self, request_id, result, error):
        self.request_id = request_id
        self.result = result
        self.error = error

    def __repr__(self):
        return f"StreamResponse(id={self.request_id!r}, result={self.result!r}, error={self.error!r})"


cdef class MarketParser:
    """Parses market-stream frames for the symbols it has codecs for.

    `parse(raw, ts_init)` takes bytes (or any buffer) and returns a TradeEvent,
    AggTradeEvent, DepthDiffEvent, BookTickerEvent, KlineEvent, a StreamResponse
    (reply to SUBSCRIBE & co.), or None when the frame was dropped.
    """

    def __cinit__(self):
        self._gen = 0
        self._scratch = NULL
        self._scratch_cap = 0

    def __init__(self, codecs=()):
        self._codecs = {}
        self._last_codec = None
        self._last_symbol = b""
        self.parsed = 0
        self.dropped = 0
        self.slow_path = 0
        self.drop_counts = {}
        self.last_error = ""
        for codec in codecs:
            self.add(codec)

    def __dealloc__(self):
        free(self._scratch)

    def add(self, InstrumentCodec codec):
        self._codecs[codec.symbol.encode("ascii")] = codec

    def codec(self, str symbol):
        return self._codecs.get(symbol.encode("ascii", "replace"))

    @property
    def symbols(self):
        return sorted(c.symbol for c in self._codecs.values())

    @property
    def last_stream(self) -> str:
        """The "stream" name of the last frame that had one (combined streams)."""
        return self._stream_name.decode("ascii") if self._stream_name is not None else ""

    cdef object _drop(self, str reason, str detail):
        self.dropped += 1
        self.drop_counts[reason] = self.drop_counts.get(reason, 0) + 1
        self.last_error = f"{reason}: {detail}"
        return None

    cdef object _bad_field(self, str event, Span* table, int key, int status):
        cdef Span* s = &table[key]
        value = span_text(s) if s.gen == self._gen else ""
        return self._drop("bad_field", f"{event}.{chr(key)} {_FIELD_TEXT[status]}: {value!r}")

    cdef InstrumentCodec _codec_of(self):
        cdef Span* s = &self._f[115]   # 's'
        if s.gen != self._gen or s.kind != K_STR:
            return None
        if self._last_codec is not None and PyBytes_GET_SIZE(self._last_symbol) == s.n \
                and memcmp(PyBytes_AS_STRING(self._last_symbol), s.p, s.n) == 0:
            return self._last_codec
        key = PyBytes_FromStringAndSize(s.p, s.n)
        codec = self._codecs.get(key)
        if codec is not None:
            self._last_codec = codec
            self._last_symbol = key
        return codec

    cpdef object parse(self, object raw, int64_t ts_init):
        cdef Py_buffer view
        cdef bint fallback = False
        cdef object event
        if type(raw) is bytes:
            event = self._parse_fast(PyBytes_AS_STRING(raw), PyBytes_GET_SIZE(raw), ts_init, &fallback)
        else:
            try:
                PyObject_GetBuffer(raw, &view, PyBUF_SIMPLE)
            except (TypeError, BufferError, ValueError):
                # str, None..., a non-contiguous view, a released memoryview
                return self._drop("malformed_json", f"frame is {type(raw).__name__}, not a contiguous byte buffer")
            try:
                event = self._parse_fast(<const char*>view.buf, view.len, ts_init, &fallback)
                if fallback:   # orjson takes bytes, bytearray, memoryview or str only
                    raw = PyBytes_FromStringAndSize(<const char*>view.buf, view.len)
            finally:
                PyBuffer_Release(&view)
        if fallback:
            return self._parse_slow(raw, ts_init)
        return event

    cdef object _parse_fast(self, const char* p, Py_ssize_t n, int64_t ts_init, bint* fallback):
        cdef const char* end = p + n
        self._gen += 1
        if self._gen == 0:        # wrapped: a stale slot must never look current
            self._gen = 1
            for i in range(128):
                self._f[i].gen = 0
                self._k[i].gen = 0
            self._stream.gen = 0
        p = scan_object(skip_ws(p, end), end, self._f, self._gen, True, &self._stream, self._k)
        if p == NULL or skip_ws(p, end) != end:
            self._stream_name = None
            fallback[0] = True
            return None
        # Keep the stream name as our own bytes: the frame buffer is the caller's and may be
        # reused or freed after parse() returns. Copied only when the name changes.
        cdef Span* st = &self._stream
        if st.gen == self._gen and st.kind == K_STR:
            if self._stream_name is None or PyBytes_GET_SIZE(self._stream_name) != st.n \
                    or memcmp(PyBytes_AS_STRING(self._stream_name), st.p, st.n) != 0:
                self._stream_name = PyBytes_FromStringAndSize(st.p, st.n)
        else:
            self._stream_name = None
        cdef Span* e = &self._f[101]     # 'e'
        cdef InstrumentCodec c
        cdef object event
        if e.gen == self._gen:
            c = self._codec_of()
            if span_is(e, "depthUpdate", 11):
                event = self._depth(c, ts_init) if c is not None else self._unknown_symbol("depthUpdate")
            elif span_is(e, "trade", 5):
                event = self._trade(c, ts_init) if c is not None else self._unknown_symbol("trade")
            elif span_is(e, "aggTrade", 8):
                event = self._agg_trade(c, ts_init) if c is not None else self._unknown_symbol("aggTrade")
            elif span_is(e, "kline", 5):
                event = self._kline(c, ts_init) if c is not None else self._unknown_symbol("kline")
            else:
                return self._drop("unknown_event", f"e={span_text(e)!r}")
        elif self._f[117].gen == self._gen and self._f[98].gen == self._gen:   # 'u' and 'b': bookTicker
            c = self._codec_of()
            event = self._book_ticker(c, ts_init) if c is not None else self._unknown_symbol("bookTicker")
        else:
            fallback[0] = True         # replies and rarer shapes: classified on the slow path
            return None
        if event is not None:
            self.parsed += 1
        return event

    cdef object _parse_slow(self, object raw, int64_t ts_init):
        cdef bint fallback = False
        self.slow_path += 1
        try:
            msg = orjson.loads(raw)
        except _JSONDecodeError as exc:
            return self._drop("malformed_json", str(exc))
        if type(msg) is not dict:
            return self._drop("not_an_object", _preview(msg))
        data = msg.get("data", msg)
        if type(data) is not dict:
            return self._drop("not_an_object", f"data: {_preview(data)}")
        if "e" not in data and not ("u" in data and "b" in data):
            # Classified in the fast path's order: an event shape first, then the rest.
            if data is msg and "id" in msg and ("result" in msg or "error" in msg):
                return StreamResponse(msg.get("id"), msg.get("result"), msg.get("error"))
            if "lastUpdateId" in data:
                return self._drop("unsupported", "partial book depth stream: use the diff stream")
            return self._drop("unknown_event", f"no event type in {_preview(data)}")
        # Valid JSON the scanner would not take (escaped text, keys beside "data"):
        # normalise to the canonical shape and scan again.
        if data is not msg:
            msg = {"stream": msg["stream"], "data": data} if "stream" in msg else {"data": data}
        try:
            norm = orjson.dumps(msg)
        except orjson.JSONEncodeError:       # nested deeper than orjson writes (255)
            return self._drop("bad_field", f"nested too deep: {_preview(data)}")
        event = self._parse_fast(PyBytes_AS_STRING(norm), PyBytes_GET_SIZE(norm), ts_init, &fallback)
        if fallback:
            return self._drop("bad_field", "text the scanner does not take (non-ASCII or control characters, "
                                           f"or nested deeper than {MAX_DEPTH}): {_preview(data)}")
        return event

    def _unknown_symbol(self, str event):
        return self._drop("unknown_symbol", f"{event}.s={span_text(&self._f[115])!r}")

    cdef object _trade(self, InstrumentCodec c, int64_t ts_init):
        cdef Span* f = self._f
        cdef unsigned int g = self._gen
        cdef TradeEvent ev = TradeEvent.__new__(TradeEvent)
        cdef int st
        st = get_int(f, g, 116, &ev.trade_id)                       # t
        if st: return self._bad_field("trade", f, 116, st)
        st = get_units(f, g, 112, c.price, &ev.price, True)          # p
        if st: return self._bad_field("trade", f, 112, st)
        st = get_units(f, g, 113, c.qty, &ev.qty, True)              # q
        if st: return self._bad_field("trade", f, 113, st)
        st = get_ms_as_ns(f, g, 84, &ev.ts_trade)                    # T
        if st: return self._bad_field("trade", f, 84, st)
        st = get_ms_as_ns(f, g, 69, &ev.ts_event)                    # E
        if st: return self._bad_field("trade", f, 69, st)
        st = get_bool(f, g, 109, &ev.buyer_is_maker)                 # m
        if st: return self._bad_field("trade", f, 109, st)
        ev.symbol = c.symbol
        ev.ts_init = ts_init
        return ev

    cdef object _agg_trade(self, InstrumentCodec c, int64_t ts_init):
        cdef Span* f = self._f
        cdef unsigned int g = self._gen
        cdef AggTradeEvent ev = AggTradeEvent.__new__(AggTradeEvent)
        cdef int st
        st = get_int(f, g, 97, &ev.agg_id)                           # a
        if st: return self._bad_field("aggTrade", f, 97, st)
        st = get_int(f, g, 102, &ev.first_trade_id)                  # f
        if st: return self._bad_field("aggTrade", f, 102, st)
        st = get_int(f, g, 108, &ev.last_trade_id)                   # l
        if st: return self._bad_field("aggTrade", f, 108, st)
        if ev.last_trade_id < ev.first_trade_id:
            return self._bad_field("aggTrade", f, 108, F_RANGE)
        st = get_units(f, g, 112, c.price, &ev.price, True)
        if st: return self._bad_field("aggTrade", f, 112, st)
        st = get_units(f, g, 113, c.qty, &ev.qty, True)
        if st: return self._bad_field("aggTrade", f, 113, st)
        st = get_ms_as_ns(f, g, 84, &ev.ts_trade)
        if st: return self._bad_field("aggTrade", f, 84, st)
        st = get_ms_as_ns(f, g, 69, &ev.ts_event)
        if st: return self._bad_field("aggTrade", f, 69, st)
        st = get_bool(f, g, 109, &ev.buyer_is_maker)
        if st: return self._bad_field("aggTrade", f, 109, st)
        ev.symbol = c.symbol
        ev.ts_init = ts_init
        return ev

    cdef object _book_ticker(self, InstrumentCodec c, int64_t ts_init):
        cdef Span* f = self._f
        cdef unsigned int g = self._gen
        cdef BookTickerEvent ev = BookTickerEvent.__new__(BookTickerEvent)
        cdef int st
        st = get_int(f, g, 117, &ev.update_id)                       # u
        if st: return self._bad_field("bookTicker", f, 117, st)
        st = get_units(f, g, 98, c.price, &ev.bid_price, False)      # b
        if st: return self._bad_field("bookTicker", f, 98, st)
        st = get_units(f, g, 66, c.qty, &ev.bid_qty, False)          # B
        if st: return self._bad_field("bookTicker", f, 66, st)
        st = get_units(f, g, 97, c.price, &ev.ask_price, False)      # a
        if st: return self._bad_field("bookTicker", f, 97, st)
        st = get_units(f, g, 65, c.qty, &ev.ask_qty, False)          # A
        if st: return self._bad_field("bookTicker", f, 65, st)
        if ev.bid_price and ev.ask_price and ev.bid_price >= ev.ask_price:
            return self._drop("bad_field", f"bookTicker crossed: bid {span_text(&f[98])} >= ask {span_text(&f[97])}")
        if f[69].gen == g:   # spot bookTicker has no event time; some venues add E
            st = get_ms_as_ns(f, g, 69, &ev.ts_event)
            if st: return self._bad_field("bookTicker", f, 69, st)
        else:
            ev.ts_event = ts_init
        ev.symbol = c.symbol
        ev.ts_init = ts_init
        return ev

    cdef Py_ssize_t _levels(self, Span* s, FixedPoint px, FixedPoint qty) except -2:
        """Read [[price, qty], ...] into the scratch buffer as pairs.

        Returns the number of levels, or -1 after recording a drop (shape or value).
        """
        cdef const char* p = s.p
        cdef const char* end = s.p + s.n
        cdef Span a, b
        cdef Py_ssize_t count = 0
        cdef Py_ssize_t new_cap
        cdef int64_t* grown
        if s.kind != K_ARR:
            self._drop("bad_levels", f"levels must be a list: {span_text(s)!r}")
            return -1
        p = skip_ws(p + 1, end)
        if p < end and p[0] == 93:
            return 0
        while p < end:
            # The frame was validated as JSON by the scan; only the shape is checked here.
            if p[0] != 91:
                break
            p = skip_ws(p + 1, end)
            if p >= end or p[0] != 34:
                break
            p = skip_ws(scan_string(p, end, &a), end)
            if p >= end or p[0] != 44:
                break
            p = skip_ws(p + 1, end)
            if p >= end or p[0] != 34:
                break
            p = skip_ws(scan_string(p, end, &b), end)
            if p >= end or p[0] != 93:
                break
            if count >= MAX_LEVELS:
                self._drop("bad_levels", f"more than {MAX_LEVELS} levels")
                return -1
            if 2 * count + 2 > self._scratch_cap:
                new_cap = max(256, 2 * self._scratch_cap)
                grown = <int64_t*>realloc(self._scratch, new_cap * sizeof(int64_t))
                if grown == NULL:
                    self._drop("out_of_memory", f"{count} levels")
                    return -1
                self._scratch = grown
                self._scratch_cap = new_cap
            if px.units_c(a.p, a.n, &self._scratch[2 * count]) != PARSE_OK or self._scratch[2 * count] == 0:
                self._drop("bad_levels", f"level {count} price {span_text(&a)!r}")
                return -1
            if qty.units_c(b.p, b.n, &self._scratch[2 * count + 1]) != PARSE_OK:
                self._drop("bad_levels", f"level {count} quantity {span_text(&b)!r}")
                return -1
            count += 1
            p = skip_ws(p + 1, end)
            if p < end and p[0] == 44:
                p = skip_ws(p + 1, end)
            elif p < end and p[0] == 93:
                return count
            else:
                break
        self._drop("bad_levels", f"level {count} is not a [price, quantity] pair of strings")
        return -1

    cdef object _depth(self, InstrumentCodec c, int64_t ts_init):
        cdef Span* f = self._f
        cdef unsigned int g = self._gen
        cdef int64_t first_id = 0, final_id = 0, ts_event = 0
        cdef int st
        cdef Py_ssize_t nb, na, i
        cdef int64_t* d
        st = get_int(f, g, 85, &first_id)                            # U
        if st: return self._bad_field("depthUpdate", f, 85, st)
        st = get_int(f, g, 117, &final_id)                           # u
        if st: return self._bad_field("depthUpdate", f, 117, st)
        if first_id > final_id:
            return self._drop("bad_ids", f"depthUpdate U={first_id} > u={final_id}")
        st = get_ms_as_ns(f, g, 69, &ts_event)
        if st: return self._bad_field("depthUpdate", f, 69, st)
        if f[98].gen != g or f[97].gen != g:
            return self._drop("bad_levels", "depthUpdate without b or a")
        cdef DepthDiffEvent ev = DepthDiffEvent.__new__(DepthDiffEvent)
        nb = self._levels(&f[98], c.price, c.qty)
        if nb < 0:
            reason, _, detail = self.last_error.partition(": ")
            self.last_error = f"{reason}: depthUpdate.b {detail}"
            return None
        ev._data = <int64_t*>malloc((2 * nb + 1) * sizeof(int64_t))
        if ev._data == NULL:
            return self._drop("out_of_memory", f"depthUpdate with {nb} bids")
        d = ev._data
        for i in range(nb):
            d[i] = self._scratch[2 * i]
            d[nb + i] = self._scratch[2 * i + 1]
        na = self._levels(&f[97], c.price, c.qty)
        if na < 0:
            reason, _, detail = self.last_error.partition(": ")
            self.last_error = f"{reason}: depthUpdate.a {detail}"
            return None
        d = <int64_t*>realloc(ev._data, (2 * (nb + na) + 1) * sizeof(int64_t))
        if d == NULL:
            return self._drop("out_of_memory", f"depthUpdate with {na} asks")
        ev._data = d
        for i in range(na):
            d[2 * nb + i] = self._scratch[2 * i]
            d[2 * nb + na + i] = self._scratch[2 * i + 1]
        ev.symbol = c.symbol
        ev.first_id = first_id
        ev.final_id = final_id
        ev.ts_event = ts_event
        ev.ts_init = ts_init
        ev.n_bids = nb
        ev.n_asks = na
        return ev

    cdef object _kline(self, InstrumentCodec c, int64_t ts_init):
        cdef Span* f = self._f
        cdef Span* k = self._k
        cdef unsigned int g = self._gen
        cdef Span* ks = &f[107]
        if ks.gen != g or ks.kind != K_OBJ:
            return self._drop("bad_field", "kline.k must be an object")
        if scan_object(ks.p, ks.p + ks.n, k, g, False, &self._stream, k) == NULL:
            return self._drop("bad_field", "kline.k is not a flat object")
        cdef KlineEvent ev = KlineEvent.__new__(KlineEvent)
        cdef int st
        if k[105].gen != g or k[105].kind != K_STR or k[105].n == 0:     # i
            return self._bad_field("kline", k, 105, F_TYPE if k[105].gen == g else F_MISSING)
        st = get_ms_as_ns(k, g, 116, &ev.open_time)                  # t
        if st: return self._bad_field("kline", k, 116, st)
        st = get_ms_as_ns(k, g, 84, &ev.close_time)                  # T
        if st: return self._bad_field("kline", k, 84, st)
        if ev.close_time < ev.open_time:
            return self._bad_field("kline", k, 84, F_RANGE)
        st = get_units(k, g, 111, c.price, &ev.open, True)           # o
        if st: return self._bad_field("kline", k, 111, st)
        st = get_units(k, g, 104, c.price, &ev.high, True)           # h
        if st: return self._bad_field("kline", k, 104, st)
        st = get_units(k, g, 108, c.price, &ev.low, True)            # l
        if st: return self._bad_field("kline", k, 108, st)
        st = get_units(k, g, 99, c.price, &ev.close, True)           # c
        if st: return self._bad_field("kline", k, 99, st)
        if ev.high < ev.low or ev.high < ev.open or ev.high < ev.close or ev.low > ev.open or ev.low > ev.close:
            return self._drop("bad_field", f"kline OHLC inconsistent: o={span_text(&k[111])} h={span_text(&k[104])} "
                                           f"l={span_text(&k[108])} c={span_text(&k[99])}")
        st = get_units(k, g, 118, c.qty, &ev.volume, False)          # v
        if st: return self._bad_field("kline", k, 118, st)
        st = get_int(k, g, 110, &ev.trades)                          # n
        if st: return self._bad_field("kline", k, 110, st)
        st = get_bool(k, g, 120, &ev.closed)                         # x
        if st: return self._bad_field("kline", k, 120, st)
        st = get_ms_as_ns(f, g, 69, &ev.ts_event)
        if st: return self._bad_field("kline", f, 69, st)
        if k[113].gen != g or k[113].kind != K_STR:                  # q
            return self._bad_field("kline", k, 113, F_TYPE if k[113].gen == g else F_MISSING)
        if not plain_decimal(&k[113]):       # as strict as the other fields: no sign, exponent, spaces
            return self._bad_field("kline", k, 113, F_DECIMAL)
        ev.quote_volume = Decimal(span_str(&k[113]))
        ev.symbol = c.symbol
        ev.interval = span_str(&k[105])
        ev.ts_init = ts_init
        return ev
