"""Run a coroutine on uvloop (asyncio's loop where uvloop does not exist, e.g. Windows)."""

from __future__ import annotations

import asyncio


def run(coro):
    # Lazy: uvloop is Linux/macOS only.
    try:
        import uvloop
    except ImportError:   # uvloop is Linux/macOS only
        return asyncio.run(coro)
    return uvloop.run(coro)
