"""Order books in backtests: depth recorded from the simulator (real sockets) and Binance's own
depth samples, replayed through the data engine's books; book_imbalance backtested on both.

A recording is the data engine's input written down (abidance/data/depth_files.py); a backtest
on it keeps the book by the same rules as the node, so the book the backtest ends with is the
book the recording node ended with, level for level.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import uvloop

from abidance.backtest.engine import Backtest, sim_instruments
from abidance.config import parse_config
from abidance.core import topics
from abidance.core.bus import MessageBus
from abidance.core.clock import LiveClock
from abidance.data.depth_files import DepthRecorder, read_depth, read_trades, trades_path
from abidance.data.engine import DataEngine
from abidance.exchange.binance.config import BinanceConfig
from abidance.exchange.binance.connector import BinanceConnector
from abidance.exchange.binance.credentials import Credentials
from abidance.exchange.binance.rest import BinanceRest
from abidance.exchange.sim.config import DEMO_API_KEY, DEMO_API_SECRET, SimConfig
from tests.integration.conftest import RunningSim
from tests.kit import shared_data

SYMBOL = "BTCUSDT"
IMBALANCE = """
config_version = 1
[risk]
quote_asset = "USDT"
min_confidence = 0.0
sizing = "fixed_quote"
fixed_quote = "{quote}"
max_order_notional = "0"
max_gross_exposure = "0"
[execution]
max_slippage_bps = {slippage}
[[strategies]]
id = "imbalance"
class = "book_imbalance"
symbols = ["BTCUSDT"]
params = {{ depth = 5, threshold = {threshold}, cooldown_s = 1.0 }}
"""


def imbalance_config(tmp_path, quote: str = "30", slippage: int = 50, threshold: float = 0.2):
    return parse_config(IMBALANCE.format(quote=quote, slippage=slippage, threshold=threshold), tmp_path, env={})


def record_from_simulator(folder, seconds: float) -> list[list[int]]:
    """Connector + data engine + recorder against a running simulator; the live book's top 20 at the end."""
    sim = RunningSim(SimConfig(seed=51, speed=4.0))
    cfg = BinanceConfig(venue="sim", rest_url=sim.rest_url, ws_url=sim.ws_url)

    async def main():
        bus = MessageBus()
        async with BinanceRest(cfg, Credentials(DEMO_API_KEY, DEMO_API_SECRET), bus) as rest:
            conn = BinanceConnector(cfg, bus, rest)
            data = DataEngine(bus, LiveClock(), [SYMBOL], [], bar_source="bars", book_symbols=[SYMBOL])
            recorder = DepthRecorder(bus, folder, await rest.load_instruments([SYMBOL]))
            recorder.start()
            conn.snapshots.start()
            data.start()
            await conn.start([SYMBOL], ("trade", "depth"))
            await asyncio.sleep(seconds)
            sim.run(lambda: setattr(sim.server.venue, "paused", True))     # the last diffs arrive, none after
            await asyncio.sleep(0.4)
            book = data.books.view(SYMBOL)
            top = (book.top_bids(20).tolist(), book.top_asks(20).tolist(), book.last_update_id)
            data.stop()
            await conn.stop()
            recorder.close()
            return top

    try:
        return uvloop.run(main())
    finally:
        sim.close()


def test_book_imbalance_backtested_on_depth_recorded_from_the_simulator(tmp_path):
    live_bids, live_asks, live_update = record_from_simulator(tmp_path / "rec", 6.0)
    inst = sim_instruments()[SYMBOL]
    depth = read_depth(tmp_path / "rec", inst)
    trades = read_trades(trades_path(tmp_path / "rec", SYMBOL), inst)
    assert len(depth) > 20 and trades
    seen = {t: [] for t in (topics.BOOK_STATUS, topics.RISK_DECISIONS, topics.FILLS, topics.ALERTS)}
    bt = Backtest(imbalance_config(tmp_path), trades={SYMBOL: trades}, depth={SYMBOL: depth},
                  instruments={SYMBOL: inst}, balances={"USDT": Decimal("10000")},
                  on_bus=lambda bus: [bus.subscribe(t, sink.append) for t, sink in seen.items()])
    result = bt.run()
    # The recording replays into the same book the node held: level for level, the same last update.
    book = bt.kernel.data.books.view(SYMBOL)
    assert (book.top_bids(20).tolist(), book.top_asks(20).tolist(), book.last_update_id) == \
        (live_bids, live_asks, live_update)
    assert [s.ready for s in seen[topics.BOOK_STATUS]] == [True]                 # ready once, never lost
    # book_imbalance decided on the books; its orders were checked against them (the slippage walk) and
    # filled by walking the next book: every fill price is a level of the book.
    decided = seen[topics.RISK_DECISIONS]
    assert len(decided) >= 2 and all(d.strategy_id == "imbalance" for d in decided)
    assert result.fills and {f.side for f in result.fills} <= {"BUY", "SELL"}
    assert not [a for a in seen[topics.ALERTS] if a.code in ("balance_drift", "oversold")]
    assert bt.venue.balances()["USDT"][0] == result.balances["USDT"]


def test_the_risk_engines_book_walk_runs_on_recorded_books(tmp_path):
    # The simulator's book holds about a BTC within a few ticks of the touch: a 500000 USDT market BUY
    # (some 7.7 BTC) is more than the whole recorded book holds, and the walk says so.
    record_from_simulator(tmp_path / "rec", 4.0)
    inst = sim_instruments()[SYMBOL]
    # The lowest threshold: the strategy buys whenever bids outweigh asks at all (most books).
    bt = Backtest(imbalance_config(tmp_path, quote="500000", slippage=1, threshold=0.01),
                  trades={SYMBOL: read_trades(trades_path(tmp_path / "rec", SYMBOL), inst)},
                  depth={SYMBOL: read_depth(tmp_path / "rec", inst)}, instruments={SYMBOL: inst},
                  balances={"USDT": Decimal("1000000")})
    result = bt.run()
    denied = [d for d in result.decisions if d.side == "BUY"]
    assert denied and {d.reason for d in denied} == {"BOOK_TOO_THIN"} and result.fills == []
    assert all(d.message.startswith("the book holds ") for d in denied)


def test_book_imbalance_on_binances_recorded_depth_decides_on_the_snapshot_and_stops_at_the_gap(tmp_path):
    # ../shared/data/binance-nt: one BTCUSDT snapshot (100 levels, bids only) and one diff 20 million
    # updates later (from the futures stream): the book is ready on the snapshot, book_imbalance sees
    # +1.00 (no asks at all) and signals BUY; with no ask and no trade there is no price to buy at, so
    # the risk engine denies it; the diff does not follow the snapshot, so the book stops being ready.
    folder = shared_data("binance-nt")
    inst = sim_instruments()[SYMBOL]
    depth = read_depth(folder / "btcusdt-depth-snap.csv", inst, folder / "btcusdt-depth-update.csv")
    [snap, diff] = depth
    assert (len(snap.bids), len(snap.asks), snap.last_update_id) == (100, 0, 2098021528332)
    assert (diff.first_id, diff.final_id, diff.n_bids, diff.n_asks) == (2098041693435, 2098041696700, 23, 77)
    seen = {t: [] for t in (topics.BOOK_STATUS, topics.SIGNALS, topics.RISK_DECISIONS)}
    Backtest(imbalance_config(tmp_path), depth={SYMBOL: depth}, instruments={SYMBOL: inst},
             on_bus=lambda bus: [bus.subscribe(t, sink.append) for t, sink in seen.items()]).run()
    [signal] = seen[topics.SIGNALS]
    assert (signal.side, signal.confidence, signal.reason) == ("BUY", 1.0, "book imbalance +1.00")
    assert [(d.accepted, d.reason) for d in seen[topics.RISK_DECISIONS]] == [(False, "NO_REFERENCE_PRICE")]
    ready, lost = seen[topics.BOOK_STATUS]
    assert ready.ready and not lost.ready and "sequence gap" in lost.reason
