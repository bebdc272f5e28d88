"""Recorded candles -> Bars in the instrument's ticks and steps (exact, refused if off-grid)."""

from __future__ import annotations

from decimal import Decimal

from abidance.core.events import Bar
from abidance.data.bars import parse_interval


def _units(fp, value) -> int:
    # Recorded candles are floats in the files: their shortest repr is the exchange's decimal.
    return fp.to_units(Decimal(repr(float(value))).quantize(fp.increment))


def bars_from_frame(frame, symbol: str, interval: str, instrument) -> list[Bar]:
    """A DataFrame with date, open, high, low, close, volume (freqtrade/Binance layout)."""
    iv = parse_interval(interval)
    price, qty = instrument.filters.price_fp, instrument.filters.qty_fp
    out = []
    for row in frame.itertuples(index=False):
        t = int(row.date.value) if hasattr(row.date, "value") else int(row.date)
        out.append(Bar(symbol, interval, t, t + iv, _units(price, row.open), _units(price, row.high),
                       _units(price, row.low), _units(price, row.close), _units(qty, row.volume), 0))
    return out
