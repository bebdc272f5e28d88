"""The feature module: streaming equals batch to the bit on real candles; the documented formulas."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from abidance.backtest.data import bars_from_frame
from abidance.backtest.engine import sim_instruments
from abidance.ml.dataset import market_arrays_from_bars
from abidance.ml.features import FeatureSpec, StreamingFeatures, batch_features
from tests.kit import load_candles


def _stream(spec, close, high, low, volume) -> np.ndarray:
    feats = StreamingFeatures(spec)
    rows = []
    for c, h, lo, v in zip(close, high, low, volume):
        x = feats.update(c, h, lo, v)
        rows.append(np.full(len(spec.names), np.nan) if x is None else x)
    return np.array(rows)


@pytest.mark.parametrize("candles", ["ETH_BTC-5m", "LTC_BTC-5m", "XRP_ETH-1m"])
def test_streaming_features_equal_batch_features_bit_for_bit_on_real_candles(candles):
    frame = load_candles(candles)
    spec = FeatureSpec()
    matrix, valid = batch_features(spec, frame)
    streamed = _stream(spec, frame.close.to_numpy(), frame.high.to_numpy(), frame.low.to_numpy(),
                       frame.volume.to_numpy())
    assert matrix.shape == (len(frame), len(spec.names))
    assert np.array_equal(np.isfinite(streamed).all(axis=1), valid)
    assert np.array_equal(streamed, matrix, equal_nan=True)      # same bits, NaN where not warm


def test_streaming_equals_batch_on_the_node_s_tick_prices_with_another_spec():
    # The prices a strategy sees: ticks * tick size, volume in lot steps.
    frame = load_candles("ETH_BTC-5m")
    instrument = sim_instruments()["ETHBTC"]
    bars = bars_from_frame(frame, "ETHBTC", "5m", instrument)
    tick = float(instrument.filters.price_fp.increment)
    arrays = market_arrays_from_bars(bars, tick)
    spec = FeatureSpec(return_horizons=(2, 6), ema_periods=(5, 30), rsi_period=7, bb_period=10, bb_k=1.5,
                       atr_period=5, vol_period=12, volume_period=30, macd=(5, 13, 4), range_period=50)
    matrix, valid = batch_features(spec, arrays)
    feats = StreamingFeatures(spec)
    live = []
    for b in bars:
        x = feats.update(b.close * tick, b.high * tick, b.low * tick, float(b.volume))
        live.append(np.full(len(spec.names), np.nan) if x is None else x)
    assert np.array_equal(np.array(live), matrix, equal_nan=True)
    assert valid.sum() == len(bars) - 49          # range_period 50: first full window at bar 49


def test_warm_up_ends_with_the_slowest_indicator_and_every_warm_row_is_finite():
    frame = load_candles("ETH_BTC-5m")
    matrix, valid = batch_features(FeatureSpec(), frame)
    # Defaults: EMA(48) is the slowest, first ready at index 47 (TA-Lib seeding).
    assert not valid[:47].any() and valid[47:].all()
    assert np.isfinite(matrix[valid]).all() and np.isnan(matrix[~valid]).all()


def test_features_follow_their_documented_formulas():
    frame = load_candles("LTC_BTC-5m")
    spec = FeatureSpec()
    matrix, valid = batch_features(spec, frame)
    got = pd.DataFrame(matrix, columns=spec.names)[valid]
    close, high, low, volume = frame.close, frame.high, frame.low, frame.volume
    ret1 = close / close.shift(1) - 1
    mid, sd = close.rolling(20).mean(), close.rolling(20).std(ddof=0)
    upper, lower = mid + 2 * sd, mid - 2 * sd
    lo, hi = low.rolling(20).min(), high.rolling(20).max()
    vz = ((volume - volume.rolling(20).mean()) / volume.rolling(20).std(ddof=0)).clip(-10, 10)
    expected = {
        "ret_1": ret1, "ret_12": close / close.shift(12) - 1,
        "bb_pctb_20": (close - lower) / (upper - lower) - 0.5, "bb_width_20": (upper - lower) / mid,
        "vol_20": ret1.rolling(20).std(ddof=0), "volume_z_20": vz,
        "range_pos_20": (close - lo) / (hi - lo) - 0.5, "hl_range": (high - low) / close,
    }
    for name, series in expected.items():
        np.testing.assert_allclose(got[name], series[valid], rtol=1e-7, atol=1e-12, err_msg=name)
    assert got["rsi_14"].between(-0.5, 0.5).all()


def test_features_are_scale_free():
    frame = load_candles("ETH_BTC-5m")
    base, valid = batch_features(None, frame)
    scaled = frame.assign(open=frame.open * 1000, high=frame.high * 1000, low=frame.low * 1000,
                          close=frame.close * 1000, volume=frame.volume * 7)
    again, valid2 = batch_features(None, scaled)
    assert np.array_equal(valid, valid2)
    np.testing.assert_allclose(again[valid], base[valid], rtol=1e-8, atol=1e-12)


def test_a_refused_bar_names_its_values_and_leaves_the_streaming_state_untouched():
    frame = load_candles("ETH_BTC-5m").iloc[:300]
    rows = list(zip(frame.close, frame.high, frame.low, frame.volume))
    clean, dirty = StreamingFeatures(), StreamingFeatures()
    for i, row in enumerate(rows):
        if i == 150:
            with pytest.raises(ValueError, match=r"close=nan"):
                dirty.update(float("nan"), row[1], row[2], row[3])
            with pytest.raises(ValueError, match=r"low <= high"):
                dirty.update(row[0], 1.0, 2.0, row[3])
            with pytest.raises(ValueError, match=r"volume=-1.0"):
                dirty.update(*row[:3], -1.0)
        a, b = clean.update(*row), dirty.update(*row)
        assert (a is None and b is None) or np.array_equal(a, b)
    bad = frame.assign(low=frame.low.where(frame.index != 200, 0.0))
    with pytest.raises(ValueError, match=r"invalid bar at row 200"):
        batch_features(None, bad)
    with pytest.raises(ValueError, match=r"missing column\(s\) volume"):
        batch_features(None, frame[["close", "high", "low"]])


def test_feature_spec_round_trips_through_json_and_names_what_is_wrong():
    spec = FeatureSpec(return_horizons=[1, 5], macd=[3, 10, 4])
    data = json.loads(json.dumps(spec.to_dict()))
    assert FeatureSpec.from_dict(data) == spec
    assert spec.names[:2] == ("ret_1", "ret_5") and len(spec.names) == 13
    with pytest.raises(ValueError, match=r"'rsi' is unknown"):
        FeatureSpec.from_dict({**data, "rsi": 3})
    with pytest.raises(ValueError, match=r"format 'abidance.features/99'"):
        FeatureSpec.from_dict({**data, "format": "abidance.features/99"})
    with pytest.raises(ValueError, match=r"FeatureSpec.rsi_period must be an integer >= 1, got 0"):
        FeatureSpec(rsi_period=0)
    with pytest.raises(ValueError, match=r"slow \(3\) must be greater than fast \(5\)"):
        FeatureSpec(macd=(5, 3, 2))
    with pytest.raises(ValueError, match=r"without repeats"):
        FeatureSpec(ema_periods=(5, 5))
