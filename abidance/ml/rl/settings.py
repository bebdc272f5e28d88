"""The trading settings both environments (and the evaluation) share: account, fees, sizing, reward."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from decimal import Decimal, InvalidOperation


@dataclass(frozen=True)
class EnvSettings:
    starting_cash: Decimal = Decimal(1)        # quote asset
    taker_bps: Decimal = Decimal(10)           # the backtester's --fee-bps
    slippage_bps: Decimal = Decimal(0)
    fraction: float = 0.98                     # equity share per entry (risk.sizing = "fixed_fraction")
    reward_scale: float = 100.0

    def kwargs(self) -> dict:
        """Keyword arguments of TradingVecEnv / EngineTradingEnv."""
        return asdict(self)

    def to_dict(self) -> dict:
        return {"starting_cash": str(self.starting_cash), "taker_bps": str(self.taker_bps),
                "slippage_bps": str(self.slippage_bps), "fraction": float(self.fraction),
                "reward_scale": float(self.reward_scale)}

    @classmethod
    def from_dict(cls, data: dict) -> EnvSettings:
        """From to_dict's output; ValueError naming the key whose value is not a number."""
        if not isinstance(data, dict):
            raise ValueError(f"env settings must be a mapping, got {type(data).__name__}")
        unknown = sorted(set(data) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"env settings: unknown key {unknown[0]!r}")
        return cls(starting_cash=_decimal(data, "starting_cash", "1"), taker_bps=_decimal(data, "taker_bps", "10"),
                   slippage_bps=_decimal(data, "slippage_bps", "0"), fraction=_number(data, "fraction", 0.98),
                   reward_scale=_number(data, "reward_scale", 100.0))


def _decimal(data: dict, key: str, default: str) -> Decimal:
    value = data.get(key, default)
    try:
        # Exact amounts are kept as strings (to_dict); floats are refused: they are not exact.
        d = Decimal(value) if isinstance(value, (str, int, Decimal)) and not isinstance(value, bool) else None
    except InvalidOperation:
        d = None
    if d is None or not d.is_finite():
        raise ValueError(f"env settings: {key} must be a decimal number (a string such as \"10\"), got {value!r}")
    return d


def _number(data: dict, key: str, default: float) -> float:
    value = data.get(key, default)
    try:
        x = float(value) if isinstance(value, (int, float, str)) and not isinstance(value, bool) else math.nan
    except ValueError:
        x = math.nan
    if not math.isfinite(x):
        raise ValueError(f"env settings: {key} must be a finite number, got {value!r}")
    return x
