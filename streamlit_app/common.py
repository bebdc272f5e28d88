"""What every page shares: settings from the environment, the store client, cached queries,
the sidebar, and small display helpers.

Settings (read on every script run, so a test can change them between runs):
- ABIDANCE_STORE_URL       the store (default http://127.0.0.1:8123: an `abidance store`
                           process or a ClickHouse server; chdb:///dir works in-process)
- ABIDANCE_STORE_DATABASE  its database (default: store.database of the config, else "abidance")
- ABIDANCE_CONFIG          the node's config file (limits on the Risk page, the Config page)
- ABIDANCE_DASHBOARD_REFRESH_S  default refresh interval of the live panels (seconds)

The client is one clickhouse-connect client per (url, database), kept by `st.cache_resource`
(`abidance.store.client.connect`). Queries go through `live()` / `slow()`: `st.cache_data`
with a short and a longer TTL, keyed by (url, database, query, arguments). A query is a
`StoreReader` method name or a function of `streamlit_app.queries` (prefix "q.").
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pandas as pd
import streamlit as st

STORE_URL_ENV = "ABIDANCE_STORE_URL"
DATABASE_ENV = "ABIDANCE_STORE_DATABASE"
CONFIG_ENV = "ABIDANCE_CONFIG"
REFRESH_ENV = "ABIDANCE_DASHBOARD_REFRESH_S"
DEFAULT_STORE_URL = "http://127.0.0.1:8123"
LIVE_TTL_S = 2
SLOW_TTL_S = 30
REFRESH_CHOICES = (0, 2, 5, 10, 30, 60)      # seconds; 0 = off
STATE_COLORS = {"ACTIVE": "green", "REDUCING": "orange", "HALTED": "red"}
BIG = 1_000_000                                 # "all rows" for tables that stay small (the bot's own)


@dataclass(frozen=True)
class Settings:
    url: str
    database: str
    config_path: Path | None


@st.cache_resource(show_spinner=False, max_entries=16)
def _load_config(path: str, mtime_ns: int) -> tuple[object | None, list[str]]:
    """(config, []) or (None, the errors), once per version of the file."""
    from abidance.config import ConfigError, load_config

    try:
        # The node's own environment overrides are not the dashboard's: none applied.
        return load_config(path, env={}), []
    except ConfigError as exc:
        return None, exc.errors


def node_config(path: Path | None = None) -> tuple[object | None, list[str]]:
    """The validated config of ABIDANCE_CONFIG (or `path`): (config, []), (None, errors), or (None, [])
    when no config file is set."""
    path = path or _config_path()
    if path is None:
        return None, []
    try:
        mtime = path.stat().st_mtime_ns
    except OSError as exc:
        return None, [f"cannot read config file {path}: {exc.strerror or exc}"]
    return _load_config(str(path), mtime)


def _config_path() -> Path | None:
    cfg = os.environ.get(CONFIG_ENV)
    return Path(cfg) if cfg else None


def settings() -> Settings:
    url = os.environ.get(STORE_URL_ENV) or DEFAULT_STORE_URL
    path = _config_path()
    database = os.environ.get(DATABASE_ENV)
    if not database and path is not None:
        cfg, _ = node_config(path)
        database = cfg.store.database if cfg is not None else None
    return Settings(url, database or "abidance", path)


def redacted_url(url: str) -> str:
    from abidance.store.client import redact

    return redact(url)


# ---- the store ------------------------------------------------------------------------------

@st.cache_resource(show_spinner=False)
def _client(url: str, database: str):
    from abidance.store.client import connect

    # Shared by every browser session and fragment thread: no HTTP session id, or a ClickHouse
    # server would refuse concurrent queries ("session is locked").
    return connect(url, database, connect_timeout=3, send_receive_timeout=30, autogenerate_session_id=False)


def client():
    """The store's clickhouse-connect client, or None when it cannot be reached."""
    s = settings()
    try:
        return _client(s.url, s.database)
    except Exception:  # noqa: BLE001 - unreachable at connect time: store_status() says why
        return None


def reader():
    from abidance.store.reader import StoreReader

    c = client()
    return None if c is None else StoreReader(c, settings().database)


def _run(name: str, url: str, database: str, kwargs: dict):
    from abidance.store.reader import StoreReader
    from streamlit_app import queries

    r = StoreReader(_client(url, database), database)
    if name.startswith("q."):
        return getattr(queries, name[2:])(r, **kwargs)
    return getattr(r, name)(**kwargs)


@st.cache_data(ttl=LIVE_TTL_S, show_spinner=False)
def _live(name: str, url: str, database: str, **kwargs):
    return _run(name, url, database, kwargs)


@st.cache_data(ttl=SLOW_TTL_S, show_spinner=False)
def _slow(name: str, url: str, database: str, **kwargs):
    return _run(name, url, database, kwargs)


def live(name: str, **kwargs):
    """A query for live panels (cached LIVE_TTL_S seconds)."""
    s = settings()
    return _live(name, s.url, s.database, **kwargs)


def slow(name: str, **kwargs):
    """A query for history and reports (cached SLOW_TTL_S seconds)."""
    s = settings()
    return _slow(name, s.url, s.database, **kwargs)


def clear_caches() -> None:
    """After the dashboard wrote to the store: the next read sees it."""
    _live.clear()
    _slow.clear()


@st.cache_data(ttl=LIVE_TTL_S, show_spinner=False)
def _status(url: str, database: str) -> tuple[bool, str]:
    try:
        _client(url, database).query("SELECT 1")
        return True, "connected"
    except Exception as exc:  # noqa: BLE001 - shown in the sidebar and the page
        return False, f"{type(exc).__name__}: {str(exc)[:300]}"


def store_status() -> tuple[bool, str]:
    """(reachable, message): one cheap round trip, shared by the sidebar and the page for
    LIVE_TTL_S seconds (an unreachable store costs the connect timeout once, not per call)."""
    s = settings()
    return _status(s.url, s.database)


def require_store():
    """A page's first call: stop with an error box when the store cannot be reached."""
    ok, msg = store_status()
    if not ok:
        st.error(f"The store at {redacted_url(settings().url)} cannot be reached: {msg}. "
                 f"Start it (`abidance store` / `abidance run`) or set {STORE_URL_ENV}.")
        st.stop()


# ---- the shared sidebar ---------------------------------------------------------------------

def refresh_s() -> int | None:
    """Seconds between live panel refreshes chosen in the sidebar (None = off)."""
    v = st.session_state.get("refresh_s")
    if v is None:
        try:
            v = int(float(os.environ.get(REFRESH_ENV, "5")))
        except ValueError:
            v = 5
    return int(v) or None


def node_name() -> str:
    path = _config_path()
    if path is None:
        return "(no config: set ABIDANCE_CONFIG)"
    cfg, _ = node_config(path)
    return cfg.node.name if cfg is not None else f"(config {path.name} invalid)"


def state_badge(state: str | None) -> str:
    if not state:
        return ":gray-badge[no state yet]"
    return f":{STATE_COLORS.get(state, 'gray')}-badge[{state}]"


def sidebar() -> None:
    s = settings()
    with st.sidebar:
        ok, msg = store_status()
        st.markdown(f"**Store** `{redacted_url(s.url)}` / `{s.database}`")
        if ok:
            st.markdown(":green-badge[store connected]")
        else:
            st.markdown(":red-badge[store unreachable]")
            st.caption(msg)
        st.markdown(f"**Node** {node_name()}")
        state = None
        if ok:
            try:
                latest = live("latest_trading_state")
                state = latest["state"] if latest else None
            except Exception as exc:  # noqa: BLE001
                st.caption(f"trading state unavailable: {exc}")
        st.markdown(f"**Trading** {state_badge(state)}")
        default = refresh_s() or 0
        st.selectbox("Refresh live panels every", REFRESH_CHOICES,
                     index=REFRESH_CHOICES.index(default) if default in REFRESH_CHOICES else 2,
                     format_func=lambda v: "off" if not v else f"{v} s", key="refresh_s")


# ---- display helpers ------------------------------------------------------------------------

def no_data(what: str) -> None:
    st.info(f"No data yet: {what}.")


def is_empty(df) -> bool:
    return df is None or len(df) == 0


def for_display(df: pd.DataFrame) -> pd.DataFrame:
    """Exact strings for Decimal columns (Arrow would not show them exactly), UTC times as they are."""
    out = df.copy()
    for col in out.columns:
        if out[col].dtype == object and len(out) and any(isinstance(v, Decimal) for v in out[col].head(50)):
            out[col] = [("" if v is None else f"{Decimal(v).normalize():f}") for v in out[col]]
    return out


def to_float(series) -> pd.Series:
    return pd.Series([float(v) if v is not None else float("nan") for v in series], index=series.index)


def csv_bytes(df: pd.DataFrame) -> bytes:
    return for_display(df).to_csv(index=False).encode("utf-8")


def utc_now() -> pd.Timestamp:
    return pd.Timestamp.now(tz="UTC")


def fmt_ts(ts) -> str:
    if ts is None or (isinstance(ts, float) and pd.isna(ts)):
        return "never"
    t = pd.Timestamp(ts)
    t = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
    return t.strftime("%Y-%m-%d %H:%M:%S UTC")


def fmt_age(ts) -> str:
    if ts is None:
        return ""
    t = pd.Timestamp(ts)
    t = t.tz_localize("UTC") if t.tzinfo is None else t
    s = (utc_now() - t).total_seconds()
    if s < 0:
        return "in the future"
    for unit, n in (("d", 86400), ("h", 3600), ("min", 60)):
        if s >= n:
            return f"{s / n:.1f} {unit} ago"
    return f"{s:.0f} s ago"


# ---- secrets never shown --------------------------------------------------------------------

_ASSIGNMENT = re.compile(r"""(?P<key>[A-Za-z_][\w.\-]*|"[^"\n]*"|'[^'\n]*')(?P<sep>\s*[=:]\s*)"""
                         r"""(?P<value>"(?:[^"\\\n]|\\.)*"|'[^'\n]*'|[^\s,}\]#]+)""")


def mask_secrets(text: str) -> str:
    """Replace the value of every secret-looking assignment (`api_key = "..."`, `API_SECRET=...`,
    in TOML keys, inline tables or comments) with ***. The config cannot hold secrets (the loader
    refuses them), so this only guards against a file written by hand."""
    from abidance.config.loader import is_secret_name

    def repl(m):
        key = m.group("key").strip("\"'")
        if not is_secret_name(key):
            return m.group(0)
        quote = m.group("value")[0] if m.group("value")[:1] in "\"'" else ""
        return f"{m.group('key')}{m.group('sep')}{quote}***{quote}"

    return _ASSIGNMENT.sub(repl, text)
