"""Recorded candles -> Bars in the instrument's ticks and steps (exact, refused if off-grid); the
command line's recorded trades and depth (abidance/data/depth_files.py) per symbol."""

from __future__ import annotations

from decimal import Decimal
from operator import attrgetter
from pathlib import Path

import numpy as np

from abidance._core.wire import trade_event
from abidance.core.events import Bar
from abidance.data.bars import INTERVALS, parse_interval
from abidance.data.depth_files import depth_paths, read_depth, read_trades, trades_path


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


def trades_from_frame(frame, symbol: str, instrument) -> list:
    """Recorded trades (freqtrade/ccxt layout: timestamp in ms, id, side, price, amount) ->
    TradeEvents in ticks and steps, in time order. `side` is the taker's: a "sell" means the
    buyer was the maker."""
    price, qty = instrument.filters.price_fp, instrument.filters.qty_fp
    out = []
    for row in frame.itertuples(index=False):
        ts = int(row.timestamp) * 1_000_000
        try:
            out.append(trade_event(symbol, int(row.id), _units(price, row.price), _units(qty, row.amount),
                                   str(row.side).lower() == "sell", ts))
        except (ValueError, ArithmeticError) as exc:
            raise ValueError(f"{symbol} trade {row.id} at {row.timestamp}: {exc}") from None
    out.sort(key=lambda t: (t.ts_trade, t.trade_id))
    return out


def read_candles(path: str):
    """A candle file as a DataFrame: feather, parquet or csv (with a `date` column)."""
    return _read_frame(path, parse_dates=["date"])


def _read_frame(path: str, **csv_options):
    # Lazy: pandas is an optional extra (dev, ml, dashboard): only this path needs it.
    import pandas as pd

    if path.endswith(".feather"):
        return pd.read_feather(path)
    if path.endswith(".parquet"):
        return pd.read_parquet(path)
    return pd.read_csv(path, **csv_options)


def parse_balances(items) -> dict[str, Decimal]:
    """["BTC=1", ...] -> {"BTC": Decimal("1")}; decimal.InvalidOperation on a bad amount."""
    out = {}
    for item in items:
        asset, _, amount = item.partition("=")
        out[asset.strip().upper()] = Decimal(amount)
    return out


def frame_interval(frame) -> str | None:
    """The bar interval a candle file holds: the most common spacing of its `date` column, by
    Binance's name ("5m"); None with fewer than two rows or a spacing Binance has no name for.
    The most common spacing, not the smallest: recorded series have gaps (missing bars), and a
    single duplicated or off-grid row must not decide it."""
    if len(frame) < 2:
        return None
    # The same reading of a date as bars_from_frame's (a Timestamp's ns, or ns already).
    t = np.sort(np.fromiter((int(d.value) if hasattr(d, "value") else int(d) for d in frame["date"]), np.int64,
                            len(frame)))
    diffs = np.diff(t)
    diffs = diffs[diffs > 0]
    if not diffs.size:
        return None
    values, counts = np.unique(diffs, return_counts=True)
    spacing = int(values[np.argmax(counts)])
    return next((name for name, ns in INTERVALS.items() if ns == spacing), None)


def load_candle_args(items, interval: str | None, instruments: dict) -> dict[str, list[Bar]]:
    """["SYMBOL=FILE", ...] -> bars per symbol; ValueError naming the bad item.

    `interval` None: each file's own interval (`frame_interval`). Given: it must be the
    file's, else ValueError (bars stamped 5m that are 1m apart would reach no 1m strategy and
    close at the wrong time: a silent empty backtest)."""
    out = {}
    for symbol, path in _symbol_files("--candles", items, instruments):
        frame = read_candles(path)
        found = frame_interval(frame)
        if interval is None and found is None:
            raise ValueError(f"--candles {symbol}={path}: cannot tell the bars' interval from their dates "
                             "(give --interval)")
        if interval is not None and found is not None and found != interval:
            raise ValueError(f"--candles {symbol}={path}: the bars are {found} apart, not {interval} (--interval); "
                             f"use --interval {found}, or leave it out to take the file's")
        out[symbol] = bars_from_frame(frame, symbol, interval or found, instruments[symbol])
    return out


def load_trade_args(items, instruments: dict) -> dict[str, list]:
    """["SYMBOL=FILE", ...] of recorded trades -> TradeEvents per symbol; ValueError naming the bad item."""
    return {symbol: trades_from_frame(_read_frame(path), symbol, instruments[symbol])
            for symbol, path in _symbol_files("--trades", items, instruments)}


def load_depth_args(items, instruments: dict) -> tuple[dict[str, list], dict[str, list]]:
    """["SYMBOL=FOLDER", ...] of recorded depth -> (depth events per symbol, the trades recorded beside
    them per symbol); ValueError naming the bad item or row."""
    depth, trades = {}, {}
    for item in items:
        symbol, _, folder = item.partition("=")
        symbol = symbol.strip().upper()
        snap, update = depth_paths(folder, symbol)
        if symbol not in instruments or not snap.is_file() or not update.is_file():
            raise ValueError(f"--depth {item!r}: unknown symbol, or no {snap.name} and {update.name} in {folder}")
        depth[symbol] = read_depth(folder, instruments[symbol])
        recorded = trades_path(folder, symbol)
        if recorded.is_file():
            trades[symbol] = read_trades(recorded, instruments[symbol])
    return depth, trades


def _symbol_files(flag: str, items, instruments: dict):
    for item in items:
        symbol, _, path = item.partition("=")
        symbol = symbol.strip().upper()
        if symbol not in instruments or not Path(path).is_file():
            raise ValueError(f"{flag} {item!r}: unknown symbol or missing file")
        yield symbol, path
