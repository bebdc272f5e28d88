"""ML models: the model registry (every version, its status and out-of-sample metrics), its events, the
shadow signals, one version's training charts, and promote / demote / retire with a confirm step.

Actions call the registry in the store directly (abidance.ml.registry, as `abidance models` does), with
the promotion criteria of the config's [ml]; the node re-reads the registry every ml.registry_poll_s,
so a change takes effect there without a restart (no operator command is needed)."""

import json

import pandas as pd
import streamlit as st

from streamlit_app import common
from abidance.ml import train_report
from abidance.ml.registry import AUC_KEYS, HIT_RATE_KEYS, SIGNALS_KEYS, metric
from abidance.reports import metrics as M

st.title("ML models")
common.require_store()

# action -> (button label, what it does, the statuses it applies to)
ACTIONS = {
    "promote": ("Promote", "one step up: candidate -> shadow (predicts, never trades), shadow -> live (trades; "
                "the live version before it is retired). To live only when the out-of-sample criteria are met.",
                ("candidate", "shadow")),
    "demote": ("Demote to shadow", "live -> shadow: it keeps predicting, no longer trades.", ("live",)),
    "retire": ("Retire", "never run again (kept for the record).", ("candidate", "shadow", "live")),
}


def _json(text) -> dict:
    try:
        value = json.loads(text or "{}")
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _backtest_return(oos: dict, strategy: str):
    return ((oos.get("backtest") or {}).get(strategy) or {}).get("total_return")


def _short_time(ts) -> str:
    return pd.Timestamp(ts).strftime("%Y-%m-%d %H:%M")


models = common.live("models")
if common.is_empty(models):
    common.no_data("no model registered (`abidance train signal --store URL` trains and registers one)")
    st.stop()

oos = [_json(t) for t in models["out_of_sample"]]
counts = models["status"].value_counts()
for col, status in zip(st.columns(4), ("live", "shadow", "candidate", "retired")):
    col.metric(status.capitalize(), int(counts.get(status, 0)))

st.subheader("Versions")
table = pd.DataFrame({
    "name": models["name"], "version": models["version"], "status": models["status"],
    "oos_auc": [metric(o, AUC_KEYS) for o in oos], "oos_hit_rate": [metric(o, HIT_RATE_KEYS) for o in oos],
    "oos_signals": [metric(o, SIGNALS_KEYS) for o in oos],
    "backtest": [M.fmt_pct(_backtest_return(o, "model")) if o.get("backtest") else "-" for o in oos],
    "buy_and_hold": [M.fmt_pct(_backtest_return(o, "buy_and_hold")) if o.get("backtest") else "-" for o in oos],
    "sha256": [s[:12] for s in models["artifact_sha256"]],
    "trained on": [f"{_short_time(a)} .. {_short_time(b)}" for a, b in zip(models["train_start"], models["train_end"])],
    "updated": models["ts"], "reason": models["reason"]})
st.dataframe(table, hide_index=True, key="ml_models_table",
             column_config={"oos_auc": st.column_config.NumberColumn("oos AUC", format="%.4f"),
                            "oos_hit_rate": st.column_config.NumberColumn("oos hit rate", format="%.4f")})
st.caption("oos: the out-of-sample metrics kept with the version (held-out rows for `abidance train` and "
           "retraining); backtest / buy_and_hold: the held-out backtest of `abidance train`.")

# ---- one version ----------------------------------------------------------------------------------
st.subheader("Version")
choice = st.selectbox("Model version", list(range(len(models))), index=len(models) - 1, key="ml_version",
                      format_func=lambda i: f"{models['name'].iat[i]} v{models['version'].iat[i]} "
                                            f"({models['status'].iat[i]})")
row, row_oos = models.iloc[choice], oos[choice]
name, version, status = row["name"], int(row["version"]), row["status"]
params = _json(row["params"])
cols = st.columns(4)
cols[0].metric("Status", status)
cols[1].metric("Held-out AUC", M.fmt_num(metric(row_oos, AUC_KEYS), 4))
cols[2].metric("Hit rate", M.fmt_num(metric(row_oos, HIT_RATE_KEYS), 4))
signals = metric(row_oos, SIGNALS_KEYS)
cols[3].metric("Signals", "-" if signals is None else str(signals), help="confident calls behind the metrics")
backtest = row_oos.get("backtest") or {}
if backtest:
    cols = st.columns(3)
    for col, (label, key) in zip(cols, (("Model (held out)", "model"), ("Buy-and-hold", "buy_and_hold"),
                                        ("ema_cross", "ema_cross"))):
        col.metric(label, M.fmt_pct(_backtest_return(row_oos, key)),
                   help=f"max drawdown {M.fmt_pct((backtest.get(key) or {}).get('max_drawdown'))}, "
                        f"{(backtest.get(key) or {}).get('round_trips', '-')} round trips")
st.caption(f"{params.get('kind', '?')} on {params.get('symbol', '?')} {params.get('interval', '')}; labels "
           f"{params.get('labels', '?')}; artifact `{row['artifact_path']}` sha256 `{row['artifact_sha256']}`")
figures = train_report.figures(row_oos.get("charts"))
for key, fig in figures:
    st.plotly_chart(fig, key=f"ml_chart_{key}")
if not figures:
    st.caption("No training charts stored with this version (they come with `abidance train`).")

# ---- actions --------------------------------------------------------------------------------------
st.subheader("Promote, demote, retire")
cfg, _ = common.node_config()


def _registry():
    from abidance.config.sections import MlSection
    from abidance.ml.registry import Criteria, ModelRegistry

    ml = cfg.ml if cfg is not None else MlSection()
    return ModelRegistry(common.client(), common.settings().database, criteria=Criteria.from_config(ml),
                         author="dashboard")


ml_section = cfg.ml if cfg is not None else None
st.caption("Promotion to live needs the out-of-sample criteria of the config's [ml]"
           + (f" (min_oos_auc {ml_section.min_oos_auc}, min_oos_signals {ml_section.min_oos_signals})"
              if ml_section is not None else " (defaults: no ABIDANCE_CONFIG)")
           + "; the node applies a change within ml.registry_poll_s.")
reason = st.text_input("Reason (recorded in the registry)", key="ml_reason", placeholder="why")
allowed = [a for a, (_, _, statuses) in ACTIONS.items() if status in statuses]
if not allowed:
    st.caption(f"{name} v{version} is {status}: nothing to do (register it again to reuse it).")
for col, action in zip(st.columns(max(1, len(allowed))), allowed):
    if col.button(f"{ACTIONS[action][0]} {name} v{version}", key=f"ml_{action}_button", width="stretch"):
        st.session_state["ml_pending"] = (action, name, version)

pending = st.session_state.get("ml_pending")
if pending:
    action, p_name, p_version = pending
    st.warning(f"**Confirm {action} {p_name} v{p_version}?** {ACTIONS[action][1]}")
    ok_col, cancel_col = st.columns(2)
    if ok_col.button(f"Confirm {action}", type="primary", key="ml_confirm"):
        why = reason.strip() or f"{action} from the dashboard"
        try:
            reg = _registry()
            done = getattr(reg, action)(p_name, p_version, reason=why)
        except Exception as exc:  # noqa: BLE001 - a refusal (criteria, artifact changed) or a store error
            st.error(f"{action} {p_name} v{p_version} not done: {exc}")
        else:
            st.session_state.pop("ml_pending", None)
            st.session_state["ml_done"] = f"{done.label} is now {done.status} ({done.reason})"
            common.clear_caches()
            st.rerun()
    if cancel_col.button("Cancel", key="ml_cancel"):
        st.session_state.pop("ml_pending", None)
        st.rerun()
done_msg = st.session_state.pop("ml_done", None)
if done_msg:
    st.success(done_msg)

# ---- events and shadow signals --------------------------------------------------------------------
left, right = st.columns(2)
with left:
    st.subheader("Registry events")
    events = common.live("model_events", limit=200)
    if common.is_empty(events):
        st.caption("No registry event yet.")
    else:
        st.dataframe(events[["ts", "name", "version", "event", "from_status", "to_status", "reason", "author"]],
                     hide_index=True, key="ml_events_table")


@st.fragment(run_every=common.refresh_s())
def shadow_signals() -> None:
    signals = common.live("shadow_signals", limit=200)
    if common.is_empty(signals):
        st.caption("No shadow signal recorded yet (a version in shadow records what it would have done).")
        return
    st.dataframe(common.for_display(signals[["ts", "model", "version", "strategy_id", "symbol", "side", "confidence",
                                             "price", "reason"]]), hide_index=True, key="ml_shadow_table")


with right:
    st.subheader("Shadow signals (never traded)")
    shadow_signals()
