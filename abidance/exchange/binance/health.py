"""Per-stream counters: message rate, event-time lag, last message age."""

from __future__ import annotations

import time

from abidance.core.events import StreamHealth


class StreamStats:
    __slots__ = ("name", "messages", "_window_messages", "_lag_sum_ns", "_lag_max_ns", "last_ns")

    def __init__(self, name: str):
        self.name = name
        self.messages = 0
        self._window_messages = 0
        self._lag_sum_ns = 0
        self._lag_max_ns = 0
        self.last_ns = 0

    def record(self, ts_init: int, lag_ns: int) -> None:
        self.last_ns = ts_init
        self.messages += 1
        self._window_messages += 1
        self._lag_sum_ns += lag_ns
        if lag_ns > self._lag_max_ns:
            self._lag_max_ns = lag_ns

    def take(self, interval_s: float, now_ns: int) -> StreamHealth:
        n = self._window_messages
        out = StreamHealth(
            stream=self.name, messages=self.messages, rate_per_s=n / interval_s if interval_s > 0 else 0.0,
            lag_ms_mean=self._lag_sum_ns / n / 1e6 if n else 0.0, lag_ms_max=self._lag_max_ns / 1e6,
            last_message_age_s=(now_ns - self.last_ns) / 1e9 if self.last_ns else float("inf"),
        )
        self._window_messages = self._lag_sum_ns = self._lag_max_ns = 0
        return out


class HealthBook:
    """Stats keyed by stream name (e.g. "btcusdt@trade"), created on first use."""

    def __init__(self):
        self.streams: dict[str, StreamStats] = {}
        self._last_take = time.monotonic()

    def stats(self, name: str) -> StreamStats:
        s = self.streams.get(name)
        if s is None:
            s = self.streams[name] = StreamStats(name)
        return s

    def take(self, now_ns: int) -> tuple[StreamHealth, ...]:
        now = time.monotonic()
        interval, self._last_take = now - self._last_take, now
        return tuple(s.take(interval, now_ns) for s in self.streams.values())
