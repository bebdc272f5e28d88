"""Recorded order-book depth: read it for a backtest, record it from a live feed.

The format is the one of the public Binance depth samples in ../shared/data/binance-nt (from
nautilus_trader's test data), one CSV row per price level:

    symbol,timestamp,first_update_id,last_update_id,side,update_type,price,qty,pu

`update_type` is `snap` for the rows of a full snapshot (one `last_update_id` each) and `set`
for a diff (the rows of one update share U = first_update_id, u = last_update_id and the
timestamp in ms); qty 0 removes a level. `pu` is the previous diff's u on Binance's futures
stream (-1 on the spot stream and in snapshots). Files: `<symbol>-depth-snap.csv` and
`<symbol>-depth-update.csv`; trades beside them as `<symbol>-trades.csv`
(symbol,timestamp,trade_id,price,qty,buyer_maker).

Reading: a snapshot becomes a BookSnapshot, each diff the DepthDiffEvent the live connector
would have parsed from the same update (its Binance frame, through the same Cython parser), in
time order. The data engine then keeps the book by Binance's rules (abidance/data/books.py):
a diff that does not follow the book is a gap, and the book waits for the next snapshot.
Futures diffs (pu >= 0) chain by `pu == previous u`; they are given U = previous u + 1 when
they chain, so the spot rule the book applies sees the same continuity.

Recording (`DepthRecorder`, e.g. `abidance stream --record DIR`): the snapshots and diffs the
data engine receives and the trades, written in this format.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import orjson

from abidance._core.wire import InstrumentCodec, MarketParser, trade_event
from abidance.core import topics
from abidance.core.bus import Priority
from abidance.core.events import BookSnapshot

HEADER = ["symbol", "timestamp", "first_update_id", "last_update_id", "side", "update_type", "price", "qty", "pu"]
TRADE_HEADER = ["symbol", "timestamp", "trade_id", "price", "qty", "buyer_maker"]
MS = 1_000_000


def depth_paths(folder, symbol: str) -> tuple[Path, Path]:
    folder = Path(folder)
    return folder / f"{symbol.lower()}-depth-snap.csv", folder / f"{symbol.lower()}-depth-update.csv"


def trades_path(folder, symbol: str) -> Path:
    return Path(folder) / f"{symbol.lower()}-trades.csv"


class DepthFileError(ValueError):
    pass


def _rows(path: Path, symbol: str, header: list[str]) -> list[dict]:
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = set(header) - set(reader.fieldnames or ())
            if missing:
                raise DepthFileError(f"{path}: missing columns {', '.join(sorted(missing))}")
            rows = [r for r in reader if r["symbol"].upper() == symbol]
    except OSError as exc:
        raise DepthFileError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    return rows


def _level(codec: InstrumentCodec, path: Path, n: int, price: str, qty: str) -> tuple[int, int]:
    try:
        return codec.price.to_units(price), codec.qty.to_units(qty)
    except (ValueError, ArithmeticError) as exc:
        raise DepthFileError(f"{path} row {n}: bad level [{price!r}, {qty!r}] for {codec.symbol}: {exc}") from exc


def read_depth(folder_or_snap, instrument, update_path=None) -> list:
    """The recorded depth of one symbol as BookSnapshot and DepthDiffEvent objects, in time order.
    Give a folder (the two files named by `depth_paths`) or the snapshot and update files."""
    symbol = instrument.symbol
    if update_path is None:
        snap_path, update_path = depth_paths(folder_or_snap, symbol)
    else:
        snap_path = Path(folder_or_snap)
    codec = InstrumentCodec(symbol, instrument.price, instrument.qty)
    parser = MarketParser([codec])
    events = []
    snaps: dict[tuple[int, int], dict[str, list]] = defaultdict(lambda: {"b": [], "a": []})
    for n, r in enumerate(_rows(Path(snap_path), symbol, HEADER), start=2):
        side = r["side"]
        if side not in ("b", "a"):
            raise DepthFileError(f"{snap_path} row {n}: side must be b or a, got {side!r}")
        snaps[(int(r["timestamp"]), int(r["last_update_id"]))][side].append(
            _level(codec, Path(snap_path), n, r["price"], r["qty"]))
    for (ts_ms, last_id), sides in snaps.items():
        bids = sorted(sides["b"], key=lambda lv: -lv[0])
        asks = sorted(sides["a"], key=lambda lv: lv[0])
        events.append(BookSnapshot(symbol, bids, asks, last_id, ts_ms * MS))
    diffs: dict[tuple[int, int, int], dict] = {}
    for n, r in enumerate(_rows(Path(update_path), symbol, HEADER), start=2):
        key = (int(r["timestamp"]), int(r["first_update_id"]), int(r["last_update_id"]))
        d = diffs.setdefault(key, {"b": [], "a": [], "pu": int(r["pu"] or -1)})
        if r["side"] not in ("b", "a"):
            raise DepthFileError(f"{update_path} row {n}: side must be b or a, got {r['side']!r}")
        _level(codec, Path(update_path), n, r["price"], r["qty"])          # checked here, parsed as a frame below
        d[r["side"]].append([r["price"], r["qty"]])
    snap_ids = sorted((ts, last_id) for ts, last_id in snaps)
    prev_u = None
    for (ts_ms, first, last), d in sorted(diffs.items(), key=lambda kv: (kv[0][2], kv[0][0])):
        before = [sid for ts, sid in snap_ids if ts <= ts_ms]
        if before and (prev_u is None or before[-1] > prev_u):
            prev_u = None                   # a snapshot since the last diff: this one must reach it
        if d["pu"] >= 0 and prev_u is not None and d["pu"] == prev_u:
            first = prev_u + 1              # futures continuity, stated in the spot stream's terms
        frame = orjson.dumps({"e": "depthUpdate", "E": ts_ms, "s": symbol, "U": first, "u": last,
                              "b": d["b"], "a": d["a"]})
        ev = parser.parse(frame, ts_ms * MS)
        if ev is None:
            raise DepthFileError(f"{update_path}: update {first}..{last} is not a valid depth update: "
                                 f"{parser.last_error}")
        events.append(ev)
        prev_u = last
    events.sort(key=lambda ev: (ev.ts_event, 0 if isinstance(ev, BookSnapshot) else 1))
    return events


def read_trades(path, instrument) -> list:
    """Recorded trades of one symbol (`trades_path` format) as TradeEvents, in trade-id order."""
    symbol = instrument.symbol
    out = []
    for n, r in enumerate(_rows(Path(path), symbol, TRADE_HEADER), start=2):
        try:
            price, qty = instrument.price.to_units(r["price"]), instrument.qty.to_units(r["qty"])
            ts = int(r["timestamp"]) * MS
            out.append(trade_event(symbol, int(r["trade_id"]), price, qty, r["buyer_maker"] in ("1", "True", "true"),
                                   ts, ts, ts))
        except (ValueError, ArithmeticError) as exc:
            raise DepthFileError(f"{path} row {n}: bad trade: {exc}") from exc
    out.sort(key=lambda t: t.trade_id)
    return out


class DepthRecorder:
    """Writes what a feed delivers (BOOK_SNAPSHOTS, DEPTH_DIFFS, TRADES) in the format above, one
    file set per symbol in `folder`. Rows are buffered by the file objects; `close()` flushes."""

    def __init__(self, bus, folder, instruments: dict, trades: bool = True):
        self.bus = bus
        self.folder = Path(folder)
        self.instruments = instruments
        self.trades = trades
        self._files: dict[Path, tuple] = {}
        self._last_u: dict[str, int] = {}
        self.rows = 0
        self._handlers = [(topics.BOOK_SNAPSHOTS, self.handle_snapshot), (topics.DEPTH_DIFFS, self.handle_diff)]
        if trades:
            self._handlers.append((topics.TRADES, self.handle_trade))

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        for topic, handler in self._handlers:
            self.bus.subscribe(topic, handler, Priority.RECORD)

    def close(self) -> None:
        for topic, handler in self._handlers:
            self.bus.unsubscribe(topic, handler)
        for f, _ in self._files.values():
            f.close()
        self._files.clear()

    def _writer(self, path: Path, header: list[str]):
        entry = self._files.get(path)
        if entry is None:
            f = open(path, "w", newline="", encoding="utf-8", buffering=1 << 16)
            w = csv.writer(f)
            w.writerow(header)
            entry = self._files[path] = (f, w)
        return entry[1]

    def handle_snapshot(self, snap) -> None:
        inst = self.instruments.get(snap.symbol)
        if inst is None:
            return
        w = self._writer(depth_paths(self.folder, snap.symbol)[0], HEADER)
        ms = snap.ts_event // MS
        for side, levels in (("b", snap.bids), ("a", snap.asks)):
            for price, qty in levels:
                w.writerow([snap.symbol, ms, snap.last_update_id, snap.last_update_id, side, "snap",
                            inst.price.to_str(int(price)), inst.qty.to_str(int(qty)), -1])
                self.rows += 1
        self._last_u[snap.symbol] = snap.last_update_id

    def handle_diff(self, ev) -> None:
        inst = self.instruments.get(ev.symbol)
        if inst is None:
            return
        w = self._writer(depth_paths(self.folder, ev.symbol)[1], HEADER)
        ms = ev.ts_event // MS
        for side, levels in (("b", ev.bids()), ("a", ev.asks())):
            for price, qty in levels.tolist():
                w.writerow([ev.symbol, ms, ev.first_id, ev.final_id, side, "set", inst.price.to_str(price),
                            inst.qty.to_str(qty), -1])
                self.rows += 1

    def handle_trade(self, t) -> None:
        inst = self.instruments.get(t.symbol)
        if inst is None:
            return
        w = self._writer(trades_path(self.folder, t.symbol), TRADE_HEADER)
        w.writerow([t.symbol, t.ts_trade // MS, t.trade_id, inst.price.to_str(t.price), inst.qty.to_str(t.qty),
                    1 if t.buyer_is_maker else 0])
        self.rows += 1
