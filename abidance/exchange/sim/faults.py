"""Seeded, logged fault injection: what a live exchange does to a bot on a bad day.

Every fault decision comes from one `random.Random(seed)` and is logged with a sequence
number, so a failing test can be replayed with the same seed. Settings come from the
config file, the CLI, or the admin endpoint (POST /admin/faults) while running.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from dataclasses import asdict, dataclass, fields

from abidance.exchange.sim import errors

log = logging.getLogger("abidance.sim.faults")


@dataclass
class FaultSettings:
    seed: int = 0
    # The rest_* faults apply to REST requests and WebSocket API requests alike.
    rest_latency_ms: int = 0          # added to every REST response
    rest_5xx_rate: float = 0.0        # share of REST calls answered 503 (order status unknown)
    rest_429_rate: float = 0.0        # share answered 429 with Retry-After
    rest_418_rate: float = 0.0        # share answered 418 (IP ban)
    order_reply_lost_rate: float = 0.0  # share of executed orders answered 503 -1007 (status unknown)
    depth_drop_rate: float = 0.0      # share of depthUpdate events dropped (a gap for the client)
    depth_duplicate_rate: float = 0.0  # share sent twice
    depth_reorder_rate: float = 0.0   # share held back and sent after the next one
    stream_stall_s: float = 0.0       # while > 0 at start: streams send nothing for this long
    clock_skew_ms: int = 0            # added to the server clock used for signatures and /time
    max_connection_s: float = 86_400  # Binance's 24-hour cut, compressible for tests
    rest_fail_next: int = 0           # the next N requests answered 503 and 429 in turn (a venue waking up)
    market_slippage_bps: int = 0      # a user's MARKET fills this much worse than the book level it takes

    def validate(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            lo, hi = FAULT_RANGES.get(f.name, (0.0, 1.0))
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"faults.{f.name} must be a number, got {value!r}")
            if f.name == "seed" and not isinstance(value, int):
                raise ValueError(f"faults.seed must be an integer, got {value!r}")
            if not math.isfinite(value) or not lo <= value <= hi:
                raise ValueError(f"faults.{f.name} must be within [{lo:g}, {hi:g}], got {value!r}")
        if self.max_connection_s <= 0:
            raise ValueError(f"faults.max_connection_s must be positive, got {self.max_connection_s!r}")


# Bounds of the settings that are not a share ([0, 1]): a latency of 1e300 ms would hang every call.
FAULT_RANGES = {
    "seed": (0, 2**63 - 1),
    "rest_latency_ms": (0, 60_000),
    "stream_stall_s": (0.0, 3_600.0),
    "clock_skew_ms": (-3_600_000, 3_600_000),
    "max_connection_s": (0.0, 7 * 86_400.0),
    "rest_fail_next": (0, 1_000_000),
    "market_slippage_bps": (0, 5_000),
}


@dataclass(frozen=True, slots=True)
class SlippedFill:
    """One fill the slippage fault made worse: the book's price and the price charged, in ticks.
    The truth a drift report's slippage line is checked against (tests/e2e)."""

    symbol: str
    trade_id: int
    order_id: int
    side: str
    qty_steps: int
    book_ticks: int
    charged_ticks: int


def slipped_ticks(side: str, book_ticks: int, bps: int) -> int:
    """`bps` worse than the book for the taker, rounded to the tick against it (exact integers):
    a BUY pays ceil(p (1 + bps/1e4)), a SELL gets floor(p (1 - bps/1e4)), never below 1 tick."""
    if side == "BUY":
        return -(-book_ticks * (10_000 + bps) // 10_000)
    return max(book_ticks * (10_000 - bps) // 10_000, 1)


class Faults:
    def __init__(self, settings: FaultSettings | None = None):
        self.settings = settings or FaultSettings()
        self.settings.validate()
        self.rng = random.Random(self.settings.seed)
        self.injected = 0
        self._held: dict[str, dict] = {}
        self.stall_until_ms = 0
        self.slipped: list[SlippedFill] = []    # every fill the slippage fault changed, in order

    def update(self, changes: dict) -> FaultSettings:
        """Apply settings from the admin endpoint; unknown keys are an error naming the key."""
        known = {f.name: f.type for f in fields(FaultSettings)}
        merged = asdict(self.settings)
        for key, value in changes.items():
            if key not in known:
                raise ValueError(f"unknown fault setting {key!r}; known: {', '.join(sorted(known))}")
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"fault setting {key!r} must be a number, got {value!r}")
            merged[key] = value
        settings = FaultSettings(**merged)
        settings.validate()
        if settings.seed != self.settings.seed:
            self.rng = random.Random(settings.seed)
        self.settings = settings
        log.warning("fault settings now %s", settings)
        return settings

    def _fire(self, rate: float, what: str, **context) -> bool:
        if rate <= 0.0 or self.rng.random() >= rate:
            return False
        self.injected += 1
        log.warning("fault #%d (seed %d): %s %s", self.injected, self.settings.seed, what, context or "")
        return True

    async def before_rest(self, path: str) -> None:
        if path.startswith("/admin"):
            return
        if self.settings.rest_latency_ms > 0:
            await asyncio.sleep(self.settings.rest_latency_ms / 1000)
        fault = self.request_fault(path)
        if fault is not None:
            raise fault

    def request_fault(self, path: str) -> errors.BinanceError | None:
        """The injected 418 / 429 / 5xx for one request (REST or WebSocket API), or None."""
        s = self.settings
        if s.rest_fail_next > 0:
            s.rest_fail_next -= 1
            self.injected += 1
            log.warning("fault #%d: %s answered %s (%d more to fail)", self.injected, path,
                        "429" if s.rest_fail_next % 2 else "503", s.rest_fail_next)
            if s.rest_fail_next % 2:
                return errors.too_many_requests("Too many requests (injected fault).", 1)
            return errors.BinanceError(-1007, "Service unavailable (injected fault).", 503)
        if self._fire(s.rest_418_rate, "418", path=path):
            return errors.ip_banned("Way too many requests; IP banned (injected fault).", 120)
        if self._fire(s.rest_429_rate, "429", path=path):
            return errors.too_many_requests("Too many requests (injected fault).", 1)
        if self._fire(s.rest_5xx_rate, "503", path=path):
            return errors.BinanceError(-1007, "Timeout waiting for response from backend server. "
                                       "Send status unknown; execution status unknown.", 503)
        return None

    def lose_order_reply(self, path: str) -> bool:
        """After an order was executed: answer 'status unknown' instead of the result?"""
        return self._fire(self.settings.order_reply_lost_rate, "order executed, reply lost (503)", path=path)

    def depth_events(self, name: str, payload: dict) -> list[dict]:
        """What actually goes out for one depthUpdate: [], [it], [it, it], or a held one."""
        s = self.settings
        if self._fire(s.depth_drop_rate, "depth event dropped", stream=name, U=payload["U"], u=payload["u"]):
            return []
        out = [payload]
        if self._fire(s.depth_duplicate_rate, "depth event duplicated", stream=name, U=payload["U"]):
            out.append(payload)
        held = self._held.pop(name, None)
        if held is not None:
            out.append(held)   # the held-back event now arrives after a newer one
        elif self._fire(s.depth_reorder_rate, "depth event held back", stream=name, U=payload["U"]):
            self._held[name] = payload
            out.remove(payload)
        return out

    def market_fill_ticks(self, side: str, book_ticks: int) -> int:
        """The price a user's MARKET order is charged for a fill at the book's `book_ticks`."""
        bps = self.settings.market_slippage_bps
        return slipped_ticks(side, book_ticks, bps) if bps > 0 else book_ticks

    def record_slip(self, fill: SlippedFill) -> None:
        self.slipped.append(fill)
        self.injected += 1
        log.info("fault #%d: %s %s order %d filled at %d ticks, the book's %d", self.injected, fill.symbol,
                    fill.side, fill.order_id, fill.charged_ticks, fill.book_ticks)

    def streams_stalled(self, now_ms: int) -> bool:
        return now_ms < self.stall_until_ms

    def stall(self, seconds: float, now_ms: int) -> None:
        self.stall_until_ms = now_ms + int(seconds * 1000)
        self.injected += 1
        log.warning("fault #%d: streams stalled for %.1fs", self.injected, seconds)
