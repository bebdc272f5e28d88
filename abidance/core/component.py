"""One lifecycle for every node component, as an explicit state table.

`start()`, `stop()`, `degrade()`, `recover()` and `fault()` are final: they move the
state by the table (anything else is a LifecycleError naming the state and the action)
and call the subclass hooks `on_start`, `on_stop`, `on_degrade`, `on_recover`, `on_fault`.
Every change is published on topics.COMPONENTS.
"""

from __future__ import annotations

import logging
from enum import Enum

from abidance.core import topics
from abidance.core.events import ComponentStateChanged

log = logging.getLogger("abidance.component")


class ComponentState(str, Enum):
    INITIALIZED = "INITIALIZED"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    DEGRADED = "DEGRADED"       # running, but something it depends on is impaired
    STOPPING = "STOPPING"
    STOPPED = "STOPPED"
    FAULTED = "FAULTED"         # stopped by an error; needs an operator or a restart


S = ComponentState
TRANSITIONS: dict[tuple[ComponentState, str], ComponentState] = {
    (S.INITIALIZED, "start"): S.STARTING,
    (S.STOPPED, "start"): S.STARTING,
    (S.STARTING, "started"): S.RUNNING,
    (S.RUNNING, "degrade"): S.DEGRADED,
    (S.DEGRADED, "degrade"): S.DEGRADED,
    (S.DEGRADED, "recover"): S.RUNNING,
    (S.RUNNING, "stop"): S.STOPPING,
    (S.DEGRADED, "stop"): S.STOPPING,
    (S.STARTING, "stop"): S.STOPPING,
    (S.STOPPING, "stopped"): S.STOPPED,
    (S.STARTING, "fault"): S.FAULTED,
    (S.RUNNING, "fault"): S.FAULTED,
    (S.DEGRADED, "fault"): S.FAULTED,
    (S.STOPPING, "fault"): S.FAULTED,
}


class LifecycleError(RuntimeError):
    pass


class Component:
    def __init__(self, name: str, bus, clock):
        self.name = name
        self.bus = bus
        self.clock = clock
        self.state = ComponentState.INITIALIZED
        self.state_reason = ""

    def _lifecycle(self, action: str, reason: str = "") -> None:
        new = TRANSITIONS.get((self.state, action))
        if new is None:
            raise LifecycleError(f"{self.name}: cannot {action} while {self.state.value}")
        previous, self.state, self.state_reason = self.state, new, reason
        if new != previous:
            log.info("%s: %s -> %s%s", self.name, previous.value, new.value, f" ({reason})" if reason else "")
            self.bus.publish(topics.COMPONENTS, ComponentStateChanged(self.name, new.value, previous.value, reason,
                                                                      self.clock.time_ns()))

    @property
    def is_running(self) -> bool:
        return self.state in (ComponentState.RUNNING, ComponentState.DEGRADED)

    def start(self) -> None:
        self._lifecycle("start")
        try:
            self.on_start()
        except Exception as exc:
            self._lifecycle("fault", f"start failed: {exc}")
            raise
        self._lifecycle("started")

    def stop(self) -> None:
        if self.state in (ComponentState.STOPPED, ComponentState.FAULTED, ComponentState.INITIALIZED):
            return
        self._lifecycle("stop")
        try:
            self.on_stop()
        finally:
            self._lifecycle("stopped")

    def degrade(self, reason: str) -> None:
        self._lifecycle("degrade", reason)
        self.on_degrade(reason)

    def recover(self) -> None:
        self._lifecycle("recover")
        self.on_recover()

    def fault(self, reason: str) -> None:
        self._lifecycle("fault", reason)
        self.on_fault(reason)

    # Hooks for subclasses.
    def on_start(self) -> None: ...
    def on_stop(self) -> None: ...
    def on_degrade(self, reason: str) -> None: ...
    def on_recover(self) -> None: ...
    def on_fault(self, reason: str) -> None: ...
