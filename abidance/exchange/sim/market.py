"""The market the simulator trades on: price paths and the MarketDriver.

A price path says where the market is at each sim instant, as `PathPoint`s (time_ms,
price_ticks, volume_hint_steps, side) on the symbol's tick grid:

  SyntheticPath     seeded geometric random walk (floats only inside the walk; every emitted
                    price is snapped to whole ticks and is never below 1 tick)
  CandleReplayPath  recorded candles, each bar as the documented intra-bar path
  TradeReplayPath   recorded trades, each one an aggressor take of that size at that price

The MarketDriver moves the exchange's book along a path with the market-maker hooks: it sweeps
the book when the path crosses resting orders (user orders there fill in price-time priority),
trades a little at the touch for activity, and re-quotes `levels` ticks of market-maker
liquidity on each side of the reference price. All randomness is seeded.

Price conversion onto the tick grid (candles, trades): a float read from a file is first
turned into its shortest round-trip decimal (`repr`, so 0.00162 is exactly "0.00162", not the
binary float's expansion), then divided by tick_size and rounded half-even to whole ticks.
Rounding is monotone, so a bar's open/high/low/close keep their order; a positive price below
half a tick becomes 1 tick (never <= 0). Quantities go onto the step grid the same way, at
least 1 step for a recorded trade.
"""

from __future__ import annotations

import logging
import math
import random
from collections import Counter
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Context, Decimal, InvalidOperation
from pathlib import Path
from typing import Iterable, Iterator, NamedTuple

from abidance.exchange.sim.aggregates import INTERVAL_MS, Bar, bar_open

log = logging.getLogger(__name__)

BUY, SELL = "BUY", "SELL"
_SWEEP_ALL = 10 ** 18          # steps: more than any book holds
_CTX = Context(prec=60)        # exact products of ticks, steps and sizes (no rounding at 28 digits)


# ---- grid conversion ---------------------------------------------------------------------------

def to_decimal(value) -> Decimal:
    """A file value as an exact Decimal: floats via their shortest repr, others via str."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(float(value)))          # float(): numpy scalars repr as "np.float64(...)"
    if hasattr(value, "item"):                     # numpy scalar
        return to_decimal(value.item())
    return Decimal(str(value))


def to_grid(value, size: Decimal, minimum: int = 1) -> int:
    """value / size rounded half-even to an int, at least `minimum` (see the module docstring)."""
    n = int((to_decimal(value) / size).to_integral_value(rounding=ROUND_HALF_EVEN))
    return max(n, minimum)


class PathPoint(NamedTuple):
    time_ms: int
    price_ticks: int
    volume_hint: int = 0           # steps traded around this point in the source data (0: none)
    side: str | None = None        # a recorded trade's taker side (TradeReplayPath only)


@dataclass(frozen=True, slots=True)
class HistoryBar:
    """A bar of history on the grid: prices in ticks, volumes in steps.

    quote_ts / taker_* are in tick*step units; None means unknown, estimated on conversion.
    """

    open_ms: int
    open: int
    high: int
    low: int
    close: int
    volume: int
    trades: int = 0
    quote_ts: int | None = None
    taker_buy: int | None = None
    taker_buy_quote_ts: int | None = None


def history_to_bars(bars: Iterable[HistoryBar], tick_size: Decimal, step_size: Decimal) -> list[Bar]:
    """Grid bars as aggregate Bars (exact Decimal). Unknown quote volume is estimated as
    volume * (o+h+l+c)/4 and unknown taker-buy volume as half the volume (data has neither)."""
    tick_size, step_size = Decimal(tick_size), Decimal(step_size)
    mul, div = _CTX.multiply, _CTX.divide           # wide context: nothing rounds at 28 digits
    ts = mul(tick_size, step_size)
    out = []
    for b in bars:
        quote = mul(b.quote_ts, ts) if b.quote_ts is not None else \
            div(mul(b.volume * (b.open + b.high + b.low + b.close), ts), 4)
        vol = mul(b.volume, step_size)
        tbb = mul(b.taker_buy, step_size) if b.taker_buy is not None else div(vol, 2)
        tbq = mul(b.taker_buy_quote_ts, ts) if b.taker_buy_quote_ts is not None else div(quote, 2)
        out.append(Bar(b.open_ms, mul(b.open, tick_size), mul(b.high, tick_size), mul(b.low, tick_size),
                       mul(b.close, tick_size), vol, quote, b.trades, tbb, tbq))
    return out


def interval_name(interval_ms: int) -> str:
    for name, ms in INTERVAL_MS.items():
        if ms == interval_ms:
            return name
    raise ValueError(f"{interval_ms} ms is not a Binance kline interval")


# ---- synthetic path ----------------------------------------------------------------------------

class SyntheticPath:
    """A seeded geometric random walk on the tick grid.

    Points are generated at start_ms + k * step_ms, one after another from one RNG, so the path
    is the same for the same seed however the clock's advances are chunked. The log-price
    moves by N(0, sigma^2 dt) with sigma = vol_bps_per_sqrt_s / 10_000 per sqrt(second); only
    changes of the tick price are emitted. start_ms=None starts the walk at the first advance.
    """

    takes = False

    def __init__(self, seed: int, start_price_ticks: int, vol_bps_per_sqrt_s: float = 1.0, *,
                 step_ms: int = 100, start_ms: int | None = None):
        if start_price_ticks < 1:
            raise ValueError("start price must be at least 1 tick")
        if step_ms < 1:
            raise ValueError("step_ms must be >= 1")
        self.seed = seed
        self.start_price_ticks = start_price_ticks
        self.vol_bps = vol_bps_per_sqrt_s
        self.step_ms = step_ms
        self.start_ms = start_ms
        self._rng = random.Random(seed)
        self._sd = vol_bps_per_sqrt_s / 10_000 * math.sqrt(step_ms / 1000)
        self._x = 0.0                                  # log(price / start price)
        self._next_ms = start_ms
        self.last: PathPoint | None = None
        self.done = False

    def _price(self) -> int:
        return max(1, round(self.start_price_ticks * math.exp(self._x)))

    def advance(self, now_ms: int) -> list[PathPoint]:
        if self._next_ms is None:
            self.start_ms = self._next_ms = now_ms
        out: list[PathPoint] = []
        while self._next_ms <= now_ms:
            if self.last is not None:
                self._x += self._rng.gauss(0.0, self._sd)
            p = self._price()
            if self.last is None or p != self.last.price_ticks:
                self.last = PathPoint(self._next_ms, p)
                out.append(self.last)
            self._next_ms += self.step_ms
        return out

    def history(self, end_ms: int, n_bars: int, interval_ms: int = 60_000,
                volume_steps: tuple[int, int] = (100, 10_000), substeps: int = 12) -> list[HistoryBar]:
        """n_bars complete bars before the bar containing end_ms, walking backwards in time
        from the start price (a separate seeded stream, so the live path is unchanged)."""
        rng = random.Random(f"{self.seed}:history")
        sd = self.vol_bps / 10_000 * math.sqrt(interval_ms / substeps / 1000)
        x = 0.0
        # samples[k] = log price k substeps before the boundary B (k = 0 is the start price).
        samples = [0.0]
        for _ in range(n_bars * substeps):
            x -= rng.gauss(0.0, sd)
            samples.append(x)
        boundary = end_ms // interval_ms * interval_ms
        bars = []
        for j in range(n_bars - 1, -1, -1):            # oldest first
            chunk = samples[(j + 1) * substeps: j * substeps: -1]   # k = (j+1)M down to jM+1
            ticks = [max(1, round(self.start_price_ticks * math.exp(v))) for v in chunk]
            bars.append(HistoryBar(boundary - (j + 1) * interval_ms, ticks[0], max(ticks), min(ticks),
                                   ticks[-1], rng.randint(*volume_steps), rng.randint(1, 50)))
        return bars


# ---- candle replay -----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Gap:
    index: int          # row of the bar after the gap
    prev_ms: int        # open time of the bar before it
    next_ms: int        # open time of the bar after it
    missing: int        # bars missing in between


def infer_interval_ms(times_ms: list[int]) -> int:
    """The most common positive spacing of the open times (gaps do not change the mode)."""
    diffs = Counter(b - a for a, b in zip(times_ms, times_ms[1:]) if b > a)
    if not diffs:
        raise ValueError("cannot infer the bar interval from fewer than two increasing times")
    return diffs.most_common(1)[0][0]


def detect_gaps(times_ms: list[int], interval_ms: int | None = None) -> list[Gap]:
    """Missing bars in a series of open times (never assumes a regular index)."""
    if len(times_ms) < 2:
        return []
    interval_ms = interval_ms or infer_interval_ms(times_ms)
    gaps = []
    for i in range(1, len(times_ms)):
        step = times_ms[i] - times_ms[i - 1]
        if step > interval_ms:
            gaps.append(Gap(i, times_ms[i - 1], times_ms[i], step // interval_ms - 1))
    return gaps


def _log_gaps(source: str, gaps: list[Gap]) -> None:
    """One warning with the totals (some files have hundreds of gaps), each gap at debug level."""
    if not gaps:
        return
    worst = max(gaps, key=lambda g: g.missing)
    log.warning("%s: %d gap(s), %d bar(s) missing; largest %d bar(s) before row %d (%d -> %d)",
                source, len(gaps), sum(g.missing for g in gaps), worst.missing, worst.index,
                worst.prev_ms, worst.next_ms)
    for g in gaps:
        log.debug("%s: gap before row %d: %d bar(s) missing between %d and %d",
                  source, g.index, g.missing, g.prev_ms, g.next_ms)


def _warn_coarse(source: str, low_ticks: int, tick_size: Decimal) -> None:
    # Data on the wrong symbol's grid (BTC-quoted candles on a USDT tick) would replay as a
    # nearly flat line: say so rather than let the run look plausible.
    if low_ticks < 100:
        log.warning("%s: the lowest price is only %d tick(s) of %s: the replay will be coarse "
                    "(is the data quoted in this symbol's quote asset?)", source, low_ticks, tick_size)


def intrabar_anchors(o: int, h: int, l: int, c: int) -> tuple[int, int, int, int]:
    """open, the nearer of high/low to the open, the other, close (ticks).

    On a tie the close decides: a bar closing below its open goes O-H-L-C, otherwise O-L-H-C.
    """
    up, down = h - o, o - l
    high_first = up < down or (up == down and c < o)
    return (o, h, l, c) if high_first else (o, l, h, c)


def intrabar_points(t0: int, interval_ms: int, o: int, h: int, l: int, c: int,
                    volume: int = 0) -> Iterator[PathPoint]:
    """One bar as path points: anchors at t0 + k*q (q = interval/4, k = 0..3); between anchors
    the price walks linearly tick by tick, reaching each anchor at its time; the close then holds
    for the last quarter. When a segment has more ticks than milliseconds, the walk advances
    several ticks per millisecond (one point per ms). Anchor points share the bar's volume."""
    q = interval_ms // 4
    anchors = intrabar_anchors(o, h, l, c)
    vol = [volume // 4] * 4
    vol[3] += volume - 4 * (volume // 4)
    yield PathPoint(t0, anchors[0], vol[0])
    for k in range(3):
        a, b = anchors[k], anchors[k + 1]
        ta = t0 + k * q
        n = abs(b - a)
        sign = 1 if b > a else -1
        m = min(n, q) if q > 0 else 0
        for j in range(1, m):
            yield PathPoint(ta + (j * q) // m, a + sign * ((j * n) // m))
        yield PathPoint(ta + q, b, vol[k + 1])


class CandleReplayPath:
    """Recorded candles replayed along the intra-bar path (docs/simulator.md).

    Sim time = bar time + offset. With sim_start_ms=None the offset is 0 (run the clock at the
    data's own time); otherwise the start bar opens at sim_start_ms rounded down to the bar
    interval, so bars stay aligned to UTC kline boundaries. The clock's speed is the replay
    speed. Bars before start_index are the history (seed_history). Missing bars are detected and
    logged (`gaps`); across a gap the price holds at the last close until the next bar opens.
    """

    takes = False

    def __init__(self, frame, *, tick_size: Decimal, step_size: Decimal = Decimal("0.00000001"),
                 start_index: int = 0, sim_start_ms: int | None = None, interval_ms: int | None = None):
        self.tick_size, self.step_size = Decimal(tick_size), Decimal(step_size)
        times = _time_ms_column(frame, "date")
        self.times = times
        self.interval_ms = interval_ms or infer_interval_ms(times)
        if self.interval_ms < 4:
            raise ValueError("bars shorter than 4 ms cannot hold the four-point intra-bar path")
        ts = self.tick_size
        self.o = [to_grid(v, ts) for v in frame["open"].tolist()]
        self.h = [to_grid(v, ts) for v in frame["high"].tolist()]
        self.l = [to_grid(v, ts) for v in frame["low"].tolist()]
        self.c = [to_grid(v, ts) for v in frame["close"].tolist()]
        self.v = [to_grid(v, self.step_size, 0) for v in frame["volume"].tolist()]
        if not 0 <= start_index < len(times):
            raise ValueError(f"start_index {start_index} outside 0..{len(times) - 1}")
        self.start_index = start_index
        self.gaps = detect_gaps(times, self.interval_ms)
        _log_gaps("candles", self.gaps)
        _warn_coarse("candles", min(self.l), self.tick_size)
        self.offset_ms = 0
        if sim_start_ms is not None:
            self.offset_ms = (sim_start_ms - times[start_index]) // self.interval_ms * self.interval_ms
        self.start_ms = times[start_index] + self.offset_ms
        self._points = self._generate()
        self._pending: PathPoint | None = None
        self.last: PathPoint | None = None
        self.done = False

    def _generate(self) -> Iterator[PathPoint]:
        for i in range(self.start_index, len(self.times)):
            yield from intrabar_points(self.times[i] + self.offset_ms, self.interval_ms,
                                       self.o[i], self.h[i], self.l[i], self.c[i], self.v[i])

    def advance(self, now_ms: int) -> list[PathPoint]:
        out = []
        while True:
            p = self._pending
            if p is None:
                p = next(self._points, None)
                if p is None:
                    self.done = True
                    break
            if p.time_ms > now_ms:
                self._pending = p
                break
            self._pending = None
            out.append(p)
        if out:
            self.last = out[-1]
        return out

    def history(self, n_bars: int | None = None) -> list[HistoryBar]:
        """The bars before the start point (the last n_bars of them), in sim time."""
        lo = 0 if n_bars is None else max(0, self.start_index - n_bars)
        return [HistoryBar(self.times[i] + self.offset_ms, self.o[i], self.h[i], self.l[i], self.c[i], self.v[i])
                for i in range(lo, self.start_index)]


# ---- trade replay ------------------------------------------------------------------------------

class TradeReplayPath:
    """Recorded trades (load_trades' frame: time_ms, price, qty, side) as aggressor takes.

    Each trade is a point with its taker side and size; the driver quotes so that the trade's
    price is the touch and takes `qty` there (filling user orders at that price first).
    Time mapping as CandleReplayPath (offset 0, or the start trade at sim_start_ms).
    """

    takes = True

    def __init__(self, frame, *, tick_size: Decimal, step_size: Decimal, start_index: int = 0,
                 sim_start_ms: int | None = None):
        self.tick_size, self.step_size = Decimal(tick_size), Decimal(step_size)
        self.times = [int(t) for t in frame["time_ms"].tolist()]
        self.prices = [to_grid(v, self.tick_size) for v in frame["price"].tolist()]
        self.qtys = [to_grid(v, self.step_size) for v in frame["qty"].tolist()]
        self.sides = [str(s) for s in frame["side"].tolist()]
        if self.prices:
            _warn_coarse("trades", min(self.prices), self.tick_size)
        if not 0 <= start_index < len(self.times):
            raise ValueError(f"start_index {start_index} outside 0..{len(self.times) - 1}")
        self.start_index = start_index
        self.offset_ms = 0 if sim_start_ms is None else sim_start_ms - self.times[start_index]
        self.start_ms = self.times[start_index] + self.offset_ms
        self._i = start_index
        self.last: PathPoint | None = None
        self.done = False

    def advance(self, now_ms: int) -> list[PathPoint]:
        out = []
        i, n = self._i, len(self.times)
        while i < n and self.times[i] + self.offset_ms <= now_ms:
            out.append(PathPoint(self.times[i] + self.offset_ms, self.prices[i], self.qtys[i], self.sides[i]))
            i += 1
        self._i = i
        self.done = i >= n
        if out:
            self.last = out[-1]
        return out

    def history(self, interval_ms: int = 60_000, n_bars: int | None = None) -> list[HistoryBar]:
        """Bars of `interval_ms` built from the trades before the start point (exact volumes,
        quote and taker-buy volumes, trade counts); UTC-aligned in sim time; empty bars omitted
        (the kline aggregator fills them)."""
        name = interval_name(interval_ms)
        acc: dict[int, list] = {}
        for i in range(self.start_index):
            t = bar_open(name, self.times[i] + self.offset_ms)
            p, q, buy = self.prices[i], self.qtys[i], self.sides[i] == BUY
            b = acc.get(t)
            if b is None:
                acc[t] = [p, p, p, p, q, 1, p * q, q if buy else 0, p * q if buy else 0]
                continue
            b[1], b[2], b[3] = max(b[1], p), min(b[2], p), p
            b[4] += q
            b[5] += 1
            b[6] += p * q
            if buy:
                b[7] += q
                b[8] += p * q
        bars = [HistoryBar(t, b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8]) for t, b in acc.items()]
        return bars if n_bars is None else bars[-n_bars:]


# ---- file loaders ------------------------------------------------------------------------------

CANDLE_COLUMNS = ("date", "open", "high", "low", "close", "volume")


def _read(path) -> "object":
    # Lazy: pandas is an optional extra (dev, ml, dashboard): only this path needs it.
    import pandas as pd

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".feather":
        return pd.read_feather(path)
    if suffix == ".parquet":
        return pd.read_parquet(path)
    if suffix == ".csv":
        # Read as text: a CSV's decimals then reach Decimal exactly, never through a float.
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    raise ValueError(f"{path}: unsupported file type {suffix!r} (feather, parquet or csv)")


def _time_ms_column(frame, column: str) -> list[int]:
    """A time column as int ms since the epoch: datetimes (any unit, tz-naive = UTC) or ints (ms)."""
    # Lazy: pandas is an optional extra (dev, ml, dashboard): only this path needs it.
    import pandas as pd

    s = frame[column]
    if pd.api.types.is_datetime64_any_dtype(s):
        s = pd.to_datetime(s, utc=True)
        return ((s - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1)).astype("int64").tolist()
    return [int(to_decimal(v)) for v in s.tolist()]


def _finite_positive(value, allow_zero: bool = False) -> Decimal | None:
    try:
        d = to_decimal(value)
    except (InvalidOperation, ValueError, TypeError):
        return None
    if not d.is_finite() or d < 0 or (d == 0 and not allow_zero):
        return None
    return d


def _report(path, bad: list[tuple[int, str]]) -> None:
    for idx, why in bad:
        log.warning("%s: row %d skipped: %s", path, idx, why)


def validate_candles(frame, source: str = "candles"):
    """Keep the rows of a candles frame that are usable; report the rest by row index.

    A row is bad when a price is missing, not finite or <= 0, volume is negative or missing,
    high/low do not bound open/close, or its time does not increase on the previous kept row.
    Returns a new frame (index reset) with int `time_ms` added; `attrs["bad_rows"]` lists
    (row, reason) and `attrs["gaps"]` the missing bars.
    """
    missing = [c for c in CANDLE_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{source}: missing column(s) {', '.join(missing)} (need {', '.join(CANDLE_COLUMNS)})")
    times = _time_ms_column(frame, "date")
    cols = {c: frame[c].tolist() for c in CANDLE_COLUMNS[1:]}
    keep, bad = [], []
    prev_t = None
    for i, t in enumerate(times):
        o, h, l, c = (_finite_positive(cols[k][i]) for k in ("open", "high", "low", "close"))
        v = _finite_positive(cols["volume"][i], allow_zero=True)
        if None in (o, h, l, c):
            why = "price missing, not finite or <= 0"
        elif v is None:
            why = "volume missing, not finite or negative"
        elif h < max(o, c, l) or l > min(o, c, h):
            why = f"high/low do not bound open/close (o={o} h={h} l={l} c={c})"
        elif prev_t is not None and t <= prev_t:
            why = f"time {t} does not increase on the previous bar ({prev_t})"
        else:
            keep.append(i)
            prev_t = t
            continue
        bad.append((i, why))
    _report(source, bad)
    out = frame.iloc[keep].reset_index(drop=True)
    out["time_ms"] = [times[i] for i in keep]
    out.attrs["bad_rows"] = bad
    kept_times = out["time_ms"].tolist()
    out.attrs["gaps"] = detect_gaps(kept_times) if len(kept_times) > 1 else []
    _log_gaps(source, out.attrs["gaps"])
    return out


def load_candles(path):
    """Candles from feather/parquet/csv (date, open, high, low, close, volume), validated."""
    return validate_candles(_read(path), str(path))


def validate_trades(frame, source: str = "trades"):
    """Normalise a trades frame to time_ms, trade_id, price, qty, side (taker BUY/SELL).

    Accepts freqtrade's layout (timestamp ms, id, side buy/sell, price, amount) and
    nautilus_trader's (timestamp datetime, trade_id, price, quantity, buyer_maker). Rows with a
    non-finite or non-positive price or quantity, an unknown side, or a time going backwards are
    reported by row index and skipped. `attrs["bad_rows"]` lists them.
    """
    # Lazy: pandas is an optional extra (dev, ml, dashboard): only this path needs it.
    import pandas as pd

    cols = set(frame.columns)
    qty_col = "amount" if "amount" in cols else "quantity" if "quantity" in cols else None
    id_col = "id" if "id" in cols else "trade_id" if "trade_id" in cols else None
    if "timestamp" not in cols or "price" not in cols or qty_col is None or not ({"side", "buyer_maker"} & cols):
        raise ValueError(f"{source}: need timestamp, price, amount|quantity and side|buyer_maker columns, "
                         f"got {sorted(cols)}")
    times = _time_ms_column(frame, "timestamp")
    prices, qtys = frame["price"].tolist(), frame[qty_col].tolist()
    ids = frame[id_col].tolist() if id_col else list(range(len(times)))
    if "side" in cols:
        sides = [{"buy": BUY, "sell": SELL}.get(str(s).lower()) for s in frame["side"].tolist()]
    else:
        # buyer is maker -> the seller took liquidity
        sides = [{"true": SELL, "false": BUY}.get(str(m).lower()) for m in frame["buyer_maker"].tolist()]
    rows, bad = [], []
    prev_t = None
    for i, t in enumerate(times):
        p, q = _finite_positive(prices[i]), _finite_positive(qtys[i])
        if p is None:
            why = "price missing, not finite or <= 0"
        elif q is None:
            why = "quantity missing, not finite or <= 0"
        elif sides[i] is None:
            why = "unknown taker side"
        elif prev_t is not None and t < prev_t:
            why = f"time {t} goes backwards ({prev_t})"
        else:
            rows.append((t, str(ids[i]), prices[i], qtys[i], sides[i]))
            prev_t = t
            continue
        bad.append((i, why))
    _report(source, bad)
    out = pd.DataFrame(rows, columns=["time_ms", "trade_id", "price", "qty", "side"])
    out.attrs["bad_rows"] = bad
    return out


def load_trades(path):
    """Trades from feather/parquet/csv, validated and normalised (see validate_trades)."""
    return validate_trades(_read(path), str(path))


# ---- the market driver -------------------------------------------------------------------------

class MarketDriver:
    """Keeps market-maker liquidity around a price path and trades through the book.

    Quotes: bids at bid_top - i and asks at ask_top + i (i < levels), where bid_top = ref -
    spread_ticks // 2 and ask_top = bid_top + spread_ticks. The quoted mid (bid_top+ask_top)/2
    is the line the path moves: when the path moves, every ask strictly below the new mid and
    every bid strictly above it has been crossed by the market and is swept with market-maker
    IOC takes (user orders there fill at their own price in price-time priority; the exchange
    expires the MM's own quotes rather than self-trading). With spread 1: asks at or below ref
    fill, bids above ref fill. The re-quote then cancels MM orders off the band and fills every
    missing tick, never at a price that would cross a user order. `step()` checks the book is not
    crossed afterwards.

    The tape: after each move the market trades at the touch in the move's direction, and now
    and then at random (seeded) for activity. Those takes go through `exchange.mm_trade` when the
    exchange has it (an IOC at one price where MM quotes print trades instead of expiring), else
    through `mm_take`, in which case only user orders at the touch trade (SimExchange's MM never
    self-trades, so the tape then shows user trades only).

    Within one step only the turning points matter to a sweep (sweeping to an extreme covers
    every tick before it), so the path's points reduce to the earlier extreme, the later extreme
    and the last price; recorded trades (TradeReplayPath) are replayed one by one.
    """

    def __init__(self, exchange, symbol: str, path, *, levels: int = 20,
                 level_qty_steps: tuple[int, int] = (1, 100), spread_ticks: int = 1, rng_seed: int = 0,
                 activity_prob: float | None = None, activity_max_steps: int | None = None,
                 move_prints: bool = True):
        if levels < 1 or spread_ticks < 1:
            raise ValueError("levels and spread_ticks must be >= 1")
        lo, hi = level_qty_steps
        if not 1 <= lo <= hi:
            raise ValueError("level_qty_steps must be (min, max) with 1 <= min <= max")
        self.exchange, self.symbol, self.path = exchange, symbol, path
        self.spec = exchange.spec(symbol)
        self.levels, self.spread = levels, spread_ticks
        self.qty_range = (lo, hi)
        self.rng = random.Random(rng_seed)
        self.replays_trades = bool(getattr(path, "takes", False))
        # Recorded trades are the activity of a trade replay; other paths get random takes.
        self.activity_prob = (0.0 if self.replays_trades else 0.3) if activity_prob is None else activity_prob
        self.activity_max = activity_max_steps or lo
        self.move_prints = move_prints and not self.replays_trades
        self.prints = hasattr(exchange, "mm_trade")        # can MM quotes print trades?
        self._trade = exchange.mm_trade if self.prints else exchange.mm_take
        self.ref: int | None = None
        self.stats: Counter = Counter()

    # ---- the band around the reference -------------------------------------------------------

    def band(self, ref: int) -> tuple[int, int]:
        """(bid_top, ask_top) quoted around ref."""
        bid_top = ref - self.spread // 2
        return bid_top, bid_top + self.spread

    def _top(self) -> tuple[int | None, int, int | None, int]:
        top = self.exchange.book_top(self.symbol)
        if top is None:
            return None, 0, None, 0
        bid, bq, ask, aq = top
        return bid, bq or 0, ask, aq or 0

    # ---- one market step ---------------------------------------------------------------------

    def step(self, now_ms: int) -> None:
        points = self.path.advance(now_ms)
        if self.replays_trades:
            for p in points:
                self._replay_trade(p)
        else:
            hint = sum(p.volume_hint for p in points)
            for price in _turning_points(points):
                prev = self.ref
                self._move(price)
                self._requote()
                if self.move_prints and prev is not None and price != prev:
                    self._take_touch(BUY if price > prev else SELL, hint)
                    hint = 0
        if self.ref is None:
            return
        if self.activity_prob and self.rng.random() < self.activity_prob:
            self._take_touch(BUY if self.rng.random() < 0.5 else SELL, 0)
        self._requote()
        self._check_uncrossed()

    def _move(self, ref: int) -> None:
        """Make `ref` the reference: sweep what the path crossed (see the class docstring)."""
        self.ref = ref
        bid_top, ask_top = self.band(ref)
        self._sweep(BUY, (bid_top + ask_top - 1) // 2)       # asks strictly below the mid
        self._sweep(SELL, (bid_top + ask_top) // 2 + 1)      # bids strictly above the mid

    def _sweep(self, side: str, limit: int) -> None:
        # One IOC for everything up to the limit: the contract shows only the top of the book, so
        # the size is "all of it" and the unfilled rest expires (the MM account is unlimited).
        # A single take keeps a user order's fill in one trade rather than split per level.
        while True:
            top = self._top()
            bid, _, ask, _ = top
            if (ask is None or ask > limit) if side == BUY else (bid is None or bid < limit):
                return
            self.stats["sweeps"] += 1
            filled = self.exchange.mm_take(self.symbol, side, limit, _SWEEP_ALL)
            if not filled and self._top() == top:
                raise RuntimeError(f"{self.symbol}: a {side} sweep to {limit} made no progress")

    def _take_touch(self, side: str, hint: int) -> None:
        """A take at the touch: the source volume when hinted (up to the touch size), else a
        small random size. It never moves the price: the path is the price authority."""
        bid, bq, ask, aq = self._top()
        price, touch = (ask, aq) if side == BUY else (bid, bq)
        if price is None:
            return
        qty = min(hint, touch) if hint else min(self.rng.randint(1, self.activity_max), touch)
        if not self.prints:
            # Without mm_trade only user orders can trade: skip a touch that is all MM (the take
            # would just expire those quotes and churn the depth stream).
            mm = sum(o.qty_steps if hasattr(o, "qty_steps") else o.orig_qty_steps - o.executed_qty_steps
                     for o in self.exchange.mm_orders(self.symbol) if o.price_ticks == price)
            if touch <= mm:
                return
        if qty > 0:
            self.stats["touch_takes"] += 1
            self._trade(self.symbol, side, price, qty)

    def _replay_trade(self, p: PathPoint) -> None:
        """A recorded trade: quote so its price is the touch, top the touch up to the trade's
        size, and take it there (user orders at that price fill first, by time priority)."""
        price, qty, side = p.price_ticks, p.volume_hint, p.side
        bid_top = price - self.spread if side == BUY else price
        self._move(bid_top + self.spread // 2)
        self._requote()
        bid, bq, ask, aq = self._top()
        have = (aq if ask == price else 0) if side == BUY else (bq if bid == price else 0)
        if have < qty:
            self.exchange.mm_quote(self.symbol, SELL if side == BUY else BUY, price, qty - have)
        self.stats["replayed"] += 1
        self._trade(self.symbol, side, price, qty)

    def _requote(self) -> None:
        bid_top, ask_top = self.band(self.ref)
        lo_bid, hi_ask = bid_top - self.levels + 1, ask_top + self.levels - 1
        have_bid, have_ask = set(), set()
        for o in list(self.exchange.mm_orders(self.symbol)):
            p = o.price_ticks
            if o.side == BUY:
                ok, have = lo_bid <= p <= bid_top and p not in have_bid, have_bid
            else:
                ok, have = ask_top <= p <= hi_ask and p not in have_ask, have_ask
            if ok:
                have.add(p)
            else:
                self.stats["cancels"] += 1
                self.exchange.mm_cancel(self.symbol, o.order_id)
        _, _, best_ask, _ = self._top()
        for i in range(self.levels):
            p = bid_top - i
            if p < 1:
                break
            if p not in have_bid and (best_ask is None or p < best_ask):
                self._quote(BUY, p)
        best_bid, _, _, _ = self._top()
        for i in range(self.levels):
            p = ask_top + i
            if p not in have_ask and (best_bid is None or p > best_bid):
                self._quote(SELL, p)

    def _quote(self, side: str, price: int) -> None:
        self.stats["quotes"] += 1
        self.exchange.mm_quote(self.symbol, side, price, self.rng.randint(*self.qty_range))

    def _check_uncrossed(self) -> None:
        bid, _, ask, _ = self._top()
        if bid is not None and ask is not None and bid >= ask:
            raise RuntimeError(f"{self.symbol}: book crossed after a market step (bid {bid} >= ask {ask})")

    # ---- history -----------------------------------------------------------------------------

    def seed_history(self, *sinks, n_bars: int | None = 1000, interval: str = "1m",
                     end_ms: int | None = None) -> list[Bar]:
        """History bars before the start, fed to each sink's `seed(bars, interval)`.

        Synthetic: n_bars of `interval` generated backwards from the start price, ending at the
        bar containing end_ms (default: the path's start). Candle replay: the (last n_bars) bars
        before the start point, at the candles' own interval. Trade replay: the trades before
        the start, aggregated to `interval`. Returns the bars (exact Decimal).
        """
        path = self.path
        if isinstance(path, CandleReplayPath):
            hbars, interval = path.history(n_bars), interval_name(path.interval_ms)
        elif isinstance(path, TradeReplayPath):
            hbars = path.history(INTERVAL_MS[interval], n_bars)
        else:
            end = end_ms if end_ms is not None else path.start_ms
            if end is None:
                raise ValueError("seed_history needs end_ms before a synthetic path has started")
            lo, hi = self.qty_range
            hbars = path.history(end, n_bars or 1000, INTERVAL_MS[interval],
                                 volume_steps=(lo * self.levels, hi * self.levels))
        bars = history_to_bars(hbars, self.spec.tick_size, self.spec.step_size)
        for sink in sinks:
            sink.seed(bars, interval)
        return bars


def _turning_points(points: list[PathPoint]) -> list[int]:
    """The prices a sweep must visit, in time order: the earlier extreme, the later one, the last."""
    if not points:
        return []
    prices = [p.price_ticks for p in points]
    i_hi = max(range(len(prices)), key=prices.__getitem__)
    i_lo = min(range(len(prices)), key=prices.__getitem__)
    out = []
    for i in sorted({i_hi, i_lo, len(prices) - 1}):
        if not out or out[-1] != prices[i]:
            out.append(prices[i])
    return out
