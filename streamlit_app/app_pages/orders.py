"""Orders and trades: filterable tables of orders (latest state), order events and fills, with CSV export."""

import datetime as dt

import pandas as pd
import streamlit as st

from streamlit_app import common

st.title("Orders and trades")
common.require_store()

ALL = "(all)"
values = common.slow("q.filter_values")
c1, c2, c3, c4 = st.columns(4)
symbol = c1.selectbox("Symbol", [ALL, *values["symbol"]], key="ot_symbol")
strategy = c2.selectbox("Strategy", [ALL, *values["strategy"]], key="ot_strategy")
status = c3.selectbox("Order status", [ALL, *values["status"]], key="ot_status")
limit = c4.number_input("Rows at most", min_value=10, max_value=100_000, value=1000, step=100, key="ot_limit")
use_range = st.toggle("Limit to a time range (UTC)", key="ot_use_range")
start = end = None
if use_range:
    today = dt.datetime.now(dt.timezone.utc).date()
    r1, r2 = st.columns(2)
    d0 = r1.date_input("From", value=today - dt.timedelta(days=7), key="ot_from")
    d1 = r2.date_input("To (inclusive)", value=today, key="ot_to")
    start = pd.Timestamp(d0, tz="UTC")
    end = pd.Timestamp(d1, tz="UTC") + pd.Timedelta(days=1)


def pick(v):
    return None if v == ALL else v


orders_tab, fills_tab, events_tab = st.tabs(["Orders", "Fills", "Order events"])

with orders_tab:
    orders = common.slow("orders", symbol=pick(symbol), status=pick(status), strategy=pick(strategy),
                         start=start, end=end, limit=int(limit))
    if common.is_empty(orders):
        common.no_data("no orders match" if values["status"] else "no orders recorded")
    else:
        st.caption(f"{len(orders)} orders, latest state of each, newest first")
        st.dataframe(common.for_display(orders), hide_index=True, key="orders_table")
        st.download_button("Download orders CSV", common.csv_bytes(orders), "orders.csv", "text/csv",
                           key="orders_csv")

with fills_tab:
    fills = common.slow("fills", symbol=pick(symbol), strategy=pick(strategy), start=start, end=end,
                        limit=int(limit))
    if common.is_empty(fills):
        common.no_data("no fills match" if values["symbol"] else "no fills recorded")
    else:
        notional = sum((q * p for q, p in zip(fills["qty"], fills["price"])), start=0)
        fees = fills.groupby("commission_asset")["commission"].apply(lambda s: sum(s, start=0))
        m1, m2, m3 = st.columns(3)
        m1.metric("Fills", len(fills))
        m2.metric("Notional", f"{notional.normalize():f}" if notional else "0")
        m3.metric("Fees", ", ".join(f"{v.normalize():f} {k}" for k, v in fees.items()) or "0")
        st.dataframe(common.for_display(fills), hide_index=True, key="fills_table")
        st.download_button("Download fills CSV", common.csv_bytes(fills), "fills.csv", "text/csv", key="fills_csv")

with events_tab:
    coid = st.text_input("Client order id", key="ot_coid",
                         placeholder="an id from the orders table, e.g. " +
                         (str(orders["client_order_id"].iloc[0]) if not common.is_empty(orders) else "demo-1"))
    if coid:
        events = common.slow("order_events", client_order_id=coid.strip())
        if common.is_empty(events):
            common.no_data(f"no events for order {coid}")
        else:
            st.dataframe(common.for_display(events), hide_index=True, key="events_table")
            st.download_button("Download events CSV", common.csv_bytes(events), f"order-{coid}.csv", "text/csv",
                               key="events_csv")
