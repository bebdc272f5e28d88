"""Chat control over a local Bot API: allow-listed chats get answers from the node and the store; /kill asks for
a confirmation and then goes through the dashboard's operator command path (a row in the store's `commands`
table that the node's CommandPoller acts on); a stranger gets nothing at all and is logged."""

from __future__ import annotations

import dataclasses
import logging
import time
from decimal import Decimal as D

import pytest

pytest.importorskip("chdb")

from abidance.alerts.secrets import Secret  # noqa: E402
from abidance.chat.telegram import ChatControl  # noqa: E402
from abidance.chat.view import NodeView, StoreCommands  # noqa: E402
from abidance.config.ops_sections import ChatSection  # noqa: E402
from abidance.core import topics  # noqa: E402
from abidance.core.bus import MessageBus  # noqa: E402
from abidance.core.clock import LiveClock  # noqa: E402
from abidance.core.events import Fill  # noqa: E402
from abidance.portfolio.portfolio import Portfolio  # noqa: E402
from abidance.store.client import connect  # noqa: E402
from abidance.store.commands import CommandPoller  # noqa: E402
from abidance.store.migrations import apply_migrations  # noqa: E402
from abidance.store.server import StoreServer  # noqa: E402
from abidance.store.writer import StoreWriter  # noqa: E402
from tests.integration.alerts_kit import CHAT_ID, TOKEN, FakeTelegram, alert_settings, channel_tables  # noqa: E402
from tests.integration.conftest import LoopThread  # noqa: E402
from tests.unit.node_kit import INSTRUMENTS  # noqa: E402

STRANGER = "777"


class FakeRisk:
    def __init__(self):
        self.calls = []

    def set_reducing(self, why, source):
        self.calls.append(("reduce", why))

    def resume(self, why, source):
        self.calls.append(("resume", why))


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    server = StoreServer(tmp_path_factory.mktemp("chat-store") / "data", port=0).start()
    apply_migrations(connect(server.url).command, "abidance")
    yield server
    server.stop()


@pytest.fixture()
def chat(store, tmp_path):
    tg = FakeTelegram()
    node = LoopThread("chat-node")
    bus, clock = MessageBus(), LiveClock()
    risk, kills = FakeRisk(), []
    bus.register(topics.KILL, kills.append)
    pf = Portfolio(bus, clock, "USDT", INSTRUMENTS, {"USDT": D("10000"), "BTC": D("0")})
    factory = lambda: connect(store.url, "abidance")           # noqa: E731
    writer = StoreWriter(bus, clock, factory, INSTRUMENTS, tmp_path / "spool", flush_s=0.1)
    poller = CommandPoller(bus, clock, factory, risk, interval_s=0.1)
    channel = alert_settings(channel_tables(tg)).channels[0]
    settings = dataclasses.replace(ChatSection(), enabled=True, channel="tg", allowed_chat_ids=(CHAT_ID,),
                                   poll_timeout_s=1, confirm_s=30)
    view = NodeView(lambda: "status: ACTIVE | equity 10000 USDT", pf, "USDT", factory)
    control = ChatControl(bus, clock, settings, channel, Secret(TOKEN), view, StoreCommands(factory, "abidance"))
    node.run(lambda: [c.start() for c in (pf, writer, poller, control)])
    yield tg, node, bus, control, risk, kills, writer, pf
    node.run(lambda: [c.stop() for c in (control, poller, writer, pf)])
    node.shutdown()
    tg.close()


def ask(tg, text, n_before=None, chat_id=CHAT_ID, timeout=10.0) -> str:
    before = len(tg.replies_to(chat_id)) if n_before is None else n_before
    tg.say(chat_id, text)
    tg.wait_for(lambda r: len([x for x in r if x["chat_id"] == str(chat_id)]) > before, timeout, f"reply to {text}")
    return tg.replies_to(chat_id)[-1]


def test_owner_commands_answer_from_the_node_and_the_store_and_kill_goes_through_the_command_path(chat, store,
                                                                                                 caplog):
    tg, node, bus, control, risk, kills, writer, pf = chat
    caplog.set_level(logging.WARNING, logger="abidance.chat")
    now = time.time_ns()

    def book(fill):             # as the execution engine does: booked in the account, then published
        pf.apply_fill(fill)
        bus.publish(topics.FILLS, fill)
    node.run(lambda: [book(f) for f in (
        Fill("a", "ema", "BTCUSDT", "BUY", D("0.1"), D("40000"), D("4"), "USDT", 1, False, now),
        Fill("b", "ema", "BTCUSDT", "SELL", D("0.1"), D("41000"), D("4.1"), "USDT", 2, False, now + 1))])
    node.call(writer.drain())

    # A stranger: no answer at all, logged, even for /kill confirm.
    tg.say(STRANGER, "/status")
    tg.say(STRANGER, "/kill")
    tg.say(STRANGER, "/kill confirm")
    assert "status: ACTIVE" in ask(tg, "/status")          # answered after the stranger's messages
    assert tg.replies_to(STRANGER) == [] and control.ignored == 3
    assert f"chat {STRANGER}" in caplog.text and "ignored" in caplog.text

    assert "USDT: 10091.9" in ask(tg, "/balance")           # 10000 - 4004 + 4095.9: both fills booked
    assert "No open positions" in ask(tg, "/positions")
    assert "ema: realised 91.9, fees 8.1 USDT (2 fills)" in ask(tg, "/pnl")
    assert "No fills for strategy 'rsi'" in ask(tg, "/pnl rsi")
    assert "Unknown command /frobnicate" in ask(tg, "/frobnicate")

    assert "/kill confirm" in ask(tg, "/kill")
    time.sleep(0.5)
    assert kills == []                                      # nothing happens before the confirmation
    assert "kill command written" in ask(tg, "/kill confirm")
    end = time.monotonic() + 10
    while not kills and time.monotonic() < end:
        time.sleep(0.05)
    assert len(kills) == 1 and f"by telegram:{CHAT_ID}" in kills[0]
    rows = connect(store.url).query("SELECT command, author FROM abidance.commands").result_rows
    assert ("kill", f"telegram:{CHAT_ID}") in rows
    assert "No /kill is waiting" in ask(tg, "/kill confirm")  # a confirmation is used once

    assert "reduce command written" in ask(tg, "/reduce")
    end = time.monotonic() + 10
    while not risk.calls and time.monotonic() < end:
        time.sleep(0.05)
    assert risk.calls and risk.calls[0][0] == "reduce"
    assert tg.replies_to(STRANGER) == []
