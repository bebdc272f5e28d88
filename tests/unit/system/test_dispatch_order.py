"""No result depends on the order of subscriptions.

Dispatch order is declared (abidance.core.bus.Priority): what must come first says so. The same
backtest is run with every subscription inserted at a random place among those of its priority
(`MessageBus(tie_break=...)`, a uniformly random order of every equal-priority group); the
orders, fills and equity must come out byte for byte the same. The scenario has every kind of
subscriber that matters: the simulator's market (trades and depth) feeding the data engine's
books and bars, the venue filling on books, a book strategy, a bar strategy, limit orders timing
out and re-priced, stop losses, three strategies on one symbol sharing one cash.

A control shows the scenario is sensitive to order: with the priorities ignored, shuffling
changes the results.
"""

from __future__ import annotations

import random
from decimal import Decimal

from abidance.backtest.engine import Backtest
from abidance.core.bus import MessageBus
from tests.unit.backtest.kit import config, scripted, sim_market

STRATEGIES = scripted("limits", "40:BUY@6480000 300:SELL 900:BUY^6505000 1500:SELL", by="TradeScripted") + """
[[strategies]]
id = "imbalance"
class = "book_imbalance"
symbols = ["BTCUSDT"]
timeframe = "1s"
params = { depth = 5, threshold = 0.25, cooldown_s = 3.0 }

[[strategies]]
id = "ema"
class = "ema_cross"
symbols = ["BTCUSDT"]
timeframe = "1s"
params = { fast = 3, slow = 8 }
"""
SETTINGS = "[execution]\nlimit_timeout_s = 4\ncancel_replace = true\nmax_slippage_bps = 30"


class PrioritiesIgnored(MessageBus):
    """The control: every subscription at one priority, so only the (shuffled) order decides."""

    def subscribe(self, topic, handler, priority=0):
        super().subscribe(topic, handler, 0)


def run(tmp_path, market, bus=None) -> bytes:
    trades, depth = market
    cfg = config(tmp_path, SETTINGS, strategies=STRATEGIES, risk='sizing = "fixed_quote"\nfixed_quote = "300"')
    result = Backtest(cfg, trades={"BTCUSDT": trades}, depth={"BTCUSDT": depth}, balances={"USDT": Decimal("2000")},
                      bus=bus).run()
    assert len(result.fills) >= 10 and {f.strategy_id for f in result.fills} >= {"limits", "imbalance", "ema"}
    messages = [d.message for d in result.decisions]
    assert any(m.startswith("replace ") for m in messages) and any(m.startswith("stop loss") for m in messages)
    return repr((result.orders, result.fills, list(result.equity), result.decisions)).encode()


def test_shuffled_subscription_orders_give_byte_identical_orders_fills_and_equity(tmp_path):
    market = sim_market(180, seed=11)
    reference = run(tmp_path, market)
    for seed in range(6):
        assert run(tmp_path, market, MessageBus(tie_break=random.Random(seed))) == reference, f"shuffle {seed}"


def test_control_without_the_priorities_the_order_of_subscriptions_changes_the_results(tmp_path):
    market = sim_market(180, seed=11)
    reference = run(tmp_path, market)
    outcomes = {run(tmp_path, market, PrioritiesIgnored(tie_break=random.Random(seed))) for seed in range(6)}
    assert outcomes - {reference}, "the scenario does not depend on dispatch order: the shuffle test proves nothing"
