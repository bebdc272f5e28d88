"""Plotly figures from the store's frames: pure functions shared by the pages and the HTML report.

Decimal columns become floats here, for drawing only; exact values are shown in tables and metrics.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from abidance.reports.metrics import drawdown_series

UP, DOWN, LINE = "#26a69a", "#ef5350", "#1f77b4"


def _f(series) -> list[float]:
    return [float(v) if v is not None else None for v in series]


def _layout(fig: go.Figure, title: str, height: int = 420) -> go.Figure:
    fig.update_layout(title=title, height=height, margin=dict(l=10, r=10, t=40, b=10),
                      legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="right", x=1),
                      hovermode="x unified")
    return fig


def equity_figure(eq: pd.DataFrame, quote: str = "") -> go.Figure:
    """Equity on top, drawdown from the running peak (%) below."""
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.72, 0.28], vertical_spacing=0.04)
    fig.add_trace(go.Scatter(x=eq["ts"], y=_f(eq["equity"]), name="equity", line=dict(color=LINE)), row=1, col=1)
    dd = [-100 * x for x in drawdown_series(list(eq["equity"]))]
    fig.add_trace(go.Scatter(x=eq["ts"], y=dd, name="drawdown %", fill="tozeroy", line=dict(color=DOWN, width=1)),
                  row=2, col=1)
    fig.update_yaxes(title_text=f"equity {quote}".strip(), row=1, col=1)
    fig.update_yaxes(title_text="drawdown %", row=2, col=1)
    return _layout(fig, "Equity", 460)


def candles_figure(bars: pd.DataFrame, fills: pd.DataFrame | None = None, overlays: dict | None = None,
                   title: str = "") -> go.Figure:
    """Candlesticks of the bars, optional indicator lines, the bot's fills as triangles."""
    fig = go.Figure(go.Candlestick(x=bars["ts"], open=_f(bars["open"]), high=_f(bars["high"]), low=_f(bars["low"]),
                                   close=_f(bars["close"]), name="price", increasing_line_color=UP,
                                   decreasing_line_color=DOWN))
    for name, values in (overlays or {}).items():
        fig.add_trace(go.Scatter(x=bars["ts"], y=list(values), name=name, mode="lines", line=dict(width=1.2)))
    if fills is not None and len(fills):
        for side, symbol, color in (("BUY", "triangle-up", UP), ("SELL", "triangle-down", DOWN)):
            f = fills[fills["side"] == side]
            if len(f):
                fig.add_trace(go.Scatter(
                    x=f["ts"], y=_f(f["price"]), mode="markers", name=f"{side.lower()} fills",
                    marker=dict(symbol=symbol, size=11, color=color, line=dict(width=1, color="black")),
                    customdata=list(zip(f["client_order_id"], [str(q) for q in f["qty"]])),
                    hovertemplate="%{customdata[0]}<br>qty %{customdata[1]} @ %{y}<extra></extra>"))
    fig.update_layout(xaxis_rangeslider_visible=False)
    return _layout(fig, title, 520)


def book_figure(tops: pd.DataFrame, title: str = "") -> go.Figure:
    """Best bid and ask over time, and the spread in basis points."""
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.7, 0.3], vertical_spacing=0.04)
    fig.add_trace(go.Scatter(x=tops["ts"], y=_f(tops["bid_price"]), name="bid", line=dict(color=UP)), row=1, col=1)
    fig.add_trace(go.Scatter(x=tops["ts"], y=_f(tops["ask_price"]), name="ask", line=dict(color=DOWN)), row=1, col=1)
    fig.add_trace(go.Scatter(x=tops["ts"], y=list(tops["spread_bps"]), name="spread bps",
                             line=dict(color="gray")), row=2, col=1)
    fig.update_yaxes(title_text="bps", row=2, col=1)
    return _layout(fig, title, 420)


def depth_figure(depth: dict, title: str = "") -> go.Figure:
    """Cumulative quantity by price on each side of the latest depth snapshot."""
    bids = sorted(zip(_f(depth["bid_prices"]), _f(depth["bid_qtys"])), reverse=True)
    asks = sorted(zip(_f(depth["ask_prices"]), _f(depth["ask_qtys"])))
    fig = go.Figure()
    for name, levels, color in (("bids", bids, UP), ("asks", asks, DOWN)):
        cum, total = [], 0.0
        for _, q in levels:
            total += q
            cum.append(total)
        fig.add_trace(go.Scatter(x=[p for p, _ in levels], y=cum, name=name, line_shape="hv", fill="tozeroy",
                                 line=dict(color=color)))
    fig.update_xaxes(title_text="price")
    fig.update_yaxes(title_text="cumulative quantity")
    return _layout(fig, title, 320)


def pnl_bars_figure(table: pd.DataFrame, title: str = "Realised PnL per strategy and symbol") -> go.Figure:
    labels = [f"{a} / {b}" for a, b in zip(table["strategy_id"], table["symbol"])]
    values = _f(table["realized_pnl"])
    fig = go.Figure(go.Bar(x=labels, y=values, marker_color=[UP if v >= 0 else DOWN for v in values],
                           name="realised PnL"))
    return _layout(fig, title, 320)


def trips_figure(trips: list, title: str = "Round trips: PnL each") -> go.Figure:
    fig = go.Figure()
    for (strategy, symbol) in sorted({(t.strategy_id, t.symbol) for t in trips}):
        ts = [t for t in trips if (t.strategy_id, t.symbol) == (strategy, symbol)]
        fig.add_trace(go.Scatter(x=[t.closed for t in ts], y=[float(t.pnl) for t in ts], mode="markers",
                                 name=f"{strategy} / {symbol}"))
    fig.add_hline(y=0, line_color="gray", line_width=1)
    return _layout(fig, title, 320)


def counts_figure(df: pd.DataFrame, x: str, y: str, title: str) -> go.Figure:
    return _layout(go.Figure(go.Bar(x=list(df[x]), y=list(df[y]), name=y)), title, 300)

