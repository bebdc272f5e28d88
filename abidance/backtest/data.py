"""Recorded candles -> Bars in the instrument's ticks and steps; the command line's recorded trades
and depth (abidance/data/depth_files.py) per symbol.

Candle policy (`bars_from_frame`):
- Columns: date, open, high, low, close, volume, matched without regard to case or surrounding
  spaces ("Date", " Close "); other columns are ignored; a missing one is refused, naming it.
- Off-grid values (a price not a whole number of the instrument's tick, a volume not a whole
  number of its step) are rounded to the nearest point of the grid (half to even) and counted
  (`BarSeries.rounded`; the backtest command prints the count); `off_grid="refuse"`
  (`--off-grid refuse`) refuses the first, naming the row, the column and the grid. Rounding is
  the default because the shipped 2018 candles are finer than today's Binance grids the
  simulator's instruments use (ETH_BTC closes have 7 decimals, ETHBTC's tick is 0.00001):
  refusing by default would refuse every one of them.
- Missing values (NaN, empty cells) are refused, naming the row; `nan="drop"` (`--nan drop`)
  leaves those rows out, and the bars are then one fewer each (a gap, as a missing bar is).
Float cells are read by their shortest repr, which is the exchange's decimal for a price that
was one (0.1 is "0.1", not 0.1000000000000000055...)."""

from __future__ import annotations

from decimal import Decimal
from operator import attrgetter
from pathlib import Path

import numpy as np
import orjson

from abidance._core.wire import trade_event
from abidance.core.events import Bar
from abidance.data.bars import INTERVALS, MONTH, bar_close, bar_open
from abidance.data.depth_files import depth_paths, read_depth, read_trades, trades_path


CANDLE_COLUMNS = ("date", "open", "high", "low", "close", "volume")
OFF_GRID = ("refuse", "round")
NAN = ("refuse", "drop")
DAY = 86_400_000_000_000


class CandleError(ValueError):
    """A candle file the policy refuses; the message names the row and the fix."""


def _units(fp, value, where: str = "", column: str = "", off_grid: str = "round", rounded: list | None = None) -> int:
    # Recorded candles and trades are floats in the files: their shortest repr is the exchange's decimal.
    d = Decimal(repr(float(value)))
    on_grid = d.quantize(fp.increment)
    if on_grid != d:
        if off_grid != "round":
            raise CandleError(f"{where}: {column} {d} is not on the grid of {fp.increment} "
                              "(leave out --off-grid refuse to round such values)")
        if rounded is not None:
            rounded[0] += 1
    return fp.to_units(on_grid)


def candle_columns(frame):
    """The frame with its candle columns named in lower case (matched ignoring case and spaces);
    CandleError naming a missing or doubled column."""
    names = {}
    for col in frame.columns:
        key = str(col).strip().lower()
        if key in CANDLE_COLUMNS:
            if key in names:
                raise CandleError(f"two columns are {key!r} ignoring case: {names[key]!r} and {col!r}")
            names[key] = col
    missing = [c for c in CANDLE_COLUMNS if c not in names]
    if missing:
        raise CandleError(f"no {', '.join(missing)} column (have: {', '.join(map(str, frame.columns))})")
    out = frame[[names[c] for c in CANDLE_COLUMNS]]
    out.columns = list(CANDLE_COLUMNS)
    return out


class BarSeries(list):
    """Bars of one symbol in time order, with their integer columns (numpy int64) alongside:
    the backtester's compiled fast path reads the columns, everything else the Bars."""

    COLUMNS = ("open", "high", "low", "close", "volume", "open_time", "close_time")

    def __init__(self, bars=()):
        super().__init__(sorted(bars, key=lambda b: b.open_time))      # linear when already in order
        self._columns = None
        self.rounded = 0        # values the loader rounded to the instrument's grid

    @property
    def columns(self) -> dict:
        if self._columns is None or len(self._columns["close"]) != len(self):
            self._columns = {name: np.fromiter(map(attrgetter(name), self), np.int64, len(self))
                             for name in self.COLUMNS}
        return self._columns


def bars_from_frame(frame, symbol: str, interval: str, instrument, *, off_grid: str = "round",
                    nan: str = "refuse") -> BarSeries:
    """A DataFrame with date, open, high, low, close, volume (freqtrade/Binance layout; any case).
    Off-grid values are rounded to the grid and counted (`.rounded`), or refused naming the row
    with `off_grid="refuse"`; rows with a missing value are refused naming the row, or dropped
    with `nan="drop"` (module doc)."""
    if off_grid not in OFF_GRID or nan not in NAN:
        raise ValueError(f"off_grid must be one of {OFF_GRID} and nan one of {NAN}")
    bar_close(interval, 0)         # ValueError on an unknown interval, before reading a row
    price, qty = instrument.filters.price_fp, instrument.filters.qty_fp
    frame = candle_columns(frame)
    out, rounded = [], [0]
    for i, row in enumerate(frame.itertuples(index=False)):
        where = f"{symbol} row {i + 1} ({row.date})"
        if any(v is None or v != v for v in row):          # NaN, NaT, None: the one value unequal to itself
            if nan == "drop":
                continue
            empty = ", ".join(c for c, v in zip(CANDLE_COLUMNS, row) if v is None or v != v)
            raise CandleError(f"{where}: no value in {empty} (give --nan drop to leave such rows out)")
        t = int(row.date.value) if hasattr(row.date, "value") else int(row.date)
        out.append(Bar(symbol, interval, t, bar_close(interval, t), _units(price, row.open, where, "open", off_grid, rounded),
                       _units(price, row.high, where, "high", off_grid, rounded),
                       _units(price, row.low, where, "low", off_grid, rounded),
                       _units(price, row.close, where, "close", off_grid, rounded),
                       _units(qty, row.volume, where, "volume", off_grid, rounded), 0))
    series = BarSeries(out)
    series.rounded = rounded[0]
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


# Headerless exports, by their number of columns: Binance's kline CSV (data.binance.vision and
# GET /api/v3/klines: open time, OHLCV, close time, quote volume, trades, taker buy base and
# quote, ignore) and ccxt's fetch_ohlcv rows ([timestamp ms, open, high, low, close, volume]).
HEADERLESS = {12: "Binance kline CSV", 6: "ccxt OHLCV"}
# Epoch times at or above this are microseconds: Binance's spot data files carry them from
# 2025-01-01 on (binance-public-data README); milliseconds stay below it until the year 5138.
MICROSECONDS_FROM = 10 ** 14


def read_candles(path: str):
    """A candle file as a DataFrame with a `date` column parsed as UTC:
    - feather, parquet or csv with named columns (`date` in any case; epoch integers are
      milliseconds, or microseconds from MICROSECONDS_FROM on);
    - a headerless csv: Binance's kline CSV (12 columns) or ccxt OHLCV rows (6 columns), times in
      milliseconds or, in Binance's spot files from 2025 on, microseconds (both read, row by row);
    - a .json list of ccxt OHLCV rows ([[ts_ms, open, high, low, close, volume], ...]; freqtrade's
      json data files are the same)."""
    # Lazy: pandas is an optional extra (dev, ml, dashboard): only this path needs it.
    import pandas as pd

    frame = _headerless(path)
    if frame is None:
        frame = _read_frame(path)
    date = next((c for c in frame.columns if str(c).strip().lower() == "date"), None)
    if date is not None and not pd.api.types.is_datetime64_any_dtype(frame[date]):
        if pd.api.types.is_integer_dtype(frame[date]):
            ms = frame[date].where(frame[date] < MICROSECONDS_FROM, frame[date] // 1000)
            frame[date] = pd.to_datetime(ms, utc=True, unit="ms")
        else:
            frame[date] = pd.to_datetime(frame[date], utc=True)
    return frame


def _headerless(path: str):
    """A headerless export as a frame with date, open, high, low, close, volume; None for any other file."""
    # Lazy: pandas is an optional extra (dev, ml, dashboard): only this path needs it.
    import pandas as pd

    names = ["date", "open", "high", "low", "close", "volume"]
    if path.endswith(".json"):
        rows = orjson.loads(Path(path).read_bytes())
        if not isinstance(rows, list) or not all(isinstance(r, list) and len(r) == 6 for r in rows):
            raise CandleError(f"{path}: a .json candle file is a list of ccxt OHLCV rows "
                              "[timestamp ms, open, high, low, close, volume]")
        return pd.DataFrame(rows, columns=names).astype({"date": "int64"})
    if not path.endswith((".csv", ".txt")):
        return None
    with open(path, encoding="utf-8", errors="replace") as f:
        first = f.readline().split(",")
    if not first[0].strip().isdigit():
        return None                     # a header: named columns
    if len(first) not in HEADERLESS:
        raise CandleError(f"{path}: a headerless candle file has 12 columns (Binance kline CSV) or 6 (ccxt "
                          f"OHLCV), not {len(first)}; or give a header with date, open, high, low, close, volume")
    frame = pd.read_csv(path, header=None, usecols=range(6), names=names)
    if not pd.api.types.is_integer_dtype(frame["date"]):
        raise CandleError(f"{path}: the first column of a {HEADERLESS[len(first)]} file is an epoch time in "
                          "milliseconds or microseconds on every row")
    return frame


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
    if 28 * DAY <= spacing <= 31 * DAY and all(bar_open(MONTH, int(x)) == x for x in t):
        return MONTH                    # calendar months: 28 to 31 days apart, each on a month's first day
    return next((name for name, ns in INTERVALS.items() if ns == spacing and name != MONTH), None)


def load_candle_args(items, interval: str | None, instruments: dict, *, off_grid: str = "round",
                     nan: str = "refuse") -> dict[str, list[Bar]]:
    """["SYMBOL=FILE", ...] -> bars per symbol; ValueError naming the bad item.

    `interval` None: each file's own interval (`frame_interval`). Given: it must be the
    file's, else ValueError (bars stamped 5m that are 1m apart would reach no 1m strategy and
    close at the wrong time: a silent empty backtest)."""
    out = {}
    for symbol, path in _symbol_files("--candles", items, instruments):
        try:
            frame = candle_columns(read_candles(path))
        except CandleError as exc:
            raise CandleError(f"--candles {symbol}={path}: {exc}") from None
        found = frame_interval(frame)
        if interval is None and found is None:
            raise ValueError(f"--candles {symbol}={path}: cannot tell the bars' interval from their dates "
                             "(give --interval)")
        if interval is not None and found is not None and found != interval:
            raise ValueError(f"--candles {symbol}={path}: the bars are {found} apart, not {interval} (--interval); "
                             f"use --interval {found}, or leave it out to take the file's")
        try:
            out[symbol] = bars_from_frame(frame, symbol, interval or found, instruments[symbol], off_grid=off_grid,
                                          nan=nan)
        except CandleError as exc:
            raise CandleError(f"--candles {path}: {exc}") from None
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
