"""The served store's users: who may connect, with which role, and how their passwords are given.

Roles (abidance.store.guard): `writer` (the node: reads, inserts, its own migrations),
`operator` (the dashboard: reads, and inserts operator commands and config versions),
`reader` (research: reads only).

Passwords never come from the config file and are never logged. They come from:

- a users file (`abidance store --users-file PATH` or `ABIDANCE_STORE_USERS_FILE`), TOML,
  readable by its owner only (mode 600 or stricter, else the store refuses to start):

      [node]
      role = "writer"
      password_sha256 = "<sha256 hex of the password>"   # or password = "..."

      [dashboard]
      role = "operator"
      password_sha256 = "..."

- or, for the single-user setup, `ABIDANCE_STORE_USER` / `ABIDANCE_STORE_PASSWORD` (a writer).

With neither, the store has one user, `default`, without a password, with the writer role: a
development store on loopback. Its statements are still checked (no `file()`, no `url()`, no
settings that lift limits); give users a password before anything else shares the machine.

Clients give the password with `ABIDANCE_STORE_PASSWORD` or `ABIDANCE_STORE_PASSWORD_FILE` (a
file readable by its owner only), or in the store URL (abidance.store.client).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import stat
import tomllib
from dataclasses import dataclass
from pathlib import Path

from abidance.store.guard import ROLES

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")
_HEX = re.compile(r"^[0-9a-f]{64}$")


class UsersError(ValueError):
    """The users file or the environment is wrong; the message names the user or the file."""


@dataclass(frozen=True)
class User:
    name: str
    role: str
    password_sha256: str | None      # None: no password (the development default only)

    def __repr__(self) -> str:        # never shows the hash
        return f"User({self.name!r}, role={self.role!r})"


def sha256_hex(password: str) -> str:
    return hashlib.sha256(password.encode("utf-8")).hexdigest()


def read_private_file(path: str | Path, what: str) -> str:
    """The text of a secret file, refused when group or others can read it (as ssh does)."""
    path = Path(path)
    try:
        st = path.stat()
    except OSError as exc:
        raise UsersError(f"{what} {path}: {exc.strerror}") from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise UsersError(f"{what} {path} is readable by others (mode {stat.S_IMODE(st.st_mode):o}): "
                         f"chmod 600 {path}")
    return path.read_text(encoding="utf-8")


class Users:
    """The store's users; `authenticate(name, password)` is constant-time in the password."""

    def __init__(self, users: list[User]):
        if not users:
            raise UsersError("the store needs at least one user")
        self.by_name = {u.name: u for u in users}

    @property
    def open(self) -> bool:
        """True when some user has no password (the development default)."""
        return any(u.password_sha256 is None for u in self.by_name.values())

    def authenticate(self, name: str, password: str) -> User | None:
        user = self.by_name.get(name or "default")
        given = sha256_hex(password or "")
        if user is None:
            hmac.compare_digest(given, "0" * 64)         # same work whether or not the user exists
            return None
        if user.password_sha256 is None:
            return user if not password else None
        return user if hmac.compare_digest(given, user.password_sha256) else None

    # -- sources ---------------------------------------------------------------------------------
    @classmethod
    def from_file(cls, path: str | Path) -> "Users":
        text = read_private_file(path, "users file")
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise UsersError(f"users file {path}: {exc}") from None
        users = []
        for name, table in data.items():
            where = f"users file {path}: [{name}]"
            if not _NAME.match(name) or not isinstance(table, dict):
                raise UsersError(f"{where} must be a table named like a user (letters, digits, '_', '.', '-')")
            unknown = set(table) - {"role", "password", "password_sha256"}
            if unknown:
                raise UsersError(f"{where}: unknown key {sorted(unknown)[0]!r} (known: role, password, "
                                 "password_sha256)")
            role = table.get("role")
            if role not in ROLES:
                raise UsersError(f"{where}.role must be one of {', '.join(ROLES)}, got {role!r}")
            if ("password" in table) == ("password_sha256" in table):
                raise UsersError(f"{where} needs exactly one of password or password_sha256")
            if "password" in table:
                if not isinstance(table["password"], str) or not table["password"]:
                    raise UsersError(f"{where}.password must be a non-empty string")
                digest = sha256_hex(table["password"])
            else:
                digest = str(table["password_sha256"]).lower()
                if not _HEX.match(digest):
                    raise UsersError(f"{where}.password_sha256 must be 64 hex digits (sha256 of the password)")
            users.append(User(name, role, digest))
        return cls(users)

    @classmethod
    def from_env(cls, env=None, users_file: str | None = None) -> "Users":
        """The users file if one is named (argument or ABIDANCE_STORE_USERS_FILE), else the single writer of
        ABIDANCE_STORE_USER / ABIDANCE_STORE_PASSWORD(_FILE), else `default` without a password."""
        env = os.environ if env is None else env
        users_file = users_file or env.get("ABIDANCE_STORE_USERS_FILE")
        if users_file:
            return cls.from_file(users_file)
        name = env.get("ABIDANCE_STORE_USER") or "default"
        password = client_password(env)
        return cls([User(name, "writer", sha256_hex(password) if password else None)])


def client_password(env=None) -> str:
    """A client's password: ABIDANCE_STORE_PASSWORD, else the owner-only file ABIDANCE_STORE_PASSWORD_FILE."""
    env = os.environ if env is None else env
    if env.get("ABIDANCE_STORE_PASSWORD"):
        return env["ABIDANCE_STORE_PASSWORD"]
    if env.get("ABIDANCE_STORE_PASSWORD_FILE"):
        return read_private_file(env["ABIDANCE_STORE_PASSWORD_FILE"], "password file").strip()
    return ""
