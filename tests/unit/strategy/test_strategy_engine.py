"""StrategyEngine: parameters checked by key, data routed to the right strategies, user code
contained (a strategy that raises is disabled, the others keep running), bad signals refused,
user strategies loaded from a folder, and each built-in's BUY then SELL on a hand-made path."""

from __future__ import annotations

import math
import textwrap

import pytest

from abidance.core import topics
from abidance.core.events import BookStatusChanged
from abidance.strategy import Param, Strategy
from abidance.strategy.builtin import BUILTINS, BollingerBreakout, BookImbalance, EmaCross, RsiReversion
from abidance.strategy.engine import StrategyEngine
from abidance.strategy.loader import StrategyLoadError, load_strategy_class
from tests.unit.node_kit import (S, SYMBOL, T0, TICK_SIZES, FakePortfolio, Recorder, bar, book, fill,
                                 new_bus_clock, ticks, trade)

ETH = "ETHUSDT"


class Probe(Strategy):
    """Records what it is given; can be told to raise or to emit a given signal."""

    params = {"n": Param(3, 1, 10, "a count"), "ratio": Param(0.5, 0.0, 1.0, "a share"),
              "mode": Param("fast", doc="how", choices=("fast", "slow"))}
    wants_book = True
    wants_trades = True

    def on_start(self):
        self.bars, self.books, self.trades, self.fills = [], [], [], []
        self.raise_on = set()

    def on_bar(self, bar):
        if "bar" in self.raise_on:
            raise RuntimeError("boom in on_bar")
        self.bars.append(bar)

    def on_book(self, book):
        self.books.append(book)

    def on_trade(self, trade):
        self.trades.append(trade)

    def on_fill(self, fill):
        self.fills.append(fill)


class Rig:
    def __init__(self, *strategies, portfolio=None):
        self.bus, self.clock = new_bus_clock()
        self.rec = Recorder(self.bus, topics.SIGNALS, topics.ALERTS)
        self.portfolio = portfolio or FakePortfolio()
        self.engine = StrategyEngine(self.bus, self.clock, list(strategies), self.portfolio, TICK_SIZES)
        self.engine.start()

    @property
    def signals(self):
        return self.rec[topics.SIGNALS]


# ---- parameters ------------------------------------------------------------------------------


def test_params_default_and_override_then_values_typed():
    s = Probe("p1", [SYMBOL], {"n": 5, "ratio": 1})
    assert (s.p.n, s.p.ratio, s.p.mode) == (5, 1.0, "fast")
    assert type(s.p.ratio) is float


@pytest.mark.parametrize("given, message", [
    ({"nope": 1}, r"^strategies\.p1\.params\.nope is not a parameter of Probe \(known: mode, n, ratio\)$"),
    ({"n": "3"}, r"^strategies\.p1\.params\.n must be int, got '3'$"),
    ({"n": True}, r"^strategies\.p1\.params\.n must be int, got True$"),
    ({"n": 2.0}, r"^strategies\.p1\.params\.n must be int, got 2\.0$"),
    ({"n": 11}, r"^strategies\.p1\.params\.n must be within \[1, 10\], got 11$"),
    ({"ratio": -0.1}, r"^strategies\.p1\.params\.ratio must be within \[0\.0, 1\.0\], got -0\.1$"),
    ({"ratio": math.nan}, r"^strategies\.p1\.params\.ratio must be finite, got nan$"),
    ({"mode": "medium"}, r"^strategies\.p1\.params\.mode must be one of 'fast', 'slow', got 'medium'$"),
])
def test_invalid_param_then_error_names_the_key(given, message):
    with pytest.raises(ValueError, match=message):
        Probe("p1", [SYMBOL], given)


def test_builtin_param_out_of_range_then_error_names_the_key():
    with pytest.raises(ValueError, match=r"strategies\.ema\.params\.fast must be within \[2, 200\], got 1"):
        EmaCross("ema", [SYMBOL], {"fast": 1})


def test_strategy_without_symbols_is_refused():
    with pytest.raises(ValueError, match="has no symbols"):
        Probe("p1", [])


# ---- routing ---------------------------------------------------------------------------------


def test_bars_go_to_strategies_of_that_symbol_and_timeframe_only():
    btc_1m, btc_5m, eth_1m = Probe("a", [SYMBOL]), Probe("b", [SYMBOL], timeframe="5m"), Probe("c", [ETH])
    rig = Rig(btc_1m, btc_5m, eth_1m)
    b1, b5, e1 = bar(100, SYMBOL, "1m"), bar(100, SYMBOL, "5m"), bar(100, ETH, "1m")
    for b in (b1, b5, e1, bar(100, "BNBUSDT", "1m")):
        rig.bus.publish(topics.BARS, b)
    assert (btc_1m.bars, btc_5m.bars, eth_1m.bars) == ([b1], [b5], [e1])


def test_trades_go_to_strategies_that_want_them_for_their_symbols():
    wants, ignores = Probe("a", [SYMBOL]), EmaCross("ema", [SYMBOL])
    rig = Rig(wants, ignores)
    t = trade("50000.00")
    rig.bus.publish(topics.TRADES, t)
    rig.bus.publish(topics.TRADES, trade("3000.00", ETH))
    assert wants.trades == [t]


def test_books_are_readable_only_while_ready():
    s = Probe("a", [SYMBOL])
    rig = Rig(s)
    rig.bus.publish(topics.BOOK_STATUS, BookStatusChanged(SYMBOL, True, "synced", T0))
    ob = book([("49999.99", "1")], [("50000.01", "1")])
    rig.bus.publish(topics.BOOKS, ob)
    assert s.books == [ob] and s.book(SYMBOL) is ob
    rig.bus.publish(topics.BOOK_STATUS, BookStatusChanged(SYMBOL, False, "gap in diffs", T0))
    assert s.book(SYMBOL) is None
    rig.bus.publish(topics.BOOKS, ob)        # ready again: the connector publishes it
    assert s.book(SYMBOL) is ob


def test_fills_go_to_the_strategy_whose_order_filled_and_an_adopted_orders_fill_to_none():
    a, b = Probe("a", [SYMBOL]), Probe("b", [SYMBOL])
    rig = Rig(a, b)
    f1 = fill("BUY", "0.001", "50000", cid="x1", strategy_id="b")
    f2 = fill("BUY", "0.001", "50000", cid="x2", strategy_id="a")
    f3 = fill("BUY", "0.001", "50000", cid="x3", strategy_id="")     # an order adopted after a restart: nobody's
    for f in (f1, f2, f3):
        rig.bus.publish(topics.FILLS, f)
    assert (a.fills, b.fills) == ([f2], [f1])


def test_strategy_reads_position_equity_and_price_through_the_engine():
    s = Probe("a", [SYMBOL])
    Rig(s, portfolio=FakePortfolio(equity="1234.5", positions={SYMBOL: "0.25"}))
    assert (str(s.position(SYMBOL)), str(s.equity())) == ("0.25", "1234.5")
    assert s.price(SYMBOL, ticks("50000.01")) == pytest.approx(50000.01)
    assert s.now_ns() == T0


# ---- user code contained -----------------------------------------------------------------------


def test_strategy_that_raises_is_disabled_with_an_alert_and_others_keep_running():
    bad, good = Probe("bad", [SYMBOL]), Probe("good", [SYMBOL])
    rig = Rig(bad, good)
    bad.raise_on.add("bar")
    rig.bus.publish(topics.BARS, bar(100, i=0))
    rig.bus.publish(topics.BARS, bar(101, i=1))
    assert len(good.bars) == 2 and bad.bars == []
    assert rig.engine.disabled == {"bad": "on_bar raised RuntimeError: boom in on_bar"}
    assert rig.engine.errors["bad"] == 1        # disabled: not called again
    [alert] = rig.rec.alerts("strategy_disabled")
    assert (alert.level, alert.source) == ("error", "strategy.bad") and "boom in on_bar" in alert.message
    rig.bus.publish(topics.FILLS, fill("BUY", "0.001", "50000", strategy_id="bad"))
    assert bad.fills == []


def test_strategy_whose_on_start_raises_is_disabled_and_never_routed():
    broken = EmaCross("ema", [SYMBOL], {"fast": 30, "slow": 26})      # fast >= slow: on_start refuses
    other = Probe("a", [SYMBOL])
    rig = Rig(broken, other)
    assert "fast (30) must be below slow (26)" in rig.engine.disabled["ema"]
    rig.bus.publish(topics.BARS, bar(100))
    assert len(other.bars) == 1 and rig.rec.alerts("strategy_disabled")


def test_disabled_strategy_runs_again_once_enabled():
    s = Probe("a", [SYMBOL])
    rig = Rig(s)
    rig.engine.disable("a", "operator")
    rig.bus.publish(topics.BARS, bar(100))
    rig.engine.enable("a")
    rig.bus.publish(topics.BARS, bar(101, i=1))
    assert [b.close for b in s.bars] == [101]


@pytest.mark.parametrize("emit, problem", [
    (lambda s: s.buy(SYMBOL, math.nan), "confidence must be a finite number in [0, 1], got nan"),
    (lambda s: s.buy(SYMBOL, 1.5), "confidence must be a finite number in [0, 1], got 1.5"),
    (lambda s: s.sell(SYMBOL, -0.1), "confidence must be a finite number in [0, 1], got -0.1"),
    (lambda s: s.buy(SYMBOL, "high"), "confidence must be a finite number in [0, 1], got 'high'"),
    (lambda s: s.buy(ETH, 0.5), "symbol 'ETHUSDT' is not one of its symbols ('BTCUSDT',)"),
    (lambda s: s.buy(SYMBOL, 0.5, price=50000.5), "price must be whole ticks >= 0, got 50000.5"),
    (lambda s: s.buy(SYMBOL, 0.5, price=-1), "price must be whole ticks >= 0, got -1"),
    (lambda s: s.buy(SYMBOL, 0.5, stop_loss=49000.5), "stop_loss must be whole ticks >= 0, got 49000.5"),
    (lambda s: s.buy(SYMBOL, 0.5, take_profit=-3), "take_profit must be whole ticks >= 0, got -3"),
    (lambda s: s.buy(SYMBOL, 0.5, trailing_bps=1.5), "trailing_bps must be whole basis points >= 0, got 1.5"),
])
def test_invalid_signal_is_refused_with_an_alert_and_the_strategy_keeps_running(emit, problem):
    s = Probe("a", [SYMBOL])
    rig = Rig(s)
    emit(s)
    assert rig.signals == [] and rig.engine.refused_signals == 1
    [alert] = rig.rec.alerts("invalid_signal")
    assert alert.level == "warning" and alert.message == f"strategy a: signal refused: {problem}"
    assert rig.engine.disabled == {}
    s.buy(SYMBOL, 0.5, price=ticks("50000.00"), stop_loss=ticks("49000.00"), reason="ok")
    [sig] = rig.signals
    assert (sig.strategy_id, sig.side, sig.confidence, sig.price, sig.reason) == ("a", "BUY", 0.5, 5_000_000, "ok")


# ---- loader ----------------------------------------------------------------------------------

USER_STRATEGY = '''
from abidance.strategy import Param, Strategy

class Breakout(Strategy):
    params = {"level": Param(100.0, 0.0, 1e9, "buy above this price")}

    def on_bar(self, bar):
        if self.price(bar.symbol, bar.close) > self.p.level and self.position(bar.symbol) == 0:
            self.buy(bar.symbol, 0.9, reason="above level")

NOT_A_STRATEGY = 42
'''


def test_user_strategy_is_loaded_from_the_folder_and_runs(tmp_path):
    (tmp_path / "my_breakout.py").write_text(USER_STRATEGY)
    cls = load_strategy_class("my_breakout:Breakout", tmp_path)
    assert issubclass(cls, Strategy) and cls.__name__ == "Breakout"
    assert load_strategy_class("my_breakout.py:Breakout", tmp_path).__name__ == "Breakout"
    s = cls("user1", [SYMBOL], {"level": 50000})
    rig = Rig(s)
    rig.bus.publish(topics.BARS, bar(ticks("49999.99")))
    rig.bus.publish(topics.BARS, bar(ticks("50000.01"), i=1))
    [sig] = rig.signals
    assert (sig.strategy_id, sig.side, sig.reason) == ("user1", "BUY", "above level")


def test_builtin_is_found_by_name():
    assert load_strategy_class("ema_cross") is EmaCross
    assert {"ema_cross", "ema_cross_c", "rsi_reversion", "bollinger_breakout", "book_imbalance"} <= set(BUILTINS)
    assert all(cls.name == name for name, cls in BUILTINS.items())


@pytest.mark.parametrize("files, spec, use_dir, message", [
    ({}, "no_such_builtin", True, r"strategy class 'no_such_builtin' is not a built-in \(bollinger_breakout, "
                                  r"book_imbalance, ema_cross, .*rsi_reversion.*\) nor 'file:ClassName'"),
    ({}, "mine:Thing", False, r"strategy class 'mine:Thing' needs node\.strategies_dir to be set"),
    ({}, "missing:Thing", True, r"strategy file .*missing\.py does not exist"),
    ({"broken.py": "def on_bar(:\n"}, "broken:Thing", True,
     r"strategy file .*broken\.py failed to load: SyntaxError"),
    ({"raises.py": "import no_such_module_xyz\n"}, "raises:Thing", True,
     r"strategy file .*raises\.py failed to load: ModuleNotFoundError: No module named 'no_such_module_xyz'"),
    ({"mod.py": USER_STRATEGY}, "mod:Missing", True, r"mod\.py has no Strategy subclass named 'Missing'"),
    ({"mod2.py": USER_STRATEGY}, "mod2:NOT_A_STRATEGY", True,
     r"mod2\.py has no Strategy subclass named 'NOT_A_STRATEGY'"),
])
def test_load_errors_name_the_file_and_the_problem(tmp_path, files, spec, use_dir, message):
    for name, text in files.items():
        (tmp_path / name).write_text(textwrap.dedent(text))
    with pytest.raises(StrategyLoadError, match=message):
        load_strategy_class(spec, tmp_path if use_dir else None)


# ---- built-in strategies on hand-made paths ----------------------------------------------------


def run_bars(strategy, closes: list[float]) -> list[tuple[int, str]]:
    """Feed closes (prices) as 1m bars; a BUY fills (position 1), a SELL empties it. Returns (bar, side)."""
    rig = Rig(strategy, portfolio=FakePortfolio())
    out = []
    for i, close in enumerate(closes):
        rig.bus.publish(topics.BARS, bar(ticks(f"{close:.2f}"), i=i))
        for sig in rig.signals[len(out):]:
            out.append((i, sig.side))
            rig.portfolio.positions[SYMBOL] = 1 if sig.side == "BUY" else 0
            assert 0.0 <= sig.confidence <= 1.0 and sig.reason
    assert not rig.engine.disabled, rig.engine.disabled
    return out


def line(start: float, end: float, n: int) -> list[float]:
    return [start + (end - start) * k / n for k in range(1, n + 1)]


def test_ema_cross_buys_the_upturn_of_a_v_and_sells_the_next_downturn():
    path = [50_000.0] + line(50_000, 49_000, 10) + line(49_000, 51_000, 20) + line(51_000, 49_500, 15)
    signals = run_bars(EmaCross("ema", [SYMBOL], {"fast": 3, "slow": 6}), path)
    assert [side for _, side in signals] == ["BUY", "SELL"]
    (buy_at, _), (sell_at, _) = signals
    assert 11 < buy_at < 31 < sell_at        # on the way up, then on the way down


def test_ema_cross_min_gap_ignores_a_shallow_cross():
    path = [50_000.0] + line(50_000, 49_990, 10) + line(49_990, 50_000, 10)
    assert run_bars(EmaCross("ema", [SYMBOL], {"fast": 3, "slow": 6, "min_gap_bps": 50.0}), path) == []


def test_rsi_reversion_buys_after_a_fall_and_sells_after_a_rise():
    path = [50_000.0] + line(50_000, 48_000, 10) + line(48_000, 52_000, 12)
    signals = run_bars(RsiReversion("rsi", [SYMBOL], {"period": 5}), path)
    assert [side for _, side in signals] == ["BUY", "SELL"]
    (buy_at, _), (sell_at, _) = signals
    assert buy_at <= 10 < sell_at


def test_bollinger_breakout_buys_the_breakout_and_sells_below_the_middle_band():
    flat = [50_000.0 + (10 if i % 2 else -10) for i in range(20)]
    path = flat + [50_300.0, 50_350.0, 50_320.0] + [49_900.0]
    signals = run_bars(BollingerBreakout("bb", [SYMBOL], {"period": 10, "k": 2.0}), path)
    assert signals == [(20, "BUY"), (23, "SELL")]


def test_book_imbalance_buys_when_bids_dominate_and_sells_when_asks_do_after_the_cooldown():
    s = BookImbalance("imb", [SYMBOL], {"depth": 3, "threshold": 0.5, "cooldown_s": 5.0})
    rig = Rig(s)
    bid_heavy = book([("49999.00", "5"), ("49998.00", "5")], [("50001.00", "0.5"), ("50002.00", "0.5")])
    ask_heavy = book([("49999.00", "0.5"), ("49998.00", "0.5")], [("50001.00", "5"), ("50002.00", "5")], update_id=2)
    rig.bus.publish(topics.BOOKS, bid_heavy)
    [buy] = rig.signals
    assert buy.side == "BUY" and buy.confidence == pytest.approx(9 / 11)
    rig.portfolio.positions[SYMBOL] = 1
    rig.bus.publish(topics.BOOKS, ask_heavy)            # within the cooldown: nothing
    rig.clock.advance(5 * S)
    rig.bus.publish(topics.BOOKS, ask_heavy)
    assert [sig.side for sig in rig.signals] == ["BUY", "SELL"]
    rig.bus.publish(topics.BOOKS, bid_heavy)            # cooldown again
    assert len(rig.signals) == 2
