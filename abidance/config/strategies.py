"""`config check`'s last pass: build every configured strategy as `abidance run` would.

The schema checks that a strategy's table is well formed; only the strategy class knows its
parameters and their declared ranges (`Param(default, low, high)`). Building each strategy
here loads its class (a built-in or a file in node.strategies_dir) and validates its
parameters, so a config `check` passes is one whose strategies `run` can build.
"""

from __future__ import annotations

from abidance.config.sections import NodeConfig
from abidance.strategy.loader import StrategyLoadError, load_strategy_class


def strategy_errors(cfg: NodeConfig) -> list[str]:
    """Every problem building the configured strategies (disabled ones too), each naming its key path."""
    errors = []
    for i, sc in enumerate(cfg.strategies):
        where = f"strategies[{i}]"
        try:
            cls = load_strategy_class(sc.class_name, cfg.node.strategies_dir or None)
        except StrategyLoadError as exc:
            errors.append(f"{where}.class {exc}")
            continue
        try:
            cls(sc.id, sc.symbols, dict(sc.params), sc.timeframe)
        except Exception as exc:  # noqa: BLE001 - a user's class: report what it refused, whatever it is
            text = str(exc).replace(f"strategies.{sc.id}.params", f"{where}.params", 1)
            errors.append(text if text.startswith(where) else f"{where} ({sc.id}): {type(exc).__name__}: {text}")
    return errors
