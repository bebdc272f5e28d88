"""`abidance store`: serve the embedded store (chdb) over ClickHouse's HTTP interface."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from dataclasses import replace

from abidance.extras import require
from abidance.store.http_front import Limits
from abidance.store.server import StoreServer
from abidance.store.users import Users, UsersError


def add_parser(sub) -> None:
    p = sub.add_parser("store", help="serve the embedded ClickHouse store (chdb) on loopback",
                       description="Own the chdb data directory and serve ClickHouse's HTTP interface so the bot, "
                                   "the dashboard and research code (separate processes) all use clickhouse-connect. "
                                   "Migrations are applied at start. Users and roles come from --users-file, or one writer from "
                                   "ABIDANCE_STORE_USER / ABIDANCE_STORE_PASSWORD (docs/store.md); every statement "
                                   "is checked: no table functions that reach outside, no settings that lift limits.")
    p.add_argument("--data-dir", default=os.environ.get("ABIDANCE_STORE_DIR", "store-data"),
                   help="chdb data directory (default $ABIDANCE_STORE_DIR or ./store-data)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; loopback only "
                                                        "unless --allow-remote)")
    p.add_argument("--port", type=int, default=8123, help="port (default 8123; 0 = any free port)")
    p.add_argument("--database", default="abidance", help="database of the node's tables (default abidance)")
    p.add_argument("--market-ttl-days", type=int, default=0,
                   help="keep market data (trades, bars, book tops, depth) this many days; 0 = forever")
    p.add_argument("--allow-remote", action="store_true",
                   help="allow a non-loopback --host (requires a password for every user)")
    p.add_argument("--users-file", default=None,
                   help="TOML file of users (role writer/operator/reader, password or password_sha256), mode 600 "
                        "(default $ABIDANCE_STORE_USERS_FILE; without one: ABIDANCE_STORE_USER / "
                        "ABIDANCE_STORE_PASSWORD as the one writer, else 'default' without a password)")
    p.add_argument("--max-connections", type=int, default=Limits.max_connections,
                   help=f"open connections at most (default {Limits.max_connections}; the next is answered 503)")
    p.add_argument("--max-body-mb", type=int, default=Limits.max_body_bytes >> 20,
                   help=f"largest insert body of a writer, MiB (default {Limits.max_body_bytes >> 20}; other users "
                        f"{Limits.max_query_body_bytes >> 20})")
    p.add_argument("--max-execution-time", type=int, default=Limits.max_execution_time_s,
                   help=f"seconds a client's statement may run (default {Limits.max_execution_time_s})")
    p.add_argument("--log-level", default="INFO")
    p.set_defaults(func=main)


def main(args) -> int:
    require("store", "store")
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        users = Users.from_env(users_file=args.users_file)
        limits = replace(Limits(), max_connections=args.max_connections, max_body_bytes=args.max_body_mb << 20,
                         max_execution_time_s=args.max_execution_time).validate()
    except (UsersError, ValueError) as exc:
        print(f"abidance store: {exc}", file=sys.stderr)
        return 2
    if args.allow_remote and users.open:
        print("abidance store: --allow-remote requires a password for every user (ABIDANCE_STORE_PASSWORD or a "
              "users file)", file=sys.stderr)
        return 2
    if args.market_ttl_days < 0:
        print("abidance store: --market-ttl-days must be >= 0", file=sys.stderr)
        return 2
    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        server = StoreServer(args.data_dir, host=args.host, port=args.port, database=args.database,
                             market_ttl_days=args.market_ttl_days, allow_remote=args.allow_remote, users=users,
                             limits=limits)
        server.start()
    except Exception as exc:          # a bad address, a locked data directory, ...
        print(f"abidance store: {exc}", file=sys.stderr)
        return 2
    try:
        print(f"abidance store ready: {server.url} (data {server.data_dir})", flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
        for s, h in previous.items():
            signal.signal(s, h)
    return 0
