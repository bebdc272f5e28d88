"""`abidance stream` runs offline against an in-process simulator and reports what it saw."""

from __future__ import annotations

import re

from abidance.cli import main


def test_stream_command_shows_ready_books_and_trades_offline(capsys):
    assert main(["stream", "--seconds", "2.5", "--symbols", "BTCUSDT"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"BTCUSDT \d+\.\d{2}/\d+\.\d{2}", out), out
    assert "summary:" in out and "reconnects 0" in out and "dropped 0" in out


def test_stream_command_refuses_an_unknown_venue(capsys):
    assert main(["stream", "--venue", "moon", "--seconds", "1"]) == 2
    assert "binance.venue 'moon' is unknown" in capsys.readouterr().err


def test_stream_command_with_user_data_subscribes_over_the_ws_api_offline(capsys):
    """docs/connector.md's `abidance stream --channels trade,depth,bookTicker --user-data`."""
    assert main(["stream", "--seconds", "2", "--symbols", "BTCUSDT", "--channels", "trade,depth,bookTicker",
                 "--user-data"]) == 0
    out = capsys.readouterr().out
    assert "WebSocket API ws://127.0.0.1:" in out and "/ws-api/v3" in out
    assert "summary:" in out and "ALERT" not in out
