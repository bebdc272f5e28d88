"""AlertService: alerts from the bus to people, sent off the event loop.

On the node's loop it only appends each Alert on topics.ALERTS to a bounded queue (overflow is
counted and reported, never blocks) and wakes the delivery thread. The delivery thread runs an
asyncio loop of its own: a dispatcher hands each alert to every channel's `Outbox` that takes
it (abidance/alerts/outbox.py: filter, grouping, rate limit, quiet hours) and one worker per
channel sends what its outbox releases, retrying with exponential backoff (a 429's
`retry_after` obeyed). A channel failing `unreachable_after` times in a row is reported as a
critical Alert published on the bus: the store records it (the dashboard shows it) and every
other channel sends it; its recovery is reported the same way. Trading never waits on any of it.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections import deque
from dataclasses import dataclass

import aiohttp

from abidance.alerts.clients import CLIENTS, NEEDS_SECRET, ChannelDown, Refused, RetryLater
from abidance.alerts.outbox import NS, Message, Outbox
from abidance.alerts.secrets import load_secret
from abidance.core import topics
from abidance.core.component import Component
from abidance.core.events import Alert

log = logging.getLogger("abidance.alerts")

SOURCE = "alerts"


@dataclass(frozen=True)
class Attached:
    """An alert with a file (a scheduled report): published on topics.ALERTS like any alert."""

    alert: Alert
    filename: str
    content_type: str
    data: bytes

    def __getattr__(self, name):        # level, source, code, message, ts_event: the alert's
        return getattr(self.alert, name)


class ChannelWorker:
    """One channel on the delivery loop: its outbox, its client, its retry state and counters."""

    def __init__(self, service: "AlertService", cfg, client, now_ns: int):
        a = service.settings
        self.service = service
        self.cfg = cfg
        self.name = cfg.name
        self.client = client
        self.outbox = Outbox(cfg.name, min_level=cfg.min_level, kinds=cfg.kinds, rate_per_minute=cfg.rate_per_minute,
                             burst=cfg.burst, group_window_s=a.group_window_s, quiet_hours=cfg.quiet_hours,
                             timezone=a.timezone, max_groups=a.max_groups, now_ns=now_ns)
        self.wake = asyncio.Event()
        self.failures = 0
        self.unreachable = False
        self.delivered_messages = 0
        self.delivered_alerts = 0
        self.refused = 0
        self.retries = 0
        self.last_error = ""
        self.latencies: deque[float] = deque(maxlen=1000)       # s from the newest alert's time to delivery

    async def run(self) -> None:
        svc = self.service
        while True:
            now = svc.now_ns()
            msg = self.outbox.pop(now)
            if msg is None:
                wait = self.outbox.wait_ns(now)
                if svc.stopping and (wait is None or svc.deadline_passed()):
                    return
                try:
                    await asyncio.wait_for(self.wake.wait(), None if wait is None else max(wait / NS, 0.001))
                except asyncio.TimeoutError:
                    pass
                self.wake.clear()
                continue
            await self.deliver(msg)

    async def deliver(self, msg: Message) -> None:
        svc, a = self.service, self.service.settings
        text = msg.text(svc.node)
        while True:
            try:
                await self.client.send(msg, text)
            except RetryLater as exc:
                self.retries += 1
                self.last_error = str(exc)
                log.warning("alert channel %s: rate limited, retrying in %.1fs", self.name, exc.retry_after)
                await self._pause(exc.retry_after)
            except Refused as exc:
                self.refused += 1
                self.last_error = str(exc)
                log.error("alert channel %s refused message %s (%s ×%d): %s", self.name, msg.id, msg.kind, msg.count,
                          exc)
                svc.report(self, "error", "channel_refused", f"alert channel {self.name} refused a message "
                           f"({msg.kind} ×{msg.count}): {exc}")
                return
            except Exception as exc:  # noqa: BLE001 - ChannelDown, or a client bug: keep the message, retry
                self.failures += 1
                self.retries += 1
                self.last_error = str(exc) if isinstance(exc, ChannelDown) else f"{type(exc).__name__}"
                if not isinstance(exc, ChannelDown):
                    log.exception("alert channel %s: unexpected error", self.name)
                delay = min(a.retry_max_s, a.retry_initial_s * 2 ** min(self.failures - 1, 30))
                delay *= 1 + random.uniform(-0.2, 0.2)
                log.warning("alert channel %s: send failed (%d in a row): %s; retrying in %.1fs", self.name,
                            self.failures, self.last_error, delay)
                if self.failures >= a.unreachable_after and not self.unreachable:
                    self.unreachable = True
                    svc.report(self, "critical", "channel_unreachable",
                               f"alert channel {self.name} ({self.cfg.kind}) is unreachable after {self.failures} "
                               f"attempts: {self.last_error}; its alerts are held and retried")
                if svc.stopping and svc.deadline_passed():
                    self.outbox.restore(msg, svc.now_ns())
                    return
                await self._pause(delay)
            else:
                self.delivered_messages += 1
                self.delivered_alerts += msg.count
                self.latencies.append(max(0.0, (svc.now_ns() - msg.last_ts) / NS))
                if self.unreachable:
                    self.unreachable = False
                    svc.report(self, "warning", "channel_recovered",
                               f"alert channel {self.name} ({self.cfg.kind}) is reachable again after "
                               f"{self.failures} failed attempts")
                self.failures = 0
                return

    async def _pause(self, seconds: float) -> None:
        svc = self.service
        if svc.stopping:
            seconds = min(seconds, max(0.0, svc.deadline - time.monotonic()))
        await asyncio.sleep(seconds)

    def stats(self) -> dict:
        ob = self.outbox
        return {"kind": self.cfg.kind, "accepted": ob.accepted, "delivered_alerts": self.delivered_alerts,
                "delivered_messages": self.delivered_messages, "waiting": ob.waiting, "refused": self.refused,
                "retries": self.retries, "unreachable": self.unreachable, "folded": ob.folded}


class AlertService(Component):
    def __init__(self, bus, clock, settings, node: str = "", env=None, now_ns=time.time_ns):
        super().__init__("AlertService", bus, clock)
        self.settings = settings
        self.node = node
        self.now_ns = now_ns
        self.channels = [c for c in settings.channels]
        # Fail at start, naming the variable, when a channel's secret is missing or unsafe.
        self.secrets = {c.name: load_secret(c.name, NEEDS_SECRET[c.kind] or (c.kind == "email" and bool(c.smtp_user)),
                                            env) for c in self.channels}
        self.workers: list[ChannelWorker] = []
        self._queue: deque = deque()
        self._lock = threading.Lock()
        self._own: dict[int, str] = {}          # id(alert) of our own reports -> the channel they are about
        self._wake_pending = False
        self._thread: threading.Thread | None = None
        self._dloop: asyncio.AbstractEventLoop | None = None
        self._inbox: asyncio.Event | None = None
        self._ready = threading.Event()
        self._node_loop = None
        self.received = 0
        self.overflow = 0
        self.stopping = False
        self.deadline = 0.0
        self.start_error: BaseException | None = None

    # ---- on the node's loop ---------------------------------------------------------------

    def on_start(self) -> None:
        self._node_loop = asyncio.get_running_loop()
        if self.settings.enabled and self.channels:
            self._thread = threading.Thread(target=self._run_thread, name="alert-delivery", daemon=True)
            self._thread.start()
            self._ready.wait(10)
            if self.start_error is not None:
                raise self.start_error
        self.bus.subscribe(topics.ALERTS, self.handle_alert)

    def on_stop(self) -> None:
        self.bus.unsubscribe(topics.ALERTS, self.handle_alert)
        self.close(5.0)

    def handle_alert(self, alert) -> None:
        """Queue an alert for delivery: O(1), never blocks, never raises."""
        if self._thread is None:
            return
        with self._lock:
            if len(self._queue) >= self.settings.queue_size:
                self.overflow += 1
                return
            self._queue.append((alert, self._own.pop(id(alert), None)))
            self.received += 1
            if self._wake_pending:
                return
            self._wake_pending = True
        try:
            self._dloop.call_soon_threadsafe(self._inbox.set)
        except RuntimeError:            # the delivery loop is closing: the alert stays recorded in the store
            pass

    def report(self, worker: ChannelWorker | None, level: str, code: str, message: str) -> None:
        """From the delivery thread: an Alert about delivery itself, published on the node's bus."""
        alert = Alert(level, SOURCE, code, message, self.now_ns())
        if worker is not None:
            self._own[id(alert)] = worker.name       # every channel but this one sends it
        try:
            self._node_loop.call_soon_threadsafe(self.bus.publish, topics.ALERTS, alert)
        except RuntimeError:        # the node's loop is closed (shutting down)
            log.warning("alert not published (loop closed): %s", message)

    def close(self, timeout: float) -> None:
        """Deliver what is waiting (within `timeout`), then stop the thread."""
        if self._thread is None or self._dloop is None:
            return
        self.deadline = time.monotonic() + timeout
        self.stopping = True
        try:
            self._dloop.call_soon_threadsafe(self._stop_workers)
        except RuntimeError:
            pass
        self._thread.join(timeout + 2)
        left = {w.name: w.outbox.waiting for w in self.workers if w.outbox.waiting}
        if left:
            log.warning("alerts not delivered at stop: %s", left)
        self._thread = None

    def deadline_passed(self) -> bool:
        return time.monotonic() >= self.deadline

    def stats(self) -> dict:
        return {"received": self.received, "overflow": self.overflow,
                "channels": {w.name: w.stats() for w in self.workers}}

    # ---- the delivery thread ------------------------------------------------------------

    def _run_thread(self) -> None:
        loop = asyncio.new_event_loop()
        self._dloop = loop
        try:
            loop.run_until_complete(self._main())
        except BaseException as exc:  # noqa: BLE001 - reported to on_start or logged
            if not self._ready.is_set():
                self.start_error = exc
                self._ready.set()
            else:
                log.exception("alert delivery thread failed")
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _main(self) -> None:
        self._inbox = asyncio.Event()
        async with aiohttp.ClientSession() as session:
            now = self.now_ns()
            for cfg in self.channels:
                client = CLIENTS[cfg.kind](cfg, self.secrets[cfg.name], session, self.node)
                self.workers.append(ChannelWorker(self, cfg, client, now))
            tasks = [asyncio.create_task(w.run(), name=f"alerts-{w.name}") for w in self.workers]
            self._ready.set()
            dispatcher = asyncio.create_task(self._dispatch(), name="alerts-dispatch")
            await asyncio.gather(*tasks)
            dispatcher.cancel()

    def _stop_workers(self) -> None:
        self._inbox.set()
        for w in self.workers:
            w.wake.set()

    async def _dispatch(self) -> None:
        reported_overflow = 0
        while True:
            await self._inbox.wait()
            self._inbox.clear()
            with self._lock:
                batch = list(self._queue)
                self._queue.clear()
                self._wake_pending = False
                overflow = self.overflow
            now = self.now_ns()
            if overflow > reported_overflow:
                batch.append((Alert("error", SOURCE, "queue_overflow", f"{overflow - reported_overflow} alerts did "
                                    "not fit in the delivery queue (alerts.queue_size) and were only recorded",
                                    now), None))
                reported_overflow = overflow
            for alert, about in batch:
                attachment = (alert.filename, alert.content_type, alert.data) if isinstance(alert, Attached) else None
                for w in self.workers:
                    if w.name != about and w.outbox.accepts(alert):
                        w.outbox.add(alert, now, attachment)
                        w.wake.set()
