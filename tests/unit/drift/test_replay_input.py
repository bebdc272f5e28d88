"""The replay's market: the recorded trades with their holes filled from the user's trades, less
the node's own fills, whichever list they came in."""

from __future__ import annotations

from decimal import Decimal as D
from types import SimpleNamespace

from abidance._core.wire import trade_event
from abidance.backtest.engine import sim_instruments
from abidance.drift.orders import FillRecord, OrderRecord
from abidance.drift.recording import Recording
from abidance.drift.replay import replay_input

S = "ETHBTC"
SEC = 1_000_000_000


def test_own_fills_inside_a_hole_when_downloaded_as_aggregate_trades_then_left_out_of_the_market():
    instruments = sim_instruments()
    tick, step = instruments[S].filters.price_fp.increment, instruments[S].filters.qty_fp.increment
    # Trades 1, 2 then 9: 3..8 never reached the node (a stall). The node's order filled at 2 s
    # (trade 2, received), twice at 5 s (trades 4 and 5 at one price: one aggregate trade) and at 6 s.
    rows = [(t * SEC, tid, D("0.05"), D("0.01"), False, t * SEC) for t, tid in ((1, 1), (2, 2), (9, 9))]
    buy = OrderRecord("s", S, "BUY", 3 * SEC, D("0.3"), status="FILLED", order_type="MARKET")
    buy.fills = [FillRecord(D("0.01"), D("0.05"), D("0"), "BTC", False, 2 * SEC, 2),
                 FillRecord(D("0.1"), D("0.05001"), D("0"), "BTC", False, 5 * SEC, 4),
                 FillRecord(D("0.1"), D("0.05001"), D("0"), "BTC", False, 5 * SEC, 5),
                 FillRecord(D("0.1"), D("0.05002"), D("0"), "BTC", False, 6 * SEC, 7)]
    rec = Recording(0, 10 * SEC, trades={S: rows}, orders=[buy])
    agg = lambda aid, t, p, q: trade_event(S, aid, int(D(p) / tick), int(D(q) / step), False, t * SEC, t * SEC)  # noqa: E731
    given = [agg(98, 1, "0.05", "0.01"),           # outside the hole: the recorded trades stand
             agg(99, 2, "0.05", "0.01"),           # the node's fill at 2 s, already left out
             agg(100, 4, "0.05", "0.02"),          # someone else's
             agg(101, 5, "0.05001", "0.2"),        # the node's two fills at 5 s, aggregated
             agg(102, 6, "0.05002", "0.1"),        # the node's fill at 6 s
             agg(103, 7, "0.05002", "0.05")]       # someone else's, at the node's price
    config = SimpleNamespace(strategies=[SimpleNamespace(symbols=[S])])      # all replay_input reads of it
    inp = replay_input(rec, config, instruments, trades={S: given})
    assert [t.trade_id for t in inp.data[S]] == [1, 100, 103, 9]
    assert inp.own_trades[S] == 4 and inp.filled_bars[S] == 2
