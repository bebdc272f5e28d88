"""Orders over REST (binance.order_transport = "rest"): the execution engine's client.

The engine speaks ticks and steps; this turns them into Binance's exact strings, signs the
request when the order is decided (sending is all that is left) and, through NativeExits,
rests exits on the exchange (order_lists.py).
"""

from __future__ import annotations

from abidance.exchange.binance.order_lists import NativeExits
from abidance.execution.orders import Order


class BinanceExecutionClient(NativeExits):
    def __init__(self, rest, instruments: dict):
        self.rest = rest
        self.instruments = instruments

    def request_params(self, order: Order) -> dict:
        """The exact strings Binance receives for this order."""
        inst = self.instruments[order.symbol]
        params = {"symbol": order.symbol, "side": order.side, "order_type": order.order_type,
                  "quantity": inst.filters.qty_fp.to_str(order.quantity), "client_order_id": order.client_order_id}
        if order.order_type != "MARKET":
            params["price"] = inst.filters.price_fp.to_str(order.price)
            params["time_in_force"] = order.time_in_force or None
        return params

    def prepare(self, order: Order) -> str:
        """The signed query string, built when the order is decided: sending is all that is left.

        Every value here is URL-safe by construction (symbol, enums, decimals, our client id),
        so the query is joined directly; new_order checks it belongs to the order."""
        f = self.instruments[order.symbol].filters
        query = (f"symbol={order.symbol}&side={order.side}&type={order.order_type}"
                 f"&quantity={f.qty_fp.to_str(order.quantity)}")
        if order.order_type != "MARKET":
            query += f"&price={f.price_fp.to_str(order.price)}"
            if order.time_in_force:
                query += f"&timeInForce={order.time_in_force}"
        return self.rest.sign_query(f"{query}&newClientOrderId={order.client_order_id}&newOrderRespType=FULL")

    async def submit(self, order: Order) -> dict:
        return await self.rest.new_order(**self.request_params(order), presigned=order.request)

    async def cancel(self, order: Order) -> dict:
        return await self.rest.cancel_order(order.symbol, client_order_id=order.client_order_id)

    async def query(self, order: Order) -> dict:
        return await self.rest.query_order(order.symbol, client_order_id=order.client_order_id)

    async def open_orders(self) -> list[dict]:
        return await self.rest.open_orders()

    async def place_exit(self, request) -> dict:
        return await self.rest.place_exit(request)

    async def cancel_exit(self, request) -> dict:
        if request.kind == "oco":
            return await self.rest.cancel_order_list(request.symbol, list_client_order_id=request.list_client_id)
        return await self.rest.cancel_order(request.symbol, client_order_id=request.client_ids[0])
