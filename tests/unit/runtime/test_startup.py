"""Start-up retries (abidance/runtime/startup.py): transient venue errors are retried with a
capped backoff and reported (log, start-up file read by `abidance health`); a refused key is final."""

from __future__ import annotations

import asyncio

import pytest

from abidance.exchange.binance.errors import BinanceApiError, RateLimited
from abidance.runtime import health
from abidance.runtime.startup import STARTUP_FILE, Startup, StartupError


def flaky(*errors, result="up"):
    pending = list(errors)

    async def call():
        if pending:
            raise pending.pop(0)
        return result
    return call


def test_transient_errors_are_retried_with_growing_capped_delays_and_reported(tmp_path, caplog):
    slept = []

    async def sleep(s):
        slept.append(s)
    startup = Startup(tmp_path, initial_s=0.5, max_s=2.0, jitter=0.0, sleep=sleep)
    errors = [BinanceApiError(-1007, "busy", 503, method="GET", path="/api/v3/exchangeInfo")] * 4
    seen = []

    async def run():
        async def call():
            if len(seen) == 0 and slept:
                seen.append(health.check("", str(tmp_path), 60))
            return await inner()
        inner = flaky(*errors, RateLimited(-1003, "slow down", retry_after_s=3.0))
        return await startup.step("exchangeInfo", call)
    assert asyncio.run(run()) == "up"
    assert slept == [0.5, 1.0, 2.0, 2.0, 3.0]        # doubling, capped at 2, a Retry-After respected
    assert startup.attempts == 5
    ok, why = seen[0]
    assert not ok and why.startswith("starting: exchangeInfo failed (attempt 1)")
    assert "retry in" in caplog.text
    startup.done()
    assert not (tmp_path / STARTUP_FILE).exists()


@pytest.mark.parametrize("error", [BinanceApiError(-2015, "Invalid API-key, IP, or permissions for action.", 401),
                                   BinanceApiError(-2014, "API-key format invalid.", 400)])
def test_a_refused_key_is_final_with_one_line_naming_the_step(tmp_path, error):
    startup = Startup(tmp_path, sleep=lambda s: asyncio.sleep(0))
    with pytest.raises(StartupError, match=r"^account: the venue refused the API key .*-20") as info:
        asyncio.run(startup.step("account", flaky(error)))
    assert "\n" not in str(info.value)
