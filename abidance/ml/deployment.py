"""Deploy the ML strategies of a node or a backtest by their model's registry status.

    components = await deployment.in_node(node)                 # the node's kernel (TradingNode.start)
    deployments = deployment.in_backtest(backtest, registry, ml)  # a backtest's kernel, before start()

Each ML strategy (abidance/ml/model_deployment.py: `is_ml_strategy`) is looked up in the
registry by its model file's sha256 and gets a ModelDeployment (shadow / live, drift
demotion), or else runs predict-only with an alert (`model_not_deployed`) saying why, one
strategy at a time:

- its model file cannot be read (the others are still deployed);
- its model is not registered, or registered without a drift reference;
- the node has no store, or the registry cannot be read at start (then all of them).

A demotion with ml.close_on_demote sells the strategy's own position only (positions are kept
per strategy), so an ML strategy may share its symbols with any other strategy.

Registry calls: inline in a backtest; in the node one worker thread (abidance/ml/registry_link.py).
Either way the deployments are the kernel's components (abidance/system/kernel.py).
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
           "ThreadedRegistry", "build", "in_backtest", "in_node", "is_ml_strategy", "model_sha256", "resolve",
           "shadow_only"]


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


def shadow_only(bus, clock, strategies, why: str, defer: Callable | None = None) -> None:
    """No registry to go by: these ML strategies run predict-only, and an alert says why (published
    through `defer`, e.g. loop.call_soon, when the store writer is not subscribed yet)."""
    for s in strategies:
        s.predict_only = True
        log.error("ML strategy %s runs in shadow only: %s", s.id, why)
        alert = Alert("error", f"strategy.{s.id}", "model_not_deployed", f"ML strategy {s.id} runs predict-only: {why}",
                      clock.time_ns())
        (defer or (lambda f, *a: f(*a)))(bus.publish, topics.ALERTS, alert)


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
    kernel = backtest.kernel
    strategies = kernel.ml_strategies()
    kernel.ml = build(kernel.bus, kernel.clock, strategies, resolve(registry, strategies), ml or kernel.config.ml,
                      InlineRegistry(registry), None)
    return list(kernel.ml)


async def in_node(node) -> list[Component]:
    """`from_store` for anything with config, bus, clock and a list of strategies (tests)."""
    return await from_store(node.config, node.bus, node.clock, node.strategies)


async def from_store(cfg, bus, clock, strategies) -> list[Component]:
    """The components for a node's ML strategies, [registry link, deployments...], to start before
    the strategy engine (the node puts them in its kernel's `ml`). Registry
    reads run off the loop; without a store, or when it cannot be read, ML strategies run
    predict-only."""
    ml_strategies = [s for s in strategies if is_ml_strategy(s)]
    if not ml_strategies:
        return []
    defer = asyncio.get_running_loop().call_soon     # alerts once the store writer listens
    if not cfg.store.url:
        shadow_only(bus, clock, ml_strategies, "no store (store.url), so no model registry", defer)
        return []
    link = ThreadedRegistry(lambda: ModelRegistry.open(cfg.store.url, cfg.store.database, migrate=False))
    try:
        resolved = await link.call(lambda reg: resolve(reg, ml_strategies))
    except Exception as exc:  # noqa: BLE001 - the store may be down: trade nothing with the models
        link.close()
        shadow_only(bus, clock, ml_strategies, f"the model registry cannot be read ({exc})", defer)
        return []
    deployments = build(bus, clock, ml_strategies, resolved, cfg.ml, link, cfg.ml.registry_poll_s, defer)
    if not deployments:
        link.close()
        return []
    return [RegistryLinkOwner(bus, clock, link), *deployments]
