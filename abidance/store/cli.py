"""`abidance store`: serve the embedded store (chdb) over ClickHouse's HTTP interface."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading

from abidance.store.server import StoreServer


def add_parser(sub) -> None:
    p = sub.add_parser("store", help="serve the embedded ClickHouse store (chdb) on loopback",
                       description="Own the chdb data directory and serve ClickHouse's HTTP interface so the bot, "
                                   "the dashboard and research code (separate processes) all use clickhouse-connect. "
                                   "Migrations are applied at start. A password (ABIDANCE_STORE_PASSWORD, user "
                                   "ABIDANCE_STORE_USER or 'default') is required when set and for --allow-remote.")
    p.add_argument("--data-dir", default=os.environ.get("ABIDANCE_STORE_DIR", "store-data"),
                   help="chdb data directory (default $ABIDANCE_STORE_DIR or ./store-data)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; loopback only "
                                                        "unless --allow-remote)")
    p.add_argument("--port", type=int, default=8123, help="port (default 8123; 0 = any free port)")
    p.add_argument("--database", default="abidance", help="database of the node's tables (default abidance)")
    p.add_argument("--market-ttl-days", type=int, default=0,
                   help="keep market data (trades, bars, book tops, depth) this many days; 0 = forever")
    p.add_argument("--allow-remote", action="store_true",
                   help="allow a non-loopback --host (requires ABIDANCE_STORE_PASSWORD)")
    p.add_argument("--log-level", default="INFO")
    p.set_defaults(func=main)


def main(args) -> int:
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    password = os.environ.get("ABIDANCE_STORE_PASSWORD") or None
    user = os.environ.get("ABIDANCE_STORE_USER") or "default"
    if args.allow_remote and not password:
        print("abidance store: --allow-remote requires a password in ABIDANCE_STORE_PASSWORD", file=sys.stderr)
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
                             market_ttl_days=args.market_ttl_days, allow_remote=args.allow_remote, user=user,
                             password=password)
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
