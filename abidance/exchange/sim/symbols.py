"""SymbolSpec: one symbol's grid, filters and fees, and its exchangeInfo entry in Binance's format.

Units. Every amount the simulator handles lives on a grid of 1e-8 (Binance's asset precision):
a price is an int number of ticks, a quantity an int number of steps, and a quote amount an int
number of "units" of 1e-8 of the quote asset. The spec precomputes the integer factors between
these grids so the matching engine never touches a float and rarely a Decimal:

    price  = ticks * tick_units  * 1e-8
    qty    = steps * step_units  * 1e-8
    quote  = ticks * steps * quote_per_tick_step * 1e-8

The last line requires tick_size * step_size to be a multiple of 1e-8, which the spec checks, so
that every notional is exactly representable at the quote asset's 8 decimals.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal

from abidance.exchange.sim import errors

PRECISION = 8                     # Binance's asset precision: every JSON amount has 8 decimals
SCALE = 10 ** PRECISION           # units of 1e-8 per whole unit
_CACHE_MAX = 1 << 16

# Binance's own pattern for decimal parameters (the -1100 message quotes it).
_DECIMAL_RE = re.compile(r"^([0-9]{1,20})(\.[0-9]{1,20})?$")
_DECIMAL_RANGE = "^([0-9]{1,20})(\\.[0-9]{1,20})?$"


def units_to_dec(units: int) -> Decimal:
    """An int count of 1e-8 as an exact Decimal."""
    return Decimal(units).scaleb(-PRECISION)


def dec_to_units(value: Decimal) -> int:
    """An exact Decimal with at most 8 decimals as an int count of 1e-8 (ValueError otherwise)."""
    scaled = value.scaleb(PRECISION)
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{value} has more than {PRECISION} decimals")
    return int(scaled)


def fmt_units(units: int) -> str:
    """Binance's fixed 8-decimal rendering of an int count of 1e-8 ("12.34000000")."""
    if units < 0:
        return "-" + fmt_units(-units)
    text = "%09d" % units          # string slicing beats divmod + format on this hot path
    return text[:-8] + "." + text[-8:]


def fmt8(value: Decimal) -> str:
    """Binance's fixed 8-decimal rendering of a Decimal (exact for values on the 1e-8 grid)."""
    text = f"{value:.8f}"
    return "0.00000000" if text == "-0.00000000" else text


def parse_units(param: str, value) -> int:
    """A request parameter (string as received) as an int count of 1e-8.

    Malformed -> -1100 with Binance's pattern; more than 8 decimals -> -1111 (too much precision).
    Decimals and ints are accepted too, for callers inside the process.
    """
    if isinstance(value, Decimal):
        value = format(value, "f")
    elif isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or (m := _DECIMAL_RE.match(value)) is None:
        raise errors.BinanceError(
            -1100, f"Illegal characters found in parameter '{param}'; legal range is '{_DECIMAL_RANGE}'.")
    whole, frac = m.group(1), (m.group(2) or ".")[1:]
    frac = frac.rstrip("0")
    if len(frac) > PRECISION:
        raise errors.bad_precision(param)
    return int(whole) * SCALE + (int(frac.ljust(PRECISION, "0")) if frac else 0)


def _units(value: Decimal, what: str) -> int:
    try:
        return dec_to_units(value)
    except ValueError:
        raise ValueError(f"{what}={value} is not on the 1e-8 grid") from None


def _plain(value: Decimal) -> str:
    """Binance renders filter multipliers without padding ("5", "0.2")."""
    text = format(value.normalize(), "f")
    return text


ORDER_TYPES = ("LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT")
# Binance's self-trade prevention modes (enums.md), and what its spot symbols allow today: every
# mode but NONE, EXPIRE_MAKER by default (the live exchangeInfo of 2026).
STP_MODES = ("NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH", "DECREMENT", "TRANSFER")
LIVE_STP_MODES = ("EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH", "DECREMENT", "TRANSFER")


@dataclass(slots=True)
class SymbolSpec:
    """One symbol: its assets, its price/quantity grid, its filters and its fee rates."""

    symbol: str
    base_asset: str
    quote_asset: str
    tick_size: Decimal
    step_size: Decimal
    min_price: Decimal
    max_price: Decimal
    min_qty: Decimal
    max_qty: Decimal
    market_min_qty: Decimal = Decimal("0")
    market_max_qty: Decimal = Decimal("1000")
    min_notional: Decimal = Decimal("5")
    max_notional: Decimal = Decimal("9000000")
    bid_multiplier_up: Decimal = Decimal("5")
    bid_multiplier_down: Decimal = Decimal("0.2")
    ask_multiplier_up: Decimal = Decimal("5")
    ask_multiplier_down: Decimal = Decimal("0.2")
    avg_price_mins: int = 5
    maker_fee: Decimal = Decimal("0.001")
    taker_fee: Decimal = Decimal("0.001")
    base_precision: int = PRECISION
    quote_precision: int = PRECISION
    max_num_orders: int = 200
    max_num_algo_orders: int = 5
    max_num_order_lists: int = 20          # open order lists per symbol (an OTOCO is one)
    max_num_order_amends: int = 10         # amendments per order
    min_trailing_above_delta: int = 10     # TRAILING_DELTA filter, BIPS
    max_trailing_above_delta: int = 2000
    min_trailing_below_delta: int = 10
    max_trailing_below_delta: int = 2000
    apply_min_to_market: bool = True
    apply_max_to_market: bool = False
    order_types: tuple[str, ...] = ORDER_TYPES
    allow_trailing_stop: bool = True
    default_stp_mode: str = "EXPIRE_MAKER"
    allowed_stp_modes: tuple[str, ...] = LIVE_STP_MODES

    # Derived integer factors (see the module docstring); filled in __post_init__.
    tick_units: int = field(init=False, repr=False)
    step_units: int = field(init=False, repr=False)
    quote_per_tick_step: int = field(init=False, repr=False)
    min_price_ticks: int = field(init=False, repr=False)
    max_price_ticks: int = field(init=False, repr=False)
    min_qty_steps: int = field(init=False, repr=False)
    max_qty_steps: int = field(init=False, repr=False)
    market_min_qty_units: int = field(init=False, repr=False)
    market_max_qty_units: int = field(init=False, repr=False)
    min_notional_units: int = field(init=False, repr=False)
    max_notional_units: int = field(init=False, repr=False)
    # Rendered prices/quantities repeat endlessly in streams and reports: memoise them (bounded).
    _price_cache: dict = field(init=False, repr=False, compare=False, default_factory=dict)
    _qty_cache: dict = field(init=False, repr=False, compare=False, default_factory=dict)

    def __post_init__(self):
        for name in ("tick_size", "step_size", "min_price", "max_price", "min_qty", "max_qty", "market_min_qty",
                     "market_max_qty", "min_notional", "max_notional", "bid_multiplier_up", "bid_multiplier_down",
                     "ask_multiplier_up", "ask_multiplier_down", "maker_fee", "taker_fee"):
            setattr(self, name, Decimal(str(getattr(self, name))))
        if self.base_precision != PRECISION or self.quote_precision != PRECISION:
            raise ValueError("the simulator keeps every asset at 8 decimals, as Binance does")
        self.order_types = tuple(self.order_types)
        self.allowed_stp_modes = tuple(self.allowed_stp_modes)
        if not set(self.order_types) <= set(ORDER_TYPES) or not set(self.allowed_stp_modes) <= set(STP_MODES):
            raise ValueError("unknown order type or self-trade prevention mode")
        if self.default_stp_mode not in self.allowed_stp_modes:
            raise ValueError("the default self-trade prevention mode must be one of the allowed modes")
        self.tick_units = _units(self.tick_size, "tick_size")
        self.step_units = _units(self.step_size, "step_size")
        if self.tick_units <= 0 or self.step_units <= 0:
            raise ValueError("tick_size and step_size must be positive")
        q, r = divmod(self.tick_units * self.step_units, SCALE)
        if r or q == 0:
            raise ValueError("tick_size * step_size must be a multiple of 1e-8 so notionals are exact")
        self.quote_per_tick_step = q
        self.min_price_ticks = self._on_grid(self.min_price, self.tick_units, "min_price")
        self.max_price_ticks = self._on_grid(self.max_price, self.tick_units, "max_price")
        self.min_qty_steps = self._on_grid(self.min_qty, self.step_units, "min_qty")
        self.max_qty_steps = self._on_grid(self.max_qty, self.step_units, "max_qty")
        self.market_min_qty_units = _units(self.market_min_qty, "market_min_qty")
        self.market_max_qty_units = _units(self.market_max_qty, "market_max_qty")
        self.min_notional_units = _units(self.min_notional, "min_notional")
        self.max_notional_units = _units(self.max_notional, "max_notional")

    @staticmethod
    def _on_grid(value: Decimal, grid_units: int, what: str) -> int:
        n, r = divmod(_units(value, what), grid_units)
        if r:
            raise ValueError(f"{what}={value} is not a multiple of its grid")
        return n

    # ---- request values -> grid (raising Binance's errors) -------------------------------------

    def price_to_ticks(self, value, param: str = "price") -> int:
        """A price parameter as int ticks; PRICE_FILTER bounds and grid, -1111 beyond 8 decimals."""
        units = parse_units(param, value)
        ticks, rem = divmod(units, self.tick_units)
        if rem or ticks < self.min_price_ticks or ticks > self.max_price_ticks:
            raise errors.filter_failure("PRICE_FILTER")
        return ticks

    def qty_to_steps(self, value, param: str = "quantity", market: bool = False) -> int:
        """A quantity parameter as int steps; LOT_SIZE (and MARKET_LOT_SIZE for MARKET orders)."""
        units = parse_units(param, value)
        steps, rem = divmod(units, self.step_units)
        if rem or steps < self.min_qty_steps or steps > self.max_qty_steps:
            raise errors.filter_failure("LOT_SIZE")
        if market and (units < self.market_min_qty_units or units > self.market_max_qty_units):
            raise errors.filter_failure("MARKET_LOT_SIZE")
        return steps

    # ---- grid -> values ----------------------------------------------------------------------

    def quote_units(self, ticks: int, steps: int) -> int:
        """The exact notional of steps at ticks, in 1e-8 of the quote asset."""
        return ticks * steps * self.quote_per_tick_step

    def price_dec(self, ticks: int) -> Decimal:
        return units_to_dec(ticks * self.tick_units)

    def qty_dec(self, steps: int) -> Decimal:
        return units_to_dec(steps * self.step_units)

    def price_str(self, ticks: int) -> str:
        text = self._price_cache.get(ticks)
        if text is None:
            if len(self._price_cache) >= _CACHE_MAX:
                self._price_cache.clear()
            text = self._price_cache[ticks] = fmt_units(ticks * self.tick_units)
        return text

    def qty_str(self, steps: int) -> str:
        text = self._qty_cache.get(steps)
        if text is None:
            if len(self._qty_cache) >= _CACHE_MAX:
                self._qty_cache.clear()
            text = self._qty_cache[steps] = fmt_units(steps * self.step_units)
        return text

    def ticks_of(self, price: Decimal) -> int:
        """An exact Decimal price on the tick grid as ticks (ValueError when off the grid)."""
        return self._on_grid(Decimal(str(price)), self.tick_units, "price")

    def steps_of(self, qty: Decimal) -> int:
        """An exact Decimal quantity on the step grid as steps (ValueError when off the grid)."""
        return self._on_grid(Decimal(str(qty)), self.step_units, "quantity")

    # ---- exchangeInfo -------------------------------------------------------------------------

    def exchange_info_entry(self) -> dict:
        """This symbol as Binance's current exchangeInfo lists it (same keys, same order)."""
        return {
            "symbol": self.symbol,
            "status": "TRADING",
            "baseAsset": self.base_asset,
            "baseAssetPrecision": self.base_precision,
            "quoteAsset": self.quote_asset,
            "quotePrecision": self.quote_precision,
            "quoteAssetPrecision": self.quote_precision,
            "baseCommissionPrecision": self.base_precision,
            "quoteCommissionPrecision": self.quote_precision,
            "orderTypes": list(self.order_types),
            "icebergAllowed": False,
            "ocoAllowed": True,
            "otoAllowed": True,
            "opoAllowed": False,
            "quoteOrderQtyMarketAllowed": True,
            "allowTrailingStop": self.allow_trailing_stop,
            "cancelReplaceAllowed": True,
            "amendAllowed": True,
            "pegInstructionsAllowed": False,
            "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": False,
            "filters": self.filters(),
            "permissions": [],
            "permissionSets": [["SPOT"]],
            "defaultSelfTradePreventionMode": self.default_stp_mode,
            "allowedSelfTradePreventionModes": list(self.allowed_stp_modes),
        }

    def filters(self) -> list[dict]:
        """The filters in the order Binance lists them for its spot symbols (2026)."""
        return [
            {"filterType": "PRICE_FILTER", "minPrice": fmt8(self.min_price), "maxPrice": fmt8(self.max_price),
             "tickSize": fmt8(self.tick_size)},
            {"filterType": "LOT_SIZE", "minQty": fmt8(self.min_qty), "maxQty": fmt8(self.max_qty),
             "stepSize": fmt8(self.step_size)},
            # Binance publishes stepSize 0 here: MARKET quantities follow LOT_SIZE's step.
            {"filterType": "MARKET_LOT_SIZE", "minQty": fmt8(self.market_min_qty),
             "maxQty": fmt8(self.market_max_qty), "stepSize": "0.00000000"},
            {"filterType": "TRAILING_DELTA", "minTrailingAboveDelta": self.min_trailing_above_delta,
             "maxTrailingAboveDelta": self.max_trailing_above_delta,
             "minTrailingBelowDelta": self.min_trailing_below_delta,
             "maxTrailingBelowDelta": self.max_trailing_below_delta},
            {"filterType": "PERCENT_PRICE_BY_SIDE", "bidMultiplierUp": _plain(self.bid_multiplier_up),
             "bidMultiplierDown": _plain(self.bid_multiplier_down), "askMultiplierUp": _plain(self.ask_multiplier_up),
             "askMultiplierDown": _plain(self.ask_multiplier_down), "avgPriceMins": self.avg_price_mins},
            {"filterType": "NOTIONAL", "minNotional": fmt8(self.min_notional),
             "applyMinToMarket": self.apply_min_to_market, "maxNotional": fmt8(self.max_notional),
             "applyMaxToMarket": self.apply_max_to_market, "avgPriceMins": self.avg_price_mins},
            {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": self.max_num_orders},
            {"filterType": "MAX_NUM_ORDER_LISTS", "maxNumOrderLists": self.max_num_order_lists},
            {"filterType": "MAX_NUM_ALGO_ORDERS", "maxNumAlgoOrders": self.max_num_algo_orders},
            {"filterType": "MAX_NUM_ORDER_AMENDS", "maxNumOrderAmends": self.max_num_order_amends},
        ]


def default_symbols() -> list[SymbolSpec]:
    """BTCUSDT, ETHUSDT, BNBUSDT (synthetic defaults) and the pairs of the recorded data
    (ETHBTC, LTCBTC, XRPETH), with Binance-like grids and a 0.1 % maker/taker fee."""
    d = Decimal
    return [
        SymbolSpec("BTCUSDT", "BTC", "USDT", tick_size=d("0.01"), step_size=d("0.00001"), min_price=d("0.01"),
                   max_price=d("1000000"), min_qty=d("0.00001"), max_qty=d("9000"), market_max_qty=d("100")),
        SymbolSpec("ETHUSDT", "ETH", "USDT", tick_size=d("0.01"), step_size=d("0.0001"), min_price=d("0.01"),
                   max_price=d("1000000"), min_qty=d("0.0001"), max_qty=d("9000"), market_max_qty=d("1000")),
        SymbolSpec("BNBUSDT", "BNB", "USDT", tick_size=d("0.01"), step_size=d("0.001"), min_price=d("0.01"),
                   max_price=d("100000"), min_qty=d("0.001"), max_qty=d("9000"), market_max_qty=d("5000")),
        SymbolSpec("ETHBTC", "ETH", "BTC", tick_size=d("0.00001"), step_size=d("0.001"), min_price=d("0.00001"),
                   max_price=d("922327"), min_qty=d("0.001"), max_qty=d("100000"), market_max_qty=d("1000"),
                   min_notional=d("0.0001")),
        SymbolSpec("LTCBTC", "LTC", "BTC", tick_size=d("0.000001"), step_size=d("0.01"), min_price=d("0.000001"),
                   max_price=d("100000"), min_qty=d("0.01"), max_qty=d("100000"), market_max_qty=d("10000"),
                   min_notional=d("0.0001")),
        SymbolSpec("XRPETH", "XRP", "ETH", tick_size=d("0.0000001"), step_size=d("1"), min_price=d("0.0000001"),
                   max_price=d("1000"), min_qty=d("1"), max_qty=d("90000000"), market_max_qty=d("1000000"),
                   min_notional=d("0.001")),
    ]
