"""Backtest <-> live and paper parity: the same strategy on the same data decides the same orders,
with the breakers and timeouts on (stale data, kill file, daily loss, drawdown, consecutive
losses, error rate, limit timeouts with cancel-replace), which the backtest honours as the node does.

Live: the node trades (real sockets, the user stream, market fills) against the simulator
replaying real ETH/BTC candles at 300x; every bar it closed is recorded. The backtester then
runs the same config over exactly those bars. The decisions must match one for one: same
bar, same side, same outcome. Allowed differences, by design: fill prices (live: the book
at that moment; backtest: the next bar's open) and therefore quantities sized from them
and the PnL.

Paper: the node in `paper` mode (live market data from the simulator, simulated fills at the
next trade) records every trade it received; the backtester replays exactly those trades.
Then even the fills must match: the same order list, quantities, prices and fees.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

from abidance.backtest.engine import Backtest, run_backtest, sim_instruments
from abidance.exchange.backtest.venue import BacktestVenue
from abidance.core import topics
from abidance.exchange.sim.config import MarketConfig, SimConfig
from tests.integration.conftest import RunningSim
from tests.integration.node_kit import RunningNode, node_config
from tests.kit import shared_data

BODY = """
[risk]
quote_asset = "BTC"
max_order_notional = "0.05"
max_gross_exposure = "0.5"
daily_loss_limit = "0.2"
max_drawdown = "0.3"
price_band_bps = 1000
sizing = "fixed_quote"
fixed_quote = "0.01"
min_confidence = 0.0
stale_data_s = 30.0
kill_switch_file = "KILL"
max_consecutive_losses = 50
max_errors_per_minute = 20
[execution]
limit_timeout_s = 30.0
cancel_replace = true
max_slippage_bps = 50
[data]
depth = true
book_ticker = false
bar_intervals = ["5m"]
[[strategies]]
id = "eth-ema"
class = "ema_cross"
symbols = ["ETHBTC"]
timeframe = "5m"
params = { fast = 2, slow = 4 }
"""


def test_backtest_and_live_decide_the_same_orders_on_the_same_bars(tmp_path):
    candles = shared_data("market", "ETH_BTC-5m.feather")
    sim = RunningSim(SimConfig(seed=31, speed=600.0, balances={"BTC": Decimal("1")},
                               markets=[MarketConfig("ETHBTC", "candles", str(candles))]))
    cfg = node_config(sim, tmp_path / "state", BODY)
    node = None
    try:
        # Recorded from before the engines subscribe: a bar is seen here before the decisions it causes.
        node = RunningNode(cfg, topics_to_record=(topics.BARS, topics.RISK_DECISIONS))
        node.wait_for(lambda: sum(1 for d in node.events[topics.RISK_DECISIONS] if d.accepted) >= 6, 90,
                      "six accepted live decisions")
    finally:
        if node is not None:
            node.stop()
        sim.close()

    bars, live, current = [], [], None
    for topic, ev in node.timeline:
        if topic == topics.BARS:
            bars.append(ev)
            current = ev
        elif current is not None:
            live.append((current.close_time, ev.side, ev.accepted, ev.reason))
    eth = [b for b in bars if b.symbol == "ETHBTC" and b.interval == "5m"]
    last_close = eth[-1].close_time
    live = [d for d in live if d[0] is not None and d[0] <= last_close]
    result = asyncio.run(run_backtest(cfg, {"ETHBTC": eth}, instruments=sim_instruments(),
                                      balances={"BTC": Decimal("1")}))
    backtest = [(d.ts_event, d.side, d.accepted, d.reason) for d in result.decisions]
    assert len(live) >= 6
    assert backtest == live


def test_backtest_and_paper_produce_the_same_orders_and_fills_on_the_same_trades(tmp_path):
    candles = shared_data("market", "ETH_BTC-5m.feather")
    sim = RunningSim(SimConfig(seed=32, speed=600.0, balances={"BTC": Decimal("1")},
                               markets=[MarketConfig("ETHBTC", "candles", str(candles))]))
    body = BODY + '\n[backtest]\nbalances = { BTC = "1" }\n'
    cfg = node_config(sim, tmp_path / "state", body, ABIDANCE__NODE__MODE="paper")
    assert cfg.node.mode == "paper"
    node = None
    try:
        node = RunningNode(cfg, topics_to_record=(topics.TRADES, topics.RISK_DECISIONS, topics.FILLS))
        node.wait_for(lambda: len(node.events[topics.FILLS]) >= 6, 90, "six paper fills")
        paper_client = node.node.execution.client
    finally:
        if node is not None:
            node.stop()
        sim.close()
    assert isinstance(paper_client, BacktestVenue) and paper_client.fills >= 6       # no order reached the venue
    trades = [ev for topic, ev in node.timeline if topic == topics.TRADES and ev.symbol == "ETHBTC"]
    paper_fills = node.events[topics.FILLS]
    last = trades[-1].ts_trade
    result = Backtest(cfg, trades={"ETHBTC": trades}, instruments=sim_instruments(),
                      balances={"BTC": Decimal("1")}).run()

    def orders(fills):
        return [(f.side, f.quantity, f.price, f.commission, f.commission_asset, f.ts_event) for f in fills
                if f.ts_event <= last]

    def decisions(ds):
        return [(d.side, d.accepted, d.reason, d.quantity) for d in ds]

    # The paper node's clock is the wall clock, the replay's trades carry history's times: decisions
    # are compared in order (the node may have decided once more, on a bar its timer closed after
    # the last recorded trade), fills by the trade time they filled at.
    assert len(orders(paper_fills)) >= 6
    assert orders(result.fills) == orders(paper_fills)
    backtest = decisions(result.decisions)
    assert len(backtest) >= 6 and backtest == decisions(node.events[topics.RISK_DECISIONS])[: len(backtest)]
