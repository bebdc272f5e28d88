"""Training data: (X, y, times, label_end) from recorded candles or the store's bars.

Features come from `batch_features` (the live node's own definition) and labels from a
labeler (labels.ForwardReturn / labels.TripleBarrier); a row is kept only when both are
valid. `index` and `label_end` are bar positions in the source, the spans that purged
splits need.

Bars must be evenly spaced. Where the series has a gap (a missing bar: the recorder or the
node was down), it is cut there and each run of evenly spaced bars gets its own features
(warming up again) and labels (never reading across the gap); the rows keep their positions
in the source. Bars closer together than the interval are refused, naming the first pair.
A bar with a missing or invalid price (NaN, <= 0, low > high) refuses the whole dataset,
naming it (batch_features): the features would carry it into every later row, so no row
is guessed around it. Rows without enough future for their label are dropped.

Prices: a plain DataFrame is used as its floats. For bit-for-bit parity with a strategy
running in the node, give Bars (e.g. `bars_from_frame(frame, symbol, interval,
instrument)`, the backtest's own conversion) and the symbol's tick size: prices are then
`ticks * tick_size` and volume is lot steps, exactly what `Strategy.price` and
`float(bar.volume)` give the live strategy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from abidance.backtest.data import bars_from_frame, read_candles
from abidance.data.bars import MONTH, bar_close, parse_interval
from abidance.ml.features import FeatureSpec, batch_features, check_bars
from abidance.ml.labels import ForwardReturn

OHLCV = ("open", "high", "low", "close", "volume")


@dataclass(frozen=True, eq=False)
class Dataset:
    X: np.ndarray               # float64, rows x features
    y: np.ndarray               # int64, 1 = up
    index: np.ndarray           # int64, bar position of each row (its features end there)
    label_end: np.ndarray       # int64, bar position where its label's information ends
    times: np.ndarray           # int64 ns, open time of the row's bar
    feature_names: tuple[str, ...]
    spec: FeatureSpec
    labels: dict                # the labeler's parameters
    symbol: str = ""
    interval: str = ""
    bars: int = 0               # bars in the source
    extra: dict = field(default_factory=dict)       # "gaps": where the source was cut (even_runs)

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, rows) -> Dataset:
        rows = np.asarray(rows)
        return Dataset(self.X[rows], self.y[rows], self.index[rows], self.label_end[rows], self.times[rows],
                       self.feature_names, self.spec, self.labels, self.symbol, self.interval, self.bars,
                       self.extra)

    def meta(self) -> dict:
        """What the registry keeps about the training data."""
        return {"symbol": self.symbol, "interval": self.interval, "rows": len(self), "bars": self.bars,
                "start_ns": int(self.times[0]) if len(self) else None,
                "end_ns": int(self.times[-1]) if len(self) else None,
                "base_rate": float(self.y.mean()) if len(self) else None,
                "features": self.spec.to_dict(), "labels": dict(self.labels)}


def _times_ns(values) -> np.ndarray:
    # Lazy: pandas is an optional extra (dev, ml, dashboard): only this path needs it.
    import pandas as pd

    if np.issubdtype(np.asarray(values).dtype, np.integer):
        return np.asarray(values, dtype=np.int64)
    return pd.DatetimeIndex(pd.to_datetime(values, utc=True)).as_unit("ns").asi8.copy()


def market_arrays_from_frame(frame) -> dict[str, np.ndarray]:
    """date (or ts), open, high, low, close, volume -> float64 arrays and int64 ns times."""
    time_col = "date" if "date" in frame else "ts" if "ts" in frame else None
    missing = [c for c in OHLCV if c not in frame] + ([] if time_col else ["date"])
    if missing:
        raise ValueError(f"candles need columns date, open, high, low, close, volume; missing: {', '.join(missing)}")
    out = {c: np.asarray(frame[c], dtype=np.float64) for c in OHLCV}   # Decimal columns too
    out["times"] = _times_ns(frame[time_col])
    return out


def market_arrays_from_bars(bars, tick_size: float) -> dict[str, np.ndarray]:
    """Bars (int ticks and steps) -> the floats a strategy computes: ticks * tick_size, steps."""
    tick = float(tick_size)
    if not np.isfinite(tick) or tick <= 0:
        raise ValueError(f"tick_size must be a finite number > 0, got {tick_size!r}")
    out = {c: np.array([getattr(b, c) for b in bars], dtype=np.int64) for c in OHLCV}
    out = {c: (v.astype(np.float64) if c == "volume" else v.astype(np.float64) * tick) for c, v in out.items()}
    out["times"] = np.array([b.open_time for b in bars], dtype=np.int64)
    return out


def even_runs(times: np.ndarray, interval_ns: int | None = None) -> list[tuple[int, int]]:
    """[start, stop) row ranges of evenly spaced bars: a step longer than the interval (default:
    the smallest step) starts a new range; a shorter one is refused, naming the rows."""
    n = len(times)
    if n < 2:
        return [(0, n)]
    steps = np.diff(times)
    step = int(steps.min()) if interval_ns is None else int(interval_ns)
    short = np.flatnonzero(steps < step)
    if len(short):
        i = int(short[0]) + 1
        raise ValueError(f"build_dataset: bars closer together than the interval ({step / 1e9:g} s): row {i} "
                         f"({times[i]} ns) is {int(steps[i - 1]) / 1e9:g} s after row {i - 1} (a wrong interval, "
                         "or bars of another timeframe mixed in?)")
    cuts = (np.flatnonzero(steps > step) + 1).tolist()
    return list(zip([0] + cuts, cuts + [n]))


def month_runs(times: np.ndarray) -> list[tuple[int, int]]:
    """even_runs for calendar-month bars (28 to 31 days apart): a new range wherever a bar is not
    the month after the previous one's."""
    cuts = [i for i in range(1, len(times)) if int(times[i]) != bar_close(MONTH, int(times[i - 1]))]
    return list(zip([0] + cuts, cuts + [len(times)]))


def build_dataset(source, spec: FeatureSpec | None = None, labeler=None, *, tick_size: float | None = None,
                  symbol: str = "", interval: str = "") -> Dataset:
    """A DataFrame of candles, or a list of Bars with `tick_size`, -> Dataset. `interval` (taken
    from the Bars when they are given) is the expected bar spacing; else the smallest step."""
    spec = spec or FeatureSpec()
    labeler = labeler or ForwardReturn()
    if isinstance(source, (list, tuple)):
        if tick_size is None:
            raise ValueError("build_dataset: Bars need tick_size (the symbol's price increment)")
        arrays = market_arrays_from_bars(source, tick_size)
        if source and not symbol:
            symbol, interval = source[0].symbol, source[0].interval
    else:
        arrays = market_arrays_from_frame(source)
    times = arrays["times"]
    if len(times) > 1 and np.any(np.diff(times) <= 0):
        i = int(np.argmax(np.diff(times) <= 0)) + 1
        raise ValueError(f"build_dataset: candles must be in strictly increasing time order; row {i} "
                         f"({times[i]} ns) does not come after row {i - 1} ({times[i - 1]} ns)")
    check_bars("build_dataset", arrays["close"], arrays["high"], arrays["low"], arrays["volume"])
    runs = month_runs(times) if interval == MONTH else even_runs(times, parse_interval(interval) if interval else None)
    parts = []
    for lo, hi in runs:
        run = {k: v[lo:hi] for k, v in arrays.items()}
        matrix, features_ok = batch_features(spec, run)
        labels = labeler.apply(run["close"], run["high"], run["low"])
        rows = np.flatnonzero(features_ok & labels.valid)
        parts.append((matrix[rows], labels.y[rows], rows + lo, labels.end[rows] + lo))
    X, y, index, label_end = (np.concatenate([part[k] for part in parts]) for k in range(4))
    gaps = [{"row": lo, "after_ns": int(times[lo] - times[lo - 1])} for lo, _ in runs[1:]]
    return Dataset(X=np.ascontiguousarray(X), y=y.astype(np.int64), index=index.astype(np.int64),
                   label_end=label_end.astype(np.int64), times=times[index], feature_names=spec.names, spec=spec,
                   labels=dict(labels.params), symbol=symbol, interval=interval, bars=len(times),
                   extra={"gaps": gaps} if gaps else {})


def dataset_from_file(path: str, spec: FeatureSpec | None = None, labeler=None, *, symbol: str = "",
                      interval: str = "", instrument=None) -> Dataset:
    """A recorded candle file (feather, parquet or csv) -> Dataset. With `instrument` (and
    symbol, interval) prices go through the backtest's tick conversion, for live parity."""
    frame = read_candles(str(path))
    if instrument is None:
        return build_dataset(frame, spec, labeler, symbol=symbol, interval=interval)
    if not symbol or not interval:
        raise ValueError("dataset_from_file: an instrument needs symbol and interval too")
    bars = bars_from_frame(frame, symbol, interval, instrument)
    return build_dataset(bars, spec, labeler, tick_size=float(instrument.filters.price_fp.increment))
