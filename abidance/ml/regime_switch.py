"""Regime switch: hosts other built-in strategies and lets the market regime pick who trades.

    [[strategies]]
    id = "adaptive"
    class = "regime_switch"
    symbols = ["ETHBTC"]
    timeframe = "5m"
    params = { model_path = "models/regime.joblib", regimes = "0:rsi_reversion,1:ema_cross,2:",
               hosted_params = "ema_cross.fast=20,ema_cross.slow=60" }

`regimes` maps a regime of the model (abidance.ml.regime; 0 = calmest) to the hosted
strategies enabled in it, joined by '+', each with an optional weight in (0, 1] after '@'
("1:ema_cross@0.5+rsi_reversion"); "2:" enables none; "*" covers any regime not listed and
the warm-up before the features are ready (without "*" nothing trades then). The hosted
strategies are the union of the names. A mapping of only "*" needs no model: the static mix.

Every hosted strategy sees every bar (its indicators stay warm whatever the regime); its
signals pass through a gate:
- BUY passes only when the strategy is enabled in the symbol's current regime, with its
  confidence multiplied by the weight (weights act through risk.min_confidence and kelly sizing);
- SELL passes when the strategy is enabled, or when it opened the position (its own exit
  rule closes what it opened, whatever the regime);
- `exit_on_disable`: when the regime changes and the strategy that opened the position is
  not enabled in the new one, the position is sold at once;
- `trade_from_ns`: signals on bars closing before this time are dropped (warm-up without trading).
Signals go out under this strategy's id, the reason prefixed with the regime and the hosted name.
A hosted strategy that raises disables the whole host (the engine's usual containment).
"""

from __future__ import annotations

import math

from abidance.ml.ml_signal import MLSignal
from abidance.strategy.base import Param, Strategy, StrategyContext
from abidance.strategy.builtin import BUILTINS

ANY = "*"


def _hostable() -> dict:
    """The strategies a regime switch may host: the rule built-ins and the ML signal."""
    return {**BUILTINS, MLSignal.name: MLSignal}


def parse_regimes(text: str, where: str = "regimes") -> dict[int | str, dict[str, float]]:
    """'0:ema_cross,1:rsi_reversion@0.5+ema_cross,2:' -> {0: {"ema_cross": 1.0}, 1: {...}, 2: {}}.
    Keys are regime numbers or "*"; ValueError naming the faulty part."""
    hostable = _hostable()
    if not text.strip():
        raise ValueError(f"{where} is empty; expected e.g. '0:rsi_reversion,1:ema_cross,2:'")
    out: dict[int | str, dict[str, float]] = {}
    for entry in text.split(","):
        entry = entry.strip()
        key_text, colon, items = entry.partition(":")
        key_text = key_text.strip()
        if not colon:
            raise ValueError(f"{where}: entry {entry!r} has no ':' (expected REGIME:STRATEGY+STRATEGY, "
                             "e.g. '1:ema_cross')")
        if key_text == ANY:
            key: int | str = ANY
        elif key_text.isascii() and key_text.isdigit():
            key = int(key_text)
        else:
            raise ValueError(f"{where}: regime {key_text!r} in {entry!r} must be a whole number >= 0 or '*'")
        if key in out:
            raise ValueError(f"{where}: regime {key} is listed twice")
        enabled: dict[str, float] = {}
        for item in filter(None, (i.strip() for i in items.split("+"))):
            name, at, weight_text = (p.strip() for p in item.partition("@"))
            if name not in hostable:
                raise ValueError(f"{where}: unknown strategy {name!r} in regime {key} "
                                 f"(hostable: {', '.join(sorted(hostable))})")
            if name in enabled:
                raise ValueError(f"{where}: {name} is listed twice in regime {key}")
            weight = 1.0
            if at:
                try:
                    weight = float(weight_text)
                except ValueError:
                    weight = math.nan
                if not 0.0 < weight <= 1.0:
                    raise ValueError(f"{where}: weight {weight_text!r} of {name} in regime {key} must be a "
                                     "number in (0, 1]")
            enabled[name] = weight
        out[key] = enabled
    return out


def check_mapping(mapping: dict, n_regimes: int, where: str = "regimes") -> None:
    """ValueError unless a parsed mapping fits a model of `n_regimes` regimes: every regime it
    names exists, and every regime of the model is listed or covered by '*'."""
    for key in mapping:
        if key != ANY and key >= n_regimes:
            raise ValueError(f"{where}: regime {key} is not a regime of the model (it has {n_regimes}: "
                             f"0-{n_regimes - 1})")
    if ANY not in mapping:
        missing = [r for r in range(n_regimes) if r not in mapping]
        if missing:
            raise ValueError(f"{where}: regime {missing[0]} of the model is not mapped (list it, e.g. "
                             f"'{missing[0]}:' for none, or add '*:...')")


def _value(text: str):
    """A parameter value from text: int, float, true/false, else the string itself."""
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_hosted_params(text: str, hosted: set[str], where: str = "hosted_params") -> dict[str, dict]:
    """'ema_cross.fast=20,ema_cross.slow=60' -> {"ema_cross": {"fast": 20, "slow": 60}}."""
    out: dict[str, dict] = {}
    for item in filter(None, (i.strip() for i in text.split(","))):
        target, eq, value = (p.strip() for p in item.partition("="))
        name, dot, param = target.partition(".")
        if not eq or not dot or not name or not param or not value:
            raise ValueError(f"{where}: {item!r} must look like STRATEGY.PARAM=VALUE (e.g. 'ema_cross.fast=20')")
        if name not in hosted:
            raise ValueError(f"{where}: {item!r} names {name!r}, which regimes does not host "
                             f"(hosted: {', '.join(sorted(hosted)) or 'none'})")
        out.setdefault(name, {})[param] = _value(value)
    return out


class RegimeSwitch(Strategy):
    name = "regime_switch"
    params = {
        "model_path": Param("", doc="RegimeModel file (abidance.ml.regime), absolute or relative to the "
                                    "working folder; \"\" only when regimes is just '*'"),
        "model_sha256": Param("", doc="expected sha256 of the model file; \"\" = the <model_path>.sha256 file"),
        "regimes": Param("0:rsi_reversion,1:ema_cross,2:",
                         doc="regime -> hosted strategies: '0:rsi_reversion,1:ema_cross@0.5,2:', '*' = any other"),
        "hosted_params": Param("", doc="parameters of hosted strategies: 'ema_cross.fast=20,rsi_reversion.period=9'"),
        "exit_on_disable": Param(False, doc="sell at once when the regime disables the strategy that opened "
                                            "the position"),
        "trade_from_ns": Param(0, 0, None, "drop signals on bars closing before this time (ns): warm-up"),
    }

    def __init__(self, strategy_id: str, symbols, params: dict | None = None, timeframe: str | None = None):
        super().__init__(strategy_id, symbols, params, timeframe)
        prefix = f"strategies.{strategy_id}.params"
        self.mapping = parse_regimes(self.p.regimes, f"{prefix}.regimes")
        names = sorted({n for enabled in self.mapping.values() for n in enabled})
        given = parse_hosted_params(self.p.hosted_params, set(names), f"{prefix}.hosted_params")
        hostable = _hostable()
        self.hosted: dict[str, Strategy] = {}
        for n in names:
            cls = hostable[n]
            params_n = cls.resolve_params(given.get(n, {}), prefix=f"{prefix}.hosted_params.{n}")
            self.hosted[n] = cls(strategy_id, self.traded_symbols, params_n, self.timeframe)
        numbered = [k for k in self.mapping if k != ANY]
        if numbered and not self.p.model_path:
            raise ValueError(f"{prefix}.model_path is required: regimes names numbered regimes "
                             f"({', '.join(map(str, sorted(numbered)))}); use only '*:...' for a static mix")
        # Instance attributes: the engine routes books and trades by them.
        self.wants_book = any(h.wants_book for h in self.hosted.values())
        self.wants_trades = any(h.wants_trades for h in self.hosted.values())
        self.model = None
        self.passed = 0             # hosted signals let through
        self.blocked = 0            # hosted signals the regime held back
        self.regime_changes = 0

    # ---- lifecycle -------------------------------------------------------------------

    def on_start(self) -> None:
        # Lazy: training and judging models needs the ml extra (scikit-learn, pandas, torch).
        from abidance.ml.regime import RegimeFeatures, RegimeModel

        if self.p.model_path:
            self.model = RegimeModel.load(self.p.model_path, self.p.model_sha256)
            check_mapping(self.mapping, self.model.n_regimes, f"strategies.{self.id}.params.regimes")
        spec = self.model.spec if self.model is not None else None
        self.features = {s: RegimeFeatures(spec) for s in self.traded_symbols}
        self.regime: dict[str, int | None] = {s: None for s in self.traded_symbols}
        self.bars_in_regime: dict[int | None, int] = {}
        self.owner: dict[str, str] = {}                  # symbol -> hosted strategy whose BUY passed last
        self._bar_close = 0
        ctx = self._abd_ctx
        for n, h in self.hosted.items():
            h._abd_ctx = StrategyContext(self._gate(n), ctx.clock, ctx.portfolio, ctx.books, ctx.instruments,
                                         owner=ctx.owner or self.id)      # its signals go out in our name
            try:
                h.on_start()
            except Exception as exc:
                raise ValueError(f"{self.id}: hosted {n} refused to start: {exc}") from exc

    # ---- data ------------------------------------------------------------------------

    def enabled(self, regime: int | None) -> dict[str, float]:
        """Hosted strategy -> weight in this regime (None: still warming up)."""
        found = self.mapping.get(regime) if regime is not None else None
        return found if found is not None else self.mapping.get(ANY, {})

    def on_bar(self, bar) -> None:
        sym = bar.symbol
        self._bar_close = bar.close_time
        regime = None
        if self.model is not None:
            feats = self.features[sym].update_bar(bar)
            regime = self.model.predict_one(feats) if feats is not None else None
        before = self.regime[sym]
        self.regime[sym] = regime
        self.bars_in_regime[regime] = self.bars_in_regime.get(regime, 0) + 1
        if regime != before:
            self.regime_changes += 1
            owner = self.owner.get(sym)
            if self.p.exit_on_disable and owner is not None and owner not in self.enabled(regime) \
                    and self._trading() and self.position(sym) > 0:
                self.sell(sym, 1.0, reason=f"regime {regime}: {owner} disabled, exit")
        for h in self.hosted.values():
            h.on_bar(bar)

    def on_book(self, book) -> None:
        for h in self.hosted.values():
            if h.wants_book:
                h.on_book(book)

    def on_trade(self, trade) -> None:
        for h in self.hosted.values():
            if h.wants_trades:
                h.on_trade(trade)

    def on_fill(self, fill) -> None:
        for h in self.hosted.values():
            h.on_fill(fill)

    def on_stop(self) -> None:
        for h in self.hosted.values():
            h.on_stop()

    # ---- the gate --------------------------------------------------------------------

    def _trading(self) -> bool:
        return self._bar_close >= self.p.trade_from_ns

    def _gate(self, name: str):
        def emit(_hosted, signal) -> None:
            self._route(name, signal)
        return emit

    def _route(self, name: str, signal) -> None:
        sym = signal.symbol
        regime = self.regime.get(sym)
        weight = self.enabled(regime).get(name, 0.0)
        if not self._trading():
            self.blocked += 1
            return
        if signal.side == "BUY":
            if weight <= 0.0:
                self.blocked += 1
                return
            self.owner[sym] = name
            confidence = signal.confidence * weight
        else:
            if weight <= 0.0 and self.owner.get(sym) != name:
                self.blocked += 1
                return
            confidence = signal.confidence       # exits are not weakened by a weight
        self.passed += 1
        label = "warm-up" if regime is None else regime
        self._abd_ctx.emit(self, signal._replace(strategy_id=self.id, confidence=confidence,
                                                 reason=f"regime {label}: {name}: {signal.reason}"))
