"""Time for the engines: always from a clock object, never time.time() inside them."""

from __future__ import annotations

import time


class LiveClock:
    """Wall time in int64 nanoseconds (UTC) and a monotonic time for intervals."""

    def time_ns(self) -> int:
        return time.time_ns()

    def time_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def monotonic(self) -> float:
        return time.monotonic()


class TestClock:
    """A clock moved by hand: backtests and tests."""

    __test__ = False  # not a pytest class

    def __init__(self, start_ns: int = 0) -> None:
        self._ns = start_ns

    def time_ns(self) -> int:
        return self._ns

    def time_ms(self) -> int:
        return self._ns // 1_000_000

    def monotonic(self) -> float:
        return self._ns / 1e9

    def advance(self, ns: int) -> None:
        if ns < 0:
            raise ValueError("a clock cannot go backwards")
        self._ns += ns

    def set(self, ns: int) -> None:
        if ns < self._ns:
            raise ValueError("a clock cannot go backwards")
        self._ns = ns
