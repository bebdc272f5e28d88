"""Time for the engines: always from a clock object, never time.time() inside them.

Both clocks offer timers (`call_at`, `call_every`) so engines schedule work the same
way live (on the event loop) and in a backtest (fired by `advance_to` in time order).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from typing import Callable


class Timer:
    __slots__ = ("when_ns", "callback", "interval_ns", "cancelled", "_handle")

    def __init__(self, when_ns: int, callback: Callable[[int], None], interval_ns: int = 0):
        self.when_ns = when_ns
        self.callback = callback
        self.interval_ns = interval_ns
        self.cancelled = False
        self._handle = None

    def cancel(self) -> None:
        self.cancelled = True
        if self._handle is not None:
            self._handle.cancel()


class LiveClock:
    """Wall time in int64 nanoseconds (UTC); timers on the running event loop."""

    # The C function itself, not a Python method around it: read several times per tick.
    time_ns = staticmethod(time.time_ns)

    def time_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def monotonic(self) -> float:
        return time.monotonic()

    def call_at(self, when_ns: int, callback: Callable[[int], None]) -> Timer:
        """Call callback(now_ns) at wall time when_ns (or soon after)."""
        timer = Timer(when_ns, callback)
        self._arm(timer)
        return timer

    def call_every(self, interval_ns: int, callback: Callable[[int], None], first_ns: int | None = None) -> Timer:
        if interval_ns <= 0:
            raise ValueError("a timer interval must be positive")
        timer = Timer(first_ns if first_ns is not None else self.time_ns() + interval_ns, callback, interval_ns)
        self._arm(timer)
        return timer

    def _arm(self, timer: Timer) -> None:
        loop = asyncio.get_running_loop()
        delay = max(0.0, (timer.when_ns - time.time_ns()) / 1e9)
        timer._handle = loop.call_later(delay, self._fire, timer)

    def _fire(self, timer: Timer) -> None:
        if timer.cancelled:
            return
        now = time.time_ns()
        if now < timer.when_ns:             # the loop woke a little early: wait the rest
            self._arm(timer)
            return
        try:
            timer.callback(now)
        finally:
            if timer.interval_ns and not timer.cancelled:
                # Catch up on the schedule, never drift, never fire a backlog in a burst.
                timer.when_ns += timer.interval_ns * max(1, (now - timer.when_ns) // timer.interval_ns + 1)
                self._arm(timer)


class TestClock:
    """A clock moved by hand (backtests, tests): timers fire in time order as it advances."""

    __test__ = False  # not a pytest class

    def __init__(self, start_ns: int = 0) -> None:
        self._ns = start_ns
        self._timers: list[tuple[int, int, Timer]] = []
        self._seq = itertools.count()

    def time_ns(self) -> int:
        return self._ns

    def time_ms(self) -> int:
        return self._ns // 1_000_000

    def monotonic(self) -> float:
        return self._ns / 1e9

    def call_at(self, when_ns: int, callback: Callable[[int], None]) -> Timer:
        timer = Timer(when_ns, callback)
        heapq.heappush(self._timers, (when_ns, next(self._seq), timer))
        return timer

    def call_every(self, interval_ns: int, callback: Callable[[int], None], first_ns: int | None = None) -> Timer:
        if interval_ns <= 0:
            raise ValueError("a timer interval must be positive")
        timer = Timer(first_ns if first_ns is not None else self._ns + interval_ns, callback, interval_ns)
        heapq.heappush(self._timers, (timer.when_ns, next(self._seq), timer))
        return timer

    def next_timer_ns(self) -> int | None:
        while self._timers and self._timers[0][2].cancelled:
            heapq.heappop(self._timers)
        return self._timers[0][0] if self._timers else None

    def advance_to(self, ns: int) -> None:
        """Move to ns, firing every timer due on the way at its own time."""
        if ns < self._ns:
            raise ValueError("a clock cannot go backwards")
        while self._timers and self._timers[0][0] <= ns:
            when, _, timer = heapq.heappop(self._timers)
            if timer.cancelled:
                continue
            self._ns = max(self._ns, when)
            timer.callback(self._ns)
            if timer.interval_ns and not timer.cancelled:
                timer.when_ns = when + timer.interval_ns
                heapq.heappush(self._timers, (timer.when_ns, next(self._seq), timer))
        self._ns = ns

    def advance(self, ns: int) -> None:
        if ns < 0:
            raise ValueError("a clock cannot go backwards")
        self.advance_to(self._ns + ns)

    def set(self, ns: int) -> None:
        self.advance_to(ns)
