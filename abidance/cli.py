"""abidance: an automated trading bot for Binance Spot."""

from __future__ import annotations

import argparse
import sys

from abidance import __version__, dashboard_cli, replay
from abidance.backtest import cli as backtest_cli, optimize_cli
from abidance.chaos import cli as chaos_cli
from abidance.config import cli as config_cli
from abidance.download import cli as download_cli
from abidance.drift import cli as drift_cli
from abidance.exchange.binance import cli as stream_cli
from abidance.exchange.sim import cli as sim_cli
from abidance.extras import MissingExtra
from abidance.ml import models_cli, train_cli
from abidance.runtime import cli as run_cli, demo, doctor, health
from abidance.store import cli as store_cli, migrate_cli


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="abidance", description=__doc__)
    parser.add_argument("--version", action="version", version=f"abidance {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    replay.add_parser(sub)
    sim_cli.add_parser(sub)
    stream_cli.add_parser(sub)
    run_cli.add_parser(sub)
    config_cli.add_parser(sub)
    store_cli.add_parser(sub)
    migrate_cli.add_parser(sub)
    demo.add_parser(sub)
    dashboard_cli.add_parser(sub)
    backtest_cli.add_parser(sub)
    optimize_cli.add_parser(sub)
    download_cli.add_parser(sub)
    models_cli.add_parser(sub)
    train_cli.add_parser(sub)
    health.add_parser(sub)
    doctor.add_parser(sub)
    chaos_cli.add_parser(sub)
    drift_cli.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except MissingExtra as exc:
        print(exc, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
