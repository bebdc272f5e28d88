"""The second pass: rules across keys, and the values derived from other keys."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from abidance.config.ops_sections import cross_check_ops
from abidance.config.schema import Errors
from abidance.config.sections import INTERVALS, NodeConfig


def _resolve(path: Path | None, base: Path) -> Path | None:
    return None if path is None else Path(os.path.normpath(base / path))


def cross_check(cfg: NodeConfig, base_dir: Path, errors: Errors) -> NodeConfig:
    """Check the rules that involve several keys and fill in derived values (paths, symbols, intervals)."""
    node, risk, data, strategies = cfg.node, cfg.risk, cfg.data, cfg.strategies
    base = Path(os.path.abspath(base_dir))
    state_dir = _resolve(node.state_dir, base)
    node = replace(node, state_dir=state_dir, strategies_dir=_resolve(node.strategies_dir, base))
    risk = replace(risk, kill_switch_file=_resolve(risk.kill_switch_file, state_dir))
    store = replace(cfg.store, spool_dir=_resolve(cfg.store.spool_dir, state_dir))
    backtest = replace(cfg.backtest, exchange_info=_resolve(cfg.backtest.exchange_info, base))

    declared_quote = {inst.symbol: inst.quote for inst in cfg.instruments}
    seen: dict[str, int] = {}
    for i, s in enumerate(strategies):
        where = f"strategies[{i}]"
        if s.id in seen:
            errors.add(f"{where}.id", f"{s.id!r} is already used by strategies[{seen[s.id]}]; ids must be unique")
        seen.setdefault(s.id, i)
        if ":" in s.class_name and node.strategies_dir is None:
            errors.add(f"{where}.class", f"{s.class_name!r} names a strategy file: "
                       "set node.strategies_dir to its folder")
        for j, symbol in enumerate(s.symbols):
            quoted = (declared_quote[symbol] == risk.quote_asset if symbol in declared_quote
                      else symbol.endswith(risk.quote_asset) and symbol != risk.quote_asset)
            if not quoted:
                errors.add(f"{where}.symbols[{j}]", f"{symbol!r} is not quoted in risk.quote_asset "
                           f"{risk.quote_asset!r}; all traded symbols share the quote asset "
                           "(change one or the other)")

    traded = list(dict.fromkeys(sym for s in strategies for sym in s.symbols))
    for symbol in risk.max_position:
        if symbol not in traded:
            errors.add(f"risk.max_position.{symbol}", "names a symbol no strategy trades; "
                       f"remove it or add it to a strategy's symbols (traded: {', '.join(traded) or 'none'})")
    if risk.sizing == "fixed_quote" and risk.fixed_quote <= 0:
        errors.add("risk.fixed_quote", "must be > 0 when risk.sizing = 'fixed_quote', got "
                   f"{str(risk.fixed_quote)!r}")
    elif risk.sizing == "fixed_quote" and 0 < risk.max_order_notional < risk.fixed_quote:
        errors.add("risk.fixed_quote", f"{str(risk.fixed_quote)!r} exceeds risk.max_order_notional "
                   f"{str(risk.max_order_notional)!r}: every order would be denied; lower one or raise the other")

    timeframes = {s.timeframe for s in strategies}
    data = replace(data, bar_intervals=tuple(i for i in INTERVALS if i in set(data.bar_intervals) | timeframes))
    node = replace(node, symbols=tuple(dict.fromkeys((*node.symbols, *traded))))
    if cfg.store.url and not cfg.store.url.startswith(("http://", "https://", "chdb://")):
        errors.add("store.url", f"must start with http://, https:// or chdb://, got {cfg.store.url!r}")
    if cfg.store.cluster and cfg.store.url.startswith("chdb://"):
        errors.add("store.cluster", "needs ClickHouse servers (store.url = \"http(s)://...\"): the embedded chdb "
                                    "store is one process, not a cluster")
    cross_check_ops(cfg, errors)
    if cfg.backtest.participation > 1:
        errors.add("backtest.participation", f"is a share of the volume, at most 1, got {cfg.backtest.participation}")
    return replace(cfg, node=node, risk=risk, data=data, store=store, backtest=backtest)
