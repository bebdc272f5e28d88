"""Streaming anomaly detectors: plain state machines fed one observation at a time, no bus, no I/O.

Each `update(...)` returns an `Anomaly` when it fires, else None; every one holds bounded state
(a fixed window or a time-bounded deque), and the per-message cost is O(1) — except the robust
statistics, whose window (at most a few hundred samples, one per bucket or second) is updated
once per bucket with a binary-search insert. The monitor (monitor.py) feeds them from the bus;
evaluate.py feeds them recorded data with injected anomalies. docs/anomaly.md describes each.
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from collections import deque
from dataclasses import dataclass
from decimal import Decimal

NS = 1_000_000_000
MAD_SCALE = 1.4826          # MAD -> standard deviation for a normal distribution
PLAUSIBLE_LAG_NS = 3600 * NS    # a "lag" beyond an hour is another clock, not a slow feed


@dataclass(frozen=True)
class Anomaly:
    detector: str           # price_jump, spread, volume, feed_lag, feed_stall, slippage, rejections, drawdown, balance
    key: str                # the symbol, stream or asset it is about ("" for the account)
    value: float            # the measured figure (bps, z-score, seconds, count...)
    threshold: float
    message: str
    ts: int                 # ns


class RollingMedian:
    """Median (and MAD) of the last `size` values: a FIFO plus a sorted copy (bisect insert/remove)."""

    def __init__(self, size: int):
        self.size = size
        self.fifo: deque[float] = deque()
        self.sorted: list[float] = []

    def add(self, x: float) -> None:
        self.fifo.append(x)
        insort(self.sorted, x)
        if len(self.fifo) > self.size:
            old = self.fifo.popleft()
            del self.sorted[bisect_left(self.sorted, old)]

    def __len__(self) -> int:
        return len(self.fifo)

    def median(self) -> float:
        s, n = self.sorted, len(self.sorted)
        return 0.0 if n == 0 else s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2

    def mad(self) -> float:
        m = self.median()
        dev = sorted(abs(x - m) for x in self.sorted)
        n = len(dev)
        return 0.0 if n == 0 else dev[n // 2] if n % 2 else (dev[n // 2 - 1] + dev[n // 2]) / 2


class _Cooldown:
    def __init__(self, cooldown_s: float):
        self.ns = int(cooldown_s * NS)
        self.last: dict[str, int] = {}

    def ready(self, key: str, ts: int) -> bool:
        at = self.last.get(key)
        if at is not None and ts - at < self.ns:
            return False
        self.last[key] = ts
        return True


class PriceJump:
    """A trade this many bps away from the time-decayed mean price of the last `window_s` (an EWMA
    with that time constant, so O(1) per trade and a slow trend moves the reference with it)."""

    def __init__(self, bps: float, window_s: float, cooldown_s: float = 300.0, warmup: int = 20):
        self.bps, self.tau = bps, window_s * NS
        self.warmup = warmup
        self.state: dict[str, list] = {}        # symbol -> [ref, last_ts, count]
        self.cool = _Cooldown(cooldown_s)

    def update(self, symbol: str, price: float, ts: int) -> Anomaly | None:
        if not self.bps or price <= 0:
            return None
        st = self.state.get(symbol)
        if st is None:
            self.state[symbol] = [price, ts, 1]
            return None
        ref, last, n = st
        dev = (price - ref) / ref * 1e4
        x = (ts - last) / self.tau if ts > last else 0.0
        a = x if x < 1e-4 else 1.0 - math.exp(-x)          # 1 - e^-x = x to 5e-9 below 1e-4
        st[0], st[1], st[2] = ref + a * (price - ref), ts, n + 1
        if n >= self.warmup and abs(dev) >= self.bps and self.cool.ready(symbol, ts):
            return Anomaly("price_jump", symbol, dev, self.bps,
                           f"{symbol}: price {price:g} is {dev:+.0f} bps from its {self.tau / NS:g}s mean {ref:g}", ts)
        return None


class SpreadBlowout:
    """Best bid/ask spread wider than `bps` and `factor` x its rolling median (sampled once a second)."""

    def __init__(self, bps: float, factor: float, window: int = 300, cooldown_s: float = 300.0, warmup: int = 30):
        self.bps, self.factor, self.window, self.warmup = bps, factor, window, warmup
        self.medians: dict[str, RollingMedian] = {}
        self.sampled: dict[str, int] = {}
        self.cool = _Cooldown(cooldown_s)

    def update(self, symbol: str, bid: float, ask: float, ts: int) -> Anomaly | None:
        if not self.bps or bid <= 0 or ask <= 0 or ask < bid:
            return None
        spread = (ask - bid) / ((ask + bid) / 2) * 1e4
        med = self.medians.get(symbol)
        if med is None:
            med = self.medians[symbol] = RollingMedian(self.window)
        fired = None
        if len(med) >= self.warmup:
            base = med.median()
            if spread >= self.bps and spread >= self.factor * base and self.cool.ready(symbol, ts):
                fired = Anomaly("spread", symbol, spread, max(self.bps, self.factor * base),
                                f"{symbol}: spread {spread:.1f} bps, {spread / base if base else math.inf:.1f}x its "
                                f"median {base:.1f} bps", ts)
        if ts - self.sampled.get(symbol, -NS) >= NS and fired is None:
            self.sampled[symbol] = ts
            med.add(spread)
        return fired


class VolumeSpike:
    """A bucket's traded quantity with a robust z-score above `z`: against the median and MAD of the last
    `window` buckets, on log(1 + volume) (volume is heavy-tailed: on raw volume a quiet market's MAD is
    tiny and ordinary busy minutes score 10+; on real 1-minute volumes the log's robust z stays under 4.3)."""

    def __init__(self, z: float, bucket_s: float, window: int, cooldown_s: float = 300.0):
        self.z, self.bucket, self.window = z, int(bucket_s * NS), window
        self.state: dict[str, list] = {}        # symbol -> [bucket start, volume]
        self.history: dict[str, RollingMedian] = {}
        self.cool = _Cooldown(cooldown_s)

    def update(self, symbol: str, qty: float, ts: int) -> Anomaly | None:
        if not self.z:
            return None
        start = ts - ts % self.bucket
        st = self.state.get(symbol)
        if st is None:
            self.state[symbol] = [start, qty]
            self.history[symbol] = RollingMedian(self.window)
            return None
        fired = None
        if start != st[0]:
            fired = self._close(symbol, st[0], st[1], ts)
            hist = self.history[symbol]
            gaps = min((start - st[0]) // self.bucket - 1, self.window)
            for _ in range(gaps):               # buckets without trades count as zero volume
                hist.add(0.0)
            st[0], st[1] = start, qty
        else:
            st[1] += qty
        return fired

    def _close(self, symbol: str, start: int, volume: float, ts: int) -> Anomaly | None:
        hist = self.history[symbol]
        fired = None
        x = math.log1p(max(volume, 0.0))
        # With the median bucket empty the market trades too rarely for this bucket size to have a
        # baseline: no spike is judged (any trade would be one).
        if len(hist) >= self.window // 2 and hist.median() > 0:
            med, mad = hist.median(), hist.mad()
            z = (x - med) / max(MAD_SCALE * mad, 0.05)
            if z >= self.z and self.cool.ready(symbol, ts):
                fired = Anomaly("volume", symbol, z, self.z, f"{symbol}: volume {volume:g} in {self.bucket // NS}s, "
                                f"{volume / math.expm1(med):.0f}x the median, robust z "
                                f"{z:.1f}", ts)
        hist.add(x)
        return fired


class FeedLag:
    """Market messages arriving `lag_ms` or more after their exchange time, `count` in a row."""

    def __init__(self, lag_ms: float, count: int, cooldown_s: float = 300.0):
        self.lag_ns, self.count = int(lag_ms * 1e6), count
        self.late: dict[str, int] = {}
        self.implausible = 0
        self.cool = _Cooldown(cooldown_s)

    def update(self, stream: str, ts_event: int, ts_recv: int) -> Anomaly | None:
        lag = ts_recv - ts_event
        if lag < self.lag_ns:                       # the common case first (also lag_ns = 0: off)
            if self.late.get(stream):
                self.late[stream] = 0
            return None
        if not self.lag_ns or ts_event <= 0:
            return None
        if lag > PLAUSIBLE_LAG_NS:
            # Event times from another clock (a replay of recorded data, a venue's broken clock: the
            # connector reports clock skew): not a delay of this feed.
            self.implausible += 1
            return None
        n = self.late[stream] = self.late.get(stream, 0) + 1
        if n >= self.count and self.cool.ready(stream, ts_recv):
            return Anomaly("feed_lag", stream, lag / 1e6, self.lag_ns / 1e6,
                           f"{stream}: messages arrive {lag / 1e6:.0f} ms after their exchange time ({n} in a row)",
                           ts_recv)
        return None


class FeedStall:
    """A stream silent for `stall_s`: checked on a timer (`check(now)`), once per silence."""

    def __init__(self, stall_s: float):
        self.stall = int(stall_s * NS)
        self.last: dict[str, int] = {}
        self.stalled: set[str] = set()

    def seen(self, stream: str, ts: int) -> str | None:
        """Record a message; returns the stream when it resumes after a reported stall."""
        self.last[stream] = ts
        if stream in self.stalled:
            self.stalled.discard(stream)
            return stream
        return None

    def check(self, now: int) -> list[Anomaly]:
        out = []
        if not self.stall:
            return out
        for stream, at in self.last.items():
            if now - at >= self.stall and stream not in self.stalled:
                self.stalled.add(stream)
                out.append(Anomaly("feed_stall", stream, (now - at) / NS, self.stall / NS,
                                   f"{stream}: no market data for {(now - at) / NS:.1f}s", now))
        return out


class Slippage:
    """A fill this many bps worse than the market price when its order was decided."""

    def __init__(self, bps: float, max_orders: int = 10000):
        self.bps, self.max_orders = bps, max_orders
        self.decided: dict[str, tuple[str, float]] = {}     # client order id -> (side, reference price)

    def decide(self, client_order_id: str, side: str, ref_price: float) -> None:
        if ref_price > 0:
            if len(self.decided) >= self.max_orders:
                self.decided.pop(next(iter(self.decided)))       # oldest first: bounded
            self.decided[client_order_id] = (side, ref_price)

    def done(self, client_order_id: str) -> None:
        self.decided.pop(client_order_id, None)

    def fill(self, client_order_id: str, symbol: str, price: float, ts: int) -> Anomaly | None:
        entry = self.decided.get(client_order_id)
        if not self.bps or entry is None or price <= 0:
            return None
        side, ref = entry
        bps = (price - ref) / ref * 1e4 * (1 if side == "BUY" else -1)
        if bps >= self.bps:
            return Anomaly("slippage", symbol, bps, self.bps, f"{symbol}: {side} {client_order_id} filled at "
                           f"{price:g}, {bps:.0f} bps worse than {ref:g} when decided", ts)
        return None


class RejectionBurst:
    """`count` or more order rejections within `window_s`."""

    def __init__(self, count: int, window_s: float, cooldown_s: float = 300.0):
        self.count, self.window = count, int(window_s * NS)
        self.times: deque[int] = deque()
        self.reasons: deque[str] = deque()
        self.cool = _Cooldown(cooldown_s)

    def update(self, ts: int, reason: str = "") -> Anomaly | None:
        if not self.count:
            return None
        self.times.append(ts)
        self.reasons.append(reason)
        while self.times and ts - self.times[0] > self.window:
            self.times.popleft()
            self.reasons.popleft()
        n = len(self.times)
        if n >= self.count and self.cool.ready("", ts):
            common = max(set(self.reasons), key=list(self.reasons).count)
            return Anomaly("rejections", "", n, self.count, f"{n} orders rejected in {self.window / NS:g}s "
                           f"(most often: {common or 'no reason given'})", ts)
        return None


class DrawdownVelocity:
    """Equity falling by `amount` (quote) or `bps` of its value within `window_s`: the drop from the
    window's highest equity (a monotonic deque: O(1) amortised), exact in Decimal."""

    def __init__(self, amount: Decimal, bps: float, window_s: float, cooldown_s: float = 300.0):
        self.amount, self.bps, self.window = Decimal(amount), Decimal(str(bps)), int(window_s * NS)
        self.maxq: deque[tuple[int, Decimal]] = deque()
        self.cool = _Cooldown(cooldown_s)

    def update(self, equity: Decimal, ts: int) -> Anomaly | None:
        q = self.maxq
        while q and q[-1][1] <= equity:
            q.pop()
        q.append((ts, equity))
        while ts - q[0][0] > self.window:
            q.popleft()
        peak = q[0][1]
        drop = peak - equity
        if drop <= 0 or peak <= 0:
            return None
        bps = drop / peak * 10000
        hit = (self.amount > 0 and drop >= self.amount) or (self.bps > 0 and bps >= self.bps)
        if hit and self.cool.ready("", ts):
            return Anomaly("drawdown", "", float(bps), float(self.bps), f"equity fell {drop} ({bps:.0f} bps) from "
                           f"{peak} within {self.window / NS:g}s", ts)
        return None


class BalanceDrift:
    """The exchange's balances against a ledger kept from fills and transfers (exact Decimal).

    A difference beyond the tolerance (`bps` of the balance, at least `amount` in the quote
    asset when a price is known) is suspected on one report and fires when the next report of
    that asset still shows it (a fill and its balance update may cross); then the exchange's
    figure is adopted."""

    def __init__(self, amount: Decimal, bps: float):
        self.amount, self.bps = Decimal(amount), Decimal(str(bps))
        self.ledger: dict[str, Decimal] = {}
        self.known = False
        self.suspect: dict[str, Decimal] = {}

    def apply(self, asset: str, delta: Decimal) -> None:
        if self.known:
            self.ledger[asset] = self.ledger.get(asset, Decimal(0)) + delta

    def report(self, balances: dict[str, Decimal], full: bool, ts: int, value=None) -> list[Anomaly]:
        """`value(asset, qty)` -> the quantity's worth in the quote asset, or None when unpriced."""
        if not self.known:
            if full:
                self.ledger, self.known = dict(balances), True
            return []
        out = []
        assets = set(balances) | (set(self.ledger) if full else set())
        for asset in sorted(assets):
            theirs, ours = balances.get(asset, Decimal(0)), self.ledger.get(asset, Decimal(0))
            diff = theirs - ours
            tolerance = abs(theirs) * self.bps / 10000
            worth = value(asset, abs(diff)) if value is not None else None
            over = abs(diff) > tolerance and (self.amount <= 0 or worth is None or worth > self.amount)
            if not over:
                self.suspect.pop(asset, None)
                continue
            if asset not in self.suspect:
                self.suspect[asset] = diff
                continue
            del self.suspect[asset]
            self.ledger[asset] = theirs
            out.append(Anomaly("balance", asset, float(diff), float(self.bps), f"{asset}: the exchange holds {theirs}, "
                               f"the fills say {ours} (diff {diff}{f', worth {worth:f}' if worth is not None else ''})",
                               ts))
        return out
