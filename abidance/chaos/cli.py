"""`abidance chaos`: run a fault campaign and print its invariant report (exit 0 only if all hold)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import orjson

from abidance.chaos.campaign import Campaign, Settings


def add_parser(sub) -> None:
    p = sub.add_parser("chaos", help="fault campaign: node, simulator and store under faults and kill -9",
                       description=__doc__)
    p.add_argument("--seconds", type=float, default=60.0, help="how long the campaign runs (wall seconds)")
    p.add_argument("--speed", type=float, default=20.0, help="the simulator's market speed (x real time)")
    p.add_argument("--seed", type=int, default=16, help="seed of the market and of the injected faults")
    p.add_argument("--node-kill-every", type=float, default=20.0, help="seconds between kill -9 of the node")
    p.add_argument("--store-kill-every", type=float, default=30.0, help="seconds between kill -9 of the store")
    p.add_argument("--workdir", default="chaos-run", help="state, store data and the node's log go here")
    p.add_argument("--out", default="", help="also write the report (JSON) to this file")
    p.set_defaults(func=main)


def main(args) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    settings = Settings(args.seconds, args.speed, args.seed, args.node_kill_every, args.store_kill_every,
                        Path(args.workdir))
    report = Campaign(settings).run()
    for check in report["invariants"]:
        print(f"{'ok  ' if check['ok'] else 'FAIL'} {check['name']}: {check['detail']}")
    print(f"fills {report['fills']}, orders {report['orders']}, node restarts {report['node_restarts']}, "
          f"store restarts {report['store_restarts']}, faults {report['faults']}, "
          f"RSS {report['rss_start_bytes'] / 2**20:.1f} -> {report['rss_end_bytes'] / 2**20:.1f} MiB, "
          f"fds {report['fds_start']} -> {report['fds_end']}")
    if report["node_exit_code_at_the_end"] != 0:
        print(f"FAIL the node did not stop cleanly at the end: exit code {report['node_exit_code_at_the_end']}")
    if args.out:
        Path(args.out).write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    print("chaos: every invariant holds" if report["ok"] else "chaos: INVARIANT BROKEN", file=sys.stdout)
    return 0 if report["ok"] else 1
