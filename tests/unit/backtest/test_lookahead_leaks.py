"""Leaking strategies against the look-ahead check (issue 18: a strategy reading the next close from
the CSV on disk passed, 0 of 20 cuts; a leak that changes signals was missed with one cut).

Three leaks: one peeks at the engine's queue for the next bar, one reads the candle file itself,
one keeps the future in a module global that outlives the run."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from decimal import Decimal

import pytest

from abidance.backtest.data import bars_from_frame
from abidance.backtest.engine import Backtest, run_backtest, sim_instruments
from abidance.backtest.lookahead import choose_cuts, lookahead_check, signal_changes
from abidance.config import parse_config
from tests.kit import PROJECT_ROOT, load_candles, shared_data
from tests.unit.backtest.kit import research_config

LEAKS = '''
import gc
import os
import sys
import types

from abidance.strategy import Strategy


class PeekEngine(Strategy):
    """Finds the backtest running it and reads the next bar from its queue."""

    def on_start(self):
        self.bt = next(o for o in gc.get_objects() if type(o).__name__ == "Backtest"
                       and o.kernel.strategies.strategies.get(self.id) is self)

    def on_bar(self, bar):
        queue, i = self.bt._queue, self.bt._next
        if i >= len(queue):
            return
        up = queue[i].close > bar.close
        if up and self.position(bar.symbol) == 0:
            self.buy(bar.symbol, 1.0, reason="the next bar closes higher")
        elif not up and self.position(bar.symbol) > 0:
            self.sell(bar.symbol, 1.0, reason="the next bar closes lower")


class ReadTheFile(Strategy):
    """Reads the whole candle file from disk at start, then trades on the next close."""

    def on_start(self):
        import pandas as pd

        frame = pd.read_feather(os.environ["LEAK_CANDLES"])
        self.next_close = dict(zip(frame["date"].astype("int64") // 1, frame["close"].shift(-1)))

    def on_bar(self, bar):
        nxt = self.next_close.get(bar.open_time)
        if nxt is None or nxt != nxt:
            return
        up = nxt * 10 ** 5 > bar.close
        if up and self.position(bar.symbol) == 0:
            self.buy(bar.symbol, 1.0, reason="the file says up")
        elif not up and self.position(bar.symbol) > 0:
            self.sell(bar.symbol, 1.0, reason="the file says down")


# A global of a module that outlives the run (the loader re-runs this file for every backtest, so a
# global of this file alone would not): what an earlier run saw, the next run knows in advance.
SEEN = sys.modules.setdefault("_abidance_leak_state", types.ModuleType("_abidance_leak_state")).__dict__ \\
    .setdefault("closes", {})


class ModuleGlobal(Strategy):
    def on_bar(self, bar):
        SEEN[bar.open_time] = bar.close
        nxt = SEEN.get(bar.close_time)            # the next bar's close, if a run before saw it
        if nxt is None:
            return
        up = nxt > bar.close
        if up and self.position(bar.symbol) == 0:
            self.buy(bar.symbol, 1.0, reason="remembered up")
        elif not up and self.position(bar.symbol) > 0:
            self.sell(bar.symbol, 1.0, reason="remembered down")
'''


BARS = 300


@pytest.fixture
def leak(tmp_path):
    (tmp_path / "leaks.py").write_text(LEAKS)
    sys.modules.pop("_abidance_leak_state", None)
    yield lambda cls: parse_config(research_config(tmp_path, f"leaks:{cls}"), tmp_path, env={})
    sys.modules.pop("_abidance_leak_state", None)


def bars():
    frame = load_candles("ETH_BTC-5m").iloc[:BARS]
    return {"ETHBTC": bars_from_frame(frame, "ETHBTC", "5m", sim_instruments()["ETHBTC"])}


def check(config, cuts=None):
    checked: list[int] = []
    changed = asyncio.run(lookahead_check(config, bars(), cuts=cuts, checked=checked,
                                          balances={"BTC": Decimal("1")}))
    return changed, checked


def test_cuts_are_the_bars_where_a_signal_changes():
    signals = [(1, "s", "X", "BUY", 1.0), (2, "s", "X", "BUY", 1.0), (3, "s", "X", "SELL", 1.0),
               (3, "t", "X", "SELL", 1.0), (5, "s", "X", "BUY", 1.0)]
    assert signal_changes(signals) == [1, 3, 5]
    assert choose_cuts([1, 3, 5, 7, 9], None) == [1, 3, 5, 7, 9]
    assert choose_cuts([1, 3, 5, 7, 9], 3) == [1, 5, 9]


def test_a_strategy_peeking_at_the_engine_is_flagged(leak):
    changed, checked = check(leak("PeekEngine"))
    assert len(checked) > 10 and changed                     # one cut per signal change
    assert all(c.ts_event <= c.cut_ns for c in changed)


def test_a_strategy_keeping_the_future_in_a_module_global_is_flagged(leak):
    changed, checked = check(leak("ModuleGlobal"))
    assert checked and changed


def test_a_strategy_reading_the_candle_file_is_reported_by_the_audit_hook(leak, monkeypatch):
    path = shared_data("market", "ETH_BTC-5m.feather")
    monkeypatch.setenv("LEAK_CANDLES", str(path))
    config = leak("ReadTheFile")
    changed, checked = check(config)
    assert checked and not changed        # the file is whole in every run: the re-runs cannot see this
    result = asyncio.run(run_backtest(config, bars(), balances={"BTC": Decimal("1")}))
    assert result.fills
    [access] = [a for a in result.outside_access if a.target == str(path)]
    assert access.event == "open" and access.where.split(":")[0].endswith("leaks.py")


def test_an_honest_strategy_reaches_nothing_outside_the_engine(leak):
    config = parse_config(research_config(".", "ema_cross"),
                          ".", env={})
    result = asyncio.run(run_backtest(config, bars(), balances={"BTC": Decimal("1")}))
    assert result.fills and result.outside_access == []


def test_the_command_fails_the_check_and_names_the_file_read(tmp_path):
    path = shared_data("market", "ETH_BTC-5m.feather")
    (tmp_path / "leaks.py").write_text(LEAKS)
    (tmp_path / "c.toml").write_text(research_config(tmp_path, "leaks:ReadTheFile"))
    out = subprocess.run([sys.executable, "-m", "abidance.cli", "backtest", "--config", str(tmp_path / "c.toml"),
                          "--candles", f"ETHBTC={path}", "--balance", "BTC=1", "--lookahead-check", "3"],
                         cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300,
                         env={**__import__("os").environ, "LEAK_CANDLES": str(path)})
    assert out.returncode == 1, out.stdout + out.stderr
    assert f"OUTSIDE THE ENGINE: strategy code at {tmp_path / 'leaks.py'}:" in out.stderr
    assert f"open {path}" in out.stderr
    assert "0 of 3 cuts (bars where a signal changes) changed a past signal; 1 accesses outside the engine" \
        in out.stdout


def test_stepped_runs_are_watched_too_each_into_its_own_result(leak, monkeypatch):
    """start()/step()/finish(), as the RL environment steps a backtest, are watched from start to
    finish (issue 18: only run() was); two stepped side by side each keep their own record."""
    path = shared_data("market", "ETH_BTC-5m.feather")
    monkeypatch.setenv("LEAK_CANDLES", str(path))
    reader = Backtest(leak("ReadTheFile"), bars(), balances={"BTC": Decimal("1")})
    honest = Backtest(parse_config(research_config(".", "ema_cross"), ".", env={}), bars(),
                      balances={"BTC": Decimal("1")})
    reader.start()
    honest.start()
    while (reader.step(), honest.step()) != (None, None):
        pass
    stepped, clean = reader.finish(), honest.finish()
    assert any(a.target == str(path) and a.where.split(":")[0].endswith("leaks.py") for a in stepped.outside_access)
    assert clean.outside_access == []
    before = len(stepped.outside_access)
    open(path, "rb").close()                 # after finish(): nothing is watched any more
    assert len(stepped.outside_access) == before
