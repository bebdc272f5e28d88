"""Scheduled reports: a daily and a weekly summary sent to the alert channels.

Each report is an Alert (source "report", code "daily" / "weekly", kind `report.daily` for the
channels' `kinds`; it reaches every channel taking that kind whatever its min_level) carrying a
short text and an HTML attachment: an equity chart (inline SVG), PnL and fees per strategy,
incidents (alerts of level error or critical, counted by kind), and the trading-state changes.

The figures come from the bus, kept in bounded memory per period: equity sampled once a minute
(at most a week of points), fills booked per strategy at average cost (abidance/reports/metrics.py,
as the portfolio books them), incident counts by kind. After a restart a report covers the time
since the restart; the store (and the dashboard's report page) keeps the full record.
"""

from __future__ import annotations

import datetime as dt
import html
import zoneinfo
from collections import deque
from decimal import Decimal

from abidance.alerts.service import Attached
from abidance.core import topics
from abidance.core.component import Component
from abidance.core.events import Alert
from abidance.reports.fills import book_fill

NS = 1_000_000_000
WEEK_MINUTES = 7 * 24 * 60
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MAX_KINDS = 200


class Period:
    """What one report covers, accumulated from the bus."""

    def __init__(self, start_ns: int):
        self.start_ns = start_ns
        self.equity: deque[tuple[int, Decimal]] = deque(maxlen=WEEK_MINUTES + 1)
        self.books: dict[tuple[str, str], dict] = {}
        self.incidents: dict[str, int] = {}
        self.states: list[tuple[int, str, str]] = []
        self.fills = 0

    def add_equity(self, ts: int, equity: Decimal) -> None:
        if not self.equity or ts - self.equity[-1][0] >= 60 * NS:
            self.equity.append((ts, equity))

    def add_fill(self, f) -> None:
        key = (f.strategy_id or "none", f.symbol)
        b = self.books.get(key)
        if b is None:
            b = self.books[key] = {"qty": Decimal(0), "cost": Decimal(0), "realized": Decimal(0), "fees": Decimal(0)}
        book_fill(b, f.symbol, f.side, Decimal(f.quantity), Decimal(f.price), Decimal(f.commission or 0),
                  f.commission_asset or "")
        self.fills += 1

    def add_alert(self, a) -> None:
        if a.level in ("error", "critical") and a.source != "report":
            kind = f"{a.source}.{a.code}"
            if kind in self.incidents or len(self.incidents) < MAX_KINDS:
                self.incidents[kind] = self.incidents.get(kind, 0) + 1

    def per_strategy(self) -> dict[str, tuple[Decimal, Decimal, int]]:
        out: dict[str, list] = {}
        for (sid, _), b in self.books.items():
            o = out.setdefault(sid, [Decimal(0), Decimal(0)])
            o[0] += b["realized"]
            o[1] += b["fees"]
        return {k: (v[0], v[1]) for k, v in sorted(out.items())}


def svg_chart(points, width: int = 640, height: int = 200) -> str:
    if len(points) < 2:
        return "<p>Not enough equity points for a chart.</p>"
    t0, t1 = points[0][0], points[-1][0]
    lo, hi = min(p[1] for p in points), max(p[1] for p in points)
    span_t, span_v = max(t1 - t0, 1), (hi - lo) or Decimal(1)
    xy = " ".join(f"{(t - t0) / span_t * (width - 20) + 10:.1f},{float((hi - v) / span_v) * (height - 20) + 10:.1f}"
                  for t, v in points)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
            f'aria-label="equity"><rect width="100%" height="100%" fill="#fff" stroke="#ccc"/>'
            f'<polyline fill="none" stroke="#1f77b4" stroke-width="2" points="{xy}"/>'
            f'<text x="12" y="22" font-size="12">{html.escape(str(hi))}</text>'
            f'<text x="12" y="{height - 12}" font-size="12">{html.escape(str(lo))}</text></svg>')


def render(kind: str, node: str, quote: str, period: Period, end_ns: int) -> tuple[str, bytes]:
    """(the message text, the HTML attachment)."""
    def when(ns):
        return dt.datetime.fromtimestamp(ns / NS, dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")

    strategies = period.per_strategy()
    pnl = sum((v[0] for v in strategies.values()), Decimal(0))
    fees = sum((v[1] for v in strategies.values()), Decimal(0))
    eq = list(period.equity)
    change = (eq[-1][1] - eq[0][1]) if len(eq) >= 2 else Decimal(0)
    incidents = sum(period.incidents.values())
    text = (f"{kind.capitalize()} report {node}: {when(period.start_ns)} to {when(end_ns)}\n"
            f"equity {eq[-1][1] if eq else '?'} {quote} (change {change:+f}), realised PnL {pnl:f}, fees {fees:f}, "
            f"{period.fills} fills, {incidents} incidents")
    rows = "".join(f"<tr><td>{html.escape(s)}</td><td>{p:f}</td><td>{f:f}</td></tr>"
                   for s, (p, f) in strategies.items())
    inc = "".join(f"<tr><td>{html.escape(k)}</td><td>{n}</td></tr>"
                  for k, n in sorted(period.incidents.items(), key=lambda kv: -kv[1]))
    states = "".join(f"<li>{when(ts)}: {html.escape(s)} ({html.escape(r)})</li>" for ts, s, r in period.states[-50:])
    doc = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(text.splitlines()[0])}</title>"
           "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
           "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}</style></head><body>"
           f"<h1>{html.escape(text.splitlines()[0])}</h1><p>{html.escape(text.splitlines()[1])}</p>"
           f"<h2>Equity ({html.escape(quote)})</h2>{svg_chart(eq)}"
           f"<h2>PnL per strategy ({html.escape(quote)})</h2><table><tr><th>strategy</th><th>realised PnL</th>"
           f"<th>fees</th></tr>{rows or '<tr><td colspan=3>no fills</td></tr>'}</table>"
           f"<h2>Incidents</h2><table><tr><th>kind</th><th>count</th></tr>"
           f"{inc or '<tr><td colspan=2>none</td></tr>'}</table>"
           f"<h2>Trading state</h2><ul>{states or '<li>no change</li>'}</ul></body></html>")
    return text, doc.encode()


def next_time(now_ns: int, at: str, tz: str, weekday: str | None = None) -> int:
    """The next local `at` ('HH:MM') after now (on `weekday` when given), in ns."""
    zone = zoneinfo.ZoneInfo(tz)
    now = dt.datetime.fromtimestamp(now_ns / NS, zone)
    hour, minute = (int(x) for x in at.split(":"))
    day = now.date()
    for _ in range(9):
        t = dt.datetime.combine(day, dt.time(hour, minute), zone)
        if t > now and (weekday is None or WEEKDAYS[t.weekday()] == weekday):
            return int(t.timestamp() * NS)
        day += dt.timedelta(days=1)
    raise AssertionError("unreachable")


class ReportScheduler(Component):
    def __init__(self, bus, clock, settings, node: str, quote: str):
        super().__init__("ReportScheduler", bus, clock)
        self.settings = settings
        self.node = node
        self.quote = quote
        now = clock.time_ns()
        self.periods: dict[str, Period] = {}
        if settings.daily_report:
            self.periods["daily"] = Period(now)
        if settings.weekly_report:
            self.periods["weekly"] = Period(now)
        self._timers = []
        self._subs = ((topics.EQUITY, self.handle_equity), (topics.FILLS, self.handle_fill),
                      (topics.ALERTS, self.handle_alert), (topics.TRADING_STATE, self.handle_state))
        self.sent: list[str] = []

    def on_start(self) -> None:
        if not self.periods:
            return
        for topic, handler in self._subs:
            self.bus.subscribe(topic, handler)
        for kind in self.periods:
            self._schedule(kind)

    def on_stop(self) -> None:
        for t in self._timers:
            t.cancel()
        for topic, handler in self._subs:
            self.bus.unsubscribe(topic, handler)

    def _schedule(self, kind: str) -> None:
        s = self.settings
        at = next_time(self.clock.time_ns(), s.report_time, s.timezone, s.report_weekday if kind == "weekly" else None)
        self._timers.append(self.clock.call_at(at, lambda now, k=kind: self.send(k, now)))

    def handle_equity(self, p) -> None:
        for period in self.periods.values():
            period.add_equity(p.ts_event, p.equity)

    def handle_fill(self, f) -> None:
        for period in self.periods.values():
            period.add_fill(f)

    def handle_alert(self, a) -> None:
        for period in self.periods.values():
            period.add_alert(a)

    def handle_state(self, ev) -> None:
        for period in self.periods.values():
            if len(period.states) < 1000:
                period.states.append((ev.ts_event, ev.state, ev.reason))

    def send(self, kind: str, now: int) -> None:
        period = self.periods[kind]
        text, doc = render(kind, self.node, self.quote, period, now)
        fresh = Period(now)
        if period.equity:
            fresh.equity.append(period.equity[-1])       # the next chart starts where this one ended
        self.periods[kind] = fresh
        day = dt.datetime.fromtimestamp(now / NS, dt.timezone.utc).strftime("%Y-%m-%d")
        self.sent.append(kind)
        self.bus.publish(topics.ALERTS, Attached(Alert("info", "report", kind, text, now),
                                                 f"{kind}-report-{day}.html", "text/html", doc))
        self._schedule(kind)
