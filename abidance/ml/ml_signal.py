"""A scikit-learn model as a strategy: buy when p(up) is high enough, sell when it is low.

The model file (abidance.ml.models.save_model) carries its feature spec, so the strategy
computes exactly the features it was trained on (abidance.ml.features.StreamingFeatures,
the training code's own definition) from each closed bar. The signal's confidence is the
calibrated probability: p for a buy, 1 - p for a sell (1.0 for the `horizon` exit, a rule
rather than a call).

Shadow mode (`predict_only`, a parameter, or set by the node): the strategy predicts and
decides as usual but emits nothing; each would-be signal goes to `on_shadow_signal(side,
p, confidence)` (with `current_bar` set to the bar behind it; `confidence` is what the live
signal would carry), whose default keeps it in `shadow_signals` as a ShadowCall (the node's
deployment publishes it as the ShadowSignal event, abidance/core/events.py). A virtual
position stands in for the real one, so would-be sells follow would-be buys.

The model file is read once (`load()`): the node's deployment may load it before `on_start`
to look it up in the model registry by its hash, and the strategy then runs that model.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from abidance.ml.features import StreamingFeatures
from abidance.ml.models import load_model
from abidance.strategy.base import Param, Strategy

SHADOW_KEEP = 10_000        # would-be signals kept in memory by the default hook


@dataclass(frozen=True, slots=True)
class ShadowCall:
    """A would-be signal kept by the strategy itself (not the bus's ShadowSignal event)."""

    ts_event: int
    symbol: str
    side: str
    p_up: float
    confidence: float       # what the live signal would carry (p, 1 - p, or 1.0 for the horizon exit)
    reason: str


class MLSignal(Strategy):
    name = "ml_signal"
    params = {
        "model_path": Param("", doc="model file written by abidance.ml.models.save_model (required)"),
        "model_sha256": Param("", doc="the file's expected sha256; a file that differs is refused (empty: unchecked)"),
        "min_confidence": Param(0.6, 0.5, 1.0, "buy when p(up) >= this; sell a holding when p(up) <= 1 - this"),
        "horizon": Param(0, 0, 1440, "sell a holding after this many bars (the label horizon); 0: only on p(up)"),
        "predict_only": Param(False, doc="shadow mode: predict and record what it would do, never trade"),
    }

    def __init__(self, strategy_id: str, symbols, params: dict | None = None, timeframe: str | None = None):
        super().__init__(strategy_id, symbols, params, timeframe)
        self.predict_only: bool = self.p.predict_only
        self.shadow_signals: deque[ShadowCall] = deque(maxlen=SHADOW_KEEP)
        self.current_bar = None         # the bar behind the signal being decided
        self._reason = ""               # and why
        self.model = None
        self.last_p: dict[str, float] = {}                       # symbol -> latest p(up)
        self.held_bars = {s: 0 for s in self.traded_symbols}     # bars the position has been held
        self.shadow_held = {s: False for s in self.traded_symbols}   # the virtual position of shadow mode

    def load(self):
        """The model (a LoadedModel with its sha256), read and checked once."""
        if self.model is None:
            if not self.p.model_path:
                raise ValueError(f"strategies.{self.id}.params.model_path is required (a file from save_model)")
            self.model = load_model(self.p.model_path, self.p.model_sha256 or None)
        return self.model

    def on_start(self) -> None:
        self.features = {s: StreamingFeatures(self.load().spec) for s in self.traded_symbols}

    # ---- hooks for the node and subclasses ---------------------------------------------

    def on_features(self, symbol: str, bar, x) -> None:
        """Each warm feature vector, before the prediction (recording, drift checks)."""

    def on_shadow_signal(self, side: str, p: float, confidence: float) -> None:
        """What the strategy would have done in shadow mode; `current_bar` is the bar behind it."""
        bar = self.current_bar
        self.shadow_signals.append(ShadowCall(bar.close_time, bar.symbol, side, p, confidence, self._reason))

    # ---- the strategy ------------------------------------------------------------------

    def _holding(self, symbol: str) -> bool:
        return self.shadow_held[symbol] if self.predict_only else self.position(symbol) > 0

    def on_bar(self, bar) -> None:
        symbol = bar.symbol
        self.current_bar = bar
        x = self.features[symbol].update(self.price(symbol, bar.close), self.price(symbol, bar.high),
                                         self.price(symbol, bar.low), float(bar.volume))
        if x is None:
            return
        self.on_features(symbol, bar, x)
        p = self.model.predict_up(x)
        self.last_p[symbol] = p
        held = self._holding(symbol)
        self.held_bars[symbol] = self.held_bars[symbol] + 1 if held else 0
        conf = self.p.min_confidence
        if not held and p >= conf:
            self._act("BUY", bar, p, f"p(up) {p:.3f} >= {conf:g}")
        elif held and p <= 1.0 - conf:
            self._act("SELL", bar, p, f"p(up) {p:.3f} <= {1.0 - conf:g}")
        elif held and self.p.horizon and self.held_bars[symbol] >= self.p.horizon:
            # A rule exit, not a model call: full confidence, so no confidence floor holds it back.
            self._act("SELL", bar, p, f"held {self.held_bars[symbol]} bars (horizon {self.p.horizon})", 1.0)

    def _act(self, side: str, bar, p: float, reason: str, confidence: float | None = None) -> None:
        if confidence is None:
            confidence = p if side == "BUY" else 1.0 - p
        if self.predict_only:
            self.shadow_held[bar.symbol] = side == "BUY"
            self._reason = reason
            self.on_shadow_signal(side, p, confidence)
        elif side == "BUY":
            self.buy(bar.symbol, confidence, reason=reason)
        else:
            self.sell(bar.symbol, confidence, reason=reason)
