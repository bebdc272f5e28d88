"""BinanceRest against the real simulator: signing, time sync, orders, limits and faults.

Tests that switch faults on run their own simulator so other modules never see them.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from decimal import Decimal
from urllib.parse import unquote
from urllib.error import HTTPError
from urllib.request import Request, urlopen

import orjson
import pytest
from aiohttp import web

from abidance.core import topics
from abidance.core.bus import MessageBus
from abidance.exchange.binance.config import BinanceConfig
from abidance.exchange.binance.credentials import Credentials
from abidance.exchange.binance.errors import (BinanceApiError, IpBanned, OrderStatusUnknown, RateLimited,
                                              RequestTimeout, TransportError)
from abidance.exchange.binance.ids import CLIENT_ORDER_ID_RE
from abidance.exchange.binance.rest import BinanceRest
from abidance.exchange.sim.config import SimConfig
from abidance.exchange.sim.errors import BinanceError
from tests.integration.conftest import API_KEY, API_SECRET, RunningSim

CREDS = Credentials(API_KEY, API_SECRET)
LOST = "Timeout waiting for response from backend server. Send status unknown; execution status unknown."


def admin(sim, body: dict) -> dict:
    req = Request(sim.rest_url + "/admin/faults", method="POST", data=orjson.dumps(body))
    with urlopen(req, timeout=5) as resp:
        return orjson.loads(resp.read())


def with_rest(sim, fn, *, creds=CREDS, bus=None, **cfg):
    """Run `await fn(rest)` on a fresh event loop with a client for `sim`."""
    async def main():
        config = BinanceConfig(**cfg).with_urls(sim.rest_url, sim.ws_url)
        async with BinanceRest(config, creds, bus) as rest:
            rest.unknown_query_delay_s = 0.01
            return await fn(rest)
    return asyncio.run(main())


def count_requests(sim) -> list[int]:
    """Counts every API request that reaches the simulator (admin calls excluded)."""
    faults = sim.server.venue.faults
    real, seen = faults.before_rest, [0]

    async def counting(path):
        seen[0] += 1
        await real(path)

    faults.before_rest = counting
    return seen


def alerts_of(bus: MessageBus) -> list:
    alerts: list = []
    bus.subscribe(topics.ALERTS, alerts.append)
    return alerts


async def passive_bid(rest: BinanceRest, symbol: str = "BTCUSDT", pct: int = 95) -> str:
    """A BUY price well below the market (on the tick grid): the order rests on the book."""
    inst = rest.instruments.get(symbol) or (await rest.load_instruments([symbol]))[symbol]
    bid = (await rest.book_ticker(symbol))["bidPrice"]
    return inst.price_str(inst.to_price_units(Decimal(bid)) * pct // 100)


@pytest.fixture
def lost_answers(sim):
    """make(n, delay_s=None): the next n new orders are placed but their answer is lost
    (a 503 -1007, or with delay_s an answer slower than the client's timeout)."""
    exchange = sim.server.venue.exchange
    real = exchange.new_order

    def make(n: int, delay_s: float | None = None):
        left = [n]

        def new_order(*args, **kwargs):
            result = real(*args, **kwargs)
            if left[0] <= 0:
                return result
            left[0] -= 1
            if delay_s is None:
                raise BinanceError(-1007, LOST, 503)

            async def late():
                await asyncio.sleep(delay_s)
                return result
            return late()

        sim.run(lambda: setattr(exchange, "new_order", new_order))

    yield make
    sim.run(lambda: exchange.__dict__.pop("new_order", None))


# ---- plain operation ----------------------------------------------------------------------

def test_time_sync_and_market_data(sim):
    async def go(rest):
        offset = await rest.sync_time()
        assert abs(offset) < 1000 and rest.counters.time_syncs == 1
        assert await rest.ping() == {}
        assert abs(await rest.server_time() - time.time() * 1000) < 2000
        depth = await rest.depth("BTCUSDT", 5)
        assert depth["lastUpdateId"] > 0 and len(depth["bids"]) <= 5
        assert len(await rest.klines("BTCUSDT", "1m", limit=3)) == 3
        assert isinstance(await rest.recent_trades("BTCUSDT", 5), list)
        ticker = await rest.book_ticker("BTCUSDT")
        assert Decimal(ticker["bidPrice"]) < Decimal(ticker["askPrice"])
        assert {t["symbol"] for t in await rest.book_ticker()} == {"BTCUSDT", "ETHUSDT", "BNBUSDT"}
        # weights as Binance documents them: 1 + 1 + 1 + 5 + 2 + 25 + 2 + 4
        assert rest.limiter.weight_used == 41 and rest.limiter.used_weight >= 41

    with_rest(sim, go)


def test_exchange_info_to_instruments_and_rate_limits(sim):
    async def go(rest):
        instruments = await rest.load_instruments()
        assert set(instruments) == {"BTCUSDT", "ETHUSDT", "BNBUSDT"} and rest.instrument_problems == []
        btc = instruments["BTCUSDT"]
        assert (btc.tick_size, btc.step_size, btc.quote_asset) == (Decimal("0.01"), Decimal("0.00001"), "USDT")
        assert btc.filters.units["tick"] == 1 and btc.price_str(6_500_012) == "65000.12"
        limits = rest.limiter.limits
        assert (limits.weight_per_minute, limits.orders_per_10s, limits.orders_per_day) == (6000, 100, 200_000)
        assert set(await rest.load_instruments(["ETHUSDT"])) == {"ETHUSDT"}
        assert set(await rest.load_instruments(["ETHUSDT", "BNBUSDT"])) == {"ETHUSDT", "BNBUSDT"}

    with_rest(sim, go)


def test_limit_order_query_open_cancel_and_cancel_all(sim):
    async def go(rest):
        price = await passive_bid(rest)
        placed = await rest.new_order("BTCUSDT", "BUY", "LIMIT", quantity=Decimal("0.001"), price=price,
                                      time_in_force="GTC")
        cid = placed["clientOrderId"]
        assert placed["status"] == "NEW" and CLIENT_ORDER_ID_RE.match(cid) and rest.ids.is_ours(cid)
        assert Decimal(placed["price"]) == Decimal(price)
        by_cid = await rest.query_order("BTCUSDT", client_order_id=cid)
        by_id = await rest.query_order("BTCUSDT", order_id=placed["orderId"])
        assert by_cid == by_id and by_cid["status"] == "NEW"
        assert [o["clientOrderId"] for o in await rest.open_orders("BTCUSDT")] == [cid]
        assert cid in {o["clientOrderId"] for o in await rest.open_orders()}
        canceled = await rest.cancel_order("BTCUSDT", client_order_id=cid)
        assert canceled["status"] == "CANCELED" and canceled["origClientOrderId"] == cid
        assert await rest.open_orders("BTCUSDT") == []
        with pytest.raises(BinanceApiError) as info:
            await rest.cancel_order("BTCUSDT", order_id=placed["orderId"])
        assert info.value.code == -2011
        mine = [await rest.new_order("BTCUSDT", "BUY", "LIMIT", quantity="0.001", price=price, time_in_force="GTC",
                                     client_order_id=f"mine-{i}") for i in range(3)]
        assert [o["clientOrderId"] for o in mine] == ["mine-0", "mine-1", "mine-2"]
        gone = await rest.cancel_open_orders("BTCUSDT")
        assert sorted(o["origClientOrderId"] for o in gone) == ["mine-0", "mine-1", "mine-2"]
        assert all(o["status"] == "CANCELED" for o in gone) and await rest.open_orders("BTCUSDT") == []
        assert {cid, "mine-0"} <= {o["clientOrderId"] for o in await rest.all_orders("BTCUSDT")}

    with_rest(sim, go)


def test_market_order_full_fills_and_balances(sim):
    async def go(rest):
        before = {b.asset: b for b in await rest.balances()}
        filled = await rest.new_order("BTCUSDT", "BUY", "MARKET", quantity=Decimal("0.002"))
        assert filled["status"] == "FILLED" and filled["fills"]
        assert sum(Decimal(f["qty"]) for f in filled["fills"]) == Decimal(filled["executedQty"]) == Decimal("0.002")
        fee = sum(Decimal(f["commission"]) for f in filled["fills"] if f["commissionAsset"] == "BTC")
        after = {b.asset: b for b in await rest.balances()}
        assert after["BTC"].free - before["BTC"].free == Decimal("0.002") - fee
        assert before["USDT"].total - after["USDT"].total == Decimal(filled["cummulativeQuoteQty"])
        trades = await rest.my_trades("BTCUSDT", order_id=filled["orderId"])
        assert [t["id"] for t in trades] == [f["tradeId"] for f in filled["fills"]]
        account = await rest.account()
        assert account["canTrade"] is True and account["accountType"] == "SPOT"

    with_rest(sim, go)


def test_float_money_is_refused_before_anything_is_sent(sim):
    async def go(rest):
        with pytest.raises(TypeError, match="float"):
            await rest.new_order("BTCUSDT", "BUY", "MARKET", quantity=0.001)
        with pytest.raises(TypeError, match="float"):
            await rest.new_order("BTCUSDT", "BUY", "LIMIT", quantity="0.001", price=60000.0, time_in_force="GTC")
        with pytest.raises(ValueError, match="client_order_id"):
            await rest.new_order("BTCUSDT", "BUY", "MARKET", quantity="0.001", client_order_id="no spaces allowed")
        assert rest.limiter.requests == 0

    with_rest(sim, go)


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_retired_listen_key_endpoints_answer_410_gone_as_binance_does(sim, method):
    """Binance switched the listenKey flow off on 2026-02-20: its nginx answers 410 with an HTML page."""
    with pytest.raises(HTTPError) as info:
        urlopen(Request(sim.rest_url + "/api/v3/userDataStream", method=method,
                        headers={"X-MBX-APIKEY": API_KEY}), timeout=5)
    assert info.value.code == 410
    assert b"410 Gone" in info.value.read() and "html" in info.value.headers["Content-Type"]


def test_wrong_secret_gives_1022_without_the_secret_in_the_error(sim):
    wrong = "Wr0ngSecretValue-do-not-print-0123456789"

    async def go(rest):
        with pytest.raises(BinanceApiError) as info:
            await rest.account()
        return info.value

    exc = with_rest(sim, go, creds=Credentials(API_KEY, wrong))
    assert exc.code == -1022 and exc.http_status == 400 and exc.path == "/api/v3/account"
    for text in (str(exc), repr(exc), exc.msg):
        assert wrong not in text and API_KEY not in text and "signature=" not in text and "timestamp=" not in text


# ---- clock skew, 429, 418 ----------------------------------------------------------------

def test_clock_skew_gets_1021_then_resyncs_and_retries_once():
    sim = RunningSim(SimConfig(seed=21))
    try:
        async def go(rest):
            await rest.sync_time()
            assert abs(rest.time_offset_ms) < 1000
            admin(sim, {"clock_skew_ms": 8000})
            account = await rest.account()          # -1021 inside, re-sync, one retry
            assert account["canTrade"] is True
            assert rest.counters.timestamp_retries == 1 and rest.counters.time_syncs == 2
            assert 7000 < rest.time_offset_ms < 9000
            price = await passive_bid(rest)
            placed = await rest.new_order("BTCUSDT", "BUY", "LIMIT", quantity="0.001", price=price,
                                          time_in_force="GTC")
            assert placed["status"] == "NEW" and rest.counters.timestamp_retries == 1

        with_rest(sim, go)
    finally:
        sim.close()


def test_429_order_not_retried_then_every_request_waits_for_retry_after():
    sim = RunningSim(SimConfig(seed=41))
    bus = MessageBus()
    alerts = alerts_of(bus)
    try:
        async def go(rest):
            price = await passive_bid(rest)
            await rest.sync_time()
            seen = count_requests(sim)
            admin(sim, {"rest_429_rate": 1.0})
            with pytest.raises(RateLimited) as info:
                await rest.new_order("BTCUSDT", "BUY", "LIMIT", quantity="0.001", price=price, time_in_force="GTC")
            assert info.value.retry_after_s == 1 and info.value.http_status == 429
            assert seen[0] == 1                     # the order was not retried
            admin(sim, {"rest_429_rate": 0.0})
            t0 = time.monotonic()
            assert await rest.ping() == {}          # held at the gate until Retry-After passed
            assert time.monotonic() - t0 > 0.5 and rest.limiter.throttled_waits == 1
            assert seen[0] == 2 and await rest.all_orders("BTCUSDT") == []
            assert rest.limiter.rate_limited_429 == 1

        with_rest(sim, go, bus=bus)
        assert [(a.level, a.code) for a in alerts] == [("warning", "rate_limited")]
    finally:
        sim.close()


def test_418_fails_fast_sends_nothing_during_the_ban_and_alerts_once():
    sim = RunningSim(SimConfig(seed=42))
    bus = MessageBus()
    alerts = alerts_of(bus)
    try:
        async def go(rest):
            await rest.sync_time()
            seen = count_requests(sim)
            admin(sim, {"rest_418_rate": 1.0})
            with pytest.raises(IpBanned) as info:
                await rest.ping()
            assert info.value.until_ms - (time.time() * 1000 + rest.time_offset_ms) > 100_000   # 120 s ban
            admin(sim, {"rest_418_rate": 0.0})
            t0 = time.monotonic()
            for call in (rest.ping(), rest.account(), rest.open_orders("BTCUSDT"),
                         rest.new_order("BTCUSDT", "BUY", "MARKET", quantity="0.001"), rest.exchange_info()):
                with pytest.raises(IpBanned):
                    await call
            assert time.monotonic() - t0 < 0.5      # no waiting: refused at once
            assert seen[0] == 1                     # only the request that was answered 418
            assert rest.limiter.banned_418 == 1

        with_rest(sim, go, bus=bus)
        assert [(a.level, a.code) for a in alerts] == [("critical", "ip_banned")]
    finally:
        sim.close()


# ---- order idempotency -------------------------------------------------------------------

def test_5xx_storm_while_placing_orders_loses_none_and_duplicates_none(caplog):
    n = 12
    sim = RunningSim(SimConfig(seed=31))
    try:
        async def go(rest):
            price = await passive_bid(rest, pct=90)
            await rest.sync_time()
            admin(sim, {"seed": 7, "rest_5xx_rate": 0.5})
            placed = [await rest.new_order("BTCUSDT", "BUY", "LIMIT", quantity="0.001", price=price,
                                           time_in_force="GTC") for _ in range(n)]
            admin(sim, {"rest_5xx_rate": 0.0})
            cids = {o["clientOrderId"] for o in placed}
            assert len(cids) == n
            assert {o["clientOrderId"] for o in await rest.all_orders("BTCUSDT")} == cids
            assert {o["clientOrderId"] for o in await rest.open_orders("BTCUSDT")} == cids
            return rest.counters

        with caplog.at_level(logging.INFO, logger="abidance.binance"):
            counters = with_rest(sim, go, order_retry_attempts=10)
        on_sim = sim.run(lambda: [o.client_order_id for o in sim.server.venue.account.open_orders_of("BTCUSDT")])
        assert len(on_sim) == n == len(set(on_sim))
        assert counters.order_status_unknown > 0 and counters.order_resubmits > 0
        assert counters.order_queries >= counters.order_status_unknown
        assert "looking it up by client order id" in caplog.text and "resubmitting with the same" in caplog.text
    finally:
        sim.close()


def test_lost_answer_after_execution_is_found_by_query_not_resubmitted(sim, lost_answers):
    async def go(rest):
        lost_answers(1)
        before = len(await rest.all_orders("BTCUSDT", limit=1000))
        result = await rest.new_order("BTCUSDT", "BUY", "MARKET", quantity="0.001", client_order_id="lost-1")
        assert result["clientOrderId"] == "lost-1" and result["status"] == "FILLED"
        assert (rest.counters.order_status_unknown, rest.counters.orders_found, rest.counters.order_resubmits) \
            == (1, 1, 0)
        orders = await rest.all_orders("BTCUSDT", limit=1000)
        assert len(orders) == before + 1 and [o["clientOrderId"] for o in orders].count("lost-1") == 1

    with_rest(sim, go)


def test_timeout_after_execution_is_found_by_query(sim, lost_answers):
    async def go(rest):
        await rest.sync_time()
        price = await passive_bid(rest)
        lost_answers(1, delay_s=1.0)
        result = await rest.new_order("BTCUSDT", "BUY", "LIMIT", quantity="0.001", price=price, time_in_force="GTC")
        assert result["status"] == "NEW" and rest.counters.orders_found == 1 and rest.counters.order_resubmits == 0
        cid = result["clientOrderId"]
        assert [o["clientOrderId"] for o in await rest.open_orders("BTCUSDT")].count(cid) == 1
        await rest.cancel_order("BTCUSDT", client_order_id=cid)

    with_rest(sim, go, request_timeout_s=0.4)


# ---- what a misbehaving server does --------------------------------------------------------

async def fake_binance(routes) -> tuple[web.AppRunner, str]:
    """A stand-in server that answers the way a proxy or a broken backend might."""
    async def server_time(request):
        return web.json_response({"serverTime": int(time.time() * 1000)})

    app = web.Application()
    app.router.add_get("/api/v3/time", server_time)
    for method, path, handler in routes:
        app.router.add_route(method, path, handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"


def test_html_errors_dropped_connections_and_order_retries_exhausted():
    calls: list[tuple[str, str]] = []

    async def html(request):
        calls.append((request.method, request.query.get("newClientOrderId") or request.query.get("origClientOrderId")))
        return web.Response(status=502, content_type="text/html",
                            text="<html><body><h1>502 Bad Gateway</h1><p>cloudfront</p></body></html>")

    async def missing(request):
        calls.append((request.method, request.query.get("origClientOrderId")))
        return web.json_response({"code": -2013, "msg": "Order does not exist."}, status=400)

    async def drop(request):
        request.transport.close()
        return web.Response()

    async def not_json(request):
        return web.Response(status=200, text="hello")

    async def go():
        runner, url = await fake_binance([("POST", "/api/v3/order", html), ("GET", "/api/v3/order", missing),
                                          ("DELETE", "/api/v3/order", html),
                                          ("GET", "/api/v3/ping", not_json), ("GET", "/api/v3/depth", drop),
                                          ("GET", "/api/v3/klines", html)])
        try:
            config = BinanceConfig(order_retry_attempts=2, rest_url=url, ws_url="ws://127.0.0.1:1")
            async with BinanceRest(config, CREDS) as rest:
                rest.unknown_query_delay_s = 0.0
                with pytest.raises(BinanceApiError, match="502 Bad Gateway") as info:
                    await rest.klines("BTCUSDT", "1m")
                assert info.value.http_status == 502 and info.value.status_unknown
                assert "<html>" not in str(info.value)
                with pytest.raises(BinanceApiError, match="not JSON"):
                    await rest.ping()
                with pytest.raises(TransportError) as dropped:
                    await rest.depth("BTCUSDT")
                assert dropped.value.status_unknown
                with pytest.raises(OrderStatusUnknown) as unknown:
                    await rest.new_order("BTCUSDT", "BUY", "MARKET", quantity="0.001", client_order_id="try-1")
                assert unknown.value.client_order_id == "try-1"
                assert API_SECRET not in str(unknown.value) and API_KEY not in str(unknown.value)
                # the first send, then two resubmits, each after a lookup; always the same client id
                assert calls[1:] == [("POST", "try-1"), ("GET", "try-1")] * 3
                assert (rest.counters.order_resubmits, rest.counters.order_queries) == (2, 3)
                with pytest.raises(OrderStatusUnknown) as cancel:     # a cancel is not retried: query it
                    await rest.cancel_order("BTCUSDT", client_order_id="try-1")
                assert cancel.value.client_order_id == "try-1" and calls[-1] == ("DELETE", "try-1")
        finally:
            await runner.cleanup()

    asyncio.run(go())


def test_timeout_and_refused_connection_are_typed():
    async def slow(request):
        await asyncio.sleep(0.6)
        return web.json_response({})

    async def go():
        runner, url = await fake_binance([("GET", "/api/v3/ping", slow)])
        try:
            async with BinanceRest(BinanceConfig(request_timeout_s=0.2, rest_url=url, ws_url="ws://x:1")) as rest:
                with pytest.raises(RequestTimeout) as info:
                    await rest.ping()
                assert info.value.status_unknown
        finally:
            await runner.cleanup()
        async with BinanceRest(BinanceConfig(rest_url=url, ws_url="ws://x:1")) as rest:
            with pytest.raises(TransportError) as refused:
                await rest.ping()          # the server is gone: nothing was sent
            assert not refused.value.status_unknown

    asyncio.run(go())


def test_ed25519_signature_survives_url_encoding(tmp_path):
    pytest.importorskip("cryptography", reason="Ed25519 keys need the optional 'cryptography' package")
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    pem = tmp_path / "ed25519.pem"
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    pem.chmod(0o600)
    creds = Credentials.from_env({"ABIDANCE_BINANCE_API_KEY": API_KEY,
                                  "ABIDANCE_BINANCE_PRIVATE_KEY_FILE": str(pem)})
    verified = []

    async def account(request):
        # What Binance does: the payload is the query string without the signature parameter.
        payload, _, sig = request.query_string.rpartition("&signature=")
        key.public_key().verify(base64.b64decode(unquote(sig)), payload.encode())   # raises when wrong
        verified.append(request.headers["X-MBX-APIKEY"] == API_KEY)
        return web.json_response({"balances": []})

    async def go():
        runner, url = await fake_binance([("GET", "/api/v3/account", account)])
        try:
            async with BinanceRest(BinanceConfig(rest_url=url, ws_url="ws://x:1"), creds) as rest:
                for _ in range(5):      # several timestamps: several signatures with '+', '/' or '='
                    assert await rest.balances() == ()
        finally:
            await runner.cleanup()

    asyncio.run(go())
    assert verified == [True] * 5


# ---- secrets never reach the logs -----------------------------------------------------------

def test_logs_never_contain_the_api_key_or_secret(sim, caplog, lost_answers):
    async def go(rest):
        await rest.sync_time()
        await rest.account()
        price = await passive_bid(rest)
        lost_answers(1)
        placed = await rest.new_order("BTCUSDT", "BUY", "LIMIT", quantity="0.001", price=price, time_in_force="GTC")
        await rest.cancel_order("BTCUSDT", order_id=placed["orderId"])
        with pytest.raises(BinanceApiError):
            await rest.query_order("BTCUSDT", client_order_id="no-such-order")

    async def wrong_secret(rest):
        with pytest.raises(BinanceApiError):
            await rest.account()

    caplog.set_level(logging.DEBUG)
    with_rest(sim, go)
    with_rest(sim, wrong_secret, creds=Credentials(API_KEY, "another-secret-value"))
    assert "POST /api/v3/order" in caplog.text and "found after all" in caplog.text   # the calls were logged
    texts = [caplog.text] + [str(r.args) for r in caplog.records] + [r.exc_text or "" for r in caplog.records]
    for text in texts:
        assert API_KEY not in text and API_SECRET not in text and "another-secret-value" not in text
        assert "signature=" not in text
