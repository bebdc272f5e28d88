"""The daily drift: at `alerts.report_time`, the last 24 hours replayed through the kernel and each
strategy's drift sent as an alert (kind `drift.daily`), with a warning (kind `drift.threshold`)
when it is larger than `alerts.drift_alert` either way (docs/drift.md).

The replay reads the store and runs a backtest: seconds of work, done on a worker thread so the
event loop never waits; the alerts are published back on the loop.
"""

from __future__ import annotations

import asyncio
import logging

from abidance.alerts.reports import next_time
from abidance.core import topics
from abidance.core.component import Component
from abidance.core.events import Alert
from abidance.drift.report import drift_report

log = logging.getLogger("abidance.drift.daily")

DAY_NS = 86_400_000_000_000


def drift_alerts(report, threshold, ts: int) -> list[Alert]:
    """One info alert with every strategy's figure; a warning per strategy beyond the threshold."""
    q = report.quote
    lines = [f"{sid}: live {d.live_pnl:.8f}, replay {d.replay_pnl:.8f}, drift {d.difference:.8f} {q}; largest: "
             + ", ".join(f"{k} {v:.8f}" for k, v in sorted(d.lines.items(), key=lambda kv: -abs(kv[1]))[:3] if v)
             for sid, d in sorted(report.strategies.items())]
    out = [Alert("info", "drift", "daily", "drift over the last 24 h (live minus replay): "
                 + ("; ".join(lines) if lines else "no orders, live or replayed"), ts)]
    for sid, d in sorted(report.strategies.items()):
        if threshold and abs(d.difference) > threshold:
            out.append(Alert("warning", "drift", "threshold", f"{sid}: live minus replay {d.difference:.8f} {q} over "
                             f"the last 24 h, beyond alerts.drift_alert {threshold}", ts))
    return out


class DailyDrift(Component):
    def __init__(self, bus, clock, settings, connect, database: str, instruments: dict):
        super().__init__("DailyDrift", bus, clock)
        self.settings = settings
        self.connect = connect
        self.database = database
        self.instruments = instruments
        self._timer = None
        self.task: asyncio.Task | None = None

    def on_start(self) -> None:
        self._schedule()

    def on_stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self.task is not None:
            self.task.cancel()

    def _schedule(self) -> None:
        s = self.settings
        self._timer = self.clock.call_at(next_time(self.clock.time_ns(), s.report_time, s.timezone), self.fire)

    def fire(self, now: int) -> None:
        self.task = asyncio.get_running_loop().create_task(self.run(now))
        self._schedule()

    async def run(self, now: int) -> list[Alert]:
        try:
            report = await asyncio.to_thread(lambda: drift_report(
                self.connect(), self.database, now - DAY_NS, now, instruments=self.instruments))
            alerts = drift_alerts(report, self.settings.drift_alert, now)
        except Exception as exc:  # noqa: BLE001 - a failed report is an alert, never a stop
            log.warning("daily drift failed: %s", exc)
            alerts = [Alert("error", "drift", "failed", f"daily drift report failed: {type(exc).__name__}: {exc}",
                            now)]
        for a in alerts:
            self.bus.publish(topics.ALERTS, a)
        return alerts
