"""Orders over the WebSocket API (binance.order_transport = "ws_api"), with REST as the fallback.

The execution engine's client interface (prepare / submit / cancel / query / open_orders),
like BinanceExecutionClient for REST. `prepare` builds and signs the whole request frame
when the order is decided, so sending it is one socket write; its request id is the client
order id (unique per order; a resubmit happens only after the first attempt has ended).

The same safety as REST: an order whose outcome is unknown (the connection dropped before
the answer, 5xx, -1007, a timeout) is looked up by client order id before anything is
resent, and resent with the same id only when the exchange says it does not exist
(safe_orders.py). A -1021 re-measures the clock offset and re-signs once. While the
connection is down, requests go over REST instead of failing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from abidance.exchange.binance.order_lists import NativeExits
from abidance.exchange.binance.errors import (BinanceApiError, OrderStatusUnknown, TimestampOutsideRecvWindow,
                                              TransportError)
from abidance.exchange.binance.safe_orders import place_safely
from abidance.exchange.binance.ws_api import SIGNED, WsApiConnection
from abidance.exchange.binance.rest_orders import BinanceExecutionClient

log = logging.getLogger("abidance.binance.ws_orders")

# Weights of the WebSocket API methods used here (web-socket-api.md).
PLACE_WEIGHT, CANCEL_WEIGHT, STATUS_WEIGHT = 1, 1, 4
OPEN_ORDERS_WEIGHT = 80


@dataclass
class WsOrderCounters:
    orders: int = 0                 # order.place requests sent (the first attempt of each order)
    rest_fallbacks: int = 0         # requests sent over REST because the connection was down
    timestamp_retries: int = 0
    order_status_unknown: int = 0
    order_queries: int = 0
    orders_found: int = 0
    order_resubmits: int = 0


class WsApiExecutionClient(NativeExits):
    def __init__(self, api: WsApiConnection, rest, instruments: dict):
        self.api = api
        self.rest = rest
        self.instruments = instruments
        self.via_rest = BinanceExecutionClient(rest, instruments)
        self.counters = WsOrderCounters()

    # ---- the request -------------------------------------------------------------------

    def order_params(self, order) -> dict[str, str]:
        """The exact strings Binance receives for this order."""
        f = self.instruments[order.symbol].filters
        params = {"symbol": order.symbol, "side": order.side, "type": order.order_type,
                  "quantity": f.qty_fp.to_str(order.quantity), "newClientOrderId": order.client_order_id,
                  "newOrderRespType": "FULL"}
        if order.order_type != "MARKET":
            params["price"] = f.price_fp.to_str(order.price)
            if order.time_in_force:
                params["timeInForce"] = order.time_in_force
        return params

    def prepare(self, order) -> bytes:
        """The signed order.place frame, built when the order is decided: sending is all that is left."""
        return self.api.frame(order.client_order_id, "order.place", self.api.signed(self.order_params(order)))

    # ---- the engine's calls ----------------------------------------------------------------

    async def submit(self, order) -> dict:
        cid = order.client_order_id
        self.counters.orders += 1

        async def send(first: bool) -> dict:
            try:
                if first and isinstance(order.request, bytes):
                    return await self.api.send_prepared(cid, order.request, "order.place", weight=PLACE_WEIGHT,
                                                        is_order=True)
                return await self._place_signed(order)
            except TimestampOutsideRecvWindow:
                # Refused before execution: one re-signed retry is safe.
                self.counters.timestamp_retries += 1
                await self.rest.sync_time()
                return await self._place_signed(order)
            except BinanceApiError as exc:
                if exc.status_unknown:
                    raise OrderStatusUnknown(exc.code, exc.msg, exc.http_status, client_order_id=cid,
                                             method="WS", path="order.place") from exc
                raise

        if not self.api.is_connected:
            return await self._over_rest(self.rest.new_order(**self.via_rest.request_params(order)))
        try:
            return await place_safely(cid, order.symbol, send, lambda: self.query(order),
                                      attempts=self.rest.config.order_retry_attempts, counters=self.counters,
                                      query_delay_s=self.rest.unknown_query_delay_s, where="WS order.place")
        except TransportError as exc:
            if exc.sent:
                raise
            # The connection went down between the check and the send: nothing went out.
            return await self._over_rest(self.rest.new_order(**self.via_rest.request_params(order)))

    async def _place_signed(self, order) -> dict:
        return await self.api.request("order.place", self.order_params(order), security=SIGNED,
                                      weight=PLACE_WEIGHT, is_order=True)

    async def cancel(self, order) -> dict:
        if not self.api.is_connected:
            return await self._over_rest(self.via_rest.cancel(order))
        return await self.api.request("order.cancel", {"symbol": order.symbol,
                                                       "origClientOrderId": order.client_order_id},
                                      security=SIGNED, weight=CANCEL_WEIGHT)

    async def query(self, order) -> dict:
        if not self.api.is_connected:
            return await self._over_rest(self.via_rest.query(order))
        return await self.api.request("order.status", {"symbol": order.symbol,
                                                       "origClientOrderId": order.client_order_id},
                                      security=SIGNED, weight=STATUS_WEIGHT)

    async def open_orders(self) -> list[dict]:
        if not self.api.is_connected:
            return await self._over_rest(self.via_rest.open_orders())
        return await self.api.request("openOrders.status", {}, security=SIGNED, weight=OPEN_ORDERS_WEIGHT)

    # ---- exchange-native exits and order lists ------------------------------------------------

    async def place_exit(self, request) -> dict:
        """An order_lists.ExitRequest (one order or an OCO), with the same lookup-before-resend."""
        if not self.api.is_connected:
            return await self._over_rest(self.rest.place_exit(request))
        cid = request.list_client_id or request.client_ids[0]
        lookup = (lambda: self.query_list(cid)) if request.kind == "oco" else \
            (lambda: self.api.request("order.status", {"symbol": request.symbol, "origClientOrderId": cid},
                                      security=SIGNED, weight=STATUS_WEIGHT))

        async def send(first: bool) -> dict:
            try:
                return await self.api.request(request.method, request.params, security=SIGNED, weight=PLACE_WEIGHT,
                                              is_order=True)
            except TimestampOutsideRecvWindow:
                self.counters.timestamp_retries += 1
                await self.rest.sync_time()
                return await self.api.request(request.method, request.params, security=SIGNED,
                                              weight=PLACE_WEIGHT, is_order=True)
            except BinanceApiError as exc:
                if exc.status_unknown:
                    raise OrderStatusUnknown(exc.code, exc.msg, exc.http_status, client_order_id=cid,
                                             method="WS", path=request.method) from exc
                raise

        return await place_safely(cid, request.symbol, send, lookup, attempts=self.rest.config.order_retry_attempts,
                                  counters=self.counters, query_delay_s=self.rest.unknown_query_delay_s,
                                  where="WS " + request.method)

    async def cancel_list(self, symbol: str, list_client_id: str) -> dict:
        if not self.api.is_connected:
            return await self._over_rest(self.rest.cancel_order_list(symbol, list_client_order_id=list_client_id))
        return await self.api.request("orderList.cancel", {"symbol": symbol, "listClientOrderId": list_client_id},
                                      security=SIGNED, weight=CANCEL_WEIGHT)

    async def cancel_exit(self, request) -> dict:
        """Cancel a native exit (order_lists.ExitRequest): the whole list, or the one order."""
        if request.kind == "oco":
            return await self.cancel_list(request.symbol, request.list_client_id)
        cid = request.client_ids[0]
        if not self.api.is_connected:
            return await self._over_rest(self.rest.cancel_order(request.symbol, client_order_id=cid))
        return await self.api.request("order.cancel", {"symbol": request.symbol, "origClientOrderId": cid},
                                      security=SIGNED, weight=CANCEL_WEIGHT)

    async def query_list(self, list_client_id: str) -> dict:
        if not self.api.is_connected:
            return await self._over_rest(self.rest.query_order_list(list_client_id))
        return await self.api.request("orderList.status", {"origClientOrderId": list_client_id}, security=SIGNED,
                                      weight=STATUS_WEIGHT)

    async def _over_rest(self, call):
        self.counters.rest_fallbacks += 1
        log.info("WebSocket API down: request sent over REST")
        return await call
