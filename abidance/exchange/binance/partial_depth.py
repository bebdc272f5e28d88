"""Binance's partial-depth streams (`<symbol>@depth5|10|20[@100ms]`): the top levels, whole, each time.

A payload is `{"lastUpdateId", "bids", "asks"}` with no symbol and no event time: the symbol
is known only from the stream name of the combined-stream wrapper. These streams are rare
next to the diff stream (which with a local book carries strictly more), so they are read
with orjson on their own connections, off the hot path, into DepthSnapshot events.
"""

from __future__ import annotations

import orjson

from abidance.core.events import DepthSnapshot

LEVELS = (5, 10, 20)


class PartialDepthError(ValueError):
    pass


def stream_name(symbol: str, levels: int, speed: str) -> str:
    if levels not in LEVELS:
        raise ValueError(f"partial depth has 5, 10 or 20 levels, not {levels}")
    return f"{symbol.lower()}@depth{levels}" + ("@100ms" if speed == "100ms" else "")


def parse(payload: bytes, codec_of, ts_init: int) -> DepthSnapshot:
    """One combined-stream frame -> DepthSnapshot in the symbol's ticks and steps."""
    try:
        msg = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise PartialDepthError(f"not JSON: {exc}") from None
    if not isinstance(msg, dict) or not isinstance(msg.get("stream"), str) or not isinstance(msg.get("data"), dict):
        raise PartialDepthError("not a combined-stream message")
    symbol = msg["stream"].split("@", 1)[0].upper()
    codec = codec_of(symbol)
    if codec is None:
        raise PartialDepthError(f"unknown symbol {symbol!r}")
    data = msg["data"]
    update_id = data.get("lastUpdateId")
    if type(update_id) is not int or update_id < 0:
        raise PartialDepthError(f"{symbol}: lastUpdateId must be a non-negative integer, got {update_id!r}")
    sides = []
    for side in ("bids", "asks"):
        rows = data.get(side)
        if not isinstance(rows, list):
            raise PartialDepthError(f"{symbol}: {side} must be a list")
        prices, qtys = [], []
        for row in rows:
            if not (isinstance(row, list) and len(row) == 2 and all(isinstance(x, str) for x in row)):
                raise PartialDepthError(f"{symbol}: {side} level {row!r} must be [price, qty] strings")
            try:
                prices.append(codec.price.to_units(row[0]))
                qtys.append(codec.qty.to_units(row[1]))
            except (ValueError, OverflowError) as exc:
                raise PartialDepthError(f"{symbol}: {side} level {row!r}: {exc}") from None
        sides += [tuple(prices), tuple(qtys)]
    return DepthSnapshot(symbol, update_id, sides[0], sides[1], sides[2], sides[3], ts_init)
