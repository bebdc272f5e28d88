"""Labels defined ahead of time, each with the index where its information ends.

A label at bar t looks at bars t+1 .. end[t]; `end` is what purging needs (a training row
whose window [t, end[t]] overlaps a test window leaks the test's future into training).
Rows without enough future, or with non-finite prices in their window, are invalid
(`valid` False, `end` -1): they are dropped, never guessed.

forward return  y = 1 when close[t+h] / close[t] - 1 > threshold, else 0; with
                neutral="drop" the rows whose |return| <= threshold are invalid instead.
triple barrier  from close[t]: take profit at close*(1+tp) (touched when a later high
                reaches it), stop loss at close*(1-sl) (a later low reaches it), time
                barrier h bars ahead. y = 1 when take profit is touched first; 0 when
                the stop is (also when both fall in the same bar: the order inside a bar
                is unknown, so the cautious reading); at the time barrier y = 1 when the
                close-to-close return is > 0, or the row is invalid with time_label="drop".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

# Outcome codes of the triple barrier.
TAKE_PROFIT, TIME_BARRIER, STOP_LOSS = 1, 0, -1


@dataclass(frozen=True, eq=False)
class Labels:
    y: np.ndarray           # int8, 1 = up; 0 where invalid
    valid: np.ndarray       # bool
    end: np.ndarray         # int64, last bar index the label reads; -1 where invalid
    ret: np.ndarray         # float64, the return behind the label; NaN where invalid
    outcome: np.ndarray     # int8: triple barrier TAKE_PROFIT/TIME_BARRIER/STOP_LOSS; forward: sign of ret
    params: dict = field(default_factory=dict)


def _series(who: str, name: str, values) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{who}: {name} must be one-dimensional, got shape {arr.shape}")
    return arr


def _horizon(who: str, horizon) -> int:
    if isinstance(horizon, bool) or not isinstance(horizon, (int, np.integer)) or horizon < 1:
        raise ValueError(f"{who}: horizon must be an integer >= 1 (bars), got {horizon!r}")
    return int(horizon)


def _fraction(who: str, name: str, value, low: float, high: float, low_open: bool) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > low if low_open else value >= low) and value < high
    if not ok:
        bracket = "(" if low_open else "["
        raise ValueError(f"{who}: {name} must be a number in {bracket}{low}, {high}), got {value!r}")
    return float(value)


def forward_return_labels(close, horizon: int, threshold: float = 0.0, neutral: str = "down") -> Labels:
    """Up/down over `horizon` bars beyond `threshold` (a return, 0.002 = 0.2 %)."""
    who = "forward_return_labels"
    close = _series(who, "close", close)
    h = _horizon(who, horizon)
    threshold = _fraction(who, "threshold", threshold, 0.0, 1.0, False)
    if neutral not in ("down", "drop"):
        raise ValueError(f"{who}: neutral must be 'down' or 'drop', got {neutral!r}")
    n = len(close)
    ret = np.full(n, np.nan)
    if n > h:
        with np.errstate(invalid="ignore", divide="ignore"):
            entry, exit_ = close[:-h], close[h:]
            ok = np.isfinite(entry) & np.isfinite(exit_) & (entry > 0) & (exit_ > 0)
            ret[:-h] = np.where(ok, exit_ / np.where(ok, entry, 1.0) - 1.0, np.nan)
    valid = np.isfinite(ret)
    up = valid & (ret > threshold)
    if neutral == "drop":
        valid &= up | (ret < -threshold)
    end = np.where(valid, np.arange(n, dtype=np.int64) + h, -1)
    outcome = np.where(valid, np.sign(np.nan_to_num(ret)), 0).astype(np.int8)
    return Labels(up.astype(np.int8) * valid, valid, end, np.where(valid, ret, np.nan), outcome,
                  {"kind": "forward_return", "horizon": h, "threshold": threshold, "neutral": neutral})


def triple_barrier_labels(close, high, low, horizon: int, take_profit: float, stop_loss: float,
                          time_label: str = "sign") -> Labels:
    """Which of take profit / stop loss / time (`horizon` bars) is reached first."""
    who = "triple_barrier_labels"
    close, high, low = (_series(who, name, v) for name, v in (("close", close), ("high", high), ("low", low)))
    if not len(close) == len(high) == len(low):
        raise ValueError(f"{who}: close, high and low differ in length ({len(close)}, {len(high)}, {len(low)})")
    h = _horizon(who, horizon)
    tp = _fraction(who, "take_profit", take_profit, 0.0, math.inf, True)
    sl = _fraction(who, "stop_loss", stop_loss, 0.0, 1.0, True)
    if time_label not in ("sign", "drop"):
        raise ValueError(f"{who}: time_label must be 'sign' or 'drop', got {time_label!r}")
    n = len(close)
    y = np.zeros(n, dtype=np.int8)
    valid = np.zeros(n, dtype=bool)
    end = np.full(n, -1, dtype=np.int64)
    ret = np.full(n, np.nan)
    outcome = np.zeros(n, dtype=np.int8)
    m = n - h                       # rows with a full window ahead
    params = {"kind": "triple_barrier", "horizon": h, "take_profit": tp, "stop_loss": sl, "time_label": time_label}
    if m <= 0:
        return Labels(y, valid, end, ret, outcome, params)
    entry = close[:m]
    hi = sliding_window_view(high[1:], h)[:m]          # row t: bars t+1 .. t+h
    lo = sliding_window_view(low[1:], h)[:m]
    exit_close = close[h:]
    with np.errstate(invalid="ignore"):
        ok = (np.isfinite(entry) & (entry > 0) & np.isfinite(hi).all(axis=1) & np.isfinite(lo).all(axis=1)
              & np.isfinite(exit_close))
        up_hit = hi >= (entry * (1.0 + tp))[:, None]
        dn_hit = lo <= (entry * (1.0 - sl))[:, None]
    never = h                                           # "not touched" sorts after every bar
    first_up = np.where(up_hit.any(axis=1), up_hit.argmax(axis=1), never)
    first_dn = np.where(dn_hit.any(axis=1), dn_hit.argmax(axis=1), never)
    stop = ok & (first_dn < never) & (first_dn <= first_up)
    take = ok & (first_up < never) & ~stop
    timed = ok & ~stop & ~take
    with np.errstate(invalid="ignore", divide="ignore"):
        time_ret = exit_close / entry - 1.0
    rows = np.arange(m, dtype=np.int64)
    o = outcome[:m]
    o[take], o[stop] = TAKE_PROFIT, STOP_LOSS
    r = ret[:m]
    r[take], r[stop], r[timed] = tp, -sl, time_ret[timed]
    e = end[:m]
    e[take] = rows[take] + 1 + first_up[take]
    e[stop] = rows[stop] + 1 + first_dn[stop]
    e[timed] = rows[timed] + h
    yy = y[:m]
    yy[take] = 1
    yy[timed] = time_ret[timed] > 0
    v = valid[:m]
    v[:] = take | stop | (timed if time_label == "sign" else False)
    e[~v], r[~v], yy[~v], o[~v] = -1, np.nan, 0, 0
    return Labels(y, valid, end, ret, outcome, params)


@dataclass(frozen=True)
class ForwardReturn:
    """Forward-return labels as a serialisable spec (for datasets and the registry)."""

    horizon: int = 12
    threshold: float = 0.0
    neutral: str = "down"

    def apply(self, close, high=None, low=None) -> Labels:
        return forward_return_labels(close, self.horizon, self.threshold, self.neutral)

    def to_dict(self) -> dict:
        return {"kind": "forward_return", "horizon": self.horizon, "threshold": self.threshold,
                "neutral": self.neutral}


@dataclass(frozen=True)
class TripleBarrier:
    """Triple-barrier labels as a serialisable spec."""

    horizon: int = 24
    take_profit: float = 0.01
    stop_loss: float = 0.01
    time_label: str = "sign"

    def apply(self, close, high, low) -> Labels:
        return triple_barrier_labels(close, high, low, self.horizon, self.take_profit, self.stop_loss,
                                     self.time_label)

    def to_dict(self) -> dict:
        return {"kind": "triple_barrier", "horizon": self.horizon, "take_profit": self.take_profit,
                "stop_loss": self.stop_loss, "time_label": self.time_label}


def labeler_from_dict(data: dict):
    """The inverse of `to_dict` on ForwardReturn / TripleBarrier."""
    kinds = {"forward_return": ForwardReturn, "triple_barrier": TripleBarrier}
    if not isinstance(data, dict) or data.get("kind") not in kinds:
        raise ValueError(f"label spec must be a dict with kind in {sorted(kinds)}, got {data!r}")
    args = {k: v for k, v in data.items() if k != "kind"}
    cls = kinds[data["kind"]]
    try:
        return cls(**args)
    except TypeError as exc:
        raise ValueError(f"label spec {data!r}: {exc}") from None
