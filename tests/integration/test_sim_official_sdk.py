"""Binance's official Python SDK (binance-sdk-spot) drives the simulator's WebSocket API.

Nothing here is ours on the client side: the SDK builds, signs and parses every message
(its own HMAC and Ed25519 signing, its own envelope handling and response models). It
places, queries and cancels an order, and receives its own executionReport through a
user-data subscription, as it would on Binance.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.integration.conftest import API_KEY, API_SECRET

spot_sdk = pytest.importorskip("binance_sdk_spot.spot", reason="the official SDK (binance-sdk-spot) is a dev extra")
configuration = pytest.importorskip("binance_common.configuration")


def sdk_connection(sim, **auth):
    config = configuration.ConfigurationWebSocketAPI(stream_url=sim.server.ws_api_url, timeout=5000,
                                                     reconnect_delay=200, **auth)
    client = spot_sdk.Spot(config_ws_api=config)
    return client.websocket_api.create_connection()


def passive_bid(sim) -> str:
    """A limit price well under the bid, on the tick grid: the order rests."""
    venue = sim.server.venue
    bid = sim.run(lambda: venue.exchange.book_top("BTCUSDT")[0])
    spec = venue.exchange.spec("BTCUSDT")
    return spec.price_str(bid * 9 // 10)


async def until(predicate, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def test_official_sdk_places_queries_cancels_and_receives_its_execution_reports(sim):
    price = passive_bid(sim)

    async def run():
        connection = await sdk_connection(sim, api_key=API_KEY, api_secret=API_SECRET)
        try:
            events = []
            subscribed = await connection.user_data_stream_subscribe_signature()
            subscribed.stream.on("message", lambda ev: events.append(ev))

            placed = (await connection.order_place(symbol="BTCUSDT", side="BUY", type="LIMIT", time_in_force="GTC",
                                                   price=float(price), quantity=0.001,
                                                   new_client_order_id="sdk-order-1")).data()
            assert placed.result.client_order_id == "sdk-order-1" and placed.result.status == "NEW"
            assert any(r.rate_limit_type == "ORDERS" for r in placed.rate_limits)

            status = (await connection.order_status(symbol="BTCUSDT", orig_client_order_id="sdk-order-1")).data()
            assert status.result.status == "NEW" and status.result.order_id == placed.result.order_id

            canceled = (await connection.order_cancel(symbol="BTCUSDT", orig_client_order_id="sdk-order-1")).data()
            assert canceled.result.status == "CANCELED"

            def reports():
                out = []
                for ev in events:
                    inner = ev.actual_instance      # the SDK's own model of the event, chosen by the SDK
                    if type(inner).__name__ == "ExecutionReport" and inner.i == placed.result.order_id:
                        out.append(inner)
                return out
            await until(lambda: {r.x for r in reports()} >= {"NEW", "CANCELED"}, 5, "the SDK's own executionReports")
            new = next(r for r in reports() if r.x == "NEW")
            assert new.c == "sdk-order-1" and new.s == "BTCUSDT" and new.S == "BUY"
            on_venue = sim.run(lambda: sim.server.venue.exchange.query_order(
                sim.server.venue.account, "BTCUSDT", orig_client_order_id="sdk-order-1"))
            assert on_venue["status"] == "CANCELED"
        finally:
            await connection.close_connection()

    asyncio.run(run())


def test_official_sdk_logs_on_with_an_ed25519_key_and_subscribes(sim, tmp_path):
    serialization = pytest.importorskip("cryptography.hazmat.primitives.serialization")
    ed = pytest.importorskip("cryptography.hazmat.primitives.asymmetric.ed25519")
    key = ed.Ed25519PrivateKey.generate()
    api_key = f"sdk-ed25519-{time.monotonic_ns() % 10**9}"
    sim.run(lambda: sim.server.venue.exchange.create_account(api_key, None, {"USDT": "500"},
                                                             ed25519_public_key=key.public_key()))
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())

    async def run():
        connection = await sdk_connection(sim, api_key=api_key, private_key=pem)
        try:
            logon = (await connection.session_logon()).data()
            assert logon.result.api_key == api_key
            subscribed = await connection.user_data_stream_subscribe()
            assert subscribed.response.data().result.subscription_id == 0
            status = (await connection.session_status()).data()
            assert status.result.user_data_stream is True
            account = (await connection.account_status()).data()
            assert {b.asset: b.free for b in account.result.balances}["USDT"] == "500.00000000"
        finally:
            await connection.close_connection()

    asyncio.run(run())
