"""Exponential backoff with jitter for reconnects: never a reconnect storm."""

from __future__ import annotations

import random


class Backoff:
    def __init__(self, initial_s: float, max_s: float, jitter: float, rng: random.Random | None = None):
        self.initial_s = initial_s
        self.max_s = max_s
        self.jitter = jitter
        self._rng = rng or random.Random()
        self.attempt = 0

    def next_delay(self) -> float:
        """The wait before the next attempt: initial * 2**attempt, capped, +- jitter."""
        base = min(self.max_s, self.initial_s * (2 ** min(self.attempt, 30)))
        self.attempt += 1
        return base * (1 + self._rng.uniform(-self.jitter, self.jitter))

    def reset(self) -> None:
        self.attempt = 0
