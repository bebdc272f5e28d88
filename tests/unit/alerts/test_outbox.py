"""A channel's outbox on explicit times: filter, grouping, rate limit, quiet hours, bounds; nothing lost."""

from __future__ import annotations

import datetime as dt

from abidance.alerts.outbox import NS, OTHER, Outbox, QuietHours
from abidance.core.events import Alert

T0 = int(dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.timezone.utc).timestamp()) * NS


def alert(code="order_rejected", level="error", source="execution", ts=T0, message="rejected"):
    return Alert(level, source, code, message, ts)


def drain(box: Outbox, now: int) -> list:
    out = []
    while (m := box.pop(now)) is not None:
        out.append(m)
    return out


def test_filter_by_min_level_and_kind_patterns():
    box = Outbox("c", min_level="error", kinds=["execution.*", "risk.trading_halted"], now_ns=T0)
    assert box.accepts(alert())
    assert not box.accepts(alert(level="warning"))
    assert not box.accepts(alert(source="store", code="store_down"))
    assert box.accepts(alert(source="risk", code="trading_halted", level="critical"))
    assert box.accepts(alert(level="made-up"))       # an unknown level counts as an error, never dropped


def test_first_alert_goes_at_once_then_repeats_wait_the_window_and_leave_as_one_grouped_message():
    box = Outbox("c", group_window_s=300, rate_per_minute=60, burst=5, now_ns=T0)
    box.add(alert(), T0)
    first = drain(box, T0)
    assert [m.count for m in first] == [1]
    for i in range(1, 15):
        box.add(alert(ts=T0 + i * 20 * NS, message=f"rejected #{i}"), T0 + i * 20 * NS)
    assert drain(box, T0 + 299 * NS) == []
    assert box.wait_ns(T0 + 299 * NS) == NS
    (grouped,) = drain(box, T0 + 300 * NS)
    assert grouped.count == 14 and grouped.message == "rejected #14"
    assert grouped.title == "[ERROR] execution.order_rejected ×14 in 4 min"
    assert box.accepted == box.sent_alerts == 15


def test_a_critical_repeat_does_not_wait_for_the_window():
    box = Outbox("c", group_window_s=300, now_ns=T0)
    box.add(alert(), T0)
    drain(box, T0)
    box.add(alert(level="critical"), T0 + NS)
    assert [m.level for m in drain(box, T0 + NS)] == ["critical"]


def test_rate_limit_paces_messages_and_storms_merge_into_groups_none_lost():
    box = Outbox("c", rate_per_minute=6, burst=2, group_window_s=1, now_ns=T0)
    total = 0
    for i in range(10_000):
        box.add(alert(code=f"kind{i % 25}", ts=T0 + i * 6_000_000), T0 + i * 6_000_000)   # 10k in 60 s
        total += 1
    sent = []
    now = T0
    while box.pending:
        sent += drain(box, now)
        now += box.wait_ns(now) or 0
    minutes = (now - T0) / NS / 60
    assert len(sent) <= 2 + 6 * minutes + 1
    assert sum(m.count for m in sent) == total == box.sent_alerts
    assert len({m.id for m in sent}) == len(sent)


def test_more_kinds_than_max_groups_fold_into_one_counted_other_group():
    box = Outbox("c", max_groups=10, rate_per_minute=6000, burst=1000, now_ns=T0)
    for i in range(30):
        box.add(alert(code=f"k{i}"), T0)
    assert len(box.pending) == 11 and box.folded == 20
    msgs = drain(box, T0)
    other = next(m for m in msgs if m.kind == OTHER)
    assert other.count == 20 and sum(n for _, n in other.others) == 20
    assert sum(m.count for m in msgs) == 30


def test_quiet_hours_hold_all_but_critical_until_they_end():
    # 22:00-07:00 UTC; 23:30 is quiet.
    night = int(dt.datetime(2026, 3, 2, 23, 30, tzinfo=dt.timezone.utc).timestamp()) * NS
    box = Outbox("c", quiet_hours="22:00-07:00", now_ns=night)
    box.add(alert(level="warning", code="spread"), night)
    box.add(alert(level="critical", source="risk", code="trading_halted"), night)
    assert [m.kind for m in drain(box, night)] == ["risk.trading_halted"]
    wait = box.wait_ns(night)
    assert wait == int(7.5 * 3600 * NS)
    assert [m.kind for m in drain(box, night + wait)] == ["execution.spread"]


def test_quiet_hours_in_a_time_zone_and_without_wrap():
    q = QuietHours("01:00-03:00", "Europe/Berlin")       # UTC+1 in March
    at = int(dt.datetime(2026, 3, 2, 1, 30, tzinfo=dt.timezone.utc).timestamp()) * NS   # 02:30 in Berlin
    assert q.quiet(at) and not q.quiet(at + 2 * 3600 * NS)
    assert not QuietHours("").quiet(at)


def test_restore_puts_a_failed_message_back_merged_with_newer_alerts():
    box = Outbox("c", group_window_s=60, now_ns=T0)
    box.add(alert(), T0)
    (m,) = drain(box, T0)
    box.add(alert(ts=T0 + NS), T0 + NS)
    box.restore(m, T0 + 2 * NS)
    (again,) = drain(box, T0 + 2 * NS)
    assert again.count == 2 and box.sent_alerts == 2 and box.accepted == 2
