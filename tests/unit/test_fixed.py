"""Exact decimal text <-> fixed-point conversion at the edge."""

from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from abidance._core.fixed import FixedPoint


@pytest.mark.parametrize("increment,text,units", [
    ("0.01", "65000.12", 6500012), ("0.01", "65000.1200", 6500012), ("0.01", "0.01", 1),
    ("0.00001", "0.00100000", 100), ("1", "42", 42), ("0.5", "2.5", 5), ("10", "1230", 123),
    ("0.01000000", "20377.00", 2037700), ("0.01", "7", 700), ("0.01", ".5", 50), ("0.01", "0", 0),
])
def test_to_units_exact(increment, text, units):
    fp = FixedPoint(increment)
    assert fp.to_units(text) == units
    assert fp.to_units(text.encode()) == units
    assert fp.to_units(Decimal(text)) == units


@pytest.mark.parametrize("text,why", [
    ("65000.123", "more decimals"), ("-1", "negative"), ("1e5", "not a plain decimal"), ("nan", "not a plain"),
    ("inf", "not a plain"), ("", "empty"), (".", "empty"), ("1.2.3", "not a plain"), (" 1", "not a plain"),
    ("99999999999999999999", "too large"),
])
def test_to_units_rejects_with_reason_naming_value(text, why):
    with pytest.raises(ValueError, match=why) as exc:
        FixedPoint("0.01").to_units(text)
    assert repr(text) in str(exc.value)


def test_off_grid_for_non_power_of_ten_increment():
    with pytest.raises(ValueError, match="more decimals"):
        FixedPoint("0.5").to_units("2.3")


def test_binary_float_is_refused():
    with pytest.raises(ValueError, match="binary floats are not exact"):
        FixedPoint("0.01").to_units(0.1)


@pytest.mark.parametrize("bad", ["0", "-0.01", "abc", "nan"])
def test_bad_increment(bad):
    with pytest.raises(ValueError, match="increment"):
        FixedPoint(bad)


@given(st.integers(0, 10**15), st.sampled_from(["0.01", "0.00001", "1", "0.00000001", "0.1"]))
def test_round_trip(units, increment):
    fp = FixedPoint(increment)
    text = fp.to_str(units)
    assert fp.to_units(text) == units
    assert fp.to_decimal(units) == Decimal(text)


def test_parse_levels_fills_arrays_and_reports_first_bad_level():
    px, qty = FixedPoint("0.01"), FixedPoint("0.001")
    p_out, q_out = np.zeros(4, np.int64), np.zeros(4, np.int64)
    assert px.parse_levels(qty, [["20377.00", "1.770"], ["20376.90", "0.001"]], p_out, q_out) == 2
    assert p_out[:2].tolist() == [2037700, 2037690] and q_out[:2].tolist() == [1770, 1]
    assert px.parse_levels(qty, [["1.00", "1"], ["x", "1"]], p_out, q_out) == -2
    assert px.parse_levels(qty, [["1.00", "1"], [5, "1"]], p_out, q_out) == -2
    assert px.parse_levels(qty, [["1.00"]], p_out, q_out) == -1
    assert px.parse_levels(qty, [["1", "1"]] * 5, p_out, q_out) == -5   # more levels than room


def test_parse_levels_malformed_input_many_times_leaves_the_interpreter_sound():
    """Regression: a short level once corrupted memory on the error path (crash at GC)."""
    import gc

    px, qty = FixedPoint("0.01"), FixedPoint("0.001")
    p_out, q_out = np.zeros(4, np.int64), np.zeros(4, np.int64)
    for bad in ([["1.00"]], [[b"1", b"2"]], [None], [["1", 2]], [["é", "1"]], "xx"):
        for _ in range(2000):
            assert px.parse_levels(qty, bad, p_out, q_out) < 0
    gc.collect()
