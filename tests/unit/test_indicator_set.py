"""IndicatorSet: one call updates a strategy's indicators exactly as separate calls would."""

import math

import numpy as np
import pytest

from abidance._core import indicators as cy
from abidance._core.fused import IndicatorSet


def five():
    return [cy.EMA(12), cy.EMA(26), cy.RSI(14), cy.ATR(14), cy.OBV()]


def walk(n=600, seed=3):
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.002, n)))
    wick = np.abs(rng.normal(0, 0.001, n)) * close
    return close + wick, close - wick, close, rng.uniform(1, 50, n)


def test_a_bar_set_gives_bit_for_bit_what_separate_calls_give():
    fused, alone = IndicatorSet(five()), five()
    for h, lo, c, v in zip(*walk()):
        got = fused.update_bar(h, lo, c, v)
        want = (alone[0].update(c), alone[1].update(c), alone[2].update(c), alone[3].update(h, lo, c),
                alone[4].update(c, v))
        assert len(got) == 5
        assert all((g == w) or (math.isnan(g) and math.isnan(w)) for g, w in zip(got, want)), (got, want)
    assert not math.isnan(got[2])          # warmed up: the comparison covered real values


def test_a_close_set_updates_from_one_value_like_separate_calls():
    kinds = lambda: [cy.SMA(5), cy.WMA(5), cy.RollingStd(5), cy.BollingerBands(5, 2.0, 2.0), cy.MACD(),  # noqa: E731
                     cy.RollingMin(5), cy.RollingMax(5), cy.ROC(3), cy.ZScore(5)]
    fused, alone = IndicatorSet(kinds()), kinds()
    for c in walk(200)[2]:
        got = fused.update(c)
        want = tuple(ind.update(c) for ind in alone)
        assert all((g == w) or (math.isnan(g) and math.isnan(w)) for g, w in zip(got, want)), (got, want)


def test_a_bad_bar_is_refused_naming_it_and_changes_nothing():
    fused = IndicatorSet(five())
    fused.update_bar(101.0, 99.0, 100.0, 5.0)
    before = [ind.value for ind in fused.indicators]
    with pytest.raises(ValueError, match="high 98.0, low 99.0"):
        fused.update_bar(98.0, 99.0, 100.0, 5.0)
    with pytest.raises(ValueError, match="volume"):
        fused.update_bar(101.0, 99.0, 100.0, float("nan"))
    with pytest.raises(ValueError, match="finite"):
        IndicatorSet([cy.EMA(3)]).update(float("inf"))
    after = [ind.value for ind in fused.indicators]
    assert [a == b or (math.isnan(a) and math.isnan(b)) for a, b in zip(before, after)] == [True] * 5
    assert fused.indicators[4].count == 1


def test_what_it_cannot_update_is_refused_at_construction():
    with pytest.raises(ValueError, match="SessionVWAP is not a streaming indicator it can update"):
        IndicatorSet([cy.EMA(3), cy.SessionVWAP()])
    with pytest.raises(ValueError, match="1 to 32"):
        IndicatorSet([])
    with pytest.raises(ValueError, match="use update_bar"):
        IndicatorSet([cy.EMA(3), cy.ATR(3)]).update(100.0)
