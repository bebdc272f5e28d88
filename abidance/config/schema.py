"""Declarative config keys: each has a type, a default, a one-line description and its rules.

A section is a frozen dataclass whose fields are declared with `key(...)`. `validate()` checks a
TOML table against a `Section` and collects every error (never just the first) in an `Errors`,
each naming the key path, the bad value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import operator
import re
import tomllib
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Callable, Mapping

from abidance._core.risk import quote_units


class Invalid(ValueError):
    """One value is wrong. `msg` completes "<key path> ..."; `at` extends the path ("[2]", ".BTCUSDT")."""

    def __init__(self, msg: str, at: str = "") -> None:
        super().__init__(msg)
        self.msg, self.at = msg, at


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()


# -- kinds: TOML value -> Python value, and environment text -> TOML value -------------------------

@dataclass(frozen=True)
class Kind:
    name: str                          # shown in the reference, e.g. "integer"
    check: Callable[[Any], Any]        # TOML value -> Python value; raises Invalid
    from_env: Callable[[str], Any]     # environment text -> TOML value; raises Invalid
    container: str = ""                # "list" or "table": rules apply to items / keys
    rules: str = ""                    # what any value of the kind must be, for the reference
    section: Any = None                # an array of tables: the Section each table is checked against


def _got(what: str, value: Any) -> Invalid:
    return Invalid(f"must be {what}, got {value!r}")


def _str(v: Any) -> str:
    if not isinstance(v, str):
        raise _got("a string", v)
    return v


INT64_MAX = 2**63 - 1


def _int(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise _got("an integer", v)
    if not -INT64_MAX - 1 <= v <= INT64_MAX:        # TOML allows only int64; a mapping may hold anything
        raise _got("an integer that fits 64 bits", v)
    return v


def _float(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise _got("a finite number", v)
    return float(v)


def _bool(v: Any) -> bool:
    if not isinstance(v, bool):
        raise _got("true or false", v)
    return v


def _path(v: Any) -> Path | None:
    return Path(_str(v)).expanduser() if _str(v) else None


def _exact(v: Any, convert: Callable[[Any], Any], what: str) -> Any:
    """Money and quantities: decimal strings (ints allowed); floats refused because they are inexact."""
    if isinstance(v, float):
        raise Invalid(f"must be a quoted decimal string, not the float {v!r} (binary floats are "
                      f"not exact): write it as \"{v!r}\"")
    if isinstance(v, bool) or not isinstance(v, (str, int)):
        raise _got("a decimal string like \"100\" or \"0.5\"", v)
    try:
        return convert(v)
    except (ValueError, InvalidOperation, ArithmeticError):
        raise _got(f"a non-negative decimal string{what} like \"100\" or \"0.5\"", v) from None


def _money(v: Any) -> Decimal:
    def convert(x: Any) -> Decimal:
        quote_units(str(x))            # the same rules as the risk engine: >= 0, at most 8 decimals
        return Decimal(str(x))
    return _exact(v, convert, " with at most 8 decimals")


# The largest quantity, fee or balance a config may hold: beyond it int64 fixed point (and sanity) ends.
MAX_QTY = Decimal(10) ** 15


def _qty(v: Any, most: Decimal = MAX_QTY) -> Decimal:
    def convert(x: Any) -> Decimal:
        d = Decimal(str(x).strip())
        if not d.is_finite() or d < 0 or d > most or "e" in str(x).lower() or -d.as_tuple().exponent > 18:
            raise ValueError
        return d
    return _exact(v, convert, f" of at most {most:,f} with at most 18 decimals")


def _list(v: Any) -> tuple[str, ...]:
    if not isinstance(v, list):
        raise _got("an array of strings", v)
    for i, item in enumerate(v):
        if not isinstance(item, str):
            raise Invalid(f"must be a string, got {item!r}", f"[{i}]")
    return tuple(v)


def _qty_table(v: Any, most: Decimal = MAX_QTY) -> dict[str, Decimal]:
    if not isinstance(v, dict):
        raise _got("a table of SYMBOL = \"quantity\"", v)
    out = {}
    for k, x in v.items():
        try:
            out[k] = _qty(x, most)
        except Invalid as exc:
            raise Invalid(exc.msg, f".{k}") from None
    return out


def _bps_table(v: Any) -> dict[str, Decimal]:
    return _qty_table(v, Decimal(10_000))


def _table(v: Any) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise _got("a table", v)
    return v


def _env_parse(kind: str, parse: Callable[[str], Any]) -> Callable[[str], Any]:
    def from_env(text: str) -> Any:
        try:
            return parse(text.strip())
        except (ValueError, tomllib.TOMLDecodeError):
            raise _got(kind, text) from None
    return from_env


def _toml_value(text: str) -> Any:
    return tomllib.loads(f"v = {text}")["v"]


def _env_bool(text: str) -> bool:
    words = {"true": True, "1": True, "yes": True, "on": True, "false": False, "0": False, "no": False, "off": False}
    if text.strip().lower() not in words:
        raise _got("true or false", text)
    return words[text.strip().lower()]


def _env_list(text: str) -> Any:
    if text.startswith("["):
        return _toml_value(text)
    return [item.strip() for item in text.split(",") if item.strip()]


STR = Kind("string", _str, str)
INT = Kind("integer", _int, _env_parse("an integer", int))
FLOAT = Kind("float", _float, _env_parse("a number", float))
BOOL = Kind("boolean", _bool, _env_bool)
PATH = Kind("path", _path, str)
MONEY = Kind("decimal string (quote asset)", _money, str, rules=">= 0, at most 8 decimals")
QTY = Kind("decimal string", _qty, str, rules=">= 0, at most 1e15, at most 18 decimals")
STR_LIST = Kind("array of strings", _list, _env_parse("a comma-separated list or a TOML array", _env_list), "list")
_env_table = _env_parse("an inline TOML table", _toml_value)
QTY_TABLE = Kind("table: symbol = decimal string", _qty_table, _env_table, "table")
BPS_TABLE = Kind("table: symbol = decimal string (bps)", _bps_table, _env_table, "table",
                 rules="values >= 0 and <= 10000")
TABLE = Kind("table", _table, _env_table)


def table_list(section: "Section") -> Kind:
    """An array of tables ([[<where>.<key>]]), each checked against `section`; the value is a tuple of
    section.cls. The first error found is raised with its path (`[1].kind`)."""
    def check(v: Any) -> tuple:
        if not isinstance(v, list) or not all(isinstance(t, dict) for t in v):
            raise _got("an array of tables", v)
        out = []
        for i, table in enumerate(v):
            errors = Errors()
            values = validate(section, table, "", errors)
            if errors.items:
                first = errors.items[0].lstrip(".")
                path, _, msg = first.partition(" ")
                raise Invalid(msg, f"[{i}].{path}")
            out.append(section.cls(**values))
        return tuple(out)
    return Kind("array of tables", check, _env_parse("a TOML array of inline tables", _toml_value),
                section=section)


KIND_OF_TYPE = {"str": STR, "int": INT, "float": FLOAT, "bool": BOOL}


# -- a key and a section -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Spec:
    """One key: its kind, TOML default, description and rules (bounds, choices, pattern)."""

    kind: Kind
    default: Any
    doc: str
    choices: tuple = ()
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    pattern: str | None = None
    hint: str = ""                  # replaces the generated text of what is allowed
    nonempty: bool = False
    name: str = ""                  # the TOML name when it differs from the attribute ("class")
    attr: str = ""                  # the dataclass attribute; set by Section

    def allowed(self) -> str:
        """What is allowed, in words ("" when anything of the kind is)."""
        if self.hint:
            return self.hint
        parts = []
        if self.choices:
            parts.append("one of " + ", ".join(_show(c) for c in self.choices))
        lo = f"[{self.ge}" if self.ge is not None else f"({self.gt}" if self.gt is not None else ""
        hi = f"{self.le}]" if self.le is not None else f"{self.lt})" if self.lt is not None else ""
        if lo and hi:
            parts.append(f"within {lo}, {hi}")
        elif lo:
            parts.append((">= " if lo[0] == "[" else "> ") + lo[1:])
        elif hi:
            parts.append(("<= " if hi[-1] == "]" else "< ") + hi[:-1])
        if self.pattern:
            parts.append(f"matching {self.pattern}")
        if self.nonempty:
            parts.append("not empty")
        return ", ".join(parts) or self.kind.rules

    def check(self, value: Any) -> Any:
        """The Python value of a TOML value; raises Invalid."""
        v = self.kind.check(value)
        if self.nonempty and not v:
            raise Invalid("must not be empty")
        if self.kind.container == "list":
            for i, item in enumerate(v):
                self._rules(item, f"[{i}]")
        elif self.kind.container == "table":
            for k in v:
                self._rules(k, f".{k}", what="key")
        elif v is not None:
            self._rules(v)
        return v

    def _rules(self, v: Any, at: str = "", what: str = "") -> None:
        ok = not (self.choices and v not in self.choices)
        ok = ok and not (self.pattern and not (isinstance(v, str) and re.fullmatch(self.pattern, v)))
        ok = ok and all(op(v, getattr(self, n)) for n, op in _BOUNDS if getattr(self, n) is not None)
        if not ok:
            near = difflib.get_close_matches(v, [str(c) for c in self.choices], 1) if isinstance(v, str) else []
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise Invalid(f"must be {self.allowed()}, got {v!r}{hint}" if not what
                          else f"{what} {v!r} must be {self.allowed()}", at)


_BOUNDS = (("ge", operator.ge), ("gt", operator.gt), ("le", operator.le), ("lt", operator.lt))


def _show(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def key(kind: Kind, default: Any, doc: str, **rules: Any) -> Any:
    """Declare a section field: `name: int = key(INT, 5, "what it does", ge=0)`."""
    spec = Spec(kind, default, doc, **rules)
    meta = {"spec": spec}
    if default is REQUIRED:
        return field(metadata=meta)
    value = spec.check(default)
    if isinstance(value, dict):
        return field(default_factory=lambda: dict(value), metadata=meta)
    return field(default=value, metadata=meta)


@dataclass(frozen=True)
class Section:
    """A TOML table's schema: its keys by TOML name, and the class they build."""

    name: str
    cls: type
    doc: str
    keys: dict[str, Spec]

    @classmethod
    def of(cls, name: str, section_cls: type, doc: str) -> "Section":
        keys = {}
        for f in dataclasses.fields(section_cls):
            spec = dataclasses.replace(f.metadata["spec"], attr=f.name)
            keys[spec.name or f.name] = spec
        return cls(name, section_cls, doc, keys)


# -- collecting errors ---------------------------------------------------------------------------------

class Errors:
    """Every error found, each starting with its key path; values set from the environment say so."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self.sources: dict[str, str] = {}     # key path -> environment variable it came from

    def add(self, path: str, msg: str) -> None:
        """Record "<path> <msg>" (msg may already start with the path)."""
        text = msg if msg.startswith(path + " ") else f"{path} {msg}"
        for src_path, var in self.sources.items():
            if path == src_path or path.startswith((src_path + ".", src_path + "[")):
                text += f" (from the environment variable {var})"
                break
        self.items.append(text)

    def unknown(self, path: str, name: str, known: list[str]) -> None:
        near = difflib.get_close_matches(name, known, 1)
        self.add(path, f"is not a known key; did you mean {near[0]!r}?" if near
                 else f"is not a known key (known: {', '.join(known)})")


# Keys that once existed, with what replaced them: a config that still sets one gets this, not "unknown key".
RETIRED_KEYS = {
    "execution.emulate_stops": "was replaced by execution.exits = \"auto\" | \"native\" | \"emulated\" (native "
                               "exits rest on the exchange and are the default when trading live); remove the key.",
    "binance.listen_key_keepalive_s": "is no longer used: Binance switched off the listenKey user-data flow on "
                                      "2026-02-20 (POST /api/v3/userDataStream answers 410 Gone). User data now "
                                      "comes over the WebSocket API with nothing to keep alive; remove the key "
                                      "(see binance.user_data_auth and binance.ws_api_url).",
}


def validate(section: Section, table: Mapping[str, Any], where: str, errors: Errors) -> dict[str, Any]:
    """The attribute values of the keys in `table` that are valid; every problem goes to `errors`."""
    values = {}
    for name in table:
        if f"{where}.{name}" in RETIRED_KEYS:
            errors.add(f"{where}.{name}", RETIRED_KEYS[f"{where}.{name}"])
        elif name not in section.keys:
            errors.unknown(f"{where}.{name}", name, list(section.keys))
    for name, spec in section.keys.items():
        if name not in table:
            if spec.default is REQUIRED:
                errors.add(f"{where}.{name}", f"is required ({spec.doc})")
            continue
        try:
            values[spec.attr] = spec.check(table[name])
        except Invalid as exc:
            errors.add(f"{where}.{name}{exc.at}", exc.msg)
    return values
