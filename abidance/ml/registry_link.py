"""How a deployed model reaches the model registry: at once, or off the event loop.

    link.submit(lambda reg: reg.get(name, version), on_done, on_error)

InlineRegistry runs each call at once in the caller's thread (backtests, tests);
ThreadedRegistry runs them in one worker thread, in order, and hands the answers back on
the event loop (the node: a slow store never stalls a bar). RegistryLinkOwner closes the
node's link after the deployments stopped, so a demotion still being written is written.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

from abidance.core.component import Component
from abidance.ml.registry import ModelRegistry

log = logging.getLogger("abidance.ml.registry_link")


class InlineRegistry:
    """Registry calls at once, in the caller's thread (backtests and tests)."""

    def __init__(self, registry: ModelRegistry):
        self.registry = registry

    def submit(self, call: Callable, on_done: Callable | None = None, on_error: Callable | None = None) -> None:
        try:
            result = call(self.registry)
        except Exception as exc:  # noqa: BLE001 - reported to the caller's handler
            if on_error is None:
                raise
            on_error(exc)
            return
        if on_done is not None:
            on_done(result)

    def close(self) -> None: ...


class ThreadedRegistry:
    """Registry calls in one worker thread (in order); answers handed back on the event loop."""

    def __init__(self, open_registry: Callable[[], ModelRegistry], loop=None):
        self.open_registry = open_registry
        self.loop = loop or asyncio.get_running_loop()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="ml-registry")
        self._registry: ModelRegistry | None = None

    def _run(self, call: Callable):
        if self._registry is None:
            self._registry = self.open_registry()
        try:
            return call(self._registry)
        except Exception:
            self._drop()         # a broken connection is reopened on the next call
            raise

    def _drop(self) -> None:
        if self._registry is not None:
            try:
                self._registry.close()
            except Exception:  # noqa: BLE001 - already broken
                pass
            self._registry = None

    async def call(self, call: Callable):
        """Await one call (used at start, before trading)."""
        return await asyncio.wrap_future(self._executor.submit(self._run, call))

    def submit(self, call: Callable, on_done: Callable | None = None, on_error: Callable | None = None) -> None:
        def work():
            try:
                result = self._run(call)
            except Exception as exc:  # noqa: BLE001 - the store may be down: the caller decides
                if on_error is not None:
                    self.loop.call_soon_threadsafe(on_error, exc)
                else:
                    log.warning("model registry call failed: %s", exc)
                return
            if on_done is not None:
                self.loop.call_soon_threadsafe(on_done, result)
        self._executor.submit(work)

    def close(self) -> None:
        self._executor.submit(self._drop)
        self._executor.shutdown(wait=True)      # a demotion in flight is written, not dropped


class RegistryLinkOwner(Component):
    """Closes the node's registry link after the deployments stopped (it comes before them in the
    node's components, which stop in reverse): a demotion still being written is written."""

    def __init__(self, bus, clock, link: ThreadedRegistry):
        super().__init__("ModelRegistryLink", bus, clock)
        self.link = link

    def on_stop(self) -> None:
        self.link.close()
