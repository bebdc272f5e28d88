"""The node config that research runs the backtester with: walk-forward evaluations, the RL
environments, held-out comparisons of models against baselines.

Only the exchange filters stay on in the risk engine: money limits, order-rate limits, the
price band, the error and stale-data breakers and the kill-switch file are off, so a result
is the strategy's and the fill model's alone (not a limit tuned for live trading, nor a
KILL file that happens to exist on the machine). Sizing is `fixed_fraction`: each entry
spends min(equity x fraction, cash); fraction < 1 leaves room for the close-to-open gap and
slippage, since a market order is sized at the close and filled at the next open: an entry
whose cost at that open exceeds the cash is refused by the venue (-2010), as Binance would.
execution.max_slippage_bps is 0 (bars have no book to walk), so the fraction alone is the room.
"""

from __future__ import annotations

import math
from decimal import Decimal
from pathlib import Path

from abidance.config import parse_config


def research_config(quote_asset: str = "BTC", fraction: float = 0.95, strategies_toml: str = ""):
    """A validated NodeConfig; `strategies_toml` adds [[strategies]] tables (e.g. ema_cross)."""
    if not isinstance(quote_asset, str) or not quote_asset.isascii() or not quote_asset.isalnum():
        raise ValueError(f"quote_asset must be an asset name such as 'BTC', got {quote_asset!r}")
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float, Decimal)) or not math.isfinite(fraction):
        raise ValueError(f"fraction must be a number in (0, 1], got {fraction!r}")
    text = f"""
config_version = 1
[node]
mode = "paper"
[risk]
quote_asset = "{quote_asset}"
max_order_notional = "0"
max_gross_exposure = "0"
daily_loss_limit = "0"
max_drawdown = "0"
max_open_orders = 0
orders_per_10s = 0
orders_per_day = 0
price_band_bps = 0
max_errors_per_minute = 0
stale_data_s = 0
kill_switch_file = ""
sizing = "fixed_fraction"
fraction = {float(fraction)!r}
min_confidence = 0.0
[execution]
max_slippage_bps = 0
{strategies_toml}
"""
    return parse_config(text, Path.cwd(), env={}, source="abidance research config")
