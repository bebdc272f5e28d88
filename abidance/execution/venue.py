"""Execution clients: how the execution engine reaches a venue.

The engine speaks ticks and steps; a client turns them into the venue's request format.
Binance's clients (REST: abidance/exchange/binance/rest_orders.py, WebSocket API:
ws_orders.py) serve Binance and the simulator; the backtest venue implements the same
methods in-process. A client that can rest exits on the exchange also has the methods of
`NativeExitClient` (the exit manager's native mode uses them).
"""

from __future__ import annotations

from typing import Protocol

from abidance.execution.orders import Order


class ExecutionClient(Protocol):
    def prepare(self, order: Order) -> object: ...       # the request, built and signed (kept on the order)
    async def submit(self, order: Order) -> dict: ...
    async def cancel(self, order: Order) -> dict: ...
    async def query(self, order: Order) -> dict: ...
    async def open_orders(self) -> list[dict]: ...


class NativeExitClient(Protocol):
    def exit_problem(self, symbol: str, stop_loss: int, take_profit: int, trailing_bps: int) -> str: ...
    def build_exit(self, symbol: str, qty: int, stop_loss: int, take_profit: int, trailing_bps: int,
                   client_id: str) -> object: ...         # has .legs: ((client id, order type, price ticks), ...)
    async def place_exit(self, request) -> dict: ...
    async def cancel_exit(self, request) -> dict: ...
