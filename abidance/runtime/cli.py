"""`abidance run` (the trading node) and `abidance kill` (the kill switch from a shell)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser("run", help="run the trading node",
                       description="Run the trading node: market data, strategies, risk, execution, portfolio.")
    p.add_argument("--config", help="node config TOML (default: built-in defaults; see docs/config.md)")
    p.set_defaults(func=run_main)
    k = sub.add_parser("kill", help="halt a running node and cancel its orders (writes the kill file)",
                       description="Kill switch: the node polls its kill file twice a second.")
    k.add_argument("--config", help="the node's config TOML (to find its state_dir and kill_switch_file)")
    k.add_argument("--reason", default="operator kill switch (abidance kill)")
    k.set_defaults(func=kill_main)


def _load(args):
    from abidance.config import ConfigError, load_config

    try:
        return load_config(args.config)
    except ConfigError as exc:
        print("abidance: bad config:\n  " + "\n  ".join(exc.errors), file=sys.stderr)
        return None


def run_main(args) -> int:
    from abidance.runtime.logs import setup_logging
    from abidance.runtime.node import TradingNode

    config = _load(args)
    if config is None:
        return 2
    setup_logging(config.node.log_level, config.node.log_format)
    try:
        node = TradingNode(config)
    except ValueError as exc:
        print(f"abidance run: {exc}", file=sys.stderr)
        return 2
    try:
        import uvloop
        runner = uvloop.run
    except ImportError:   # uvloop is Linux/macOS only
        runner = asyncio.run
    try:
        return runner(node.run())
    except ValueError as exc:
        print(f"abidance run: {exc}", file=sys.stderr)
        return 2


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
