"""The whole node against the simulator replaying real candles, accelerated.

Two strategies trade ETHBTC and LTCBTC (real 5-minute candles, 300x): orders are placed,
filled and accounted; the node's balances equal the simulator's account to the unit; a
position limit set below one order denies LTCBTC buys with MAX_POSITION; the kill switch
(the kill file) halts within a second and cancels open orders.
"""

from __future__ import annotations

import re
import time
from decimal import Decimal

import pytest

from abidance.exchange.sim.config import MarketConfig, SimConfig
from tests.integration.conftest import RunningSim
from tests.integration.node_kit import RunningNode, node_config, sim_balances
from tests.kit import shared_data

BODY = """
[risk]
quote_asset = "BTC"
max_order_notional = "0.05"
max_gross_exposure = "0.5"
daily_loss_limit = "0.2"
max_drawdown = "0.3"
max_open_orders = 10
orders_per_10s = 20
orders_per_day = 10000
price_band_bps = 1000
max_position = { LTCBTC = "0.01" }
sizing = "fixed_quote"
fixed_quote = "0.01"
min_confidence = 0.0
kill_switch_file = "KILL"
[execution]
limit_timeout_s = 0.0
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

[[strategies]]
id = "ltc-rsi"
class = "rsi_reversion"
symbols = ["LTCBTC"]
timeframe = "5m"
params = { period = 3, oversold = 45.0, overbought = 55.0 }
"""


@pytest.fixture(scope="module")
def replay_sim():
    eth = shared_data("market", "ETH_BTC-5m.feather")
    ltc = shared_data("market", "LTC_BTC-5m.feather")
    sim = RunningSim(SimConfig(seed=8, speed=300.0, balances={"BTC": Decimal("1"), "ETH": Decimal("0"),
                                                              "LTC": Decimal("0")},
                               markets=[MarketConfig("ETHBTC", "candles", str(eth)),
                                        MarketConfig("LTCBTC", "candles", str(ltc))]))
    yield sim
    sim.close()


def test_node_trades_accounts_exactly_denies_by_limit_and_halts_on_kill(replay_sim, tmp_path):
    sim = replay_sim
    node = RunningNode(node_config(sim, tmp_path, BODY))
    try:
        ev = node.events
        fills = ev["exec.fills"]
        decisions = ev["risk.decisions"]
        node.wait_for(lambda: any(f.symbol == "ETHBTC" and f.side == "BUY" for f in fills), 40, "an ETHBTC buy fill")
        node.wait_for(lambda: any(f.symbol == "ETHBTC" and f.side == "SELL" for f in fills), 40, "an ETHBTC sell fill")
        node.wait_for(lambda: any(d.symbol == "LTCBTC" and not d.accepted for d in decisions), 40,
                      "an LTCBTC denial")
        # The status line is complete from the first beat: books and reconnects are read where they are kept.
        line = node.run(node.node.status_line)
        assert re.search(r"\| books ready \d+/\d+ \| reconnects \d+ \|", line), line
        denied = [d for d in decisions if d.symbol == "LTCBTC" and not d.accepted and d.side == "BUY"]
        assert denied and {d.reason for d in denied} == {"MAX_POSITION"}, {d.reason for d in denied}
        assert all(d.accepted or d.reason in ("MAX_POSITION", "NO_POSITION") for d in decisions)

        # Kill switch: the kill file is seen within a second, trading halts.
        t0 = time.monotonic()
        (tmp_path / "KILL").write_text("test\n")
        node.wait_for(lambda: node.node.risk.trading_state == "HALTED", 2.0, "HALTED")
        assert time.monotonic() - t0 < 1.0
        halted = [s for s in ev["risk.trading_state"] if s.state == "HALTED"]
        assert halted and halted[-1].source == "kill_switch"
        n_orders = len([e for e in ev["exec.order_events"] if e.previous == ""])
        time.sleep(1.5)             # strategies keep signalling; nothing new may be placed
        assert len([e for e in ev["exec.order_events"] if e.previous == ""]) == n_orders

        # Accounting: every order settled, balances equal the simulator's to the unit.
        node.wait_for(lambda: not node.node.execution.open_orders(), 5, "no open orders")
        time.sleep(0.5)
        ours = node.run(lambda: node.node.portfolio.balances())
        theirs = sim_balances(sim)
        for asset in ("BTC", "ETH", "LTC"):
            assert ours.get(asset, Decimal(0)) == theirs.get(asset, Decimal(0)), (asset, ours, theirs)
        pf = node.node.portfolio
        assert pf.drift_events == 0
        assert node.run(lambda: pf.position("ETHBTC")) == theirs.get("ETH", Decimal(0))
        assert node.node.strategy_engine.disabled == {}
        assert node.node.bus.handler_errors == 0           # no subscriber failed along the way
    finally:
        node.stop()
