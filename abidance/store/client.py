"""One way to reach the store from any process: a clickhouse-connect client.

    connect("http://127.0.0.1:8123")          # an `abidance store` process, or a ClickHouse server
    connect("https://user:pw@ch.example:8443")
    connect("chdb:///var/lib/abidance/store")   # embedded, in THIS process only

The user and password come from the URL or from ABIDANCE_STORE_USER /
ABIDANCE_STORE_PASSWORD, or ABIDANCE_STORE_PASSWORD_FILE (a file only its owner can read; the
URL wins); they are never logged (`redact` gives a URL safe to print).
"""

from __future__ import annotations

import logging
import os
from urllib.parse import unquote, urlsplit

from abidance.store.users import client_password

log = logging.getLogger("abidance.store.client")


def redact(url: str) -> str:
    """The URL without its password (for logs and messages)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:***@{parts.hostname or ''}" + (f":{parts.port}" if parts.port else "")
    return parts._replace(netloc=netloc).geturl()


def connect(url: str, database: str = "abidance", **kwargs):
    """A clickhouse-connect client for `url`, with `database` as its default database.

    - "http://host:port" / "https://host:port": an `abidance store` process (the embedded
      store served over ClickHouse's HTTP interface, see abidance.store.server) or a real
      ClickHouse server. Compression is off (`compress=False`): the served store does not
      compress, and on loopback it would only cost CPU; pass compress=True for a remote
      server if you like.
    - "chdb:///path/to/dir": clickhouse-connect's chdb mode, the engine inside THIS process.
      chdb locks the directory to one process and one directory per process: while anything
      else (an `abidance store`, the bot) has it open, this fails ("Cannot lock file
      .../status"). Use it for single-process tools and tests; everything that runs beside
      the bot goes through the served store.

    Extra keyword arguments go to `clickhouse_connect.get_client` (timeouts, settings, ...).
    """
    # Lazy: clickhouse-connect is the store extra: only a store connection needs it.
    import clickhouse_connect

    if not url:
        raise ValueError("no store URL (store.url is empty)")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "chdb":
        path = unquote((parts.netloc or "") + (parts.path or ""))
        if not path:
            raise ValueError(f"chdb URL needs a directory: chdb:///path/to/dir, got {url!r}")
        path = os.path.abspath(path)             # chdb://rel/dir is relative to the working directory
        os.makedirs(path, exist_ok=True)
        return clickhouse_connect.get_client(dsn=f"chdb://{path}", database=database, **kwargs)
    if scheme not in ("http", "https"):
        raise ValueError(f"store URL must start with http://, https:// or chdb://, got {redact(url)!r}")
    user = unquote(parts.username) if parts.username else os.environ.get("ABIDANCE_STORE_USER") or "default"
    password = unquote(parts.password) if parts.password is not None else client_password()
    port = parts.port or (8443 if scheme == "https" else 8123)
    kwargs.setdefault("compress", False)
    log.debug("connecting to the store at %s", redact(url))
    return clickhouse_connect.get_client(interface=scheme, host=parts.hostname or "127.0.0.1", port=port,
                                         username=user, password=password, database=database, **kwargs)
