"""Exchange-native exits: the order (or order list) that protects a long position on Binance.

An exit that lives only in our process dies with it; one resting on the exchange fires
whether the node runs or not. From the levels an entry carries (stop loss, take profit,
trailing stop) this builds Binance's request, with parameter names as Binance has them
since the 2024-04 order-list rework (above* / below* for an OCO):

- stop (or trailing stop) and target: an OCO SELL, above = LIMIT_MAKER at the target, below =
  STOP_LOSS (market on trigger) at the stop, or trailing by trailingDelta;
- a stop only: a STOP_LOSS SELL at stopPrice;
- a trailing stop only: a STOP_LOSS SELL with trailingDelta (it trails from placement);
- a target only: a LIMIT_MAKER SELL at the target.

A fixed stop and a trailing stop together have no native form: Binance reads a stopPrice
given with a trailingDelta as the trail's activation price, not as a second stop, so such
an exit stays emulated (`native_exit_problem` says so).

Binance refuses what the symbol does not allow (ocoAllowed, allowTrailingStop, order
types, the TRAILING_DELTA filter); `native_exit_problem` says why before anything is sent,
so the node can fall back to the local emulation with a clear reason.
"""

from __future__ import annotations

from dataclasses import dataclass

# Leg suffixes of our client order ids: "_" is outside the base36 counter's digits, so a leg's id
# can never be another order's (ClientOrderIds.is_ours accepts them).
ABOVE, BELOW = "_a", "_b"


@dataclass(frozen=True)
class ExitRequest:
    """What to send: a single order (`kind` "order") or an order list ("oco")."""

    kind: str                   # "order" | "oco"
    symbol: str
    params: dict[str, str]      # Binance's parameters (exact strings)
    client_ids: tuple[str, ...]     # our client order id of each order, in Binance's leg order
    list_client_id: str = ""        # for a list
    legs: tuple[tuple[str, str, int], ...] = ()     # (client id, order type, price or stop price in ticks)

    @property
    def method(self) -> str:
        """The WebSocket API method (the REST path is in `path`)."""
        return "orderList.place.oco" if self.kind == "oco" else "order.place"

    @property
    def path(self) -> str:
        return "/api/v3/orderList/oco" if self.kind == "oco" else "/api/v3/order"


def trailing_bips(trailing_bps: int) -> int:
    """Our trailing distance in basis points is Binance's trailingDelta in BIPS (the same unit)."""
    return int(trailing_bps)


def native_exit_problem(inst, stop_loss: int, take_profit: int, trailing_bps: int) -> str:
    """Why this instrument cannot carry these exits natively, or ""."""
    if not (stop_loss or take_profit or trailing_bps):
        return "no exit levels"
    if (stop_loss or trailing_bps) and not inst.supports("STOP_LOSS"):
        return f"{inst.symbol} does not allow STOP_LOSS orders"
    if take_profit and not inst.supports("LIMIT_MAKER"):
        return f"{inst.symbol} does not allow LIMIT_MAKER orders"
    if stop_loss and trailing_bps:
        return ("a fixed stop and a trailing stop together have no native form (Binance reads the stop price as "
                "the trail's activation price)")
    if (stop_loss or trailing_bps) and take_profit and not inst.oco_allowed:
        return f"{inst.symbol} does not allow OCO order lists"
    if trailing_bps:
        if not inst.allow_trailing_stop:
            return f"{inst.symbol} does not allow trailing stops"
        lo, hi = inst.trailing_delta_bips[2], inst.trailing_delta_bips[3]     # a SELL STOP_LOSS trails below
        if (lo and trailing_bps < lo) or (hi and trailing_bps > hi):
            return f"trailing stop {trailing_bps} bps is outside {inst.symbol}'s TRAILING_DELTA range {lo}..{hi}"
    return ""


def exit_request(inst, qty_units: int, stop_loss: int, take_profit: int, trailing_bps: int, client_id: str,
                 resp_type: str = "FULL") -> ExitRequest:
    """The SELL protecting qty_units of inst (prices in ticks, 0 = no such level). `client_id`
    is the list's client id, and with a leg suffix each order's (or the single order's own)."""
    fp, qp = inst.filters.price_fp, inst.filters.qty_fp
    qty = qp.to_str(qty_units)
    stop_side: dict[str, str] = {}
    if stop_loss or trailing_bps:
        stop_side["type"] = "STOP_LOSS"
        if stop_loss:
            stop_side["stopPrice"] = fp.to_str(stop_loss)
        if trailing_bps:
            stop_side["trailingDelta"] = str(trailing_bips(trailing_bps))
    if stop_side and take_profit:
        above, below = client_id + ABOVE, client_id + BELOW
        params = {"symbol": inst.symbol, "side": "SELL", "quantity": qty, "listClientOrderId": client_id,
                  "aboveType": "LIMIT_MAKER", "abovePrice": fp.to_str(take_profit), "aboveClientOrderId": above,
                  "belowType": stop_side["type"], "belowClientOrderId": below, "newOrderRespType": resp_type}
        if "stopPrice" in stop_side:
            params["belowStopPrice"] = stop_side["stopPrice"]
        if "trailingDelta" in stop_side:
            params["belowTrailingDelta"] = stop_side["trailingDelta"]
        legs = ((above, "LIMIT_MAKER", take_profit), (below, "STOP_LOSS", stop_loss))
        return ExitRequest("oco", inst.symbol, params, (above, below), client_id, legs)
    params = {"symbol": inst.symbol, "side": "SELL", "quantity": qty, "newClientOrderId": client_id,
              "newOrderRespType": resp_type}
    if stop_side:
        params.update(stop_side)
        legs = ((client_id, "STOP_LOSS", stop_loss),)
    else:
        params.update({"type": "LIMIT_MAKER", "price": fp.to_str(take_profit)})
        legs = ((client_id, "LIMIT_MAKER", take_profit),)
    return ExitRequest("order", inst.symbol, params, (client_id,), legs=legs)


class NativeExits:
    """Exchange-native exits for an execution client with `instruments` (a mixin: the client adds
    `place_exit` and `cancel_exit` over its own transport)."""

    instruments: dict

    def exit_problem(self, symbol: str, stop_loss: int, take_profit: int, trailing_bps: int) -> str:
        inst = self.instruments.get(symbol)
        if inst is None:
            return f"{symbol} is not a known instrument"
        return native_exit_problem(inst, stop_loss, take_profit, trailing_bps)

    def build_exit(self, symbol: str, qty: int, stop_loss: int, take_profit: int, trailing_bps: int,
                   client_id: str) -> ExitRequest:
        return exit_request(self.instruments[symbol], qty, stop_loss, take_profit, trailing_bps, client_id)
