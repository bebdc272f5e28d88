"""Alert channel secrets (bot tokens, webhook URLs, SMTP passwords): from the environment or a private file.

`ABIDANCE_ALERTS_<NAME>_SECRET` holds the secret itself; `ABIDANCE_ALERTS_<NAME>_SECRET_FILE` names a
file holding it, which must be private to its owner (`chmod 600`), as Binance key files must
(abidance/exchange/binance/credentials.py). <NAME> is the channel's name upper-cased, '-' as '_'.
A `Secret` never shows its value in repr/str; `scrub()` removes it from any text before it is logged.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

from abidance.exchange.binance.credentials import CredentialsError, check_private


class SecretError(ValueError):
    """A channel's secret is missing or stored unsafely; the message names the variable, never the value."""


def env_names(channel: str) -> tuple[str, str]:
    base = f"ABIDANCE_ALERTS_{channel.upper().replace('-', '_')}_SECRET"
    return base, base + "_FILE"


class Secret:
    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        """For building the request only: never log the result."""
        return self._value

    def scrub(self, text: str) -> str:
        return text.replace(self._value, "***") if self._value else text

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret(***)" if self._value else "Secret(<empty>)"

    __str__ = __repr__

    def __reduce__(self):
        raise TypeError("a Secret cannot be pickled")


def load_secret(channel: str, required: bool, env: Mapping[str, str] | None = None) -> Secret:
    env = os.environ if env is None else env
    var, file_var = env_names(channel)
    if env.get(var) and env.get(file_var):
        raise SecretError(f"alert channel {channel!r}: set only one of {var} and {file_var}")
    if env.get(var):
        return Secret(env[var].strip())
    if env.get(file_var):
        path = Path(env[file_var]).expanduser()
        try:
            check_private(path)
            text = path.read_text(encoding="utf-8").strip()
        except CredentialsError as exc:
            raise SecretError(f"alert channel {channel!r}: {exc}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise SecretError(f"alert channel {channel!r}: cannot read {path}: {type(exc).__name__}") from None
        if not text:
            raise SecretError(f"alert channel {channel!r}: {path} is empty")
        return Secret(text)
    if required:
        raise SecretError(f"alert channel {channel!r} needs its secret: set {var}, or {file_var} pointing to a "
                          f"file only you can read (chmod 600)")
    return Secret("")
