"""Load the node's TOML config: refuse secrets, apply environment overrides, validate, cross-check.

Environment overrides: `ABIDANCE__<SECTION>__<KEY>=value` (e.g. `ABIDANCE__RISK__MAX_OPEN_ORDERS=5`),
parsed by the key's type and validated like the file. Secrets never come from the file: the
connector reads them from ABIDANCE_BINANCE_API_KEY / ABIDANCE_BINANCE_API_SECRET (credentials.py).
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping

from abidance.config.rules import cross_check
from abidance.config.schema import Errors, Invalid, validate
from abidance.config.sections import (INSTRUMENT, SECTIONS, STRATEGY, VERSION, InstrumentConfig, NodeConfig,
                                      StrategyConfig)
from abidance.exchange.binance.config import BinanceConfig

ENV_PREFIX = "ABIDANCE__"
TOP_LEVEL = ("config_version", *SECTIONS, "strategies", "instruments", "sim")
_SECRET = re.compile(r"apikey|secret|password|privatekey|token|webhookurl")
SECRET_HELP = ("secrets are never read from the config file: remove it and set it in the environment "
               "(ABIDANCE_BINANCE_API_KEY with ABIDANCE_BINANCE_API_SECRET or ABIDANCE_BINANCE_PRIVATE_KEY_FILE, "
               "or ABIDANCE_BINANCE_KEY_FILE; the simulator's: ABIDANCE_SIM_API_KEY / ABIDANCE_SIM_API_SECRET; an alert "
               "channel's token, webhook URL or password: ABIDANCE_ALERTS_<NAME>_SECRET or _SECRET_FILE)")

EMPTY_HELP = ("the config has no keys: an empty file is refused rather than run on the defaults (paper mode "
              "on the default venue, no strategies); start from `abidance config show` or docs/config.md")


class ConfigError(ValueError):
    """The config is invalid; `errors` lists every problem, each naming its key path."""

    def __init__(self, errors: list[str], source: str = "config") -> None:
        self.errors, self.source = list(errors), source
        n = len(self.errors)
        super().__init__(f"{source}: {n} error{'s' * (n != 1)}:\n" + "\n".join(f"  - {e}" for e in self.errors))


def is_secret_name(name: str) -> bool:
    return bool(_SECRET.search(re.sub(r"[_\-. ]", "", name.lower())))


def load_config(path: str | Path | None, env: Mapping[str, str] | None = None) -> NodeConfig:
    """Load and validate a config file. None: the defaults, with relative paths against the working
    directory. `env` (default os.environ) supplies ABIDANCE__<SECTION>__<KEY> overrides."""
    if path is None:
        return _build({}, Path.cwd(), env, "defaults")
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"config file {path} not found"], str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"cannot read config file {path}: {exc}"], str(path)) from None
    return parse_config(text, path.parent, env, source=str(path))


def parse_config(text: str, base_dir: str | Path, env: Mapping[str, str] | None = None,
                 *, source: str = "config") -> NodeConfig:
    """Validate TOML text; relative paths resolve against `base_dir`. `env` defaults to os.environ."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"invalid TOML: {exc}"], source) from None
    if _no_keys(raw):
        raise ConfigError([EMPTY_HELP], source)
    return _build(raw, Path(base_dir), env, source)


def _no_keys(raw: dict[str, Any]) -> bool:
    """True for a file that sets nothing: no key at all, or only empty known tables such as a bare [node]
    (an unknown table name is reported as such instead)."""
    return all(name in TOP_LEVEL and v == {} for name, v in raw.items())


def _build(raw: dict[str, Any], base_dir: Path, env: Mapping[str, str] | None, source: str) -> NodeConfig:
    errors = Errors()
    _refuse_secrets(raw, "", errors)
    _apply_env(raw, os.environ if env is None else env, errors)
    for name in raw:
        if name not in TOP_LEVEL:
            errors.unknown(name, name, list(TOP_LEVEL))
    version = VERSION.default
    if "config_version" in raw:
        try:
            version = VERSION.check(raw["config_version"])
        except Invalid as exc:
            errors.add("config_version", exc.msg)
    parts: dict[str, Any] = {}
    for name, section in SECTIONS.items():
        table = raw.get(name, {})
        if not isinstance(table, dict):
            errors.add(name, f"must be a table ([{name}]), got {table!r}")
            table = {}
        values = validate(section, table, name, errors)
        parts[name] = _binance(values, errors) if section.cls is BinanceConfig else section.cls(**values)
    sim = raw.get("sim", {})
    if not isinstance(sim, dict):
        errors.add("sim", f"must be a table ([sim]), got {sim!r}")
        sim = {}
    strategies = _strategies(raw.get("strategies", []), errors)
    instruments = _instruments(raw.get("instruments", []), errors)
    cfg = NodeConfig(config_version=version, strategies=strategies, instruments=instruments, sim=sim, **parts)
    cfg = cross_check(cfg, base_dir, errors)
    if errors.items:
        raise ConfigError(errors.items, source)
    return cfg


def _refuse_secrets(node: Any, where: str, errors: Errors) -> None:
    """Drop every secret-like key anywhere in the file with an error that never shows its value."""
    if isinstance(node, list):
        for i, item in enumerate(node):
            _refuse_secrets(item, f"{where}[{i}]", errors)
    elif isinstance(node, dict):
        for name in list(node):
            path = f"{where}.{name}" if where else name
            if is_secret_name(name):
                del node[name]
                errors.add(path, SECRET_HELP)
            else:
                _refuse_secrets(node[name], path, errors)


def _apply_env(raw: dict[str, Any], env: Mapping[str, str], errors: Errors) -> None:
    for var in sorted(v for v in env if v.startswith(ENV_PREFIX)):
        parts = var[len(ENV_PREFIX):].lower().split("__")
        if is_secret_name(var):
            errors.add(var, "is refused: secrets are not config overrides; the connector reads "
                       "ABIDANCE_BINANCE_API_KEY / ABIDANCE_BINANCE_API_SECRET (one underscore) itself")
            continue
        if len(parts) != 2 or parts[0] not in SECTIONS:
            known = [f"{ENV_PREFIX}{s.upper()}__<KEY>" for s in SECTIONS]
            near = difflib.get_close_matches(parts[0], list(SECTIONS), 1)
            hint = f"; did you mean {ENV_PREFIX}{near[0].upper()}__...?" if near else ""
            errors.add(var, f"is not a config override (expected one of {', '.join(known)}){hint}")
            continue
        section, name = parts
        spec = SECTIONS[section].keys.get(name)
        if spec is None:
            errors.unknown(f"{var} ({section}.{name})", name, list(SECTIONS[section].keys))
            continue
        errors.sources[f"{section}.{name}"] = var
        try:
            value = spec.kind.from_env(env[var])
        except Invalid as exc:
            errors.add(f"{section}.{name}", exc.msg)
            continue
        table = raw.setdefault(section, {})
        if isinstance(table, dict):
            table[name] = value


def _binance(values: dict[str, Any], errors: Errors) -> BinanceConfig:
    """Build BinanceConfig with its own validation; report each error it finds, then retry without that key."""
    values = dict(values)
    while True:
        try:
            return BinanceConfig(**values)
        except ValueError as exc:
            match = re.match(r"binance\.(\w+)", str(exc))
            name = match.group(1) if match else ""
            errors.add(f"binance.{name}" if name else "binance", str(exc))
            if name not in values:
                return BinanceConfig()
            del values[name]


def _strategies(items: Any, errors: Errors) -> tuple[StrategyConfig, ...]:
    if not isinstance(items, list) or not all(isinstance(t, dict) for t in items):
        errors.add("strategies", "must be an array of tables: one [[strategies]] table per strategy")
        return ()
    out = []
    for i, table in enumerate(items):
        n = len(errors.items)
        if "weight" in table:
            # Documented once as a capital share, but nothing ever sized by it: refused rather than ignored.
            errors.add(f"strategies[{i}].weight", "is not read by anything: remove it (an order's size comes from "
                       "risk.sizing, e.g. risk.fixed_quote, and risk.max_position caps a symbol)")
            table = {k: v for k, v in table.items() if k != "weight"}
        values = validate(STRATEGY, table, f"strategies[{i}]", errors)
        if len(errors.items) == n:
            out.append(StrategyConfig(**values))
        elif "id" in values:        # keep it for the cross-field checks (duplicate ids)
            out.append(replace(StrategyConfig(id=values["id"], class_name="invalid", symbols=()), **values))
    return tuple(out)


def _instruments(items: Any, errors: Errors) -> tuple[InstrumentConfig, ...]:
    if not isinstance(items, list) or not all(isinstance(t, dict) for t in items):
        errors.add("instruments", "must be an array of tables: one [[instruments]] table per symbol")
        return ()
    out, seen = [], {}
    for i, table in enumerate(items):
        n = len(errors.items)
        values = validate(INSTRUMENT, table, f"instruments[{i}]", errors)
        if len(errors.items) > n:
            continue
        symbol = values["symbol"]
        if symbol in seen:
            errors.add(f"instruments[{i}].symbol", f"{symbol!r} is already declared by instruments[{seen[symbol]}]")
            continue
        seen[symbol] = i
        out.append(InstrumentConfig(**values))
    return tuple(out)
