"""Backtest results: metrics (the dashboard's own formulas) and a self-contained HTML report."""

from __future__ import annotations

from decimal import Decimal

import pandas as pd

from abidance.reports import metrics as M


def fills_frame(result) -> pd.DataFrame:
    return pd.DataFrame([{"ts": pd.Timestamp(f.ts_event, tz="UTC"), "strategy_id": f.strategy_id, "symbol": f.symbol,
                          "side": f.side, "qty": f.quantity, "price": f.price, "commission": f.commission,
                          "commission_asset": f.commission_asset} for f in result.fills])


def equity_frame(result) -> pd.DataFrame:
    return result.equity.frame()


def summarize(result) -> dict:
    """Every figure of the run, from `metrics.performance` (the store reader and the dashboard
    call the same on the same equity and fills), with the run's own counts: bars, denied orders,
    every fee paid (open positions' too). `annualised` says why CAGR, Sharpe, Sortino and
    Calmar are missing when the run is too short for them."""
    perf = M.performance(equity_frame(result), fills_frame(result))
    out = {"bars": result.bars, "fills": len(result.fills), "round_trips": 0, "final_equity": result.final_equity,
           "win_rate": None, "profit_factor": None, "expectancy": None, "fees_in_trips": Decimal(0),
           "denied": sum(1 for d in result.decisions if not d.accepted)}
    out["fees_paid"] = sum((_fee_in_quote(f, result) for f in result.fills), Decimal(0))
    if perf is not None:
        out.update(round_trips=perf.round_trips, win_rate=perf.win_rate, profit_factor=perf.profit_factor,
                   expectancy=perf.expectancy, fees_in_trips=perf.fees_in_trips)
        out.update(total_return=perf.total_return, cagr=perf.cagr, sharpe=perf.sharpe, sortino=perf.sortino,
                   max_drawdown=perf.max_drawdown.fraction, max_drawdown_duration_h=perf.max_drawdown_duration_h,
                   calmar=perf.calmar, exposure=perf.exposure)
        if perf.withheld:
            out["annualised"] = perf.withheld
    return out


def _fee_in_quote(fill, result) -> Decimal:
    """A fee in the quote asset: base-asset fees at the fill price (the backtest venue charges
    only the asset received, so there is no third asset)."""
    if fill.commission_asset == result.base_assets.get(fill.symbol):
        return fill.commission * fill.price
    return fill.commission


def html_report(result, bars_by_symbol: dict, summary: dict, path, instruments: dict) -> None:
    """Equity, drawdown, and price with entries and exits, as one HTML file (plotly inline)."""
    # Lazy: plotly is the dashboard extra: only drawing a chart needs it.
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    eq = equity_frame(result)
    fills = fills_frame(result)
    rows = 2 + len(bars_by_symbol)
    fig = make_subplots(rows=rows, cols=1, shared_xaxes=True, vertical_spacing=0.04,
                        subplot_titles=["equity", "drawdown"] + list(bars_by_symbol))
    if not eq.empty:
        fig.add_trace(go.Scatter(x=eq.ts, y=[float(v) for v in eq.equity], name="equity"), 1, 1)
        fig.add_trace(go.Scatter(x=eq.ts, y=[-float(v) for v in eq.drawdown], name="drawdown", fill="tozeroy"), 2, 1)
    for i, (symbol, bars) in enumerate(bars_by_symbol.items(), start=3):
        times = [pd.Timestamp(b.open_time, tz="UTC") for b in bars]
        tick = float(instruments[symbol].filters.price_fp.increment)     # chart axis only: display
        fig.add_trace(go.Candlestick(x=times, open=[b.open * tick for b in bars], high=[b.high * tick for b in bars],
                                     low=[b.low * tick for b in bars], close=[b.close * tick for b in bars],
                                     name=symbol), i, 1)
        if not fills.empty:
            mine = fills[fills.symbol == symbol]
            for side, marker in (("BUY", "triangle-up"), ("SELL", "triangle-down")):
                sel = mine[mine.side == side]
                fig.add_trace(go.Scatter(x=sel.ts, y=[float(p) for p in sel.price], mode="markers",
                                         marker_symbol=marker, marker_size=10, name=f"{symbol} {side.lower()}"), i, 1)
    fig.update_layout(height=300 * rows, xaxis_rangeslider_visible=False, title="Backtest")
    table = "".join(f"<tr><td>{k}</td><td>{_fmt(v)}</td></tr>" for k, v in summary.items())
    html = (f"<html><head><meta charset='utf-8'><title>Abidance backtest</title></head><body>"
            f"<h1>Backtest</h1><table>{table}</table>{fig.to_html(full_html=False, include_plotlyjs=True)}"
            f"</body></html>")
    with open(path, "w", encoding="utf-8") as f:
        f.write(html)


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4f}"
    return "-" if v is None else str(v)
