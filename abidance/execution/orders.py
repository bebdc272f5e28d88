"""The order state machine, as an explicit table.

Local states PENDING_NEW (sent, no answer yet) and PENDING_CANCEL (cancel sent) sit in
front of Binance's own. Fills can race a cancel, so PENDING_CANCEL admits fills and
falls back to the previous state when the cancel is refused. Terminal states never
change again; an update that the table does not allow is refused and counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PENDING_NEW, NEW, PARTIALLY_FILLED, FILLED = "PENDING_NEW", "NEW", "PARTIALLY_FILLED", "FILLED"
PENDING_CANCEL, CANCELED, REJECTED, EXPIRED = "PENDING_CANCEL", "CANCELED", "REJECTED", "EXPIRED"
TERMINAL = frozenset({FILLED, CANCELED, REJECTED, EXPIRED})

ALLOWED: dict[str, frozenset[str]] = {
    PENDING_NEW: frozenset({NEW, PARTIALLY_FILLED, FILLED, REJECTED, EXPIRED, CANCELED, PENDING_CANCEL}),
    NEW: frozenset({PARTIALLY_FILLED, FILLED, PENDING_CANCEL, CANCELED, EXPIRED}),
    PARTIALLY_FILLED: frozenset({PARTIALLY_FILLED, FILLED, PENDING_CANCEL, CANCELED, EXPIRED}),
    PENDING_CANCEL: frozenset({NEW, PARTIALLY_FILLED, FILLED, CANCELED, EXPIRED}),
    FILLED: frozenset(), CANCELED: frozenset(), REJECTED: frozenset(), EXPIRED: frozenset(),
}

# Binance statuses that map onto ours.
FROM_EXCHANGE = {"NEW": NEW, "PARTIALLY_FILLED": PARTIALLY_FILLED, "FILLED": FILLED, "CANCELED": CANCELED,
                 "PENDING_CANCEL": PENDING_CANCEL, "REJECTED": REJECTED, "EXPIRED": EXPIRED,
                 "EXPIRED_IN_MATCH": EXPIRED, "PENDING_NEW": PENDING_NEW}


class TransitionError(ValueError):
    pass


@dataclass
class Order:
    client_order_id: str
    strategy_id: str
    symbol: str
    side: str
    order_type: str
    quantity: int                   # steps
    price: int                      # ticks
    time_in_force: str
    ts_init: int
    reduce_only: bool = False
    parent_id: str = ""
    status: str = PENDING_NEW
    order_id: int = 0
    filled: int = 0                 # steps
    reason: str = ""
    trade_ids: set[int] = field(default_factory=set)
    before_cancel: str = ""         # the state to go back to when a cancel is refused
    request: object = None          # the venue request prepared at decision time (signed query)
    event_filled: int = 0           # `filled` when the last OrderEvent went out
    protective: bool = False        # a native exit resting on the venue (exits.py), not a strategy's order

    @property
    def is_open(self) -> bool:
        return self.status not in TERMINAL

    @property
    def remaining(self) -> int:
        return max(0, self.quantity - self.filled)

    def can_move(self, new: str) -> bool:
        return new == self.status or new in ALLOWED[self.status]

    def move(self, new: str, reason: str = "") -> str:
        """Change state by the table; returns the previous state."""
        if new == self.status and new != PARTIALLY_FILLED:
            return new
        if new not in ALLOWED[self.status]:
            raise TransitionError(f"order {self.client_order_id}: {self.status} -> {new} is not allowed")
        previous = self.status
        if new == PENDING_CANCEL:
            self.before_cancel = previous
        self.status = new
        if reason:
            self.reason = reason
        return previous

    def to_state(self) -> dict:
        d = {k: getattr(self, k) for k in ("client_order_id", "strategy_id", "symbol", "side", "order_type",
                                           "quantity", "price", "time_in_force", "ts_init", "reduce_only",
                                           "parent_id", "status", "order_id", "filled", "reason", "protective")}
        d["trade_ids"] = sorted(self.trade_ids)
        return d          # `request` is not kept: a restarted node settles by reconciliation

    @classmethod
    def from_state(cls, d: dict) -> "Order":
        d = dict(d)
        d["trade_ids"] = set(d.get("trade_ids", ()))
        return cls(**d)
