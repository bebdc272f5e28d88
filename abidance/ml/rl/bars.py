"""Recorded bars as int64 columns (ticks, steps, ns): what the environments index each step.

Built from the same `Bar` objects the backtester replays (`abidance.backtest.data.bars_from_frame`),
so both environments see the very same ticks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BarArrays:
    symbol: str
    interval: str
    open_time: np.ndarray       # int64 ns
    open: np.ndarray            # int64 ticks
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray          # int64 steps

    def __len__(self) -> int:
        return len(self.close)

    @classmethod
    def from_bars(cls, bars) -> BarArrays:
        """One symbol's bars in time order; ValueError naming the first bad bar."""
        bars = list(bars)
        if len(bars) < 2:
            raise ValueError(f"need at least 2 bars, got {len(bars)}")
        symbol, interval = bars[0].symbol, bars[0].interval
        for i, b in enumerate(bars):
            if b.symbol != symbol or b.interval != interval:
                raise ValueError(f"bar {i} is {b.symbol} {b.interval}, expected {symbol} {interval} (one series only)")
        cols = {name: np.fromiter((getattr(b, name) for b in bars), dtype=np.int64, count=len(bars))
                for name in ("open_time", "open", "high", "low", "close", "volume")}
        out = cls(symbol, interval, **cols)
        out.validate()
        return out

    def validate(self) -> None:
        t, o, h, lo, c, v = self.open_time, self.open, self.high, self.low, self.close, self.volume
        bad = ~((o > 0) & (c > 0) & (lo > 0) & (lo <= h) & (lo <= o) & (o <= h) & (lo <= c) & (c <= h) & (v >= 0))
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(f"{self.symbol} bar {i}: invalid prices/volume open={o[i]} high={h[i]} low={lo[i]} "
                             f"close={c[i]} volume={v[i]} (ticks > 0, low <= open/close <= high, volume >= 0)")
        if len(t) > 1 and not (np.diff(t) > 0).all():
            i = int(np.argmax(np.diff(t) <= 0)) + 1
            raise ValueError(f"{self.symbol} bar {i}: open_time {t[i]} is not after the previous bar's {t[i - 1]}")

    def columns(self) -> dict[str, np.ndarray]:
        """Float columns (in ticks and steps) for abidance.ml.features.batch_features: ratios only,
        so the unit does not change a feature."""
        return {"close": self.close.astype(np.float64), "high": self.high.astype(np.float64),
                "low": self.low.astype(np.float64), "volume": self.volume.astype(np.float64)}
