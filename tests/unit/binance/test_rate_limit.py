"""The local request budget, header sync and the 429/418 gate, on a TestClock."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from abidance.core import topics
from abidance.core.bus import MessageBus
from abidance.core.clock import TestClock
from abidance.exchange.binance.config import BinanceConfig
from abidance.exchange.binance.errors import IpBanned, OrderBudgetSpent, RateLimited
from abidance.exchange.binance.rate_limit import Limits, RateLimiter
from tests.kit import shared_data

START_MS = 1_700_000_050_000        # 10 s into a minute, at the start of a 10 s window


class FakeSleep:
    """Moves the TestClock instead of waiting, and records each wait."""

    def __init__(self, clock: TestClock):
        self.clock, self.waits = clock, []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.clock.advance(round(seconds * 1e9))
        await asyncio.sleep(0)


def make(weight_per_minute=100, margin=0.9):
    clock = TestClock(START_MS * 1_000_000)
    bus = MessageBus()
    alerts = []
    bus.subscribe(topics.ALERTS, alerts.append)
    sleep = FakeSleep(clock)
    limiter = RateLimiter(BinanceConfig(weight_limit_per_minute=weight_per_minute, weight_safety_margin=margin),
                          bus, clock, sleep=sleep)
    return limiter, clock, sleep, alerts


def run(coro):
    return asyncio.run(coro)


def test_within_budget_then_no_wait_and_counted():
    limiter, _, sleep, _ = make()
    run(limiter.reserve(50))
    run(limiter.reserve(40))                  # 90 = 100 * 0.9: exactly the budget
    assert sleep.waits == []
    assert (limiter.requests, limiter.weight_used, limiter.used_weight) == (2, 90, 90)


def test_over_budget_then_waits_for_the_next_minute_and_starts_it():
    limiter, clock, sleep, _ = make()
    run(limiter.reserve(90))
    run(limiter.reserve(1))
    assert sleep.waits == [50.0]              # the minute started 10 s before START
    assert clock.time_ms() == START_MS + 50_000
    assert limiter.used_weight == 1 and limiter.throttled_waits == 1


def test_a_request_heavier_than_the_budget_goes_alone_in_a_fresh_minute():
    limiter, _, sleep, _ = make()
    run(limiter.reserve(250))                 # e.g. depth limit=5000 with a small limit: never a deadlock
    assert sleep.waits == [] and limiter.used_weight == 250
    run(limiter.reserve(1))
    assert sleep.waits == [50.0]


def test_concurrent_reservations_never_overspend():
    limiter, _, sleep, _ = make()

    async def many():
        await asyncio.gather(*(limiter.reserve(10) for _ in range(20)))

    run(many())
    assert limiter.requests == 20 and limiter.weight_used == 200
    assert len(sleep.waits) >= 2              # 9 per minute fit: 20 need three minutes


def test_orders_per_10s_budget_waits_for_the_next_window():
    limiter, clock, sleep, _ = make(weight_per_minute=6000)
    limiter.update_limits([{"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 10}])
    for _ in range(9):
        run(limiter.reserve(1, is_order=True))
    assert sleep.waits == []
    run(limiter.reserve(1, is_order=True))
    assert sleep.waits == [10.0]
    run(limiter.reserve(1))                   # not an order: the order budget does not apply
    assert len(sleep.waits) == 1


def test_daily_order_budget_spent_then_refused_with_one_alert_and_one_halt_request():
    limiter, _, sleep, alerts = make(weight_per_minute=6000)
    halts = []
    limiter.bus.register(topics.HALT, halts.append)
    limiter.limits = Limits(6000, 100, 2)
    run(limiter.reserve(1, is_order=True))
    for _ in range(3):
        with pytest.raises(OrderBudgetSpent, match="order budget is spent") as info:
            run(limiter.reserve(1, is_order=True))
        assert info.value.retry_after_s > 0 and isinstance(info.value, RateLimited)
    assert sleep.waits == []
    assert [a.code for a in alerts] == ["order_budget_spent"] and alerts[0].level == "critical"
    assert len(halts) == 1 and "daily order budget" in halts[0]
    run(limiter.reserve(1))                   # not an order: still allowed


def test_daily_order_budget_spent_then_orders_wait_for_the_next_day_when_told_to():
    clock = TestClock(START_MS * 1_000_000)
    sleep = FakeSleep(clock)
    bus = MessageBus()
    alerts = []
    bus.subscribe(topics.ALERTS, alerts.append)
    limiter = RateLimiter(BinanceConfig(daily_order_budget="wait"), bus, clock, sleep=sleep)
    limiter.limits = Limits(6000, 100, 2)
    run(limiter.reserve(1, is_order=True))
    run(limiter.reserve(1, is_order=True))
    assert sleep.waits == [(86_400_000 - START_MS % 86_400_000) / 1000]     # to 00:00 UTC
    assert [a.code for a in alerts] == ["order_budget_spent"]


def test_limits_from_real_exchange_info_rate_limits():
    payload = orjson.loads(shared_data("binance-nt", "http", "http_spot_market_exchange_info.json").read_bytes())
    limiter, _, _, _ = make()
    assert limiter.update_limits(payload["rateLimits"]) == Limits(1200, 50, 160_000, 6100)
    assert limiter.update_limits([{"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10,
                                   "limit": "x"}, "junk"]) == Limits(1200, 50, 160_000, 6100)


def test_raw_requests_budget_waits_for_the_next_five_minute_window_whatever_the_weight():
    limiter, clock, sleep, _ = make(weight_per_minute=6000)
    limiter.update_limits([{"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 10}])
    for _ in range(9):                        # 90 % of 10
        run(limiter.reserve(0))
    assert sleep.waits == []
    run(limiter.reserve(0))
    # Binance's windows are aligned: this one ends at the next multiple of 5 minutes.
    assert sleep.waits == [(300_000 - START_MS % 300_000) / 1000]


def test_headers_raise_the_local_counts_but_never_lower_them():
    limiter, _, sleep, _ = make()
    run(limiter.reserve(10))
    limiter.on_response(200, {"X-MBX-USED-WEIGHT-1M": "85"})
    assert limiter.used_weight == 85
    limiter.on_response(200, {"x-mbx-used-weight-1m": "3"})     # lower: ours stands
    assert limiter.used_weight == 85
    run(limiter.reserve(10))
    assert sleep.waits == [50.0]


def test_order_count_headers_sync_the_order_budget():
    limiter, _, sleep, _ = make(weight_per_minute=6000)
    limiter.on_response(200, {"X-MBX-ORDER-COUNT-10S": "90", "X-MBX-ORDER-COUNT-1D": "90"})
    run(limiter.reserve(1, is_order=True))
    assert sleep.waits == [10.0]


def test_429_gates_every_request_until_retry_after_and_alerts_once_per_gate():
    limiter, clock, sleep, alerts = make(weight_per_minute=6000)
    limiter.on_response(429, {"Retry-After": "3", "X-MBX-USED-WEIGHT-1M": "10"}, -1003, "Too many requests")
    limiter.on_response(429, {"Retry-After": "3"}, -1003, "Too many requests")   # a second one in flight
    assert [(a.level, a.code) for a in alerts] == [("warning", "rate_limited")]
    assert limiter.rate_limited_429 == 2
    run(limiter.reserve(1))
    assert sleep.waits == [3.0] and clock.time_ms() == START_MS + 3000
    run(limiter.reserve(1))
    assert len(sleep.waits) == 1              # gate over
    limiter.on_response(429, {"Retry-After": "1"}, -1003)
    assert len(alerts) == 2                   # a new gate, a new alert


def test_429_without_retry_after_waits_for_the_end_of_the_minute():
    limiter, _, sleep, _ = make(weight_per_minute=6000)
    limiter.on_response(429, {}, -1003)
    run(limiter.reserve(1))
    assert sleep.waits == [50.0]


def test_order_rate_429_holds_back_orders_only():
    limiter, _, sleep, _ = make(weight_per_minute=6000)
    limiter.on_response(429, {"Retry-After": "5"}, -1015, "Too many new orders")
    run(limiter.reserve(1))
    assert sleep.waits == []
    run(limiter.reserve(1, is_order=True))
    assert sleep.waits == [5.0]


def test_418_fails_fast_without_waiting_and_alerts_once_per_ban():
    limiter, clock, sleep, alerts = make(weight_per_minute=6000)
    limiter.on_response(418, {"Retry-After": "120"}, -1003, "Way too many requests; IP banned.")
    for _ in range(5):
        with pytest.raises(IpBanned) as info:
            run(limiter.reserve(1))
        assert info.value.until_ms == START_MS + 120_000
    limiter.on_response(418, {"Retry-After": "60"}, -1003)       # a late answer of the same ban
    assert sleep.waits == [] and limiter.requests == 0 and limiter.banned_418 == 2
    assert [(a.level, a.code, a.source) for a in alerts] == [("critical", "ip_banned", "binance.rest")]
    clock.advance(120 * 10**9)
    run(limiter.reserve(1))                   # the ban is over
    assert limiter.requests == 1
    limiter.on_response(418, {"Retry-After": "120"}, -1003)
    assert len(alerts) == 2                   # a new ban, a new alert


def test_418_uses_the_ban_end_binance_states_when_later():
    limiter, _, _, _ = make()
    until = START_MS + 600_000
    limiter.on_response(418, {"Retry-After": "120"}, -1003, f"Way too many requests; IP banned until {until}.")
    assert limiter.banned_until_ms == until


def test_default_sleep_is_asyncio_sleep_on_the_live_clock():
    limiter = RateLimiter(BinanceConfig())
    limiter.on_response(429, {"Retry-After": "0"}, -1003)      # a zero wait: passes at once
    run(limiter.reserve(1))
    assert limiter.counters()["requests"] == 1 and limiter.counters()["rate_limited_429"] == 1
