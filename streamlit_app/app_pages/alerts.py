"""Alerts and logs: recent alerts by level, order rejections, stream reconnects, store problems."""

import streamlit as st

from streamlit_app import common

st.title("Alerts and logs")
common.require_store()

LEVELS = ("critical", "error", "warning", "info")
c1, c2 = st.columns([3, 1])
levels = c1.multiselect("Levels", LEVELS, default=list(LEVELS), key="alert_levels")
limit = c2.number_input("Rows at most", min_value=10, max_value=10_000, value=200, step=50, key="alert_limit")


@st.fragment(run_every=common.refresh_s())
def recent() -> None:
    counts = common.live("q.alert_counts")
    if not common.is_empty(counts):
        by_level = counts.groupby("level")["n"].sum()
        for col, level in zip(st.columns(len(LEVELS)), LEVELS):
            col.metric(level.capitalize(), int(by_level.get(level, 0)))
    st.subheader("Recent alerts")
    if not levels:
        st.caption("Choose at least one level.")
        return
    alerts = common.live("q.alerts", levels=tuple(levels), limit=int(limit))
    if common.is_empty(alerts):
        common.no_data("no alerts at these levels")
    else:
        st.dataframe(alerts, hide_index=True, key="alerts_table")


recent()

left, right = st.columns(2)
with left:
    st.subheader("Order rejections")
    rejects = common.slow("q.rejects", limit=int(limit))
    if common.is_empty(rejects):
        common.no_data("no order rejected by the venue")
    else:
        st.dataframe(common.for_display(rejects), hide_index=True, key="rejects_table")
with right:
    st.subheader("Stream reconnects")
    reconnects = common.slow("q.alerts", codes=("stream_disconnected", "stream_reconnected", "resync"),
                             limit=int(limit))
    health = common.live("health_stats")
    if not common.is_empty(health):
        st.dataframe(health[["stream", "reconnects", "resyncs", "last_ts"]], hide_index=True, key="reconnect_counts")
    if common.is_empty(reconnects):
        common.no_data("no disconnect recorded")
    else:
        st.dataframe(reconnects, hide_index=True, key="reconnects_table")

st.subheader("Store problems")
store_alerts = common.slow("q.alerts", sources=("store",), limit=int(limit))
counts = common.slow("counts")
nonzero = [f"{t} {n:,}" for t, n in counts.items() if n]
st.caption(("Rows per table: " + ", ".join(nonzero)) if nonzero else "Every table of the store is empty.")
if common.is_empty(store_alerts):
    common.no_data("no store alert (outages, rows set aside)")
else:
    st.dataframe(store_alerts, hide_index=True, key="store_alerts_table")
