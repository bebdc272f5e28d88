"""`abidance run` (the trading node) and `abidance kill` (the kill switch from a shell)."""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import sys
from pathlib import Path

from abidance.config import ConfigError, load_config
from abidance.core.loop import run as runner
from abidance.exchange.sim.config import ConfigError as SimConfigError, parse_config as parse_sim
from abidance.exchange.sim.server import SimServer
from abidance.runtime.logs import setup_logging
from abidance.runtime.node import TradingNode


def add_parser(sub) -> None:
    p = sub.add_parser("run", help="run the trading node",
                       description="Run the trading node: market data, strategies, risk, execution, portfolio.")
    p.add_argument("--config", help="node config TOML (default: built-in defaults; see docs/config.md)")
    p.add_argument("--sim", action="store_true",
                   help="start the simulator in-process from the config's [sim] table (free ports) and trade "
                        "against it: fully offline; the node's state starts fresh, like the simulator")
    p.add_argument("--seconds", type=float, default=0, help="stop after this long (0 = until SIGINT/SIGTERM)")
    p.set_defaults(func=run_main)
    k = sub.add_parser("kill", help="halt a running node and cancel its orders (writes the kill file)",
                       description="Kill switch: the node polls its kill file twice a second.")
    k.add_argument("--config", help="the node's config TOML (to find its state_dir and kill_switch_file)")
    k.add_argument("--reason", default="operator kill switch (abidance kill)")
    k.set_defaults(func=kill_main)


def _load(args):
    try:
        return load_config(args.config)
    except ConfigError as exc:
        print("abidance: bad config:\n  " + "\n  ".join(exc.errors), file=sys.stderr)
        return None


def run_main(args) -> int:
    config = _load(args)
    if config is None:
        return 2
    setup_logging(config.node.log_level, config.node.log_format)

    try:
        return runner(_run(config, args))
    except ValueError as exc:
        print(f"abidance run: {exc}", file=sys.stderr)
        return 2


async def _run(config, args) -> int:
    sim = None
    if args.sim:
        config, sim = await _embedded_sim(config)
    try:
        node = TradingNode(config, config_dir=Path(args.config).resolve().parent if args.config else None)
        if args.seconds > 0:
            asyncio.get_running_loop().call_later(args.seconds, node.stopping.set)
        return await node.run()
    finally:
        if sim is not None:
            await sim.stop()


async def _embedded_sim(config):
    """A simulator on free loopback ports, and the config pointed at it with a fresh state dir."""
    try:
        sim_cfg = parse_sim({"sim": config.sim})
    except SimConfigError as exc:
        raise ValueError(f"bad [sim] table: {exc}") from None
    sim_cfg.rest_port = sim_cfg.ws_port = 0
    sim = SimServer(sim_cfg)
    await sim.start()
    state_dir = Path(config.node.state_dir) / "embedded-sim"
    shutil.rmtree(state_dir, ignore_errors=True)      # a new simulator knows nothing of old orders
    node = dataclasses.replace(config.node, state_dir=state_dir)
    binance = dataclasses.replace(config.binance, venue="sim").with_urls(sim.rest_url, sim.ws_url)
    print(f"abidance run: embedded simulator at {sim.rest_url} / {sim.ws_url}; state in {state_dir}", flush=True)
    return dataclasses.replace(config, node=node, binance=binance), sim


def kill_main(args) -> int:
    config = _load(args)
    if config is None:
        return 2
    name = config.risk.kill_switch_file
    if not name:
        print("abidance kill: risk.kill_switch_file is empty in this config: use SIGUSR1 instead", file=sys.stderr)
        return 2
    path = Path(name) if Path(name).is_absolute() else Path(config.node.state_dir) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(args.reason + "\n", encoding="utf-8")
    print(f"kill file written: {path} (the node halts within a second)")
    return 0
