"""The drift report: load the window, replay it, pair the orders, attribute, show.

`drift_report(client, database, start, end, config=...)` returns a `DriftReport`; `text()` is
what `abidance report drift` prints, `as_json()` what `--json` writes (Decimals as exact strings).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal

from abidance.config import parse_config
from abidance.data.bars import parse_interval
from abidance.drift import recording
from abidance.drift.calibrate import config_snippet, fill_overrides, fit_symbol
from abidance.drift.attribution import LINES, Context, Market, StrategyDrift, Valuation, attribute
from abidance.drift.replay import replay_input, replay_orders, run_replay


@dataclass
class DriftReport:
    start: int
    end: int
    source: str                                   # what the replay ran on: "trades" or "bars"
    config_note: str
    strategies: dict[str, StrategyDrift]
    gaps: dict[str, list[tuple[int, int]]]
    filled_bars: dict[str, int]
    marks: dict[str, Decimal]
    quote: str
    balances: dict[str, Decimal] = field(default_factory=dict)
    market_points: dict = field(default_factory=dict)        # symbol -> [(ns, price)]: the market both runs saw
    base_of: dict = field(default_factory=dict)              # symbol -> base asset
    own_trades: dict = field(default_factory=dict)           # symbol -> the node's own fills left out of the market
    fits: list = field(default_factory=list)                 # calibrate.SymbolFit per symbol (--calibrate)
    fitted: dict[str, Decimal] = field(default_factory=dict)  # strategy -> live minus a replay with the fitted model

    def text(self) -> str:
        out = [f"drift {_t(self.start)} -> {_t(self.end)}: live against a replay over the recorded {self.source} "
               f"(quote {self.quote}; both runs valued at the window's last prices: "
               + ", ".join(f"{s} {m}" for s, m in sorted(self.marks.items())) + ")",
               f"config: {self.config_note}; starting balances: "
               + (", ".join(f"{a} {v}" for a, v in sorted(self.balances.items())) or "the config's")]
        for symbol, gaps in sorted(self.gaps.items()):
            for a, b in gaps:
                out.append(f"data gap {symbol}: {_t(a)} -> {_t(b)} ({(b - a) / 1e9:.0f} s without market data)"
                           + (f"; the replay used {self.filled_bars[symbol]} given {self.source}"
                              if self.filled_bars.get(symbol) else ""))
        for symbol, n in sorted(self.own_trades.items()):
            if n:
                out.append(f"{symbol}: {n} trades on the tape were the node's own fills: left out of the "
                           "replay's market")
        if not self.strategies:
            out.append("no orders in this window, live or replayed")
        for sid, d in sorted(self.strategies.items()):
            out += ["", f"strategy {sid}: live PnL {d.live_pnl}  replay PnL {d.replay_pnl}  "
                        f"difference {d.difference} {self.quote}"]
            out += [f"  {name:<42} {amount}" for name, amount in d.lines.items() if amount or name in _ALWAYS]
            out.append(f"  {'residual (not explained)':<42} {d.residual}")
            for asset, fee in sorted(d.unpriced_fees.items()):
                out.append(f"  {'fees without a price (left out)':<42} {fee} {asset}")
            out.append("  orders: " + ", ".join(f"{k} {v}" for k, v in sorted(d.counts.items())))
            out.append("  side by side (decided, side, live qty @ avg | replay qty @ avg | reason):")
            for p in d.pairs:
                o = p.live or p.replay
                out.append(f"    {_t(o.decided)} {o.symbol} {o.side:<4} {_side(p.live):<28} {_side(p.replay):<28} "
                           f"{p.reason}")
        if self.fits:
            out += ["", "calibration (the fill model fitted to the live fills):"]
            out += ["  " + line for line in config_snippet(self.fits).splitlines()]
            for sid, diff in sorted(self.fitted.items()):
                out.append(f"  strategy {sid}: live minus replay {self.strategies[sid].difference} with the config's "
                           f"fill model, {diff} with the fitted one")
        return "\n".join(out) + "\n"

    def as_json(self) -> dict:
        return {
            "from": _t(self.start), "to": _t(self.end), "source": self.source, "config": self.config_note,
            "quote": self.quote, "marks": {s: str(m) for s, m in self.marks.items()},
            "balances": {a: str(v) for a, v in self.balances.items()}, "own_trades": dict(self.own_trades),
            "gaps": {s: [[a, b] for a, b in g] for s, g in self.gaps.items()},
            "strategies": {sid: {
                "live_pnl": str(d.live_pnl), "replay_pnl": str(d.replay_pnl), "difference": str(d.difference),
                "lines": {k: str(v) for k, v in d.lines.items()}, "residual": str(d.residual),
                "unpriced_fees": {a: str(v) for a, v in d.unpriced_fees.items()}, "counts": dict(d.counts),
                "pairs": [{"decided": (p.live or p.replay).decided, "side": (p.live or p.replay).side,
                           "live": _side(p.live), "replay": _side(p.replay), "reason": p.reason} for p in d.pairs],
            } for sid, d in self.strategies.items()},
            "calibration": {f.symbol: {name: {"value": _str(fit.value), "low": _str(fit.low), "high": _str(fit.high),
                                              "samples": fit.samples, "how": fit.how}
                                       for name, fit in (("slippage_bps", f.slippage_bps), ("latency_ms", f.latency_ms),
                                                         ("participation", f.participation))}
                            for f in self.fits},
            "fitted_difference": {sid: str(v) for sid, v in self.fitted.items()},
        }


_ALWAYS = ("slippage", "latency", "fees")


def _str(v) -> str | None:
    return None if v is None else str(v)


def _t(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _side(o) -> str:
    if o is None:
        return "-"
    q = o.filled
    avg = (o.notional / q).quantize(Decimal("1e-8")) if q else "-"
    return f"{q}/{o.ordered} @ {avg} {o.status}"


def config_in_force(rec, given=None):
    """The config given, else the newest recorded version at or before the window's start (else the
    first after it: the node started inside the window)."""
    if given is not None:
        return given, "given on the command line"
    before = [c for c in rec.configs if c[0] <= rec.start] or rec.configs[:1]
    if not before:
        raise ValueError("no config recorded for this window (the node records its config when it starts): "
                         "give --config FILE")
    ts, version, author, text = before[-1]
    # A node restarting with the same config is a restart (Context.restarts), not a switch.
    switches = [c for c in rec.configs if rec.start < c[0] < rec.end and c[3] != text]
    if switches:
        raise ValueError(f"the config changed {len(switches)} time(s) inside the window "
                         f"(first at {_t(switches[0][0])}):"
                         " replaying across a switch is not supported yet; split the window there")
    return parse_config(text, tempfile.gettempdir()), f"version {version} by {author or 'unknown'} from {_t(ts)}"


def drift_report(client, database: str, start: int, end: int, *, config=None, strategy: str | None = None,
                 instruments: dict, candles: dict | None = None, trades: dict | None = None,
                 balances: dict | None = None,
                 tolerance_ns: int | None = None, calibrate: bool = False) -> DriftReport:
    rec = recording.load(client, database, start, end, strategy)
    config, note = config_in_force(rec, config)
    recording.ExchangeClock(rec.trades).orders(rec)
    inp = replay_input(rec, config, instruments, candles, trades)
    start_balances = balances or rec.balances or None
    result = run_replay(config, inp, instruments, start_balances)
    replayed, replay_denials = replay_orders(result, instruments)
    if strategy is not None:
        replayed = [o for o in replayed if o.strategy_id == strategy]
    market = Market(inp.market_points(instruments))
    symbols = [s for s in inp.data if inp.data[s]]
    marks = {s: market.mark(s, end) for s in symbols}
    quote = config.risk.quote_asset
    value = Valuation(quote, {s: instruments[s].base_asset for s in symbols}, marks)
    shortest = min((parse_interval(sc.timeframe) for sc in config.strategies), default=0)
    starts = [c[0] for c in rec.configs if c[2] == recording.NODE_AUTHOR]
    ctx = Context(gaps=inp.gaps, halts=rec.halts, restarts=starts, restart_window=shortest,
                  tolerance=shortest // 2 if tolerance_ns is None else tolerance_ns)
    live = [o for o in rec.orders if o.symbol in marks]
    drift = attribute(live, replayed, market, value, ctx, rec.denials, replay_denials)
    report = DriftReport(start, end, inp.source, note, drift, inp.gaps, inp.filled_bars, marks, quote,
                         start_balances or {}, market.points, value.base_of, own_trades=inp.own_trades)
    if calibrate and symbols:
        report.fits = [fit_symbol(s, live, market, inp.recorded.get(s), instruments[s].filters.qty_fp.increment,
                                  instruments[s].filters.price_fp.increment) for s in symbols]
        # The replay again with the fitted model: how much of the gap the fit closes.
        fitted = run_replay(config, inp, instruments, start_balances, **fill_overrides(report.fits[0]))
        again, denied = replay_orders(fitted, instruments)
        if strategy is not None:
            again = [o for o in again if o.strategy_id == strategy]
        report.fitted = {sid: d.difference for sid, d in attribute(
            [o for o in rec.orders if o.symbol in marks], again, market, value, ctx, rec.denials, denied).items()}
    return report


__all__ = ["DriftReport", "drift_report", "LINES"]
