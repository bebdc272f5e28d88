"""Risk: the kill switch and the other operator commands, each limit beside its current use, risk
denials and the circuit-breaker (trading-state) history."""

from decimal import Decimal

import pandas as pd
import streamlit as st

from streamlit_app import charts, common, queries
from abidance.reports import metrics as M

st.title("Risk")
common.require_store()

COMMANDS = {
    "kill": ("KILL SWITCH", "primary",
             "HALT trading now: the node cancels every open order and sends no new one until resumed."),
    "reduce": ("Reduce only", "secondary",
               "Switch to REDUCING: only orders that move positions towards zero are allowed."),
    "resume": ("Resume", "secondary", "Back to ACTIVE: new positions are allowed again."),
}

# ---- operator commands ------------------------------------------------------------------------
st.subheader("Operator commands")
latest = common.live("latest_trading_state")
st.markdown(f"Trading state: {common.state_badge(latest['state'] if latest else None)}"
            + (f" since {common.fmt_ts(latest['ts'])} ({latest['reason']})" if latest else ""))
reason = st.text_input("Reason (recorded with the command)", key="cmd_reason", placeholder="why")
for col, (cmd, (label, kind, _)) in zip(st.columns(len(COMMANDS)), COMMANDS.items()):
    if col.button(label, type=kind, key=f"{cmd}_button", width="stretch"):
        st.session_state["pending_command"] = cmd

pending = st.session_state.get("pending_command")
if pending:
    st.warning(f"**Confirm {pending}?** {COMMANDS[pending][2]}")
    ok_col, cancel_col = st.columns(2)
    if ok_col.button(f"Confirm {pending}", type="primary", key="confirm_command"):
        try:
            cid = queries.insert_command(common.reader(), pending, reason.strip() or f"{pending} from the dashboard",
                                         author="dashboard")
        except Exception as exc:  # noqa: BLE001 - shown to the operator
            st.error(f"The {pending} command could not be written to the store: {exc}")
        else:
            st.session_state.pop("pending_command", None)
            st.session_state["command_written"] = (pending, cid)
            common.clear_caches()
            st.rerun()
    if cancel_col.button("Cancel", key="cancel_command"):
        st.session_state.pop("pending_command", None)
        st.rerun()
written = st.session_state.pop("command_written", None)
if written:
    st.success(f"Command `{written[0]}` written (id {written[1]}): the node polls the store twice a second "
               "and records the new trading state below.")


@st.fragment(run_every=common.refresh_s())
def command_log() -> None:
    cmds = common.live("commands", limit=20)
    if common.is_empty(cmds):
        st.caption("No operator command sent yet.")
        return
    # Acknowledged = the node recorded a trading-state change whose source names the command
    # (StoreReader.pending_commands); only the last 10 minutes, rounded for the cache.
    waiting = common.live("pending_commands", since=common.utc_now().floor("min") - pd.Timedelta(minutes=10))
    if not common.is_empty(waiting):
        st.info(f"{len(waiting)} command(s) not acknowledged by the node yet: "
                + ", ".join(f"{c} ({common.fmt_age(t)})" for c, t in zip(waiting["command"], waiting["ts"])))
    with st.expander(f"Recent commands ({len(cmds)})"):
        st.dataframe(common.for_display(cmds), hide_index=True, key="commands_table")


command_log()

# ---- limits beside their use ---------------------------------------------------------------------
st.subheader("Limits and current use")
s = common.settings()
cfg, config_errors = common.node_config()
if s.config_path is None:
    st.info("Set ABIDANCE_CONFIG to the node's config file to see its limits; current use only.")
elif cfg is None:
    st.warning(f"The config {s.config_path} does not validate ({len(config_errors)} errors, the first: "
               f"{config_errors[0] if config_errors else '?'}); see the Config page. Current use only.")


def use_table(cfg) -> pd.DataFrame:
    now = common.utc_now()
    today = now.normalize()
    eq = common.live("q.equity_sampled")
    last = None if common.is_empty(eq) else eq.iloc[-1]
    pnl_today = common.live("q.equity_change_since", since=today)
    open_orders = common.live("q.open_orders")
    positions = common.live("positions")
    fills = common.slow("fills", limit=common.BIG)
    trips, _ = M.round_trips(fills.iloc[::-1]) if not common.is_empty(fills) else ([], {})
    streak = 0
    for t in sorted(trips, key=lambda t: t.closed, reverse=True):
        if t.pnl >= 0:
            break
        streak += 1
    biggest = None
    if not common.is_empty(open_orders):
        biggest = max(q * p for q, p in zip(open_orders["quantity"], open_orders["price"]))
    risk = cfg.risk if cfg is not None else None
    q = risk.quote_asset if risk is not None else ""
    rows = [
        ("max_gross_exposure", "money", last["positions_value"] if last is not None else None,
         "positions value now"),
        ("max_drawdown", "money", last["drawdown"] if last is not None else None, "below the equity peak now"),
        ("daily_loss_limit", "money", max(Decimal(0), -pnl_today) if pnl_today is not None else None,
         "loss since 00:00 UTC"),
        ("max_order_notional", "money", biggest, "largest open order"),
        ("max_open_orders", "count", 0 if common.is_empty(open_orders) else len(open_orders), "open orders now"),
        ("orders_per_day", "count", common.live("q.order_count_since", since=today), "orders created today (UTC)"),
        ("max_errors_per_minute", "count", common.live("q.reject_count_since", since=now - pd.Timedelta(minutes=1)),
         "rejections in the last minute"),
        ("max_consecutive_losses", "count", streak, "losing round trips in a row, latest first"),
    ]
    out = []
    for key, kind, use, what in rows:
        limit = getattr(risk, key) if risk is not None else None
        share = None
        if limit and use is not None:
            share = min(1.0, float(Decimal(use) / Decimal(limit)))
        out.append({"limit": f"risk.{key}", "configured": "-" if limit is None else
                    ("off" if not limit else f"{limit} {q}".strip() if kind == "money" else str(limit)),
                    "current use": "no data yet" if use is None else
                    (M.fmt_money(use, 8) if kind == "money" else str(use)),
                    "used": share, "measured as": what})
    held: dict = {}                     # the account's position: every strategy's added up
    if not common.is_empty(positions):
        for symbol, qty in zip(positions["symbol"], positions["quantity"]):
            held[symbol] = held.get(symbol, Decimal(0)) + Decimal(qty)
    limits = dict(risk.max_position) if risk is not None else {}
    for symbol in sorted(set(held) | set(limits)):
        limit, use = limits.get(symbol), held.get(symbol, Decimal(0))
        out.append({"limit": f"risk.max_position.{symbol}", "configured": "unlimited" if limit is None else str(limit),
                    "current use": f"{Decimal(use).normalize():f}",
                    "used": min(1.0, float(abs(Decimal(use)) / limit)) if limit else None,
                    "measured as": "position now (base asset)"})
    return pd.DataFrame(out)


st.dataframe(use_table(cfg), hide_index=True, key="limits_table",
             column_config={"used": st.column_config.ProgressColumn("used", min_value=0.0, max_value=1.0,
                                                                    format="percent")})
if cfg is not None and cfg.risk.kill_switch_file is not None:
    st.caption(f"The node also halts while the file `{cfg.risk.kill_switch_file}` exists.")

# ---- decisions and breakers ----------------------------------------------------------------------
left, right = st.columns(2)
with left:
    st.subheader("Risk denials")
    denials = common.slow("risk_decisions", accepted=False, limit=1000)
    if common.is_empty(denials):
        common.no_data("no signal denied by the risk engine")
    else:
        by = denials.groupby("reason").size().reset_index(name="denials").sort_values("denials", ascending=False)
        st.plotly_chart(charts.counts_figure(by, "reason", "denials", "Denials by reason"), key="denials_chart")
        st.dataframe(common.for_display(denials[["ts", "strategy_id", "symbol", "side", "reason", "message",
                                                 "price", "confidence"]]), hide_index=True, key="denials_table")
with right:
    st.subheader("Circuit breakers and trading state")
    history = common.slow("trading_state_history", limit=500)
    if common.is_empty(history):
        common.no_data("no trading-state change recorded")
    else:
        st.dataframe(common.for_display(history[["ts", "state", "previous", "reason", "source"]]), hide_index=True,
                     key="state_table")
