"""Type stubs for abidance._core.wire (compiled from ext/abidance/_core/wire.pyx).

Binance market-stream frames (raw bytes) -> typed events. Prices are int64 ticks and
quantities int64 steps of the symbol's InstrumentCodec; times are int64 ns.
"""

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import numpy as np
import numpy.typing as npt

from abidance._core.book import OrderBook
from abidance._core.fixed import FixedPoint

class InstrumentCodec:
    """How one symbol's decimal text maps to int64: its tick (price) and step (quantity)."""

    symbol: str
    price: FixedPoint
    qty: FixedPoint
    def __init__(self, symbol: str, price_increment: FixedPoint | str | Decimal | int,
                 qty_increment: FixedPoint | str | Decimal | int) -> None: ...

class TradeEvent:
    symbol: str
    trade_id: int
    price: int
    """ticks"""
    qty: int
    """steps"""
    buyer_is_maker: bool
    ts_trade: int
    ts_event: int
    ts_init: int

def trade_event(symbol: str, trade_id: int, price: int, qty: int, buyer_is_maker: bool, ts_trade: int,
                ts_event: int = -1, ts_init: int = -1) -> TradeEvent: ...

class AggTradeEvent:
    symbol: str
    agg_id: int
    first_trade_id: int
    last_trade_id: int
    price: int
    qty: int
    buyer_is_maker: bool
    ts_trade: int
    ts_event: int
    ts_init: int

class BookTickerEvent:
    symbol: str
    update_id: int
    bid_price: int
    """0 when the bid side is empty"""
    bid_qty: int
    ask_price: int
    """0 when the ask side is empty"""
    ask_qty: int
    ts_event: int
    """E when the frame has it (spot bookTicker does not), else ts_init"""
    ts_init: int

class DepthDiffEvent:
    symbol: str
    first_id: int
    """U"""
    final_id: int
    """u"""
    ts_event: int
    ts_init: int
    n_bids: int
    n_asks: int
    def apply_to(self, book: OrderBook) -> int:
        """Apply to a book (U/u rules in the book); returns its BookStatus code."""
    def bids(self) -> npt.NDArray[np.int64]:
        """[[price_ticks, qty_steps], ...] as a new (n, 2) int64 array, in message order."""
    def asks(self) -> npt.NDArray[np.int64]: ...

class KlineEvent:
    symbol: str
    interval: str
    open_time: int
    close_time: int
    open: int
    high: int
    low: int
    close: int
    volume: int
    """steps"""
    quote_volume: Decimal
    """quote units are not the symbol's step"""
    trades: int
    closed: bool
    ts_event: int
    ts_init: int

class StreamResponse:
    """A reply to SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS."""

    request_id: Any
    result: Any
    error: Any
    def __init__(self, request_id: Any, result: Any, error: Any) -> None: ...

_MarketEvent = TradeEvent | AggTradeEvent | DepthDiffEvent | BookTickerEvent | KlineEvent

class MarketParser:
    """Parses market-stream frames for the symbols it has codecs for. Never raises on a frame."""

    parsed: int
    dropped: int
    slow_path: int
    """frames that needed orjson (escapes, non-ASCII, replies, malformed JSON)"""
    drop_counts: dict[str, int]
    """reason -> count: malformed_json, not_an_object, unknown_event, unsupported, unknown_symbol,
    bad_field, bad_ids, bad_levels, out_of_memory"""
    last_error: str
    """"reason: detail" of the last drop"""
    def __init__(self, codecs: Iterable[InstrumentCodec] = ()) -> None: ...
    def add(self, codec: InstrumentCodec) -> None: ...
    def codec(self, symbol: str) -> InstrumentCodec | None: ...
    @property
    def symbols(self) -> list[str]: ...
    @property
    def last_stream(self) -> str:
        """The "stream" of the last frame that had one ("" for a raw frame).

        Read it while that frame's buffer is alive and unchanged: it is read from the frame.
        """
    def parse(self, raw: bytes | bytearray | memoryview, ts_init: int) -> _MarketEvent | StreamResponse | None:
        """An event, a reply, or None when the frame was dropped (drop_counts, last_error).

        raw: bytes or any contiguous byte buffer; anything else (str included) is dropped
        as malformed_json.
        """
