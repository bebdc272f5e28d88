"""`abidance migrate`: create or update the store's tables on a ClickHouse server or cluster.

`abidance store` migrates the embedded store when it starts; a ClickHouse server (or a
cluster: `store.cluster`) is migrated by this command, once per release, from any machine
that reaches it with a user allowed to run DDL. It reads `store.url`, `store.database`,
`store.cluster` and `store.market_ttl_days` from the node's config. `--dry-run` prints the
statements a fresh store gets, without connecting.
"""

from __future__ import annotations

import sys

from abidance.config import ConfigError, load_config
from abidance.extras import require
from abidance.store.client import connect, redact
from abidance.store.migrations import MIGRATIONS, apply_migrations, fresh_statements


def add_parser(sub) -> None:
    p = sub.add_parser("migrate", help="create or update the store's tables on a ClickHouse server or cluster",
                       description="Apply the store's pending migrations to store.url (ON CLUSTER when "
                                   "store.cluster is set), and bring the market-data TTL to store.market_ttl_days "
                                   "(docs/store.md).")
    p.add_argument("--config", required=True, help="node config TOML (its [store] section)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the statements a fresh store gets (one per paragraph) and do not connect")
    p.set_defaults(func=main)


def main(args) -> int:
    try:
        store = load_config(args.config).store
    except ConfigError as exc:
        print(f"abidance migrate: {exc}", file=sys.stderr)
        return 2
    where = f"cluster '{store.cluster}'" if store.cluster else "one server"
    if args.dry_run:
        for sql in fresh_statements(store.database, store.market_ttl_days, store.cluster):
            print(sql + ";\n")
        return 0
    if not store.url:
        print("abidance migrate: store.url is empty: no store to migrate", file=sys.stderr)
        return 2
    require("migrate", "store")
    try:
        client = connect(store.url, "default")
        applied = apply_migrations(client.command, store.database, store.market_ttl_days, store.cluster)
    except Exception as exc:  # noqa: BLE001 - any failure to reach or change the store is the answer
        text = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        print(f"abidance migrate: {redact(store.url)} ({where}): {text}", file=sys.stderr)
        return 2
    done = ", ".join(map(str, applied)) if applied else "none (up to date)"
    print(f"abidance migrate: {redact(store.url)} database {store.database} on {where}: applied {done}; "
          f"schema version {MIGRATIONS[-1].version}; market-data TTL "
          f"{store.market_ttl_days or 'none'}{' days' if store.market_ttl_days else ''}")
    return 0
