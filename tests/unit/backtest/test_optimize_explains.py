"""`abidance optimize` explains itself (issue 18: it picked as best a trial with 1 fill and 0 round
trips, pruned 9 of 10 trials without saying why, and printed every out-of-sample Sharpe of a
walk-forward as "-" with no reason)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from abidance.backtest.data import bars_from_frame
from abidance.backtest.engine import sim_instruments
from abidance.backtest.optimize import RunSettings, format_pruned, format_walk_forward, optimize, walk_forward
from abidance.config import parse_config
from tests.kit import load_candles
from tests.unit.backtest.kit import research_config

pytest.importorskip("optuna")

STRATEGY = '''
from abidance.strategy import Param, Strategy


class OnceOrMany(Strategy):
    """k = 1: buys on its first bar and holds (one fill, no round trip); k = 2: buys every 100 bars and
    sells 50 bars later."""

    params = {"k": Param(1, 1, 2, doc="1: buy once and hold; 2: in and out every 100 bars")}

    def on_start(self):
        self.n = 0

    def on_bar(self, bar):
        self.n += 1
        if self.p.k == 1:
            if self.n == 1:
                self.buy(bar.symbol, 1.0, reason="once")
        elif self.n % 100 == 1:
            self.buy(bar.symbol, 1.0, reason="in")
        elif self.n % 100 == 51:
            self.sell(bar.symbol, 1.0, reason="out")
'''


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("explain")
    (tmp / "explain_strategies.py").write_text(STRATEGY)
    config = parse_config(research_config(tmp, "explain_strategies:OnceOrMany"), tmp, env={})
    instruments = sim_instruments()
    bars = {"ETHBTC": bars_from_frame(load_candles("ETH_BTC-5m"), "ETHBTC", "5m", instruments["ETHBTC"])}
    return config, bars, instruments


def run(setup, **settings):
    config, bars, instruments = setup
    return optimize(config, "s", bars, n_trials=4, sampler="random", seed=5, instruments=instruments,
                    settings=RunSettings(balances={"BTC": Decimal(1)}, **settings))


def test_a_trial_without_a_round_trip_is_pruned_with_its_reason_and_never_best(setup):
    loose = run(setup, min_trades=0, min_round_trips=0)
    assert loose.complete == 4                # k = 1, 2, 1, 2: the buy-and-hold trials are scored too
    result = run(setup)
    kinds = result.pruned_reasons
    assert kinds["too_few_trades"][0] >= 1
    assert kinds["too_few_trades"][1] == "0 round trips < --min-round-trips 1"
    assert result.best_params == {"k": 2} and result.best_summary["round_trips"] >= 1
    assert "too few trades x" in format_pruned(kinds)


def test_walk_forward_says_why_a_figure_is_missing_and_shows_the_degradation(setup):
    config, bars, instruments = setup
    rows = walk_forward(config, "s", bars, 2000, 1500, n_trials=3, sampler="random", seed=0,
                        settings=RunSettings(balances={"BTC": Decimal(1)}, min_round_trips=20), instruments=instruments)
    assert rows
    for r in rows:
        assert (r.in_sample is None or r.out_of_sample is None) == bool(r.note), r
    text = format_walk_forward(rows, "sharpe")
    missing = [r for r in rows if r.note]
    assert missing and all(r.note in text for r in missing)
    assert "round trips < --min-round-trips 20" in text
