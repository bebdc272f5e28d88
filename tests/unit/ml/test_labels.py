"""Labels: hand-computed cases, where each label's information ends, invalid rows never guessed."""

from __future__ import annotations

import numpy as np
import pytest

from abidance.ml.labels import (
    STOP_LOSS, TAKE_PROFIT, TIME_BARRIER, ForwardReturn, TripleBarrier, forward_return_labels, labeler_from_dict,
    triple_barrier_labels,
)
from tests.kit import load_candles


def test_forward_return_labels_by_hand():
    close = [100.0, 101.0, 99.0, 102.0, 102.0, 98.0]
    lab = forward_return_labels(close, horizon=2, threshold=0.005)
    # t0: 99/100-1 = -1 %; t1: 102/101-1 = +0.99 %; t2: 102/99-1 = +3 %; t3: 98/102-1 = -3.9 %
    assert lab.valid.tolist() == [True, True, True, True, False, False]
    assert lab.y.tolist() == [0, 1, 1, 0, 0, 0]
    assert lab.end.tolist() == [2, 3, 4, 5, -1, -1]
    np.testing.assert_allclose(lab.ret[:4], [-0.01, 102 / 101 - 1, 102 / 99 - 1, 98 / 102 - 1])
    assert np.isnan(lab.ret[4:]).all()


def test_forward_return_neutral_rows_dropped_when_asked():
    lab = forward_return_labels([100.0, 101.0, 99.0, 102.0, 102.0, 98.0], 2, 0.015, neutral="drop")
    # |-1 %| and |+0.99 %| are inside the band: no label; +3 % up, -3.9 % down.
    assert lab.valid.tolist() == [False, False, True, True, False, False]
    assert lab.y[2:4].tolist() == [1, 0]
    assert lab.end.tolist() == [-1, -1, 4, 5, -1, -1]


def test_forward_return_rows_touching_a_missing_price_are_invalid_not_guessed():
    lab = forward_return_labels([100.0, 101.0, 99.0, np.nan, 102.0, 98.0, 97.0], 2)
    # t1 reads close[3] (NaN), t3 starts at it: both invalid; the others are labelled.
    assert lab.valid.tolist() == [True, False, True, False, True, False, False]
    assert lab.end[lab.valid].tolist() == [2, 4, 6]


def test_triple_barrier_labels_by_hand():
    #          0      1      2      3      4      5      6
    close = [100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.5]
    high = [100.0, 101.0, 102.5, 100.0, 100.0, 100.0, 100.5]
    low = [100.0, 99.5, 100.0, 98.9, 100.0, 100.0, 100.0]
    lab = triple_barrier_labels(close, high, low, horizon=3, take_profit=0.02, stop_loss=0.01)
    # t0: barriers 102 / 99; bar 2's high 102.5 touches take profit first.
    # t1: same barriers, bar 2 again: take profit.
    # t2: bar 3's low 98.9 reaches the stop.
    # t3: nothing in bars 4..6: time barrier, close 100 -> 100.5 is up.
    # t4..t6: fewer than 3 bars ahead: invalid.
    assert lab.valid.tolist() == [True, True, True, True, False, False, False]
    assert lab.outcome[:4].tolist() == [TAKE_PROFIT, TAKE_PROFIT, STOP_LOSS, TIME_BARRIER]
    assert lab.y[:4].tolist() == [1, 1, 0, 1]
    assert lab.end.tolist() == [2, 2, 3, 6, -1, -1, -1]
    np.testing.assert_allclose(lab.ret[:4], [0.02, 0.02, -0.01, 0.005])
    dropped = triple_barrier_labels(close, high, low, 3, 0.02, 0.01, time_label="drop")
    assert dropped.valid.tolist() == [True, True, True, False, False, False, False]


def test_triple_barrier_both_barriers_in_one_bar_reads_as_the_stop():
    close = [100.0, 100.0, 100.0, 100.0]
    high = [100.0, 100.5, 103.0, 100.0]
    low = [100.0, 99.5, 98.0, 100.0]
    lab = triple_barrier_labels(close, high, low, horizon=2, take_profit=0.02, stop_loss=0.01)
    assert lab.outcome[:2].tolist() == [STOP_LOSS, STOP_LOSS]   # bar 2 spans both barriers
    assert lab.y[:2].tolist() == [0, 0] and lab.end[:2].tolist() == [2, 2]


def test_triple_barrier_with_a_missing_bar_in_the_window_is_invalid():
    close = [100.0, 100.0, 100.0, 100.0, 100.0]
    high = [100.0, 100.0, np.nan, 100.0, 100.0]
    low = [100.0, 100.0, 100.0, 100.0, 100.0]
    lab = triple_barrier_labels(close, high, low, 2, 0.02, 0.01)
    assert lab.valid.tolist() == [False, False, True, False, False]


def test_labels_on_real_candles_end_within_the_horizon_and_after_their_row():
    frame = load_candles("ETH_BTC-5m")
    for lab in (TripleBarrier(24, 0.01, 0.008).apply(frame.close, frame.high, frame.low),
                ForwardReturn(12, 0.001).apply(frame.close)):
        rows = np.flatnonzero(lab.valid)
        span = lab.end[rows] - rows
        assert len(rows) > 5000 and span.min() >= 1 and span.max() <= lab.params["horizon"]
        assert not lab.valid[-lab.params["horizon"]:].any()
        assert 0.2 < lab.y[rows].mean() < 0.8


def test_bad_label_parameters_name_the_parameter():
    with pytest.raises(ValueError, match=r"horizon must be an integer >= 1 \(bars\), got 0"):
        forward_return_labels([1.0, 2.0], 0)
    with pytest.raises(ValueError, match=r"threshold must be a number in \[0.0, 1.0\), got -0.1"):
        forward_return_labels([1.0, 2.0], 1, -0.1)
    with pytest.raises(ValueError, match=r"stop_loss must be a number in \(0.0, 1.0\), got 1.5"):
        triple_barrier_labels([1.0] * 3, [1.0] * 3, [1.0] * 3, 1, 0.01, 1.5)
    with pytest.raises(ValueError, match=r"differ in length"):
        triple_barrier_labels([1.0] * 3, [1.0] * 2, [1.0] * 3, 1, 0.01, 0.01)
    with pytest.raises(ValueError, match=r"neutral must be 'down' or 'drop'"):
        forward_return_labels([1.0, 2.0], 1, neutral="flat")


def test_label_specs_round_trip_through_dicts():
    for spec in (ForwardReturn(6, 0.002, "drop"), TripleBarrier(12, 0.02, 0.01, "drop")):
        assert labeler_from_dict(spec.to_dict()) == spec
    with pytest.raises(ValueError, match=r"kind in"):
        labeler_from_dict({"kind": "nope"})
    with pytest.raises(ValueError, match=r"unexpected keyword"):
        labeler_from_dict({"kind": "forward_return", "horizn": 3})
