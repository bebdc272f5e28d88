"""Market-stream parsing: raw frame bytes -> internal event.

Targets (issue 4): a combined-stream depthUpdate with 20 levels (10 bids + 10 asks)
<= 3 us per message, a trade <= 1 us per message, beside a `json` + dict baseline in
the same run. A bookTicker figure is reported beside them (no target).

Frames: 2000 distinct combined-stream frames per kind ({"stream": ..., "data": ...}),
BTCUSDT-like values written as Binance writes them ("64999.99000000", "0.12345000",
13-digit ms times, consecutive update ids), built with random.Random(7).

How it is measured: one round parses all 2000 frames in a plain Python loop, one
`parser.parse(raw, ts)` call per frame, and the per-message figure is the round's time
/ 2000 (median of the rounds). Call and loop overhead are therefore included, as in
the connector, and no single frame is repeated back to back. The baselines run the
same loop over the same frames in the same process:
  - json.loads + dict + Decimal: what a plain-Python connector does (parse, then build a
    dict event with Decimal prices/quantities and ns times from the same fields);
  - orjson.loads alone: the fastest general JSON parser, before any field is read.

With --benchmark-disable (CI) every function runs once over the frames and the
results are checked against the baseline conversion: a correctness smoke run.
"""

from __future__ import annotations

import json
import random
from decimal import Decimal

import orjson
import pytest

from abidance._core.wire import BookTickerEvent, DepthDiffEvent, InstrumentCodec, MarketParser, TradeEvent

N_FRAMES = 2000
TS = 1_700_000_000_000_000_000
TICK, STEP = Decimal("0.01"), Decimal("0.00001")
BASELINE = "json.loads + dict + Decimal"


def price_text(ticks: int) -> str:
    return f"{ticks // 100}.{ticks % 100:02d}000000"


def qty_text(steps: int) -> str:
    return f"{steps // 100000}.{steps % 100000:05d}000"


def depth_frames(n: int) -> list[bytes]:
    rnd = random.Random(7)
    frames, update_id, t_ms = [], 72_000_000_000, 1_700_000_000_000
    for _ in range(n):
        mid = 6_500_000 + rnd.randint(-500, 500)            # 65000.00 +- 5.00
        bids = [[price_text(mid - 1 - rnd.randint(0, 400)), qty_text(rnd.choice([0, rnd.randint(1, 300000)]))]
                for _ in range(10)]
        asks = [[price_text(mid + rnd.randint(0, 400)), qty_text(rnd.choice([0, rnd.randint(1, 300000)]))]
                for _ in range(10)]
        first = update_id + 1
        update_id += rnd.randint(1, 40)
        t_ms += 100
        data = {"e": "depthUpdate", "E": t_ms, "s": "BTCUSDT", "U": first, "u": update_id, "b": bids, "a": asks}
        frames.append(json.dumps({"stream": "btcusdt@depth@100ms", "data": data}, separators=(",", ":")).encode())
    return frames


def trade_frames(n: int) -> list[bytes]:
    rnd = random.Random(7)
    frames, trade_id, order_id, t_ms = [], 3_200_000_000, 24_000_000_000, 1_700_000_000_000
    for _ in range(n):
        trade_id += 1
        order_id += rnd.randint(1, 30)
        t_ms += rnd.randint(0, 5)
        data = {"e": "trade", "E": t_ms + 1, "s": "BTCUSDT", "t": trade_id,
                "p": price_text(6_500_000 + rnd.randint(-500, 500)), "q": qty_text(rnd.randint(1, 200000)),
                "b": order_id, "a": order_id - rnd.randint(1, 50), "T": t_ms, "m": rnd.random() < 0.5, "M": True}
        frames.append(json.dumps({"stream": "btcusdt@trade", "data": data}, separators=(",", ":")).encode())
    return frames


def book_ticker_frames(n: int) -> list[bytes]:
    rnd = random.Random(7)
    frames, update_id = [], 72_000_000_000
    for _ in range(n):
        update_id += rnd.randint(1, 5)
        bid = 6_500_000 + rnd.randint(-500, 500)
        data = {"u": update_id, "s": "BTCUSDT", "b": price_text(bid), "B": qty_text(rnd.randint(1, 900000)),
                "a": price_text(bid + rnd.randint(1, 3)), "A": qty_text(rnd.randint(1, 900000))}
        frames.append(json.dumps({"stream": "btcusdt@bookTicker", "data": data}, separators=(",", ":")).encode())
    return frames


# ---- the plain-Python baseline: json.loads, then a dict event with Decimal values ----------

def json_depth(raw: bytes) -> dict:
    d = json.loads(raw)["data"]
    return {"symbol": d["s"], "first_id": d["U"], "final_id": d["u"], "ts_event": d["E"] * 1_000_000,
            "bids": [(Decimal(p), Decimal(q)) for p, q in d["b"]],
            "asks": [(Decimal(p), Decimal(q)) for p, q in d["a"]]}


def json_trade(raw: bytes) -> dict:
    d = json.loads(raw)["data"]
    return {"symbol": d["s"], "trade_id": d["t"], "price": Decimal(d["p"]), "qty": Decimal(d["q"]),
            "buyer_is_maker": d["m"], "ts_trade": d["T"] * 1_000_000, "ts_event": d["E"] * 1_000_000}


def json_book_ticker(raw: bytes) -> dict:
    d = json.loads(raw)["data"]
    return {"symbol": d["s"], "update_id": d["u"], "bid_price": Decimal(d["b"]), "bid_qty": Decimal(d["B"]),
            "ask_price": Decimal(d["a"]), "ask_qty": Decimal(d["A"])}


# ---- checks (run in the smoke run too) --------------------------------------------------

def check_depth(ev, ref) -> None:
    assert type(ev) is DepthDiffEvent
    assert (ev.symbol, ev.first_id, ev.final_id, ev.ts_event) == (ref["symbol"], ref["first_id"], ref["final_id"],
                                                                  ref["ts_event"])
    for got, want in ((ev.bids(), ref["bids"]), (ev.asks(), ref["asks"])):
        assert [tuple(x) for x in got.tolist()] == [(int(p / TICK), int(q / STEP)) for p, q in want]


def check_trade(ev, ref) -> None:
    assert type(ev) is TradeEvent
    assert (ev.symbol, ev.trade_id, ev.buyer_is_maker, ev.ts_trade, ev.ts_event) == (
        ref["symbol"], ref["trade_id"], ref["buyer_is_maker"], ref["ts_trade"], ref["ts_event"])
    assert (ev.price, ev.qty) == (ref["price"] / TICK, ref["qty"] / STEP)


def check_book_ticker(ev, ref) -> None:
    assert type(ev) is BookTickerEvent
    assert (ev.symbol, ev.update_id, ev.ts_event) == (ref["symbol"], ref["update_id"], TS)
    assert (ev.bid_price, ev.bid_qty, ev.ask_price, ev.ask_qty) == (
        ref["bid_price"] / TICK, ref["bid_qty"] / STEP, ref["ask_price"] / TICK, ref["ask_qty"] / STEP)


KINDS = {
    "depthUpdate": (depth_frames, json_depth, check_depth, 3.0, "combined, 10 bids + 10 asks"),
    "trade": (trade_frames, json_trade, check_trade, 1.0, "combined"),
    "bookTicker": (book_ticker_frames, json_book_ticker, check_book_ticker, None, "combined"),
}


def new_parser() -> MarketParser:
    return MarketParser([InstrumentCodec("BTCUSDT", "0.01", "0.00001"), InstrumentCodec("ETHUSDT", "0.01", "0.0001")])


@pytest.mark.parametrize("kind", list(KINDS))
def test_wire_parse(benchmark, measure, report, timer, kind):
    make, baseline_fn, check, target, shape = KINDS[kind]
    frames = make(N_FRAMES)
    parser = new_parser()

    # Correctness first, in both modes: every frame parses to the baseline's values.
    for raw in frames:
        check(parser.parse(raw, TS), baseline_fn(raw))
    assert (parser.parsed, parser.dropped, parser.slow_path) == (N_FRAMES, 0, 0), parser.last_error

    def wire_loop():
        parse = parser.parse
        for raw in frames:
            parse(raw, TS)

    def baseline_loop():
        for raw in frames:
            baseline_fn(raw)

    def orjson_loop():
        loads = orjson.loads
        for raw in frames:
            loads(raw)

    repeat = 1 if benchmark.disabled else 7
    us_wire = measure(benchmark, wire_loop, ops=N_FRAMES, rounds=40) / 1000
    us_base = timer(baseline_loop, repeat=repeat) / N_FRAMES / 1000
    us_orjson = timer(orjson_loop, repeat=repeat) / N_FRAMES / 1000
    assert parser.dropped == 0

    report(f"wire.parse {kind} ({shape})", us_wire, "us/msg", target=target, baseline=(BASELINE, us_base),
           benchmark=benchmark)
    report(f"  reference: orjson.loads alone ({kind})", us_orjson, "us/msg", baseline=(BASELINE, us_base))


def test_wire_parse_slow_path_reference(benchmark, measure, report, timer):
    """For scale: a trade whose text is escaped goes through orjson and a second scan."""
    frames = [raw.replace(b'"e":"trade"', b'"e":"tr\\u0061de"') for raw in trade_frames(N_FRAMES)]
    parser = new_parser()
    for raw in frames:
        check_trade(parser.parse(raw, TS), json_trade(raw))
    assert parser.slow_path == N_FRAMES

    def wire_loop():
        parse = parser.parse
        for raw in frames:
            parse(raw, TS)

    us_slow = measure(benchmark, wire_loop, ops=N_FRAMES, rounds=20) / 1000
    us_base = timer(lambda: [json_trade(raw) for raw in frames], repeat=1 if benchmark.disabled else 5)
    report("  reference: wire.parse trade via the slow path (escaped text)", us_slow, "us/msg",
           baseline=(BASELINE, us_base / N_FRAMES / 1000), benchmark=benchmark)
