"""The dashboard's entry: `abidance dashboard`, or `streamlit run streamlit_app/app.py`.

Builds the navigation (one file per page in app_pages/), the password gate and the shared
sidebar (store status, node, trading state, refresh interval). Settings come from the
environment: see streamlit_app/common.py.

The page folder is deliberately not called `pages/`: with a `pages/` folder beside the entry,
Streamlit's legacy multipage mode runs a page file directly on a fresh server's first request
to that page's URL, without this script, so without the password gate (seen with 1.67).
"""

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:        # `streamlit run` puts only this folder on the path
    sys.path.insert(0, _ROOT)

import streamlit as st  # noqa: E402

from streamlit_app import auth, common  # noqa: E402

st.set_page_config(page_title="Abidance", page_icon=":material/monitoring:", layout="wide")
auth.require()

PAGES = [
    st.Page("app_pages/overview.py", title="Overview", icon=":material/dashboard:", default=True),
    st.Page("app_pages/market.py", title="Market", icon=":material/candlestick_chart:"),
    st.Page("app_pages/orders.py", title="Orders and trades", icon=":material/receipt_long:"),
    st.Page("app_pages/performance.py", title="Performance", icon=":material/trending_up:"),
    st.Page("app_pages/drift.py", title="Drift", icon=":material/difference:"),
    st.Page("app_pages/risk.py", title="Risk", icon=":material/shield:"),
    st.Page("app_pages/ml.py", title="ML models", icon=":material/model_training:"),
    st.Page("app_pages/config.py", title="Config", icon=":material/settings:"),
    st.Page("app_pages/alerts.py", title="Alerts and logs", icon=":material/notifications:"),
]

page = st.navigation(PAGES)
common.sidebar()
page.run()
