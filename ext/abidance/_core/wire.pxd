# Binance market-stream messages -> typed internal events.
from libc.stdint cimport int64_t

from abidance._core.fixed cimport FixedPoint
from abidance._core.book cimport OrderBook


cdef class InstrumentCodec:
    cdef readonly str symbol
    cdef readonly FixedPoint price
    cdef readonly FixedPoint qty


cdef class TradeEvent:
    cdef readonly str symbol
    cdef readonly int64_t trade_id
    cdef readonly int64_t price          # ticks
    cdef readonly int64_t qty            # steps
    cdef readonly bint buyer_is_maker
    cdef readonly int64_t ts_trade       # ns
    cdef readonly int64_t ts_event       # ns
    cdef readonly int64_t ts_init        # ns


cdef class AggTradeEvent:
    cdef readonly str symbol
    cdef readonly int64_t agg_id
    cdef readonly int64_t first_trade_id
    cdef readonly int64_t last_trade_id
    cdef readonly int64_t price
    cdef readonly int64_t qty
    cdef readonly bint buyer_is_maker
    cdef readonly int64_t ts_trade
    cdef readonly int64_t ts_event
    cdef readonly int64_t ts_init


cdef class BookTickerEvent:
    cdef readonly str symbol
    cdef readonly int64_t update_id
    cdef readonly int64_t bid_price
    cdef readonly int64_t bid_qty
    cdef readonly int64_t ask_price
    cdef readonly int64_t ask_qty
    cdef readonly int64_t ts_event       # E when sent, else ts_init
    cdef readonly int64_t ts_init


cdef class DepthDiffEvent:
    cdef readonly str symbol
    cdef readonly int64_t first_id       # U
    cdef readonly int64_t final_id       # u
    cdef readonly int64_t ts_event
    cdef readonly int64_t ts_init
    cdef int64_t* _data                  # bid px, bid qty, ask px, ask qty: nb, nb, na, na values
    cdef readonly Py_ssize_t n_bids
    cdef readonly Py_ssize_t n_asks

    cpdef int apply_to(self, OrderBook book)
    cdef object _side(self, Py_ssize_t offset, Py_ssize_t n)


cdef class KlineEvent:
    cdef readonly str symbol
    cdef readonly str interval
    cdef readonly int64_t open_time      # ns
    cdef readonly int64_t close_time     # ns
    cdef readonly int64_t open
    cdef readonly int64_t high
    cdef readonly int64_t low
    cdef readonly int64_t close
    cdef readonly int64_t volume         # steps
    cdef readonly object quote_volume    # Decimal: quote units are not the symbol's step
    cdef readonly int64_t trades
    cdef readonly bint closed
    cdef readonly int64_t ts_event
    cdef readonly int64_t ts_init


cdef class StreamResponse:
    cdef readonly object request_id
    cdef readonly object result
    cdef readonly object error


# One scanned JSON value: where it is in the frame and what kind it is.
cdef struct Span:
    const char* p          # strings: the text inside the quotes; others: the token
    Py_ssize_t n
    int kind
    int64_t ival           # the value of a K_INT
    unsigned int gen       # == the parser's generation when set in this message


cdef class MarketParser:
    cdef dict _codecs                    # symbol bytes -> InstrumentCodec
    cdef InstrumentCodec _last_codec     # most streams are bursts of one symbol
    cdef bytes _last_symbol
    cdef readonly int64_t parsed
    cdef readonly int64_t dropped
    cdef readonly int64_t slow_path      # frames that needed orjson (escapes, replies, errors)
    cdef readonly dict drop_counts
    cdef readonly str last_error
    cdef Span _f[128]                    # single-letter keys of the event object
    cdef Span _k[128]                    # single-letter keys of a kline's "k" object
    cdef Span _stream
    cdef bytes _stream_name              # a copy: the frame buffer is not ours after parse()
    cdef unsigned int _gen
    cdef int64_t* _scratch
    cdef Py_ssize_t _scratch_cap

    cpdef object parse(self, object raw, int64_t ts_init)
    cdef object _parse_fast(self, const char* p, Py_ssize_t n, int64_t ts_init, bint* fallback)
    cdef object _parse_slow(self, object raw, int64_t ts_init)
    cdef object _drop(self, str reason, str detail)
    cdef object _bad_field(self, str event, Span* table, int key, int status)
    cdef InstrumentCodec _codec_of(self)
    cdef Py_ssize_t _levels(self, Span* s, FixedPoint px, FixedPoint qty) except -2
    cdef object _trade(self, InstrumentCodec c, int64_t ts_init)
    cdef object _agg_trade(self, InstrumentCodec c, int64_t ts_init)
    cdef object _depth(self, InstrumentCodec c, int64_t ts_init)
    cdef object _book_ticker(self, InstrumentCodec c, int64_t ts_init)
    cdef object _kline(self, InstrumentCodec c, int64_t ts_init)
