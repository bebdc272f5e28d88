"""The instruments a backtest or an optimisation may trade: the simulator's six, then those of
an exchangeInfo file (backtest.exchange_info, which --exchange-info replaces), then the config's
[[instruments]] tables; a later source replaces an earlier one's symbol of the same name.

Everything comes from the config, so a grid's or a study's worker processes, which must build
their own instruments (the compiled filters do not pickle), build the same ones from it."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

from abidance.exchange.backtest.instruments import declared_instrument, exchange_info_file, sim_instruments


def research_instruments(config) -> tuple[dict, list[str]]:
    """(instruments by symbol, the exchangeInfo entries skipped with their reason); ValueError naming
    the file or the [[instruments]] table at fault."""
    instruments, skipped = sim_instruments(), []
    if config.backtest.exchange_info:
        found, skipped = exchange_info_file(config.backtest.exchange_info)
        instruments.update(found)
    for i, table in enumerate(config.instruments):
        try:
            instruments[table.symbol] = declared_instrument(
                symbol=table.symbol, base=table.base, quote=table.quote, tick_size=table.tick_size,
                step_size=table.step_size, min_qty=table.min_qty, max_qty=table.max_qty,
                min_notional=table.min_notional, max_notional=table.max_notional, min_price=table.min_price,
                max_price=table.max_price)
        except ValueError as exc:
            raise ValueError(f"instruments[{i}]: {exc}") from None
    return instruments, skipped


_BUILT: dict = {}


def process_instruments(config) -> dict:
    """research_instruments(config), built once per process and config (grid and study workers)."""
    key = (config.backtest.exchange_info, config.instruments)
    if key not in _BUILT:
        _BUILT.clear()
        _BUILT[key] = research_instruments(config)[0]
    return _BUILT[key]


def add_exchange_info_argument(parser) -> None:
    parser.add_argument("--exchange-info", metavar="FILE",
                        help="a saved Binance exchangeInfo JSON (`abidance download --exchange-info FILE`): its "
                             "symbols can be traded, with their filters (replaces the config's "
                             "backtest.exchange_info; [[instruments]] tables add symbols by hand)")


def command_instruments(command: str, config, exchange_info: str | None):
    """(the config with --exchange-info as its backtest.exchange_info, its instruments), the skipped
    entries printed as notes; (config, None) after printing `abidance COMMAND: reason` (exit 2)."""
    if exchange_info:
        config = replace(config, backtest=replace(config.backtest, exchange_info=Path(exchange_info).resolve()))
    try:
        instruments, skipped = research_instruments(config)
    except ValueError as exc:
        print(f"abidance {command}: {exc}", file=sys.stderr)
        return config, None
    for reason in skipped:
        print(f"note: exchangeInfo entry skipped: {reason}", file=sys.stderr)
    return config, instruments
