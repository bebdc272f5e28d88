"""Performance: account metrics from the equity curve, trade metrics per strategy and symbol from
the fills, charts, and the same as a downloadable HTML report."""

import dataclasses

import pandas as pd
import streamlit as st

from streamlit_app import charts, common, report
from abidance.reports import metrics as M

st.title("Performance")
common.require_store()

WINDOWS = {"All": None, "Last 365 days": 365, "Last 90 days": 90, "Last 30 days": 30, "Last 7 days": 7,
           "Last day": 1}
window = st.selectbox("Window (ending at the last equity point)", list(WINDOWS), key="perf_window")

MAX_POINTS = 20_000            # more equity rows than this are sampled (the node writes one a second)
span = common.slow("q.equity_span")
if not span["rows"]:
    common.no_data("no equity points in the store, so no performance to measure")
    st.stop()
end = span["last_ts"]
start = None if WINDOWS[window] is None else end - pd.Timedelta(days=WINDOWS[window])
eq = common.slow("q.equity_sampled", start=start, max_points=MAX_POINTS)
exact = None
if len(eq) >= MAX_POINTS:
    # sampled: the drawdown over every row comes from the store
    dd = common.slow("q.max_drawdown", start=start)
    exact = M.Drawdown(dd["fraction"], dd["amount"], 0, 0)
fills = common.slow("fills", start=start, limit=common.BIG)
fills = fills.iloc[::-1].reset_index(drop=True) if not common.is_empty(fills) else fills
# The one computation of every figure (the backtester's and the store reader's too).
perf = M.performance(eq, None if common.is_empty(fills) else fills, drawdown=exact)
table = M.per_strategy_symbol(fills, eq["ts"].iloc[0], end) if not common.is_empty(fills) else None
trips, _ = M.round_trips(fills) if not common.is_empty(fills) else ([], {})
withheld = perf.withheld or ""          # why CAGR / Sharpe / Sortino show n/a on a short window

ACCOUNT = [
    ("Total return", M.fmt_pct(perf.total_return)),
    ("CAGR", M.fmt_pct(perf.cagr)),
    ("Sharpe", M.fmt_num(perf.sharpe)),
    ("Sortino", M.fmt_num(perf.sortino)),
    ("Max drawdown", M.fmt_pct(perf.max_drawdown.fraction)),
    ("Exposure", M.fmt_pct(perf.exposure)),
    ("Win rate", M.fmt_pct(perf.win_rate)),
    ("Profit factor", M.fmt_num(perf.profit_factor)),
]
MONEY = [
    ("Start equity", M.fmt_money(perf.start_equity, 8)),
    ("End equity", M.fmt_money(perf.end_equity, 8)),
    ("PnL", M.fmt_money(perf.pnl, 8)),
    ("Max drawdown (money)", M.fmt_money(perf.max_drawdown.amount, 8)),
    ("Round trips", str(perf.round_trips)),
    ("Fills", str(perf.fills)),
]

st.caption(f"{common.fmt_ts(eq['ts'].iloc[0])} to {common.fmt_ts(end)}; Sharpe and Sortino from "
           f"{perf.periods} returns per {perf.period} (annualised, 365-day year, risk-free 0)"
           + (f"; annualised figures {withheld}" if withheld.startswith("withheld") else
              f"; {withheld}" if withheld else "")
           + (f"; equity sampled to {len(eq):,} points (max drawdown over every row)" if len(eq) >= MAX_POINTS
              else "") + ".")
for row in (ACCOUNT[:4], ACCOUNT[4:], MONEY[:3], MONEY[3:]):
    for col, (label, value) in zip(st.columns(len(row)), row):
        col.metric(label, value)

CHART_POINTS = 10_000
step = max(1, len(eq) // CHART_POINTS + (len(eq) % CHART_POINTS > 0))
shown_eq = eq if step == 1 else pd.concat([eq.iloc[::step], eq.iloc[[-1]]]).drop_duplicates("ts")
figures = [charts.equity_figure(shown_eq)]
st.plotly_chart(figures[0], key="perf_equity")
st.subheader("Per strategy and symbol")
shown_table = None
if table is None or not len(table):
    common.no_data("no fills in this window")
else:
    shown = table.copy()
    for col in ("win_rate", "exposure"):
        shown[col] = [M.fmt_pct(v if pd.notna(v) else None) for v in shown[col]]
    shown["profit_factor"] = [M.fmt_num(v if pd.notna(v) else None) for v in shown["profit_factor"]]
    shown_table = common.for_display(shown)
    st.dataframe(shown_table, hide_index=True, key="perf_table")
    figures.append(charts.pnl_bars_figure(table))
    st.plotly_chart(figures[-1], key="perf_pnl")
    if trips:
        figures.append(charts.trips_figure(trips))
        st.plotly_chart(figures[-1], key="perf_trips")


subtitle = f"{common.fmt_ts(eq['ts'].iloc[0])} to {common.fmt_ts(end)} ({window}); node {common.node_name()}"


def build_report() -> bytes:
    return report.html_report("Abidance performance report", subtitle, ACCOUNT + MONEY, shown_table, figures)


st.download_button("Download HTML report", build_report, "abidance-report.html", "text/html", key="perf_report",
                   help="the metrics, the table and the charts above in one file that opens offline")
