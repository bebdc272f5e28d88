"""User data over the WebSocket API: subscription, order and balance events, reconciliation.

Binance switched the listenKey flow off on 2026-02-20; user data now arrives on a WebSocket
API connection that subscribed to it, each event wrapped as
`{"subscriptionId": N, "event": {...}}`. Two ways to subscribe (binance.user_data_auth):
- "signature": `userDataStream.subscribe.signature` with apiKey, timestamp and a signature
  (HMAC, RSA or Ed25519 keys);
- "logon": `session.logon` (Ed25519 keys only), then `userDataStream.subscribe`.

A subscription lives as long as its connection. After every connect (the first included)
it is made again with a fresh timestamp, and then open orders and balances are fetched by
REST and published as a Reconciliation, so an event missed while disconnected is never
silently lost. `eventStreamTerminated` (the subscription ended without the connection)
does the same. Authentication failures (-2014, -2015, -1022) are not retried blindly: they
raise a critical alert and are retried only at the slowest backoff, since only an operator
can fix a key.
"""

from __future__ import annotations

import asyncio
import logging
import time

from abidance.core import topics
from abidance.core.bus import MessageBus
from abidance.core.events import Alert, Reconciliation
from abidance.exchange.binance import user_events
from abidance.exchange.binance.backoff import Backoff
from abidance.exchange.binance.config import BinanceConfig
from abidance.exchange.binance.errors import BinanceApiError
from abidance.exchange.binance.ws_api import NONE, SIGNED, WsApiConnection

log = logging.getLogger("abidance.binance.user")

AUTH_ERRORS = {-2014, -2015, -1022, -1002}
SESSION_WEIGHT = 2


class UserDataStream:
    def __init__(self, config: BinanceConfig, rest, bus: MessageBus, ws_api: WsApiConnection,
                 clock_ns=time.time_ns):
        self.config = config
        self.rest = rest
        self.bus = bus
        self.ws_api = ws_api
        self.clock_ns = clock_ns
        self.subscription_id: int | None = None
        self.subscriptions = 0          # successful subscriptions (one per connect, plus re-subscriptions)
        self.events = 0
        self.dropped = 0
        self.reconciliations = 0
        self.terminations = 0
        self.last_error = ""
        self.last_exception: BaseException | None = None     # the last failed subscription's, for start-up
        self.subscribed = asyncio.Event()
        self._connects = 0
        self._stopping = False
        self._task: asyncio.Task | None = None
        self._reconcile_task: asyncio.Task | None = None
        self._backoff = Backoff(config.reconnect_initial_s, config.reconnect_max_s, config.reconnect_jitter)
        ws_api.on_connected.append(self._on_connected)
        ws_api.on_event = self.handle_event

    # ---- lifecycle -------------------------------------------------------------------

    async def start(self, timeout: float | None = None) -> None:
        """Start the connection (if not yet) and wait until user data is subscribed."""
        self.ws_api.start()
        if self.ws_api.is_connected and self._connects == 0:
            # Connected before we were listening (orders share the connection): subscribe now.
            await self._on_connected()
        await asyncio.wait_for(self.subscribed.wait(), timeout or 3 * self.config.request_timeout_s)

    async def stop(self) -> None:
        self._stopping = True       # the unsubscription below ends in eventStreamTerminated: expected now
        for task in (self._task, self._reconcile_task):
            if task is not None:
                task.cancel()
        if self.subscription_id is not None and self.ws_api.is_connected:
            try:
                await self.ws_api.request("userDataStream.unsubscribe", {"subscriptionId": self.subscription_id},
                                          weight=SESSION_WEIGHT, timeout=2.0)
            except (BinanceApiError, asyncio.TimeoutError) as exc:
                log.info("unsubscribing user data failed (closing anyway): %s", exc)
        self.subscription_id = None

    async def _on_connected(self) -> None:
        self._connects += 1
        self.subscribed.clear()
        self.subscription_id = None
        self._resubscribe("start" if self._connects == 1 else "reconnect")

    def _resubscribe(self, reason: str) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._task = asyncio.get_running_loop().create_task(self._subscribe(reason), name="user-data-subscribe")

    # ---- subscription ----------------------------------------------------------------

    async def _subscribe(self, reason: str) -> None:
        """Subscribe (retrying with backoff while the connection holds), then reconcile."""
        while True:
            try:
                self.subscription_id = await self._request_subscription()
                break
            except asyncio.CancelledError:
                raise
            except (BinanceApiError, asyncio.TimeoutError) as exc:
                code = getattr(exc, "code", None)
                self.last_error = str(exc)
                self.last_exception = exc
                if not self.ws_api.is_connected:
                    return      # the next connect subscribes again
                delay = self._backoff.next_delay()
                if code in AUTH_ERRORS:
                    delay = self.config.reconnect_max_s
                    self._alert("critical", "user_data_auth_failed",
                                f"the user-data subscription was refused ({code}: {getattr(exc, 'msg', exc)}); "
                                "check the API key, its permissions and IP whitelist")
                log.warning("user-data subscription (%s) failed: %s; retry in %.1fs", reason, exc, delay)
                await asyncio.sleep(delay)
        self._backoff.reset()
        self.last_exception = None
        self.subscriptions += 1
        self.subscribed.set()
        log.info("user data subscribed (%s, subscriptionId %s, %s)", reason, self.subscription_id,
                 self.config.user_data_auth)
        self._schedule_reconcile(reason)

    async def _request_subscription(self) -> int:
        api = self.ws_api
        if self.config.user_data_auth == "logon":
            await api.request("session.logon", {}, security=SIGNED, weight=SESSION_WEIGHT)
            result = await api.request("userDataStream.subscribe", None, security=NONE, weight=SESSION_WEIGHT)
        else:
            result = await api.request("userDataStream.subscribe.signature", {}, security=SIGNED,
                                       weight=SESSION_WEIGHT)
        sid = result.get("subscriptionId") if isinstance(result, dict) else None
        if type(sid) is not int:
            raise BinanceApiError(0, f"subscription answered without a subscriptionId: {result!r}", 200,
                                  method="WS", path="userDataStream.subscribe")
        return sid

    # ---- reconciliation --------------------------------------------------------------

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

    # ---- events ----------------------------------------------------------------------

    def handle_event(self, data: dict, ts_init: int) -> None:
        """One user-data event, already out of its {"subscriptionId", "event"} envelope."""
        try:
            kind = data.get("e")
            if kind == "executionReport":
                self.bus.publish(topics.ORDER_UPDATES, user_events.order_update(data, ts_init))
            elif kind == "outboundAccountPosition":
                self.bus.publish(topics.BALANCES, user_events.balances_update(data, ts_init))
            elif kind == "balanceUpdate":
                self.bus.publish(topics.BALANCES, user_events.balance_delta(data, ts_init))
            elif kind == "listStatus":
                self.bus.publish(topics.ORDER_LIST_UPDATES, user_events.order_list_update(data, ts_init))
            elif kind == "eventStreamTerminated":
                if self._stopping:
                    return
                self.terminations += 1
                self.subscribed.clear()
                self.subscription_id = None
                log.warning("user-data subscription terminated by the server: subscribing again")
                self._alert("warning", "user_data_terminated", "user-data subscription ended "
                            "(eventStreamTerminated); subscribed again and reconciled")
                self._resubscribe("stream_terminated")
            else:
                return    # e.g. externalLockUpdate: not used by a spot bot
            self.events += 1
        except user_events.UserEventError as exc:
            self.dropped += 1
            self.last_error = str(exc)
            log.error("user event dropped: %s", exc)

    def _alert(self, level: str, code: str, message: str) -> None:
        self.bus.publish(topics.ALERTS, Alert(level, "binance.user", code, message, self.clock_ns()))
