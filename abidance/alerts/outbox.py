"""One channel's outbox: which alerts it takes, how repeats are grouped, when a message may go.

Pure logic on explicit times (ns), no I/O, so every rule is tested without waiting:
- filter: an alert's level must reach the channel's `min_level` (reports excepted) and its
  kind (`<source>.<code>`) match one of the channel's patterns;
- grouping: alerts are held per kind. The first of a kind goes at once; repeats within
  `group_window_s` after a kind was sent wait and leave together when the window ends, as one
  message carrying their count ("execution.order_rejected ×14 in 5 min");
- rate limit: a token bucket (`burst`, `rate_per_minute`). While it is empty alerts keep
  merging into their kind's group, so a storm becomes a few grouped messages, none lost:
  every alert is counted in exactly one message;
- quiet hours: outside critical, groups wait until the quiet hours end;
- bounded: at most `max_groups` kinds wait; alerts of further kinds fold into one
  "alerts.other" group that lists how many of each kind it holds (a bounded dict too).
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import itertools
import re
import zoneinfo
from collections import OrderedDict
from dataclasses import dataclass, field

LEVELS = {"info": 0, "warning": 1, "error": 2, "critical": 3}
NS = 1_000_000_000
OTHER = "alerts.other"
_OTHER_KINDS = 50          # kinds listed by name in an "other" group; the rest are summed


def kind_of(alert) -> str:
    return f"{alert.source}.{alert.code}"


def level_rank(level: str) -> int:
    return LEVELS.get(level, LEVELS["error"])     # an unknown level is treated as an error, never dropped


@dataclass
class Group:
    kind: str
    level: str
    message: str              # the newest alert's message
    count: int
    first_ts: int             # ns, event times
    last_ts: int
    ready_ns: int             # not before this time (grouping window)
    attachment: object = None          # (filename, content_type, bytes) of the newest alert that had one
    others: dict = field(default_factory=dict)    # OTHER only: kind -> count


@dataclass(frozen=True)
class Message:
    """What a channel sends: one group."""

    id: str                   # unique per channel and process: "<channel>-<n>"
    channel: str
    kind: str
    level: str
    message: str
    count: int
    first_ts: int
    last_ts: int
    attachment: object = None
    others: tuple = ()

    @property
    def title(self) -> str:
        times = f" ×{self.count} in {span(self.last_ts - self.first_ts)}" if self.count > 1 else ""
        return f"[{self.level.upper()}] {self.kind}{times}"

    def text(self, node: str = "") -> str:
        when = dt.datetime.fromtimestamp(self.last_ts / NS, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
        lines = [self.title, self.message]
        if self.others:
            lines.append(", ".join(f"{k} ×{n}" for k, n in self.others))
        lines.append(f"{node + ' · ' if node else ''}{when}")
        return "\n".join(lines)


def span(ns: int) -> str:
    s = max(1, round(ns / NS))
    if s < 90:
        return f"{s} s"
    if s < 90 * 60:
        return f"{round(s / 60)} min"
    return f"{s / 3600:.1f} h"


class QuietHours:
    """A local time range 'HH:MM-HH:MM' (may wrap past midnight); "" = never quiet."""

    def __init__(self, spec: str, timezone: str = "UTC"):
        self.spec = spec
        self.tz = zoneinfo.ZoneInfo(timezone)
        self.range = None
        if spec:
            m = re.fullmatch(r"(\d\d):(\d\d)-(\d\d):(\d\d)", spec)
            if not m:
                raise ValueError(f"quiet hours must be 'HH:MM-HH:MM', got {spec!r}")
            a, b, c, d = (int(x) for x in m.groups())
            self.range = (a * 60 + b, c * 60 + d)

    def quiet(self, now_ns: int) -> bool:
        if self.range is None:
            return False
        t = dt.datetime.fromtimestamp(now_ns / NS, self.tz)
        minute, (start, end) = t.hour * 60 + t.minute, self.range
        return start <= minute < end if start <= end else minute >= start or minute < end

    def ends_after(self, now_ns: int) -> int:
        """ns until the quiet hours end (0 when not quiet); a minute's precision is enough."""
        if not self.quiet(now_ns):
            return 0
        t = dt.datetime.fromtimestamp(now_ns / NS, self.tz)
        end = t.replace(hour=self.range[1] // 60, minute=self.range[1] % 60, second=0, microsecond=0)
        if end <= t:
            end += dt.timedelta(days=1)
        return int((end - t).total_seconds() * NS)


class TokenBucket:
    def __init__(self, per_minute: float, burst: int, now_ns: int):
        self.rate = per_minute / 60.0 / NS          # tokens per ns
        self.burst = float(burst)
        self.tokens = float(burst)
        self.at = now_ns

    def _refill(self, now_ns: int) -> None:
        if now_ns > self.at:
            self.tokens = min(self.burst, self.tokens + (now_ns - self.at) * self.rate)
            self.at = now_ns

    def take(self, now_ns: int) -> bool:
        self._refill(now_ns)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def wait_ns(self, now_ns: int) -> int:
        self._refill(now_ns)
        return 0 if self.tokens >= 1.0 else int((1.0 - self.tokens) / self.rate) + 1


class Outbox:
    def __init__(self, name: str, *, min_level: str = "warning", kinds=("*",), rate_per_minute: float = 20,
                 burst: int = 5, group_window_s: float = 300.0, quiet_hours: str = "", timezone: str = "UTC",
                 max_groups: int = 1000, now_ns: int = 0):
        self.name = name
        self.min_rank = level_rank(min_level)
        self._patterns = [re.compile(fnmatch.translate(p)) for p in kinds]
        self.window = int(group_window_s * NS)
        self.quiet = QuietHours(quiet_hours, timezone)
        self.bucket = TokenBucket(rate_per_minute, burst, now_ns)
        self.max_groups = max_groups
        self.pending: dict[str, Group] = {}
        self._sent_at: OrderedDict[str, int] = OrderedDict()   # kind -> last send, oldest first
        self._ids = itertools.count(1)
        self.accepted = 0           # alerts taken
        self.sent_alerts = 0        # alerts carried by popped messages
        self.messages = 0
        self.folded = 0             # alerts that went into the OTHER group

    def accepts(self, alert) -> bool:
        # Scheduled reports (source "report") go wherever their kind is taken, whatever min_level says.
        if level_rank(alert.level) < self.min_rank and alert.source != "report":
            return False
        kind = kind_of(alert)
        return any(p.match(kind) for p in self._patterns)

    # ---- in ----------------------------------------------------------------------------

    def add(self, alert, now_ns: int, attachment=None) -> None:
        self.accepted += 1
        kind = kind_of(alert)
        self._forget_old(now_ns)
        group = self.pending.get(kind)
        if group is None and len(self.pending) >= self.max_groups:
            self._fold(alert, kind, now_ns)
            return
        if group is None:
            sent = self._sent_at.get(kind)
            urgent = level_rank(alert.level) >= LEVELS["critical"]     # a critical alert never waits the window
            ready = now_ns if sent is None or urgent else sent + self.window
            self.pending[kind] = Group(kind, alert.level, alert.message, 1, alert.ts_event, alert.ts_event, ready,
                                       attachment)
            return
        group.count += 1
        group.message = alert.message
        group.first_ts = min(group.first_ts, alert.ts_event)
        group.last_ts = max(group.last_ts, alert.ts_event)
        if attachment is not None:
            group.attachment = attachment
        if level_rank(alert.level) > level_rank(group.level):
            group.level = alert.level
            if level_rank(alert.level) >= LEVELS["critical"]:
                group.ready_ns = min(group.ready_ns, now_ns)     # a critical repeat does not wait the window

    def _fold(self, alert, kind: str, now_ns: int) -> None:
        self.folded += 1
        other = self.pending.get(OTHER)
        if other is None:
            # Over the bound by one: the OTHER group itself.
            other = self.pending[OTHER] = Group(OTHER, alert.level, "alerts of more kinds than alerts.max_groups",
                                                0, alert.ts_event, alert.ts_event, now_ns)
        other.count += 1
        other.last_ts = max(other.last_ts, alert.ts_event)
        other.first_ts = min(other.first_ts, alert.ts_event)
        if level_rank(alert.level) > level_rank(other.level):
            other.level = alert.level
        if kind in other.others or len(other.others) < _OTHER_KINDS:
            other.others[kind] = other.others.get(kind, 0) + 1
        else:
            other.others["(more kinds)"] = other.others.get("(more kinds)", 0) + 1

    def _forget_old(self, now_ns: int) -> None:
        sent = self._sent_at
        while sent:
            kind, at = next(iter(sent.items()))
            if now_ns - at < self.window:
                break
            sent.popitem(last=False)

    def restore(self, msg: Message, now_ns: int) -> None:
        """A message that could not be sent goes back, merged with what waits for its kind."""
        group = self.pending.get(msg.kind)
        self.sent_alerts -= msg.count
        self.messages -= 1
        if group is None:
            self.pending[msg.kind] = Group(msg.kind, msg.level, msg.message, msg.count, msg.first_ts, msg.last_ts,
                                           now_ns, msg.attachment, dict(msg.others))
            return
        group.count += msg.count
        group.first_ts = min(group.first_ts, msg.first_ts)
        group.ready_ns = min(group.ready_ns, now_ns)
        if level_rank(msg.level) > level_rank(group.level):
            group.level = msg.level
        for k, n in msg.others:
            group.others[k] = group.others.get(k, 0) + n

    # ---- out ---------------------------------------------------------------------------

    def _ready(self, now_ns: int) -> Group | None:
        quiet = self.quiet.quiet(now_ns)
        best = None
        for g in self.pending.values():
            if g.ready_ns > now_ns or (quiet and level_rank(g.level) < LEVELS["critical"]):
                continue
            if best is None or (level_rank(g.level), -g.ready_ns) > (level_rank(best.level), -best.ready_ns):
                best = g
        return best

    def pop(self, now_ns: int) -> Message | None:
        """The next message to send now, or None (nothing ready, or the rate limit says wait)."""
        group = self._ready(now_ns)
        if group is None or not self.bucket.take(now_ns):
            return None
        del self.pending[group.kind]
        self._sent_at[group.kind] = now_ns
        self._sent_at.move_to_end(group.kind)
        self.sent_alerts += group.count
        self.messages += 1
        return Message(f"{self.name}-{next(self._ids)}", self.name, group.kind, group.level, group.message,
                       group.count, group.first_ts, group.last_ts, group.attachment,
                       tuple(sorted(group.others.items(), key=lambda kv: -kv[1])))

    def wait_ns(self, now_ns: int) -> int | None:
        """How long until pop() may return a message; None when nothing waits."""
        if not self.pending:
            return None
        quiet_left = self.quiet.ends_after(now_ns)
        soonest = None
        for g in self.pending.values():
            at = max(g.ready_ns - now_ns, 0)
            if quiet_left and level_rank(g.level) < LEVELS["critical"]:
                at = max(at, quiet_left)
            soonest = at if soonest is None else min(soonest, at)
        return max(soonest, self.bucket.wait_ns(now_ns))

    @property
    def waiting(self) -> int:
        """Alerts held (counted in pending groups)."""
        return sum(g.count for g in self.pending.values())
