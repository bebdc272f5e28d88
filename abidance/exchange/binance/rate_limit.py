"""The local request budget, kept in step with Binance's counters, and the 429/418 gate.

Binance counts request weight per IP per minute, raw requests (whatever their weight) per
IP per 5 minutes, and new orders per account per 10 s and per day, in fixed windows of its
clock. REST and the WebSocket API spend the same budgets. We count the same locally and wait (asyncio.sleep,
never a busy loop) before a request that would take us past `weight_safety_margin` of a
limit; every answer's X-MBX-* headers raise our counts to the server's when they are
higher (other processes on the same IP or account spend the same budget).

After a 429 every request waits until Retry-After has passed (a -1015 order-rate 429 holds
back orders only); after a 418 every request fails at once with IpBanned until the ban
ends: Binance lengthens a ban when requests keep coming, so nothing is sent, not even late.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass, replace
from typing import Awaitable, Callable, Mapping

from abidance.core import topics
from abidance.core.clock import LiveClock
from abidance.core.events import Alert
from abidance.exchange.binance.config import BinanceConfig
from abidance.exchange.binance.errors import IpBanned, OrderBudgetSpent

log = logging.getLogger("abidance.binance.rate_limit")

MINUTE_MS, TEN_S_MS, DAY_MS = 60_000, 10_000, 86_400_000
FIVE_MIN_MS = 5 * MINUTE_MS
SOURCE = "binance.rest"
_BANNED_UNTIL = re.compile(r"banned until (\d{12,})")


@dataclass(frozen=True)
class Limits:
    weight_per_minute: int = 6000
    orders_per_10s: int = 100
    orders_per_day: int = 200_000
    raw_requests_per_5m: int = 300_000      # 61,000 until Binance raised it on 2026-04-02


def limits_from_exchange_info(rate_limits: list, default: Limits) -> Limits:
    """REQUEST_WEIGHT/1 MINUTE, RAW_REQUESTS/5 MINUTE, ORDERS/10 SECOND and /1 DAY from exchangeInfo."""
    found: dict[str, int] = {}
    keys = {("REQUEST_WEIGHT", "MINUTE", 1): "weight_per_minute", ("ORDERS", "SECOND", 10): "orders_per_10s",
            ("ORDERS", "DAY", 1): "orders_per_day", ("RAW_REQUESTS", "MINUTE", 5): "raw_requests_per_5m"}
    for item in rate_limits if isinstance(rate_limits, list) else ():
        if not isinstance(item, dict):
            continue
        name = keys.get((item.get("rateLimitType"), item.get("interval"), item.get("intervalNum")))
        limit = item.get("limit")
        if name and isinstance(limit, int) and not isinstance(limit, bool) and limit > 0:
            found[name] = limit
    return replace(default, **found)


class _Window:
    """A fixed window of Binance's kind: [k * length, (k + 1) * length) of server time."""

    __slots__ = ("length_ms", "start_ms", "used")

    def __init__(self, length_ms: int):
        self.length_ms, self.start_ms, self.used = length_ms, -1, 0

    def roll(self, now_ms: int) -> None:
        start = now_ms - now_ms % self.length_ms
        if start != self.start_ms:
            self.start_ms, self.used = start, 0

    def ms_left(self, now_ms: int) -> int:
        return self.start_ms + self.length_ms - now_ms


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    raw = headers.get(name)
    if raw is None:
        raw = headers.get(name.lower())
    try:
        return int(raw) if raw is not None else None
    except (TypeError, ValueError):
        return None


class RateLimiter:
    def __init__(self, config: BinanceConfig | None = None, bus=None, clock=None, *,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep):
        config = config or BinanceConfig()
        self.bus = bus
        self.clock = clock or LiveClock()
        self._sleep = sleep     # injectable so unit tests can move a TestClock instead of waiting
        self.margin = config.weight_safety_margin
        self.limits = Limits(weight_per_minute=config.weight_limit_per_minute)
        self.offset_ms = 0      # server clock minus ours, set by the REST client's time sync
        self._weight = _Window(MINUTE_MS)
        self._raw = _Window(FIVE_MIN_MS)
        self._orders_10s = _Window(TEN_S_MS)
        self._orders_day = _Window(DAY_MS)
        self._retry_at_ms = 0           # 429: nothing before this (server ms)
        self._orders_retry_at_ms = 0    # -1015: no new order before this
        self._banned_until_ms = 0       # 418: nothing at all before this
        self.daily_order_budget = config.daily_order_budget
        self._day_spent_window = -1     # the day window whose budget ran out (alert and halt once)
        # counters
        self.requests = 0
        self.weight_used = 0
        self.throttled_waits = 0
        self.rate_limited_429 = 0
        self.banned_418 = 0

    # ---- limits -----------------------------------------------------------------------

    def update_limits(self, rate_limits: list) -> Limits:
        self.limits = limits_from_exchange_info(rate_limits, self.limits)
        log.info("rate limits: %s", self.limits)
        return self.limits

    def _budget(self, limit: int) -> int:
        return max(1, int(limit * self.margin))

    def now_ms(self) -> int:
        return self.clock.time_ms() + self.offset_ms

    @property
    def used_weight(self) -> int:
        self._weight.roll(self.now_ms())
        return self._weight.used

    @property
    def banned_until_ms(self) -> int:
        return self._banned_until_ms

    def counters(self) -> dict[str, int]:
        return {"requests": self.requests, "weight_used": self.weight_used, "throttled_waits": self.throttled_waits,
                "rate_limited_429": self.rate_limited_429, "banned_418": self.banned_418,
                "used_weight_1m": self.used_weight}

    # ---- before a request -------------------------------------------------------------

    async def reserve(self, weight: int, is_order: bool = False) -> None:
        """Wait until `weight` (and one order) fits the budget, then spend it.

        Raises IpBanned at once during a ban. When the day's order budget is spent an order
        waits for the next UTC day (binance.daily_order_budget = "wait") or is refused with
        OrderBudgetSpent after one critical alert and a halt request ("halt").
        """
        while True:
            now = self.now_ms()
            if now < self._banned_until_ms:
                raise IpBanned(-1003, f"IP banned until {self._banned_until_ms} (ms); nothing was sent",
                               until_ms=self._banned_until_ms)
            wait_ms = self._wait_ms(weight, is_order, now)
            if wait_ms <= 0:
                self._weight.used += weight
                self._raw.used += 1
                if is_order:
                    self._orders_10s.used += 1
                    self._orders_day.used += 1
                self.requests += 1
                self.weight_used += weight
                return
            self.throttled_waits += 1
            log.info("request budget: waiting %.3f s (weight %d, used %d/%d this minute%s)", wait_ms / 1000,
                     weight, self._weight.used, self.limits.weight_per_minute, ", order" if is_order else "")
            await self._sleep(wait_ms / 1000)

    def _wait_ms(self, weight: int, is_order: bool, now: int) -> int:
        wait = self._retry_at_ms - now
        if is_order:
            wait = max(wait, self._orders_retry_at_ms - now)
        if wait > 0:
            return wait
        w = self._weight
        w.roll(now)
        # A request heavier than the whole budget still goes alone into a fresh window.
        if w.used and w.used + weight > self._budget(self.limits.weight_per_minute):
            return w.ms_left(now)
        raw = self._raw
        raw.roll(now)
        if raw.used + 1 > self._budget(self.limits.raw_requests_per_5m):
            return raw.ms_left(now)
        if is_order:
            day = self._orders_day
            day.roll(now)
            if day.used + 1 > self._budget(self.limits.orders_per_day):
                return self._day_spent(day, now)
            ten = self._orders_10s
            ten.roll(now)
            if ten.used + 1 > self._budget(self.limits.orders_per_10s):
                return ten.ms_left(now)
        return 0

    def _day_spent(self, day: _Window, now: int) -> int:
        """The day's order budget is spent: wait for the next UTC day, or refuse and halt (once a day)."""
        first = self._day_spent_window != day.start_ms
        self._day_spent_window = day.start_ms
        text = (f"the day's order budget is spent ({day.used} of {self.limits.orders_per_day} orders, "
                f"{self.margin:.0%} kept); it renews in {day.ms_left(now) / 3_600_000:.1f} h")
        if self.daily_order_budget == "wait":
            if first:
                log.error("%s: new orders wait for the next UTC day", text)
                self._alert("critical", "order_budget_spent", f"{text}: new orders wait until then")
            return day.ms_left(now)
        if first:
            log.error("%s: trading halts (an operator resumes)", text)
            self._alert("critical", "order_budget_spent", f"{text}: new orders are refused and trading halts")
            if self.bus is not None:
                try:
                    self.bus.send(topics.HALT, f"daily order budget spent ({day.used} orders)")
                except LookupError:
                    log.error("no risk engine to halt: new orders are refused one by one")
        raise OrderBudgetSpent(-1015, f"{text}; not sent", 0, retry_after_s=day.ms_left(now) / 1000)

    # ---- after an answer --------------------------------------------------------------

    def on_response(self, status: int, headers: Mapping[str, str], code: int | None = None,
                    msg: str = "") -> None:
        """A REST answer: sync the counts from the X-MBX-* headers; open the 429 or 418 gate."""
        self._sync(_int_header(headers, "X-MBX-USED-WEIGHT-1M"), _int_header(headers, "X-MBX-ORDER-COUNT-10S"),
                   _int_header(headers, "X-MBX-ORDER-COUNT-1D"))
        if status in (418, 429):
            self._gate(status, _int_header(headers, "Retry-After"), code, msg)

    def on_ws_answer(self, status: int, rate_limits, code: int | None = None, msg: str = "",
                     retry_at_ms: int | None = None) -> None:
        """A WebSocket API answer: sync the counts from its `rateLimits`; open the 429 or 418 gate
        (the answer's `error.data.retryAfter` is a server time in ms, not a number of seconds)."""
        counts: dict[tuple, int] = {}
        for item in rate_limits if isinstance(rate_limits, list) else ():
            if isinstance(item, dict) and type(item.get("count")) is int:
                counts[(item.get("rateLimitType"), item.get("interval"), item.get("intervalNum"))] = item["count"]
        self._sync(counts.get(("REQUEST_WEIGHT", "MINUTE", 1)), counts.get(("ORDERS", "SECOND", 10)),
                   counts.get(("ORDERS", "DAY", 1)))
        if status in (418, 429):
            retry_after_s = None
            if retry_at_ms is not None:
                retry_after_s = max(1, -(-(retry_at_ms - self.now_ms()) // 1000))
            self._gate(status, retry_after_s, code, msg)

    def _sync(self, weight_1m: int | None, orders_10s: int | None, orders_day: int | None) -> None:
        """The server's counts win when higher (other processes spend the same budget)."""
        now = self.now_ms()
        for window, server in ((self._weight, weight_1m), (self._orders_10s, orders_10s),
                               (self._orders_day, orders_day)):
            if server is not None:
                window.roll(now)
                if server > window.used:
                    window.used = server

    def _gate(self, status: int, retry_after_s: int | None, code: int | None, msg: str) -> None:
        now = self.now_ms()
        if status == 418:
            until = now + 1000 * (retry_after_s if retry_after_s is not None else 120)
            stated = _BANNED_UNTIL.search(msg or "")
            if stated:
                until = max(until, int(stated.group(1)))
            self.banned_418 += 1
            new_ban = now >= self._banned_until_ms
            self._banned_until_ms = max(self._banned_until_ms, until)
            log.error("HTTP 418: IP banned by Binance until %d (%.0f s); every request fails until then",
                      self._banned_until_ms, (self._banned_until_ms - now) / 1000)
            if new_ban:
                self._alert("critical", "ip_banned",
                            f"Binance banned this IP until {self._banned_until_ms} (ms, server time); "
                            "requests are refused locally until then")
            return
        self._weight.roll(now)
        wait_ms = 1000 * retry_after_s if retry_after_s is not None else self._weight.ms_left(now)
        self.rate_limited_429 += 1
        orders_only = code == -1015
        gate = "_orders_retry_at_ms" if orders_only else "_retry_at_ms"
        new_gate = now >= getattr(self, gate)
        setattr(self, gate, max(getattr(self, gate), now + wait_ms))
        log.warning("HTTP 429 (code %s): %s wait %.1f s", code, "new orders" if orders_only else "all requests",
                    wait_ms / 1000)
        if new_gate:
            self._alert("warning", "rate_limited",
                        f"Binance answered 429 (code {code}); {'orders' if orders_only else 'requests'} "
                        f"held back for {wait_ms / 1000:.1f} s")

    def _alert(self, level: str, code: str, message: str) -> None:
        if self.bus is not None:
            self.bus.publish(topics.ALERTS, Alert(level, SOURCE, code, message, self.clock.time_ns()))
