"""Fit the backtest's fill model to the live fills, per symbol, with the uncertainty of each figure.

- **slippage_bps**: each live MARKET order's first fill against the market when it reached the
  venue (`P_a`, as in the attribution), in basis points against the order; the mean, with its
  standard error.
- **latency_ms**: the backtest lets an order reach only trades at least `latency_ms` after it was
  sent. Each live order bounds it: above by the time from its decision to its first fill, below
  by the last trade before that which could have filled a step of it. The fit is the upper end
  of the interval most orders agree on (an order queued behind another waited longer).
- **participation**: the backtest fills at most that share of each trade. Each fill that did not
  complete its order bounds it: at least fill/trade, less than (fill + one step)/trade. The fit is
  the middle of the interval they all agree on (none when every order filled whole trades).

Only the trades source has trade sizes and times fine enough for the last two; over bars only
slippage is fitted.
"""

from __future__ import annotations

import bisect
import statistics
from dataclasses import dataclass
from decimal import Decimal

from abidance.drift.attribution import Market
from abidance.drift.orders import OrderRecord

BPS = Decimal(10_000)


@dataclass
class Fit:
    value: Decimal | None
    low: Decimal | None            # the interval (or value +/- one standard error)
    high: Decimal | None
    samples: int
    how: str

    def line(self, name: str, unit: str) -> str:
        if self.value is None:
            return f"{name}: not fitted ({self.how})"
        return f"{name}: {self.value} {unit} (from {self.low} to {self.high}; {self.samples} samples; {self.how})"


@dataclass
class SymbolFit:
    symbol: str
    slippage_bps: Fit
    latency_ms: Fit
    participation: Fit


def fit_symbol(symbol: str, orders: list[OrderRecord], market: Market, trades: list | None, step: Decimal,
               tick: Decimal) -> SymbolFit:
    own = [o for o in orders if o.symbol == symbol and o.fills and o.order_type == "MARKET"]
    share = _participation(own, trades, step)
    return SymbolFit(symbol, _slippage(symbol, own, market, tick), _latency(own, trades, share.value, 1), share)


def _slippage(symbol: str, orders: list[OrderRecord], market: Market, tick: Decimal) -> Fit:
    samples, rounding = [], []
    for o in orders:
        p_a = market.at(symbol, o.arrived)
        samples.append(o.sign * (o.fills[0].price - p_a) / p_a * BPS)
        rounding.append(tick / 2 / p_a * BPS)         # a fill price is rounded to the tick
    if not samples:
        return Fit(None, None, None, 0, "no filled market orders")
    n = len(samples)
    mean = sum(samples, Decimal(0)) / n
    se = Decimal(statistics.stdev(samples)) / Decimal(n).sqrt() if n > 1 else Decimal(0)
    half_tick = sum(rounding, Decimal(0)) / n
    q = Decimal("0.0001")
    return Fit(mean.quantize(q), (mean - se - half_tick).quantize(q), (mean + se + half_tick).quantize(q), n,
               "mean; one standard error plus half a tick")


def _latency(orders: list[OrderRecord], trades: list | None, participation: Decimal | None, step_qty: int) -> Fit:
    if not trades or not orders:
        return Fit(None, None, None, 0, "needs recorded trades")
    times = [t.ts_trade for t in trades]
    lows, highs = [], []
    for o in orders:
        arrival = o.fills[0].ts
        highs.append(arrival - o.decided)
        # A trade after the decision and before the arrival that could have filled a step was not
        # reached: the latency exceeds it.
        i, j = bisect.bisect_left(times, o.decided), bisect.bisect_left(times, arrival)
        big = [t for t in trades[i:j] if participation is None or t.qty * participation >= step_qty]
        lows.append(big[-1].ts_trade - o.decided if big else 0)
    # The latency most orders agree on (an order queued behind another one waited longer).
    best = max(sorted(set(highs)), key=lambda x: sum(lo < x <= hi for lo, hi in zip(lows, highs)))
    agree = [(lo, hi) for lo, hi in zip(lows, highs) if lo < best <= hi]
    low, high = max(lo for lo, _ in agree), min(hi for _, hi in agree)
    ms = lambda ns: Decimal(ns) / 1_000_000                    # noqa: E731
    return Fit(ms(high), ms(low), ms(high), len(orders), f"the interval {len(agree)} of {len(orders)} orders agree "
               "on: above the last trade that could have filled a step, at most the time to the first fill")


def _participation(orders: list[OrderRecord], trades: list | None, step: Decimal) -> Fit:
    if not trades:
        return Fit(None, None, None, 0, "needs recorded trades")
    size: dict[int, list[int]] = {}
    for t in trades:
        size.setdefault(t.ts_trade, []).append(t.qty)
    # Each fill that did not complete its order: the share lies in [fill/trade, (fill + step)/trade) for
    # the trade it came from, one of those printed at its time. The fit is the share most fills agree on.
    options = []
    for o in orders:
        for f in o.fills[:-1] if len(o.fills) > 1 else ():
            options.append([(f.qty / (q * step), (f.qty + step) / (q * step))
                            for q in size.get(f.ts, []) if q * step >= f.qty])
    options = [o for o in options if o]
    if not options:
        return Fit(None, None, None, 0, "every order filled at one trade: no limit seen")
    best, low, high = 0, None, None
    for start in sorted({lo for opts in options for lo, _ in opts}):
        agree = [min(hi for lo, hi in opts if lo <= start < hi) for opts in options
                 if any(lo <= start < hi for lo, hi in opts)]
        if len(agree) > best:
            best, low, high = len(agree), start, min(agree)
    if low >= 1:
        return Fit(None, None, None, len(options), "every order filled whole trades: no limit seen")
    q = Decimal("0.0001")
    return Fit(min((low + high) / 2, Decimal(1)).quantize(q), low.quantize(q), high.quantize(q), len(options),
               f"the interval {best} of {len(options)} partial fills agree on")


def config_snippet(fits: list[SymbolFit]) -> str:
    """A [backtest] section to adopt. The fill model has one slippage, latency and participation for
    every symbol: the first symbol's figures are used, the others' shown as comments."""
    out = ["# Fitted by `abidance report drift --calibrate` from the live fills (docs/drift.md).", "[backtest]"]
    for i, f in enumerate(fits):
        prefix = "" if i == 0 else "# "
        out.append(f"# {f.symbol}: " + "; ".join(fit.line(name, unit) for name, unit, fit in (
            ("slippage", "bps", f.slippage_bps), ("latency", "ms", f.latency_ms),
            ("participation", "", f.participation))))
        if f.slippage_bps.value is not None:
            out.append(f'{prefix}slippage_bps = "{max(f.slippage_bps.value, Decimal(0))}"')
        if f.latency_ms.value is not None:
            out.append(f"{prefix}latency_ms = {int(f.latency_ms.value)}")
        if f.participation.value is not None:
            out.append(f'{prefix}participation = "{f.participation.value}"')
    return "\n".join(out) + "\n"


def fill_overrides(fit: SymbolFit) -> dict:
    """The fitted figures as Backtest keyword overrides (what is not fitted keeps the config's)."""
    out = {}
    if fit.slippage_bps.value is not None:
        out["slippage_bps"] = max(fit.slippage_bps.value, Decimal(0))
    if fit.latency_ms.value is not None:
        out["latency_ms"] = int(fit.latency_ms.value)
    if fit.participation.value is not None:
        out["participation"] = fit.participation.value
    return out
