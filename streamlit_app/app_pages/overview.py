"""Overview: equity, PnL, drawdown, positions, open orders, trading state and stream health."""

import streamlit as st

from streamlit_app import charts, common
from abidance.reports import metrics as M

st.title("Overview")
common.require_store()


@st.fragment(run_every=common.refresh_s())
def account() -> None:
    eq = common.live("q.equity_sampled")
    if common.is_empty(eq):
        common.no_data("no equity points in the store (the node writes one as its portfolio changes)")
        return
    last = eq.iloc[-1]
    first = eq.iloc[0]
    pnl_today = common.live("q.equity_change_since", since=common.utc_now().normalize())
    dd = common.slow("q.max_drawdown") or {"fraction": None, "amount": None}     # over every row: 30 s cache
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Equity", M.fmt_money(last["equity"], 8), help=f"last update {common.fmt_ts(last['ts'])}")
    c2.metric("PnL today (UTC)", M.fmt_money(pnl_today, 8),
              help="equity now minus equity at the start of today (UTC); 0 when nothing changed today")
    c3.metric("PnL total", M.fmt_money(last["equity"] - first["equity"], 8),
              help=f"since the first equity point, {common.fmt_ts(first['ts'])}")
    c4.metric("Drawdown", M.fmt_money(last["drawdown"], 8),
              help=f"below the peak now; the largest fall was {M.fmt_pct(dd['fraction'])}")
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Cash", M.fmt_money(last["cash"], 8))
    c2.metric("Positions value", M.fmt_money(last["positions_value"], 8))
    c3.metric("Fees paid", M.fmt_money(last["fees"], 8))
    c4.metric("Max drawdown", M.fmt_pct(dd["fraction"]), help=f"{M.fmt_money(dd['amount'], 8)} below its peak")
    st.plotly_chart(charts.equity_figure(eq), key="equity_chart")


@st.fragment(run_every=common.refresh_s())
def status() -> None:
    left, right = st.columns(2)
    with left:
        st.subheader("Trading state")
        latest = common.live("latest_trading_state")
        if not latest:
            common.no_data("no trading-state change recorded")
        else:
            st.markdown(f"### {common.state_badge(latest['state'])}")
            st.caption(f"since {common.fmt_ts(latest['ts'])} ({common.fmt_age(latest['ts'])}), "
                       f"from {latest['previous'] or '-'}: {latest['reason']} (source {latest['source']})")
    with right:
        st.subheader("Streams")
        health = common.live("health_stats")
        if common.is_empty(health):
            common.no_data("no health records from the connector")
        else:
            last = health["last_ts"].max()
            st.caption(f"last heartbeat {common.fmt_ts(last)} ({common.fmt_age(last)})")
            st.dataframe(common.for_display(health), hide_index=True, key="health_table")

    left, right = st.columns(2)
    with left:
        st.subheader("Open positions")
        pos = common.live("positions")
        if not common.is_empty(pos):
            pos = pos[[q != 0 for q in pos["quantity"]]]
        if common.is_empty(pos):
            common.no_data("no open position")
        else:
            st.dataframe(common.for_display(pos), hide_index=True, key="positions_table")
    with right:
        st.subheader("Open orders")
        orders = common.live("q.open_orders")
        if common.is_empty(orders):
            common.no_data("no open order")
        else:
            st.dataframe(common.for_display(orders[["client_order_id", "ts", "strategy_id", "symbol", "side",
                                                    "order_type", "status", "quantity", "filled", "price"]]),
                         hide_index=True, key="orders_table")


account()
status()
