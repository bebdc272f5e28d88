"""Two strategies trade one symbol against the simulator (real sockets): each sells only what it
bought, and their positions add up to the exchange's balance to the unit.

Before positions were kept per strategy, a SELL was sized to the whole position in the symbol:
the first strategy to sell sold the other's holding too, and the other's SELL then found nothing.
"""

from __future__ import annotations

from decimal import Decimal

from abidance.core import topics
from abidance.exchange.sim.config import SimConfig
from tests.integration.conftest import RunningSim
from tests.integration.node_kit import RunningNode, node_config, sim_balances
from tests.unit.backtest.kit import RISK_OFF, STRATEGIES, scripted

BODY = f"""
[risk]
{RISK_OFF}
sizing = "fixed_quote"
fixed_quote = "30"
[data]
depth = false
book_ticker = false
"""


def test_two_strategies_on_one_symbol_never_sell_each_others_holdings_and_add_up_to_the_exchange(tmp_path):
    (tmp_path / "kit_strategies.py").write_text(STRATEGIES)
    # "a" buys, "b" buys, "a" sells (b still holds), "a" buys again, "b" sells, "a" still holds at the end.
    body = BODY + scripted("a", "3:BUY 25:SELL 40:BUY", by="TradeScripted") \
        + scripted("b", "12:BUY 55:SELL", by="TradeScripted")
    sim = RunningSim(SimConfig(seed=41))
    node = None
    try:
        start_btc = sim_balances(sim).get("BTC", Decimal(0))
        cfg = node_config(sim, tmp_path / "state", body, node=f'strategies_dir = "{tmp_path}"')
        node = RunningNode(cfg, topics_to_record=(topics.FILLS, topics.POSITIONS, topics.RISK_DECISIONS,
                                                  topics.ALERTS))
        fills = node.events[topics.FILLS]
        node.wait_for(lambda: sum(1 for f in fills if f.side == "SELL") >= 2
                      and sum(1 for f in fills if f.side == "BUY") >= 3, 60, "three buys and two sells")
        node.wait_for(lambda: not node.node.execution.open_orders(), 10, "no order in flight")
        pf = node.node.portfolio
        held = node.run(lambda: {s: pf.position("BTCUSDT", s) for s in ("a", "b", "")})
        exchange_btc = sim_balances(sim)["BTC"]
    finally:
        if node is not None:
            node.stop()
        sim.close()

    # Every decision accepted: neither SELL found its strategy's position gone.
    assert [(d.strategy_id, d.side, d.accepted) for d in node.events[topics.RISK_DECISIONS]] == [
        ("a", "BUY", True), ("b", "BUY", True), ("a", "SELL", True), ("a", "BUY", True), ("b", "SELL", True)]
    # Each SELL sold what that strategy held (its buy less the fee, in whole steps), nothing of the other's.
    updates = node.events[topics.POSITIONS]
    for sell in (f for f in fills if f.side == "SELL"):
        mine = [u for u in updates if u.strategy_id == sell.strategy_id and u.ts_event <= sell.ts_event]
        before = mine[-2].quantity          # the update before this sell's own
        assert sell.quantity <= before and before - sell.quantity < Decimal("0.00001"), (sell, before)
    assert not [a for a in node.events[topics.ALERTS] if a.code == "oversold"]
    # What the strategies hold, with what the wallet held before, is the exchange's balance to the unit.
    assert held["a"] > 0 and held[""] == 0
    assert start_btc + held["a"] + held["b"] == exchange_btc
