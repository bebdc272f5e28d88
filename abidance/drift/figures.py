"""The drift figures (plotly), shared by the dashboard's Drift page and `report drift --html`:
the waterfall from the replay's PnL to live's, and both runs' PnL on the same marks over time.
Decimals become floats here, for drawing only; the tables beside them show the exact amounts."""

from __future__ import annotations

import html

from abidance.drift.attribution import Market, StrategyDrift, Valuation
from abidance.drift.curves import pnl_curve

UP, DOWN, LINE = "#26a69a", "#ef5350", "#1f77b4"
CURVE_POINTS = 300


def _layout(fig, title: str, height: int):
    fig.update_layout(title=title, height=height, margin=dict(l=10, r=10, t=40, b=10),
                      legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="right", x=1))
    return fig


def waterfall_figure(d: StrategyDrift, quote: str = ""):
    """From the replay's PnL to live's: one bar per non-zero line, the residual always shown."""
    # Lazy: plotly is the dashboard/backtest extra: only drawing needs it.
    import plotly.graph_objects as go

    steps = [(name, v) for name, v in d.lines.items() if v] + [("residual (not explained)", d.residual)]
    fig = go.Figure(go.Waterfall(
        x=["replay PnL", *[n for n, _ in steps], "live PnL"],
        measure=["absolute", *["relative"] * len(steps), "total"],
        y=[float(d.replay_pnl), *[float(v) for _, v in steps], float(d.live_pnl)],
        increasing=dict(marker=dict(color=UP)), decreasing=dict(marker=dict(color=DOWN)),
        totals=dict(marker=dict(color=LINE)), name="drift"))
    fig.update_yaxes(title_text=f"PnL {quote}".strip())
    return _layout(fig, "Live minus replay, explained", 460)


def curves(report, d: StrategyDrift) -> tuple[list[int], list, list]:
    """Times and both runs' PnL at them (CURVE_POINTS steps from the first decision to the end)."""
    market = Market(report.market_points)
    value = Valuation(report.quote, report.base_of, report.marks)
    first = min((p.live or p.replay).decided for p in d.pairs)
    times = [first + (report.end - first) * i // CURVE_POINTS for i in range(CURVE_POINTS + 1)]
    return (times, pnl_curve([p.live for p in d.pairs if p.live], market, value, times),
            pnl_curve([p.replay for p in d.pairs if p.replay], market, value, times))


def curves_figure(report, d: StrategyDrift):
    # Lazy: as above.
    import pandas as pd
    import plotly.graph_objects as go

    times, live, replay = curves(report, d)
    x = pd.to_datetime(times, utc=True)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=x, y=[float(v) for v in live], name="live", line=dict(color=LINE)))
    fig.add_trace(go.Scatter(x=x, y=[float(v) for v in replay], name="replay", line=dict(color=UP, dash="dash")))
    fig.update_yaxes(title_text=f"PnL {report.quote}".strip())
    return _layout(fig, "Live and replayed PnL (the same marks)", 380)


def html_report(report) -> str:
    """The whole report as one HTML file: per strategy both figures, the lines, the orders side by side."""
    parts = [f"<h1>Drift</h1><pre>{html.escape(report.text().split(chr(10) + chr(10))[0])}</pre>"]
    first = True
    for sid, d in sorted(report.strategies.items()):
        rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{v}</td></tr>" for k, v in d.lines.items())
        rows += f"<tr><td>residual (not explained)</td><td>{d.residual}</td></tr>"
        pairs = "".join(
            f"<tr><td>{(p.live or p.replay).decided}</td><td>{(p.live or p.replay).side}</td>"
            f"<td>{'-' if p.live is None else f'{p.live.filled} ({p.live.status})'}</td>"
            f"<td>{'-' if p.replay is None else f'{p.replay.filled} ({p.replay.status})'}</td>"
            f"<td>{html.escape(p.reason)}</td></tr>" for p in d.pairs)
        parts += [f"<h2>{html.escape(sid)}: live {d.live_pnl}, replay {d.replay_pnl}, difference {d.difference} "
                  f"{html.escape(report.quote)}</h2>",
                  waterfall_figure(d, report.quote).to_html(full_html=False, include_plotlyjs=first),
                  curves_figure(report, d).to_html(full_html=False, include_plotlyjs=False),
                  f"<table><tr><th>line</th><th>amount</th></tr>{rows}</table>",
                  "<table><tr><th>decided (ns)</th><th>side</th><th>live</th><th>replay</th><th>only in one run "
                  f"because</th></tr>{pairs}</table>"]
        first = False
    style = "<style>body{font-family:sans-serif;margin:2em}td,th{padding:2px 8px;text-align:left}</style>"
    return f"<!doctype html><html><head><meta charset='utf-8'><title>Drift</title>{style}</head><body>" \
           + "".join(parts) + "</body></html>"
