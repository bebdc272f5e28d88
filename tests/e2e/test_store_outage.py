"""Kill the store process while the node writes: the node carries on, spools, and after
the store is back every event is in it exactly once (counts and keys match the node's
own record)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime, timezone

import pytest

from abidance.config import to_toml
from abidance.core import topics
from abidance.exchange.sim.config import SimConfig
from tests.integration.conftest import RunningSim
from tests.integration.node_kit import RunningNode, node_config

clickhouse_connect = pytest.importorskip("clickhouse_connect")
pytest.importorskip("chdb")

BODY = """
[risk]
quote_asset = "USDT"
sizing = "fixed_quote"
fixed_quote = "20"
min_confidence = 0.0
[data]
depth = true
book_ticker = true
bar_intervals = ["1s"]
depth_snapshot_s = 0.5
[store]
url = "{url}"
flush_s = 0.2
batch_rows = 500
[[strategies]]
id = "imb"
class = "book_imbalance"
symbols = ["BTCUSDT"]
timeframe = "1s"
params = {{ depth = 5, threshold = 0.3, cooldown_s = 1.0 }}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_store(data_dir, port: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "abidance.cli", "store", "--data-dir", str(data_dir),
                             "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    line = proc.stdout.readline()
    while line and "abidance store ready" not in line:
        line = proc.stdout.readline()
    assert "abidance store ready" in line, line
    return proc


def test_store_killed_mid_write_loses_and_duplicates_nothing(tmp_path):
    port = free_port()
    store = start_store(tmp_path / "chdb", port)
    sim = RunningSim(SimConfig(seed=17))
    node = None
    try:
        cfg = node_config(sim, tmp_path / "state", BODY.format(url=f"http://127.0.0.1:{port}"))
        node = RunningNode(cfg)
        writer = node.node.store_writer
        node.wait_for(lambda: writer.written.get("trades", 0) > 20, 20, "trades in the store")

        store.send_signal(signal.SIGKILL)              # the store dies mid-stream
        store.wait(10)
        trades_before = node.run(lambda: writer.accepted["trades"])
        node.wait_for(lambda: not writer.up and writer.spooled_batches >= 3, 15, "batches spooled")
        node.wait_for(lambda: writer.accepted["trades"] > trades_before + 20, 15, "the node carrying on")
        assert node.node.risk.trading_state == "ACTIVE"

        store = start_store(tmp_path / "chdb", port)   # back, same data
        node.wait_for(lambda: writer.up and writer.stats()["spool_files"] == 0, 20, "the spool replayed")
    finally:
        if node is not None:
            node.stop()                                 # flushes the last batches
        sim.close()
    try:
        client = clickhouse_connect.get_client(host="127.0.0.1", port=port, compress=False)
        accepted = dict(writer.accepted)
        assert writer.spooled_batches >= 3 and writer.replayed_batches >= 3
        assert accepted.get("depth_snapshots", 0) > 0 and accepted.get("book_tops", 0) > 0
        for table, n in accepted.items():
            stored = client.query(f"SELECT count() FROM abidance.{table}").result_rows[0][0]
            assert stored == n, (table, stored, n)
        distinct = client.query("SELECT count(), uniqExact(symbol, trade_id) FROM abidance.trades").result_rows[0]
        assert distinct[0] == distinct[1] == accepted["trades"]
        events = client.query("SELECT count(), uniqExact(event_id) FROM abidance.order_events").result_rows[0]
        assert events[0] == events[1]
    finally:
        store.send_signal(signal.SIGTERM)
        store.wait(15)


def test_kill_command_written_to_the_store_halts_the_node_within_a_second(tmp_path):
    port = free_port()
    store = start_store(tmp_path / "chdb", port)
    sim = RunningSim(SimConfig(seed=19))
    node = None
    try:
        node = RunningNode(node_config(sim, tmp_path / "state", BODY.format(url=f"http://127.0.0.1:{port}")))
        client = clickhouse_connect.get_client(host="127.0.0.1", port=port, compress=False)
        node.wait_for(lambda: node.node.commands.state.value == "RUNNING", 5, "the command poller")
        t0 = time.monotonic()
        client.command("INSERT INTO abidance.commands (ts, command_id, command, reason, author) "
                       "VALUES (now64(9), 'cmd-1', 'kill', 'test kill switch', 'dashboard')")
        node.wait_for(lambda: node.node.risk.trading_state == "HALTED", 2.0, "HALTED")
        assert time.monotonic() - t0 < 1.0
        halted = [s for s in node.events[topics.TRADING_STATE] if s.state == "HALTED"]
        assert halted and "cmd-1" in halted[-1].reason and halted[-1].source == "kill_switch"
        time.sleep(0.8)                                 # handled once, not on every poll
        assert node.node.commands.handled == 1
    finally:
        if node is not None:
            node.stop()
        sim.close()
        store.send_signal(signal.SIGTERM)
        store.wait(15)


def test_config_edits_in_the_store_apply_safe_changes_live_and_name_the_rest(tmp_path):
    port = free_port()
    store = start_store(tmp_path / "chdb", port)
    sim = RunningSim(SimConfig(seed=23))
    node = None
    try:
        node = RunningNode(node_config(sim, tmp_path / "state", BODY.format(url=f"http://127.0.0.1:{port}")))
        client = clickhouse_connect.get_client(host="127.0.0.1", port=port, compress=False)
        watch = node.node.config_watch
        node.wait_for(lambda: watch.version is not None, 5, "the config watcher's first look")
        text = to_toml(node.node.config)
        assert "max_open_orders = 10" in text and 'name = "e2e"' in text
        edited = text.replace("max_open_orders = 10", "max_open_orders = 3").replace('name = "e2e"', 'name = "e2e-2"')

        def save(version: int, body: str) -> None:
            client.insert("abidance.config_versions", [[datetime.now(timezone.utc), version, "test", body, "edit"]],
                          column_names=["ts", "version", "author", "text", "comment"])

        t0 = time.monotonic()
        save(1, edited)
        node.wait_for(lambda: node.node.risk.pre_trade.limits.max_open_orders == 3, 5, "the new limit live")
        assert time.monotonic() - t0 < 5.0
        assert watch.applied == ["risk.max_open_orders"] and watch.pending_restart == ["node.name"]
        alerts = [a for a in node.events[topics.ALERTS] if a.code == "config_applied"]
        assert alerts and "needs a restart: node.name" in alerts[-1].message

        save(2, edited.replace("max_open_orders = 3", "max_open_orders = -1"))
        node.wait_for(lambda: any(a.code == "config_invalid" for a in node.events[topics.ALERTS]), 5, "a refusal")
        refusal = next(a for a in node.events[topics.ALERTS] if a.code == "config_invalid")
        assert "risk.max_open_orders" in refusal.message
        assert node.node.risk.pre_trade.limits.max_open_orders == 3      # the bad version changed nothing
    finally:
        if node is not None:
            node.stop()
        sim.close()
        store.send_signal(signal.SIGTERM)
        store.wait(15)
