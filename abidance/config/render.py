"""Show the config: the effective values as TOML, and the reference of every key as Markdown."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

from abidance.config.schema import REQUIRED, Section
from abidance.config.sections import INSTRUMENT, SECTIONS, SIM_DOC, STRATEGY, VERSION, NodeConfig

REGENERATE = "python -m abidance.config.cli docs > docs/config.md"


def _plain(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (Path, Decimal)):
        return str(value)
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):     # a table of an array of tables
        return {(f.metadata["spec"].name or f.name): _plain(getattr(value, f.name))
                for f in dataclasses.fields(value)}
    return value


def _table(section: Section, obj: Any) -> dict[str, Any]:
    return {name: _plain(getattr(obj, spec.attr)) for name, spec in section.keys.items()}


def as_dict(cfg: NodeConfig) -> dict[str, Any]:
    out: dict[str, Any] = {"config_version": cfg.config_version}
    out.update({name: _table(section, getattr(cfg, name)) for name, section in SECTIONS.items()})
    out["strategies"] = [_table(STRATEGY, s) for s in cfg.strategies]
    out["instruments"] = [_table(INSTRUMENT, i) for i in cfg.instruments]
    out["sim"] = cfg.sim
    return out


def _key(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else json.dumps(name, ensure_ascii=False)


def toml_value(value: Any) -> str:
    """One value as inline TOML."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)          # inf and nan are TOML too
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_key(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    return toml_value(_plain(value))


def to_toml(cfg: NodeConfig) -> str:
    data = as_dict(cfg)
    lines = ["# The effective abidance config (after environment overrides).", "",
             f"config_version = {data['config_version']}"]
    for name in (*SECTIONS, "strategies", "instruments", "sim"):
        arrays = name in ("strategies", "instruments")
        tables = data[name] if arrays else [data[name]] if name != "sim" or data[name] else []
        for table in tables:
            lines += ["", f"[[{name}]]" if arrays else f"[{name}]"]
            lines += [f"{_key(k)} = {toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _rows(section: Section) -> list[str]:
    rows = ["| key | type | default | allowed | description |", "|---|---|---|---|---|"]
    for name, spec in section.keys.items():
        default = "required" if spec.default is REQUIRED else f"`{toml_value(spec.default)}`"
        prefix = {"list": "each ", "table": "keys: "}.get(spec.kind.container, "")
        allowed = spec.allowed() and prefix + spec.allowed()
        rows.append(f"| `{name}` | {spec.kind.name} | {default} | {_cell(allowed)} | {_cell(spec.doc)} |")
    return rows


def schema_markdown() -> str:
    """The reference of every key (docs/config.md)."""
    top = Section("", NodeConfig, "", {"config_version": VERSION})
    out = [
        "# Configuration reference", "",
        f"<!-- Generated from abidance/config/sections.py by `{REGENERATE}`; do not edit by hand. -->", "",
        "The node reads one TOML file (`config/sim.toml` is a working example). Check it with",
        "`abidance config check FILE`; see the effective values with `abidance config show FILE`.", "",
        "- A key marked required must be given; any other missing key takes its default. Unknown keys are errors.",
        "- Every error names its key path, the bad value and what is allowed; all errors are reported at once.",
        "- Every number has a range (below): a value such as `heartbeat_s = 1e308` is refused by `check`, not",
        "  met as an overflow at run time. A file that sets no key (empty, only comments, only empty tables) is",
        "  refused rather than run on the defaults.",
        "- `check` also builds every configured strategy as `abidance run` would: the class must load and each",
        "  of its `params` must be a declared parameter within its declared range (`fast = -5` is refused).",
        "- Environment overrides: `ABIDANCE__<SECTION>__<KEY>=value`, e.g. `ABIDANCE__RISK__MAX_OPEN_ORDERS=5`.",
        "  Values are parsed by the key's type: booleans `true`/`false`, lists `1m,5m` or a TOML array,",
        "  tables an inline TOML table (`{ BTCUSDT = \"0.01\" }`).",
        "  `[[strategies]]`, `[[instruments]]` and `[sim]` come only from the file.",
        "- Secrets are never in the file: a key named like `*api_key*`, `*secret*`, `*password*`, `*private_key*`,",
        "  `*token*` or `*webhook_url*` anywhere is refused. The connector reads `ABIDANCE_BINANCE_API_KEY` with",
        "  `ABIDANCE_BINANCE_API_SECRET` (or `ABIDANCE_BINANCE_PRIVATE_KEY_FILE`, or `ABIDANCE_BINANCE_KEY_FILE`)",
        "  from the environment; an alert channel its `ABIDANCE_ALERTS_<NAME>_SECRET` (or `_SECRET_FILE`).",
        "- Money is a quoted decimal string in `risk.quote_asset` (`\"1000.5\"`; floats are refused as inexact).",
        "- Relative paths resolve against the config file's folder (`risk.kill_switch_file`: against",
        "  `node.state_dir`).", "",
        "## Top level", "", *_rows(top), "",
    ]
    for section in (*SECTIONS.values(), STRATEGY, INSTRUMENT):
        title = f"[[{section.name}]]" if section in (STRATEGY, INSTRUMENT) else f"[{section.name}]"
        out += [f"## {title}", "", section.doc, "", *_rows(section), ""]
        for spec in section.keys.values():
            if spec.kind.section is not None:
                sub = spec.kind.section
                out += [f"### [[{sub.name}]]", "", sub.doc, "", *_rows(sub), ""]
    out += ["Second pass, across keys: strategy ids are unique; each strategy's timeframe is added to",
            "`data.bar_intervals` and its symbols to `node.symbols`; every traded symbol is quoted in",
            "`risk.quote_asset`; `risk.max_position` names only traded symbols; `risk.fixed_quote` is > 0 and",
            "at most `risk.max_order_notional` when `risk.sizing = \"fixed_quote\"`; a `module_file:ClassName`",
            "strategy needs `node.strategies_dir`.", "",
            "## [sim]", "", SIM_DOC, ""]
    return "\n".join(out)
