"""Request-weight and order-count accounting, 429 then 418 like Binance.

Weights are counted per client IP per minute (X-MBX-USED-WEIGHT-1M); new orders per
account per 10 s and per day (X-MBX-ORDER-COUNT-10S / -1D). A client over its limit gets
429 with Retry-After; one that keeps sending while limited is banned with 418 for a
time that doubles on each repeat (Binance: 2 minutes up to 3 days).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from abidance.exchange.sim import errors

MINUTE_MS = 60_000
TEN_S_MS = 10_000
DAY_MS = 86_400_000


@dataclass
class RateLimitConfig:
    weight_per_minute: int = 6000
    orders_per_10s: int = 100
    orders_per_day: int = 200_000
    violations_before_ban: int = 3      # requests sent while limited before a 418
    first_ban_s: int = 120
    max_ban_s: int = 3 * 86_400

    def validate(self) -> None:
        for name, (lo, hi) in LIMIT_RANGES.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
                raise ValueError(f"limits.{name} must be an integer within [{lo}, {hi}], got {value!r}")


LIMIT_RANGES = {
    "weight_per_minute": (1, 10_000_000),
    "orders_per_10s": (1, 1_000_000),
    "orders_per_day": (1, 100_000_000),
    "violations_before_ban": (0, 1_000_000),
    "first_ban_s": (1, 30 * 86_400),
    "max_ban_s": (1, 30 * 86_400),
}


@dataclass
class _IpState:
    window: int = -1
    used: int = 0
    limited_until_ms: int = 0
    violations: int = 0
    banned_until_ms: int = 0
    bans: int = 0


@dataclass
class _OrderState:
    window_10s: int = -1
    count_10s: int = 0
    day: int = -1
    count_day: int = 0


@dataclass
class RateLimiter:
    config: RateLimitConfig = field(default_factory=RateLimitConfig)
    _ips: dict[str, _IpState] = field(default_factory=dict)
    _orders: dict[int, _OrderState] = field(default_factory=dict)

    def charge(self, ip: str, weight: int, now_ms: int) -> int:
        """Charge a request's weight; returns the minute's used weight or raises 429/418."""
        st = self._ips.setdefault(ip, _IpState())
        if now_ms < st.banned_until_ms:
            raise errors.ip_banned(
                f"Way too many requests; IP banned until {st.banned_until_ms}.",
                _seconds_until(st.banned_until_ms, now_ms))
        window = now_ms // MINUTE_MS
        if window != st.window:
            st.window, st.used = window, 0
        if now_ms < st.limited_until_ms:
            # Still limited and not waiting: Binance escalates to a ban.
            st.violations += 1
            if st.violations >= self.config.violations_before_ban:
                ban_s = min(self.config.first_ban_s * (2 ** st.bans), self.config.max_ban_s)
                st.bans += 1
                st.violations = 0
                st.banned_until_ms = now_ms + ban_s * 1000
                raise errors.ip_banned(
                    f"Way too many requests; IP banned until {st.banned_until_ms}.", ban_s)
            raise errors.too_many_requests(
                "Too many requests; current limit is exceeded. Please use the Retry-After header.",
                _seconds_until(st.limited_until_ms, now_ms))
        st.used += weight
        if st.used > self.config.weight_per_minute:
            st.limited_until_ms = (window + 1) * MINUTE_MS
            raise errors.too_many_requests(
                f"Too much request weight used; current limit is {self.config.weight_per_minute} "
                f"request weight per 1 MINUTE. Please use the websocket for live updates to avoid polling the API.",
                _seconds_until(st.limited_until_ms, now_ms))
        return st.used

    def refund(self, ip: str, weight: int, now_ms: int) -> int:
        """Give back a charged weight (a request that turned out free); returns the minute's used weight."""
        st = self._ips.get(ip)
        if st is not None and st.window == now_ms // MINUTE_MS:
            st.used = max(0, st.used - weight)
        return self.used_weight(ip, now_ms)

    def ban(self, ip: str, seconds: int, now_ms: int) -> None:
        """Ban an IP (an injected 418 is a real ban: requests in it are refused too)."""
        st = self._ips.setdefault(ip, _IpState())
        st.banned_until_ms = max(st.banned_until_ms, now_ms + seconds * 1000)

    def used_weight(self, ip: str, now_ms: int) -> int:
        st = self._ips.get(ip)
        if st is None or st.window != now_ms // MINUTE_MS:
            return 0
        return st.used

    def count_order(self, account_id: int, now_ms: int) -> tuple[int, int]:
        """Count a new order; returns (10 s count, day count) or raises -1015 (429)."""
        st = self._orders.setdefault(account_id, _OrderState())
        w10, day = now_ms // TEN_S_MS, now_ms // DAY_MS
        if w10 != st.window_10s:
            st.window_10s, st.count_10s = w10, 0
        if day != st.day:
            st.day, st.count_day = day, 0
        if st.count_10s >= self.config.orders_per_10s:
            raise errors.BinanceError(
                -1015, f"Too many new orders; current limit is {self.config.orders_per_10s} orders per 10 SECOND.",
                429, _seconds_until((w10 + 1) * TEN_S_MS, now_ms))
        if st.count_day >= self.config.orders_per_day:
            raise errors.BinanceError(
                -1015, f"Too many new orders; current limit is {self.config.orders_per_day} orders per DAY.",
                429, _seconds_until((day + 1) * DAY_MS, now_ms))
        st.count_10s += 1
        st.count_day += 1
        return st.count_10s, st.count_day

    def order_counts(self, account_id: int, now_ms: int) -> tuple[int, int]:
        st = self._orders.get(account_id)
        if st is None:
            return 0, 0
        c10 = st.count_10s if st.window_10s == now_ms // TEN_S_MS else 0
        cday = st.count_day if st.day == now_ms // DAY_MS else 0
        return c10, cday


def _seconds_until(t_ms: int, now_ms: int) -> int:
    return max(1, -(-(t_ms - now_ms) // 1000))
