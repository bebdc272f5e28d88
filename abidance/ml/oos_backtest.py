"""A signal model judged out of sample on the backtester: ml_signal vs buy-and-hold vs a rule.

    cmp = compare_on_backtester(bars, instrument, model_path, sha256, min_confidence=0.55, horizon=12)
    cmp.table          # one row per strategy: return, max drawdown, Sharpe, round trips, fills, fees
    cmp.curves         # per strategy, (ts ns, equity) for a chart

All three run on the live engines (`Backtest`) over the same held-out bars (bars the model
never trained on), with the same account, fees, slippage and sizing (`fixed_fraction`,
filters on, limits and breakers off: abidance.backtest.research_config):
- model: the `ml_signal` strategy with that model file (hash checked); its features start
  cold on the first held-out bar, so it cannot act before they are warm (about 50 bars);
- buy_and_hold: abidance.backtest.baselines.BuyAndHold, bought at the first bar's close (filled
  at the second bar's open) and held;
- the rule: `ema_cross` (12/26 by default), also starting cold.
Metrics come from the per-bar equity and the fills with the dashboard's formulas
(abidance.reports.metrics), the same function for all three.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal

import pandas as pd

from abidance.backtest.baselines import buy_and_hold
from abidance.backtest.engine import Backtest
from abidance.backtest.research_config import research_config
from abidance.config.sections import StrategyConfig
from abidance.reports import metrics as M

MODEL, BUY_AND_HOLD, RULE = "model", "buy_and_hold", "ema_cross"
STRATEGIES = (MODEL, BUY_AND_HOLD, RULE)
CHART_POINTS = 300          # equity points kept per curve for charts (the registry keeps them)


@dataclass
class JudgeSettings:
    """The account and fill model every strategy of the comparison shares."""

    starting_cash: Decimal = Decimal(1)          # quote asset
    fee_bps: Decimal = Decimal(10)               # taker and maker
    slippage_bps: Decimal = Decimal(0)
    fraction: float = 0.95                       # equity share per entry (fixed_fraction sizing)
    ema_fast: int = 12
    ema_slow: int = 26

    def to_dict(self) -> dict:
        return {"starting_cash": str(self.starting_cash), "fee_bps": str(self.fee_bps),
                "slippage_bps": str(self.slippage_bps), "fraction": float(self.fraction),
                "rule": f"ema_cross {self.ema_fast}/{self.ema_slow}"}


@dataclass
class Comparison:
    table: dict[str, dict]               # strategy -> metrics (JSON-ready: floats, ints, exact strings)
    curves: dict[str, pd.DataFrame]      # strategy -> ts (int ns), equity (Decimal)
    start_ns: int                        # open time of the first held-out bar
    end_ns: int                          # close time of the last
    bars: int
    settings: JudgeSettings

    def chart_data(self, points: int = CHART_POINTS) -> dict:
        """Each equity curve thinned for a chart (thin_curve)."""
        return {name: thin_curve(list(c["ts"]), list(c["equity"]), points) for name, c in self.curves.items()}

    def text(self) -> str:
        head = f"{'strategy':<14}{'return':>9}{'max dd':>8}{'sharpe':>8}{'trips':>7}{'fills':>7}  final equity"
        lines = [head, "-" * len(head)]
        for name in STRATEGIES:
            r = self.table[name]
            lines.append(f"{name:<14}{M.fmt_pct(r['total_return']):>9}{M.fmt_pct(r['max_drawdown']):>8}"
                         f"{M.fmt_num(r['sharpe']):>8}{r['round_trips']:>7}{r['fills']:>7}  {r['final_equity']}")
        return "\n".join(lines)


def thin_curve(ts: list[int], equity: list, points: int = CHART_POINTS) -> dict:
    """About `points` evenly spaced points of a curve (always its last), as ints and floats for a chart."""
    step = max(1, -(-len(ts) // points))
    rows = list(range(0, len(ts), step))
    if rows and rows[-1] != len(ts) - 1:
        rows.append(len(ts) - 1)
    return {"ts": [int(ts[i]) for i in rows], "equity": [float(equity[i]) for i in rows]}


def _fee_in_quote(fill, base_asset: str) -> Decimal:
    # The venue charges the asset received: a buy's fee is in the base asset, valued at the fill price.
    return fill.commission * fill.price if fill.commission_asset == base_asset else fill.commission


def judge(equity: pd.DataFrame, fills: list, step: Decimal, base_asset: str) -> dict:
    """Metrics of one strategy from its per-bar equity (ts, equity[, exposed | positions_value]) and fills."""
    frame = pd.DataFrame([{"ts": pd.Timestamp(f.ts_event, tz="UTC"), "strategy_id": f.strategy_id,
                           "symbol": f.symbol, "side": f.side, "qty": f.quantity, "price": f.price,
                           "commission": f.commission, "commission_asset": f.commission_asset} for f in fills])
    trips, _ = M.round_trips(frame, {f.symbol: step for f in fills}) if fills else ([], {})
    acct = M.account_summary(equity)
    pnls = [t.pnl for t in trips]
    fees = sum((_fee_in_quote(f, base_asset) for f in fills), Decimal(0))
    return {"total_return": acct.total_return if acct else None,
            "max_drawdown": acct.max_drawdown.fraction if acct else None,
            "sharpe": acct.sharpe if acct else None, "exposure": acct.exposure if acct else None,
            "round_trips": len(trips), "fills": len(fills), "win_rate": M.win_rate(pnls),
            "final_equity": f"{Decimal(equity['equity'].iloc[-1]).normalize():f}" if len(equity) else None,
            "fees_paid": f"{fees.normalize():f}"}


def _config(instrument, settings: JudgeSettings, strategy_id: str, class_name: str, params: dict, timeframe: str):
    config = research_config(instrument.quote_asset, settings.fraction)
    sc = StrategyConfig(id=strategy_id, class_name=class_name, symbols=(instrument.symbol,), timeframe=timeframe,
                        params=params)
    return replace(config, strategies=(sc,))


def _account(instrument, settings: JudgeSettings) -> dict:
    """Backtest's keyword options: the one instrument, the starting cash, the fees and slippage."""
    return dict(instruments={instrument.symbol: instrument}, balances={instrument.quote_asset: settings.starting_cash},
                taker_bps=settings.fee_bps, maker_bps=settings.fee_bps, slippage_bps=settings.slippage_bps)


def _run(config, bars: list, instrument, settings: JudgeSettings, progress=None):
    return Backtest(config, {instrument.symbol: bars}, progress=progress, **_account(instrument, settings)).run()


def _curve(ts: list[int], equity: list) -> pd.DataFrame:
    return pd.DataFrame({"ts": [int(t) for t in ts], "equity": list(equity)})


def compare_on_backtester(bars: list, instrument, model_path: str, model_sha256: str, *, min_confidence: float,
                          horizon: int = 0, settings: JudgeSettings | None = None, progress=None) -> Comparison:
    """Run the model, buy-and-hold and the rule over `bars` (one symbol's held-out Bars, in order).
    `progress(done, total)` is called as the model's and the rule's backtests go through the bars."""
    settings = settings or JudgeSettings()
    bars = list(bars)
    if len(bars) < 2:
        raise ValueError(f"the held-out window has {len(bars)} bars: at least 2 are needed to judge a model")
    if any(b.symbol != instrument.symbol for b in bars):
        raise ValueError(f"held-out bars must all be {instrument.symbol}")
    timeframe = bars[0].interval
    step, base = instrument.filters.qty_fp.increment, instrument.base_asset
    table, curves = {}, {}

    model_cfg = _config(instrument, settings, MODEL, "ml_signal",
                        {"model_path": str(model_path), "model_sha256": model_sha256,
                         "min_confidence": float(min_confidence), "horizon": int(horizon)}, timeframe)
    result = _run(model_cfg, bars, instrument, settings, progress)
    table[MODEL] = judge(result.equity.frame(), result.fills, step, base)
    curves[MODEL] = _curve(result.equity.ts, result.equity.equity)

    rule_cfg = _config(instrument, settings, RULE, "ema_cross",
                       {"fast": int(settings.ema_fast), "slow": int(settings.ema_slow)}, timeframe)
    result = _run(rule_cfg, bars, instrument, settings, progress)
    table[RULE] = judge(result.equity.frame(), result.fills, step, base)
    curves[RULE] = _curve(result.equity.ts, result.equity.equity)

    result = buy_and_hold(model_cfg, {instrument.symbol: bars}, **_account(instrument, settings))
    table[BUY_AND_HOLD] = judge(result.equity.frame(), result.fills, step, base)
    curves[BUY_AND_HOLD] = _curve(result.equity.ts, result.equity.equity)
    return Comparison({k: table[k] for k in STRATEGIES}, {k: curves[k] for k in STRATEGIES}, bars[0].open_time,
                      bars[-1].close_time, len(bars), settings)
