"""In-process message bus: events on topics (pub/sub) and commands to endpoints.

Engines never import each other; they only know topic names (abidance.core.topics).
A subscriber that raises is contained: the error is logged and counted, the other
subscribers still get the message, and the publisher carries on.

Dispatch order is declared, never implied by who subscribed first: each subscription has
a `Priority`, and a message reaches higher priorities first. Within one priority the
handlers must not depend on each other; `MessageBus(tie_break=random.Random(seed))` puts
equal-priority handlers in a random order, which the kernel's shuffle test uses to prove it
(tests/unit/system/test_dispatch_order.py).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from enum import IntEnum
from typing import Any, Callable

log = logging.getLogger("abidance.bus")

Handler = Callable[[Any], None]


class Priority(IntEnum):
    """Who hears a message first (higher first). Each level names why it comes before the next."""

    STATE = 400     # state the others read while handling the same message: marks, data freshness, balances
    DATA = 300      # the data engine: books and bars built from this message, published before anyone reacts
    VENUE = 200     # simulated venues: orders resting before this market event fill at it, before reactions
    ENGINE = 100    # engines reacting to the message (the default)
    STRATEGY = 50   # user strategies: they see the state every engine above has already updated
    RECORD = 0      # recorders (the store writer, results): they see the message after its consequences started


class MessageBus:
    def __init__(self, tie_break=None) -> None:
        self._subscribers: dict[str, tuple[Handler, ...]] = defaultdict(tuple)
        self._priorities: dict[str, tuple[int, ...]] = defaultdict(tuple)
        self._endpoints: dict[str, Handler] = {}
        self._tie_break = tie_break          # a random.Random: equal priorities in random order (tests)
        self.published = 0
        self.handler_errors = 0

    def subscribe(self, topic: str, handler: Handler, priority: int = Priority.ENGINE) -> None:
        handlers, prios = self._subscribers[topic], self._priorities[topic]
        if handler in handlers:
            return
        # Tuples, rebuilt on change: publish iterates without copying and a handler may
        # unsubscribe itself mid-dispatch safely. Sorted by priority, highest first.
        first = next((i for i, p in enumerate(prios) if p <= priority), len(prios))
        end = next((i for i, p in enumerate(prios) if p < priority), len(prios))
        at = end if self._tie_break is None else self._tie_break.randint(first, end)
        self._subscribers[topic] = handlers[:at] + (handler,) + handlers[at:]
        self._priorities[topic] = prios[:at] + (int(priority),) + prios[at:]

    def unsubscribe(self, topic: str, handler: Handler) -> None:
        # == not "is": a bound method is a new object each time it is read.
        kept = [(h, p) for h, p in zip(self._subscribers[topic], self._priorities[topic]) if h != handler]
        self._subscribers[topic] = tuple(h for h, _ in kept)
        self._priorities[topic] = tuple(p for _, p in kept)

    def has_subscribers(self, topic: str) -> bool:
        return bool(self._subscribers.get(topic))

    def subscribers(self, topic: str) -> tuple[Handler, ...]:
        """The handlers of a topic in dispatch order (what a backtest checks before fast-forwarding)."""
        return tuple(self._subscribers.get(topic, ()))

    def topics(self) -> list[str]:
        return sorted(t for t, h in self._subscribers.items() if h)

    def publish(self, topic: str, message: Any) -> None:
        self.published += 1
        for handler in self._subscribers.get(topic, ()):
            try:
                handler(message)
            except Exception:
                self.handler_errors += 1
                log.exception("subscriber %r of %s failed", handler, topic)

    def register(self, endpoint: str, handler: Handler) -> None:
        if endpoint in self._endpoints:
            raise ValueError(f"endpoint {endpoint!r} already has a handler")
        self._endpoints[endpoint] = handler

    def unregister(self, endpoint: str) -> None:
        self._endpoints.pop(endpoint, None)

    def has_endpoint(self, endpoint: str) -> bool:
        return endpoint in self._endpoints

    def send(self, endpoint: str, command: Any) -> Any:
        try:
            handler = self._endpoints[endpoint]
        except KeyError:
            raise LookupError(f"no handler registered for endpoint {endpoint!r}") from None
        return handler(command)
