"""Type stubs for abidance._core.risk (pre-trade risk checks in int64 fixed point)."""

from enum import IntEnum
from typing import Any

from abidance._core.fixed import FixedPoint

class RiskReason(IntEnum):
    ACCEPTED = 0
    TRADING_HALTED = 1
    INVALID_INPUT = 2
    REDUCING_ONLY = 3
    NO_REFERENCE_PRICE = 4
    PRICE_BELOW_MIN = 5
    PRICE_ABOVE_MAX = 6
    PRICE_NOT_ON_TICK = 7
    QTY_BELOW_MIN = 8
    QTY_ABOVE_MAX = 9
    QTY_NOT_ON_STEP = 10
    MARKET_QTY_BELOW_MIN = 11
    MARKET_QTY_ABOVE_MAX = 12
    MARKET_QTY_NOT_ON_STEP = 13
    NOTIONAL_BELOW_MIN = 14
    NOTIONAL_ABOVE_MAX = 15
    PERCENT_PRICE_BY_SIDE = 16
    PRICE_BAND = 17
    MAX_ORDER_NOTIONAL = 18
    MAX_POSITION = 19
    MAX_GROSS_EXPOSURE = 20
    MAX_OPEN_ORDERS = 21
    ORDER_RATE_10S = 22
    ORDER_RATE_DAY = 23
    DAILY_LOSS_LIMIT = 24
    DRAWDOWN_LIMIT = 25
    OVERFLOW = 26

class TradingState(IntEnum):
    ACTIVE = 0
    REDUCING = 1
    HALTED = 2

class OrderSide(IntEnum):
    BUY = 1
    SELL = 2

class OrderType(IntEnum):
    LIMIT = 1
    MARKET = 2
    LIMIT_MAKER = 3
    STOP_LOSS_LIMIT = 4
    TAKE_PROFIT_LIMIT = 5

QUOTE_UNIT: Any  # Decimal("0.00000001"): the unit of account-level money
REASON_MESSAGES: dict[RiskReason, str]

def describe(code: int, symbol: str | None = None, detail: str | None = None) -> str: ...
def quote_units(value: str | bytes | int | Any) -> int: ...

class SymbolFilters:
    symbol: str
    quote_asset: str
    price_fp: FixedPoint
    qty_fp: FixedPoint
    @property
    def units(self) -> dict[str, int]: ...
    def __init__(
        self,
        *,
        symbol: str = "",
        quote_asset: str = "",
        price_unit: str | Any = "1",
        qty_unit: str | Any = "1",
        min_price: int = 0,
        max_price: int = 0,
        tick: int = 0,
        min_qty: int = 0,
        max_qty: int = 0,
        step: int = 0,
        market_min_qty: int = 0,
        market_max_qty: int = 0,
        market_step: int = 0,
        min_notional: int = 0,
        max_notional: int = 0,
        apply_min_to_market: bool = True,
        apply_max_to_market: bool = False,
        bid_up_e8: int = 0,
        bid_down_e8: int = 0,
        ask_up_e8: int = 0,
        ask_down_e8: int = 0,
        max_num_orders: int = 0,
    ) -> None: ...
    @classmethod
    def from_exchange_info(
        cls, symbol_entry: dict[str, Any], price_unit: str | None = None, qty_unit: str | None = None
    ) -> SymbolFilters: ...

class RiskLimits:
    max_order_notional: int
    max_gross_exposure: int
    max_open_orders: int
    orders_per_10s: int
    orders_per_day: int
    price_band_bps: int
    daily_loss_limit: int
    max_drawdown: int
    def __init__(
        self,
        *,
        max_order_notional: int = 0,
        max_gross_exposure: int = 0,
        max_open_orders: int = 0,
        orders_per_10s: int = 0,
        orders_per_day: int = 0,
        price_band_bps: int = 0,
        daily_loss_limit: int = 0,
        max_drawdown: int = 0,
    ) -> None: ...
    def as_dict(self) -> dict[str, int]: ...

class PreTradeRisk:
    limits: RiskLimits
    def __init__(self, limits: RiskLimits | None = None) -> None: ...
    def set_limits(self, limits: RiskLimits) -> None: ...
    def check(
        self,
        slot: int,
        side: int,
        order_type: int,
        price_ticks: int,
        qty_steps: int,
        mid_ticks: int = 0,
        avg_price_ticks: int = 0,
        ts_ns: int = 0,
    ) -> RiskReason: ...
    def add_symbol(self, filters: SymbolFilters, max_position_steps: int = 0) -> int: ...
    def filters(self, slot: int) -> SymbolFilters: ...
    def on_order_open(self, slot: int, side: int, qty_steps: int) -> None: ...
    def on_order_done(self, slot: int, side: int, remaining_qty_steps: int = 0) -> None: ...
    def on_fill(self, slot: int, side: int, qty_steps: int) -> None: ...
    def update_position(self, slot: int, position_steps: int) -> None: ...
    def update_mark(self, slot: int, mark_ticks: int) -> None: ...
    def update_equity(self, equity: int) -> RiskReason: ...
    def new_day(self, equity: int | None = None) -> RiskReason: ...
    def restore(self, rate_10s: tuple[int, int] | None = None, rate_day: tuple[int, int] | None = None,
                peak_equity: int | None = None, day_start_equity: int | None = None) -> None: ...
    def halt(self, reason: int = ...) -> None: ...
    def set_reducing(self) -> None: ...
    def resume(self) -> None: ...
    @property
    def state(self) -> TradingState: ...
    @property
    def halt_reason(self) -> RiskReason: ...
    @property
    def n_slots(self) -> int: ...
    @property
    def open_orders(self) -> int: ...
    @property
    def gross_exposure(self) -> int: ...
    @property
    def equity(self) -> int: ...
    @property
    def peak_equity(self) -> int: ...
    @property
    def day_start_equity(self) -> int: ...
    @property
    def day_pnl(self) -> int: ...
    @property
    def drawdown(self) -> int: ...
    @property
    def tokens_10s(self) -> int: ...
    @property
    def tokens_day(self) -> int: ...
    def position(self, slot: int) -> int: ...
    def slot_state(self, slot: int) -> dict[str, int]: ...
    def snapshot(self) -> dict[str, Any]: ...

def _bench_check_loop(
    risk: PreTradeRisk,
    n: int,
    slot: int,
    side: int,
    order_type: int,
    price_ticks: int,
    qty_steps: int,
    mid_ticks: int,
    avg_price_ticks: int,
    ts0_ns: int,
    ts_step_ns: int,
) -> int: ...
