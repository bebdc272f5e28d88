"""RingBuffer: exact window over power-of-two storage, checked against collections.deque."""

import math
from collections import deque

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from abidance._core.ringbuf import RingBuffer


def test_push_while_filling_returns_nan_then_the_evicted_value():
    rb = RingBuffer(3)
    assert [math.isnan(rb.push(v)) for v in (1.0, 2.0, 3.0)] == [True, True, True]
    assert rb.push(4.0) == 1.0
    assert rb.push(5.0) == 2.0


def test_capacity_is_the_exact_window_not_the_power_of_two_storage():
    rb = RingBuffer(5)          # stored in 8 slots
    for v in range(1, 6):
        rb.push(float(v))
    assert rb.full and rb.count == 5 and rb.capacity == 5 and len(rb) == 5
    assert rb.push(6.0) == 1.0
    assert rb.to_array().tolist() == [2.0, 3.0, 4.0, 5.0, 6.0]


def test_get_zero_is_newest_and_count_minus_one_is_oldest():
    rb = RingBuffer(4)
    for v in (10.0, 20.0, 30.0):
        rb.push(v)
    assert rb.get(0) == rb.newest == 30.0
    assert rb.get(2) == rb.oldest == 10.0


@pytest.mark.parametrize("index", [-1, 3, 100])
def test_get_when_index_out_of_range_then_index_error(index):
    rb = RingBuffer(4)
    for v in (1.0, 2.0, 3.0):
        rb.push(v)
    with pytest.raises(IndexError, match=str(index)):
        rb.get(index)


def test_newest_and_oldest_when_empty_then_index_error():
    rb = RingBuffer(2)
    with pytest.raises(IndexError):
        rb.newest
    with pytest.raises(IndexError):
        rb.oldest


@pytest.mark.parametrize("capacity", [1, 2, 7, 8, 9, 1000])
def test_wraparound_after_many_pushes_matches_deque(capacity):
    rb = RingBuffer(capacity)
    ref = deque(maxlen=capacity)
    rng = np.random.default_rng(capacity)
    for i, v in enumerate(rng.normal(size=50_000)):
        evicted = rb.push(float(v))
        expected = ref[0] if len(ref) == capacity else math.nan
        ref.append(float(v))
        assert evicted == expected or (math.isnan(evicted) and math.isnan(expected))
        if i % 997 == 0:
            assert rb.to_array().tolist() == list(ref)
    assert rb.to_array().tolist() == list(ref)
    assert [rb.get(i) for i in range(rb.count)] == list(reversed(ref))


def test_clear_empties_and_the_buffer_refills_from_scratch():
    rb = RingBuffer(3)
    for v in range(10):
        rb.push(float(v))
    rb.clear()
    assert rb.count == 0 and not rb.full and rb.to_array().size == 0
    assert math.isnan(rb.push(1.0))
    assert rb.to_array().tolist() == [1.0]


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_push_when_non_finite_then_value_error_naming_it(bad):
    rb = RingBuffer(3)
    with pytest.raises(ValueError, match=rf"RingBuffer.push: non-finite value {bad!r}"):
        rb.push(bad)
    assert rb.count == 0


@pytest.mark.parametrize("capacity", [0, -5])
def test_capacity_below_one_is_rejected(capacity):
    with pytest.raises(ValueError, match=str(capacity)):
        RingBuffer(capacity)


@settings(max_examples=200, deadline=None)
@given(capacity=st.integers(1, 70),
       values=st.lists(st.floats(-1e12, 1e12, allow_nan=False), max_size=300))
def test_any_sequence_matches_deque(capacity, values):
    rb = RingBuffer(capacity)
    ref = deque(maxlen=capacity)
    for v in values:
        expected = ref[0] if len(ref) == capacity else None
        got = rb.push(v)
        assert (math.isnan(got) and expected is None) or got == expected
        ref.append(v)
    assert rb.to_array().tolist() == list(ref)
    assert rb.count == len(ref) and rb.full == (len(ref) == capacity)
