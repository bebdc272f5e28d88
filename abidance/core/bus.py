"""In-process message bus: events on topics (pub/sub) and commands to endpoints.

Engines never import each other; they only know topic names (abidance.core.topics).
A subscriber that raises is contained: the error is logged and counted, the other
subscribers still get the message, and the publisher carries on.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any, Callable

log = logging.getLogger("abidance.bus")

Handler = Callable[[Any], None]


class MessageBus:
    def __init__(self) -> None:
        self._subscribers: dict[str, tuple[Handler, ...]] = defaultdict(tuple)
        self._endpoints: dict[str, Handler] = {}
        self.published = 0
        self.handler_errors = 0

    def subscribe(self, topic: str, handler: Handler) -> None:
        if handler in self._subscribers[topic]:
            return
        # Tuples, rebuilt on change: publish iterates without copying and a handler may
        # unsubscribe itself mid-dispatch safely.
        self._subscribers[topic] = self._subscribers[topic] + (handler,)

    def unsubscribe(self, topic: str, handler: Handler) -> None:
        # == not "is": a bound method is a new object each time it is read.
        self._subscribers[topic] = tuple(h for h in self._subscribers[topic] if h != handler)

    def has_subscribers(self, topic: str) -> bool:
        return bool(self._subscribers.get(topic))

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

    def send(self, endpoint: str, command: Any) -> Any:
        try:
            handler = self._endpoints[endpoint]
        except KeyError:
            raise LookupError(f"no handler registered for endpoint {endpoint!r}") from None
        return handler(command)
