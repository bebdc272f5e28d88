"""Position sizing: how much to buy for a signal, in whole quantity steps.

Modes (config `risk.sizing`):
- fixed_quote: `fixed_quote` of the quote asset per order.
- fixed_fraction: `fraction` of equity per order.
- volatility: risk `volatility_risk_bps` of equity between entry and the signal's stop
  loss: qty = equity * bps / 1e4 / |entry - stop|. A signal without a stop is not sized.
- kelly: fraction = p - (1 - p) / b with p = the signal's confidence and b = 1 (even
  payoff), capped at `kelly_cap`; no edge (<= 0) means no order.
All arithmetic is Decimal; the result is rounded down to the step.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal


class SizingError(ValueError):
    """The signal cannot be sized; the message says why (it becomes the decision's reason)."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def notional_budget(mode: str, settings, equity: Decimal, confidence: float, entry: Decimal,
                    stop: Decimal | None) -> Decimal:
    if mode == "fixed_quote":
        return Decimal(settings.fixed_quote)
    if mode == "fixed_fraction":
        return equity * Decimal(str(settings.fraction))
    if mode == "volatility":
        if stop is None or stop <= 0 or stop == entry:
            raise SizingError("NO_STOP", "volatility sizing needs a stop loss on the signal")
        risk = equity * Decimal(str(settings.volatility_risk_bps)) / Decimal(10_000)
        return risk / abs(entry - stop) * entry
    if mode == "kelly":
        p = Decimal(str(confidence))
        fraction = min(p - (1 - p), Decimal(str(settings.kelly_cap)))
        if fraction <= 0:
            raise SizingError("NO_EDGE", f"Kelly fraction {fraction} <= 0 at confidence {confidence:.2f}")
        return equity * fraction
    raise SizingError("BAD_SIZING", f"unknown sizing mode {mode!r}")


def steps_for(notional: Decimal, price: Decimal, step: Decimal) -> int:
    """Whole steps of `step` that `notional` buys at `price`, rounded down."""
    if price <= 0 or notional <= 0:
        return 0
    return int((notional / price / step).to_integral_value(rounding=ROUND_DOWN))
