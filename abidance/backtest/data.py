"""Recorded candles -> Bars in the instrument's ticks and steps (exact, refused if off-grid)."""

from __future__ import annotations

from decimal import Decimal

from abidance.core.events import Bar
from abidance.data.bars import parse_interval


def _units(fp, value) -> int:
    # Recorded candles are floats in the files: their shortest repr is the exchange's decimal.
    return fp.to_units(Decimal(repr(float(value))).quantize(fp.increment))


class BarSeries(list):
    """Bars of one symbol in time order, with their integer columns (numpy int64) alongside:
    the backtester's compiled fast path reads the columns, everything else the Bars."""

    COLUMNS = ("open", "high", "low", "close", "volume", "open_time", "close_time")

    def __init__(self, bars=()):
        super().__init__(sorted(bars, key=lambda b: b.open_time))      # linear when already in order
        self._columns = None

    @property
    def columns(self) -> dict:
        if self._columns is None or len(self._columns["close"]) != len(self):
            import numpy as np
            from operator import attrgetter

            self._columns = {name: np.fromiter(map(attrgetter(name), self), np.int64, len(self))
                             for name in self.COLUMNS}
        return self._columns


def bars_from_frame(frame, symbol: str, interval: str, instrument) -> BarSeries:
    """A DataFrame with date, open, high, low, close, volume (freqtrade/Binance layout)."""
    iv = parse_interval(interval)
    price, qty = instrument.filters.price_fp, instrument.filters.qty_fp
    out = []
    for row in frame.itertuples(index=False):
        t = int(row.date.value) if hasattr(row.date, "value") else int(row.date)
        out.append(Bar(symbol, interval, t, t + iv, _units(price, row.open), _units(price, row.high),
                       _units(price, row.low), _units(price, row.close), _units(qty, row.volume), 0))
    series = BarSeries(out)
    series.columns        # built once with the data, not on each run
    return series


def read_candles(path: str):
    """A candle file as a DataFrame: feather, parquet or csv (with a `date` column)."""
    import pandas as pd

    if path.endswith(".feather"):
        return pd.read_feather(path)
    if path.endswith(".parquet"):
        return pd.read_parquet(path)
    return pd.read_csv(path, parse_dates=["date"])


def parse_balances(items) -> dict[str, Decimal]:
    """["BTC=1", ...] -> {"BTC": Decimal("1")}; decimal.InvalidOperation on a bad amount."""
    out = {}
    for item in items:
        asset, _, amount = item.partition("=")
        out[asset.strip().upper()] = Decimal(amount)
    return out


def load_candle_args(items, interval: str, instruments: dict) -> dict[str, list[Bar]]:
    """["SYMBOL=FILE", ...] -> bars per symbol; ValueError naming the bad item."""
    from pathlib import Path

    bars = {}
    for item in items:
        symbol, _, path = item.partition("=")
        symbol = symbol.strip().upper()
        if symbol not in instruments or not Path(path).is_file():
            raise ValueError(f"--candles {item!r}: unknown symbol or missing file")
        bars[symbol] = bars_from_frame(read_candles(path), symbol, interval, instruments[symbol])
    return bars
