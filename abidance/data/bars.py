"""Bars from trades, closed on time; and a small history of closed bars for strategies.

`BarAggregator` folds trades (int ticks / steps) into time bars aligned to UTC multiples
of the interval, as Binance aligns its klines: a 1m bar opens on the minute, a 1d bar at
00:00 UTC, a 1w bar on Monday 00:00 UTC, a 1M bar on the first day of a calendar month
(so its length varies: `bar_open` / `bar_close`). A trade belongs to the bar holding its trade time (`ts_trade`): open_time is
inclusive, close_time exclusive.

A bar is closed by a clock timer at its close_time (plus an optional grace), so it is
emitted on time even when the market is quiet. The timer runs on event time: the clock
time of the last bar change minus that trade's time is the skew, and the timer fires at
close_time + skew. Live, the skew is the feed's latency; in a backtest it is 0; against
an accelerated replay (event time running faster than the clock) the trades close the
bars and the timer is only the backstop. Trades on one symbol's stream arrive in
trade-time order, so a trade that belongs to a later bar also closes every bar before it
at once (it proves they are complete). The two paths share one rule, "close every bar
whose close_time is at or before t", so a bar is never emitted twice and never reopened.
"""

from __future__ import annotations

import calendar
import logging
from collections import deque
from datetime import datetime, timezone
from typing import Callable, Iterable

from abidance.core.events import Bar

log = logging.getLogger("abidance.data.bars")

_S = 1_000_000_000
INTERVALS: dict[str, int] = {
    "1s": _S,
    "1m": 60 * _S,
    "3m": 3 * 60 * _S,
    "5m": 5 * 60 * _S,
    "15m": 15 * 60 * _S,
    "30m": 30 * 60 * _S,
    "1h": 3600 * _S,
    "2h": 2 * 3600 * _S,
    "4h": 4 * 3600 * _S,
    "6h": 6 * 3600 * _S,
    "8h": 8 * 3600 * _S,
    "12h": 12 * 3600 * _S,
    "1d": 86400 * _S,
    "1w": 7 * 86400 * _S,
    "1M": 28 * 86400 * _S,      # calendar months: the shortest one; bar_close gives each one's end
}
MONTH = "1M"
_WEEK_ANCHOR = 4 * 86400 * _S   # 1970-01-05, the first Monday after the epoch (a Thursday)

_NEVER = -(1 << 62)     # open/close time before the first trade: every real time is after it


def parse_interval(text: str) -> int:
    """A bar interval ("1s", "1m", ... "1d", "1w", "1M", as Binance names klines) in nanoseconds
    (for "1M", the shortest month: bar_close gives a month's real end)."""
    try:
        return INTERVALS[text]
    except (KeyError, TypeError):
        raise ValueError(f"unknown bar interval {text!r}: use one of {', '.join(INTERVALS)}") from None


def _month_start(year: int, month: int) -> int:
    return calendar.timegm((year, month, 1, 0, 0, 0)) * _S


def bar_open(interval: str, t: int) -> int:
    """Open time (ns) of the `interval` bar holding time t (ns), as Binance bounds its klines."""
    if interval == MONTH:
        d = datetime.fromtimestamp(t // _S, tz=timezone.utc)
        return _month_start(d.year, d.month)
    size = parse_interval(interval)
    anchor = _WEEK_ANCHOR if interval == "1w" else 0
    return (t - anchor) // size * size + anchor


def bar_close(interval: str, open_time: int) -> int:
    """Close time (ns, exclusive: the next bar's open) of the bar opening at open_time."""
    if interval == MONTH:
        d = datetime.fromtimestamp(open_time // _S, tz=timezone.utc)
        return _month_start(d.year + d.month // 12, d.month % 12 + 1)
    return open_time + parse_interval(interval)


def _bars_before(interval: str, open_time: int, t: int) -> int:
    """How many bars from the one opening at open_time to the one holding t (t >= open_time)."""
    if interval == MONTH:
        a = datetime.fromtimestamp(open_time // _S, tz=timezone.utc)
        b = datetime.fromtimestamp(t // _S, tz=timezone.utc)
        return (b.year - a.year) * 12 + b.month - a.month
    return (t - open_time) // parse_interval(interval)


class BarAggregator:
    """Time bars for one symbol and one interval, built from its trades.

    `on_trade(ev)` takes a TradeEvent of this symbol (the caller routes by symbol); per
    trade it only updates a few int attributes. A Bar is allocated when a bar closes and
    handed to `on_bar` (an exception there is logged and counted, never lost state).

    Closing:
    - a clock timer closes the current bar at its close_time (+ `grace_ns`): works with the
      LiveClock (asyncio timers; the first trade must arrive on the running loop) and the
      TestClock (fired in order by `advance_to`);
    - a trade whose time is at or after the current close_time first closes the current bar
      and every bar in between, then opens its own.

    Empty bars: once a first trade was seen, a bar in which no trade happened is still
    emitted on time, carrying the previous close as open, high, low and close, with
    volume 0 and trades 0. Before the first trade nothing is emitted. A gap of more than
    `max_empty_bars` empty bars in one go (a trade timestamped far ahead, a clock jump) is
    not filled: those bars are counted in `skipped_bars` and logged.

    Late trades: a trade for a bar that is already closed (its time is before the current
    bar's open_time, e.g. it arrived after the timer closed its bar) is counted in
    `late_trades` and ignored: a closed bar is never reopened. Give `grace_ns` to wait a
    little past close_time for stragglers (network latency, clock skew) on quiet markets.
    """

    __slots__ = ("symbol", "interval", "interval_ns", "clock", "on_bar", "grace_ns", "max_empty_bars",
                 "_open_time", "_close_time", "_open", "_high", "_low", "_close", "_volume", "_trades",
                 "_timer", "_skew", "trades", "late_trades", "bars_emitted", "empty_bars", "skipped_bars",
                 "callback_errors")

    def __init__(self, symbol: str, interval: str, clock, on_bar: Callable[[Bar], None], *,
                 grace_ns: int = 0, max_empty_bars: int = 10_000):
        if grace_ns < 0:
            raise ValueError("grace_ns must be >= 0")
        if max_empty_bars < 0:
            raise ValueError("max_empty_bars must be >= 0")
        self.symbol = symbol
        self.interval = interval
        self.interval_ns = parse_interval(interval)
        self.clock = clock
        self.on_bar = on_bar
        self.grace_ns = grace_ns
        self.max_empty_bars = max_empty_bars
        self._open_time = _NEVER
        self._close_time = _NEVER
        self._open = self._high = self._low = self._close = 0
        self._volume = 0
        self._trades = 0
        self._timer = None
        self._skew = 0              # clock time minus event time, measured at the last bar change
        self.trades = 0             # trades folded into bars
        self.late_trades = 0
        self.bars_emitted = 0
        self.empty_bars = 0
        self.skipped_bars = 0
        self.callback_errors = 0

    # ---- input -------------------------------------------------------------------------

    def on_trade(self, ev) -> None:
        t = ev.ts_trade
        if t >= self._close_time:
            if self._timer is None:
                self._begin(t)
            else:
                self._close_until(t)
                self._skew = self.clock.time_ns() - t
                self._arm()
        elif t < self._open_time:
            self.late_trades += 1
            return
        price = ev.price
        if self._trades:
            if price > self._high:
                self._high = price
            elif price < self._low:
                self._low = price
        else:
            self._open = self._high = self._low = price
        self._close = price
        self._volume += ev.qty
        self._trades += 1
        self.trades += 1

    handle_trade = on_trade     # the bus-facing name

    # ---- state -------------------------------------------------------------------------

    @property
    def started(self) -> bool:
        """True once the first trade was seen (bars are being emitted)."""
        return self._timer is not None

    @property
    def open_time(self) -> int | None:
        """Open time (ns) of the bar being built, None before the first trade."""
        return self._open_time if self._timer is not None else None

    def partial(self) -> Bar | None:
        """The bar being built as it stands now (not closed), None before the first trade."""
        if self._timer is None:
            return None
        return Bar(self.symbol, self.interval, self._open_time, self._close_time, self._open, self._high,
                   self._low, self._close, self._volume, self._trades)

    def stop(self) -> None:
        """Cancel the closing timer; the bar being built is dropped (not emitted)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._open_time = self._close_time = _NEVER
        self._volume = self._trades = 0

    close = stop

    # ---- closing -----------------------------------------------------------------------

    def _begin(self, t: int) -> None:
        self._open_time = bar_open(self.interval, t)
        self._close_time = bar_close(self.interval, self._open_time)
        self._skew = self.clock.time_ns() - t
        self._arm()

    def _arm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self.clock.call_at(self._close_time + self._skew + self.grace_ns, self._on_timer)

    def _on_timer(self, now_ns: int) -> None:
        self._close_until(now_ns - self._skew - self.grace_ns)
        if self._timer is not None:      # not stopped by the callback
            self._arm()

    def _close_until(self, t: int) -> None:
        """Close every bar whose close_time <= t, then the current bar is the one holding t."""
        if t < self._close_time:
            return
        self._emit()
        gap = _bars_before(self.interval, self._open_time, t)      # empty bars before the one holding t
        if gap > self.max_empty_bars:
            self.skipped_bars += gap
            log.warning("%s %s: %d empty bars not filled (jump from %d to %d)", self.symbol, self.interval,
                        gap, self._open_time, t)
            self._open_time = bar_open(self.interval, t)
            self._close_time = bar_close(self.interval, self._open_time)
            return
        while self._close_time <= t:
            self._emit()

    def _emit(self) -> None:
        bar = Bar(self.symbol, self.interval, self._open_time, self._close_time, self._open, self._high,
                  self._low, self._close, self._volume, self._trades)
        if not self._trades:
            self.empty_bars += 1
        # Move on before the callback so that nothing it does can see or re-emit this bar.
        self._open_time = self._close_time
        self._close_time = (self._close_time + self.interval_ns if self.interval != MONTH
                            else bar_close(MONTH, self._close_time))
        self._open = self._high = self._low = self._close
        self._volume = 0
        self._trades = 0
        self.bars_emitted += 1
        try:
            self.on_bar(bar)
        except Exception:
            self.callback_errors += 1
            log.exception("%s %s: bar callback failed", self.symbol, self.interval)


class BarHistory:
    """The last `capacity` closed bars per (symbol, interval), oldest first.

    `add(bar)` is a bus handler for topics.BARS; a bar that does not open after the last
    one kept for its series (a duplicate or out of order) is ignored and counted.
    """

    def __init__(self, capacity: int = 1000):
        if capacity <= 0:
            raise ValueError("capacity must be positive")
        self.capacity = capacity
        self._series: dict[tuple[str, str], deque[Bar]] = {}
        self.ignored = 0

    def add(self, bar: Bar) -> None:
        key = (bar.symbol, bar.interval)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = deque(maxlen=self.capacity)
        elif series and bar.open_time <= series[-1].open_time:
            self.ignored += 1
            return
        series.append(bar)

    handle_bar = add

    def extend(self, bars: Iterable[Bar]) -> None:
        for bar in bars:
            self.add(bar)

    def last(self, symbol: str, interval: str, n: int = 1) -> list[Bar]:
        """The last n bars (fewer when fewer were kept), oldest first."""
        series = self._series.get((symbol, interval))
        if not series or n <= 0:
            return []
        if n >= len(series):
            return list(series)
        return [series[i] for i in range(len(series) - n, len(series))]

    def latest(self, symbol: str, interval: str) -> Bar | None:
        series = self._series.get((symbol, interval))
        return series[-1] if series else None

    def closes(self, symbol: str, interval: str, n: int) -> list[int]:
        """Close prices (ticks) of the last n bars, oldest first."""
        return [b.close for b in self.last(symbol, interval, n)]

    def count(self, symbol: str, interval: str) -> int:
        series = self._series.get((symbol, interval))
        return len(series) if series else 0

    def series(self) -> list[tuple[str, str]]:
        return sorted(self._series)

    def __len__(self) -> int:
        return sum(len(s) for s in self._series.values())
