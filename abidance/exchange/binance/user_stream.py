"""The user-data stream: listenKey lifecycle, order and balance events, reconciliation.

A listenKey is created by REST and kept alive with a PUT every `listen_key_keepalive_s`
(Binance expires it after 60 minutes without). On every (re)connect, and when the key
expires, open orders and balances are fetched by REST and published as a
Reconciliation, so an event missed while disconnected is never silently lost.
"""

from __future__ import annotations

import asyncio
import logging
import time

import orjson

from abidance.core import topics
from abidance.core.bus import MessageBus
from abidance.core.events import Alert, Reconciliation
from abidance.exchange.binance import user_events
from abidance.exchange.binance.config import BinanceConfig
from abidance.exchange.binance.streams import StreamConnection

log = logging.getLogger("abidance.binance.user")


class UserDataStream:
    def __init__(self, config: BinanceConfig, rest, bus: MessageBus, clock_ns=time.time_ns):
        self.config = config
        self.rest = rest
        self.bus = bus
        self.clock_ns = clock_ns
        self.conn: StreamConnection | None = None
        self.listen_key: str | None = None
        self.events = 0
        self.dropped = 0
        self.reconciliations = 0
        self.last_error = ""
        self._keepalive: asyncio.Task | None = None
        self._reconcile_task: asyncio.Task | None = None
        self._renewing = False

    async def start(self) -> None:
        await self._open("start")
        self._keepalive = asyncio.get_running_loop().create_task(self._keep_alive(), name="listen-key-keepalive")

    async def stop(self) -> None:
        for task in (self._keepalive, self._reconcile_task):
            if task is not None:
                task.cancel()
        if self.conn is not None:
            await self.conn.stop()
        if self.listen_key is not None:
            try:
                await self.rest.listen_key_close(self.listen_key)
            except Exception as exc:  # noqa: BLE001 - closing is best effort
                log.info("closing the listen key failed: %s", exc)

    async def _open(self, reason: str) -> None:
        self.listen_key = await self.rest.listen_key_create()
        first = True

        def on_state(conn, state, why):
            nonlocal first
            if state == "connected":
                # Every connect (the first included) is followed by a reconciliation.
                self._schedule_reconcile("start" if first and reason == "start" else "reconnect")
                first = False

        self.conn = StreamConnection(self.config, self._on_frame, on_state, self.clock_ns,
                                     url_path=f"/ws/{self.listen_key}", check_stale=False)
        self.conn.start()

    async def _renew(self, reason: str) -> None:
        if self._renewing:
            return
        self._renewing = True
        try:
            old = self.conn
            if old is not None:
                await old.stop()
            await self._open(reason)
        finally:
            self._renewing = False

    async def _keep_alive(self) -> None:
        while True:
            await asyncio.sleep(self.config.listen_key_keepalive_s)
            try:
                await self.rest.listen_key_keepalive(self.listen_key)
            except Exception as exc:  # noqa: BLE001 - e.g. -1125 the key does not exist: get a new one
                log.warning("listen key keepalive failed (%s); opening a new user stream", exc)
                await self._renew("keepalive_failed")

    def _schedule_reconcile(self, reason: str) -> None:
        if self._reconcile_task is not None and not self._reconcile_task.done():
            return
        self._reconcile_task = asyncio.get_running_loop().create_task(self.reconcile(reason))

    async def reconcile(self, reason: str) -> Reconciliation | None:
        """Fetch open orders and balances by REST and publish them (retried until it works)."""
        delay = 0.5
        while True:
            try:
                orders = await self.rest.open_orders()
                account = await self.rest.account()
                ts = self.clock_ns()
                rec = Reconciliation(tuple(user_events.order_from_rest(o, ts) for o in orders),
                                     user_events.balances_from_account(account), reason, ts)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - keep trying: trading without it is unsafe
                log.warning("reconciliation (%s) failed: %s; retry in %.1fs", reason, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            self.reconciliations += 1
            log.info("reconciled (%s): %d open orders, %d balances", reason, len(rec.open_orders), len(rec.balances))
            self.bus.publish(topics.RECONCILIATION, rec)
            return rec

    def _on_frame(self, conn, payload: bytes, ts_init: int) -> None:
        try:
            msg = orjson.loads(payload)
            data = msg.get("data", msg) if isinstance(msg, dict) else None
            if not isinstance(data, dict):
                raise user_events.UserEventError(f"user event is not an object: {payload[:60]!r}")
            kind = data.get("e")
            if kind == "executionReport":
                self.bus.publish(topics.ORDER_UPDATES, user_events.order_update(data, ts_init))
            elif kind == "outboundAccountPosition":
                self.bus.publish(topics.BALANCES, user_events.balances_update(data, ts_init))
            elif kind == "balanceUpdate":
                self.bus.publish(topics.BALANCES, user_events.balance_delta(data, ts_init))
            elif kind == "listenKeyExpired":
                log.warning("listen key expired: opening a new user stream")
                self.bus.publish(topics.ALERTS, Alert("warning", "binance.user", "listen_key_expired",
                                                      "user stream listen key expired; renewed", ts_init))
                asyncio.get_running_loop().create_task(self._renew("listen_key_expired"))
            else:
                return    # other account events (e.g. externalLockUpdate) are not used yet
            self.events += 1
        except (orjson.JSONDecodeError, user_events.UserEventError) as exc:
            self.dropped += 1
            self.last_error = str(exc)
            log.error("user event dropped: %s", exc)
