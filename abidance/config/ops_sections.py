"""Config sections for unattended operation: [alerts] (delivery, reports), [anomaly], [chat], [metrics].

Declared like the other sections (abidance/config/sections.py): every key has a type, a default and
a description, and docs/config.md is generated from them. Tokens, webhook URLs and passwords are never
keys here: each channel reads its secret from the environment (abidance/alerts/secrets.py).
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from decimal import Decimal

from abidance.config.schema import BOOL, FLOAT, INT, MONEY, REQUIRED, STR, STR_LIST, Section, key, table_list

LEVELS = ("info", "warning", "error", "critical")
CHANNEL_KINDS = ("telegram", "discord", "slack", "webhook", "email", "apprise")
ACTIONS = ("alert", "reduce", "halt")
# Every detector only alerts by default: moving risk is a choice (docs/anomaly.md recommends one set).
HOURS = r"|([01][0-9]|2[0-3]):[0-5][0-9]-([01][0-9]|2[0-3]):[0-5][0-9]"
HOURS_HINT = "\"\" or a local time range 'HH:MM-HH:MM' (may wrap past midnight, e.g. '22:00-07:00')"
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass(frozen=True, kw_only=True)
class ChannelConfig:
    name: str = key(STR, REQUIRED, "Unique name of the channel; its secret comes from the environment variable "
                    "ABIDANCE_ALERTS_<NAME>_SECRET (or ABIDANCE_ALERTS_<NAME>_SECRET_FILE, a chmod 600 file), "
                    "<NAME> upper-cased with '-' as '_'.",
                    pattern=r"[A-Za-z][A-Za-z0-9_-]{0,31}", hint="1-32 letters, digits, '-' or '_', a letter first")
    kind: str = key(STR, REQUIRED, "Where alerts go. The secret is: telegram the bot token; discord the webhook's "
                    "'<id>/<token>' (or its whole URL); slack the webhook path 'T…/B…/…' (or its whole URL); "
                    "webhook an optional bearer token; email the SMTP password; apprise the apprise URL.",
                    choices=CHANNEL_KINDS)
    min_level: str = key(STR, "warning", "Least severe alert this channel takes.", choices=LEVELS)
    kinds: tuple[str, ...] = key(STR_LIST, ["*"], "Alert kinds this channel takes: patterns ('*', 'anomaly.*', "
                                 "'risk.trading_halted', 'report.*') matched against '<source>.<code>'.",
                                 nonempty=True)
    rate_per_minute: int = key(INT, 20, "Most messages sent per minute (alerts beyond it wait and are grouped, "
                               "never dropped).", ge=1, le=6000)
    burst: int = key(INT, 5, "Messages that may go at once before rate_per_minute paces them.", ge=1, le=1000)
    quiet_hours: str = key(STR, "", "Local hours (alerts.timezone) in which only critical alerts are sent; the "
                           "others are held and sent grouped when the quiet hours end.",
                           pattern=HOURS, hint=HOURS_HINT)
    api_url: str = key(STR, "", "Base URL of the service's API; \"\" = the real service (telegram "
                       "https://api.telegram.org, discord https://discord.com/api, slack "
                       "https://hooks.slack.com/services). For webhook: the URL posted to.")
    chat_id: str = key(STR, "", "telegram: the chat (or channel '@name') messages go to.")
    smtp_host: str = key(STR, "", "email: SMTP server host.")
    smtp_port: int = key(INT, 587, "email: SMTP port (STARTTLS is required before logging in).", ge=1, le=65535)
    smtp_user: str = key(STR, "", "email: login user; \"\" = no login.")
    mail_from: str = key(STR, "", "email: the From address.")
    mail_to: tuple[str, ...] = key(STR_LIST, [], "email: recipients.")
    ca_file: str = key(STR, "", "A CA bundle (PEM) to trust for this channel's TLS besides the system's (a "
                       "private mail server's certificate); \"\" = the system's.")
    timeout_s: float = key(FLOAT, 10.0, "Seconds to wait for one request.", gt=0, le=120)


CHANNEL = Section.of("alerts.channels", ChannelConfig, "One [[alerts.channels]] table per destination.")


@dataclass(frozen=True)
class AlertsSection:
    enabled: bool = key(BOOL, True, "Deliver alerts to the channels (the store records them either way).")
    channels: tuple[ChannelConfig, ...] = key(table_list(CHANNEL), [], "The destinations: one "
                                              "[[alerts.channels]] table each (below).")
    group_window_s: float = key(FLOAT, 300.0, "Repeats of one alert kind within this many seconds after it was "
                                "sent go out as one grouped message ('order rejected ×14 in 5 min').", gt=0, le=86400)
    timezone: str = key(STR, "UTC", "Time zone of quiet hours and report times (an IANA name).")
    queue_size: int = key(INT, 10000, "Alerts waiting for the delivery thread; beyond it they are counted and "
                          "summarised, never block trading.", ge=100, le=10_000_000)
    max_groups: int = key(INT, 1000, "Distinct alert kinds a channel holds waiting; more are folded into one "
                          "'other alerts' group (counted, not lost).", ge=10, le=100_000)
    retry_initial_s: float = key(FLOAT, 1.0, "First retry delay after a failed send; doubles up to "
                                 "retry_max_s (a 429's retry_after is obeyed instead).", gt=0, le=3600)
    retry_max_s: float = key(FLOAT, 60.0, "Longest delay between retries.", gt=0, le=86400)
    unreachable_after: int = key(INT, 3, "Failed attempts in a row after which a channel is reported "
                                 "unreachable on the other channels and the dashboard.", ge=1, le=1000)
    daily_report: bool = key(BOOL, True, "Send a daily summary (equity chart, PnL per strategy, fees, "
                             "incidents) to the channels taking 'report.daily'.")
    weekly_report: bool = key(BOOL, True, "Send a weekly summary to the channels taking 'report.weekly'.")
    report_time: str = key(STR, "00:05", "Local time (alerts.timezone) the reports are sent.",
                           pattern=r"([01][0-9]|2[0-3]):[0-5][0-9]", hint="'HH:MM'")
    report_weekday: str = key(STR, "monday", "Day the weekly report is sent.", choices=WEEKDAYS)
    drift_report: bool = key(BOOL, False, "At report_time, replay the last 24 hours through the kernel and send "
                             "each strategy's drift (live minus replay PnL, explained; docs/drift.md) as an alert "
                             "of kind drift.daily. Needs store.url.")
    drift_alert: Decimal = key(MONEY, "0", "Warn (kind drift.threshold) when a strategy's daily drift is "
                               "larger than this, in the quote asset, either way; 0 = never.")


@dataclass(frozen=True)
class AnomalySection:
    enabled: bool = key(BOOL, True, "Run the anomaly detectors on the live data (docs/anomaly.md).")
    price_jump_bps: float = key(FLOAT, 300.0, "Price jump: alert when a trade is this many bps away from the "
                                "time-decayed mean price (time constant price_jump_window_s); 0 = off.", ge=0, le=10000)
    price_jump_window_s: float = key(FLOAT, 60.0, "Price jump: time constant of the reference price.", gt=0, le=86400)
    price_jump_action: str = key(STR, "alert", "Price jump: what it does besides alerting.", choices=ACTIONS)
    spread_bps: float = key(FLOAT, 50.0, "Spread blow-out: alert when the best bid/ask spread is wider than this "
                            "many bps and spread_factor times its rolling median; 0 = off.", ge=0, le=10000)
    spread_factor: float = key(FLOAT, 5.0, "Spread blow-out: multiple of the rolling median spread.", ge=1, le=1000)
    spread_action: str = key(STR, "alert", "Spread blow-out: what it does besides alerting.", choices=ACTIONS)
    volume_z: float = key(FLOAT, 4.0, "Volume spike: alert when a volume_bucket_s bucket's traded quantity has a "
                          "robust z-score (log volume against the median and MAD of the last volume_window "
                          "buckets) above this; 0 = off.", ge=0, le=1000)
    volume_bucket_s: float = key(FLOAT, 300.0, "Volume spike: bucket length in seconds.", gt=0, le=86400)
    volume_window: int = key(INT, 120, "Volume spike: buckets in the rolling window.", ge=10, le=10000)
    volume_action: str = key(STR, "alert", "Volume spike: what it does besides alerting.", choices=ACTIONS)
    feed_lag_ms: float = key(FLOAT, 2000.0, "Feed lag: alert when a market message arrives this much later than "
                             "its exchange time, feed_lag_count times in a row; 0 = off.", ge=0, le=3_600_000)
    feed_lag_count: int = key(INT, 5, "Feed lag: late messages in a row before it fires.", ge=1, le=10000)
    stall_s: float = key(FLOAT, 15.0, "Feed stall: alert when a subscribed symbol's market data has been silent "
                         "this long; 0 = off.", ge=0, le=86400)
    feed_action: str = key(STR, "alert", "Feed lag and stall: what they do besides alerting.", choices=ACTIONS)
    slippage_bps: float = key(FLOAT, 100.0, "Fill slippage: alert when a fill's price is this many bps worse "
                              "than the market price when the order was decided; 0 = off.", ge=0, le=10000)
    slippage_action: str = key(STR, "alert", "Fill slippage: what it does besides alerting.", choices=ACTIONS)
    rejections: int = key(INT, 5, "Rejection burst: alert when this many orders are rejected within "
                          "rejection_window_s; 0 = off.", ge=0, le=100_000)
    rejection_window_s: float = key(FLOAT, 60.0, "Rejection burst: the window.", gt=0, le=86400)
    rejection_action: str = key(STR, "alert", "Rejection burst: what it does besides alerting.", choices=ACTIONS)
    drawdown_velocity: Decimal = key(MONEY, "0", "Drawdown velocity: alert when equity falls by at least this much "
                                 "(quote asset) within drawdown_window_s; \"0\" = off.")
    drawdown_velocity_bps: float = key(FLOAT, 300.0, "Drawdown velocity: alert when equity falls by at least "
                                       "this many bps of its value within drawdown_window_s; 0 = off.", ge=0, le=10000)
    drawdown_window_s: float = key(FLOAT, 600.0, "Drawdown velocity: the window.", gt=0, le=604800)
    drawdown_action: str = key(STR, "alert", "Drawdown velocity: what it does besides alerting.", choices=ACTIONS)
    balance_drift: Decimal = key(MONEY, "0", "Balance drift: alert when an asset's exchange balance differs from "
                             "what the fills say by more than this, valued in the quote asset; \"0\" = any "
                             "difference beyond balance_drift_bps.")
    balance_drift_bps: float = key(FLOAT, 10.0, "Balance drift: tolerated difference in bps of the asset's "
                                   "balance (fee rounding).", ge=0, le=10000)
    balance_action: str = key(STR, "alert", "Balance drift: what it does besides alerting.", choices=ACTIONS)
    cooldown_s: float = key(FLOAT, 300.0, "A detector that fired for a symbol fires again for it only after "
                            "this many seconds (the alert channels group repeats anyway).", ge=0, le=86400)


@dataclass(frozen=True)
class ChatSection:
    enabled: bool = key(BOOL, False, "Answer Telegram commands (/status, /balance, /pnl, /positions, /kill, "
                        "/reduce, /resume) from allow-listed chats.")
    channel: str = key(STR, "", "Name of the telegram channel in [[alerts.channels]] whose bot (token and "
                       "api_url) is polled.")
    allowed_chat_ids: tuple[str, ...] = key(STR_LIST, [], "Chat ids answered; messages from any other chat are "
                                            "logged and ignored.", pattern=r"-?[0-9]{1,20}", hint="numeric chat ids")
    poll_timeout_s: int = key(INT, 30, "Long-polling timeout of getUpdates, in seconds.", ge=0, le=50)
    confirm_s: float = key(FLOAT, 60.0, "Seconds a /kill waits for its confirmation ('/kill confirm').", gt=0, le=3600)


@dataclass(frozen=True)
class MetricsSection:
    enabled: bool = key(BOOL, False, "Serve Prometheus metrics at http://<host>:<port>/metrics.")
    host: str = key(STR, "127.0.0.1", "Address to bind; keep it on loopback unless a firewall fronts it.")
    port: int = key(INT, 9464, "Port of the metrics endpoint; 0 = any free port (logged).", ge=0, le=65535)
    sample_s: float = key(FLOAT, 1.0, "Seconds between samples of the node's gauges (equity, store backlog, "
                          "event-loop lag).", gt=0, le=3600)


ALERTS = Section.of("alerts", AlertsSection, "Alert delivery off the event loop: channels with a minimum level, "
                    "kinds, rate limits, grouping and quiet hours; scheduled reports (docs/alerts.md). Secrets "
                    "come from the environment, never this file.")
ANOMALY = Section.of("anomaly", AnomalySection, "Anomaly detectors on the live data; each alerts and may move "
                     "risk to REDUCING or HALTED (docs/anomaly.md).")
CHAT = Section.of("chat", ChatSection, "Chat control over Telegram (docs/alerts.md).")
METRICS = Section.of("metrics", MetricsSection, "The Prometheus endpoint (docs/metrics.md).")


def cross_check_ops(cfg, errors) -> None:
    """Rules across the keys of [alerts], [chat] and [metrics] (called by abidance.config.rules)."""
    alerts, chat = cfg.alerts, cfg.chat
    try:
        zoneinfo.ZoneInfo(alerts.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        errors.add("alerts.timezone", f"must be an IANA time zone like 'UTC' or 'Europe/Berlin', got "
                   f"{alerts.timezone!r}")
    seen: dict[str, int] = {}
    needs = {"telegram": ("chat_id",), "email": ("smtp_host", "mail_from", "mail_to"), "webhook": ("api_url",)}
    for i, ch in enumerate(alerts.channels):
        where = f"alerts.channels[{i}]"
        env = ch.name.upper().replace("-", "_")
        if env in seen:
            errors.add(f"{where}.name", f"{ch.name!r} clashes with alerts.channels[{seen[env]}] (names must differ "
                       "after upper-casing and '-' -> '_': they name the secret's environment variable)")
        seen.setdefault(env, i)
        for name in needs.get(ch.kind, ()):
            if not getattr(ch, name):
                errors.add(f"{where}.{name}", f"is required for a {ch.kind} channel")
        if ch.api_url and not ch.api_url.startswith(("http://", "https://")):
            errors.add(f"{where}.api_url", f"must start with http:// or https://, got {ch.api_url!r}")
    if chat.enabled:
        kinds = {ch.name: ch.kind for ch in alerts.channels}
        if kinds.get(chat.channel) != "telegram":
            errors.add("chat.channel", f"must name a telegram channel of [[alerts.channels]] (telegram: "
                       f"{', '.join(n for n, k in kinds.items() if k == 'telegram') or 'none'}), got {chat.channel!r}")
        if not chat.allowed_chat_ids:
            errors.add("chat.allowed_chat_ids", "must list at least one chat id when chat.enabled = true "
                       "(nobody else is ever answered)")
