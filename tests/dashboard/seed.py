"""A store seeded from real Binance candles (../shared/data/market) for the dashboard's tests.

Bars are the real ETH/BTC and LTC/BTC 5m candles (2018-01-10 .. 2018-01-30). On them a
plain SMA(12)/SMA(48) cross trades one ETH and five LTC, filled at the bar's close with a
0.1% fee in BTC (the ETH position is left open at the end); the orders, fills, positions,
equity (10 BTC of cash to start), risk decisions, book tops (close +- 5 bps), trading-state
changes, alerts and health records follow from those trades. Rows go in through the
writer's own Arrow conversion (`abidance.store.arrow_batch.to_arrow`) and clickhouse-connect's
`insert_arrow`, as the node's StoreWriter sends them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

import pandas as pd

from abidance.store.arrow_batch import to_arrow
from abidance.store.schema import BY_NAME
from tests.kit import load_candles

SYMBOLS = {"ETHBTC": ("ETH_BTC-5m", "eth-sma", Decimal("1")), "LTCBTC": ("LTC_BTC-5m", "ltc-sma", Decimal("5"))}
INTERVAL = "5m"
START_CASH = Decimal("10")
FEE_RATE = Decimal("0.001")
E8 = Decimal("1e-8")
E18 = Decimal("1e-18")
MS = 1_000_000

CONFIG_TEXT = """\
# The dashboard tests' node config: BTC-quoted symbols, as in the seeded store.
config_version = 1

[node]
name = "dash-test"
mode = "paper"
state_dir = "state"

[risk]
quote_asset = "BTC"
max_order_notional = "0.5"
max_gross_exposure = "2"
daily_loss_limit = "0.1"
max_drawdown = "0.3"
max_open_orders = 4
orders_per_day = 100
max_position = { ETHBTC = "2", LTCBTC = "10" }
fixed_quote = "0.1"

[store]
database = "abidance"

[[strategies]]
id = "eth-sma"
class = "ema_cross"
symbols = ["ETHBTC"]
timeframe = "5m"
params = { fast = 12, slow = 26 }

[[strategies]]
id = "ltc-sma"
class = "ema_cross"
symbols = ["LTCBTC"]
timeframe = "5m"
params = { fast = 12, slow = 26 }
"""


def d8(x: float) -> Decimal:
    return Decimal(f"{x:.8f}").normalize()


@dataclass
class Seeded:
    """What the seed wrote, for the tests' expectations."""
    rows: dict[str, int] = field(default_factory=dict)
    last_equity: Decimal = Decimal(0)
    first_equity: Decimal = Decimal(0)
    equity_points: int = 0
    fills: int = 0
    open_orders: list[str] = field(default_factory=list)
    rejected: int = 0
    denials: int = 0
    last_close: dict[str, Decimal] = field(default_factory=dict)
    bars: dict[str, int] = field(default_factory=dict)
    first_bar_ns: int = 0
    last_bar_ns: int = 0


class _Rows:
    def __init__(self):
        self.by_table: dict[str, list[tuple]] = {t: [] for t in BY_NAME}
        self.n = 0

    def add(self, table: str, row: tuple) -> None:
        self.by_table[table].append(row)

    def eid(self) -> str:
        self.n += 1
        return f"seed-{self.n}"


def build(rows: _Rows) -> Seeded:
    seeded = Seeded()
    frames = {}
    for symbol, (name, _, _) in SYMBOLS.items():
        df = load_candles(name).copy()
        df["ts"] = df["date"].astype("int64")
        df["fast"] = df["close"].rolling(12).mean()
        df["slow"] = df["close"].rolling(48).mean()
        frames[symbol] = df
        seeded.bars[symbol] = len(df)
        seeded.last_close[symbol] = d8(df["close"].iloc[-1])
        for r in df.itertuples(index=False):
            rows.add("bars", (r.ts, symbol, INTERVAL, r.ts + 300 * 10**9, d8(r.open), d8(r.high), d8(r.low),
                              d8(r.close), d8(r.volume), 100))
            close = d8(r.close)
            rows.add("book_tops", (r.ts + 299 * 10**9, symbol, (close * Decimal("0.9995")).quantize(E8),
                                   Decimal("3.5"), (close * Decimal("1.0005")).quantize(E8), Decimal("2.25"),
                                   r.ts // 10**6))
    seeded.first_bar_ns = int(min(f["ts"].iloc[0] for f in frames.values()))
    seeded.last_bar_ns = int(max(f["ts"].iloc[-1] for f in frames.values()))

    cash = START_CASH
    book = {s: {"qty": Decimal(0), "cost": Decimal(0), "realized": Decimal(0)} for s in SYMBOLS}
    fees = realized_total = Decimal(0)
    peak = START_CASH
    order_no = 0
    order_id = 1000
    closes = {s: Decimal(0) for s in SYMBOLS}
    cols = {s: {"ts": f["ts"].tolist(), "close": [d8(x) for x in f["close"]], "fast": f["fast"].tolist(),
                "slow": f["slow"].tolist()} for s, f in frames.items()}
    at = {s: {t: i for i, t in enumerate(c["ts"])} for s, c in cols.items()}
    for ts in sorted(set().union(*(c["ts"] for c in cols.values()))):
        ts = int(ts)
        for symbol in SYMBOLS:
            i = at[symbol].get(ts)
            if i is None:
                continue
            c = cols[symbol]
            close = closes[symbol] = c["close"][i]
            if i == 0 or pd.isna(c["slow"][i - 1]):
                continue
            up = c["fast"][i] > c["slow"][i] and c["fast"][i - 1] <= c["slow"][i - 1]
            down = c["fast"][i] < c["slow"][i] and c["fast"][i - 1] >= c["slow"][i - 1]
            b = book[symbol]
            side = "BUY" if up and b["qty"] == 0 else "SELL" if down and b["qty"] > 0 else None
            if symbol == "ETHBTC" and i == len(c["ts"]) - 1:
                side = "BUY" if b["qty"] == 0 else None      # end with a position open
            strategy = SYMBOLS[symbol][1]
            if side == "BUY" and i % 7 == 0:      # every so often the risk engine refuses the entry
                rows.add("risk_decisions", (ts, rows.eid(), strategy, symbol, "BUY", False,
                                            "MAX_OPEN_ORDERS" if i % 2 else "PRICE_BAND",
                                            "too many open orders" if i % 2 else "limit price too far from the mid",
                                            Decimal(0), close, "", 0.6))
                seeded.denials += 1
                side = None
            if side is None:
                continue
            qty = SYMBOLS[symbol][2] if side == "BUY" else b["qty"]
            order_no += 1
            order_id += 1
            coid = f"{strategy}-{order_no}"
            notional = qty * close
            fee = (notional * FEE_RATE).quantize(E8)
            rows.add("signals", (ts, rows.eid(), strategy, symbol, side, 0.7, Decimal(0), "sma cross"))
            rows.add("risk_decisions", (ts, rows.eid(), strategy, symbol, side, True, "OK", "", qty, Decimal(0), coid,
                                        0.7))
            for k, (status, prev, filled) in enumerate((("PENDING_NEW", "", 0), ("NEW", "PENDING_NEW", 0),
                                                        ("FILLED", "NEW", 1))):
                rows.add("order_events", (ts + k * MS, rows.eid(), coid, strategy, symbol, side, "MARKET", status,
                                          prev, qty, qty if filled else Decimal(0), Decimal(0), order_id, ""))
            rows.add("fills", (ts + 2 * MS, rows.eid(), coid, strategy, symbol, side, qty, close, fee, "BTC",
                               order_id * 10, False))
            seeded.fills += 1
            fees += fee
            if side == "BUY":
                cash -= notional + fee
                b["qty"] += qty
                b["cost"] += notional
                realized = -fee
            else:
                cash += notional - fee
                realized = notional - b["cost"] - fee
                b["qty"], b["cost"] = Decimal(0), Decimal(0)
            b["realized"] += realized
            realized_total += realized
            avg = (b["cost"] / b["qty"]).quantize(E18) if b["qty"] else Decimal(0)
            rows.add("positions", (ts + 2 * MS, rows.eid(), strategy, symbol, b["qty"], avg, b["realized"],
                                   b["qty"] * close - b["cost"]))
        pv = sum((book[s]["qty"] * closes[s] for s in SYMBOLS), Decimal(0))
        equity = cash + pv
        peak = max(peak, equity)
        unrealized = sum((book[s]["qty"] * closes[s] - book[s]["cost"] for s in SYMBOLS), Decimal(0))
        rows.add("equity", (ts + 299 * 10**9, rows.eid(), equity, cash, pv, realized_total, unrealized, fees,
                            peak - equity))
        if not seeded.equity_points:
            seeded.first_equity = equity
        seeded.equity_points += 1
        seeded.last_equity = equity

    end = seeded.last_bar_ns + 300 * 10**9
    # Two resting limit orders at the end, two cancelled ones, three rejected ones.
    for k, symbol in enumerate(SYMBOLS):
        strategy = SYMBOLS[symbol][1]
        price = (closes[symbol] * Decimal("0.98")).quantize(E8)
        for j, (status, filled) in enumerate((("NEW", None), ("CANCELED", None), ("REJECTED", None))):
            order_no += 1
            order_id += 1
            coid = f"{strategy}-{order_no}"
            t = end - (10 - 3 * j - k) * 60 * 10**9
            rows.add("order_events", (t, rows.eid(), coid, strategy, symbol, "BUY", "LIMIT", "PENDING_NEW", "",
                                      SYMBOLS[symbol][2], Decimal(0), price, 0, ""))
            if status == "REJECTED":
                rows.add("order_events", (t + MS, rows.eid(), coid, strategy, symbol, "BUY", "LIMIT", "REJECTED",
                                          "PENDING_NEW", SYMBOLS[symbol][2], Decimal(0), price, 0,
                                          "Account has insufficient balance for requested action."))
                seeded.rejected += 1
                continue
            rows.add("order_events", (t + MS, rows.eid(), coid, strategy, symbol, "BUY", "LIMIT", "NEW",
                                      "PENDING_NEW", SYMBOLS[symbol][2], Decimal(0), price, order_id, ""))
            if status == "CANCELED":
                rows.add("order_events", (t + 2 * MS, rows.eid(), coid, strategy, symbol, "BUY", "LIMIT", "CANCELED",
                                          "NEW", SYMBOLS[symbol][2], Decimal(0), price, order_id, "timeout"))
            else:
                seeded.open_orders.append(coid)
    # The latest depth of each symbol: ten levels around the last close.
    for symbol in SYMBOLS:
        c = closes[symbol]
        bids = [(c * (1 - Decimal(k) / 1000)).quantize(E8) for k in range(1, 11)]
        asks = [(c * (1 + Decimal(k) / 1000)).quantize(E8) for k in range(1, 11)]
        qtys = [Decimal(k) for k in range(1, 11)]
        rows.add("depth_snapshots", (end, symbol, 99, bids, qtys, asks, qtys))
    first = seeded.first_bar_ns
    for t, state, prev, reason, source in (
            (first, "ACTIVE", "", "node started", "risk"),
            (first + 5 * 86400 * 10**9, "HALTED", "ACTIVE", "daily loss limit reached", "breaker:daily_loss"),
            (first + 6 * 86400 * 10**9, "ACTIVE", "HALTED", "resumed by the operator", "operator"),
            (first + 12 * 86400 * 10**9, "REDUCING", "ACTIVE", "no market data for 12 s", "breaker:stale_data"),
            (first + 12 * 86400 * 10**9 + 60 * 10**9, "ACTIVE", "REDUCING", "market data flows again",
             "breaker:stale_data")):
        rows.add("trading_state", (t, rows.eid(), state, prev, reason, source))
    for t, level, source, code, msg in (
            (first, "info", "node", "node_started", "node dash-test started in paper mode"),
            (first + 86400 * 10**9, "warning", "binance.ws", "stream_disconnected", "ethbtc@kline_5m closed (1006)"),
            (first + 3 * 86400 * 10**9, "warning", "binance.ws", "stream_disconnected", "ltcbtc@kline_5m closed"),
            (first + 5 * 86400 * 10**9, "critical", "risk", "breaker_tripped", "daily loss limit reached: HALTED"),
            (first + 8 * 86400 * 10**9, "error", "store", "store_down", "store unreachable: spooling"),
            (first + 8 * 86400 * 10**9 + 30 * 10**9, "info", "store", "store_recovered", "store reachable again"),
            (end - 10**9, "error", "execution", "order_rejected", "LTCBTC buy rejected: insufficient balance")):
        rows.add("alerts", (t, rows.eid(), level, source, code, msg))
    for h in range(0, (seeded.last_bar_ns - first) // (3600 * 10**9) + 1):
        t = first + h * 3600 * 10**9
        for k, stream in enumerate(("ethbtc@kline_5m", "ltcbtc@kline_5m")):
            rows.add("health", (t, rows.eid(), stream, 12 * (h + 1), 0.0033, 35.0 + k, 120.0 + h % 7, h // 100,
                                0))
    rows.add("config_versions", (first, 1, "seed", CONFIG_TEXT, "the seeded config"))
    return seeded


def seed_store(client, database: str = "abidance") -> Seeded:
    """Fill `database` (already migrated) with the real-data seed; returns what was written."""
    rows = _Rows()
    seeded = build(rows)
    for table, data in rows.by_table.items():
        if data:
            client.insert_arrow(f"{database}.{table}", to_arrow(BY_NAME[table], data))
        seeded.rows[table] = len(data)
    return seeded
