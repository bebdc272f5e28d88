"""A model's calls labelled as they play out, bar by bar, by the rule its training labels used.

    outcomes = CallOutcomes(record.params["labels"])      # the registered label spec
    outcomes.call("ETHBTC", close, tag)                   # a call at this bar's close
    for tag, y in outcomes.bar("ETHBTC", high, low, close):   # each later bar
        ...                                               # y: 1 up, 0 down, None no label

The rule is abidance/ml/labels.py's, for both kinds (the spec is parsed and checked by its
`labeler_from_dict`):

- forward return: at `horizon` bars, y = 1 when close / entry - 1 > threshold; with
  neutral "drop", |return| <= threshold gives no label (None).
- triple barrier: take profit (a high >= entry * (1 + take_profit)) or stop loss (a low <=
  entry * (1 - stop_loss)), whichever is touched first (both in one bar: the stop); the
  outcome is known at that bar. Neither within `horizon` bars: y = 1 when the close-to-close
  return is > 0, or no label with time_label "drop".

labels.py labels a whole series at once with numpy: ~70 us even for one 25-bar window
(measured), most of the node's 100 us per-bar budget. This streaming twin costs one compare
per open call per bar; tests/unit/ml/test_call_outcomes.py checks it against labels.py row
for row on real candles, for both kinds.
"""

from __future__ import annotations

from collections import defaultdict

from abidance.ml.labels import ForwardReturn, TripleBarrier, labeler_from_dict


class CallOutcomes:
    def __init__(self, labels: dict | None, default_horizon: int = 1):
        """`labels`: the training label spec (ForwardReturn / TripleBarrier `to_dict()`, as the
        registry keeps it in params["labels"]); empty: the sign of the return at `default_horizon`
        bars. A malformed spec is a ValueError naming it."""
        self.spec = labeler_from_dict(labels) if labels else ForwardReturn(max(1, int(default_horizon)), 0.0)
        s = self.spec
        s.apply([1.0, 1.0], [1.0, 1.0], [1.0, 1.0])       # labels.py's own checks: a bad horizon, barrier...
        self.horizon = int(s.horizon)
        self._barrier = isinstance(s, TripleBarrier)
        if self._barrier:
            self._up, self._down = 1.0 + float(s.take_profit), 1.0 - float(s.stop_loss)
            self._threshold, self._neutral_drops, self._time_drops = 0.0, False, s.time_label == "drop"
        else:
            self._up = self._down = 0.0
            self._threshold, self._neutral_drops, self._time_drops = float(s.threshold), s.neutral == "drop", False
        # symbol -> open calls [bars left, entry close, take-profit level, stop level, tag]
        self._open: dict[str, list[list]] = defaultdict(list)

    def call(self, symbol: str, close: float, tag=None) -> None:
        """A call at this bar's close; labelled from the next bar on. `tag` comes back with its label."""
        self._open[symbol].append([self.horizon, close, close * self._up, close * self._down, tag])

    def pending(self, symbol: str) -> int:
        return len(self._open.get(symbol, ()))

    def bar(self, symbol: str, high: float, low: float, close: float) -> list[tuple[object, int | None]]:
        """One more bar of `symbol`: the (tag, y) of every call it labels, oldest call first."""
        calls = self._open.get(symbol)
        if not calls:
            return []
        done, still = [], []
        for c in calls:
            c[0] -= 1
            if self._barrier and low <= c[3]:            # the stop (also when both fall in this bar)
                done.append((c[4], 0))
            elif self._barrier and high >= c[2]:
                done.append((c[4], 1))
            elif c[0] == 0:
                done.append((c[4], self._at_horizon(close / c[1] - 1.0)))
            else:
                still.append(c)
        self._open[symbol] = still
        return done

    def _at_horizon(self, ret: float) -> int | None:
        if self._time_drops:                             # triple barrier, time_label "drop"
            return None
        if ret > self._threshold:
            return 1
        if self._neutral_drops and ret >= -self._threshold:
            return None
        return 0
