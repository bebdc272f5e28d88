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
