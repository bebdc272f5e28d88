"""Deploy the ML strategies of a node or a backtest by their model's registry status.

    components = await deployment.in_node(node)                 # TradingNode.start
    deployments = deployment.in_backtest(backtest, registry, ml)  # before backtest.start()

Each ML strategy (abidance/ml/model_deployment.py: `is_ml_strategy`) is looked up in the
registry by its model file's sha256 and gets a ModelDeployment (shadow / live, drift
demotion), or else runs predict-only with an alert (`model_not_deployed`) saying why, one
strategy at a time:

- its model file cannot be read (the others are still deployed);
- its model is not registered, or registered without a drift reference;
- ml.close_on_demote is on and another strategy trades one of its symbols: the demotion's
  SELL is sized by the risk engine as the whole position in the symbol (there is one
  position per symbol, not per strategy), so it would sell the other strategy's holding too;
- the node has no store, or the registry cannot be read at start (then all of them).

Registry calls: inline in a backtest; in the node one worker thread (abidance/ml/registry_link.py).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Callable

from abidance.core import topics
from abidance.core.component import Component
from abidance.core.events import Alert
from abidance.ml.model_deployment import SHADOW_SIGNALS, ModelDeployment, is_ml_strategy
from abidance.ml.registry import ModelRegistry, ModelVersion, file_sha256
from abidance.ml.registry_link import InlineRegistry, RegistryLinkOwner, ThreadedRegistry

log = logging.getLogger("abidance.ml.deployment")

__all__ = ["SHADOW_SIGNALS", "InlineRegistry", "ModelDeployment", "RegistryLinkOwner", "Resolved",
           "ThreadedRegistry", "build", "close_on_demote_conflict", "in_backtest", "in_node", "is_ml_strategy",
           "model_sha256", "resolve", "shadow_only"]


@dataclass(frozen=True)
class Resolved:
    """What the registry says about one ML strategy's model."""

    record: ModelVersion | None = None    # None: not registered (or `problem`)
    problem: str = ""                     # why it could not be looked up (its model file cannot be read)


def model_sha256(strategy) -> str:
    """The hash the strategy's model is registered under: params.model_sha256 (the strategy refuses
    any other file at start), else the hash of the model the strategy loads here, once, and then
    runs (`load()`, ml_signal): the file looked up is the file run, even if it is replaced
    meanwhile. A strategy without `load()` has its file hashed. OSError / ValueError: unreadable."""
    sha = getattr(strategy.p, "model_sha256", "") or ""
    if sha:
        return sha.lower()
    load = getattr(strategy, "load", None)
    return load().sha256 if load is not None else file_sha256(strategy.p.model_path)


def resolve(registry: ModelRegistry, strategies) -> dict[str, Resolved]:
    """strategy id -> its registered version, each strategy on its own: an unreadable model file
    is that strategy's problem. Registry errors propagate (the store is down: nothing resolves).
    Blocking I/O."""
    out = {}
    for s in strategies:
        try:
            sha = model_sha256(s)
        except OSError as exc:
            out[s.id] = Resolved(problem=f"model file {s.p.model_path} cannot be read: {exc.strerror or exc}")
            continue
        except ValueError as exc:         # ModelFileError: unreadable, not a model, another hash
            out[s.id] = Resolved(problem=str(exc))
            continue
        out[s.id] = Resolved(registry.by_sha256(sha))
    return out


def close_on_demote_conflict(strategy, strategies, ml) -> str:
    """Why `strategy` may not be deployed with ml.close_on_demote (empty: it may): another of
    `strategies` trades one of its symbols, and the demotion's SELL would sell that one's holding too."""
    if not ml.close_on_demote:
        return ""
    mine = set(getattr(strategy, "traded_symbols", ()))
    clashes = [(o.id, sorted(mine & set(getattr(o, "traded_symbols", ())))) for o in strategies if o is not strategy]
    clashes = [(other, symbols) for other, symbols in clashes if symbols]
    if not clashes:
        return ""
    shared = "; ".join(f"strategy {other} also trades {', '.join(symbols)}" for other, symbols in clashes)
    others = ", ".join(other for other, _ in clashes)
    return (f"ml.close_on_demote is on and {shared}: on a demotion {strategy.id} would sell the whole position "
            f"in the symbol (a SELL is sized as the whole position), {others}'s holding included. Set "
            f"ml.close_on_demote = false (a demoted model's position is then left to the exits, the risk limits "
            f"and the operator) or let {strategy.id} trade its symbols alone")


def shadow_only(bus, clock, strategies, why: str, defer: Callable | None = None) -> None:
    """No registry to go by: these ML strategies run predict-only, and an alert says why (published
    through `defer`, e.g. loop.call_soon, when the store writer is not subscribed yet)."""
    for s in strategies:
        s.predict_only = True
        log.error("ML strategy %s runs in shadow only: %s", s.id, why)
        alert = Alert("error", f"strategy.{s.id}", "model_not_deployed", f"ML strategy {s.id} runs predict-only: {why}",
                      clock.time_ns())
        (defer or (lambda f, *a: f(*a)))(bus.publish, topics.ALERTS, alert)


def deployable(bus, clock, strategies, ml, defer: Callable | None = None) -> list:
    """The ML strategies of `strategies` that may be deployed; the ones refused (close_on_demote on a
    shared symbol) run predict-only with an alert naming both strategies."""
    out = []
    for s in strategies:
        if not is_ml_strategy(s):
            continue
        why = close_on_demote_conflict(s, strategies, ml)
        if why:
            shadow_only(bus, clock, [s], why, defer)
        else:
            out.append(s)
    return out


def build(bus, clock, strategies, resolved: dict[str, Resolved], ml, link, poll_s: float | None,
          defer: Callable | None = None) -> list[ModelDeployment]:
    """One ModelDeployment per ML strategy whose model is registered; the others predict-only."""
    out = []
    for s in strategies:
        found = resolved.get(s.id, Resolved())
        if found.problem:
            shadow_only(bus, clock, [s], found.problem, defer)
            continue
        if found.record is None:
            shadow_only(bus, clock, [s], "its model file is not in the model registry (register it, then "
                        "promote it: abidance models promote)", defer)
            continue
        try:
            out.append(ModelDeployment(bus, clock, s, found.record, ml, link, poll_s=poll_s))
        except ValueError as exc:           # e.g. registered without a drift reference: cannot be watched
            shadow_only(bus, clock, [s], str(exc), defer)
    return out


def in_backtest(backtest, registry: ModelRegistry, ml) -> list[ModelDeployment]:
    """Deploy the ML strategies of a Backtest (before `start()`) by their registry status; registry
    calls inline. The deployments start before the strategies; `refresh()` applies a registry change."""
    strategies = list(backtest.strategies.strategies.values())
    ml_strategies = deployable(backtest.bus, backtest.clock, strategies, ml)
    deployments = build(backtest.bus, backtest.clock, ml_strategies, resolve(registry, ml_strategies), ml,
                        InlineRegistry(registry), None)
    at = backtest.components.index(backtest.strategies)
    backtest.components[at:at] = deployments
    return deployments


async def in_node(node) -> list[Component]:
    """The node's components for its ML strategies, [registry link, deployments...], to start before
    the strategy engine (called in TradingNode.start). Registry reads run off the loop; without a
    store, or when it cannot be read, ML strategies run predict-only."""
    if not any(is_ml_strategy(s) for s in node.strategies):
        return []
    cfg = node.config
    defer = asyncio.get_running_loop().call_soon     # alerts once the store writer listens
    if not cfg.store.url:
        shadow_only(node.bus, node.clock, [s for s in node.strategies if is_ml_strategy(s)],
                    "no store (store.url), so no model registry", defer)
        return []
    ml_strategies = deployable(node.bus, node.clock, node.strategies, cfg.ml, defer)
    if not ml_strategies:
        return []
    link = ThreadedRegistry(lambda: ModelRegistry.open(cfg.store.url, cfg.store.database, migrate=False))
    try:
        resolved = await link.call(lambda reg: resolve(reg, ml_strategies))
    except Exception as exc:  # noqa: BLE001 - the store may be down: trade nothing with the models
        link.close()
        shadow_only(node.bus, node.clock, ml_strategies, f"the model registry cannot be read ({exc})", defer)
        return []
    deployments = build(node.bus, node.clock, ml_strategies, resolved, cfg.ml, link, cfg.ml.registry_poll_s, defer)
    if not deployments:
        link.close()
        return []
    return [RegistryLinkOwner(node.bus, node.clock, link), *deployments]
