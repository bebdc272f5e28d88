"""Exits that outlive the node: a live node rests its stop and target on the exchange as one OCO;
killed with SIGKILL, the stop still fires on the venue while it is down, and the restarted node
books that sell for the strategy from the exchange's answer (issue 14, point 3)."""

from __future__ import annotations

import json
import signal
from decimal import Decimal

import pytest

from abidance.exchange.sim.config import SimConfig
from tests.e2e.node_process import config_text, start_node, wait
from tests.integration.conftest import RunningSim
from tests.integration.node_kit import sim_balances
from tests.integration.sim_kit import crash_through

PROTECTED = '''
from abidance.strategy import Strategy


class OneShot(Strategy):
    """Buys once at market with a stop 3 % under the bid and a target 10 % over it. A signal denied
    while the node waits for its first reconciliation (a loaded machine) is sent again 2 s later."""

    wants_book = True

    def on_start(self):
        self.done, self.tried_ns = False, None

    def on_fill(self, fill):
        self.done = True

    def on_book(self, book):
        if not self.done and (self.tried_ns is None or self.now_ns() - self.tried_ns > 2_000_000_000):
            self.tried_ns = self.now_ns()
            bid = book.best_bid()[0]
            self.buy(book.symbol, 1.0, reason="entry", stop_loss=bid * 97 // 100, take_profit=bid * 110 // 100)
'''


SELLS_ITSELF = PROTECTED.replace("""            self.buy(book.symbol, 1.0, reason="entry", stop_loss=bid * 97 // 100, take_profit=bid * 110 // 100)
""", """            self.buy(book.symbol, 1.0, reason="entry", stop_loss=bid * 97 // 100, take_profit=bid * 110 // 100)
            self.at = None
        elif self.at is None and self.position(book.symbol) > 0:
            self.at = self.now_ns()
        elif self.at and self.now_ns() - self.at > 3_000_000_000:
            self.at = 0
            self.sell(book.symbol, reason="own exit")
""")


def node_state(state) -> dict:
    path = state / "node-state.json"
    return json.loads(path.read_text()) if path.exists() else {}


def strategy_eth(saved: dict) -> Decimal:
    return sum((Decimal(p["quantity"]) for p in saved.get("portfolio", {}).get("positions", ())
                if p["symbol"] == "ETHUSDT" and p.get("strategy_id", "one-shot") == "one-shot"), Decimal(0))


def live_node_setup(tmp_path, seed: int, strategy: str):
    """A simulator, the strategy file, and what a test reads: the venue's ETHUSDT orders and the config path."""
    sim = RunningSim(SimConfig(seed=seed))
    venue = sim.server.venue
    strategies = tmp_path / "strategies"
    strategies.mkdir()
    (strategies / "oneshot.py").write_text(strategy)
    return sim, lambda: sim.run(lambda: venue.exchange.all_orders(venue.account, "ETHUSDT")), strategies


def test_a_native_stop_fires_while_the_node_is_down_and_the_restarted_node_books_it(tmp_path):
    sim, orders, strategies = live_node_setup(tmp_path, 29, PROTECTED)
    state, cfg = tmp_path / "state", tmp_path / "node.toml"
    eth_before = sim_balances(sim)["ETH"]
    proc = None
    try:
        cfg.write_text(config_text(sim, state, strategies, enabled=True))
        proc = start_node(cfg)

        def protected():
            legs = [o for o in orders() if o["type"] in ("STOP_LOSS", "LIMIT_MAKER")]
            native = node_state(state).get("exits", {}).get("native", [])
            return legs if len(legs) == 2 and native and all(o["status"] == "NEW" for o in legs) else None

        legs = wait(protected, 30, "the OCO resting on the exchange and in the node's state")
        assert {o["clientOrderId"] for o in legs} == set(node_state(state)["exits"]["native"][0]["client_ids"])
        bought = sim_balances(sim)["ETH"] - eth_before
        assert bought > 0 and strategy_eth(node_state(state)) == bought
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

        # The market falls through the stop while no node runs: the venue sells by itself.
        stop = next(o for o in legs if o["type"] == "STOP_LOSS")
        sim.run(lambda: crash_through(sim, "ETHUSDT", str(Decimal(stop["stopPrice"]) - Decimal("5"))))
        fired = wait(lambda: [o for o in orders() if o["clientOrderId"] == stop["clientOrderId"]
                              and o["status"] == "FILLED"], 10, "the stop to fire on the venue")
        sold = Decimal(fired[0]["executedQty"])
        step = Decimal("0.0001")                                         # ETHUSDT's lot step on the simulator
        assert sold == (bought // step) * step                           # the whole position but the fee dust
        assert sim_balances(sim)["ETH"] == eth_before + bought - sold
        target = next(o for o in orders() if o["type"] == "LIMIT_MAKER")
        assert target["status"] in ("EXPIRED", "CANCELED")          # the list's other leg
        sim.run(lambda: setattr(sim.server.venue, "paused", False))

        # Restarted with the strategy off: the node adopts what happened and places nothing.
        cfg.write_text(config_text(sim, state, strategies, enabled=False))
        placed = len(orders())
        proc = start_node(cfg)
        settled = wait(lambda: (s := node_state(state)) and not s["exits"]["native"]
                       and not s["execution"]["orders"] and strategy_eth(s) == bought - sold and s, 30,
                       "the restarted node to book the stop's sell")
        assert settled["exits"]["brackets"] == []
        assert len(orders()) == placed                                 # nothing sent again
    finally:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            out, _ = proc.communicate(timeout=20)
            assert proc.returncode == 0, out[-3000:]
        sim.close()


@pytest.mark.parametrize("transport", ["ws_api", "rest"])
def test_a_strategy_selling_itself_first_cancels_its_protection_on_the_exchange(tmp_path, transport):
    sim, orders, strategies = live_node_setup(tmp_path, 31, SELLS_ITSELF)
    state, cfg = tmp_path / "state", tmp_path / "node.toml"
    cfg.write_text(config_text(sim, state, strategies, enabled=True, binance_extra=f'order_transport = "{transport}"'))
    proc = start_node(cfg)
    try:
        def sold():
            mine = [o for o in orders() if o["type"] == "MARKET" and o["side"] == "SELL"]
            return mine if mine and mine[0]["status"] == "FILLED" else None

        sell = wait(sold, 40, "the strategy's own sell to fill")[0]
        legs = [o for o in orders() if o["type"] in ("STOP_LOSS", "LIMIT_MAKER")]
        assert len(legs) == 2 and all(o["status"] == "CANCELED" for o in legs)
        assert max(o["updateTime"] for o in legs) <= sell["time"]     # cancelled before the sell was placed
        assert not [o for o in orders() if o["status"] == "REJECTED"]
        wait(lambda: (s := node_state(state)) and not s["exits"]["native"] and not s["execution"]["orders"], 10,
             "the protection gone from the node's state")
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
        sim.close()
    assert proc.returncode == 0, out[-3000:]
