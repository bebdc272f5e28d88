"""CallOutcomes, the live labeller of a model's calls, against abidance/ml/labels.py (training's rule)."""

from __future__ import annotations

import numpy as np
import pytest

from abidance.backtest.data import bars_from_frame
from abidance.backtest.engine import sim_instruments
from abidance.ml.call_outcomes import CallOutcomes
from abidance.ml.dataset import market_arrays_from_bars
from abidance.ml.labels import ForwardReturn, TripleBarrier
from tests.kit import load_candles

BARS = 3000


@pytest.fixture(scope="module")
def eth():
    """ETH/BTC 5m prices as the node's strategy sees them (ticks x tick size)."""
    instrument = sim_instruments()["ETHBTC"]
    bars = bars_from_frame(load_candles("ETH_BTC-5m"), "ETHBTC", "5m", instrument)[:BARS]
    return market_arrays_from_bars(bars, float(instrument.filters.price_fp.increment))


def streamed(spec, arrays) -> dict[int, int | None]:
    """A call at every bar, labelled bar by bar: bar index -> its label."""
    out, live = {}, CallOutcomes(spec.to_dict())
    for t, (high, low, close) in enumerate(zip(arrays["high"], arrays["low"], arrays["close"])):
        out.update(live.bar("ETHBTC", float(high), float(low), float(close)))
        live.call("ETHBTC", float(close), t)
    return out


@pytest.mark.parametrize("spec", [
    ForwardReturn(horizon=6),
    ForwardReturn(horizon=12, threshold=0.002, neutral="drop"),
    TripleBarrier(horizon=12, take_profit=0.004, stop_loss=0.004),
    TripleBarrier(horizon=24, take_profit=0.006, stop_loss=0.003, time_label="drop"),
], ids=["forward", "forward-drop", "barrier", "barrier-drop"])
def test_every_call_gets_the_training_label(eth, spec):
    labels = spec.apply(eth["close"], eth["high"], eth["low"])
    live = streamed(spec, eth)
    full = BARS - spec.horizon                       # rows with every bar of their window
    assert all(t in live for t in range(full))       # every call is labelled within its horizon
    got = np.array([-1 if live[t] is None else live[t] for t in range(full)])
    want = np.where(labels.valid[:full], labels.y[:full], -1)
    assert np.array_equal(got, want)
    assert {0, 1} <= set(got.tolist())              # the sample has both labels...
    drops = "drop" in (spec.to_dict().get("neutral"), spec.to_dict().get("time_label"))
    assert (got == -1).any() == drops               # ...and the rows a drop rule leaves unlabelled
    if isinstance(spec, TripleBarrier):
        early = [t for t in range(full) if labels.valid[t] and labels.end[t] < t + spec.horizon]
        assert early                                 # barriers touched before the time barrier


def test_barrier_touched_first_decides_not_the_return_at_the_horizon():
    tb = CallOutcomes(TripleBarrier(horizon=3, take_profit=0.01, stop_loss=0.01).to_dict())
    fwd = CallOutcomes(ForwardReturn(horizon=3).to_dict())
    path = [(1.015, 0.999, 1.005), (1.0, 0.9895, 0.99), (0.99, 0.97, 0.98)]   # high, low, close after entry 1.0
    for live in (tb, fwd):
        live.call("X", 1.0, "up-call")
    assert tb.bar("X", *path[0]) == [("up-call", 1)]     # take profit in the first bar
    assert fwd.bar("X", *path[0]) == [] and fwd.bar("X", *path[1]) == []
    assert fwd.bar("X", *path[2]) == [("up-call", 0)]    # close to close: down
    both = CallOutcomes(TripleBarrier(horizon=3, take_profit=0.01, stop_loss=0.01).to_dict())
    both.call("X", 1.0, "c")
    assert both.bar("X", 1.02, 0.98, 1.0) == [("c", 0)]  # both barriers in one bar: the stop, as in training


def test_without_a_label_spec_the_sign_at_the_default_horizon():
    live = CallOutcomes({}, default_horizon=2)
    live.call("X", 1.0, "a")
    assert live.bar("X", 2.0, 0.5, 1.5) == [] and live.bar("X", 1.0, 1.0, 1.0) == [("a", 0)]
    assert live.pending("X") == 0


def test_a_bad_label_spec_is_refused_by_labels_own_checks():
    with pytest.raises(ValueError, match="horizon must be an integer >= 1"):
        CallOutcomes({"kind": "forward_return", "horizon": 0})
    with pytest.raises(ValueError, match="stop_loss"):
        CallOutcomes({"kind": "triple_barrier", "horizon": 5, "take_profit": 0.01, "stop_loss": 1.5})
    with pytest.raises(ValueError, match="label spec"):
        CallOutcomes({"kind": "sharpe"})
