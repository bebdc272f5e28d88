"""One order of either run, in exact decimals: what was decided, acknowledged and filled.

Both runs are brought to this one shape: the live run from the store's rows
(abidance/drift/recording.py), the replay from its bus events (abidance/drift/replay.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

ZERO = Decimal(0)


@dataclass(frozen=True)
class FillRecord:
    qty: Decimal
    price: Decimal
    fee: Decimal
    fee_asset: str
    is_maker: bool
    ts: int
    trade_id: int = 0                 # the exchange's trade id (the same on the public tape)


@dataclass
class OrderRecord:
    """An accepted decision and what became of its order (`decided` is the risk decision's time)."""

    strategy_id: str
    symbol: str
    side: str
    decided: int                      # ns
    ordered: Decimal                  # quantity sent (base asset)
    client_order_id: str = ""
    acked: int | None = None          # ns the venue acknowledged it (NEW), None if never
    status: str = ""                  # the last state: FILLED, EXPIRED, CANCELED, REJECTED, ...
    manual: bool = False              # placed without a decision of the risk engine (an operator's order)
    order_type: str = ""

    @property
    def arrived(self) -> int | None:
        """When the venue had it, on the market's clock: a MARKET order's first fill (the venue's
        own time), else the acknowledgement."""
        if self.order_type == "MARKET" and self.fills:
            return self.fills[0].ts
        return self.acked
    fills: list[FillRecord] = field(default_factory=list)

    @property
    def sign(self) -> int:
        return 1 if self.side == "BUY" else -1

    @property
    def filled(self) -> Decimal:
        return sum((f.qty for f in self.fills), ZERO)

    @property
    def notional(self) -> Decimal:
        return sum((f.qty * f.price for f in self.fills), ZERO)


@dataclass(frozen=True)
class Denial:
    """A decision the risk engine refused (it never became an order)."""

    strategy_id: str
    symbol: str
    side: str
    decided: int
    reason: str
