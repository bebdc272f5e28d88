"""The backtester's market-order fill model and sizing, in vectorised int64 arithmetic.

Mirrors, to the unit, what the engine does for a signal of the agent's strategy:
- sizing (RiskEngine, `sizing = "fixed_fraction"`): budget = min(equity x fraction, cash), valued
  at the signal bar's close; whole steps, rounded down; a sell sells every whole step held;
- the exchange filters of PreTradeRisk.check for a MARKET order (min/max qty, step grids,
  min/max notional at the close): an order that fails them is denied, nothing happens;
- BacktestVenue: the fill is at the NEXT bar's open moved against the order by `slippage_bps`
  (rounded half-even to the tick); a BUY whose cost there exceeds the cash is refused (-2010, as
  the simulator refuses it), nothing happens; taker fee in the asset received, rounded half-up
  to 1e-8 (the simulator's commission rule, abidance/exchange/sim/accounts.py).

Units: prices in ticks, order sizes in steps, cash in quote units (1e-8 of the quote asset) and
holdings in base units (1e-8 of the base asset: the buy fee is charged in the base asset to
1e-8, so what is held is not a whole number of steps). Requires quote_mul/quote_div such that
one tick x one step is a whole number of quote units (true of every Binance spot symbol).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from fractions import Fraction

import numpy as np

E8 = Decimal("0.00000001")
MAX_DENOMINATOR = 1_000_000        # keeps every intermediate product far inside int64


def _decimal(name: str, value) -> Decimal:
    try:
        d = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        d = Decimal("NaN")
    if not d.is_finite():
        raise ValueError(f"{name} must be a decimal number, got {value!r}")
    return d


def _rational(name: str, value: Decimal, low: Fraction, high: Fraction, inclusive_low: bool) -> Fraction:
    r = Fraction(value)
    if r < low or (not inclusive_low and r == low) or r > high:
        raise ValueError(f"{name} must be within {'[' if inclusive_low else '('}{low}, {high}], got {value}")
    if r.denominator > MAX_DENOMINATOR:
        raise ValueError(f"{name} has too many decimals for exact int64 arithmetic ({value})")
    return r


def round_half_up(num: np.ndarray, den: int) -> np.ndarray:
    """num / den rounded half up, for num >= 0 (int64 arrays, den > 0)."""
    q, r = np.divmod(num, den)
    return q + (2 * r >= den)


def round_half_even(num: np.ndarray, den: int) -> np.ndarray:
    """num / den rounded half to even, for num >= 0 (int64 arrays, den > 0)."""
    q, r = np.divmod(num, den)
    twice = 2 * r
    return q + ((twice > den) | ((twice == den) & ((q & 1) == 1)))


class FixedPointFills:
    """Fill, fee and sizing constants of one instrument, as integers: the market-order path of
    abidance.exchange.backtest.venue (FillModel + BacktestVenue) and the risk engine's sizing, vectorised."""

    def __init__(self, instrument, *, taker_bps=Decimal(10), slippage_bps=Decimal(0),
                 fraction=Decimal("0.98")):
        f = instrument.filters
        u = f.units
        self.symbol = instrument.symbol
        self.base_asset, self.quote_asset = instrument.base_asset, instrument.quote_asset
        self.price_increment, self.qty_increment = f.price_fp.increment, f.qty_fp.increment
        if u["quote_div"] != 1:
            raise ValueError(f"{self.symbol}: one tick x one step is not a whole number of quote units "
                             f"(quote_div={u['quote_div']}); the vectorised fill model cannot keep cash exact")
        self.mul = int(u["quote_mul"])                       # quote units per tick x step
        sbu = self.qty_increment / E8
        if sbu != sbu.to_integral_value() or sbu < 1:
            raise ValueError(f"{self.symbol}: the lot step {self.qty_increment} is not a whole number of 1e-8 units")
        self.sbu = int(sbu)                                  # base units per step
        self.taker_bps = _decimal("taker_bps", taker_bps)
        self.slippage_bps = _decimal("slippage_bps", slippage_bps)
        try:
            # The config holds the fraction as a float and the risk engine reads Decimal(str(it)).
            self.fraction = _decimal("fraction", repr(float(fraction)))
        except (TypeError, ValueError):
            raise ValueError(f"fraction must be a decimal number, got {fraction!r}") from None
        fee = _rational("taker_bps", self.taker_bps, Fraction(0), Fraction(10_000), True) / 10_000
        slip = _rational("slippage_bps", self.slippage_bps, Fraction(0), Fraction(10_000), True) / 10_000
        frac = _rational("fraction", self.fraction, Fraction(0), Fraction(1), False)
        self.fee_num, self.fee_den = fee.numerator, fee.denominator
        self.slip_num, self.slip_den = slip.numerator, slip.denominator
        self.f_num, self.f_den = frac.numerator, frac.denominator
        self.min_qty, self.max_qty, self.step = u["min_qty"], u["max_qty"], u["step"]
        self.market_min_qty, self.market_max_qty, self.market_step = \
            u["market_min_qty"], u["market_max_qty"], u["market_step"]
        self.min_notional = u["min_notional"] if u["apply_min_to_market"] else 0
        self.max_notional = u["max_notional"] if u["apply_max_to_market"] else 0

    def check_headroom(self, max_price_ticks: int, max_cash_units: int) -> None:
        """Refuse settings whose intermediate products could leave int64 (checked once, up front)."""
        limit = 2 ** 62
        m = self.mul * max_price_ticks * self.sbu            # sbu x m of entry_steps at the top price
        worst = max((self.f_den + 2 * self.f_num) * m, self.f_num * max_cash_units,
                    max_cash_units * self.sbu * max(2, self.fee_num), max_cash_units * self.fee_num,
                    max_price_ticks * (self.slip_den + self.slip_num))
        if worst >= limit:
            raise ValueError(f"{self.symbol}: cash up to {max_cash_units} quote units at prices up to "
                             f"{max_price_ticks} ticks overflows int64 arithmetic; use a smaller account")

    # ---- sizing and filters -------------------------------------------------------------

    def entry_steps(self, cash: np.ndarray, base: np.ndarray, close: np.ndarray) -> np.ndarray:
        """Steps a BUY signal gets when flat (base < one step): min(equity x fraction, cash)
        over the step's value at the close, rounded down; <= 0 means no order."""
        m = close * self.mul                                 # quote units per step at the close
        k, r = np.divmod(cash, m)                            # steps the cash buys, and what is left
        # equity x fraction / m = fraction x (k + (r x sbu + base x m) / (sbu x m)), split so that
        # no product leaves int64: y < 2 x sbu x m.
        y = r * self.sbu + base * m
        u, v = np.divmod(self.f_num * k, self.f_den)
        sm = self.sbu * m
        extra = (v * sm + self.f_num * y) // (self.f_den * sm)
        return np.minimum(u + extra, k)

    def allowed(self, steps: np.ndarray, close: np.ndarray) -> np.ndarray:
        """The exchange filters PreTradeRisk checks for a MARKET order, valued at the close."""
        ok = steps > 0
        if self.min_qty > 0:
            ok &= steps >= self.min_qty
        if self.max_qty > 0:
            ok &= steps <= self.max_qty
        if self.step > 1:
            ok &= (steps - self.min_qty) % self.step == 0
        if self.market_min_qty > 0:
            ok &= steps >= self.market_min_qty
        if self.market_max_qty > 0:
            ok &= steps <= self.market_max_qty
        if self.market_step > 1:
            ok &= (steps - self.market_min_qty) % self.market_step == 0
        if self.min_notional > 0:
            ok &= steps * close >= self.min_notional
        if self.max_notional > 0:
            ok &= steps * close <= self.max_notional
        return ok

    # ---- the venue ----------------------------------------------------------------------

    def buy_price(self, open_: np.ndarray) -> np.ndarray:
        if not self.slip_num:
            return open_
        return round_half_even(open_ * (self.slip_den + self.slip_num), self.slip_den)

    def sell_price(self, open_: np.ndarray) -> np.ndarray:
        if not self.slip_num:
            return open_
        return round_half_even(open_ * (self.slip_den - self.slip_num), self.slip_den)

    def buy_fee(self, steps: np.ndarray) -> np.ndarray:
        """Fee of a buy, in base units (charged in the base asset received)."""
        return round_half_up(steps * (self.sbu * self.fee_num), self.fee_den)

    def sell_fee(self, notional: np.ndarray) -> np.ndarray:
        """Fee of a sell of `notional` quote units, in quote units."""
        return round_half_up(notional * self.fee_num, self.fee_den)

    # ---- valuation ----------------------------------------------------------------------

    def equity(self, cash: np.ndarray, base: np.ndarray, close: np.ndarray) -> np.ndarray:
        """Cash plus holdings at the close, in quote units, as float64 (rewards, observations).
        The sum is exact in int64 (units of 1/sbu quote unit) before the one division."""
        return (cash * self.sbu + base * close * self.mul) / self.sbu

    def equity_decimal(self, cash: int, base: int, close: int) -> Decimal:
        """The exact equity in the quote asset, as the portfolio computes it."""
        return (Decimal(int(cash)) + Decimal(int(base)) * int(close) * self.mul / self.sbu) * E8
