"""Instruments for recorded data: the simulator's symbols, a Binance exchangeInfo file's, and
symbols declared by hand (a config's [[instruments]] tables), all parsed as the node parses
Binance's exchangeInfo so the risk checks and the venue see the same filters everywhere."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import orjson

from abidance.exchange.binance.instruments import Instrument, parse_exchange_info, parse_symbol
from abidance.exchange.sim.exchange import SimExchange
from abidance.exchange.sim.symbols import default_symbols

# What a declared instrument allows: the spot order types every Binance symbol lists.
DECLARED_ORDER_TYPES = ("LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT")


def sim_instruments() -> dict:
    """The simulator's instruments (its GET /api/v3/exchangeInfo, parsed as the node parses Binance's)."""
    return parse_exchange_info(SimExchange(default_symbols(), lambda: 0).exchange_info())


def exchange_info_file(path: str | Path) -> tuple[dict[str, Instrument], list[str]]:
    """The symbols of a saved exchangeInfo answer (`abidance download --exchange-info`, or Binance's
    GET /api/v3/exchangeInfo saved by hand) and the reasons any entry was skipped; ValueError naming
    the file when it cannot be read or holds no usable symbol."""
    try:
        payload = orjson.loads(Path(path).read_bytes())
    except OSError as exc:
        raise ValueError(f"exchangeInfo file {path}: {exc.strerror or exc}") from None
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"exchangeInfo file {path}: not JSON ({exc})") from None
    problems: list[str] = []
    try:
        found = parse_exchange_info(payload, problems)
    except ValueError as exc:
        raise ValueError(f"exchangeInfo file {path}: {exc}") from None
    if not found:
        raise ValueError(f"exchangeInfo file {path}: no usable symbol ({'; '.join(problems) or 'none listed'})")
    return found, problems


def _decimals(value: Decimal) -> int:
    return max(0, -value.normalize().as_tuple().exponent)


def _plain(value: Decimal) -> str:
    return format(value, "f")


def declared_entry(symbol: str, base: str, quote: str, tick_size: Decimal, step_size: Decimal, *,
                   min_qty: Decimal = Decimal(0), max_qty: Decimal = Decimal(0), min_notional: Decimal = Decimal(0),
                   max_notional: Decimal = Decimal(0), min_price: Decimal = Decimal(0),
                   max_price: Decimal = Decimal(0)) -> dict:
    """A hand-declared symbol as an exchangeInfo `symbols[]` entry (Binance's keys and filters).
    A bound of 0 is off, as in Binance's filters; a minimum quantity of 0 is one step (Binance
    never lists a tradable symbol whose minimum is below its step)."""
    min_qty = min_qty or step_size
    return {
        "symbol": symbol, "status": "TRADING", "baseAsset": base, "quoteAsset": quote,
        # Precision: 8 (Binance's asset precision) unless the grid is finer.
        "baseAssetPrecision": max(8, _decimals(step_size)), "quoteAssetPrecision": max(8, _decimals(tick_size)),
        "orderTypes": list(DECLARED_ORDER_TYPES),
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": _plain(min_price), "maxPrice": _plain(max_price),
             "tickSize": _plain(tick_size)},
            {"filterType": "LOT_SIZE", "minQty": _plain(min_qty), "maxQty": _plain(max_qty),
             "stepSize": _plain(step_size)},
            {"filterType": "NOTIONAL", "minNotional": _plain(min_notional), "maxNotional": _plain(max_notional),
             "applyMinToMarket": True, "applyMaxToMarket": False, "avgPriceMins": 5},
        ],
    }


def declared_instrument(**values) -> Instrument:
    """One hand-declared symbol (`declared_entry`'s arguments) as an Instrument; ValueError naming
    the field at fault."""
    try:
        return parse_symbol(declared_entry(**values))
    except ValueError as exc:
        raise ValueError(f"{values.get('symbol')}: {exc}") from None
