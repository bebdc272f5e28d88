"""One registered model inside the node (or a backtest): shadow or live, watched for drift.

    deployment = ModelDeployment(bus, clock, strategy, record, ml, InlineRegistry(registry))

`strategy` is an ML strategy (abidance/ml/ml_signal.py, or anything with its
hooks: `predict_only`, `on_features(symbol, bar, x)`, `last_p`, `on_shadow_signal(side, p,
confidence)`, `shadow_held`) running the model of `record` (a ModelVersion of the registry).
The deployment hooks into that instance, it never replaces the strategy:

- status shadow: `predict_only` on; every would-be signal is published on SHADOW_SIGNALS (the
  store writer puts it in `shadow_signals`) with the confidence the live signal would carry;
  nothing is traded.
- status live: the strategy trades, at a confidence of at least ml.min_confidence.
- candidate or retired: predict-only, nothing recorded (a candidate is not deployed).
- drift: every warm feature vector and every prediction feeds a DriftMonitor (PSI against the
  training histograms kept with the registered version; the hit rate of the confident calls,
  labelled by the training label rule (abidance/ml/call_outcomes.py), against the
  out-of-sample hit rate). When it says so and the model is live: predict-only at once
  (before the next bar), its position sold when ml.close_on_demote, an Alert on
  topics.ALERTS, and `demote` in the registry (live -> shadow, with the reason and the
  numbers) off the event loop, retried on every poll until written. The other strategies
  are not touched: the rule-based ones keep trading.
- the registry is read every ml.registry_poll_s (live: off the loop; a read still in flight
  skips the poll), so `abidance models promote` takes effect without a restart. After a
  drift demotion only a promotion newer than it makes the model live again.

close_on_demote sells with a plain SELL signal, which the risk engine sizes as the whole
position in the symbol (abidance/risk/engine.py): the deployment assembly refuses to deploy
a model with it when another strategy trades the same symbol (abidance/ml/deployment.py).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from decimal import Decimal

from abidance.core import topics
from abidance.core.component import Component
from abidance.core.events import Alert, ShadowSignal
from abidance.ml.call_outcomes import CallOutcomes
from abidance.ml.drift import DriftMonitor, DriftVerdict
from abidance.ml.registry import HIT_RATE_KEYS, ModelVersion, metric
from abidance.strategy.base import ML_HOOKS, is_ml_strategy

log = logging.getLogger("abidance.ml.deployment")

SHADOW_SIGNALS = topics.SHADOW_SIGNALS        # recorded by the store writer (abidance/store/rows.py)


class ModelDeployment(Component):
    def __init__(self, bus, clock, strategy, record: ModelVersion, ml, link, *, poll_s: float | None = None):
        if not is_ml_strategy(strategy):
            raise ValueError(f"strategy {getattr(strategy, 'id', strategy)!r} is not an ML strategy (it needs "
                             f"{', '.join(ML_HOOKS)})")
        if not record.reference:
            raise ValueError(f"{record.label} has no drift reference (training feature histograms): register it "
                             "with reference=reference_histograms(X, names)")
        super().__init__(f"ModelDeployment[{strategy.id}]", bus, clock)
        self.strategy = strategy
        self.record = record
        self.ml = ml
        self.link = link
        self.poll_s = poll_s
        self.monitor = DriftMonitor.from_config(record.reference, metric(record.out_of_sample, HIT_RATE_KEYS), ml)
        labels = (record.params or {}).get("labels") or {}
        try:
            # Live calls labelled as training labelled its rows (no spec: the sign at the strategy's horizon).
            self.outcomes = CallOutcomes(labels, int(getattr(getattr(strategy, "p", None), "horizon", 0) or 1))
        except ValueError as exc:
            raise ValueError(f"{record.label}: its label spec cannot score live calls: {exc}") from None
        # The confident calls are counted at the threshold the out-of-sample hit rate was measured at.
        self.call_confidence = float((record.out_of_sample or {}).get("min_confidence") or ml.min_confidence)
        self.status = ""
        self.shadow_signals = 0
        self.demotions: list[DriftVerdict] = []
        self.last_verdict: DriftVerdict | None = None
        self._latch = None             # updated_at of the record a drift demotion moved away from
        self._demotion = None          # (reason, details) of a drift demotion the registry has not recorded yet
        self._writing = False          # that demotion's write is in flight
        self._reading = False          # a status read is in flight
        self._x = None                 # this bar's feature vector, once the strategy computed it
        self._held: dict[str, Decimal] = defaultdict(Decimal)  # what this strategy's own fills hold
        self._flatten = False          # after a drift demotion with close_on_demote: sell late buy fills too
        self._timer = None
        self._hooked = False

    def describe(self) -> dict:
        return {"strategy": self.strategy.id, "model": self.record.name, "version": self.record.version,
                "poll_s": self.poll_s}

    # ---- lifecycle -----------------------------------------------------------------------

    def on_start(self) -> None:
        s = self.strategy
        if not self._hooked:
            # Instance attributes shadow the class's methods: the engine's calls reach these.
            original_bar, original_features = s.on_bar, s.on_features
            original_shadow, original_fill = s.on_shadow_signal, s.on_fill

            def on_bar(bar):
                self._x = None
                original_bar(bar)
                self._after_bar(bar)

            def on_features(symbol, bar, x):
                original_features(symbol, bar, x)
                self._x = x         # watched after the strategy decided: off the signal's latency

            def on_shadow_signal(side, p, confidence):
                original_shadow(side, p, confidence)
                self._record_shadow(side, confidence)

            def on_fill(fill):
                original_fill(fill)
                self._on_fill(fill)

            s.on_bar, s.on_features, s.on_shadow_signal, s.on_fill = on_bar, on_features, on_shadow_signal, on_fill
            self._hooked = True
        if hasattr(s, "p") and getattr(s.p, "min_confidence", None) is not None:
            s.p.min_confidence = max(float(s.p.min_confidence), float(self.ml.min_confidence))
        self.apply_record(self.record)
        if self.poll_s:
            self._timer = self.clock.call_every(int(self.poll_s * 1e9), lambda now: self.refresh())

    def on_stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._demotion is not None and not self._writing:
            # A last try: the node's registry link closes after the deployments and waits for it.
            self._write_demotion()

    # ---- status --------------------------------------------------------------------------

    def refresh(self) -> None:
        """Read this version's status from the registry and apply it (a promotion made elsewhere);
        first write a drift demotion the registry has not recorded yet. A read still in flight
        (a slow store) skips this one: polls never pile up."""
        if self._demotion is not None and not self._writing:
            self._write_demotion()
        if self._reading:
            return
        self._reading = True
        name, version = self.record.name, self.record.version
        self.link.submit(lambda reg: reg.get(name, version), self._read_done, self._read_failed)

    def _read_done(self, record: ModelVersion) -> None:
        self._reading = False
        self.apply_record(record)

    def _read_failed(self, exc: Exception) -> None:
        self._reading = False
        self._registry_error(exc)

    def apply_record(self, record: ModelVersion) -> None:
        if record.status == "live" and self._latch is not None and record.updated_at <= self._latch:
            return      # the registry has not seen our drift demotion yet: stay in shadow
        if record.status == "live":
            self._latch, self._flatten, self._demotion = None, False, None
        previous, self.record, self.status = self.status, record, record.status
        self.strategy.predict_only = record.status != "live"
        if previous == "live" and record.status != "live":
            self._leave_live()          # demoted or retired by an operator
        if record.status != previous:
            log.warning("%s: %s -> %s (%s)", record.label, previous or "start", record.status, record.reason)
            if previous:
                self._alert("warning" if record.status == "live" else "info", f"model_{record.status}",
                            f"{record.label} is now {record.status}: {record.reason}")
            elif record.status in ("candidate", "retired"):
                self._alert("warning", f"model_{record.status}", f"{record.label} is {record.status}: it runs "
                            "predict-only and nothing is recorded (promote it to shadow to record it)")

    @property
    def is_live(self) -> bool:
        return self.status == "live" and not self.strategy.predict_only

    # ---- per bar -------------------------------------------------------------------------

    def _after_bar(self, bar) -> None:
        # After the strategy's signal (drift is slow: judging it costs the signal no latency); a
        # demotion takes effect from the next bar, and a buy already sent is sold when it fills.
        symbol, s = bar.symbol, self.strategy
        if self.outcomes.pending(symbol):
            for up, y in self.outcomes.bar(symbol, s.price(symbol, bar.high), s.price(symbol, bar.low),
                                           s.price(symbol, bar.close)):
                if y is not None:           # None: no training label either (a dropped row)
                    self.monitor.observe_outcome(y == (1 if up else 0))
        if self._x is None:
            return
        self.monitor.observe_features(self._x)
        verdict = self.last_verdict = self.monitor.check()
        if verdict.demote and self.is_live:
            self._demote(verdict)
        p = s.last_p.get(symbol)
        conf = self.call_confidence
        if p is not None and (p >= conf or p <= 1.0 - conf):
            # The confident calls, as training's out-of-sample hit rate counts them.
            self.outcomes.call(symbol, s.price(symbol, bar.close), p >= conf)

    def _record_shadow(self, side: str, confidence: float) -> None:
        if self.status != "shadow":
            return
        s, bar = self.strategy, self.strategy.current_bar
        self.shadow_signals += 1
        self.bus.publish(SHADOW_SIGNALS, ShadowSignal(
            self.record.name, self.record.version, s.id, bar.symbol, side, confidence, bar.close,
            getattr(s, "_reason", ""), self.clock.time_ns()))

    # ---- demotion ------------------------------------------------------------------------

    def _on_fill(self, fill) -> None:
        delta = fill.quantity if fill.side == "BUY" else -fill.quantity
        self._held[fill.symbol] = max(Decimal(0), self._held[fill.symbol] + delta)
        if self._flatten and fill.side == "BUY" and self.status != "live":
            self.strategy.sell(fill.symbol, 1.0, reason=f"{self.record.label} no longer live: selling a late "
                               "buy fill")

    def _leave_live(self) -> list[str]:
        """Stop trading: predict-only from now; what the strategy bought is sold (ml.close_on_demote:
        a SELL the risk engine sizes as the whole symbol position, so only deployed when no other
        strategy trades the symbol), or else it carries on as the shadow position. Returns the
        symbols it held."""
        s = self.strategy
        s.predict_only = True
        held = [sym for sym, q in self._held.items() if q > 0]
        for sym in s.traded_symbols:
            s.shadow_held[sym] = sym in held and not self.ml.close_on_demote
        self._flatten = self.ml.close_on_demote
        if self.ml.close_on_demote:
            for sym in held:
                s.sell(sym, 1.0, reason=f"{self.record.label} no longer live: closing its position")
        return held

    def _demote(self, verdict: DriftVerdict) -> None:
        s, record = self.strategy, self.record
        self.demotions.append(verdict)
        self._latch = record.updated_at
        self.status = "shadow"
        held = self._leave_live()
        kept = "" if self.ml.close_on_demote or not held else f"; its position in {', '.join(held)} is left open"
        message = f"{record.label} demoted live -> shadow: {verdict.reason}{kept}"
        log.error("%s", message)
        self._alert("error", "model_demoted", message)
        details = {"psi": verdict.psi, "hit_rate": verdict.hit_rate, "outcomes": verdict.outcomes,
                   "baseline_hit_rate": verdict.baseline_hit_rate, "ts_event": self.clock.time_ns(),
                   "strategy_id": s.id, "closed": held if self.ml.close_on_demote else []}
        self._demotion = (verdict.reason, details)
        self._write_demotion()

    def _write_demotion(self) -> None:
        """Record the pending drift demotion in the registry (off the loop); a failure keeps it
        pending, and the next poll tries again."""
        (reason, details), latch = self._demotion, self._latch
        name, version, author = self.record.name, self.record.version, f"node:{self.strategy.id}"

        def write(reg):
            current = reg.get(name, version)
            if current.status != "live" or current.updated_at > latch:
                return current, False       # demoted, retired or promoted again meanwhile: nothing to write
            return reg.demote(name, version, reason=reason, author=author, details=details), True

        self._writing = True
        self.link.submit(write, self._demotion_written, self._demotion_failed)

    def _demotion_written(self, result: tuple[ModelVersion, bool]) -> None:
        record, written = result
        self._writing, self._demotion = False, None
        if written:
            self.record, self._latch = record, record.updated_at
        else:
            self.apply_record(record)

    def _demotion_failed(self, exc: Exception) -> None:
        self._writing = False
        self._registry_error(exc, "writing the drift demotion failed (retried on the next poll)")

    def _registry_error(self, exc: Exception, what: str = "model registry call failed") -> None:
        log.warning("%s: %s: %s", self.record.label, what, exc)
        self._alert("warning", "model_registry_error", f"{self.record.label}: {what}: {exc}")

    def _alert(self, level: str, code: str, message: str) -> None:
        self.bus.publish(topics.ALERTS, Alert(level, f"ml.{self.record.name}", code, message, self.clock.time_ns()))
