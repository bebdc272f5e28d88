"""Strategy code reaching outside the engine during a backtest: a Python audit hook
(`sys.addaudithook`) that records file, socket and subprocess access made from a strategy's
own source file while a backtest runs.

A backtest hands a strategy its data through the engine only; a strategy that reads the candle
file itself (or a URL, or another program's output) can see the future, and the look-ahead
re-runs cannot tell (the file is whole in every run). This reports it instead.

- Watched events: `open` (files; Python's own reads of modules, `.py`/`.pyc`/`.so`, and
  whatever the import system lists or opens while importing are not reported), `os.listdir`/`os.scandir`, `socket.connect`/`bind`/`sendto`/`getaddrinfo`,
  `urllib.Request`, `subprocess.Popen`, `os.system`, `os.exec`, `os.posix_spawn`, `os.spawn`.
- Strategy code: a frame whose file is the module of a running strategy's class (or of a base
  class outside the abidance package), anywhere on the stack of the access (a strategy calling
  pandas.read_csv is reported at its own line).
- Declared: a file named in a strategy's own params (e.g. a model file) may be read.
- Not seen: access from C code that raises no audit event, from another process, or from a
  helper module of the strategy's own whose frames are the only ones on the stack (a thread
  it started, a callback run later by other code).

An audit hook cannot be removed: it is installed once per process, and does nothing (one
comparison) unless a watch is active.
"""

from __future__ import annotations

import inspect
import os
import sys
from dataclasses import dataclass

EVENTS = frozenset({"open", "os.listdir", "os.scandir", "socket.connect", "socket.bind", "socket.sendto",
                    "socket.getaddrinfo", "urllib.Request", "subprocess.Popen", "os.system", "os.exec",
                    "os.posix_spawn", "os.spawn"})
MODULE_SUFFIXES = (".py", ".pyc", ".so", ".pyd", ".pth")
IMPORT_MACHINERY = "<frozen importlib."    # the import system's frames: what it lists and opens is not data
_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))     # abidance/


@dataclass(frozen=True)
class Access:
    event: str          # the audit event ("open", "socket.connect", ...)
    target: str         # what it reached: a path, an address, a command
    where: str          # the strategy's file:line that made it

    def describe(self) -> str:
        return f"{self.where}: {self.event} {self.target}"


# The watches active now: a stepped backtest keeps its own from start() to finish(), and several
# may be open at once (environments stepped side by side), each recording into its own list.
_active: list[tuple[frozenset, frozenset, list]] = []
_installed = False


def _target(event: str, args: tuple) -> str:
    if not args:
        return ""
    first = args[0]
    if event.startswith("socket."):
        return repr(args[1]) if len(args) > 1 else repr(first)
    if isinstance(first, bytes):
        return first.decode(errors="replace")
    return str(first)


def _hook(event: str, args: tuple) -> None:
    if not _active or event not in EVENTS:
        return
    for files, allowed, sink in _active:
        frame = sys._getframe(1)
        while frame is not None:
            name = frame.f_code.co_filename
            if name.startswith(IMPORT_MACHINERY):
                return                  # an import (a lazy one in the strategy: sklearn under a model load)
            if name in files:
                target = _target(event, args)
                if not (event == "open" and (target.endswith(MODULE_SUFFIXES) or os.path.abspath(target) in allowed)):
                    sink.append(Access(event, target, f"{name}:{frame.f_lineno}"))
                break
            frame = frame.f_back


def strategy_files(strategies) -> frozenset:
    """The source files of these strategies' classes, and of their base classes outside abidance."""
    out = set()
    for s in strategies:
        for cls in type(s).__mro__:
            try:
                path = inspect.getsourcefile(cls) or inspect.getfile(cls)
            except TypeError:           # builtins (object)
                continue
            full = os.path.abspath(path)
            if cls is type(s) or not full.startswith(_PACKAGE):
                out.update({path, full})
    return frozenset(out)


def declared_files(strategies) -> frozenset:
    """Files a strategy names in its own params (a model, a lookup table): reading them is declared."""
    out = set()
    for s in strategies:
        params = getattr(s, "p", None)          # the resolved params (a SimpleNamespace)
        for value in (vars(params).values() if params is not None else ()):
            if isinstance(value, str) and value and os.path.isfile(value):
                out.add(os.path.abspath(value))
    return frozenset(out)


class watch:
    """`with watch(files, allowed) as accesses:` records what code in `files` reached outside;
    or `start()` ... `stop()` around a stepped run."""

    def __init__(self, files, allowed=frozenset()):
        self.files, self.allowed = frozenset(files), frozenset(allowed)
        self.accesses: list[Access] = []
        self._entry = (self.files, self.allowed, self.accesses)

    def start(self) -> list[Access]:
        global _installed
        if not _installed:
            sys.addaudithook(_hook)
            _installed = True
        if self.files and self._entry not in _active:
            _active.append(self._entry)
        return self.accesses

    def stop(self) -> None:
        if self._entry in _active:
            _active.remove(self._entry)

    def __enter__(self) -> list[Access]:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
