"""Venue-neutral events that are not on the per-message hot path.

Market data events (trades, depth diffs, ...) are Cython classes in abidance._core.wire;
these are the account, order, health and alert events. Every event is immutable once built,
so no subscriber (and no user strategy) can change what the next one sees: frozen dataclasses,
except those built for every order or fill, which are NamedTuples (as immutable, and built in
~0.45 us where a frozen dataclass of ten fields takes ~2 us). Copy one with `ev._replace(...)`.
Money fields are Decimal: exact at the edges, converted to fixed point inside engines.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import NamedTuple


@dataclass(frozen=True, slots=True)
class Alert:
    level: str              # "info" | "warning" | "error" | "critical"
    source: str             # component that raised it, e.g. "binance.rest"
    code: str               # stable machine-readable reason, e.g. "ip_banned"
    message: str
    ts_event: int           # ns


class OrderUpdate(NamedTuple):
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
    order_list_id: int = -1  # the order list (OCO, OTO, OTOCO) this order belongs to, -1 for none


@dataclass(frozen=True, slots=True)
class OrderListUpdate:
    """One listStatus event: an order list (OCO, OTO, OTOCO) changed as a whole."""

    symbol: str
    order_list_id: int
    contingency_type: str       # OCO | OTO (an OTOCO reports OTO)
    list_status_type: str       # RESPONSE | EXEC_STARTED | UPDATED | ALL_DONE
    list_order_status: str      # EXECUTING | ALL_DONE | REJECT
    list_client_order_id: str
    reject_reason: str
    orders: tuple[tuple[int, str], ...]     # (orderId, clientOrderId) of each leg
    ts_event: int
    ts_init: int


@dataclass(frozen=True, slots=True)
class VenueAnswer:
    """A venue's answer to a new order, given when the order reached it (the backtest venue: at the
    next bar or trade): the answer dict of a live venue's REST reply, or the error it raised."""

    client_order_id: str
    answer: dict | None
    error: Exception | None = None


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
    reason: str             # "start" | "reconnect" | "stream_terminated"
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


# ---- the node's own events (strategies, risk, execution, portfolio) ------------------
# Prices are int64 ticks and quantities int64 steps of the symbol (see instruments), so
# the hot path never touches Decimal; money totals in the portfolio are Decimal.
# Events on the tick-to-order path are NamedTuples: immutable and cheap to build.


@dataclass(frozen=True, slots=True)
class Bar:
    """A closed bar built from trades (or a closed exchange kline)."""

    symbol: str
    interval: str           # "1s", "1m", ... "1d"
    open_time: int          # ns, inclusive
    close_time: int         # ns, exclusive: open_time + interval
    open: int               # ticks; a bar without trades repeats the previous close
    high: int
    low: int
    close: int
    volume: int             # steps
    trades: int


class Signal(NamedTuple):
    """What a strategy wants: the risk engine decides whether and how much."""

    strategy_id: str
    symbol: str
    side: str               # "BUY" | "SELL"
    confidence: float       # [0, 1]
    ts_event: int
    price: int = 0          # limit price in ticks; 0 = market
    reason: str = ""        # why, in words (logged, stored, shown)
    stop_loss: int = 0      # optional exits in ticks for the position this opens; 0 = none
    take_profit: int = 0
    trailing_bps: int = 0


class OrderRequest(NamedTuple):
    """An order the risk engine accepted and sized: the execution engine's command."""

    client_order_id: str
    strategy_id: str
    symbol: str
    side: str               # "BUY" | "SELL"
    order_type: str         # "MARKET" | "LIMIT" | "LIMIT_MAKER" | ...
    quantity: int           # steps
    price: int              # ticks (0 for MARKET)
    time_in_force: str      # "GTC" | "IOC" | "FOK" | "" (MARKET)
    ts_init: int
    stop_loss: int = 0
    take_profit: int = 0
    trailing_bps: int = 0
    timeout_s: float = 0.0  # cancel a resting limit order after this long; 0 = never
    reduce_only: bool = False
    parent_id: str = ""     # for exits: the entry order they protect


class RiskDecision(NamedTuple):
    """Every decision of the risk engine, accepted or not, with the reason."""

    strategy_id: str
    symbol: str
    side: str
    accepted: bool
    reason: str             # RiskReason name or a node-level reason (e.g. "SIZE_ZERO")
    message: str
    quantity: int           # steps (0 when not sized)
    price: int
    client_order_id: str    # "" when denied
    confidence: float
    ts_event: int


class OrderEvent(NamedTuple):
    """An order changed state in the execution engine's state machine."""

    client_order_id: str
    strategy_id: str
    symbol: str
    side: str
    order_type: str
    status: str             # PENDING_NEW, NEW, PARTIALLY_FILLED, FILLED, PENDING_CANCEL, CANCELED, REJECTED, EXPIRED
    previous: str
    quantity: int
    filled: int
    price: int
    order_id: int           # the exchange's id, 0 before it is known
    reason: str
    ts_event: int
    protective: bool = False    # a native exit resting on the venue (never the risk engine's to count)


class Fill(NamedTuple):
    client_order_id: str
    strategy_id: str
    symbol: str
    side: str
    quantity: Decimal       # base asset
    price: Decimal          # quote per base
    commission: Decimal
    commission_asset: str
    trade_id: int
    is_maker: bool
    ts_event: int


class PositionUpdate(NamedTuple):
    """One strategy's position in one symbol after a fill (strategy "" holds what no strategy bought)."""

    strategy_id: str
    symbol: str
    quantity: Decimal       # base asset held (spot: >= 0)
    avg_price: Decimal
    realized_pnl: Decimal   # quote asset, fees included
    unrealized_pnl: Decimal
    ts_event: int


@dataclass(frozen=True, slots=True)
class EquityPoint:
    equity: Decimal         # in the quote (account) currency
    cash: Decimal
    positions_value: Decimal
    realized_pnl: Decimal
    unrealized_pnl: Decimal
    fees: Decimal
    drawdown: Decimal       # from the peak, >= 0
    ts_event: int


@dataclass(frozen=True, slots=True)
class TradingStateChanged:
    state: str              # "ACTIVE" | "REDUCING" | "HALTED"
    previous: str
    reason: str
    source: str             # "risk", "kill_switch", "breaker:<name>", "operator"
    ts_event: int


@dataclass(frozen=True, slots=True)
class TradingCommand:
    """A request to the risk engine to change the trading state (topics.RISK_COMMAND)."""

    action: str             # "reduce" | "halt" | "resume"
    reason: str
    source: str             # who asks: "anomaly:<detector>", "chat:<chat id>", ...


@dataclass(frozen=True, slots=True)
class ComponentStateChanged:
    component: str
    state: str
    previous: str
    reason: str
    ts_event: int


@dataclass(frozen=True, slots=True)
class BookSnapshot:
    """A full depth snapshot to (re)start a local book from: REST depth live, a recording's snapshot."""

    symbol: str
    bids: object            # (n, 2) int64 array or [(price ticks, qty steps), ...], best first
    asks: object
    last_update_id: int
    ts_event: int


@dataclass(frozen=True, slots=True)
class DepthGap:
    """The depth feed of a symbol was interrupted (a reconnect): its local book must be resynced."""

    symbol: str
    reason: str
    ts_event: int


@dataclass(frozen=True, slots=True)
class BookRequest:
    """The data engine needs a snapshot of a symbol's book (at most `limit` levels per side)."""

    symbol: str
    limit: int
    reason: str
    ts_event: int


@dataclass(frozen=True, slots=True)
class BookStatusChanged:
    """A local book became ready (consistent) or stopped being so."""

    symbol: str
    ready: bool
    reason: str
    ts_event: int


@dataclass(frozen=True, slots=True)
class DepthSnapshot:
    """The top levels of a consistent book, taken periodically for the store and charts."""

    symbol: str
    update_id: int
    bid_prices: tuple[int, ...]     # ticks, best first
    bid_qtys: tuple[int, ...]       # steps
    ask_prices: tuple[int, ...]
    ask_qtys: tuple[int, ...]
    ts_event: int


class ShadowSignal(NamedTuple):
    """What a model in shadow would have signalled (never sent to the risk engine)."""

    model: str
    version: int
    strategy_id: str
    symbol: str
    side: str              # "BUY" | "SELL"
    confidence: float      # p(up) for a buy, 1 - p(up) for a sell, as the live signal would carry
    price: int             # ticks: the close of the bar behind it
    reason: str
    ts_event: int
