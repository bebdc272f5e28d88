"""Local exits: an entry fill arms a bracket (stop loss, take profit, trailing stop); the first
level a trade reaches sends one SELL signal and disarms the rest (one-cancels-other); a SELL
fill disarms it; brackets survive a restart."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from abidance.core import topics
from abidance.execution.engine import ExecutionEngine
from abidance.execution.exits import Bracket, ExitManager
from tests.unit.node_kit import (INSTRUMENTS, SYMBOL, FakeClient, Recorder, answer, async_test, fill, new_bus_clock,
                                 request, settle, ticks, trade)

ENTRY = "50000.00"


class Rig:
    def __init__(self, exits: dict | None = None):
        self.bus, self.clock = new_bus_clock()
        self.execution = SimpleNamespace(exits=dict(exits or {}), instruments=INSTRUMENTS)
        self.rec = Recorder(self.bus, topics.SIGNALS)
        self.manager = ExitManager(self.bus, self.clock, self.execution)
        self.manager.start()

    def entry(self, cid: str = "e1", price: str = ENTRY, qty: str = "0.001", trade_id: int = 1) -> None:
        self.bus.publish(topics.FILLS, fill("BUY", qty, price, cid=cid, strategy_id="s1", trade_id=trade_id))

    def trades(self, *prices: str) -> None:
        for p in prices:
            self.bus.publish(topics.TRADES, trade(p))

    @property
    def signals(self):
        return self.rec[topics.SIGNALS]


def armed(stop: str | None = None, take: str | None = None, trail: int = 0) -> Rig:
    r = Rig({"e1": (ticks(stop) if stop else 0, ticks(take) if take else 0, trail)})
    r.entry()
    return r


def test_entry_fill_arms_a_bracket_from_the_entry_price():
    r = armed("49000.00", "52000.00", 100)
    b = r.manager.brackets[("s1", SYMBOL)]
    assert (b.strategy_id, b.stop_loss, b.take_profit, b.trailing_bps, b.high) == \
        ("s1", 4_900_000, 5_200_000, 100, 5_000_000)


def test_stop_loss_sends_one_sell_and_disarms_the_bracket():
    r = armed("49000.00", "52000.00")
    r.trades("49500.00", "49000.01")
    assert r.signals == []
    r.trades("49000.00", "48000.00", "52000.00")     # stop hit; the take profit is cancelled with it
    [sig] = r.signals
    assert (sig.strategy_id, sig.symbol, sig.side, sig.confidence, sig.price) == ("s1", SYMBOL, "SELL", 1.0, 0)
    assert sig.reason == "stop loss 4900000 hit at 4900000"
    assert r.manager.brackets == {} and r.manager.triggered == 1


def test_take_profit_sends_one_sell_and_cancels_the_stop():
    r = armed("49000.00", "52000.00")
    r.trades("51999.99", "52000.00", "52100.00", "48000.00")
    [sig] = r.signals
    assert sig.side == "SELL" and sig.reason.startswith("take profit 5200000 hit at 5200000")
    assert r.manager.brackets == {}


def test_trailing_stop_follows_the_high_and_triggers_below_it():
    r = armed(trail=100)                                 # 1 % below the highest trade since entry
    r.trades("49600.00")                                 # 0.8 % under the entry price: not yet
    assert r.signals == []
    r.trades("52000.00", "51500.00")                     # new high; 0.96 % below it
    assert r.signals == [] and r.manager.brackets[("s1", SYMBOL)].high == ticks("52000.00")
    r.trades("51480.00", "51000.00")                     # exactly 1 % below the high
    [sig] = r.signals
    assert sig.reason == "trailing stop 100 bps below high 5200000 hit at 5148000"


def test_trailing_stop_triggers_from_the_entry_price_when_it_never_rose():
    r = armed(trail=100)
    r.trades("49500.00")
    assert len(r.signals) == 1


def test_sell_fill_disarms_the_bracket():
    r = armed("49000.00", "52000.00", 100)
    r.bus.publish(topics.FILLS, fill("SELL", "0.001", "50500", cid="x9", trade_id=2))
    r.trades("48000.00", "53000.00")
    assert r.signals == [] and r.manager.brackets == {}


def test_entry_without_exits_arms_nothing():
    r = Rig()
    r.entry()
    r.trades("1.00")
    assert r.manager.brackets == {} and r.signals == []


def test_later_fills_of_the_same_entry_keep_the_first_bracket():
    r = armed("49000.00")
    r.entry(price="49500.00", trade_id=2)
    assert r.manager.brackets[("s1", SYMBOL)].high == ticks(ENTRY)


def test_trades_of_other_symbols_are_ignored():
    r = armed("49000.00")
    r.bus.publish(topics.TRADES, trade("100.00", "ETHUSDT"))
    assert r.signals == [] and ("s1", SYMBOL) in r.manager.brackets


def test_bracket_state_round_trips_and_still_triggers():
    r = armed("49000.00", "52000.00", 100)
    r.trades("51000.00")
    state = json.loads(json.dumps(r.manager.to_state()))
    assert state == {"brackets": [["s1", SYMBOL, 4_900_000, 5_200_000, 100, 5_100_000]], "native": []}

    again = Rig()
    again.manager.load_state(state)
    assert again.manager.brackets == r.manager.brackets
    older = Rig()                                        # a state file from before per-strategy brackets
    older.manager.load_state({SYMBOL: ["s1", 4_900_000, 5_200_000, 100, 5_100_000]})
    assert older.manager.brackets == r.manager.brackets
    again.trades("50489.00")                             # 1 % under the restored high of 51000
    [sig] = again.signals
    assert sig.strategy_id == "s1" and "trailing stop" in sig.reason


@pytest.mark.parametrize("price, reason", [
    (4_900_000, "stop loss"), (5_200_000, "take profit"), (5_000_000, ""), (4_950_000, "trailing stop"),
])
def test_bracket_trigger_levels(price, reason):
    b = Bracket("s1", SYMBOL, 4_900_000, 5_200_000, 50, high=5_000_000)
    assert b.trigger(price).startswith(reason) and bool(b.trigger(price)) == bool(reason)


@async_test
async def test_entry_placed_through_execution_arms_its_exits_when_it_fills():
    bus, clock = new_bus_clock()
    client = FakeClient()
    client.script("submit", lambda o: answer(o, "FILLED", "0.00040000", "20.00000000",
                                            fills=[("50000.00000000", "0.00040000", 21)]))
    execution = ExecutionEngine(bus, clock, client, INSTRUMENTS)
    manager = ExitManager(bus, clock, execution)
    signals = Recorder(bus, topics.SIGNALS)[topics.SIGNALS]
    execution.start()
    manager.start()
    execution.execute(request("e1", stop_loss=ticks("49000.00"), take_profit=ticks("55000.00")))
    await settle(execution)
    assert manager.brackets[("s1", SYMBOL)].stop_loss == ticks("49000.00")
    bus.publish(topics.TRADES, trade("48999.99"))
    [sig] = signals
    assert (sig.side, sig.strategy_id) == ("SELL", "s1")
