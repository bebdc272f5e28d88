"""`abidance replay`: a market stream through the core, printing book and indicator values.

Offline by default: a seeded synthetic Binance depth stream (100 ms diffs) is applied to
the Cython order book; the mid price closes a bar every `bar_seconds` of stream time and
feeds the streaming indicators. With `--candles FILE` (feather or CSV with open, high,
low, close, volume columns, e.g. ../shared/data/market/*.feather) the indicators run on
real candles instead.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TextIO

import numpy as np

from abidance._core.book import BookStatus, OrderBook
from abidance._core.fixed import FixedPoint
from abidance._core.indicators import ATR, EMA, MACD, RSI, SMA, BollingerBands
from abidance.data.synthetic import SyntheticDepth

DIFF_INTERVAL = timedelta(milliseconds=100)
STREAM_START = datetime(2026, 1, 1, tzinfo=timezone.utc)


class IndicatorPanel:
    """The indicators the replay prints, fed one bar at a time."""

    def __init__(self):
        self.sma = SMA(20)
        self.ema = EMA(20)
        self.rsi = RSI(14)
        self.atr = ATR(14)
        self.bbands = BollingerBands(20, 2.0, 2.0)
        self.macd = MACD(12, 26, 9)

    def update(self, high: float, low: float, close: float) -> None:
        for ind in (self.sma, self.ema, self.rsi, self.bbands, self.macd):
            ind.update(close)
        self.atr.update(high, low, close)

    def line(self, fmt) -> str:
        def show(ind, text):
            return text() if ind.ready else "warming"
        return "  ".join([
            f"SMA20 {show(self.sma, lambda: fmt(self.sma.value))}",
            f"EMA20 {show(self.ema, lambda: fmt(self.ema.value))}",
            f"RSI14 {show(self.rsi, lambda: f'{self.rsi.value:.1f}')}",
            f"ATR14 {show(self.atr, lambda: fmt(self.atr.value))}",
            "BB20 " + show(self.bbands, lambda: f"[{fmt(self.bbands.lower)} {fmt(self.bbands.upper)}]"),
            f"MACD {show(self.macd, lambda: fmt(self.macd.macd) + '/' + fmt(self.macd.signal))}",
        ])


@dataclass
class ReplayStats:
    diffs: int = 0
    levels: int = 0
    book_ns: int = 0
    bars: int = 0
    resyncs: int = 0


def replay_synthetic(out: TextIO, bars: int = 40, bar_seconds: int = 60, seed: int = 7,
                     tick: str = "0.01", symbol: str = "SYNUSDT") -> ReplayStats:
    price = FixedPoint(tick)
    diffs_per_bar = int(timedelta(seconds=bar_seconds) / DIFF_INTERVAL)
    market = SyntheticDepth(seed=seed, depth=1000, mid_ticks=2_000_000, mean_distance=8.0)
    book = OrderBook(symbol)
    panel = IndicatorPanel()
    stats = ReplayStats()
    book.apply_snapshot(*market.snapshot())

    def fmt(ticks: float) -> str:
        # Indicator values are analytics in ticks (floats), shown in price units.
        return f"{ticks * float(price.increment):.{price.decimals + 2}f}"

    out.write(f"replaying a synthetic {symbol} depth stream (seed {seed}): {bars} bars of "
              f"{bar_seconds}s, {diffs_per_bar} diffs of ~20 levels each, tick {tick}\n")
    for bar in range(bars):
        batch = market.diffs(diffs_per_bar)
        mids = np.empty(len(batch))
        t0 = time.perf_counter_ns()
        for i in range(len(batch)):
            b0, b1 = batch.bid_off[i], batch.bid_off[i + 1]
            a0, a1 = batch.ask_off[i], batch.ask_off[i + 1]
            status = book.apply_diff(batch.first_ids[i], batch.final_ids[i],
                                     batch.bid_px[b0:b1], batch.bid_qty[b0:b1],
                                     batch.ask_px[a0:a1], batch.ask_qty[a0:a1])
            if status != BookStatus.APPLIED and status != BookStatus.STALE:
                out.write(f"  book needs a resync: {book.resync_message}; re-snapshotting\n")
                stats.resyncs += 1
                book.apply_snapshot(*market.snapshot())
            mids[i] = book.mid()
        stats.book_ns += time.perf_counter_ns() - t0
        stats.diffs += len(batch)
        stats.levels += batch.level_count
        stats.bars += 1
        panel.update(mids.max(), mids.min(), mids[-1])
        closed = STREAM_START + (bar + 1) * timedelta(seconds=bar_seconds)
        best_bid, best_ask = book.best_bid(), book.best_ask()
        out.write(
            f"{closed:%Y-%m-%d %H:%M:%S}  bid {price.to_str(best_bid[0])}  ask {price.to_str(best_ask[0])}"
            f"  spread {price.to_str(book.spread())}  imb5 {book.imbalance(5):+.2f}"
            f"  mid {fmt(mids[-1])} | {panel.line(fmt)}\n")
    out.write(
        f"done: {stats.diffs} diffs, {stats.levels} level updates, "
        f"{stats.book_ns / max(stats.levels, 1):.0f} ns per level through the Python API "
        f"(the C path is faster: see benchmarks), book {'ready' if book.ready else 'NOT ready'}, "
        f"resyncs {stats.resyncs}\n")
    return stats


def replay_candles(path: Path, out: TextIO, limit: int | None = None) -> ReplayStats:
    # Lazy: pandas is an optional extra (dev, ml, dashboard): only this path needs it.
    try:
        import pandas as pd
    except ImportError:
        raise SystemExit("reading candle files needs pandas: pip install 'abidance[dev]'") from None
    frame = pd.read_feather(path) if path.suffix == ".feather" else pd.read_csv(path)
    missing = {"open", "high", "low", "close", "volume"} - set(frame.columns)
    if missing:
        raise SystemExit(f"{path}: missing columns {sorted(missing)}")
    panel = IndicatorPanel()
    stats = ReplayStats()
    shown_from = len(frame) - (limit or 20)
    out.write(f"replaying {len(frame)} candles from {path} (showing the last {len(frame) - max(shown_from, 0)})\n")
    stamps = frame["date"] if "date" in frame.columns else range(len(frame))
    for i, (stamp, high, low, close) in enumerate(zip(stamps, frame.high, frame.low, frame.close)):
        try:
            panel.update(float(high), float(low), float(close))
        except ValueError as exc:
            out.write(f"{stamp}  skipped bad candle: {exc}\n")
            continue
        stats.bars += 1
        if i >= shown_from:
            out.write(f"{stamp}  close {close:.8g} | {panel.line(lambda v: f'{v:.8g}')}\n")
    return stats


def main(args) -> int:
    out = sys.stdout
    if args.candles:
        replay_candles(Path(args.candles), out, args.bars)
    else:
        replay_synthetic(out, bars=args.bars or 40, bar_seconds=args.bar_seconds, seed=args.seed)
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("replay", help="replay a market stream through the core, printing book and indicators",
                       description=__doc__)
    p.add_argument("--candles", help="feather/CSV candle file to replay instead of the synthetic stream")
    p.add_argument("--bars", type=int, default=None,
                   help="synthetic: bars to replay (default 40); candles: how many of the last bars to show (20)")
    p.add_argument("--bar-seconds", type=int, default=60, help="synthetic bar length in seconds (default 60)")
    p.add_argument("--seed", type=int, default=7, help="synthetic market seed (default 7)")
    p.set_defaults(func=main)
