"""The simulator's only source of time.

Everything in the sim asks a clock for `now_ms()`; nothing else reads the wall clock, so a
run can go faster than real time (speed > 1), start at a historical instant (candle replay),
or be driven by hand in tests (ManualClock).
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int: ...

    async def sleep_until_ms(self, t_ms: int) -> None: ...


class SimClock:
    """Real time (speed 1, no start) or accelerated/shifted time.

    With `speed == 1` and `start_ms is None` it is the wall clock (so signed requests'
    timestamps from a real client pass the recvWindow check). Otherwise sim time is
    `start_ms + (monotonic elapsed) * speed`, measured from a monotonic base so that wall
    clock adjustments (NTP steps) never make sim time jump or go backwards.
    """

    def __init__(self, speed: float = 1.0, start_ms: int | None = None):
        if not speed > 0:
            raise ValueError(f"speed must be > 0, got {speed!r}")
        self.speed = float(speed)
        self.realtime = speed == 1.0 and start_ms is None
        self._base_ns = time.monotonic_ns()
        self.start_ms = int(start_ms) if start_ms is not None else time.time_ns() // 1_000_000

    def now_ms(self) -> int:
        if self.realtime:
            return time.time_ns() // 1_000_000
        elapsed_ms = (time.monotonic_ns() - self._base_ns) / 1e6
        return self.start_ms + int(elapsed_ms * self.speed)

    def real_seconds_until(self, t_ms: int) -> float:
        """Wall seconds until sim time reaches t_ms (0 when already past)."""
        return max(0.0, (t_ms - self.now_ms()) / 1000.0 / self.speed)

    async def sleep_until_ms(self, t_ms: int) -> None:
        # Loop: asyncio.sleep may wake a little early; never return before sim time t_ms.
        while self.now_ms() < t_ms:
            await asyncio.sleep(max(self.real_seconds_until(t_ms), 0.0005))


class ManualClock:
    """A clock that moves only when told (tests, deterministic replays).

    `sleep_until_ms` either waits until someone advances the clock far enough or, with
    `auto_advance=True`, jumps the clock to the target (a discrete-event run: no waiting).
    """

    def __init__(self, start_ms: int = 0, *, auto_advance: bool = False):
        self._now = int(start_ms)
        self.auto_advance = auto_advance
        self._waiters: list[tuple[int, asyncio.Future]] = []

    def now_ms(self) -> int:
        return self._now

    def advance(self, ms: int) -> int:
        if ms < 0:
            raise ValueError("a clock never goes backwards")
        return self.set(self._now + int(ms))

    def set(self, t_ms: int) -> int:
        if t_ms < self._now:
            raise ValueError(f"a clock never goes backwards ({t_ms} < {self._now})")
        self._now = int(t_ms)
        still = []
        for target, fut in self._waiters:
            if target <= self._now:
                if not fut.done():
                    fut.set_result(None)
            else:
                still.append((target, fut))
        self._waiters = still
        return self._now

    async def sleep_until_ms(self, t_ms: int) -> None:
        if t_ms <= self._now:
            return
        if self.auto_advance:
            self.set(t_ms)
            return
        fut = asyncio.get_running_loop().create_future()
        self._waiters.append((t_ms, fut))
        await fut
