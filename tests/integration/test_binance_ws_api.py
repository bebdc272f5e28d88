"""User data and orders over the WebSocket API, against the simulator over real sockets.

Binance retired the listenKey flow on 2026-02-20: user data now comes only through a
WebSocket API subscription, and orders may go the same way. Each test here drives the
connector's own WsApiConnection / UserDataStream / WsApiExecutionClient.
"""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal

import pytest

from abidance.core import topics
from abidance.exchange.binance.credentials import Credentials
from abidance.exchange.binance.errors import BinanceApiError
from abidance.exchange.binance.ws_api import SIGNED
from abidance.exchange.binance.ws_orders import WsApiExecutionClient
from abidance.exchange.sim.config import DEMO_API_KEY, DEMO_API_SECRET, SimConfig
from abidance.execution.orders import Order
from tests.integration.connector_kit import books_ready, run_with_connector, until
from tests.integration.sim_kit import admin, crash_through
from tests.integration.conftest import RunningSim


@pytest.fixture(scope="module")
def sim():
    running = RunningSim(SimConfig(seed=31))
    yield running
    running.close()


@pytest.fixture(autouse=True)
def clean_faults(sim):
    yield
    admin(sim, "/admin/faults", {"order_reply_lost_rate": 0, "rest_5xx_rate": 0})
    sim.run(lambda: setattr(sim.server.venue, "ws_api_refused_until", 0.0))


def order_for(client_order_id: str, symbol: str, side: str, order_type: str, qty_units: int, price_units: int = 0,
              tif: str = "") -> Order:
    return Order(client_order_id, "test", symbol, side, order_type, qty_units, price_units, tif, 0)


def test_user_data_is_subscribed_with_a_signature_and_events_arrive_unwrapped(sim, caplog):
    caplog.set_level(logging.DEBUG)

    async def scenario(conn, bus, rest):
        updates, balances, recs = [], [], []
        bus.subscribe(topics.ORDER_UPDATES, updates.append)
        bus.subscribe(topics.BALANCES, balances.append)
        bus.subscribe(topics.RECONCILIATION, recs.append)
        await until(lambda: recs, 10, "the start reconciliation")
        assert recs[0].reason == "start" and conn.user.subscriptions == 1
        placed = await rest.new_order("ETHUSDT", "BUY", "MARKET", quantity=Decimal("0.01"))
        await until(lambda: any(u.client_order_id == placed["clientOrderId"] and u.status == "FILLED"
                                for u in updates), 5, "the fill's executionReport")
        await until(lambda: balances, 5, "outboundAccountPosition")
        fill = next(u for u in updates if u.execution_type == "TRADE")
        assert fill.order_list_id == -1 and fill.last_qty == Decimal("0.01")
        sessions = sim.run(lambda: [(s.ip, dict(s.subscriptions)) for s in sim.server.venue.hub.api_sessions])
        assert len(sessions) == 1 and list(sessions[0][1].values())[0][1] is False    # by signature, not logon
        assert conn.user.dropped == 0 and conn.ws_api.dropped == 0

    run_with_connector(sim, scenario, symbols=("ETHUSDT",), channels=("trade",), user_data=True)
    assert DEMO_API_SECRET not in caplog.text and DEMO_API_KEY not in caplog.text


def test_ed25519_key_subscribes_by_session_logon(sim):
    ed = pytest.importorskip("cryptography.hazmat.primitives.asymmetric.ed25519")
    key = ed.Ed25519PrivateKey.generate()
    sim.run(lambda: sim.server.venue.exchange.create_account(
        "ed25519-test-key", None, {"USDT": "1000"}, ed25519_public_key=key.public_key()))

    async def scenario(conn, bus, rest):
        recs = []
        bus.subscribe(topics.RECONCILIATION, recs.append)
        await until(lambda: recs, 10, "the start reconciliation")
        status = await conn.ws_api.request("session.status", weight=2)
        assert status["apiKey"] == "ed25519-test-key" and status["userDataStream"] is True
        assert any(b.asset == "USDT" and b.free == Decimal(1000) for b in recs[0].balances)

    run_with_connector(sim, scenario, symbols=("ETHUSDT",), channels=("trade",), user_data=True,
                       credentials=Credentials("ed25519-test-key", ed25519_private_key=key), user_data_auth="logon")


def test_hmac_key_cannot_log_on(sim):
    async def scenario(conn, bus, rest):
        api = conn.api()
        await api.connected.wait()
        with pytest.raises(BinanceApiError) as info:
            await api.request("session.logon", {}, security=SIGNED, weight=2)
        assert info.value.code == -1022

    run_with_connector(sim, scenario, symbols=("ETHUSDT",), channels=("trade",))


def test_wrong_secret_refuses_the_subscription_with_a_critical_alert_not_a_loop(sim):
    async def scenario(conn, bus, rest):
        alerts = []
        bus.subscribe(topics.ALERTS, alerts.append)
        from abidance.exchange.binance.user_stream import UserDataStream

        user = UserDataStream(conn.config, rest, bus, conn.api(), conn.clock_ns)
        with pytest.raises(asyncio.TimeoutError):
            await user.start(timeout=1.5)
        assert any(a.code == "user_data_auth_failed" and a.level == "critical" for a in alerts)
        assert "-1022" in user.last_error
        await user.stop()

    run_with_connector(sim, scenario, symbols=("ETHUSDT",), channels=("trade",),
                       credentials=Credentials(DEMO_API_KEY, "not-the-secret"), reconnect_max_s=0.5)


def test_event_stream_terminated_resubscribes_and_reconciles(sim):
    async def scenario(conn, bus, rest):
        recs = []
        bus.subscribe(topics.RECONCILIATION, recs.append)
        await until(lambda: recs, 10, "the start reconciliation")

        def end_subscriptions():
            for session in list(sim.server.venue.hub.api_sessions):
                for sid in list(session.subscriptions):
                    session.end_subscription(sid, sim.server.venue.wall_ms())
        sim.run(end_subscriptions)
        await until(lambda: any(r.reason == "stream_terminated" for r in recs), 10, "re-subscription")
        assert conn.user.terminations == 1 and conn.user.subscriptions == 2
        assert conn.ws_api.reconnects == 0          # the connection itself stayed up

    run_with_connector(sim, scenario, symbols=("ETHUSDT",), channels=("trade",), user_data=True)


def test_server_shutdown_event_moves_to_a_new_connection_and_resubscribes(sim):
    async def scenario(conn, bus, rest):
        recs = []
        bus.subscribe(topics.RECONCILIATION, recs.append)
        await until(lambda: recs, 10, "the start reconciliation")

        def announce():
            for session in list(sim.server.venue.hub.api_sessions):
                session.transport.send(1, b'{"event":{"e":"serverShutdown","E":1}}')
        sim.run(announce)
        await until(lambda: any(r.reason == "reconnect" for r in recs), 10, "reconnect reconciliation")
        assert conn.ws_api.reconnects == 1 and conn.user.subscriptions == 2

    run_with_connector(sim, scenario, symbols=("ETHUSDT",), channels=("trade",), user_data=True,
                       reconnect_initial_s=0.05)


def test_orders_over_the_ws_api_place_query_cancel_and_update_the_budget(sim):
    async def scenario(conn, bus, rest):
        await books_ready(conn)
        client = WsApiExecutionClient(conn.api(), rest, conn.instruments)
        await conn.ws_api.connected.wait()
        inst = conn.instruments["ETHUSDT"]
        bid = conn.data.books.keepers["ETHUSDT"].book.best_bid()[0]
        price = inst.filters.price_fp.to_units(inst.filters.price_fp.to_str(bid * 9 // 10))
        qty = inst.filters.qty_fp.to_units(Decimal("0.01"))
        order = order_for(rest.ids.next(), "ETHUSDT", "BUY", "LIMIT", qty, price, "GTC")
        order.request = client.prepare(order)
        assert isinstance(order.request, bytes) and b'"signature"' in order.request
        placed = await client.submit(order)
        assert placed["status"] == "NEW" and placed["clientOrderId"] == order.client_order_id
        assert rest.limiter.counters()["used_weight_1m"] >= 1        # from the answer's rateLimits
        assert (await client.query(order))["status"] == "NEW"
        assert [o["clientOrderId"] for o in await client.open_orders()] == [order.client_order_id]
        assert (await client.cancel(order))["status"] == "CANCELED"
        assert client.counters.rest_fallbacks == 0 and rest.counters.requests == 2    # exchangeInfo, depth

    run_with_connector(sim, scenario, symbols=("ETHUSDT",), channels=("trade", "depth"))


def test_ws_api_orders_whose_reply_is_lost_are_found_not_duplicated(sim):
    """The simulator executes the order, then answers -1007 (status unknown): only a lookup can tell."""
    n = 10

    async def scenario(conn, bus, rest):
        client = WsApiExecutionClient(conn.api(), rest, conn.instruments)
        await conn.ws_api.connected.wait()
        rest.unknown_query_delay_s = 0.01
        before = {o["orderId"] for o in await rest.all_orders("ETHUSDT")}
        admin(sim, "/admin/faults", {"order_reply_lost_rate": 0.4, "seed": 5})
        qty = conn.instruments["ETHUSDT"].filters.qty_fp.to_units(Decimal("0.01"))
        cids = []
        for _ in range(n):
            order = order_for(rest.ids.next(), "ETHUSDT", "BUY", "MARKET", qty)
            order.request = client.prepare(order)
            cids.append((await client.submit(order))["clientOrderId"])
        admin(sim, "/admin/faults", {"order_reply_lost_rate": 0})
        after = [o for o in await rest.all_orders("ETHUSDT") if o["orderId"] not in before]
        assert sorted(o["clientOrderId"] for o in after) == sorted(cids)       # none lost, none twice
        assert client.counters.order_status_unknown >= 1
        assert client.counters.orders_found == client.counters.order_status_unknown
        assert client.counters.order_resubmits == 0

    run_with_connector(sim, scenario, symbols=("ETHUSDT",), channels=("trade",))


def test_ws_api_down_sends_orders_over_rest_instead_of_failing(sim):
    async def scenario(conn, bus, rest):
        client = WsApiExecutionClient(conn.api(), rest, conn.instruments)
        await conn.ws_api.connected.wait()
        admin(sim, "/admin/close-connections?kind=ws-api&refuse_s=3")
        await until(lambda: not conn.ws_api.is_connected, 5, "the WebSocket API down")
        qty = conn.instruments["ETHUSDT"].filters.qty_fp.to_units(Decimal("0.01"))
        order = order_for(rest.ids.next(), "ETHUSDT", "BUY", "MARKET", qty)
        order.request = client.prepare(order)
        placed = await client.submit(order)
        assert placed["status"] == "FILLED" and client.counters.rest_fallbacks == 1
        await until(lambda: conn.ws_api.is_connected, 10, "the WebSocket API back")

    run_with_connector(sim, scenario, symbols=("ETHUSDT",), channels=("trade",), reconnect_initial_s=0.2,
                       reconnect_max_s=0.5)


def test_signed_request_matches_binance_documented_example():
    """The payload rule (sorted params, no percent-encoding) and HMAC hex against Binance's own example."""
    from abidance.exchange.binance.config import BinanceConfig
    from abidance.exchange.binance.ws_api import WsApiConnection

    class FixedClock:
        def time_ms(self):
            return 1645423376532

    key = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
    secret = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
    api = WsApiConnection(BinanceConfig(recv_window_ms=100), Credentials(key, secret), None, FixedClock())
    signed = api.signed({"symbol": "BTCUSDT", "side": "SELL", "type": "LIMIT", "timeInForce": "GTC",
                         "quantity": "0.01000000", "price": "52000.00"})
    assert signed["signature"] == "aa1b5712c094bc4e57c05a1a5c1fd8d88dcd628338ea863fec7b88e59fe2db24"


@pytest.mark.parametrize("transport", ["ws_api", "rest"])
def test_native_oco_exit_rests_on_the_venue_and_fires_there(sim, transport):
    """A stop and a target as one OCO SELL on the exchange: the stop leg fires when the market
    falls through it, the target leg expires, and the list's events reach the bus."""
    from abidance.exchange.binance.order_lists import exit_request, native_exit_problem

    async def scenario(conn, bus, rest):
        updates, lists = [], []
        bus.subscribe(topics.ORDER_UPDATES, updates.append)
        bus.subscribe(topics.ORDER_LIST_UPDATES, lists.append)
        await conn.user.subscribed.wait()
        client = WsApiExecutionClient(conn.api(), rest, conn.instruments)
        inst = conn.instruments["BNBUSDT"]
        bought = await rest.new_order("BNBUSDT", "BUY", "MARKET", quantity=Decimal("0.5"))
        held = Decimal(bought["executedQty"]) - sum(Decimal(f["commission"]) for f in bought["fills"])
        qty = int(held / inst.filters.qty_fp.increment)        # whole steps of what the fee left
        last = sim.run(lambda: sim.server.venue.exchange.last_trade_ticks("BNBUSDT"))
        spec = sim.server.venue.exchange.spec("BNBUSDT")
        stop, take = inst.filters.price_fp.to_units(spec.price_str(last * 97 // 100)), \
            inst.filters.price_fp.to_units(spec.price_str(last * 105 // 100))
        assert native_exit_problem(inst, stop, take, 0) == ""
        request = exit_request(inst, qty, stop, take, 0, rest.ids.next())
        placed = await (client.place_exit(request) if transport == "ws_api" else rest.place_exit(request))
        assert placed["contingencyType"] == "OCO" and placed["listStatusType"] == "EXEC_STARTED"
        assert {o["clientOrderId"] for o in placed["orders"]} == set(request.client_ids)
        await until(lambda: any(u.list_status_type == "EXEC_STARTED" for u in lists), 5, "listStatus EXEC_STARTED")

        sim.run(lambda: crash_through(sim, "BNBUSDT", inst.filters.price_fp.to_str(stop - 5)))
        try:
            await until(lambda: any(u.list_order_status == "ALL_DONE" for u in lists), 10, "the list done")
            below = request.client_ids[1]
            assert any(u.client_order_id == below and u.execution_type == "TRADE" and u.status == "FILLED"
                       for u in updates)
            above = request.client_ids[0]
            assert any(u.client_order_id == above and u.status == "EXPIRED" for u in updates)
            assert all(u.order_list_id == placed["orderListId"] for u in updates if u.client_order_id in
                       request.client_ids)
        finally:
            sim.run(lambda: setattr(sim.server.venue, "paused", False))

    run_with_connector(sim, scenario, symbols=("BNBUSDT",), channels=("trade",), user_data=True,
                       order_transport=transport)


def test_user_data_subscribes_on_a_connection_that_was_already_up(sim):
    """Orders open the WebSocket API first; user data joins the live connection later."""
    async def scenario(conn, bus, rest):
        from abidance.exchange.binance.user_stream import UserDataStream

        api = conn.api()
        await api.connected.wait()
        await asyncio.sleep(0.2)            # the connect hooks have run: nobody was listening then
        recs = []
        bus.subscribe(topics.RECONCILIATION, recs.append)
        user = UserDataStream(conn.config, rest, bus, api, conn.clock_ns)
        await user.start(timeout=5)
        await until(lambda: recs, 5, "the start reconciliation")
        assert user.subscriptions == 1 and recs[0].reason == "start"
        await user.stop()

    run_with_connector(sim, scenario, symbols=("ETHUSDT",), channels=("trade",))
