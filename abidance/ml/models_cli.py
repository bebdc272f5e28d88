"""`abidance models`: the model registry from the command line.

    abidance models list [--name NAME] [--status live]
    abidance models show NAME VERSION
    abidance models promote NAME VERSION --reason "..." [--force]   # candidate -> shadow -> live
    abidance models demote NAME VERSION --reason "..."              # live -> shadow
    abidance models retire NAME VERSION --reason "..."

The store is, in order: --store, $ABIDANCE_STORE_URL, the config's store.url,
http://127.0.0.1:8123 (an `abidance store` process or a ClickHouse server; chdb:///dir
when nothing else has that directory open). Promotion to live checks the config's [ml]
criteria (--config or $ABIDANCE_CONFIG; the defaults otherwise). A running node picks up
a change within ml.registry_poll_s.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
import sys
from dataclasses import asdict

from abidance.config import ConfigError, load_config
from abidance.config.sections import MlSection
from abidance.store.client import redact
from abidance.extras import require

DEFAULT_STORE_URL = "http://127.0.0.1:8123"


def add_parser(sub) -> None:
    p = sub.add_parser("models", help="the model registry: list, show, promote, demote, retire",
                       description=__doc__.split("\n\n")[0] + " Promotion to live is refused unless the "
                       "out-of-sample criteria in [ml] are met, or --force with a --reason (recorded).")
    p.add_argument("--store", default=None, metavar="URL",
                   help="the store (default $ABIDANCE_STORE_URL, else the config's store.url, else "
                        f"{DEFAULT_STORE_URL})")
    p.add_argument("--database", default=None,
                   help="database of the registry (default $ABIDANCE_STORE_DATABASE, else the config's, else abidance)")
    p.add_argument("--config", default=None, help="node config for the [ml] criteria (default $ABIDANCE_CONFIG)")
    p.add_argument("--author", default=None, help="who makes the change (default the login name)")
    verbs = p.add_subparsers(dest="verb", required=True, metavar="VERB")
    ls = verbs.add_parser("list", help="every version with its status and out-of-sample metrics")
    ls.add_argument("--name", default=None, help="only this model")
    ls.add_argument("--status", default=None, choices=("candidate", "shadow", "live", "retired"))
    ls.add_argument("--json", action="store_true", help="one JSON object per line")
    show = verbs.add_parser("show", help="one version in full, with its events")
    show.add_argument("name")
    show.add_argument("version", type=int)
    for verb, text in (("promote", "candidate -> shadow, shadow -> live (the previous live version is retired)"),
                       ("demote", "live -> shadow"), ("retire", "any -> retired")):
        v = verbs.add_parser(verb, help=text)
        v.add_argument("name")
        v.add_argument("version", type=int)
        v.add_argument("--reason", required=verb != "promote", default="", help="why (recorded)")
        if verb == "promote":
            v.add_argument("--force", action="store_true",
                           help="go live although the out-of-sample criteria are not met (needs --reason)")
    p.set_defaults(func=main)


def _settings(args):
    """(store URL, database, [ml] section) from the flags, the environment and the config."""
    path = args.config or os.environ.get("ABIDANCE_CONFIG")
    cfg = load_config(path) if path else None
    url = args.store or os.environ.get("ABIDANCE_STORE_URL") or (cfg.store.url if cfg else "") or DEFAULT_STORE_URL
    database = args.database or os.environ.get("ABIDANCE_STORE_DATABASE") or (cfg.store.database if cfg else "abidance")
    return url, database, cfg.ml if cfg else MlSection()


def _time(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns / 1e9, dt.timezone.utc).strftime("%Y-%m-%d %H:%M")


def _num(metrics: dict, keys) -> str:
    # Lazy: the model registry needs pyarrow (the store extra).
    from abidance.ml.registry import metric

    v = metric(metrics, keys)
    return "-" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)


def _table(versions) -> str:
    # Lazy: the model registry needs pyarrow (the store extra).
    from abidance.ml.registry import AUC_KEYS, HIT_RATE_KEYS, SIGNALS_KEYS

    head = ("name", "ver", "status", "oos_auc", "oos_signals", "oos_hit", "trained on", "updated", "reason")
    rows = [(m.name, str(m.version), m.status, _num(m.out_of_sample, AUC_KEYS), _num(m.out_of_sample, SIGNALS_KEYS),
             _num(m.out_of_sample, HIT_RATE_KEYS), f"{_time(m.train_start)} .. {_time(m.train_end)}",
             _time(m.updated_at), m.reason) for m in versions]
    widths = [max(len(r[i]) for r in (head, *rows)) for i in range(len(head) - 1)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r[:-1], widths)) + "  " + r[-1] for r in (head, *rows)]
    return "\n".join(lines)


def main(args) -> int:
    require("models", "store")
    # Lazy: the model registry needs pyarrow (the store extra, checked just above).
    from abidance.ml.registry import Criteria, ModelRegistry, RegistryError
    try:
        url, database, ml = _settings(args)
    except ConfigError as exc:
        print("abidance models: bad config:\n  " + "\n  ".join(exc.errors), file=sys.stderr)
        return 2
    author = args.author or os.environ.get("ABIDANCE_AUTHOR") or getpass.getuser()
    try:
        registry = ModelRegistry.open(url, database, criteria=Criteria.from_config(ml), author=author)
    except Exception as exc:  # noqa: BLE001 - a bad URL, a store that is down or locked: say which
        print(f"abidance models: cannot open the store at {redact(url)} (database {database}): {exc}",
              file=sys.stderr)
        return 2
    try:
        return _run(args, registry)
    except RegistryError as exc:
        print(f"abidance models: {exc}", file=sys.stderr)
        return 1
    finally:
        registry.close()


def _run(args, registry) -> int:
    if args.verb == "list":
        versions = registry.list(args.name, args.status)
        if args.json:
            for m in versions:
                print(json.dumps(asdict(m), sort_keys=True))
        else:
            print(_table(versions) if versions else "no model versions registered")
        return 0
    if args.verb == "show":
        m = registry.get(args.name, args.version)
        print(json.dumps({"model": asdict(m), "events": registry.events(m.name, m.version)}, indent=2,
                         sort_keys=True))
        return 0
    if args.verb == "promote":
        m = registry.promote(args.name, args.version, reason=args.reason, force=args.force)
    elif args.verb == "demote":
        m = registry.demote(args.name, args.version, reason=args.reason)
    else:
        m = registry.retire(args.name, args.version, reason=args.reason)
    print(f"{m.label} is now {m.status} ({m.reason})")
    return 0
