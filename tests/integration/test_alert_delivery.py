"""Alerts delivered to local stand-ins of Telegram, Discord, Slack, a webhook and an SMTP server (STARTTLS),
each checking the real API's request shape: once per channel, grouped, rate-limited, 429s obeyed, an
unreachable channel reported on the others and on the bus; 10,000 alerts in a minute, none lost or doubled."""

from __future__ import annotations

import time

import pytest

from abidance.alerts.secrets import SecretError, load_secret
from abidance.core.events import Alert
from tests.integration.alerts_kit import (CHAT_ID, SMTP_USER, TOKEN, FakeDiscord, FakeSlack, FakeTelegram,
                                          FakeWebhook, RunningAlerts, SmtpServer, alert_settings, channel_env,
                                          channel_tables)


@pytest.fixture()
def servers(tmp_path):
    s = {"telegram": FakeTelegram(), "discord": FakeDiscord(), "slack": FakeSlack(), "webhook": FakeWebhook("wh-tok"),
         "smtp": SmtpServer(tmp_path)}
    yield s
    for server in s.values():
        server.close()


def now_alert(code="order_rejected", level="error", source="execution", message="order rejected: -2010"):
    return Alert(level, source, code, message, time.time_ns())


def test_one_alert_reaches_every_channel_once_in_each_apis_shape(servers):
    s = servers
    settings = alert_settings("[alerts]\ngroup_window_s = 2\n" + channel_tables(
        s["telegram"], s["discord"], s["slack"], s["webhook"], s["smtp"]), channel_env("wh-tok"))
    running = RunningAlerts(settings, channel_env("wh-tok"))
    try:
        sent_at = time.time()
        running.publish(now_alert(level="critical", source="risk", code="trading_halted",
                                  message="trading HALTED: kill switch"))
        for name in ("telegram", "discord", "slack", "webhook"):
            got = s[name].wait_for(lambda r: len(r) >= 1, what=name)
            assert len(got) == 1 and "risk.trading_halted" in (got[0].get("text") or ""), (name, got)
            assert got[0]["at"] - sent_at < 2.0, f"{name} took {got[0]['at'] - sent_at:.2f}s"
        mail = s["smtp"].wait_for(1)[0]
        assert mail["tls"] and mail["user"] == SMTP_USER.encode()
        assert mail["to"] == ["owner@example.test"] and "trading_halted" in mail["message"]["Subject"]
        assert "kill switch" in mail["message"].get_content()
        hook = s["webhook"].received[0]
        assert hook["level"] == "critical" and hook["count"] == 1 and hook["node"] == "test-node"
        assert hook["kind"] == "risk.trading_halted" and hook["path"] == "/alerts"
        time.sleep(0.3)
        assert all(not s[n].refusals for n in ("telegram", "discord", "slack", "webhook"))
    finally:
        running.stop()


def test_repeats_are_grouped_and_the_rate_limit_and_429_retry_after_are_obeyed(servers):
    tg = servers["telegram"]
    tg.limit_per_s, tg.retry_after = 1, 1        # the server allows one message a second and says so
    settings = alert_settings("[alerts]\ngroup_window_s = 1\n" + channel_tables(tg, rate_per_minute=600, burst=3),
                              channel_env())
    running = RunningAlerts(settings, channel_env())
    try:
        for i in range(14):
            running.publish(now_alert(message=f"order rejected #{i}"))
        running.publish(now_alert(code="spread", source="anomaly", level="warning", message="spread wide"))
        got = tg.wait_for(lambda r: sum(_count(x["text"]) for x in r) >= 15, timeout=15, what="15 alerts")
        assert sum(_count(x["text"]) for x in got) == 15
        assert any("execution.order_rejected ×" in x["text"] for x in got), [x["text"] for x in got]
        assert any(code == 429 for code, _ in tg.refusals)        # the limit was hit and retried after
        stats = running.channel_stats("tg", lambda st: st["delivered_alerts"] >= 15 and st["waiting"] == 0)
        assert stats["retries"] >= 1 and stats["delivered_alerts"] == 15 and stats["waiting"] == 0
    finally:
        running.stop()


def _count(text: str) -> int:
    first = text.splitlines()[0]
    return int(first.split("×")[1].split()[0]) if "×" in first else 1


def test_an_unreachable_channel_is_reported_on_the_others_and_the_bus_then_its_alerts_arrive(servers):
    s = servers
    s["discord"].down = True
    settings = alert_settings("[alerts]\ngroup_window_s = 1\nretry_initial_s = 0.05\nretry_max_s = 0.2\n"
                              "unreachable_after = 2\n" + channel_tables(s["telegram"], s["discord"]), channel_env())
    running = RunningAlerts(settings, channel_env())
    try:
        running.publish(now_alert(message="first"))
        tg = s["telegram"].wait_for(lambda r: any("alerts.channel_unreachable" in x["text"] for x in r),
                                    what="the unreachable report")
        assert any("dc" in x["text"] and "unreachable" in x["text"] for x in tg)
        assert any(a.code == "channel_unreachable" and a.level == "critical" for a in running.seen)
        s["discord"].down = False
        got = s["discord"].wait_for(lambda r: len(r) >= 1, what="the held alert")
        assert "first" in got[0]["text"]
        assert not any("channel_unreachable" in x["text"] for x in s["discord"].received)   # not about itself
        s["telegram"].wait_for(lambda r: any("alerts.channel_recovered" in x["text"] for x in r), what="recovery")
    finally:
        running.stop()


def test_a_report_with_an_attachment_goes_as_a_document_and_a_discord_file(servers):
    from abidance.alerts.service import Attached

    s = servers
    settings = alert_settings("[alerts]\n" + channel_tables(s["telegram"], s["discord"], min_level="info"),
                              channel_env())
    running = RunningAlerts(settings, channel_env())
    try:
        html = b"<html><body>daily report</body></html>"
        running.publish(Attached(now_alert(level="info", source="report", code="daily", message="Daily report"),
                                 "report.html", "text/html", html))
        doc = s["telegram"].wait_for(lambda r: len(r) >= 1)[0]
        assert doc["method"] == "sendDocument" and doc["filename"] == "report.html" and doc["data"] == html
        file = s["discord"].wait_for(lambda r: len(r) >= 1)[0]
        assert file["filename"] == "report.html" and file["data"] == html
    finally:
        running.stop()


def test_ten_thousand_alerts_in_a_minute_reach_each_channel_under_its_limit_grouped_none_lost_or_doubled(servers):
    s = servers
    settings = alert_settings("[alerts]\ngroup_window_s = 2\nqueue_size = 20000\n" + channel_tables(
        s["telegram"], s["discord"], s["slack"], s["webhook"], rate_per_minute=120, burst=5), channel_env("wh-tok"))
    running = RunningAlerts(settings, channel_env("wh-tok"))
    try:
        kinds = 40
        start = time.monotonic()
        for second in range(10):              # 10,000 alerts, 1,000 a second (a minute's storm, compressed)
            batch = [now_alert(code=f"kind{i % kinds}", message=f"alert {second}-{i}") for i in range(1000)]
            running.publish(*batch)
            time.sleep(max(0.0, start + second + 1 - time.monotonic()))
        for name in ("telegram", "discord", "slack", "webhook"):
            s[name].wait_for(lambda r: sum(_count(x["text"]) for x in r) >= 10_000, timeout=60, what=name)
        elapsed = time.monotonic() - start
        for name in ("telegram", "discord", "slack", "webhook"):
            got = s[name].received
            assert sum(_count(x["text"]) for x in got) == 10_000, name
            assert len(got) <= 5 + 120 * elapsed / 60 + 1, (name, len(got), elapsed)
        ids = [x["id"] for x in s["webhook"].received]
        assert len(ids) == len(set(ids))
        assert sum(x["count"] for x in s["webhook"].received) == 10_000
        stats = running.service.stats()
        assert stats["overflow"] == 0 and all(c["waiting"] == 0 for c in stats["channels"].values())
    finally:
        running.stop()


def test_secrets_come_from_the_environment_or_a_private_file_and_are_never_shown(tmp_path):
    secret = load_secret("tg", True, {"ABIDANCE_ALERTS_TG_SECRET": TOKEN})
    assert secret.reveal() == TOKEN and TOKEN not in repr(secret) and TOKEN not in str(secret)
    f = tmp_path / "token"
    f.write_text(TOKEN + "\n")
    f.chmod(0o644)
    with pytest.raises(SecretError, match="chmod 600"):
        load_secret("tg", True, {"ABIDANCE_ALERTS_TG_SECRET_FILE": str(f)})
    f.chmod(0o600)
    assert load_secret("tg", True, {"ABIDANCE_ALERTS_TG_SECRET_FILE": str(f)}).reveal() == TOKEN
    with pytest.raises(SecretError, match="ABIDANCE_ALERTS_MY_BOT_SECRET") as err:
        load_secret("my-bot", True, {})
    assert TOKEN not in str(err.value)


def test_a_token_in_the_config_file_is_refused_without_showing_it():
    from abidance.config import ConfigError, parse_config

    with pytest.raises(ConfigError) as err:
        parse_config(f'[alerts]\n[[alerts.channels]]\nname = "tg"\nkind = "telegram"\nchat_id = "{CHAT_ID}"\n'
                     f'bot_token = "{TOKEN}"\n', ".", env={})
    assert "alerts.channels[0].bot_token" in str(err.value) and TOKEN not in str(err.value)


def test_an_apprise_channel_reaches_any_service_apprise_knows(servers):
    pytest.importorskip("apprise")
    hook = servers["webhook"]
    hook.token = ""
    settings = alert_settings('[alerts]\n[[alerts.channels]]\nname = "ap"\nkind = "apprise"\n')
    env = {"ABIDANCE_ALERTS_AP_SECRET": f"json://127.0.0.1:{hook.port}/apprise"}
    running = RunningAlerts(settings, env)
    try:
        running.publish(now_alert(message="via apprise"))
        got = hook.wait_for(lambda r: len(r) >= 1, what="the apprise JSON post")[0]
        assert got["path"] == "/apprise" and "via apprise" in got["message"]
        assert "execution.order_rejected" in got["title"]
    finally:
        running.stop()
