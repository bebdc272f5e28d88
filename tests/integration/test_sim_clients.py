"""Third-party clients drive the simulator exactly as they would drive Binance."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from urllib.request import urlopen

import orjson
import pytest

from abidance._core.book import BookStatus, OrderBook
from abidance._core.fixed import FixedPoint
from tests.integration.conftest import API_KEY, API_SECRET

ccxt = pytest.importorskip("ccxt")
websockets = pytest.importorskip("websockets")


def ccxt_client(sim):
    client = ccxt.binance({
        "apiKey": API_KEY, "secret": API_SECRET, "enableRateLimit": False,
        "options": {"fetchMarkets": {"types": ["spot"]}, "fetchMargins": False, "fetchCurrencies": False,
                    "defaultType": "spot", "adjustForTimeDifference": True},
    })
    for key in list(client.urls["api"]):
        client.urls["api"][key] = sim.rest_url + "/api/v3"
    return client


def test_ccxt_loads_markets_reads_data_and_trades(sim):
    ex = ccxt_client(sim)
    markets = ex.load_markets()
    assert {"BTC/USDT", "ETH/USDT", "BNB/USDT"} <= set(markets)
    assert markets["BTC/USDT"]["precision"]["price"] == 0.01

    book = ex.fetch_order_book("BTC/USDT", 5)
    assert len(book["bids"]) == 5 and book["bids"][0][0] < book["asks"][0][0]
    bars = ex.fetch_ohlcv("BTC/USDT", "1m", limit=10)
    assert len(bars) == 10 and all(b[2] >= b[3] for b in bars)
    usdt_before = ex.fetch_balance()["USDT"]["free"]

    bid = ex.fetch_ticker("BTC/USDT")["bid"]
    resting = ex.create_order("BTC/USDT", "limit", "buy", 0.001, round(bid * 0.98, 2))
    assert resting["status"] == "open"
    assert ex.fetch_order(resting["id"], "BTC/USDT")["status"] == "open"
    assert [o["id"] for o in ex.fetch_open_orders("BTC/USDT")] == [resting["id"]]
    assert ex.fetch_balance()["USDT"]["used"] > 0
    assert ex.cancel_order(resting["id"], "BTC/USDT")["status"] == "canceled"
    assert ex.fetch_balance()["USDT"]["used"] == 0

    bought = ex.create_order("BTC/USDT", "market", "buy", 0.001)
    assert bought["status"] == "closed" and bought["filled"] == 0.001
    sold = ex.create_order("BTC/USDT", "market", "sell", 0.0005)
    assert sold["status"] == "closed"
    trades = ex.fetch_my_trades("BTC/USDT")
    assert len(trades) >= 2 and {t["side"] for t in trades} == {"buy", "sell"}

    # The account's books are exact: recompute the balances from the fills.
    acc = sim.run(lambda: sim.server.venue.exchange.account_info(sim.server.venue.account))
    balances = {b["asset"]: Decimal(b["free"]) + Decimal(b["locked"]) for b in acc["balances"]}
    raw = sim.run(lambda: sim.server.venue.exchange.my_trades(sim.server.venue.account, "BTCUSDT"))
    btc, usdt = Decimal("0.1"), Decimal(str(usdt_before))
    for t in raw:
        qty, quote, fee = Decimal(t["qty"]), Decimal(t["quoteQty"]), Decimal(t["commission"])
        if t["isBuyer"]:
            btc += qty - (fee if t["commissionAsset"] == "BTC" else 0)
            usdt -= quote + (fee if t["commissionAsset"] == "USDT" else 0)
        else:
            btc -= qty + (fee if t["commissionAsset"] == "BTC" else 0)
            usdt += quote - (fee if t["commissionAsset"] == "USDT" else 0)
    assert balances["BTC"] == btc and balances["USDT"] == usdt


def rest_json(sim, path: str):
    with urlopen(sim.rest_url + path, timeout=5) as resp:
        return orjson.loads(resp.read())


def test_websockets_client_rebuilds_the_book_from_snapshot_and_diffs(sim):
    """Binance's procedure with an independent WebSocket client: never a gap, and the
    rebuilt book equals the venue's own book once the market is frozen."""
    px, qty = FixedPoint("0.01"), FixedPoint("0.00001")

    def levels(rows):
        return [[px.to_units(p), qty.to_units(q)] for p, q in rows]

    async def run():
        async with websockets.connect(sim.ws_url + "/ws/btcusdt@depth@100ms") as ws:
            buffered = [orjson.loads(await asyncio.wait_for(ws.recv(), 5))]
            snap = rest_json(sim, "/api/v3/depth?symbol=BTCUSDT&limit=5000")
            while buffered[-1]["u"] <= snap["lastUpdateId"]:
                buffered.append(orjson.loads(await asyncio.wait_for(ws.recv(), 5)))
            book = OrderBook("BTCUSDT")
            assert book.apply_snapshot(levels(snap["bids"]), levels(snap["asks"]), snap["lastUpdateId"]) == 0
            applied = 0
            events = list(buffered)
            loop = asyncio.get_running_loop()
            end = loop.time() + 2.0
            while loop.time() < end or events:
                if not events:
                    events.append(orjson.loads(await asyncio.wait_for(ws.recv(), 5)))
                ev = events.pop(0)
                status = book.apply_diff_levels(ev["U"], ev["u"], levels(ev["b"]), levels(ev["a"]))
                assert status in (BookStatus.APPLIED, BookStatus.STALE), book.resync_message
                applied += status == BookStatus.APPLIED
            sim.run(lambda: setattr(sim.server.venue, "paused", True))
            try:
                await asyncio.sleep(0.4)      # let the last batch out
                final = rest_json(sim, "/api/v3/depth?symbol=BTCUSDT&limit=5000")
                while book.last_update_id < final["lastUpdateId"]:
                    ev = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
                    assert book.apply_diff_levels(ev["U"], ev["u"], levels(ev["b"]), levels(ev["a"])) in (0, 1)
            finally:
                sim.run(lambda: setattr(sim.server.venue, "paused", False))
            assert applied >= 5
            assert book.last_update_id == final["lastUpdateId"]
            assert book.top_bids(5000).tolist() == levels(final["bids"])
            assert book.top_asks(5000).tolist() == levels(final["asks"])

    asyncio.run(run())


def test_combined_stream_subscribe_list_and_unsubscribe(sim):
    async def run():
        async with websockets.connect(sim.ws_url + "/stream?streams=btcusdt@bookTicker") as ws:
            msg = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
            assert msg["stream"] == "btcusdt@bookTicker" and {"u", "s", "b", "B", "a", "A"} <= set(msg["data"])
            await ws.send(orjson.dumps({"method": "SUBSCRIBE", "params": ["ethusdt@trade", "btcusdt@depth5"], "id": 7}))
            await ws.send(orjson.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 8}))
            replies, streams = {}, set()
            while len(replies) < 2 or not {"ethusdt@trade", "btcusdt@depth5"} <= streams:
                msg = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
                if "id" in msg:
                    replies[msg["id"]] = msg
                else:
                    streams.add(msg["stream"])
            assert replies[7] == {"result": None, "id": 7}
            assert replies[8]["result"] == ["btcusdt@bookTicker", "btcusdt@depth5", "ethusdt@trade"]
            await ws.send(orjson.dumps({"method": "SUBSCRIBE", "params": ["nosuch@trade"], "id": 9}))
            while True:
                msg = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
                if msg.get("id") == 9:
                    assert msg["error"]["code"] == 2 and "nosuch@trade" in msg["error"]["msg"]
                    break
            await ws.send(b"{not json")
            while True:
                msg = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
                if "error" in msg:
                    assert msg["error"]["code"] == 3
                    break

    asyncio.run(run())


def test_ccxt_listen_key_call_fails_with_410_as_on_binance_today(sim):
    """ccxt still offers the retired listenKey call; Binance (and the simulator) answer 410 Gone."""
    ex = ccxt_client(sim)
    with pytest.raises(ccxt.BaseError) as info:
        ex.publicPostUserDataStream()
    assert "410" in str(info.value)


def test_websockets_client_gets_user_data_over_the_ws_api_when_ccxt_trades(sim):
    """User data as Binance sends it today: a WebSocket API subscription, events in an envelope.
    The client (websockets) and the signature (stdlib hmac over the sorted params) are not ours."""
    import hashlib
    import hmac
    import time

    ex = ccxt_client(sim)

    async def run():
        async with websockets.connect(sim.ws_url + "/ws-api/v3") as ws:
            params = {"apiKey": API_KEY, "timestamp": int(time.time() * 1000)}
            payload = "&".join(f"{k}={params[k]}" for k in sorted(params))
            params["signature"] = hmac.new(API_SECRET.encode(), payload.encode(), hashlib.sha256).hexdigest()
            await ws.send(orjson.dumps({"id": "sub-1", "method": "userDataStream.subscribe.signature",
                                        "params": params}))
            answer = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
            assert answer["id"] == "sub-1" and answer["status"] == 200
            sid = answer["result"]["subscriptionId"]
            assert any(r["rateLimitType"] == "REQUEST_WEIGHT" for r in answer["rateLimits"])
            await asyncio.get_running_loop().run_in_executor(
                None, lambda: ex.create_order("BTC/USDT", "market", "buy", 0.0002))
            kinds = {}
            while not {"executionReport", "outboundAccountPosition"} <= set(kinds):
                msg = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
                assert set(msg) == {"subscriptionId", "event"} and msg["subscriptionId"] == sid
                kinds.setdefault(msg["event"]["e"], msg["event"])
            report = kinds["executionReport"]
            assert report["s"] == "BTCUSDT" and report["S"] == "BUY" and report["o"] == "MARKET"
            assert {b["a"] for b in kinds["outboundAccountPosition"]["B"]} >= {"BTC", "USDT"}
            await ws.send(orjson.dumps({"id": 2, "method": "userDataStream.unsubscribe",
                                        "params": {"subscriptionId": sid}}))
            terminated = answered = False
            while not (terminated and answered):
                msg = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
                terminated |= msg.get("event", {}).get("e") == "eventStreamTerminated"
                answered |= msg.get("id") == 2 and msg["status"] == 200
            await ws.send(orjson.dumps({"id": 3, "method": "session.subscriptions"}))
            assert orjson.loads(await asyncio.wait_for(ws.recv(), 5))["result"] == []

    asyncio.run(run())


def test_unknown_path_and_bad_streams_are_refused(sim):
    async def run():
        with pytest.raises(Exception):
            async with websockets.connect(sim.ws_url + "/ws/nosuch@trade"):
                pass
        with pytest.raises(Exception):
            async with websockets.connect(sim.ws_url + "/elsewhere"):
                pass

    asyncio.run(run())


def test_blast_frames_are_valid_websocket_messages(sim):
    """The stress path writes pre-framed messages: a strict client must parse every one."""
    from urllib.request import Request

    async def run():
        async with websockets.connect(sim.ws_url + "/ws/ethusdt@depth20") as ws:
            loop = asyncio.get_running_loop()
            await asyncio.sleep(0.1)
            loop.run_in_executor(None, lambda: urlopen(Request(
                sim.rest_url + "/admin/blast?stream=ethusdt@depth20&count=1000", method="POST"), timeout=10))
            n = 0
            while True:
                msg = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
                if msg.get("blast") == "done":
                    break
                if msg.get("e") == "depthUpdate":
                    n += 1
            assert n == 1000

    asyncio.run(run())
