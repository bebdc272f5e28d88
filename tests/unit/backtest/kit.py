"""Shared factories for backtest tests: hand-made bars and a config around a scripted strategy.

`config(tmp_path, ...)` writes the strategies file and parses a node config with every money
limit off (known answers are the strategy's and the venue's alone); `Scripted` acts on given
bars: `script = "1:BUY 3:SELL 5:BUY@9000"` buys after bar 1, sells after bar 3, places a BUY
limit at 90.00 (ticks) after bar 5.
"""

from __future__ import annotations

from decimal import Decimal

import orjson

from abidance._core.wire import InstrumentCodec, MarketParser, trade_event
from abidance.config import parse_config
from abidance.core.events import Bar, BookSnapshot
from abidance.exchange.backtest.instruments import sim_instruments
from abidance.exchange.sim import market as mkt
from abidance.exchange.sim.exchange import SimExchange
from abidance.exchange.sim.server import DEFAULT_START, level_sizes
from abidance.exchange.sim.symbols import default_symbols

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
    """Acts after given bars: "n:SIDE" (market), "n:SIDE@ticks" (limit), "n:BUY^ticks" (with a stop loss
    there), separated by spaces."""

    params = {"script": Param("", doc="bar number:BUY|SELL[@price ticks][^stop ticks] ...")}

    def on_start(self):
        self.n = 0
        self.plan = {}
        for step in self.p.script.split():
            when, _, action = step.partition(":")
            action, _, stop = action.partition("^")
            side, _, price = action.partition("@")
            self.plan.setdefault(int(when), []).append((side, int(price or 0), int(stop or 0)))

    def act(self, symbol):
        for side, price, stop in self.plan.get(self.n, ()):
            if side == "BUY":
                self.buy(symbol, 1.0, price=price, stop_loss=stop, reason=f"script {self.n}")
            else:
                self.sell(symbol, 1.0, price=price, reason=f"script {self.n}")

    def on_bar(self, bar):
        self.n += 1
        self.act(bar.symbol)


class TradeScripted(Scripted):
    """The same script counted in trades of its symbol (for a node on live data: bars are slow)."""

    wants_trades = True

    def on_bar(self, bar):
        pass

    def on_trade(self, trade):
        self.n += 1
        self.act(trade.symbol)
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


def research_risk(quote: str = "BTC", per_order: str = "0.1") -> str:
    """The [risk] table of research: money limits off, a fixed `per_order` of `quote` per buy, no kill file."""
    return f"""[risk]
quote_asset = "{quote}"
max_order_notional = "0"
max_gross_exposure = "0"
daily_loss_limit = "0"
max_drawdown = "0"
price_band_bps = 0
sizing = "fixed_quote"
fixed_quote = "{per_order}"
min_confidence = 0.0
kill_switch_file = ""
"""


def research_config(strategies_dir, class_name: str, symbol: str = "ETHBTC", timeframe: str = "5m") -> str:
    """A live-mode config for research on BTC-quoted candles: one strategy from `strategies_dir`,
    money limits off, a fixed 0.1 BTC per buy, no kill file."""
    return f"""
config_version = 1
[node]
mode = "live"
strategies_dir = "{strategies_dir}"
state_dir = "{strategies_dir}/state"
{research_risk()}[[strategies]]
id = "s"
class = "{class_name}"
symbols = ["{symbol}"]
timeframe = "{timeframe}"
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


# ---- the simulator's market, in process ------------------------------------------------------

class _Tape:
    """Collects what the simulated exchange publishes: trades, and depth changes per market step."""

    def __init__(self):
        self.trades: list[dict] = []
        self.changes: list[tuple[int, str, str, str]] = []      # (update id, side, price, qty)

    def on_trade(self, symbol, trade):
        self.trades.append(trade)

    def on_depth_change(self, symbol, update_id, side, price, qty):
        self.changes.append((update_id, side, price, qty))


def sim_market(seconds: float, seed: int = 7, symbol: str = "BTCUSDT", step_ms: int = 100):
    """The simulator's own market (its exchange, market maker and price path, no sockets), run for
    `seconds` of market time: (TradeEvents, [BookSnapshot, DepthDiffEvent, ...]) as the connector
    would have received them: a snapshot at the start, one diff per step that changed the book."""
    spec = next(s for s in default_symbols() if s.symbol == symbol)
    inst = sim_instruments()[symbol]
    now = [T0 // 1_000_000]
    tape = _Tape()
    exchange = SimExchange([spec], lambda: now[0], tape, seed=seed)
    path = mkt.SyntheticPath(seed, mkt.to_grid(DEFAULT_START[symbol], spec.tick_size), vol_bps_per_sqrt_s=3.0,
                             step_ms=step_ms)
    driver = mkt.MarketDriver(exchange, symbol, path, rng_seed=seed + 100, level_qty_steps=level_sizes(spec, path))
    driver.step(now[0])
    book = exchange.depth(symbol, 1000)
    to = lambda rows: [(inst.price.to_units(p), inst.qty.to_units(q)) for p, q in rows]   # noqa: E731
    depth = [BookSnapshot(symbol, to(book["bids"]), to(book["asks"]), book["lastUpdateId"], now[0] * 1_000_000)]
    tape.trades.clear()
    tape.changes.clear()
    parser = MarketParser([InstrumentCodec(symbol, inst.price, inst.qty)])
    trades = []
    for _ in range(int(seconds * 1000 / step_ms)):
        now[0] += step_ms
        driver.step(now[0])
        if tape.changes:
            levels = {"b": {}, "a": {}}
            for _, side, price, qty in tape.changes:
                levels[side][price] = qty
            frame = orjson.dumps({"e": "depthUpdate", "E": now[0], "s": symbol, "U": tape.changes[0][0],
                                  "u": tape.changes[-1][0], "b": list(levels["b"].items()),
                                  "a": list(levels["a"].items())})
            depth.append(parser.parse(frame, now[0] * 1_000_000))
        for t in tape.trades:
            ts = t["time"] * 1_000_000
            trades.append(trade_event(symbol, t["id"], inst.price.to_units(t["price"]), inst.qty.to_units(t["qty"]),
                                      t["buyer_is_maker"], ts, ts, ts))
        tape.trades.clear()
        tape.changes.clear()
    return trades, depth


# ---- your own data (issue 18): a research config in a quote asset of your own, Binance's kline CSV ----

def own_config(symbol: str, timeframe: str, quote: str = "USD") -> str:
    """Research in a quote asset of your own (the simulator has no USD symbol): 1000 `quote` per
    order, 10000 to start, an EMA crossover (3/8) on `symbol`."""
    return f"""
config_version = 1
{research_risk(quote, "1000")}[backtest]
balances = {{ {quote} = "10000" }}
[[strategies]]
id = "stock-ema"
class = "ema_cross"
symbols = ["{symbol}"]
timeframe = "{timeframe}"
params = {{ fast = 3, slow = 8 }}
"""


def closes(n: int) -> list[str]:
    """A price that rises and falls in waves, so an EMA crossover trades on it."""
    return [f"{100 + 20 * ((i // 6) % 2) + (i % 6) * (1 if (i // 6) % 2 == 0 else -1):.2f}" for i in range(n)]


def binance_kline_csv(path, opens_ms: list[int], micro_from: int | None = None) -> None:
    """Binance's kline CSV: no header, 12 columns; times in microseconds from `micro_from` (ms) on (the
    close-time column, which the loader does not read, is a minute after the open)."""
    lines = []
    for t, c in zip(opens_ms, closes(len(opens_ms))):
        scale = 1000 if micro_from is not None and t >= micro_from else 1
        lines.append(f"{t * scale},{c},{c},{c},{c},5.00000000,{(t + 59_999) * scale + scale - 1},500.0,3,2.5,250.0,0")
    path.write_text("\n".join(lines) + "\n")
