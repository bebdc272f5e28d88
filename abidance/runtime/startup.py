"""Start-up against a venue that is not answering yet: retry with capped, jittered backoff.

One 503 or 429 on exchangeInfo, the clock, the account or the user-data subscription must not
end `abidance run`: each start-up step is retried until the venue answers, and every attempt
is reported (a log line, systemd's STATUS=, the start-up file `abidance health` reads). Only
what waiting cannot fix is final: a key the venue refuses (-2014, -2015, -1022, HTTP 401) and
a config error. They raise StartupError, a ValueError whose one-line message names the cause,
which `abidance run` prints before exiting with code 2.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path

import orjson

from abidance.core.errors import VenueError
from abidance.exchange.binance.backoff import Backoff
from abidance.exchange.binance.errors import BinanceApiError, IpBanned, RateLimited
from abidance.runtime import systemd

log = logging.getLogger("abidance.node")

STARTUP_FILE = "node-startup.json"          # beside node-state.json while the node is starting
AUTH_CODES = {-2014, -2015, -1022, -1002}   # bad key format, key refused/permissions/IP, bad signature, unauthorised


class StartupError(ValueError):
    """Start-up cannot succeed by waiting (the key or the config must change)."""


def is_final(exc: BaseException) -> bool:
    if isinstance(exc, BinanceApiError):
        return exc.code in AUTH_CODES or exc.http_status == 401
    return False


def describe(exc: BaseException) -> str:
    """One line, no secrets: venue errors name only code, endpoint and Binance's text."""
    return str(exc) if isinstance(exc, VenueError) else f"{type(exc).__name__}: {exc}"


class Startup:
    """Runs the node's start-up steps until each succeeds, reporting every attempt."""

    def __init__(self, state_dir: str | os.PathLike, initial_s: float = 0.5, max_s: float = 30.0,
                 jitter: float = 0.2, sleep=asyncio.sleep):
        self.path = Path(state_dir) / STARTUP_FILE
        self.backoff = Backoff(initial_s, max_s, jitter)
        self.sleep = sleep
        self.attempts = 0           # failed attempts over every step

    async def step(self, what: str, call):
        """await call() until it returns; final errors raise StartupError naming `what`."""
        self.backoff.reset()
        while True:
            try:
                return await call()
            except (BinanceApiError, VenueError, asyncio.TimeoutError, OSError) as exc:
                if is_final(exc):
                    raise StartupError(f"{what}: the venue refused the API key ({describe(exc)}); "
                                       "check the key, its permissions and IP whitelist") from None
                self.attempts += 1
                delay = self.backoff.next_delay()
                if isinstance(exc, IpBanned) and exc.until_ms:
                    delay = max(delay, exc.until_ms / 1000 - time.time())
                elif isinstance(exc, RateLimited) and exc.retry_after_s:
                    delay = max(delay, exc.retry_after_s)
                self.report(what, describe(exc), delay)
                await self.sleep(delay)

    def report(self, what: str, error: str, delay: float) -> None:
        status = f"starting: {what} failed (attempt {self.attempts}): {error}; retry in {delay:.1f}s"
        log.warning("%s", status)
        systemd.notify(f"STATUS={status}")
        self._write({"phase": what, "attempt": self.attempts, "error": error, "retry_in_s": round(delay, 3),
                     "ts": time.time()})

    def done(self) -> None:
        """Started: the state file is the sign of life from now on."""
        try:
            self.path.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("cannot remove %s: %s", self.path, exc)

    def _write(self, record: dict) -> None:
        # Small and rare (one per failed attempt, seconds apart): written in place, never fsync'd.
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_bytes(orjson.dumps(record))
            os.replace(tmp, self.path)
        except OSError as exc:
            log.warning("cannot write %s: %s", self.path, exc)


def read_startup(state_dir: Path) -> dict | None:
    """The start-up file of a node still starting (for `abidance health`), None when absent or unreadable."""
    try:
        return orjson.loads((Path(state_dir) / STARTUP_FILE).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
