"""Instruments for recorded data: the simulator's symbols, with Binance-like filters."""

from __future__ import annotations

from abidance.exchange.binance.instruments import parse_exchange_info
from abidance.exchange.sim.exchange import SimExchange
from abidance.exchange.sim.symbols import default_symbols


def sim_instruments() -> dict:
    """The simulator's instruments (its GET /api/v3/exchangeInfo, parsed as the node parses Binance's)."""
    return parse_exchange_info(SimExchange(default_symbols(), lambda: 0).exchange_info())
