"""StoreWriter on a real embedded ClickHouse (chdb): exact rows, spooling, exactly once, bad rows."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import pytest

from abidance.core import topics
from abidance.core.bus import MessageBus
from abidance.core.clock import LiveClock
from abidance.core.events import Alert, Fill
from abidance.store.schema import TABLES
from abidance.store.writer import StoreWriter
from tests.unit.node_kit import INSTRUMENTS, trade

clickhouse_connect = pytest.importorskip("clickhouse_connect")
pytest.importorskip("chdb")


@pytest.fixture(scope="module")
def chdb_client(tmp_path_factory):
    client = clickhouse_connect.get_client(dsn=f"chdb:///{tmp_path_factory.mktemp('chdb')}")
    client.command("CREATE DATABASE IF NOT EXISTS abidance")
    for table in TABLES:
        client.command(table.ddl("abidance"))
    yield client
    client.close()


@pytest.fixture
def fresh(chdb_client):
    for table in TABLES:
        chdb_client.command(f"TRUNCATE TABLE abidance.{table.name}")
    return chdb_client


class Flaky:
    """A client that can be down, or insert and then lose the answer."""

    def __init__(self, inner):
        self.inner = inner
        self.down = False
        self.lose_answers = 0

    def insert_arrow(self, table, data, settings=None):
        from clickhouse_connect.driver.exceptions import OperationalError

        if self.down:
            raise OperationalError("connection refused (test)")
        self.inner.insert_arrow(table, data, settings=settings)
        if self.lose_answers:
            self.lose_answers -= 1
            raise OperationalError("connection reset after the insert (test)")


def run(scenario, client, tmp_path, **kw):
    async def main():
        bus = MessageBus()
        writer = StoreWriter(bus, LiveClock(), lambda: client, INSTRUMENTS, tmp_path / "spool", flush_s=0.05, **kw)
        alerts = []
        bus.subscribe(topics.ALERTS, alerts.append)
        writer.start()
        try:
            return await scenario(bus, writer, alerts)
        finally:
            writer.stop()

    return asyncio.run(main())


def count(client, table: str) -> int:
    return client.query(f"SELECT count() FROM abidance.{table}").result_rows[0][0]


def fill(i: int, qty="0.00153", price="65000.12") -> Fill:
    return Fill(f"c{i}", "s1", "BTCUSDT", "BUY", Decimal(qty), Decimal(price), Decimal("0.0000015"), "BTC", i,
                False, 1_700_000_000_000_000_000 + i)


def test_events_become_exact_rows(fresh, tmp_path):
    async def scenario(bus, writer, alerts):
        for i in range(3):
            bus.publish(topics.TRADES, trade("65000.12", qty="0.00153", ts_ns=1_700_000_000_000_000_000 + i))
        bus.publish(topics.FILLS, fill(1))
        await writer.drain()

    run(scenario, fresh, tmp_path)
    assert fresh.query("SELECT price, qty FROM abidance.trades LIMIT 1").result_rows == [
        (Decimal("65000.12"), Decimal("0.00153"))]
    assert fresh.query("SELECT qty, price, commission FROM abidance.fills").result_rows == [
        (Decimal("0.00153"), Decimal("65000.12"), Decimal("0.0000015"))]
    assert count(fresh, "trades") == 3


def test_store_down_spools_and_replays_every_event_exactly_once(fresh, tmp_path):
    flaky = Flaky(fresh)

    async def scenario(bus, writer, alerts):
        for i in range(10):
            bus.publish(topics.FILLS, fill(i))
        await writer.drain()
        flaky.down = True                      # the store goes away
        for i in range(10, 40):
            bus.publish(topics.FILLS, fill(i))
            if i % 10 == 0:
                await writer.drain()
        await writer.drain()
        assert writer.spooled_batches >= 2 and not writer.up
        assert any(a.code == "store_down" for a in alerts)
        flaky.down = False                     # back: the next batch replays the spool first
        flaky.lose_answers = 1                 # and one replayed insert lands but its answer is lost
        bus.publish(topics.FILLS, fill(40))
        await writer.drain()
        bus.publish(topics.FILLS, fill(41))
        await writer.drain()
        assert writer.up and any(a.code == "store_recovered" for a in alerts)
        return writer.stats()

    stats = run(scenario, flaky, tmp_path)
    assert stats["accepted"]["fills"] == 42 and stats["spool_files"] == 0
    assert count(fresh, "fills") == 42
    ids = [r[0] for r in fresh.query("SELECT trade_id FROM abidance.fills ORDER BY trade_id").result_rows]
    assert ids == list(range(42))              # every event once: none lost, none twice


def test_a_row_that_does_not_fit_is_set_aside_named_and_the_rest_written(fresh, tmp_path):
    async def scenario(bus, writer, alerts):
        bus.publish(topics.FILLS, fill(1))
        bus.publish(topics.FILLS, fill(2, qty="0.000000001"))    # 9 decimals: not a Binance value
        bus.publish(topics.FILLS, fill(3))
        await writer.drain()
        return alerts, writer.stats()

    alerts, stats = run(scenario, fresh, tmp_path)
    assert count(fresh, "fills") == 2 and stats["rejected_rows"] == 1
    assert any(a.code == "store_row_rejected" and "fills.qty" in a.message for a in alerts)
    rejected = [json.loads(line) for line in (tmp_path / "spool" / "rejected" / "fills.jsonl").read_text().splitlines()]
    assert len(rejected) == 1 and rejected[0]["table"] == "fills" and "qty" in rejected[0]["reason"]


def test_an_event_that_cannot_be_converted_is_counted_not_fatal(fresh, tmp_path):
    async def scenario(bus, writer, alerts):
        bus.publish(topics.ALERTS, Alert("info", "t", "x", "fine", 1))
        bus.publish(topics.FILLS, object())                        # not a Fill
        bus.publish(topics.ALERTS, Alert("info", "t", "y", "fine too", 2))
        await writer.drain()
        return writer.stats()

    stats = run(scenario, fresh, tmp_path)
    assert stats["conversion_errors"] == 1 and count(fresh, "alerts") >= 2


def test_computed_money_finer_than_the_store_is_rounded_not_set_aside(fresh, tmp_path):
    # An average price from a division carries up to 50 digits; the store keeps 18 decimals.
    from abidance.core.events import EquityPoint, PositionUpdate

    third = Decimal(1) / Decimal(3) * Decimal("65000")          # 21666.666...(46 digits)

    async def scenario(bus, writer, alerts):
        bus.publish(topics.POSITIONS, PositionUpdate("s1", "BTCUSDT", Decimal("0.003"), third, third / 7, -third / 9,
                                                     1_700_000_000_000_000_000))
        bus.publish(topics.EQUITY, EquityPoint(third, third, Decimal(0), third / 7, Decimal(0), Decimal("0.1"),
                                               Decimal(0), 1_700_000_000_000_000_000))
        await writer.drain()
        return alerts

    alerts = run(scenario, fresh, tmp_path)
    assert not [a for a in alerts if a.code == "store_row_rejected"], alerts
    [(avg,)] = fresh.query("SELECT avg_price FROM abidance.positions").result_rows
    assert avg == Decimal("21666.666666666666666667")           # half-even at 18 decimals
    assert count(fresh, "equity") == 1


def test_fills_a_killed_writer_held_are_written_by_the_next_one_exactly_once(fresh, tmp_path):
    """SIGKILL takes the writer's buffer with it; the journal it appended to does not."""
    async def killed(bus, writer, alerts):
        for i in range(3):
            bus.publish(topics.FILLS, fill(i))
        journal = list(writer.journal_dir.glob("*.rows"))
        assert len(journal) == 1 and count(fresh, "fills") == 0
        return journal[0], journal[0].read_bytes()

    async def never_flushes(bus, writer, alerts):
        writer._timer.cancel()                       # the batch stays in memory, as when killed mid-interval
        return await killed(bus, writer, alerts)

    path, content = run(never_flushes, fresh, tmp_path)
    assert count(fresh, "fills") == 3                # a clean stop writes it...
    path.write_bytes(content + b"\x09\x00\x00\x00[1,")     # ...a kill leaves the file, maybe cut mid-row

    async def restarted(bus, writer, alerts):
        await asyncio.sleep(0.3)
        await writer.drain()
        return writer.journal_replayed_rows

    assert run(restarted, fresh, tmp_path) == 3
    assert count(fresh, "fills") == 3                # the same batch token: ClickHouse kept one copy
    rows = fresh.query("SELECT qty, price, commission FROM abidance.fills ORDER BY trade_id").result_rows
    assert rows[0] == (Decimal("0.00153"), Decimal("65000.12"), Decimal("0.0000015"))
    assert not list((tmp_path / "spool" / "journal").glob("*.rows"))
