"""The simulator tests' kit: a SimExchange on a manual clock with two funded accounts, a
listener that records everything it pushes, and short ways to place orders and lists."""

from __future__ import annotations

import json
from decimal import Decimal as D

import pytest

from abidance.exchange.sim.errors import BinanceError
from abidance.exchange.sim.exchange import NullListener, SimExchange
from abidance.exchange.sim.symbols import default_symbols
from tests.kit import shared_data

SYMBOL = "BTCUSDT"
T0 = 1_700_000_000_000


class Clock:
    def __init__(self):
        self.t = T0

    def __call__(self):
        return self.t


class Recorder(NullListener):
    def __init__(self):
        self.trades, self.depth, self.tickers, self.user = [], [], [], []

    def on_trade(self, symbol, trade):
        self.trades.append((symbol, trade))

    def on_depth_change(self, symbol, update_id, side, price, qty):
        self.depth.append((symbol, update_id, side, price, qty))

    def on_book_ticker(self, symbol, update_id, bid_price, bid_qty, ask_price, ask_qty):
        self.tickers.append((symbol, update_id, bid_price, bid_qty, ask_price, ask_qty))

    def on_user_event(self, account_id, payload):
        self.user.append((account_id, payload))

    def events(self, account_id, kind=None):
        return [p for a, p in self.user if a == account_id and (kind is None or p["e"] == kind)]

    def reports(self, account_id, order_id=None):
        """(x, X) of an account's executionReports, of one order when given."""
        return [(r["x"], r["X"]) for r in self.events(account_id, "executionReport")
                if order_id is None or r["i"] == order_id]


class Env:
    def __init__(self, symbols=None, faults=None, **balances):
        self.clock = Clock()
        self.rec = Recorder()
        self.ex = SimExchange(symbols or default_symbols(), self.clock, self.rec, faults=faults)
        start = balances or {"USDT": "100000", "BTC": "2"}
        self.alice = self.ex.create_account("alice-key", "alice-secret", dict(start))
        self.bob = self.ex.create_account("bob-key", "bob-secret", dict(start))

    def tick(self, ms=1):
        self.clock.t += ms

    def limit(self, account, side, qty, price, tif="GTC", **kw):
        self.tick()
        return self.ex.new_order(account, symbol=kw.pop("symbol", SYMBOL), side=side, type="LIMIT",
                                 time_in_force=tif, quantity=qty, price=price, **kw)

    def market(self, account, side, qty=None, quote=None, **kw):
        self.tick()
        return self.ex.new_order(account, symbol=SYMBOL, side=side, type="MARKET", quantity=qty,
                                 quote_order_qty=quote, **kw)

    def order(self, account, side, type, qty, **kw):
        """Any order type; keyword arguments as SimExchange.new_order takes them."""
        self.tick()
        return self.ex.new_order(account, symbol=SYMBOL, side=side, type=type, quantity=qty, **kw)

    def oco(self, account, **params):
        self.tick()
        return self.ex.new_oco(account, {"symbol": SYMBOL, **params})

    def oto(self, account, **params):
        self.tick()
        return self.ex.new_oto(account, {"symbol": SYMBOL, **params})

    def otoco(self, account, **params):
        self.tick()
        return self.ex.new_otoco(account, {"symbol": SYMBOL, **params})

    def last_at(self, price, qty="0.01"):
        """Print a trade at `price` between the market maker and bob (bob's book stays clean)."""
        self.ex.mm_quote(SYMBOL, "SELL", self.ticks(price), self.steps(qty))
        self.tick()
        self.ex.new_order(self.bob, symbol=SYMBOL, side="BUY", type="LIMIT", time_in_force="IOC", quantity=qty,
                          price=price, self_trade_prevention_mode="EXPIRE_MAKER")

    def sweep(self, side, price, qty="10"):
        """The market maker takes everything on the other side up to `price` (IOC)."""
        self.tick()
        return self.ex.mm_take(SYMBOL, side, self.ticks(price), self.steps(qty))

    def query(self, account, order_id):
        return self.ex.query_order(account, SYMBOL, order_id=order_id)

    def ticks(self, price):
        return self.ex.spec(SYMBOL).ticks_of(D(price))

    def steps(self, qty):
        return self.ex.spec(SYMBOL).steps_of(D(qty))

    def balances(self, account):
        return {a: (f, l) for a, (f, l) in account.balances.items()}


def sample(*parts):
    data = json.loads(shared_data("binance-nt", *parts).read_text())
    return data["data"] if isinstance(data, dict) and "data" in data and "stream" in data else data


def error_of(call) -> BinanceError:
    with pytest.raises(BinanceError) as info:
        call()
    return info.value


def totals(env):
    """Every asset summed over all accounts (free + locked) and the fees collected."""
    out = {}
    for account in env.ex.accounts:
        for asset, (free, locked) in account.balances.items():
            out[asset] = out.get(asset, D(0)) + free + locked
    for asset, fee in env.ex.fees_collected.items():
        out[asset] = out.get(asset, D(0)) + fee
    return out
