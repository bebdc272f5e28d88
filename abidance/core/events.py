"""Venue-neutral events that are not on the per-message hot path.

Market data events (trades, depth diffs, ...) are Cython classes in abidance._core.wire;
these are the account, order, health and alert events, kept as frozen dataclasses.
Money fields are Decimal: exact at the edges, converted to fixed point inside engines.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class Alert:
    level: str              # "info" | "warning" | "error" | "critical"
    source: str             # component that raised it, e.g. "binance.rest"
    code: str               # stable machine-readable reason, e.g. "ip_banned"
    message: str
    ts_event: int           # ns


@dataclass(frozen=True, slots=True)
class OrderUpdate:
    """One executionReport (or a REST order snapshot during reconciliation)."""

    symbol: str
    client_order_id: str    # the order's own id (Binance sends it as C on cancels, c otherwise)
    order_id: int
    side: str               # BUY | SELL
    order_type: str         # LIMIT | MARKET | ...
    time_in_force: str
    execution_type: str     # NEW | TRADE | CANCELED | REJECTED | EXPIRED | TRADE_PREVENTION | REPLACED | SNAPSHOT
    status: str             # NEW | PARTIALLY_FILLED | FILLED | CANCELED | REJECTED | EXPIRED | ...
    price: Decimal
    quantity: Decimal
    stop_price: Decimal
    last_qty: Decimal
    last_price: Decimal
    cumulative_qty: Decimal
    cumulative_quote: Decimal
    commission: Decimal
    commission_asset: str
    trade_id: int           # -1 when no trade
    is_maker: bool
    reject_reason: str
    request_client_order_id: str  # id of the request behind this event: on a cancel, the cancel's own id
    ts_event: int           # transaction time, ns
    ts_init: int            # when we received it, ns


@dataclass(frozen=True, slots=True)
class Balance:
    asset: str
    free: Decimal
    locked: Decimal

    @property
    def total(self) -> Decimal:
        return self.free + self.locked


@dataclass(frozen=True, slots=True)
class BalanceUpdate:
    """Balances that changed (outboundAccountPosition) or a full REST account snapshot."""

    balances: tuple[Balance, ...]
    is_snapshot: bool
    ts_event: int
    ts_init: int


@dataclass(frozen=True, slots=True)
class BalanceDelta:
    """A deposit, withdrawal or transfer (balanceUpdate)."""

    asset: str
    delta: Decimal
    ts_event: int
    ts_init: int


@dataclass(frozen=True, slots=True)
class Reconciliation:
    """What the exchange says after a (re)connect: every open order and all balances."""

    open_orders: tuple[OrderUpdate, ...]
    balances: tuple[Balance, ...]
    reason: str             # "start" | "reconnect" | "listen_key_expired"
    ts_init: int


@dataclass(frozen=True, slots=True)
class StreamHealth:
    stream: str
    messages: int
    rate_per_s: float           # over the last health interval
    lag_ms_mean: float          # receive time minus event time
    lag_ms_max: float
    last_message_age_s: float


@dataclass(frozen=True, slots=True)
class ConnectorHealth:
    venue: str
    connections: int
    connected: int
    reconnects: int
    resyncs: int
    dropped: dict[str, int]     # malformed messages by reason
    books_ready: int
    books_total: int
    used_weight: int
    streams: tuple[StreamHealth, ...] = field(default_factory=tuple)
    ts_event: int = 0
