"""SimClock (real or accelerated time) and ManualClock (tests)."""

import asyncio
import time

import pytest

from abidance.exchange.sim.clock import ManualClock, SimClock


def test_realtime_clock_is_the_wall_clock():
    clock = SimClock()
    assert clock.realtime
    assert abs(clock.now_ms() - time.time() * 1000) < 1000


def test_shifted_clock_starts_at_start_ms_and_runs_at_real_speed():
    clock = SimClock(start_ms=1_500_000_000_000)
    assert not clock.realtime
    t0 = clock.now_ms()
    assert 1_500_000_000_000 <= t0 < 1_500_000_001_000
    time.sleep(0.02)
    assert 15 <= clock.now_ms() - t0 < 5_000


def test_accelerated_clock_runs_speed_times_faster_and_never_goes_back():
    clock = SimClock(speed=1000, start_ms=0)
    t0 = clock.now_ms()
    time.sleep(0.02)
    t1 = clock.now_ms()
    assert 15_000 <= t1 - t0 < 5_000_000       # 20 ms real = 20 s sim (generous upper bound)
    samples = [clock.now_ms() for _ in range(1000)]
    assert samples == sorted(samples)


@pytest.mark.parametrize("speed", [0, -1.0])
def test_speed_must_be_positive(speed):
    with pytest.raises(ValueError):
        SimClock(speed=speed)


def test_sleep_until_ms_returns_once_sim_time_is_reached():
    clock = SimClock(speed=500, start_ms=10_000)
    target = clock.now_ms() + 5_000            # 10 ms of real time

    async def run():
        await clock.sleep_until_ms(target)
        return clock.now_ms()

    started = time.monotonic()
    assert asyncio.run(run()) >= target
    assert time.monotonic() - started < 2.0
    asyncio.run(clock.sleep_until_ms(0))       # in the past: returns at once


def test_manual_clock_advance_and_set():
    clock = ManualClock(1_000)
    assert clock.now_ms() == 1_000
    assert clock.advance(250) == 1_250
    assert clock.set(2_000) == 2_000
    with pytest.raises(ValueError):
        clock.set(1_999)
    with pytest.raises(ValueError):
        clock.advance(-1)


def test_manual_clock_sleep_waits_for_advance():
    clock = ManualClock(0)

    async def run():
        woke = []

        async def sleeper():
            await clock.sleep_until_ms(100)
            woke.append(clock.now_ms())

        task = asyncio.create_task(sleeper())
        await asyncio.sleep(0)
        clock.advance(50)
        await asyncio.sleep(0)
        assert not woke
        clock.advance(60)
        await task
        return woke

    assert asyncio.run(run()) == [110]


def test_manual_clock_auto_advance_jumps_to_the_target():
    clock = ManualClock(0, auto_advance=True)
    asyncio.run(clock.sleep_until_ms(5_000))
    assert clock.now_ms() == 5_000
