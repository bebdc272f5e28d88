"""Pure-Python reference twin of abidance._core.wire.MarketParser (tests only).

Written from the spec below with the stdlib `json` module and Decimal, for obviousness
rather than speed. It shares no code with the Cython parser. `parse(raw, ts_init)`
returns `(kind, fields)` for an accepted frame and `(None, reason)` for a dropped one.

The spec (what the Cython parser must do, and what the parity tests check):

Input
    bytes, bytearray, memoryview or any other contiguous byte buffer holding UTF-8 JSON.
    Anything else (str included: the caller encodes text frames), a non-contiguous or
    released view -> dropped as `malformed_json`. Nothing raises.

JSON (RFC 8259, as orjson reads it)
    Invalid UTF-8, invalid JSON, NaN/Infinity literals, lone surrogate escapes, a BOM,
    trailing data, nesting deeper than 1024 -> `malformed_json`. Duplicate keys: the last
    one wins. Whitespace (space, tab, CR, LF) is allowed between all tokens. Numbers
    of any size are valid JSON; only a field decides what it accepts.
    (Known difference, see the tests: orjson, which reads the unusual frames, also
    rejects numbers beyond the range of a double; the fast scanner does not.)

Shape
    The top level must be an object, else `not_an_object`. A combined-stream frame
    (one with a "data" key) carries its event in "data", which must be an object
    (else `not_an_object`); its other keys except "stream" are ignored. A raw frame
    is the event object itself.

Classification, in this order
    1. The event object has "e", or both "u" and "b": an event frame (below).
    2. A raw frame with "id" and "result" or "error": a reply -> ("response", ...).
    3. "lastUpdateId": a partial-depth frame -> `unsupported` (use the diff stream).
    4. Otherwise -> `unknown_event`.

Event frames
    - Text: every key and string of the event object (and the "stream" of a combined
      frame) must be printable ASCII without '"' or '\\' once decoded (escapes are
      fine in the frame: "\\u0061" is "a"); else `bad_field`. Each member value may nest
      at most 32 containers deep; else `bad_field`.
    - "e" must be "trade", "aggTrade", "depthUpdate" or "kline" (a string); any other
      value -> `unknown_event`. Without "e" (with "u" and "b") it is a bookTicker.
    - "s" must name a known instrument (exact, case-sensitive) -> else `unknown_symbol`.
    - Fields, checked in order; any failure -> `bad_field` unless said otherwise:
        ids/counts: a JSON integer (not bool, not 1.0) in [0, 2**63 - 1];
        times: ms in [0, (2**63 - 1) // 10**6], returned as ns;
        flags: true/false only;
        prices/quantities: a JSON string of plain decimal text (digits and at most one
          '.', at least one digit: no sign, exponent, spaces, NaN) whose value is a
          whole number of the instrument's increment (tick for prices, step for
          quantities), and whose value written with the increment's decimals fits
          int64; returned as that whole number. Prices and trade quantities must be
          > 0; book quantities, kline volume and bookTicker values may be 0.
      trade:       t, p, q, T, E, m
      aggTrade:    a, f, l (l >= f), p, q, T, E, m
      bookTicker:  u, b, B, a, A; not crossed (bid >= ask when both are > 0);
                   E optional (ns of E when present, else ts_init); T ignored
      depthUpdate: U, u; U > u -> `bad_ids`; E; then b and a must be present, each a
                   list of at most 100000 [price, qty] pairs of strings, price > 0,
                   qty >= 0 (0 removes the level) -> else `bad_levels`
      kline:       k an object; in k: i (non-empty string), t, T (T >= t), o, h, l, c
                   (l <= o, c <= h), v, n, x; then E; then k.q (quote volume, plain
                   decimal text of any precision, returned as a Decimal)
"""

from __future__ import annotations

import json
import re
import sys
from contextlib import contextmanager
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal
from typing import Any

INT64_MAX = 2**63 - 1
MAX_MS = INT64_MAX // 1_000_000
MAX_LEVELS = 100_000          # per side per frame
MAX_MEMBER_DEPTH = 32         # containers inside one member value of an event object
MAX_JSON_DEPTH = 1024         # orjson's limit for a whole frame

EVENT_TYPES = ("trade", "aggTrade", "depthUpdate", "kline")
REASONS = ("malformed_json", "not_an_object", "unknown_event", "unsupported", "unknown_symbol",
           "bad_field", "bad_ids", "bad_levels")

_PLAIN_DECIMAL = re.compile(r"[0-9]+\.?[0-9]*|\.[0-9]+")
_EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)   # decimal arithmetic without rounding


class _BigInt:
    """A JSON integer literal too long to be any int64 (kept as text)."""

    def __init__(self, text: str):
        self.text = text


class _Float:
    """A JSON number with a fraction or exponent (kept as text: no field takes one)."""

    def __init__(self, text: str):
        self.text = text


class _Drop(Exception):
    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


def _parse_int(text: str):
    # Python refuses int() of more than 4300 digits; nothing above 20 digits fits int64 anyway.
    return int(text) if len(text) <= 25 else _BigInt(text)


def _no_constants(name: str):
    raise ValueError(f"{name} is not JSON")


@contextmanager
def _deep_recursion(limit: int = 5000):
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, limit))
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


def _depth(value) -> int:
    """Containers nested in value: 0 for a scalar, 1 for [] or {}, 2 for [[]]..."""
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def _strings(value):
    """Every key and string value inside value."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


_PLAIN_TEXT = re.compile(r'[\x20\x21\x23-\x5b\x5d-\x7f]*')   # printable ASCII and DEL, no " or \\


def _plain_text(s: str) -> bool:
    return _PLAIN_TEXT.fullmatch(s) is not None


class Increment:
    """A tick or step size: values must be whole numbers of it."""

    def __init__(self, text: str):
        self.value = Decimal(text)
        if not self.value.is_finite() or self.value <= 0:
            raise ValueError(f"increment {text!r} must be a positive decimal")
        self.decimals = max(0, -self.value.normalize().as_tuple().exponent)
        self.scaled = int(self.value.scaleb(self.decimals))    # the increment at its own decimals

    def units(self, text: str) -> int:
        if not _PLAIN_DECIMAL.fullmatch(text):
            raise ValueError(f"{text!r} is not plain decimal text")
        scaled = _EXACT.scaleb(Decimal(text), self.decimals)     # the value at the increment's decimals
        if scaled > INT64_MAX:
            raise ValueError(f"{text!r} at {self.decimals} decimals overflows int64")
        if scaled != _EXACT.to_integral_value(scaled):
            raise ValueError(f"{text!r} has more than {self.decimals} decimals")
        units, rest = divmod(int(scaled), self.scaled)
        if rest:
            raise ValueError(f"{text!r} is not a whole number of {self.value}")
        return units


class Instrument:
    def __init__(self, symbol: str, tick: str, step: str):
        self.symbol = symbol
        self.tick = Increment(tick)
        self.step = Increment(step)


class MarketParserTwin:
    def __init__(self, instruments=()):
        """instruments: (symbol, tick, step) triples, e.g. ("BTCUSDT", "0.01", "0.00001")."""
        self.instruments: dict[str, Instrument] = {}
        for symbol, tick, step in instruments:
            self.instruments[symbol] = Instrument(symbol, tick, step)
        self.parsed = 0
        self.dropped = 0
        self.responses = 0
        self.drop_counts: dict[str, int] = {}

    # ---- entry point ----------------------------------------------------------------

    def parse(self, raw, ts_init: int) -> tuple[str | None, Any]:
        try:
            with _deep_recursion():
                kind, fields = self._parse(raw, ts_init)
        except _Drop as drop:
            self.dropped += 1
            self.drop_counts[drop.reason] = self.drop_counts.get(drop.reason, 0) + 1
            return None, drop.reason
        if kind == "response":
            self.responses += 1
        else:
            self.parsed += 1
        return kind, fields

    def _parse(self, raw, ts_init: int):
        msg = self._load(raw)
        if not isinstance(msg, dict):
            raise _Drop("not_an_object", type(msg).__name__)
        combined = "data" in msg
        event = msg["data"] if combined else msg
        if not isinstance(event, dict):
            raise _Drop("not_an_object", f"data is {type(event).__name__}")

        if not ("e" in event or ("u" in event and "b" in event)):
            if not combined and "id" in msg and ("result" in msg or "error" in msg):
                return "response", {"request_id": msg.get("id"), "result": msg.get("result"),
                                    "error": msg.get("error")}
            if "lastUpdateId" in event:
                raise _Drop("unsupported", "partial book depth")
            raise _Drop("unknown_event", "no event type")

        read = [event] + ([msg["stream"]] if combined and "stream" in msg else [])
        for part in read:
            for s in _strings(part):
                if not _plain_text(s):
                    raise _Drop("bad_field", f"text {s!r}")
        members = list(event.values()) + read[1:]
        if any(_depth(v) > MAX_MEMBER_DEPTH for v in members):
            raise _Drop("bad_field", "nested too deep")

        if "e" in event:
            kind = event["e"]
            if not isinstance(kind, str) or kind not in EVENT_TYPES:
                raise _Drop("unknown_event", f"e={kind!r}")
        else:
            kind = "bookTicker"
        symbol = event.get("s")
        inst = self.instruments.get(symbol) if isinstance(symbol, str) else None
        if inst is None:
            raise _Drop("unknown_symbol", f"s={symbol!r}")
        reader = {"trade": self._trade, "aggTrade": self._agg_trade, "bookTicker": self._book_ticker,
                  "depthUpdate": self._depth_update, "kline": self._kline}[kind]
        fields = reader(event, inst)
        if fields["ts_event"] is None:          # a bookTicker without E
            fields["ts_event"] = ts_init
        fields["symbol"] = inst.symbol
        fields["ts_init"] = ts_init
        return kind, fields

    @staticmethod
    def _load(raw):
        try:
            view = memoryview(raw)
            if not view.c_contiguous:
                raise BufferError("not contiguous")
            blob = view.tobytes()
        except (TypeError, ValueError, BufferError) as exc:
            raise _Drop("malformed_json", f"frame is {type(raw).__name__}: {exc}") from None
        try:
            text = blob.decode("utf-8")
            msg = json.loads(text, parse_int=_parse_int, parse_float=_Float, parse_constant=_no_constants)
            depth = _depth(msg)
        except (ValueError, RecursionError) as exc:    # UnicodeDecodeError, JSONDecodeError included
            raise _Drop("malformed_json", str(exc)) from None
        if depth > MAX_JSON_DEPTH:
            raise _Drop("malformed_json", f"nesting {depth} > {MAX_JSON_DEPTH}")
        for s in _strings(msg):
            if any(0xD800 <= ord(ch) <= 0xDFFF for ch in s):
                raise _Drop("malformed_json", "lone surrogate")
        return msg

    # ---- fields ---------------------------------------------------------------------

    @staticmethod
    def _int(obj: dict, key: str) -> int:
        if key not in obj:
            raise _Drop("bad_field", f"{key} missing")
        v = obj[key]
        if type(v) is not int or not 0 <= v <= INT64_MAX:   # bool, float, _BigInt, str... fail
            raise _Drop("bad_field", f"{key}={v!r}")
        return v

    @classmethod
    def _ns(cls, obj: dict, key: str) -> int:
        ms = cls._int(obj, key)
        if ms > MAX_MS:
            raise _Drop("bad_field", f"{key}={ms} ms overflows ns")
        return ms * 1_000_000

    @staticmethod
    def _flag(obj: dict, key: str) -> bool:
        v = obj.get(key)
        if type(v) is not bool:
            raise _Drop("bad_field", f"{key}={v!r}")
        return v

    @staticmethod
    def _units(obj: dict, key: str, inc: Increment, positive: bool) -> int:
        v = obj.get(key)
        if not isinstance(v, str):
            raise _Drop("bad_field", f"{key}={v!r}")
        try:
            units = inc.units(v)
        except ValueError as exc:
            raise _Drop("bad_field", f"{key}: {exc}") from None
        if positive and units == 0:
            raise _Drop("bad_field", f"{key}={v!r} must be > 0")
        return units

    @staticmethod
    def _levels(value, inst: Instrument, side: str) -> list[tuple[int, int]]:
        if not isinstance(value, list):
            raise _Drop("bad_levels", f"{side} is not a list")
        if len(value) > MAX_LEVELS:
            raise _Drop("bad_levels", f"{side}: more than {MAX_LEVELS} levels")
        out = []
        for level in value:
            if not (isinstance(level, list) and len(level) == 2 and all(isinstance(x, str) for x in level)):
                raise _Drop("bad_levels", f"{side}: {level!r} is not a [price, qty] pair")
            try:
                px, qty = inst.tick.units(level[0]), inst.step.units(level[1])
            except ValueError as exc:
                raise _Drop("bad_levels", f"{side}: {exc}") from None
            if px == 0:
                raise _Drop("bad_levels", f"{side}: price 0")
            out.append((px, qty))
        return out

    # ---- events ---------------------------------------------------------------------

    def _trade(self, ev: dict, inst: Instrument) -> dict:
        return {
            "trade_id": self._int(ev, "t"),
            "price": self._units(ev, "p", inst.tick, True),
            "qty": self._units(ev, "q", inst.step, True),
            "ts_trade": self._ns(ev, "T"),
            "ts_event": self._ns(ev, "E"),
            "buyer_is_maker": self._flag(ev, "m"),
        }

    def _agg_trade(self, ev: dict, inst: Instrument) -> dict:
        out = {"agg_id": self._int(ev, "a"), "first_trade_id": self._int(ev, "f"),
               "last_trade_id": self._int(ev, "l")}
        if out["last_trade_id"] < out["first_trade_id"]:
            raise _Drop("bad_field", "l < f")
        out.update(price=self._units(ev, "p", inst.tick, True), qty=self._units(ev, "q", inst.step, True),
                   ts_trade=self._ns(ev, "T"), ts_event=self._ns(ev, "E"), buyer_is_maker=self._flag(ev, "m"))
        return out

    def _book_ticker(self, ev: dict, inst: Instrument) -> dict:
        out = {
            "update_id": self._int(ev, "u"),
            "bid_price": self._units(ev, "b", inst.tick, False),
            "bid_qty": self._units(ev, "B", inst.step, False),
            "ask_price": self._units(ev, "a", inst.tick, False),
            "ask_qty": self._units(ev, "A", inst.step, False),
        }
        if out["bid_price"] > 0 and out["ask_price"] > 0 and out["bid_price"] >= out["ask_price"]:
            raise _Drop("bad_field", "crossed")
        out["ts_event"] = self._ns(ev, "E") if "E" in ev else None   # None: ts_init (set by _parse)
        return out

    def _depth_update(self, ev: dict, inst: Instrument) -> dict:
        first, final = self._int(ev, "U"), self._int(ev, "u")
        if first > final:
            raise _Drop("bad_ids", f"U={first} > u={final}")
        ts_event = self._ns(ev, "E")
        if "b" not in ev or "a" not in ev:
            raise _Drop("bad_levels", "b or a missing")
        return {"first_id": first, "final_id": final, "ts_event": ts_event,
                "bids": self._levels(ev["b"], inst, "b"), "asks": self._levels(ev["a"], inst, "a")}

    def _kline(self, ev: dict, inst: Instrument) -> dict:
        k = ev.get("k")
        if not isinstance(k, dict):
            raise _Drop("bad_field", "k is not an object")
        interval = k.get("i")
        if not isinstance(interval, str) or not interval:
            raise _Drop("bad_field", f"i={interval!r}")
        out = {"interval": interval, "open_time": self._ns(k, "t"), "close_time": self._ns(k, "T")}
        if out["close_time"] < out["open_time"]:
            raise _Drop("bad_field", "T < t")
        o, h = self._units(k, "o", inst.tick, True), self._units(k, "h", inst.tick, True)
        lo, c = self._units(k, "l", inst.tick, True), self._units(k, "c", inst.tick, True)
        if not (lo <= o <= h and lo <= c <= h):
            raise _Drop("bad_field", "OHLC inconsistent")
        out.update(open=o, high=h, low=lo, close=c, volume=self._units(k, "v", inst.step, False),
                   trades=self._int(k, "n"), closed=self._flag(k, "x"), ts_event=self._ns(ev, "E"))
        q = k.get("q")
        if not isinstance(q, str) or not _PLAIN_DECIMAL.fullmatch(q):
            raise _Drop("bad_field", f"q={q!r}")
        out["quote_volume"] = Decimal(q)
        return out
