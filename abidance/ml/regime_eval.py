"""Does regime switching beat the static mix? A walk-forward answer, whichever way it goes.

For each walk-forward window (the train/test windows of abidance.backtest.optimize.windows,
rolling or anchored, over the bars' distinct open times):
1. a RegimeModel is fitted on the train window's features only, and saved (with its sha256);
2. three out-of-sample results on the test window, each a backtest on the live engines
   (`Backtest`) with the research config (abidance.backtest.research_config: exchange
   filters on, limits, breakers and the kill-switch file off):
   - regime: the regime_switch strategy with that model and the mapping;
   - static: the same host with every hosted strategy enabled all the time ('*:a+b');
   - buy_and_hold: abidance.backtest.baselines.BuyAndHold on the test bars (bought at the
     first test bar's close, filled at the second's open, held), sized by the same risk engine.
   regime and static run over the last `warmup_bars` bars of the train window followed by the
   test window, with every signal dropped before the first test bar closes (`trade_from_ns`):
   indicators and features are warm at the start, both start flat, and their metrics cover
   the test bars only.
A strategy the engine disabled during a run (it raised) stops the evaluation with
StrategyDisabledError naming it and why: its flat 0 % would otherwise pass for a result.
Metrics are the dashboard's formulas (abidance.reports.metrics): total return, max
drawdown, Sharpe, round trips. Totals: returns compounded over the windows, mean Sharpe,
worst drawdown, round trips, and in how many windows regime beat static. `verdict` says
in plain words which won, including when it is not regime switching.

The command line is abidance.ml.regime_cli (`python -m abidance.ml.regime_cli`).
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path

from abidance.backtest.baselines import BUY_AND_HOLD, buy_and_hold_backtest
from abidance.backtest.engine import Backtest, sim_instruments
from abidance.backtest.optimize import windows
from abidance.backtest.research_config import research_config
from abidance.config.sections import StrategyConfig
from abidance.ml.regime_switch import check_mapping, parse_regimes
from abidance.ml.text import drawdown, number, pct, utc

VARIANTS = ("regime", "static", "buy_and_hold")


class StrategyDisabledError(ValueError):
    """A strategy the engine disabled during an evaluation backtest (it raised)."""


@dataclass
class VariantResult:
    total_return: float | None
    max_drawdown: float | None
    sharpe: float | None
    trades: int                  # closed round trips
    fills: int
    exposure: float | None = None


@dataclass
class RegimeWindowResult:
    window: int
    train_start: int             # ns, open time of the first train bar
    train_end: int               # ns, close time of the last train bar
    test_start: int
    test_end: int
    train_bars: int              # distinct bar times
    test_bars: int
    results: dict[str, VariantResult]
    regime_share: dict[int, float]   # share of the test bars in each regime (what the strategy saw)
    model_sha256: str = ""
    model: str = ""              # RegimeModel.describe()


@dataclass
class RegimeEvaluation:
    regimes: str
    windows: list[RegimeWindowResult]
    totals: dict[str, dict] = field(default_factory=dict)
    verdict: str = ""

    def table(self) -> str:
        """One line per window and variant, then the totals and the verdict."""
        head = (f"{'win':>3}  {'test window (UTC)':<33}  {'variant':<12}  {'return':>8}  {'max dd':>7}  "
                f"{'sharpe':>7}  {'trades':>6}  {'fills':>5}  regimes (share of test bars)")
        lines = [head, "-" * len(head)]
        for w in self.windows:
            shares = " ".join(f"{r}:{s:.0%}" for r, s in sorted(w.regime_share.items()))
            for i, name in enumerate(VARIANTS):
                r = w.results[name]
                span = f"{utc(w.test_start)} - {utc(w.test_end)}" if i == 0 else ""
                lines.append(f"{w.window if i == 0 else '':>3}  {span:<33}  {name:<12}  {pct(r.total_return):>8}  "
                             f"{drawdown(r.max_drawdown):>7}  {number(r.sharpe, 2):>7}  {r.trades:>6}  "
                             f"{r.fills:>5}  {shares if i == 0 else ''}")
        lines.append("-" * len(head))
        for name in VARIANTS:
            t = self.totals.get(name, {})
            lines.append(f"total {name:<12} compounded {pct(t.get('compounded_return')):>8}  "
                         f"mean sharpe {number(t.get('mean_sharpe'), 2):>7}  worst dd {drawdown(t.get('worst_drawdown')):>7}  "
                         f"trades {t.get('trades', 0):>5}  best in {t.get('best_windows', 0)} window(s)")
        lines.append(self.verdict)
        return "\n".join(lines)


# ---- configs -------------------------------------------------------------------------------

def host_config(config, symbols, timeframe: str, regimes: str, *, model_path: str = "", model_sha256: str = "",
                hosted_params: str = "", trade_from_ns: int = 0, exit_on_disable: bool = False):
    """`config` running one regime_switch strategy (its own strategies left out)."""
    params = {"model_path": model_path, "model_sha256": model_sha256, "regimes": regimes,
              "hosted_params": hosted_params, "trade_from_ns": int(trade_from_ns), "exit_on_disable": exit_on_disable}
    sc = StrategyConfig(id="regime", class_name="regime_switch", symbols=tuple(symbols), timeframe=timeframe,
                        params=params)
    return replace(config, strategies=(sc,))


def static_mapping(regimes: str) -> str:
    """'0:a,1:b@0.5,2:' -> '*:a+b': every hosted strategy on in every regime, weight 1."""
    names = sorted({n for enabled in parse_regimes(regimes).values() for n in enabled})
    if not names:
        raise ValueError(f"regimes {regimes!r} enables no strategy in any regime: nothing to compare")
    return "*:" + "+".join(names)


# ---- metrics -------------------------------------------------------------------------------

def _variant(points: list, fills: list, steps: dict) -> VariantResult:
    """Metrics of an equity curve (points with ts_event, equity, positions_value) and its fills."""
    # Lazy: pandas is an optional extra (dev, ml, dashboard): only this path needs it.
    import pandas as pd

    # Lazy: the metrics need pandas (the dashboard extra).
    from abidance.reports import metrics as M

    eq = pd.DataFrame({"ts": pd.to_datetime([p.ts_event for p in points], utc=True),
                       "equity": [p.equity for p in points],
                       "positions_value": [p.positions_value for p in points]})
    acct = M.account_summary(eq)
    frame = pd.DataFrame([{"ts": pd.Timestamp(f.ts_event, tz="UTC"), "strategy_id": f.strategy_id,
                           "symbol": f.symbol, "side": f.side, "qty": f.quantity, "price": f.price,
                           "commission": f.commission, "commission_asset": f.commission_asset} for f in fills])
    trips, _ = M.round_trips(frame, steps)
    if acct is None:
        return VariantResult(None, None, None, len(trips), len(fills))
    return VariantResult(acct.total_return, acct.max_drawdown.fraction, acct.sharpe, len(trips), len(fills),
                         acct.exposure)


# ---- the walk-forward ----------------------------------------------------------------------

def _checked(bt, variant: str):
    """Run the backtest; StrategyDisabledError if the engine disabled a strategy on the way."""
    result = bt.run()
    if bt.strategies.disabled:
        sid, why = next(iter(bt.strategies.disabled.items()))
        raise StrategyDisabledError(f"{variant}: strategy {sid!r} was disabled during the backtest ({why}); "
                                    "its result would be no measurement")
    return result


def _backtest(cfg, bars: dict, instruments: dict, balances: dict, fee_bps: Decimal, slippage_bps: Decimal,
              variant: str):
    return _checked(Backtest(cfg, bars, instruments=instruments, balances=dict(balances), taker_bps=fee_bps,
                             maker_bps=fee_bps, slippage_bps=slippage_bps), variant)


def _buy_and_hold(config, bars: dict, instruments: dict, balances: dict, fee_bps: Decimal, slippage_bps: Decimal):
    return _checked(buy_and_hold_backtest(config, bars, instruments=instruments, balances=dict(balances),
                                          taker_bps=fee_bps, maker_bps=fee_bps, slippage_bps=slippage_bps),
                    BUY_AND_HOLD)


def _tested(result, start_ns: int, steps: dict) -> VariantResult:
    """Metrics over the equity points from `start_ns` on (the warm-up prefix left out)."""
    points = [p for p in result.equity if p.ts_event >= start_ns]
    fills = [f for f in result.fills if f.ts_event >= start_ns]
    if len(fills) != len(result.fills):
        raise RuntimeError("a fill happened during the warm-up: trade_from_ns did not hold")
    return _variant(points, fills, steps)


def walk_forward_regimes(bars, *, train_bars: int, test_bars: int, anchored: bool = False,
                         regimes: str = "0:rsi_reversion,1:ema_cross,2:", hosted_params: str = "",
                         exit_on_disable: bool = False, config=None, n_regimes: int = 3, method: str = "kmeans",
                         seed: int = 0, spec=None, warmup_bars: int | None = None,
                         balances: dict | None = None, fee_bps: Decimal = Decimal(10),
                         slippage_bps: Decimal = Decimal(0), instruments: dict | None = None,
                         workdir: str | Path | None = None) -> RegimeEvaluation:
    """Regime switching vs the static mix vs buy-and-hold on each out-of-sample window.
    `bars`: {symbol: [Bar]} (or one symbol's list). Models are saved under `workdir`
    (a temporary folder when None)."""
    # Lazy: training and judging models needs the ml extra (scikit-learn, pandas, torch).
    from abidance.ml.regime import RegimeFeatureSpec, RegimeModel, features_from_bars
    if not isinstance(bars, dict):
        bars = {bars[0].symbol: list(bars)} if bars else {}
    if not bars or not all(bars.values()):
        raise ValueError("walk_forward_regimes: no bars (every symbol needs some)")
    intervals = {b.interval for bs in bars.values() for b in bs}
    if len(intervals) != 1:
        raise ValueError(f"walk_forward_regimes: the bars must share one interval, got {sorted(intervals)}")
    timeframe = intervals.pop()
    spec = spec or RegimeFeatureSpec()
    RegimeModel(n_regimes, method, seed, spec)      # refuses bad model arguments before any work
    # A mapping the model cannot serve would disable the strategy in every window: refuse it now.
    check_mapping(parse_regimes(regimes), n_regimes)
    warmup = 2 * spec.warmup if warmup_bars is None else int(warmup_bars)
    if warmup < 0 or warmup > train_bars:
        raise ValueError(f"warmup_bars must be within [0, train_bars={train_bars}], got {warmup}")
    static = static_mapping(regimes)
    config = config or research_config()
    instruments = instruments or sim_instruments()
    missing = sorted(set(bars) - set(instruments))
    if missing:
        raise ValueError(f"walk_forward_regimes: no instrument for {', '.join(missing)}")
    quote = config.risk.quote_asset
    wrong_quote = [s for s in bars if instruments[s].quote_asset != quote]
    if wrong_quote:
        raise ValueError(f"walk_forward_regimes: {', '.join(wrong_quote)} not quoted in risk.quote_asset {quote}")
    balances = dict(balances) if balances is not None else {quote: Decimal(1)}
    if set(balances) != {quote}:
        raise ValueError(f"walk_forward_regimes: start with the quote asset {quote} only, got {sorted(balances)}")
    fee_bps, slippage_bps = Decimal(fee_bps), Decimal(slippage_bps)
    steps = {s: instruments[s].filters.qty_fp.increment for s in bars}
    times = sorted({b.open_time for bs in bars.values() for b in bs})
    close = {}
    for bs in bars.values():
        for b in bs:
            close[b.open_time] = max(close.get(b.open_time, 0), b.close_time)

    def cut(lo: int, hi: int) -> dict:
        lo_ns, hi_ns = times[lo], times[hi - 1]
        return {s: [b for b in bs if lo_ns <= b.open_time <= hi_ns] for s, bs in bars.items()}

    tmp = None
    if workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="abidance-regime-")
        workdir = tmp.name
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    rows = []
    try:
        for i, (tr_lo, tr_hi, te_lo, te_hi) in enumerate(windows(len(times), train_bars, test_bars, anchored)):
            model = RegimeModel(n_regimes, method, seed, spec).fit_bars(cut(tr_lo, tr_hi))
            path = workdir / f"regime-w{i}.joblib"
            digest = model.save(path)
            run_bars = cut(te_lo - warmup, te_hi)
            test_close = close[times[te_lo]]            # first test bar's close: trading starts here
            results = {}
            for name, mapping, model_path in (("regime", regimes, str(path)), ("static", static, "")):
                cfg = host_config(config, bars, timeframe, mapping, model_path=model_path,
                                  model_sha256=digest if model_path else "", hosted_params=hosted_params,
                                  trade_from_ns=test_close, exit_on_disable=exit_on_disable)
                run = _backtest(cfg, run_bars, instruments, balances, fee_bps, slippage_bps, name)
                results[name] = _tested(run, test_close, steps)
            held = _buy_and_hold(config, cut(te_lo, te_hi), instruments, balances, fee_bps, slippage_bps)
            results["buy_and_hold"] = _variant(list(held.equity), held.fills, steps)
            # The regimes the strategy saw on the test bars (batch == streaming, same warm-up).
            counts: dict[int, int] = {}
            total = 0
            for s, bs in run_bars.items():
                labels = model.predict(features_from_bars(bs, spec))
                for b, r in zip(bs, labels):
                    if b.close_time >= test_close:
                        counts[int(r)] = counts.get(int(r), 0) + 1
                        total += 1
            rows.append(RegimeWindowResult(i, times[tr_lo], close[times[tr_hi - 1]], times[te_lo],
                                           close[times[te_hi - 1]], tr_hi - tr_lo, te_hi - te_lo, results,
                                           {r: c / total for r, c in counts.items()} if total else {},
                                           digest, model.describe()))
    finally:
        if tmp is not None:
            tmp.cleanup()
    evaluation = RegimeEvaluation(regimes, rows)
    evaluation.totals = totals(rows)
    evaluation.verdict = verdict(rows, evaluation.totals)
    return evaluation


# ---- totals and the verdict ----------------------------------------------------------------

def totals(rows: list[RegimeWindowResult]) -> dict[str, dict]:
    out = {}
    for name in VARIANTS:
        rets = [w.results[name].total_return for w in rows]
        sharpes = [w.results[name].sharpe for w in rows if w.results[name].sharpe is not None]
        dds = [w.results[name].max_drawdown for w in rows if w.results[name].max_drawdown is not None]
        compounded = math.prod(1.0 + (r or 0.0) for r in rets) - 1.0 if rows else None
        best = 0
        for w in rows:
            mine = w.results[name].total_return
            if mine is not None and all(mine > (w.results[o].total_return if w.results[o].total_return is not None
                                                else -math.inf) for o in VARIANTS if o != name):
                best += 1
        out[name] = {"compounded_return": compounded,
                     "mean_sharpe": sum(sharpes) / len(sharpes) if sharpes else None,
                     "sharpe_windows": len(sharpes),
                     "worst_drawdown": max(dds) if dds else None,
                     "trades": sum(w.results[name].trades for w in rows),
                     "best_windows": best}
    out["regime"]["beats_static_windows"] = sum(
        1 for w in rows if (w.results["regime"].total_return or 0.0) > (w.results["static"].total_return or 0.0))
    return out


def verdict(rows: list[RegimeWindowResult], t: dict[str, dict]) -> str:
    """Plain words: did regime switching beat the static mix out of sample, and buy-and-hold?"""
    n = len(rows)
    if n == 0:
        return "No verdict: not enough bars for one train + test window."
    reg, sta, bh = (t[v]["compounded_return"] for v in VARIANTS)
    wins = t["regime"]["beats_static_windows"]
    sr, ss = t["regime"]["mean_sharpe"], t["static"]["mean_sharpe"]
    if abs(reg - sta) < 1e-9:
        head = f"Regime switching TIED with the static mix out of sample ({reg:+.2%} each over {n} window(s))."
    else:
        word = "BEAT" if reg > sta else "did NOT beat"
        head = (f"Regime switching {word} the static mix out of sample: compounded return {reg:+.2%} vs "
                f"{sta:+.2%}, ahead in {wins} of {n} window(s)")
        if sr is not None and ss is not None:
            head += f", mean Sharpe {sr:.2f} vs {ss:.2f}"
            if (sr > ss) != (reg > sta):
                head += " (Sharpe says the opposite)"
        head += "."
    best = max(VARIANTS, key=lambda v: t[v]["compounded_return"])
    tail = f" Buy-and-hold: {bh:+.2%}; best of the three: {best.replace('_', '-')}."
    if n < 10:
        tail += f" Only {n} window(s): too few to call the difference significant."
    return head + tail
