"""Pure-Python reference twins of abidance._core.indicators (tests only).

Same class names and API as the Cython classes, written the obvious way: windows in
`collections.deque`, sums with `math.fsum` (correctly rounded), window moments in exact
`fractions.Fraction` arithmetic. O(period) per update; the point is to be evidently right,
not fast.
"""

from __future__ import annotations

import math
from collections import deque
from fractions import Fraction

NAN = math.nan
UTC_DAY_NS = 86_400_000_000_000
# TA-Lib's RSI reports 0 when average gain + average loss is inside this band.
TA_EPSILON = 1e-14


def _finite(who: str, x: float) -> float:
    x = float(x)
    if not math.isfinite(x):
        raise ValueError(f"{who}: non-finite value {x!r}")
    return x


def _price(who: str, what: str, x: float) -> float:
    x = float(x)
    if not math.isfinite(x) or x <= 0.0:
        raise ValueError(f"{who}: {what} must be a finite price > 0, got {x!r}")
    return x


def _volume(who: str, v: float) -> float:
    v = float(v)
    if not math.isfinite(v) or v < 0.0:
        raise ValueError(f"{who}: volume must be finite and >= 0, got {v!r}")
    return v


def _bar(who: str, high: float, low: float, close: float) -> tuple[float, float, float]:
    high, low, close = _price(who, "high", high), _price(who, "low", low), _price(who, "close", close)
    if high < low:
        raise ValueError(f"{who}: high {high!r} is below low {low!r}")
    return high, low, close


def _period(who: str, what: str, p: int, minimum: int) -> int:
    if p < minimum:
        raise ValueError(f"{who}: {what} must be >= {minimum}, got {p}")
    return p


class _ExactSum:
    """Running sum without rounding drift (Shewchuk partials, as in math.fsum)."""

    def __init__(self) -> None:
        self.partials: list[float] = []

    def add(self, x: float) -> None:
        i = 0
        for y in self.partials:
            if abs(x) < abs(y):
                x, y = y, x
            hi = x + y
            lo = y - (hi - x)
            if lo:
                self.partials[i] = lo
                i += 1
            x = hi
        self.partials[i:] = [x]

    @property
    def value(self) -> float:
        return math.fsum(self.partials)


class _Windowed:
    def __init__(self, who: str, period: int) -> None:
        self.period = _period(who, "period", period, 1)
        self.window: deque[float] = deque(maxlen=period)
        self.count = 0
        self.value = NAN

    def reset(self) -> None:
        self.window.clear()
        self.count = 0
        self.value = NAN

    @property
    def ready(self) -> bool:
        return self.count >= self.period

    def _after(self, x: float) -> list[float]:
        """The window as it would be after x."""
        w = list(self.window)
        if len(w) == self.period:
            w.pop(0)
        return w + [x]


class SMA(_Windowed):
    def __init__(self, period: int) -> None:
        super().__init__("SMA", period)

    def _of(self, w: list[float]) -> float:
        return math.fsum(w) / self.period if len(w) == self.period else NAN

    def update(self, x: float) -> float:
        x = _finite("SMA.update", x)
        self.window.append(x)
        self.count += 1
        v = self._of(list(self.window))
        if self.ready:
            self.value = v
        return v

    def peek(self, x: float) -> float:
        return self._of(self._after(_finite("SMA.peek", x)))


class EMA:
    def __init__(self, period: int) -> None:
        self.period = _period("EMA", "period", period, 1)
        self.k = 2.0 / (period + 1)
        self.reset()

    def reset(self) -> None:
        self.seed: list[float] = []
        self.count = 0
        self.value = NAN

    @property
    def ready(self) -> bool:
        return self.count >= self.period

    def _next(self, x: float, count: int, value: float) -> float:
        if count > self.period:
            return (x - value) * self.k + value
        if count < self.period:
            return NAN
        return math.fsum(self.seed + [x]) / self.period

    def update(self, x: float) -> float:
        x = _finite("EMA.update", x)
        self.count += 1
        v = self._next(x, self.count, self.value)
        if self.count <= self.period:
            self.seed.append(x)
        if self.ready:
            self.value = v
        return v

    def peek(self, x: float) -> float:
        return self._next(_finite("EMA.peek", x), self.count + 1, self.value)


class WMA(_Windowed):
    def __init__(self, period: int) -> None:
        super().__init__("WMA", period)

    def _of(self, w: list[float]) -> float:
        if len(w) < self.period:
            return NAN
        return math.fsum((i + 1) * v for i, v in enumerate(w)) / (self.period * (self.period + 1) / 2)

    def update(self, x: float) -> float:
        x = _finite("WMA.update", x)
        self.window.append(x)
        self.count += 1
        v = self._of(list(self.window))
        if self.ready:
            self.value = v
        return v

    def peek(self, x: float) -> float:
        return self._of(self._after(_finite("WMA.peek", x)))


def _rsi_of(gain: float, loss: float) -> float:
    total = gain + loss
    return 0.0 if -TA_EPSILON < total < TA_EPSILON else 100.0 * (gain / total)


class RSI:
    def __init__(self, period: int = 14) -> None:
        self.period = _period("RSI", "period", period, 2)
        self.reset()

    def reset(self) -> None:
        self.prev = NAN
        self.gains: list[float] = []
        self.losses: list[float] = []
        self.gain = self.loss = 0.0
        self.count = 0
        self.value = NAN

    @property
    def ready(self) -> bool:
        return self.count > self.period

    def _next(self, x: float) -> tuple[float, float, float]:
        n, c = self.period, self.count + 1
        if c == 1:
            return NAN, 0.0, 0.0
        d = x - self.prev
        g, lo = max(d, 0.0), max(-d, 0.0)
        if c <= n:
            return NAN, 0.0, 0.0
        if c == n + 1:
            gain = math.fsum(self.gains + [g]) / n
            loss = math.fsum(self.losses + [lo]) / n
        else:
            gain = (self.gain * (n - 1) + g) / n
            loss = (self.loss * (n - 1) + lo) / n
        return _rsi_of(gain, loss), gain, loss

    def update(self, x: float) -> float:
        x = _finite("RSI.update", x)
        v, gain, loss = self._next(x)
        if self.count >= 1 and self.count < self.period:
            d = x - self.prev
            self.gains.append(max(d, 0.0))
            self.losses.append(max(-d, 0.0))
        self.count += 1
        self.prev = x
        if self.ready:
            self.gain, self.loss, self.value = gain, loss, v
        return v

    def peek(self, x: float) -> float:
        return self._next(_finite("RSI.peek", x))[0]


def _true_range(high: float, low: float, prev_close: float) -> float:
    return max(high - low, abs(high - prev_close), abs(low - prev_close))


class ATR:
    def __init__(self, period: int = 14) -> None:
        self.period = _period("ATR", "period", period, 1)
        self.reset()

    def reset(self) -> None:
        self.prev_close = NAN
        self.trs: list[float] = []
        self.count = 0
        self.value = NAN

    @property
    def ready(self) -> bool:
        return self.count > self.period

    def _next(self, high: float, low: float) -> tuple[float, float]:
        n, c = self.period, self.count + 1
        if c == 1:
            return NAN, NAN
        tr = _true_range(high, low, self.prev_close)
        if c <= n:
            return NAN, tr
        if c == n + 1:
            return math.fsum(self.trs + [tr]) / n, tr
        return (self.value * (n - 1) + tr) / n, tr

    def update(self, high: float, low: float, close: float) -> float:
        high, low, close = _bar("ATR.update", high, low, close)
        v, tr = self._next(high, low)
        if 1 <= self.count < self.period:
            self.trs.append(tr)
        self.count += 1
        self.prev_close = close
        if self.ready:
            self.value = v
        return v

    def peek(self, high: float, low: float, close: float) -> float:
        high, low, close = _bar("ATR.peek", high, low, close)
        return self._next(high, low)[0]


def _exact_moments(w: list[float]) -> tuple[Fraction, Fraction]:
    """Exact mean and sum of squared deviations of the window."""
    xs = [Fraction(v) for v in w]
    mean = sum(xs, Fraction(0)) / len(xs)
    return mean, sum(((v - mean) ** 2 for v in xs), Fraction(0))


def _moments(w: list[float]) -> tuple[float, float]:
    """Mean and sum of squared deviations, each correctly rounded from the exact value."""
    mean, m2 = _exact_moments(w)
    return float(mean), float(m2)


class RollingStd(_Windowed):
    def __init__(self, period: int, ddof: int = 0) -> None:
        super().__init__("RollingStd", period)
        if ddof not in (0, 1):
            raise ValueError(f"RollingStd: ddof must be 0 or 1, got {ddof}")
        if period - ddof < 1:
            raise ValueError(f"RollingStd: period must be >= 2 with ddof=1, got {period}")
        self.ddof = ddof

    def _of(self, w: list[float]) -> float:
        if len(w) < self.period:
            return NAN
        return math.sqrt(_moments(w)[1] / (self.period - self.ddof))

    def update(self, x: float) -> float:
        x = _finite("RollingStd.update", x)
        self.window.append(x)
        self.count += 1
        v = self._of(list(self.window))
        if self.ready:
            self.value = v
        return v

    def peek(self, x: float) -> float:
        return self._of(self._after(_finite("RollingStd.peek", x)))

    @property
    def mean(self) -> float:
        return _moments(list(self.window))[0] if self.ready else NAN

    @property
    def variance(self) -> float:
        return self.value * self.value


class BollingerBands:
    def __init__(self, period: int = 20, k_up: float = 2.0, k_down: float = 2.0) -> None:
        self._std = RollingStd(period)
        self.period = period
        self.k_up, self.k_down = float(k_up), float(k_down)
        self.reset()

    def reset(self) -> None:
        self._std.reset()
        self.upper = self.middle = self.lower = NAN

    @property
    def count(self) -> int:
        return self._std.count

    @property
    def ready(self) -> bool:
        return self._std.ready

    @property
    def value(self) -> float:
        return self.middle

    def _bands(self, w: list[float]) -> tuple[float, float, float]:
        if len(w) < self.period:
            return NAN, NAN, NAN
        mean, m2 = _moments(w)
        sd = math.sqrt(m2 / self.period)
        return mean + self.k_up * sd, mean, mean - self.k_down * sd

    def update(self, x: float) -> float:
        x = _finite("BollingerBands.update", x)
        self._std.update(x)
        if self.ready:
            self.upper, self.middle, self.lower = self._bands(list(self._std.window))
            return self.middle
        return NAN

    def peek(self, x: float) -> tuple[float, float, float]:
        return self._bands(self._std._after(_finite("BollingerBands.peek", x)))


class MACD:
    def __init__(self, fast: int = 12, slow: int = 26, signal: int = 9) -> None:
        _period("MACD", "fast", fast, 1)
        if slow <= fast:
            raise ValueError(f"MACD: slow ({slow}) must be greater than fast ({fast})")
        self.fast, self.slow = fast, slow
        self._signal = EMA(signal)
        self.signal_period = signal
        self.reset()

    def reset(self) -> None:
        self.inputs: list[float] = []
        self.fast_ema = self.slow_ema = NAN
        self._signal.reset()
        self.count = 0
        self.macd = self.signal = self.histogram = NAN

    @property
    def ready(self) -> bool:
        return self._signal.ready

    @property
    def value(self) -> float:
        return self.macd

    def update(self, x: float) -> float:
        x = _finite("MACD.update", x)
        self.count += 1
        kf, ks = 2.0 / (self.fast + 1), 2.0 / (self.slow + 1)
        if self.count < self.slow:
            self.inputs.append(x)
            return NAN
        if self.count == self.slow:
            self.inputs.append(x)
            self.fast_ema = math.fsum(self.inputs[-self.fast:]) / self.fast
            self.slow_ema = math.fsum(self.inputs) / self.slow
        else:
            self.fast_ema = (x - self.fast_ema) * kf + self.fast_ema
            self.slow_ema = (x - self.slow_ema) * ks + self.slow_ema
        line = self.fast_ema - self.slow_ema
        sig = self._signal.update(line)
        if not self.ready:
            return NAN
        self.macd, self.signal, self.histogram = line, sig, line - sig
        return line


class RollingMin(_Windowed):
    def __init__(self, period: int) -> None:
        super().__init__("RollingMin", period)

    def update(self, x: float) -> float:
        x = _finite("RollingMin.update", x)
        self.window.append(x)
        self.count += 1
        if not self.ready:
            return NAN
        self.value = min(self.window)
        return self.value

    def peek(self, x: float) -> float:
        w = self._after(_finite("RollingMin.peek", x))
        return min(w) if len(w) == self.period else NAN


class RollingMax(_Windowed):
    def __init__(self, period: int) -> None:
        super().__init__("RollingMax", period)

    def update(self, x: float) -> float:
        x = _finite("RollingMax.update", x)
        self.window.append(x)
        self.count += 1
        if not self.ready:
            return NAN
        self.value = max(self.window)
        return self.value

    def peek(self, x: float) -> float:
        w = self._after(_finite("RollingMax.peek", x))
        return max(w) if len(w) == self.period else NAN


class VWAP(_Windowed):
    def __init__(self, period: int) -> None:
        super().__init__("VWAP", period)

    def update(self, price: float, volume: float) -> float:
        price = _price("VWAP.update", "price", price)
        volume = _volume("VWAP.update", volume)
        self.window.append((price, volume))
        self.count += 1
        if not self.ready:
            return NAN
        vol = math.fsum(v for _, v in self.window)
        self.value = math.fsum(p * v for p, v in self.window) / vol if vol > 0 else NAN
        return self.value


class SessionVWAP:
    def __init__(self, session_ns: int = UTC_DAY_NS, offset_ns: int = 0) -> None:
        if session_ns <= 0:
            raise ValueError(f"SessionVWAP: session_ns must be > 0, got {session_ns}")
        self.session_ns = session_ns
        self.offset_ns = offset_ns % session_ns
        self.reset()

    def reset(self) -> None:
        self.count = 0
        self.session_count = 0
        self.session_start: int | None = None
        self.last_ts = 0
        self._pv, self._vol = _ExactSum(), _ExactSum()
        self.value = NAN

    def session_of(self, ts: int) -> int:
        return (ts - self.offset_ns) // self.session_ns * self.session_ns + self.offset_ns

    @property
    def ready(self) -> bool:
        return math.isfinite(self.value)

    def update(self, ts: int, price: float, volume: float) -> float:
        price = _price("SessionVWAP.update", "price", price)
        volume = _volume("SessionVWAP.update", volume)
        if self.count and ts < self.last_ts:
            raise ValueError(f"SessionVWAP.update: timestamp {ts} is before the previous {self.last_ts}")
        start = self.session_of(ts)
        if start != self.session_start:
            self.session_start, self.session_count = start, 0
            self._pv, self._vol = _ExactSum(), _ExactSum()
        self.count += 1
        self.session_count += 1
        self.last_ts = ts
        self._pv.add(price * volume)
        self._vol.add(volume)
        vol = self._vol.value
        self.value = self._pv.value / vol if vol > 0 else NAN
        return self.value


class OBV:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.prev_close = NAN
        self._obv = _ExactSum()
        self.count = 0
        self.value = NAN

    @property
    def ready(self) -> bool:
        return self.count >= 1

    def update(self, close: float, volume: float) -> float:
        close = _price("OBV.update", "close", close)
        volume = _volume("OBV.update", volume)
        if self.count == 0 or close > self.prev_close:
            self._obv.add(volume)
        elif close < self.prev_close:
            self._obv.add(-volume)
        self.prev_close = close
        self.count += 1
        self.value = self._obv.value
        return self.value


class StochasticFast:
    def __init__(self, fastk_period: int = 5, fastd_period: int = 3) -> None:
        self.fastk_period = _period("StochasticFast", "fastk_period", fastk_period, 1)
        self.fastd_period = _period("StochasticFast", "period", fastd_period, 1)
        self.reset()

    def reset(self) -> None:
        self.bars: deque[tuple[float, float]] = deque(maxlen=self.fastk_period)
        self.raw: deque[float] = deque(maxlen=self.fastd_period)
        self.count = 0
        self.k = self.d = NAN

    @property
    def ready(self) -> bool:
        return len(self.raw) == self.fastd_period

    @property
    def value(self) -> float:
        return self.k

    def _step(self, who: str, high: float, low: float, close: float) -> float:
        high, low, close = _bar(who, high, low, close)
        self.bars.append((high, low))
        self.count += 1
        if self.count < self.fastk_period:
            return NAN
        hh = max(h for h, _ in self.bars)
        ll = min(lo for _, lo in self.bars)
        diff = (hh - ll) / 100.0
        self.raw.append((close - ll) / diff if diff != 0.0 else 0.0)
        if not self.ready:
            return NAN
        self.k, self.d = self.raw[-1], math.fsum(self.raw) / self.fastd_period
        return self.k

    def update(self, high: float, low: float, close: float) -> float:
        return self._step("StochasticFast.update", high, low, close)


class Stochastic:
    def __init__(self, fastk_period: int = 5, slowk_period: int = 3, slowd_period: int = 3) -> None:
        self._fast = StochasticFast(fastk_period, slowk_period)
        self.fastk_period, self.slowk_period = fastk_period, slowk_period
        self.slowd_period = _period("Stochastic", "period", slowd_period, 1)
        self.reset()

    def reset(self) -> None:
        self._fast.reset()
        self.slow: deque[float] = deque(maxlen=self.slowd_period)
        self.k = self.d = NAN

    @property
    def count(self) -> int:
        return self._fast.count

    @property
    def ready(self) -> bool:
        return len(self.slow) == self.slowd_period

    @property
    def value(self) -> float:
        return self.k

    def update(self, high: float, low: float, close: float) -> float:
        self._fast._step("Stochastic.update", high, low, close)
        if not self._fast.ready:
            return NAN
        self.slow.append(self._fast.d)
        if not self.ready:
            return NAN
        self.k, self.d = self.slow[-1], math.fsum(self.slow) / self.slowd_period
        return self.k


class ROC:
    def __init__(self, period: int = 10) -> None:
        self.period = _period("ROC", "period", period, 1)
        self.reset()

    def reset(self) -> None:
        self.window: deque[float] = deque(maxlen=self.period + 1)
        self.count = 0
        self.value = NAN

    @property
    def ready(self) -> bool:
        return self.count > self.period

    def update(self, x: float) -> float:
        x = _price("ROC.update", "value", x)
        self.window.append(x)
        self.count += 1
        if not self.ready:
            return NAN
        self.value = ((x / self.window[0]) - 1.0) * 100.0
        return self.value

    def peek(self, x: float) -> float:
        x = _price("ROC.peek", "value", x)
        if self.count < self.period:
            return NAN
        return ((x / self.window[-self.period]) - 1.0) * 100.0


class ZScore(_Windowed):
    def __init__(self, period: int) -> None:
        super().__init__("ZScore", period)

    def _of(self, w: list[float], x: float) -> float:
        if len(w) < self.period:
            return NAN
        mean, m2 = _exact_moments(w)
        if m2 == 0:
            return 0.0
        return float(Fraction(x) - mean) / math.sqrt(float(m2) / self.period)

    def update(self, x: float) -> float:
        x = _finite("ZScore.update", x)
        self.window.append(x)
        self.count += 1
        v = self._of(list(self.window), x)
        if self.ready:
            self.value = v
        return v

    def peek(self, x: float) -> float:
        x = _finite("ZScore.peek", x)
        return self._of(self._after(x), x)
