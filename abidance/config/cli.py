"""`abidance config check|show|docs` command line."""

from __future__ import annotations

import argparse
import sys

from abidance.config import ConfigError, load_config, schema_markdown, to_toml
from abidance.config.strategies import strategy_errors


def add_parser(sub) -> None:
    p = sub.add_parser("config", help="check, show and document the node's configuration",
                       description="Validate the node's TOML config (with ABIDANCE__<SECTION>__<KEY> environment "
                                   "overrides), show the effective values, or print the reference of every key.")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    check = actions.add_parser("check", help="validate FILE and build its strategies (their parameters within "
                               "their declared ranges): print 'ok' and a summary, or every error (exit 2)")
    show = actions.add_parser("show", help="print the effective config of FILE as TOML, after environment overrides")
    for q in (check, show):
        q.add_argument("file", nargs="?", help="the config file (default: no file, all defaults)")
    actions.add_parser("docs", help="print the reference of every key as Markdown (docs/config.md)")
    p.set_defaults(func=main)


def main(args) -> int:
    if args.action == "docs":
        sys.stdout.write(schema_markdown())
        return 0
    try:
        cfg = load_config(args.file)
        if args.action == "check":
            problems = strategy_errors(cfg)
            if problems:
                raise ConfigError(problems, args.file or "config")
    except ConfigError as exc:
        print(f"abidance config: {exc}", file=sys.stderr)
        return 2
    if args.action == "show":
        sys.stdout.write(to_toml(cfg))
    else:
        print("\n".join(["ok", *summary(cfg)]))
    return 0


def summary(cfg) -> list[str]:
    """A few lines saying what the config will do."""
    node, risk, q = cfg.node, cfg.risk, cfg.risk.quote_asset
    enabled = [s for s in cfg.strategies if s.enabled]
    lines = [
        f"  node {node.name!r}: mode {node.mode}, venue {cfg.binance.venue} ({cfg.binance.rest_url}), "
        f"state {node.state_dir}",
        f"  symbols: {', '.join(node.symbols) or 'none'}; bars: {', '.join(cfg.data.bar_intervals)}",
        f"  strategies: {len(enabled)} enabled of {len(cfg.strategies)}",
        *(f"    {s.id}: {s.class_name} on {', '.join(s.symbols)} {s.timeframe}"
          f"{'' if s.enabled else ' (disabled)'}" for s in cfg.strategies),
        f"  risk: max order {risk.max_order_notional} {q}, gross exposure {risk.max_gross_exposure} {q}, "
        f"daily loss {risk.daily_loss_limit} {q}, drawdown {risk.max_drawdown} {q} (0 = off); sizing {risk.sizing}",
    ]
    return lines


def run(argv: list[str] | None = None) -> int:
    """Standalone entry: `python -m abidance.config.cli check FILE`."""
    parser = argparse.ArgumentParser(prog="abidance")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["config", *(sys.argv[1:] if argv is None else argv)])
    return args.func(args)


if __name__ == "__main__":
    sys.exit(run())
