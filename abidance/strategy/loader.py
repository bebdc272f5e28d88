"""Find a strategy class: a built-in by name, or `file:Class` from the strategies folder.

The ML strategies are built-ins by name too, but they are the ml package's (models, features,
the registry): they are loaded by module path when a config names them, so the strategy engine
does not depend on the ml package (a layer above it would then depend on it: docs/architecture.md).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

from abidance.strategy.base import Strategy
from abidance.strategy.builtin import BUILTINS

ML_BUILTINS = {"ml_signal": "abidance.ml.ml_signal:MLSignal", "regime_switch": "abidance.ml.regime_switch:RegimeSwitch"}


class StrategyLoadError(ValueError):
    pass


def builtin_names() -> list[str]:
    return sorted([*BUILTINS, *ML_BUILTINS])


def load_strategy_class(spec: str, strategies_dir: str | Path | None = None) -> type[Strategy]:
    if spec in BUILTINS:
        return BUILTINS[spec]
    if spec in ML_BUILTINS:
        module, _, name = ML_BUILTINS[spec].partition(":")
        return getattr(importlib.import_module(module), name)
    file_part, sep, class_name = spec.partition(":")
    if not sep or not class_name:
        raise StrategyLoadError(f"strategy class {spec!r} is not a built-in ({', '.join(builtin_names())}) "
                                "nor 'file:ClassName' in the strategies folder")
    if not strategies_dir:
        raise StrategyLoadError(f"strategy class {spec!r} needs node.strategies_dir to be set")
    path = Path(strategies_dir) / (file_part if file_part.endswith(".py") else file_part + ".py")
    if not path.is_file():
        raise StrategyLoadError(f"strategy file {path} does not exist")
    module_name = f"abidance_user_strategies.{path.stem}"
    module_spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(module_spec)
    try:
        sys.modules[module_name] = module
        module_spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - a user file: report what broke, whatever it is
        sys.modules.pop(module_name, None)
        raise StrategyLoadError(f"strategy file {path} failed to load: {type(exc).__name__}: {exc}") from exc
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        raise StrategyLoadError(f"{path} has no Strategy subclass named {class_name!r}")
    return cls


def build_strategies(config) -> list[Strategy]:
    """The enabled strategies of a node config, instantiated (fails early on a bad class or parameter)."""
    out = []
    for sc in config.strategies:
        if not sc.enabled:
            continue
        cls = load_strategy_class(sc.class_name, config.node.strategies_dir or None)
        out.append(cls(sc.id, sc.symbols, dict(sc.params), sc.timeframe))
    return out
