"""What chat control reads and how it acts: the node's state as text, PnL from the store, and the
operator command path (a row in the store's `commands` table, as the dashboard writes it)."""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal
from typing import Callable

from abidance.core import topics
from abidance.core.events import TradingCommand
from abidance.store.commands import write_command
from abidance.store.reader import StoreReader

log = logging.getLogger("abidance.chat")


def _fmt(d: Decimal) -> str:
    return f"{d.normalize():f}" if isinstance(d, Decimal) else str(d)


class NodeView:
    """Text answers from the running node (read on its loop: cheap) and the store (in a thread)."""

    def __init__(self, status: Callable[[], str], portfolio, quote_asset: str, store_connect=None,
                 database: str = "abidance"):
        self._status = status
        self.portfolio = portfolio
        self.quote = quote_asset
        self.store_connect = store_connect
        self.database = database

    def status(self) -> str:
        return self._status()

    def balances(self) -> str:
        rows = {a: v for a, v in self.portfolio.balances().items() if v}
        lines = [f"{a}: {_fmt(v)}" for a, v in sorted(rows.items())] or ["no balances"]
        return "Balances\n" + "\n".join(lines) + f"\nequity: {_fmt(self.portfolio.equity())} {self.quote}"

    def positions(self) -> str:
        pf = self.portfolio
        held = {s: q for s, q in pf.positions().items() if q}
        if not held:
            return "No open positions."
        lines = [f"{s}: {_fmt(q)} @ {_fmt(pf.avg_price(s))}, unrealised {_fmt(pf.unrealized_pnl(s))} {self.quote}"
                 for s, q in sorted(held.items())]
        return "Positions\n" + "\n".join(lines)

    async def pnl(self, strategy: str | None) -> str:
        if self.store_connect is None:
            pf = self.portfolio
            return (f"PnL (this run, no store): realised {_fmt(pf.realized_pnl())}, unrealised "
                    f"{_fmt(pf.unrealized_pnl())}, fees {_fmt(pf.fees_paid())} {self.quote}")
        try:
            table = await asyncio.to_thread(self._pnl_rows)
        except Exception as exc:  # noqa: BLE001 - the store may be down: say so
            return f"PnL unavailable: the store did not answer ({type(exc).__name__})"
        if strategy is not None:
            table = [r for r in table if r[0] == strategy]
            if not table:
                return f"No fills for strategy {strategy!r}."
        if not table:
            return "No fills yet."
        lines = [f"{sid}: realised {_fmt(pnl)}, fees {_fmt(fees)} {self.quote} ({fills} fills)"
                 for sid, pnl, fees, fills in table]
        return "PnL per strategy (from the store)\n" + "\n".join(lines)

    def _pnl_rows(self) -> list[tuple]:
        df = StoreReader(self.store_connect(), self.database).pnl_by("strategy")
        return [(r.strategy_id, r.realized_pnl, r.fees, int(r.fills)) for r in df.itertuples()]


class StoreCommands:
    """Operator commands as rows in the store's `commands` table: the node's CommandPoller acts on them
    exactly as on the dashboard's (same table, same poller, same effect)."""

    def __init__(self, connect, database: str):
        self.connect = connect
        self.database = database

    async def __call__(self, command: str, reason: str, author: str) -> str:
        try:
            cid = await asyncio.to_thread(lambda: write_command(self.connect(), self.database, command, reason,
                                                                author))
        except Exception as exc:  # noqa: BLE001 - tell the operator; nothing was done
            log.error("chat: writing the %s command failed: %s", command, exc)
            return f"The {command} command could NOT be written to the store ({type(exc).__name__}); use the " \
                   "dashboard or `abidance kill`."
        return f"{command} command written (id {cid[:8]}): the node acts on it within a second."


class BusCommands:
    """Without a store: the same effects straight on the bus (kill endpoint, risk command endpoint)."""

    def __init__(self, bus):
        self.bus = bus

    async def __call__(self, command: str, reason: str, author: str) -> str:
        why = f"{reason} (by {author})"
        if command == "kill":
            self.bus.send(topics.KILL, why)
        else:
            self.bus.send(topics.RISK_COMMAND, TradingCommand(command, why, "operator"))
        return f"{command}: done."
