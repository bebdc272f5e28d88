"""`abidance sim` command line."""

from __future__ import annotations

import logging
import sys

from abidance.core.loop import run as runner
from abidance.exchange.sim.config import ConfigError, MarketConfig, load_config
from abidance.exchange.sim.faults import Faults
from abidance.exchange.sim.server import serve


def add_parser(sub) -> None:
    p = sub.add_parser("sim", help="run the local Binance-compatible exchange simulator",
                       description="Run a Binance Spot-compatible simulator on loopback (REST + WebSocket streams).")
    p.add_argument("--config", help="TOML file with a [sim] table (see docs/simulator.md)")
    p.add_argument("--host", help="address to bind (default 127.0.0.1)")
    p.add_argument("--rest-port", type=int, help="REST port (0 = any free port)")
    p.add_argument("--ws-port", type=int, help="WebSocket port (0 = any free port)")
    p.add_argument("--speed", type=float, help="market clock speed (1 = real time)")
    p.add_argument("--seed", type=int, help="seed of the synthetic market and of injected faults")
    p.add_argument("--candles", help="replay this candle file (feather/parquet/csv) as BTCUSDT's market")
    p.add_argument("--fault", action="append", default=[], metavar="KEY=VALUE",
                   help="inject a fault, e.g. --fault depth_drop_rate=0.05 --fault seed=3 (see docs/simulator.md)")
    p.add_argument("--log-level", default="INFO")
    p.set_defaults(func=main)


def main(args) -> int:
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        print(f"abidance sim: bad config: {exc}", file=sys.stderr)
        return 2
    for name in ("host", "rest_port", "ws_port", "speed", "seed"):
        value = getattr(args, name)
        if value is not None:
            setattr(cfg, name, value)
    if args.fault:
        try:
            changes = {}
            for item in args.fault:
                key, sep, value = item.partition("=")
                if not sep:
                    raise ValueError(f"--fault {item!r}: expected KEY=VALUE")
                changes[key.strip()] = float(value) if "." in value or "e" in value.lower() else int(value)
            cfg.faults = Faults(cfg.faults).update(changes)
        except ValueError as exc:
            print(f"abidance sim: {exc}", file=sys.stderr)
            return 2
    if args.candles:
        cfg.markets = [MarketConfig("BTCUSDT", "candles", args.candles)]

    try:
        runner(serve(cfg))
    except (ValueError, OSError) as exc:
        print(f"abidance sim: {exc}", file=sys.stderr)
        return 2
    return 0
