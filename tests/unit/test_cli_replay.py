"""`abidance replay`, the README's main job before the trading node exists."""

import io
import subprocess
import sys

from abidance.replay import replay_candles, replay_synthetic
from tests.kit import shared_data


def test_synthetic_replay_keeps_the_book_consistent_and_warms_indicators():
    out = io.StringIO()
    stats = replay_synthetic(out, bars=35, bar_seconds=6, seed=5)
    text = out.getvalue()
    assert stats.bars == 35 and stats.resyncs == 0
    assert stats.levels > 0
    last = text.strip().splitlines()[-2]
    assert "warming" not in last, last            # MACD(12,26,9) is ready after 34 bars
    assert "book ready" in text


def test_candle_replay_on_real_data():
    out = io.StringIO()
    stats = replay_candles(shared_data("market", "XRP_ETH-1m.feather"), out, limit=3)
    assert stats.bars == 2469
    lines = out.getvalue().strip().splitlines()
    assert len(lines) == 4 and all("RSI14" in line and "warming" not in line for line in lines[1:])


def test_cli_entry_point_runs():
    proc = subprocess.run([sys.executable, "-m", "abidance.cli", "replay", "--bars", "2", "--bar-seconds", "1"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "done:" in proc.stdout
