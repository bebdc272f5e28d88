"""The dashboard's password gate.

When ABIDANCE_DASHBOARD_PASSWORD is set, nothing is shown until it is entered (once per
browser session); unset, the dashboard is open, which is only allowed on loopback: the
`abidance dashboard` command refuses a non-loopback address without the variable.
"""

from __future__ import annotations

import hmac
import os

import streamlit as st

PASSWORD_ENV = "ABIDANCE_DASHBOARD_PASSWORD"
_OK = "_abidance_auth_ok"


def _expected() -> str | None:
    return os.environ.get(PASSWORD_ENV) or None


def check(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def require() -> None:
    """Stop the script run unless the session has entered the password (or none is required)."""
    expected = _expected()
    if expected is None or st.session_state.get(_OK) == _fingerprint(expected):
        return
    st.title("Abidance")
    given = st.text_input("Password", type="password", key="_abidance_password")
    if given:
        if check(given, expected):
            st.session_state[_OK] = _fingerprint(expected)
            st.rerun()
        st.error("Wrong password.")
    st.stop()


def _fingerprint(secret: str) -> str:
    """What the session keeps: a keyed digest (changing the password logs every session out)."""
    return hmac.new(secret.encode("utf-8"), b"abidance-dashboard", "sha256").hexdigest()
