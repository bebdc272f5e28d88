"""Klines and 24 h tickers built from the exchange's trades, in Binance's exact shapes.

Fed by the exchange's trade listener (`on_trade(trade)` with id, price, qty, quote_qty, time,
buyer_is_maker) and by seeded history bars (so /api/v3/klines has data before the sim
started). All arithmetic is Decimal in a wide private context (no floats, no silent
rounding at 28 digits); values are rendered as fixed-decimal strings the way Binance does
(8 decimals by default).

Bar times are UTC-aligned: open = floor(t / interval) * interval, except 1w (weeks open on
Monday 00:00 UTC, as on Binance) and 1M (calendar months). 3d bars are aligned to the Unix
epoch (an assumption: Binance does not document the 3d anchor). A bar with no trades is still
emitted, with open = high = low = close = the previous close and zero volume, as Binance does.
"""

from __future__ import annotations

import bisect
import calendar
from collections import deque
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from decimal import ROUND_HALF_EVEN, Context, Decimal
from typing import Callable, Iterable

# Wide enough for sums of price*qty products over years of trades: nothing rounds inside.
_CTX = Context(prec=60)
ZERO = Decimal(0)

_S, _M, _H, _D = 1000, 60_000, 3_600_000, 86_400_000
INTERVAL_MS: dict[str, int] = {
    "1s": _S, "1m": _M, "3m": 3 * _M, "5m": 5 * _M, "15m": 15 * _M, "30m": 30 * _M,
    "1h": _H, "2h": 2 * _H, "4h": 4 * _H, "6h": 6 * _H, "8h": 8 * _H, "12h": 12 * _H,
    "1d": _D, "3d": 3 * _D, "1w": 7 * _D,
}
KLINE_INTERVALS: tuple[str, ...] = (*INTERVAL_MS, "1M")
_WEEK_ANCHOR = 4 * _D            # 1970-01-05, the first Monday after the epoch (a Thursday)


def bar_open(interval: str, t_ms: int) -> int:
    """Open time of the `interval` bar containing t_ms."""
    if interval == "1M":
        d = datetime.fromtimestamp(t_ms / 1000, tz=timezone.utc)
        return calendar.timegm((d.year, d.month, 1, 0, 0, 0)) * 1000
    size = INTERVAL_MS[interval]
    anchor = _WEEK_ANCHOR if interval == "1w" else 0
    return (t_ms - anchor) // size * size + anchor


def next_open(interval: str, open_ms: int) -> int:
    """Open time of the bar after the one opening at open_ms (its close time is this - 1)."""
    if interval == "1M":
        d = datetime.fromtimestamp(open_ms / 1000, tz=timezone.utc)
        y, m = (d.year + 1, 1) if d.month == 12 else (d.year, d.month + 1)
        return calendar.timegm((y, m, 1, 0, 0, 0)) * 1000
    return open_ms + INTERVAL_MS[interval]


def fmt(value: Decimal, places: int = 8) -> str:
    """Binance's fixed-decimal rendering (half-even when a value has more places)."""
    q = value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN, context=_CTX)
    return format(q, "f")


@dataclass(slots=True)
class Bar:
    """One kline. Also the unit of seeded history (trades=0 and ids -1 when unknown)."""

    open_ms: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal = ZERO
    quote_volume: Decimal = ZERO
    trades: int = 0
    taker_buy_base: Decimal = ZERO
    taker_buy_quote: Decimal = ZERO
    first_id: int = -1
    last_id: int = -1

    def merge(self, o: Bar) -> None:
        """Fold a later bar (or a one-trade bar) into this one."""
        if self.trades == 0 and not self.volume:
            # A trade-less placeholder (o=h=l=c=previous close): the first trade opens the bar.
            self.open, self.high, self.low = o.open, o.high, o.low
        if o.high > self.high:
            self.high = o.high
        if o.low < self.low:
            self.low = o.low
        self.close = o.close
        self.volume = _CTX.add(self.volume, o.volume)
        self.quote_volume = _CTX.add(self.quote_volume, o.quote_volume)
        self.trades += o.trades
        self.taker_buy_base = _CTX.add(self.taker_buy_base, o.taker_buy_base)
        self.taker_buy_quote = _CTX.add(self.taker_buy_quote, o.taker_buy_quote)
        if o.first_id >= 0 and self.first_id < 0:
            self.first_id = o.first_id
        if o.last_id >= 0:
            self.last_id = o.last_id


def trade_bar(trade: dict) -> Bar:
    """A trade dict from the exchange as a one-trade bar (the taker bought unless buyer is maker)."""
    price, qty = Decimal(trade["price"]), Decimal(trade["qty"])
    quote = Decimal(trade["quote_qty"]) if trade.get("quote_qty") is not None else _CTX.multiply(price, qty)
    buy = not trade["buyer_is_maker"]
    tid = int(trade["id"])
    return Bar(int(trade["time"]), price, price, price, price, qty, quote, 1,
               qty if buy else ZERO, quote if buy else ZERO, tid, tid)


class _Series:
    """Closed bars of one interval (bounded) plus the bar in progress."""

    __slots__ = ("interval", "bars", "current")

    def __init__(self, interval: str):
        self.interval = interval
        self.bars: list[Bar] = []
        self.current: Bar | None = None


class KlineAggregator:
    """Per-symbol klines for every interval, for REST /api/v3/klines and the kline streams.

    `advance(now_ms)` rolls bars forward with the clock (closing bars, adding trade-less ones);
    `klines()` and `current()` advance first when a `clock_ms` callable was given. Each bar close
    is reported once, to `on_close(interval, k)` if given, else queued for `drain_closed()`.
    History is bounded to `max_bars` closed bars per interval (REST asks for at most 1000).
    """

    def __init__(self, symbol: str, intervals: Iterable[str] = KLINE_INTERVALS, *,
                 price_decimals: int = 8, qty_decimals: int = 8, max_bars: int = 5000,
                 clock_ms: Callable[[], int] | None = None,
                 on_close: Callable[[str, dict], None] | None = None):
        self.symbol = symbol
        self.intervals = tuple(intervals)
        for iv in self.intervals:
            if iv not in KLINE_INTERVALS:
                raise ValueError(f"unknown kline interval {iv!r}")
        self.pd, self.qd = price_decimals, qty_decimals
        self.max_bars = max_bars
        self.clock_ms = clock_ms
        self.on_close = on_close
        self._closed: deque[tuple[str, dict]] = deque(maxlen=4096)   # dropped if nobody drains
        self._series = {iv: _Series(iv) for iv in self.intervals}
        self.last_price: Decimal | None = None
        self._seeding = False

    # ---- input ---------------------------------------------------------------------

    def on_trade(self, trade: dict) -> None:
        self._ingest(trade_bar(trade), None)

    def seed(self, bars: Iterable[Bar], interval: str) -> int:
        """Feed history bars of `interval` (in time order, before any live trade).

        They roll up into every interval at least as long (1m history builds 5m, 1h, 1d...);
        shorter intervals (1s from 1m history) start with the live trades. Returns the count.
        """
        span = _span_ms(interval)
        n = 0
        # History is not news: bars closed while seeding are not reported as kline closes.
        self._seeding = True
        try:
            for bar in bars:
                self._ingest(bar, span)
                n += 1
        finally:
            self._seeding = False
        return n

    def _ingest(self, bar: Bar, span: int | None) -> None:
        for s in self._series.values():
            if span is not None and _span_ms(s.interval) < span:
                continue
            self._roll(s, bar.open_ms)
            cur = s.current
            if cur is None:
                cur = s.current = replace(bar, open_ms=bar_open(s.interval, bar.open_ms))
            else:
                # Out-of-order input (older than the bar in progress) is folded into the
                # current bar: the sim clock is monotonic, so this only guards bad seeds.
                cur.merge(bar)
        self.last_price = bar.close

    def advance(self, now_ms: int) -> None:
        """Close bars that ended before now_ms; open (trade-less) bars up to the one containing it."""
        if self.last_price is None:
            return
        for s in self._series.values():
            self._roll(s, now_ms)
            if s.current is None:
                # e.g. 1s bars after 1m-only history: start at the bar containing now.
                p = self.last_price
                s.current = Bar(bar_open(s.interval, now_ms), p, p, p, p)

    def _roll(self, s: _Series, t_ms: int) -> None:
        cur = s.current
        if cur is None:
            return
        target = bar_open(s.interval, t_ms)
        if target <= cur.open_ms:
            return
        self._close(s, cur)
        # Trade-less bars between: o = h = l = c = previous close, zero volume. Only the last
        # max_bars can survive the history bound, so a long idle gap costs O(max_bars).
        p = cur.close
        t = next_open(s.interval, cur.open_ms)
        if s.interval != "1M":
            size = INTERVAL_MS[s.interval]
            t = max(t, target - self.max_bars * size)
        while t < target:
            self._close(s, Bar(t, p, p, p, p))
            t = next_open(s.interval, t)
        s.current = Bar(target, p, p, p, p)

    def _close(self, s: _Series, bar: Bar) -> None:
        s.bars.append(bar)
        if len(s.bars) > 2 * self.max_bars:          # amortised trim keeps appends O(1)
            del s.bars[: len(s.bars) - self.max_bars]
        if self._seeding:
            return
        k = self._k(s.interval, bar, closed=True)
        if self.on_close is not None:
            self.on_close(s.interval, k)
        else:
            self._closed.append((s.interval, k))

    # ---- output --------------------------------------------------------------------

    def klines(self, interval: str, start_time: int | None = None, end_time: int | None = None,
               limit: int = 500, now_ms: int | None = None) -> list[list]:
        """REST /api/v3/klines rows, oldest first, including the bar in progress.

        As Binance: with startTime, the first `limit` bars opening at or after it; otherwise the
        last `limit` bars; endTime drops bars opening after it.
        """
        s = self._series[interval]
        self._maybe_advance(now_ms)
        bars = s.bars if s.current is None else [*s.bars[-(self.max_bars):], s.current]
        lo, hi = 0, len(bars)
        if start_time is not None:
            lo = bisect.bisect_left(bars, start_time, key=lambda b: b.open_ms)
        if end_time is not None:
            hi = bisect.bisect_right(bars, end_time, key=lambda b: b.open_ms)
        if hi <= lo:
            return []
        chosen = bars[lo:min(hi, lo + limit)] if start_time is not None else bars[max(lo, hi - limit):hi]
        return [self._row(interval, b) for b in chosen]

    def current(self, interval: str, now_ms: int | None = None) -> dict | None:
        """The kline stream's `k` object for the bar in progress (x = false)."""
        self._maybe_advance(now_ms)
        cur = self._series[interval].current
        return None if cur is None else self._k(interval, cur, closed=False)

    def drain_closed(self) -> list[tuple[str, dict]]:
        """(interval, k with x = true) for each bar closed since the last call, each once."""
        out = list(self._closed)
        self._closed.clear()
        return out

    def _maybe_advance(self, now_ms: int | None) -> None:
        if now_ms is None and self.clock_ms is not None:
            now_ms = self.clock_ms()
        if now_ms is not None:
            self.advance(now_ms)

    def _row(self, interval: str, b: Bar) -> list:
        pd, qd = self.pd, self.qd
        return [b.open_ms, fmt(b.open, pd), fmt(b.high, pd), fmt(b.low, pd), fmt(b.close, pd),
                fmt(b.volume, qd), next_open(interval, b.open_ms) - 1, fmt(b.quote_volume, 8),
                b.trades, fmt(b.taker_buy_base, qd), fmt(b.taker_buy_quote, 8), "0"]

    def _k(self, interval: str, b: Bar, closed: bool) -> dict:
        pd, qd = self.pd, self.qd
        return {"t": b.open_ms, "T": next_open(interval, b.open_ms) - 1, "s": self.symbol, "i": interval,
                "f": b.first_id, "L": b.last_id, "o": fmt(b.open, pd), "c": fmt(b.close, pd),
                "h": fmt(b.high, pd), "l": fmt(b.low, pd), "v": fmt(b.volume, qd), "n": b.trades,
                "x": closed, "q": fmt(b.quote_volume, 8), "V": fmt(b.taker_buy_base, qd),
                "Q": fmt(b.taker_buy_quote, 8), "B": "0"}


def _span_ms(interval: str) -> int:
    return INTERVAL_MS.get(interval, 28 * _D)          # 1M: at least 28 days, for ordering only


class _Bucket:
    __slots__ = ("t", "seq", "bar")

    def __init__(self, t: int, seq: int, bar: Bar):
        self.t, self.seq, self.bar = t, seq, bar


class Ticker24h:
    """Rolling 24 h statistics, as REST /api/v3/ticker/24hr returns them.

    Trades are kept in `bucket_ms` buckets (1 s by default) so memory stays bounded however
    busy the market is; a bucket counts while any part of it lies inside [now - window, now],
    so the window's opening edge is exact to one bucket (bucket_ms=1 makes it exact).
    High/low come from monotonic deques (amortised O(1) per trade and per query).
    `book_top()` (optional) gives (bidPrice, bidQty, askPrice, askQty) or None.
    """

    def __init__(self, symbol: str, *, window_ms: int = _D, bucket_ms: int = 1000,
                 price_decimals: int = 8, qty_decimals: int = 8,
                 book_top: Callable[[], tuple | None] | None = None):
        self.symbol = symbol
        self.window_ms, self.bucket_ms = window_ms, bucket_ms
        self.pd, self.qd = price_decimals, qty_decimals
        self.book_top = book_top
        self._buckets: deque[_Bucket] = deque()
        self._maxq: deque[tuple[int, Decimal]] = deque()     # (seq, high), highs decreasing
        self._minq: deque[tuple[int, Decimal]] = deque()     # (seq, low), lows increasing
        self._seq = 0
        self.prev_close: Decimal | None = None               # last price before the window
        self.last_price: Decimal | None = None
        self.last_qty: Decimal = ZERO
        # Running window sums: add on each trade, subtract each evicted bucket (exact Decimal).
        self._volume = self._quote = ZERO
        self._count = 0
        self._last_id = -1

    def on_trade(self, trade: dict) -> None:
        bar = trade_bar(trade)
        self._add(bar, bar.volume)

    def seed(self, bars: Iterable[Bar], interval: str | None = None) -> None:
        """History bars count as one bucket each, at their open time (interval unused: the
        signature matches KlineAggregator.seed so both can be seeded alike)."""
        for bar in bars:
            self._add(replace(bar), ZERO)

    def _add(self, bar: Bar, qty: Decimal) -> None:
        t = bar.open_ms // self.bucket_ms * self.bucket_ms
        last = self._buckets[-1] if self._buckets else None
        if last is not None and t <= last.t:
            last.bar.merge(bar)                       # same bucket (or out of order: fold in)
            b = last
        else:
            self._seq += 1
            b = _Bucket(t, self._seq, replace(bar, open_ms=t))
            self._buckets.append(b)
        self._volume = _CTX.add(self._volume, bar.volume)
        self._quote = _CTX.add(self._quote, bar.quote_volume)
        self._count += bar.trades
        if bar.last_id >= 0:
            self._last_id = bar.last_id
        while self._maxq and self._maxq[-1][1] <= b.bar.high:
            self._maxq.pop()
        self._maxq.append((b.seq, b.bar.high))
        while self._minq and self._minq[-1][1] >= b.bar.low:
            self._minq.pop()
        self._minq.append((b.seq, b.bar.low))
        self.last_price, self.last_qty = bar.close, qty

    def _evict(self, now_ms: int) -> None:
        start = now_ms - self.window_ms
        while self._buckets and self._buckets[0].t + self.bucket_ms <= start:
            b = self._buckets.popleft()
            self.prev_close = b.bar.close
            self._volume = _CTX.subtract(self._volume, b.bar.volume)
            self._quote = _CTX.subtract(self._quote, b.bar.quote_volume)
            self._count -= b.bar.trades
            while self._maxq and self._maxq[0][0] <= b.seq:
                self._maxq.popleft()
            while self._minq and self._minq[0][0] <= b.seq:
                self._minq.popleft()

    def snapshot(self, now_ms: int) -> dict:
        self._evict(now_ms)
        pd, qd = self.pd, self.qd
        last = self.last_price if self.last_price is not None else ZERO
        volume, quote, count = self._volume, self._quote, self._count
        first_id = last_id = -1
        if self._buckets:
            # Seeded buckets carry no ids: the first id is the first bucket that has one.
            first_id = next((b.bar.first_id for b in self._buckets if b.bar.first_id >= 0), -1)
            last_id = self._last_id if first_id >= 0 else -1
        if self._buckets:
            open_ = self._buckets[0].bar.open
            high, low = self._maxq[0][1], self._minq[0][1]
        else:
            # No trade in the window: the market stood still at the last price.
            open_ = high = low = last
        prev = self.prev_close if self.prev_close is not None else open_
        change = _CTX.subtract(last, open_)
        pct = _CTX.divide(_CTX.multiply(change, 100), open_) if open_ else ZERO
        wavg = _CTX.divide(quote, volume) if volume else ZERO
        top = self.book_top() if self.book_top is not None else None
        bid, bid_qty, ask, ask_qty = (Decimal(str(x)) for x in top) if top else (ZERO,) * 4
        return {
            "symbol": self.symbol,
            "priceChange": fmt(change, pd), "priceChangePercent": fmt(pct, 3),
            "weightedAvgPrice": fmt(wavg, pd), "prevClosePrice": fmt(prev, pd),
            "lastPrice": fmt(last, pd), "lastQty": fmt(self.last_qty, qd),
            "bidPrice": fmt(bid, pd), "bidQty": fmt(bid_qty, qd),
            "askPrice": fmt(ask, pd), "askQty": fmt(ask_qty, qd),
            "openPrice": fmt(open_, pd), "highPrice": fmt(high, pd), "lowPrice": fmt(low, pd),
            "volume": fmt(volume, qd), "quoteVolume": fmt(quote, 8),
            "openTime": now_ms - self.window_ms, "closeTime": now_ms,
            "firstId": first_id, "lastId": last_id, "count": count,
        }
