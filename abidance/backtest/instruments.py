"""The instruments a backtest or an optimisation may trade: the simulator's six, then those of
an exchangeInfo file (backtest.exchange_info, then --exchange-info), then the config's
[[instruments]] tables; a later source replaces an earlier one's symbol of the same name."""

from __future__ import annotations

import sys

from abidance.exchange.backtest.instruments import declared_instrument, exchange_info_file, sim_instruments


def research_instruments(config, exchange_info: str | None = None) -> tuple[dict, list[str]]:
    """(instruments by symbol, the exchangeInfo entries skipped with their reason); ValueError naming
    the file or the [[instruments]] table at fault."""
    instruments, skipped = sim_instruments(), []
    for path in (config.backtest.exchange_info, exchange_info):
        if path:
            found, problems = exchange_info_file(path)
            instruments.update(found)
            skipped += problems
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


def add_exchange_info_argument(parser) -> None:
    parser.add_argument("--exchange-info", metavar="FILE",
                        help="a saved Binance exchangeInfo JSON (`abidance download --exchange-info FILE`): its "
                             "symbols can be traded, with their filters (the config's backtest.exchange_info and "
                             "[[instruments]] tables do the same)")


def command_instruments(command: str, config, exchange_info: str | None) -> dict | None:
    """research_instruments for a command: the skipped entries are printed as notes, a refusal as
    `abidance COMMAND: reason` (None is returned: the command exits 2)."""
    try:
        instruments, skipped = research_instruments(config, exchange_info)
    except ValueError as exc:
        print(f"abidance {command}: {exc}", file=sys.stderr)
        return None
    for reason in skipped:
        print(f"note: exchangeInfo entry skipped: {reason}", file=sys.stderr)
    return instruments
