"""Shared factories for backtest tests: hand-made bars and a config around a scripted strategy.

`config(tmp_path, ...)` writes the strategies file and parses a node config with every money
limit off (known answers are the strategy's and the venue's alone); `Scripted` acts on given
bars: `script = "1:BUY 3:SELL 5:BUY@9000"` buys after bar 1, sells after bar 3, places a BUY
limit at 90.00 (ticks) after bar 5.
"""

from __future__ import annotations

from decimal import Decimal

from abidance.config import parse_config
from abidance.core.events import Bar

MIN = 60_000_000_000
T0 = 1_700_000_040 * 1_000_000_000 // MIN * MIN

STRATEGIES = '''
from abidance.strategy import Param, Strategy


class BuyThenSell(Strategy):
    """Buys after its first bar, sells after its third."""

    def on_start(self):
        self.n = 0

    def on_bar(self, bar):
        self.n += 1
        if self.n == 1:
            self.buy(bar.symbol, 1.0, reason="first bar")
        elif self.n == 3:
            self.sell(bar.symbol, 1.0, reason="third bar")


class Scripted(Strategy):
    """Acts after given bars: "n:SIDE" (market) or "n:SIDE@ticks" (limit), separated by spaces."""

    params = {"script": Param("", doc="bar number:BUY|SELL[@price ticks] ...")}

    def on_start(self):
        self.n = 0
        self.plan = {}
        for step in self.p.script.split():
            when, _, action = step.partition(":")
            side, _, price = action.partition("@")
            self.plan.setdefault(int(when), []).append((side, int(price or 0)))

    def on_bar(self, bar):
        self.n += 1
        for side, price in self.plan.get(self.n, ()):
            act = self.buy if side == "BUY" else self.sell
            act(bar.symbol, 1.0, price=price, reason=f"script bar {self.n}")


class TradeScripted(Scripted):
    """The same script counted in trades of its symbol (for a node on live data: bars are slow)."""

    wants_trades = True

    def on_bar(self, bar):
        pass

    def on_trade(self, trade):
        self.n += 1
        for side, price in self.plan.get(self.n, ()):
            act = self.buy if side == "BUY" else self.sell
            act(trade.symbol, 1.0, price=price, reason=f"script trade {self.n}")
'''

RISK_OFF = """
quote_asset = "USDT"
max_order_notional = "0"
max_gross_exposure = "0"
daily_loss_limit = "0"
max_drawdown = "0"
price_band_bps = 0
min_confidence = 0.0
"""


def bar(i: int, o: str, h: str, low: str, c: str, symbol: str = "BTCUSDT", volume: int = 0) -> Bar:
    """Bar i of BTCUSDT (ticks of 0.01) from decimal strings."""
    t = lambda p: int(Decimal(p) * 100)   # noqa: E731
    return Bar(symbol, "1m", T0 + i * MIN, T0 + (i + 1) * MIN, t(o), t(h), t(low), t(c), volume, 1)


def flat_bars(prices: list[str], symbol: str = "BTCUSDT") -> list[Bar]:
    """One bar per price, open = high = low = close."""
    return [bar(i, p, p, p, p, symbol) for i, p in enumerate(prices)]


def config(tmp_path, extra: str = "", *, strategies: str = "", risk: str = 'sizing = "fixed_quote"\n'
           'fixed_quote = "1000"', node: str = ""):
    """A node config around the kit's strategies. `strategies` holds [[strategies]] tables (default:
    one BuyThenSell on BTCUSDT), `risk` keys added to the limits-off [risk], `extra` more tables."""
    (tmp_path / "kit_strategies.py").write_text(STRATEGIES)
    strategies = strategies or '''
[[strategies]]
id = "bts"
class = "kit_strategies:BuyThenSell"
symbols = ["BTCUSDT"]
timeframe = "1m"
'''
    return parse_config(f"""
config_version = 1
[node]
mode = "live"
strategies_dir = "{tmp_path}"
state_dir = "{tmp_path / 'state'}"
{node}
[risk]
{RISK_OFF}
{risk}
{extra}
{strategies}
""", tmp_path, env={})


def scripted(sid: str, script: str, symbol: str = "BTCUSDT", timeframe: str = "1m", by: str = "Scripted") -> str:
    """A [[strategies]] table for one Scripted strategy (`by="TradeScripted"`: counted in trades)."""
    return f'''
[[strategies]]
id = "{sid}"
class = "kit_strategies:{by}"
symbols = ["{symbol}"]
timeframe = "{timeframe}"
params = {{ script = "{script}" }}
'''
