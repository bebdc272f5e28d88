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


@pytest.mark.parametrize("bad", ["0", "-0.01", "abc", "nan", "11E23652365", "1E-999999999"])
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


def test_increment_too_large_for_int64_is_a_value_error():
    # issue 16: "1E+20" raised OverflowError; the documented error is ValueError naming the increment
    with pytest.raises(ValueError, match=r"increment '1E\+20' is too large"):
        FixedPoint("1E+20")


_LYING_LIST = """
import json
import numpy as np
from abidance._core.fixed import FixedPoint

class LyingList(list):
    def __len__(self):
        return 0

px, qty = np.zeros(2, dtype=np.int64), np.zeros(2, dtype=np.int64)
n = FixedPoint("0.01").parse_levels(FixedPoint("1"), LyingList([["1.00", "1"]] * 100_000), px, qty)
print(json.dumps([n, px.tolist(), qty.tolist()]))
"""


def test_parse_levels_refuses_a_list_subclass_that_lies_about_its_length():
    # issue 16: with bounds checks off, a list claiming to be empty wrote past the arrays (a segfault):
    # run in a child process so that a regression fails this test instead of killing the run
    import json
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _LYING_LIST], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, f"child died (rc {out.returncode}): {out.stderr[-500:]}"
    result, px, qty = json.loads(out.stdout)
    assert result < 0 and px == [0, 0] and qty == [0, 0]


def test_parse_levels_refuses_lying_levels_and_values_inside_an_exact_list():
    px, qty = np.zeros(4, dtype=np.int64), np.zeros(4, dtype=np.int64)

    class LyingPair(list):
        def __len__(self):
            return 2

    class Text(str):
        pass

    fp = FixedPoint("0.01")
    assert fp.parse_levels(FixedPoint("1"), [["1.00", "1"], LyingPair()], px, qty) == -2
    assert fp.parse_levels(FixedPoint("1"), [[Text("1.00"), "1"]], px, qty) == -1
    assert fp.parse_levels(FixedPoint("1"), (("1.00", "1"), ("2.00", "3")), px, qty) == 2
