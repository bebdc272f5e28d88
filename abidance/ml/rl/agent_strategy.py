"""AgentStrategy: the strategy through which an RL agent trades on the engine.

It has no rule of its own: after each closed bar the environment calls `act(long)` at that
bar's close, as a rule strategy's on_bar would, and the wish becomes an ordinary signal that
the risk engine sizes and the execution engine sends (filled at the next bar's open).
"""

from __future__ import annotations

from abidance.strategy.base import Strategy


class AgentStrategy(Strategy):
    name = "rl_agent"

    def act(self, symbol: str, long: bool) -> str:
        """Long: buy when flat. Flat: sell what is held. Returns "BUY", "SELL" or "" (nothing to do)."""
        held = self.position(symbol)
        if long and held == 0:
            self.buy(symbol, 1.0, reason="agent: long")
            return "BUY"
        if not long and held > 0:
            self.sell(symbol, 1.0, reason="agent: flat")
            return "SELL"
        return ""
