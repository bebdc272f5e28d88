"""Drift: live against a replay of the same window through the kernel, per strategy: both PnL curves
on the same marks and the waterfall of the attribution (docs/drift.md; `abidance report drift`)."""

import pandas as pd
import streamlit as st

from abidance.drift import figures
from streamlit_app import common

st.title("Drift")
common.require_store()

HOURS = {"Since the node last started": None, "Last hour": 1, "Last 6 hours": 6, "Last day": 24}


@st.cache_data(ttl=common.SLOW_TTL_S, show_spinner="Replaying the window through the kernel...")
def _report(url: str, database: str, start: int, end: int):
    # Lazy: the replay loads the backtester, which only this page needs.
    from abidance.backtest.engine import sim_instruments
    from abidance.drift.report import drift_report
    from abidance.store.client import connect

    return drift_report(connect(url, database), database, start, end, instruments=sim_instruments())


def _last_start(client, database: str) -> int | None:
    rows = client.query(f"SELECT toUnixTimestamp64Nano(max(ts)), count() FROM {database}.config_versions "
                        "WHERE author = 'node'").result_rows
    return int(rows[0][0]) if rows and rows[0][1] else None


s = common.settings()
client = common.client()
started = _last_start(client, s.database)
if started is None:
    common.no_data("no node start recorded in the store (a node records its config when it starts), "
                   "so no window to replay")
    st.stop()
window = st.selectbox("Window (ending now)", list(HOURS), key="drift_window")
end = int(common.utc_now().value)
start = started if HOURS[window] is None else end - HOURS[window] * 3_600_000_000_000
end -= end % 1_000_000_000                      # whole seconds: one cached replay per second at most
try:
    report = _report(s.url, s.database, start, end)
except ValueError as exc:
    st.warning(f"Cannot replay this window: {exc}")
    st.stop()
if not report.strategies:
    common.no_data("no orders in this window, live or replayed")
    st.stop()

sid = st.selectbox("Strategy", sorted(report.strategies), key="drift_strategy")
d = report.strategies[sid]
q = report.quote
cols = st.columns(4)
cols[0].metric(f"Live PnL ({q})", f"{d.live_pnl:.8f}")
cols[1].metric(f"Replay PnL ({q})", f"{d.replay_pnl:.8f}")
cols[2].metric(f"Difference ({q})", f"{d.difference:.8f}")
cols[3].metric(f"Residual, not explained ({q})", f"{d.residual:.8f}")
st.caption(f"Replay over the recorded {report.source}, config {report.config_note}; both runs valued at "
           + ", ".join(f"{sym} {m}" for sym, m in sorted(report.marks.items())))
for symbol, gaps in sorted(report.gaps.items()):
    for a, b in gaps:
        st.caption(f"data gap {symbol}: {common.fmt_ts(pd.Timestamp(a, tz='UTC'))} to "
                   f"{common.fmt_ts(pd.Timestamp(b, tz='UTC'))} ({(b - a) / 1e9:.0f} s)")

st.plotly_chart(figures.waterfall_figure(d, q), use_container_width=True)
st.plotly_chart(figures.curves_figure(report, d), use_container_width=True)

st.subheader("Attribution")
st.dataframe(pd.DataFrame([{"line": k, f"amount {q}": str(v)} for k, v in d.lines.items()]
                          + [{"line": "residual (not explained)", f"amount {q}": str(d.residual)}]),
             hide_index=True, use_container_width=True)
st.subheader("Orders side by side")
st.dataframe(pd.DataFrame([{"decided": pd.Timestamp((p.live or p.replay).decided, tz="UTC"),
                            "side": (p.live or p.replay).side,
                            "live": "-" if p.live is None else f"{p.live.filled} @ {p.live.status}",
                            "replay": "-" if p.replay is None else f"{p.replay.filled} @ {p.replay.status}",
                            "only in one run because": p.reason} for p in d.pairs]),
             hide_index=True, use_container_width=True)
