"""The connector against the real simulator over loopback sockets, faults included.

Books must end identical to the simulator's own book after drops, duplicates,
reorders and disconnects; the counters must show each fault was seen.
"""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal

import pytest
from picows import WSMsgType

from abidance.core import topics
from abidance.exchange.sim.config import DEMO_API_KEY, DEMO_API_SECRET, SimConfig
from tests.integration.connector_kit import SYMBOLS, books_ready, run_with_connector, set_paused, until
from tests.integration.sim_kit import admin
from tests.integration.conftest import RunningSim


@pytest.fixture(scope="module")
def sim():
    running = RunningSim(SimConfig(seed=21))
    yield running
    running.close()


@pytest.fixture(autouse=True)
def clean_faults(sim):
    yield
    admin(sim, "/admin/faults", {"depth_drop_rate": 0, "depth_duplicate_rate": 0, "depth_reorder_rate": 0,
                                 "rest_5xx_rate": 0, "rest_429_rate": 0, "rest_418_rate": 0,
                                 "max_connection_s": 86400})
    set_paused(sim, False)


async def assert_books_match_simulator(sim, conn, depth: int = 50):
    """Freeze the simulated market, let the last diffs arrive, compare level by level."""
    set_paused(sim, True)
    try:
        await asyncio.sleep(0.4)
        await books_ready(conn)
        for symbol, sync in conn.data.books.keepers.items():
            truth = sim.run(lambda s=symbol: sim.server.venue.exchange.depth(s, depth))
            codec = conn.parser.codec(symbol)
            want_bids = [[codec.price.to_units(p), codec.qty.to_units(q)] for p, q in truth["bids"]]
            want_asks = [[codec.price.to_units(p), codec.qty.to_units(q)] for p, q in truth["asks"]]
            assert sync.book.last_update_id == truth["lastUpdateId"], symbol
            assert sync.book.top_bids(depth).tolist() == want_bids, symbol
            assert sync.book.top_asks(depth).tolist() == want_asks, symbol
    finally:
        set_paused(sim, False)


def test_books_sync_and_match_the_simulator_and_trades_flow(sim):
    async def scenario(conn, bus, rest):
        trades, status = [], []
        bus.subscribe(topics.TRADES, trades.append)
        bus.subscribe(topics.BOOK_STATUS, status.append)
        await books_ready(conn)
        await until(lambda: len(trades) >= 5, 10, "trades")
        await assert_books_match_simulator(sim, conn)
        assert {t.symbol for t in trades} <= set(SYMBOLS)
        assert all(t.price > 0 and t.qty > 0 for t in trades)
        assert [s.ready for s in status if s.symbol == "BTCUSDT"][0] is True
        health = conn.health_snapshot()
        assert health.books_ready == 2 and health.reconnects == 0 and health.dropped == {}
        assert any(s.stream == "BTCUSDT@depth" and s.messages > 0 for s in health.streams)

    run_with_connector(sim, scenario)


def test_dropped_duplicated_and_reordered_depth_updates_resync_and_end_identical(sim):
    async def scenario(conn, bus, rest):
        await books_ready(conn)
        before = sim.server.venue.faults.injected
        admin(sim, "/admin/faults", {"depth_drop_rate": 0.05, "depth_duplicate_rate": 0.1,
                                     "depth_reorder_rate": 0.05, "seed": 5})
        await until(lambda: sum(b.resyncs for b in conn.data.books.keepers.values()) >= 2, 20, "resyncs after gaps")
        await until(lambda: sum(b.stale_diffs for b in conn.data.books.keepers.values()) >= 1, 10, "duplicates seen")
        admin(sim, "/admin/faults", {"depth_drop_rate": 0, "depth_duplicate_rate": 0, "depth_reorder_rate": 0})
        await asyncio.sleep(0.3)
        await assert_books_match_simulator(sim, conn)
        assert sim.server.venue.faults.injected > before
        assert conn.health_snapshot().resyncs >= 2

    run_with_connector(sim, scenario)


def test_disconnect_mid_stream_reconnects_resyncs_and_ends_identical(sim):
    async def scenario(conn, bus, rest):
        alerts = []
        bus.subscribe(topics.ALERTS, alerts.append)
        await books_ready(conn)
        admin(sim, "/admin/close-connections")
        await until(lambda: conn.streams.reconnects >= 1, 10, "reconnect")
        await until(lambda: all(b.resyncs >= 1 for b in conn.data.books.keepers.values()), 10, "resync after reconnect")
        await assert_books_match_simulator(sim, conn)
        assert any(a.code == "stream_disconnected" for a in alerts)

    run_with_connector(sim, scenario, reconnect_initial_s=0.05)


def test_stalled_stream_is_detected_and_reconnected(sim):
    async def scenario(conn, bus, rest):
        await books_ready(conn)
        sim.call(_stall(sim, 3.0))
        await until(lambda: conn.streams.reconnects >= 1, 10, "stale reconnect")
        reasons = [c.last_disconnect_reason for c in conn.streams.connections]
        assert any("stale" in r for r in reasons) or conn.streams.reconnects >= 1
        await books_ready(conn, 15)

    run_with_connector(sim, scenario, stale_after_s=1.0, reconnect_initial_s=0.05)


async def _stall(sim, seconds):
    venue = sim.server.venue
    venue.faults.stall(seconds * venue.clock.speed, venue.clock.now_ms())


def test_connection_is_renewed_before_its_maximum_age_without_a_gap_a_duplicate_or_a_resync(sim):
    """Make-before-break: the new connection is subscribed before the old one closes."""
    async def scenario(conn, bus, rest):
        trades, status = [], []
        bus.subscribe(topics.TRADES, trades.append)
        bus.subscribe(topics.BOOK_STATUS, status.append)
        await books_ready(conn)
        await until(lambda: conn.streams.handovers >= 3, 20, "three renewals")
        await until(lambda: len(trades) > 50, 10, "trades")
        assert conn.streams.reconnects == 0
        assert sum(b.resyncs for b in conn.data.books.keepers.values()) == 0
        assert [s.ready for s in status] == [True] * len(conn.data.books.keepers)     # never not ready after the first sync
        for symbol in conn.data.books.keepers:
            ids = [t.trade_id for t in trades if t.symbol == symbol]
            assert ids == list(range(ids[0], ids[0] + len(ids))), f"{symbol}: a gap or a duplicate trade"
        await assert_books_match_simulator(sim, conn)

    run_with_connector(sim, scenario, max_connection_age_s=1.5, reconnect_initial_s=0.05)


def test_streams_spread_over_connections_and_subscribe_at_run_time(sim):
    async def scenario(conn, bus, rest):
        # 2 symbols x (trade, depth) with at most 3 streams a connection -> 2 connections.
        assert len(conn.streams.connections) == 2
        await conn.streams.wait_connected()
        await books_ready(conn)
        trades = []
        bus.subscribe(topics.TRADES, trades.append)
        await conn.subscribe(["BNBUSDT"], ("trade",))
        await until(lambda: any(t.symbol == "BNBUSDT" for t in trades), 15, "BNBUSDT trades after SUBSCRIBE")
        owner = conn.streams.connection_of("bnbusdt@trade")
        assert "bnbusdt@trade" in await owner.list_subscriptions()
        await conn.unsubscribe(["BNBUSDT"], ("trade",))
        assert conn.streams.connection_of("bnbusdt@trade") is None
        await asyncio.sleep(0.3)
        n = sum(1 for t in trades if t.symbol == "BNBUSDT")
        await asyncio.sleep(1.0)
        assert sum(1 for t in trades if t.symbol == "BNBUSDT") == n

    run_with_connector(sim, scenario, max_streams_per_connection=3)


def test_malformed_frames_are_dropped_counted_and_the_stream_carries_on(sim):
    bad_frames = [b'{"e":"trade","E":1', b'{"e":"trade","E":1,"s":"BTCUSDT","t":1,"p":"NaN","q":"1","T":1,"m":true}',
                  b'[1,2,3]', b'{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":9,"u":3,"b":[],"a":[]}',
                  b'\xff\xfe', b'{"e":"trade","E":1,"s":"BTCUSDT","t":-5,"p":"1.00","q":"1","T":1,"m":true}']

    def send_bad():
        for conn in list(sim.server.venue.hub.subscribers.get("btcusdt@trade", ())):
            for frame in bad_frames:
                conn.transport.send(WSMsgType.TEXT, frame)

    async def scenario(conn, bus, rest):
        trades = []
        bus.subscribe(topics.TRADES, trades.append)
        await books_ready(conn)
        sim.run(send_bad)
        await until(lambda: conn.parser.dropped >= len(bad_frames), 5, "drops counted")
        n = len(trades)
        await until(lambda: len(trades) > n + 3, 10, "trades after the bad frames")
        counts = conn.health_snapshot().dropped
        assert counts.get("malformed_json", 0) >= 2 and counts.get("bad_field", 0) >= 2
        assert counts.get("not_an_object", 0) >= 1 and counts.get("bad_ids", 0) >= 1
        assert conn.streams.reconnects == 0

    run_with_connector(sim, scenario)


def test_user_data_orders_balances_and_reconciliation_after_reconnect(sim, caplog):
    caplog.set_level(logging.DEBUG)

    async def scenario(conn, bus, rest):
        updates, balances, recs = [], [], []
        bus.subscribe(topics.ORDER_UPDATES, updates.append)
        bus.subscribe(topics.BALANCES, balances.append)
        bus.subscribe(topics.RECONCILIATION, recs.append)
        await until(lambda: recs and recs[0].reason == "start", 10, "start reconciliation")
        await books_ready(conn)
        bid = conn.data.books.keepers["BTCUSDT"].book.best_bid()[0]
        codec = conn.parser.codec("BTCUSDT")
        far_price = codec.price.to_str(bid // 2)
        resting = await rest.new_order("BTCUSDT", "BUY", "LIMIT", quantity=Decimal("0.01"), price=far_price,
                                       time_in_force="GTC")
        cid = resting["clientOrderId"]
        await until(lambda: any(u.client_order_id == cid and u.status == "NEW" for u in updates), 5, "NEW")
        await rest.new_order("BTCUSDT", "BUY", "MARKET", quantity=Decimal("0.001"))
        await until(lambda: any(u.execution_type == "TRADE" and u.status == "FILLED" for u in updates), 5, "fill")
        await until(lambda: balances, 5, "balance update")
        fill = next(u for u in updates if u.execution_type == "TRADE")
        assert fill.last_qty > 0 and fill.last_price > 0 and fill.commission >= 0
        # A reconnect of the user stream must be followed by a REST reconciliation.
        admin(sim, "/admin/close-connections")
        await until(lambda: any(r.reason == "reconnect" for r in recs), 15, "reconnect reconciliation")
        rec = next(r for r in recs if r.reason == "reconnect")
        assert cid in {o.client_order_id for o in rec.open_orders}
        assert any(b.asset == "USDT" for b in rec.balances)
        await rest.cancel_order("BTCUSDT", client_order_id=cid)
        await until(lambda: any(u.client_order_id == cid and u.status == "CANCELED" for u in updates), 5, "cancel")
        assert conn.user.dropped == 0

    run_with_connector(sim, scenario, symbols=("BTCUSDT",), user_data=True, reconnect_initial_s=0.05)
    text = caplog.text
    assert DEMO_API_SECRET not in text and DEMO_API_KEY not in text


def test_orders_whose_reply_is_lost_are_found_not_duplicated(sim):
    """The simulator executes the order, then answers 503 -1007: only a lookup can tell."""
    n = 12

    async def scenario(conn, bus, rest):
        before = {o["orderId"] for o in await rest.all_orders("ETHUSDT")}
        admin(sim, "/admin/faults", {"order_reply_lost_rate": 0.4, "seed": 9})
        cids = []
        for _ in range(n):
            answer = await rest.new_order("ETHUSDT", "BUY", "MARKET", quantity=Decimal("0.01"))
            cids.append(answer["clientOrderId"])
        admin(sim, "/admin/faults", {"order_reply_lost_rate": 0})
        after = [o for o in await rest.all_orders("ETHUSDT") if o["orderId"] not in before]
        assert sorted(o["clientOrderId"] for o in after) == sorted(cids)       # none lost, none twice
        assert all(o["status"] == "FILLED" for o in after)
        assert rest.counters.order_status_unknown >= 1
        assert rest.counters.orders_found == rest.counters.order_status_unknown
        assert rest.counters.order_resubmits == 0

    run_with_connector(sim, scenario, symbols=("ETHUSDT",), channels=("trade",))


def test_partial_depth_streams_arrive_as_top_level_snapshots_equal_to_the_book(sim):
    """`<s>@depth5@100ms` on its own connection: the top levels in ticks and steps, as the venue has them."""
    async def scenario(conn, bus, rest):
        snaps = []
        bus.subscribe(topics.PARTIAL_DEPTH, snaps.append)
        await until(lambda: len(snaps) >= 3, 10, "partial-depth snapshots")
        set_paused(sim, True)
        try:
            await asyncio.sleep(0.4)
            n = len(snaps)
            await until(lambda: len(snaps) > n, 5, "a snapshot of the frozen book")
            last = snaps[-1]
            truth = sim.run(lambda: sim.server.venue.exchange.depth("BTCUSDT", 5))
            codec = conn.parser.codec("BTCUSDT")
            assert last.update_id == truth["lastUpdateId"]
            assert list(zip(last.bid_prices, last.bid_qtys)) == [
                (codec.price.to_units(p), codec.qty.to_units(q)) for p, q in truth["bids"]]
            assert list(zip(last.ask_prices, last.ask_qtys)) == [
                (codec.price.to_units(p), codec.qty.to_units(q)) for p, q in truth["asks"]]
        finally:
            set_paused(sim, False)
        assert conn.partial_dropped == 0 and conn.parser.dropped == 0
        assert len(conn.partial.connections) == 1 and conn.streams.connection_of("btcusdt@depth5@100ms") is None

    run_with_connector(sim, scenario, symbols=("BTCUSDT",), channels=("trade", "depth5"))
