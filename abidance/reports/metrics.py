"""Performance metrics from the store's equity curve and fills: pure functions, no Streamlit, no store.

Account level (from the `equity` table): total return, CAGR, Sharpe, Sortino, max drawdown,
exposure. Trade level (from `fills`, per strategy and symbol): round trips, win rate, profit
factor, realised PnL, fees, exposure. Money stays `Decimal` (exact, as the store holds it);
ratios are floats.

Conventions, chosen once:
- Returns are simple returns of equity sampled at the end of each period (`period`, a pandas
  offset such as "1D" or "1h"; the first point opens the first period). Annualised with
  `periods_per_year` (crypto trades every day: 365 days, 8760 hours).
- Sharpe = mean / sample std (ddof=1) x sqrt(periods_per_year), risk-free rate 0.
- Sortino = mean / downside deviation x sqrt(periods_per_year), where the downside deviation is
  sqrt(mean(min(r, 0)^2)) over every period (target 0).
- CAGR = (last / first) ^ (1 / years) - 1 with years = elapsed seconds / (365 x 86400).
- Max drawdown is the largest fall from a running peak, as a fraction of that peak and in money.
- Annualised figures (CAGR, Sharpe, Sortino, Calmar) are withheld, with the reason, on less than
  MIN_ANNUALISED_SPAN_S of equity (a 10-minute run compounds to a CAGR of 1e130), and Sharpe and
  Sortino on fewer than MIN_RETURNS periodic returns.
- A position is open while at least one lot is held; the lot of a symbol is the finest quantity
  increment among its fills (`lot_steps`: every fill is a whole number of the exchange's step, so
  this is the step or a multiple of it). The fee dust a sale leaves (a buy's fee is paid in the
  base asset) is less than a lot, so it closes the round trip and is not exposure. The same
  fills give the same answer everywhere: the backtester, its report, the store reader and the
  dashboard all call `performance()`.
- A round trip runs from a flat position to flat again (spot: long only), booked like the node's
  portfolio does: average cost, fees paid in the quote asset as they are, fees paid in the base
  asset valued at the fill price (and the base they take), fees in other assets not valued.
  Its PnL includes every fee of the round trip. Win rate = winning / all closed round trips;
  profit factor = gross profit / gross loss (inf when there is no loss).
- Exposure = share of the equity curve's span with any position open (the union over strategies
  and symbols of their round trips' holding times, open ones to the end).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from abidance.reports.fills import book_fill

ZERO = Decimal(0)
SECONDS_PER_YEAR = 365 * 86400
MIN_ANNUALISED_SPAN_S = 86400        # CAGR, Sharpe, Sortino, Calmar need at least a day of equity
MIN_RETURNS = 30                     # Sharpe and Sortino need at least this many periodic returns
PERIODS_PER_YEAR = {"1D": 365, "1h": 365 * 24, "1min": 365 * 24 * 60}


def _dec(v) -> Decimal:
    return v if isinstance(v, Decimal) else Decimal(str(v))


# ---- account level ---------------------------------------------------------------------------

def total_return(equity: Sequence) -> float | None:
    """last / first - 1; None with fewer than two points or a first value <= 0."""
    if len(equity) < 2 or _dec(equity[0]) <= 0:
        return None
    return float(_dec(equity[-1]) / _dec(equity[0]) - 1)


def cagr(first, last, seconds: float) -> float | None:
    """Compound annual growth rate over `seconds`; None when undefined (no time, non-positive values)."""
    first, last = _dec(first), _dec(last)
    if seconds <= 0 or first <= 0 or last < 0:
        return None
    years = seconds / SECONDS_PER_YEAR
    return (float(last) / float(first)) ** (1.0 / years) - 1.0


def periodic_returns(ts: Sequence, equity: Sequence, period: str = "1D") -> pd.Series:
    """Simple returns of equity sampled at the last point of each `period` (empty periods carry the
    previous value). The first point is the opening value of the first period (a first period
    holding nothing else has no return)."""
    if len(equity) < 2:
        return pd.Series(dtype=float)
    s = pd.Series([float(_dec(e)) for e in equity], index=pd.DatetimeIndex(pd.to_datetime(ts, utc=True)))
    s = s.sort_index()
    grouped = s.resample(period)
    closes = grouped.last().ffill()
    values = np.concatenate([[s.iloc[0]], closes.to_numpy()])
    # A return needs a positive value to grow from: an account worth nothing (0, or not valued in
    # its quote asset) has none, and no numpy warning reaches the user for it.
    prev = values[:-1]
    safe = prev > 0
    ratio = np.divide(values[1:], prev, out=np.full(prev.shape, np.nan), where=safe)
    r = pd.Series(ratio - 1.0, index=closes.index)
    if grouped.count().iloc[0] == 1:
        r, safe = r.iloc[1:], safe[1:]      # the first period holds only the opening point: no return of its own
    return r[safe]


def sharpe(returns: Iterable[float], periods_per_year: float) -> float | None:
    r = np.asarray(list(returns), dtype=float)
    if r.size < 2:
        return None
    sd = r.std(ddof=1)
    if sd == 0 or not np.isfinite(sd):
        return None
    return float(r.mean() / sd * math.sqrt(periods_per_year))


def sortino(returns: Iterable[float], periods_per_year: float) -> float | None:
    r = np.asarray(list(returns), dtype=float)
    if r.size < 2:
        return None
    downside = math.sqrt(float(np.mean(np.minimum(r, 0.0) ** 2)))
    if downside == 0:
        return None
    return float(r.mean() / downside * math.sqrt(periods_per_year))


@dataclass(frozen=True)
class Drawdown:
    fraction: float          # largest fall from a running peak, as a share of that peak (>= 0)
    amount: Decimal          # the same fall in money
    peak_index: int          # where that peak was
    trough_index: int        # and the bottom of the fall


def max_drawdown(equity: Sequence) -> Drawdown:
    best = Drawdown(0.0, ZERO, 0, 0)
    if not len(equity):
        return best
    peak, peak_i = _dec(equity[0]), 0
    for i, e in enumerate(equity):
        e = _dec(e)
        if e > peak:
            peak, peak_i = e, i
            continue
        fall = peak - e
        frac = float(fall / peak) if peak > 0 else 0.0
        if frac > best.fraction or (frac == best.fraction and fall > best.amount):
            best = Drawdown(frac, fall, peak_i, i)
    return best


def drawdown_series(equity: Sequence) -> list[float]:
    """Per point: fall from the running peak as a share of it (0 at a new high)."""
    out, peak = [], None
    for e in equity:
        e = float(_dec(e))
        peak = e if peak is None else max(peak, e)
        out.append((peak - e) / peak if peak > 0 else 0.0)
    return out


def time_share(ts: Sequence, active: Sequence[bool]) -> float | None:
    """Share of the time between the first and last timestamp during which `active` held
    (each point's state lasts until the next point)."""
    if len(ts) < 2:
        return None
    t = pd.to_datetime(pd.Series(ts), utc=True).astype("int64").to_numpy()
    span = t[-1] - t[0]
    if span <= 0:
        return None
    dt = np.diff(t)
    on = np.asarray(active[:-1], dtype=bool)
    return float(dt[on].sum() / span)


def pnl_since(ts: Sequence, equity: Sequence, start) -> Decimal | None:
    """Equity change from the last point before `start` (or the first point at/after it) to the end."""
    if not len(equity):
        return None
    t = pd.to_datetime(pd.Series(ts), utc=True)
    start = pd.Timestamp(start)
    start = start.tz_localize("UTC") if start.tzinfo is None else start
    before = np.flatnonzero((t < start).to_numpy())
    base = _dec(equity[before[-1]]) if before.size else _dec(equity[0])
    return _dec(equity[-1]) - base


@dataclass(frozen=True)
class AccountSummary:
    start_equity: Decimal
    end_equity: Decimal
    pnl: Decimal
    total_return: float | None
    cagr: float | None
    sharpe: float | None
    sortino: float | None
    max_drawdown: Drawdown
    exposure: float | None
    period: str
    periods: int
    withheld: str | None = None      # why CAGR / Sharpe / Sortino are not given (too short a span)


def _span_text(seconds: float) -> str:
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def annualised_withheld(seconds: float, periods: int) -> str | None:
    """Why annualised figures over `seconds` of equity with `periods` returns would mislead; None if fine."""
    if seconds < MIN_ANNUALISED_SPAN_S:
        return (f"withheld: {_span_text(seconds)} of equity; CAGR, Sharpe, Sortino and Calmar need at least "
                f"{_span_text(MIN_ANNUALISED_SPAN_S)}")
    if periods < MIN_RETURNS:
        return (f"Sharpe and Sortino withheld: {periods} periodic returns, they need at least {MIN_RETURNS}")
    return None


def choose_period(seconds: float) -> str:
    """Daily returns when there are at least 30 days of equity, hourly from 2 days, else minutes."""
    if seconds >= 30 * 86400:
        return "1D"
    if seconds >= 2 * 86400:
        return "1h"
    return "1min"


def account_summary(equity_df: pd.DataFrame, period: str | None = None) -> AccountSummary | None:
    """From an equity frame with columns ts, equity and (optionally) positions_value; None if empty."""
    if equity_df is None or equity_df.empty:
        return None
    df = equity_df.sort_values("ts", kind="stable")
    ts = pd.to_datetime(df["ts"], utc=True)
    eq = list(df["equity"])
    seconds = (ts.iloc[-1] - ts.iloc[0]).total_seconds()
    period = period or choose_period(seconds)
    r = periodic_returns(ts, eq, period)
    ppy = PERIODS_PER_YEAR.get(period, SECONDS_PER_YEAR / pd.Timedelta(period).total_seconds())
    exposure = None
    if "exposed" in df:             # the backtester's: a whole lot held (fee dust is not exposure)
        exposure = time_share(ts, list(df["exposed"]))
    elif "positions_value" in df:
        exposure = time_share(ts, [_dec(v) != 0 for v in df["positions_value"]])
    first, last = _dec(eq[0]), _dec(eq[-1])
    withheld = annualised_withheld(seconds, len(r))
    short = seconds < MIN_ANNUALISED_SPAN_S
    return AccountSummary(first, last, last - first, total_return(eq), None if short else cagr(first, last, seconds),
                          None if withheld else sharpe(r, ppy), None if withheld else sortino(r, ppy),
                          max_drawdown(eq), exposure, period, len(r), withheld)


# ---- trade level -----------------------------------------------------------------------------

@dataclass(frozen=True)
class RoundTrip:
    strategy_id: str
    symbol: str
    opened: pd.Timestamp
    closed: pd.Timestamp
    pnl: Decimal             # quote asset, fees included
    fees: Decimal            # valued fees of the round trip, quote asset
    fills: int


def round_trips(fills: pd.DataFrame, steps: dict[str, Decimal] | None = None
                ) -> tuple[list[RoundTrip], dict[tuple[str, str], dict]]:
    """Closed round trips, and per (strategy_id, symbol) the open state: quantity, realised PnL,
    fees, and the time intervals a position was held (open ones end at None).

    A trip closes once less than one lot is left (fee dust in the base asset cannot be sold): the
    lot is `lot_steps(fills)`, the module's one definition; `steps` overrides it per symbol (for
    tests of the booking itself)."""
    trips: list[RoundTrip] = []
    books: dict[tuple[str, str], dict] = {}
    if fills is None or fills.empty:
        return trips, books
    steps = {**lot_steps(fills), **(steps or {})}
    df = fills.sort_values("ts", kind="stable")
    for row in df.itertuples(index=False):
        key = (row.strategy_id, row.symbol)
        b = books.setdefault(key, {"qty": ZERO, "cost": ZERO, "realized": ZERO, "fees": ZERO, "trip_pnl": ZERO,
                                   "trip_fees": ZERO, "trip_fills": 0, "opened": None, "held": [],
                                   "volume": ZERO, "fills": 0})
        qty, price = _dec(row.qty), _dec(row.price)
        ts = pd.Timestamp(row.ts)
        ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts
        b["fills"] += 1
        b["volume"] += qty * price
        if row.side == "BUY" and b["opened"] is None:      # flat (or only dust left): a new trip starts
            b["trip_pnl"], b["trip_fees"], b["trip_fills"], b["opened"] = ZERO, ZERO, 0, ts
        realized, fee_value = book_fill(b, row.symbol, row.side, qty, price, _dec(row.commission),
                                        row.commission_asset)
        b["trip_pnl"] += realized
        b["trip_fees"] += fee_value
        b["trip_fills"] += 1
        if row.side != "BUY" and b["qty"] < steps.get(row.symbol, _TINY) and b["opened"] is not None:
            trips.append(RoundTrip(row.strategy_id, row.symbol, b["opened"], ts, b["trip_pnl"], b["trip_fees"],
                                   b["trip_fills"]))
            b["held"].append((b["opened"], ts))
            b["opened"] = None
            b["cost"] = ZERO
    for b in books.values():
        if b["opened"] is not None:
            b["held"].append((b["opened"], None))
    return trips, books


_TINY = Decimal("1e-30")


def lot_steps(fills: pd.DataFrame) -> dict[str, Decimal]:
    """symbol -> the finest quantity increment among its fills (10 ** the smallest exponent of the
    quantities). Every fill is a whole number of the exchange's lot step, so this is that step or a
    multiple of it: what a sale leaves below it is dust (a fee's remainder), not a position."""
    out: dict[str, Decimal] = {}
    if fills is None or fills.empty:
        return out
    for symbol, qty in zip(fills["symbol"], fills["qty"]):
        q = _dec(qty)
        if not q:
            continue
        exp = q.normalize().as_tuple().exponent
        step = Decimal(1).scaleb(min(exp, 0))
        if symbol not in out or step < out[symbol]:
            out[symbol] = step
    return out


def held_union(books: dict, start: pd.Timestamp, end: pd.Timestamp) -> float | None:
    """Share of [start, end] during which any (strategy, symbol) held a position (union of the
    holding intervals `round_trips` gives; an open one runs to `end`)."""
    intervals = sorted((max(a, start), min(b if b is not None else end, end))
                       for book in books.values() for a, b in book["held"])
    span = (end - start).total_seconds()
    if span <= 0:
        return None
    total, cur_a, cur_b = 0.0, None, None
    for a, b in intervals:
        if b <= a:
            continue
        if cur_b is None or a > cur_b:
            if cur_b is not None:
                total += (cur_b - cur_a).total_seconds()
            cur_a, cur_b = a, b
        else:
            cur_b = max(cur_b, b)
    if cur_b is not None:
        total += (cur_b - cur_a).total_seconds()
    return min(1.0, total / span)


def win_rate(pnls: Sequence[Decimal]) -> float | None:
    if not len(pnls):
        return None
    return sum(1 for p in pnls if p > 0) / len(pnls)


def profit_factor(pnls: Sequence[Decimal]) -> float | None:
    """Gross profit / gross loss; inf with profits and no loss; None without round trips or profit."""
    gains = sum((p for p in pnls if p > 0), ZERO)
    losses = -sum((p for p in pnls if p < 0), ZERO)
    if losses == 0:
        return math.inf if gains > 0 else None
    return float(gains / losses)


def held_share(held: list[tuple], start: pd.Timestamp, end: pd.Timestamp) -> float | None:
    """Share of [start, end] covered by the held intervals (an open interval runs to `end`)."""
    span = (end - start).total_seconds()
    if span <= 0:
        return None
    total = 0.0
    for a, b in held:
        a, b = max(a, start), min(b if b is not None else end, end)
        if b > a:
            total += (b - a).total_seconds()
    return min(1.0, total / span)


GROUP_COLUMNS = ["strategy_id", "symbol", "fills", "round_trips", "realized_pnl", "fees", "win_rate",
                 "profit_factor", "exposure", "open_qty", "volume"]


def per_strategy_symbol(fills: pd.DataFrame, start=None, end=None,
                        steps: dict[str, Decimal] | None = None) -> pd.DataFrame:
    """One row per (strategy, symbol): fills, round trips, realised PnL and fees (Decimal), win rate,
    profit factor, exposure over [start, end] (default: the fills' own span), open quantity, volume."""
    trips, books = round_trips(fills, steps)
    if not books:
        return pd.DataFrame(columns=GROUP_COLUMNS)
    ts = pd.to_datetime(fills["ts"], utc=True)
    start = pd.Timestamp(start) if start is not None else ts.min()
    end = pd.Timestamp(end) if end is not None else ts.max()
    rows = []
    for (strategy, symbol), b in sorted(books.items()):
        pnls = [t.pnl for t in trips if (t.strategy_id, t.symbol) == (strategy, symbol)]
        rows.append({"strategy_id": strategy, "symbol": symbol, "fills": b["fills"], "round_trips": len(pnls),
                     "realized_pnl": b["realized"], "fees": b["fees"], "win_rate": win_rate(pnls),
                     "profit_factor": profit_factor(pnls), "exposure": held_share(b["held"], start, end),
                     "open_qty": b["qty"], "volume": b["volume"]})
    return pd.DataFrame(rows, columns=GROUP_COLUMNS)


# ---- one run's figures -----------------------------------------------------------------------

@dataclass(frozen=True)
class Performance:
    """Every figure of a run, from its equity curve and its fills (see `performance`)."""

    start_equity: Decimal
    end_equity: Decimal
    pnl: Decimal
    span_s: float
    total_return: float | None
    cagr: float | None
    sharpe: float | None
    sortino: float | None
    calmar: float | None
    max_drawdown: Drawdown
    max_drawdown_duration_h: float
    exposure: float | None
    fills: int
    round_trips: int
    win_rate: float | None
    profit_factor: float | None
    expectancy: Decimal | None
    fees_in_trips: Decimal
    period: str
    periods: int
    withheld: str | None


def performance(equity_df: pd.DataFrame, fills_df: pd.DataFrame | None, drawdown: Drawdown | None = None
                ) -> Performance | None:
    """The one computation of a run's figures, used by the backtester (CLI and HTML report), the
    store reader and the dashboard: equity columns ts, equity; fills columns ts, strategy_id,
    symbol, side, qty, price, commission, commission_asset. `drawdown` replaces the max drawdown
    when the caller has it exactly over more rows than it passes (the dashboard samples the curve).
    None without equity."""
    acct = account_summary(equity_df)
    if acct is None:
        return None
    eq = equity_df.sort_values("ts", kind="stable")
    ts = pd.to_datetime(eq["ts"], utc=True)
    start, end = ts.iloc[0], ts.iloc[-1]
    dd = drawdown or acct.max_drawdown
    duration_h = 0.0
    if drawdown is None and dd.fraction:
        duration_h = (ts.iloc[dd.trough_index] - ts.iloc[dd.peak_index]).total_seconds() / 3600
    fills = fills_df if fills_df is not None else pd.DataFrame()
    trips, books = round_trips(fills)
    pnls = [t.pnl for t in trips]
    span = (end - start).total_seconds()
    calmar = acct.cagr / dd.fraction if acct.cagr is not None and dd.fraction else None
    return Performance(
        acct.start_equity, acct.end_equity, acct.pnl, span, acct.total_return, acct.cagr, acct.sharpe,
        acct.sortino, calmar, dd, duration_h, held_union(books, start, end) if books else 0.0 if span > 0 else None,
        len(fills), len(trips), win_rate(pnls), profit_factor(pnls),
        (sum(pnls, ZERO) / len(pnls)).quantize(Decimal("1e-8")) if pnls else None,
        sum((t.fees for t in trips), ZERO), acct.period, acct.periods, acct.withheld)


def fmt_pct(x: float | None, digits: int = 2) -> str:
    """A share as a percentage; a non-zero one too small for `digits` decimals keeps two significant
    digits (a 0.001 % drawdown is not shown as 0.00 %)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if math.isinf(x):
        return "inf"
    if x and abs(x * 100) < 0.5 * 10 ** -digits:
        return f"{x * 100:.2g}%"
    return f"{x * 100:.{digits}f}%"


def fmt_num(x: float | None, digits: int = 2) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if isinstance(x, float) and math.isinf(x):
        return "inf"
    return f"{x:.{digits}f}"


def fmt_money(x: Decimal | None, places: int = 2) -> str:
    if x is None:
        return "n/a"
    q = _dec(x).quantize(Decimal(1).scaleb(-places))
    return f"{q:,f}"
