"""`abidance doctor`: check a set-up without trading, and say what is wrong and how to fix it.

    abidance doctor --config /etc/abidance/node.toml

Checks, each OK / WARN / FAIL with the fix: the config; the API key (environment or key file,
its permissions); the clock against the venue's; the store (reachable, migrations applied); free
disk space where the node, the store and the spool write; that the ports to be served are free;
the extras the config needs. Exit status 1 when anything FAILs. Nothing is ordered, nothing is
written (the store is only read).
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import orjson

from abidance import extras
from abidance.config import ConfigError, load_config
from abidance.exchange.binance.credentials import Credentials, CredentialsError
from abidance.store.client import connect, redact
from abidance.store.migrations import MIGRATIONS, applied_versions

OK, WARN, FAIL = "OK", "WARN", "FAIL"
DEFAULT_PORTS = (8501, 8123)        # the dashboard's and the store's defaults
SKEW_WARN_MS = 500


@dataclass
class Finding:
    status: str
    check: str
    message: str
    fix: str = ""

    def line(self) -> str:
        return f"{self.status:4}  {self.check}: {self.message}" + (f"\n      fix: {self.fix}" if self.fix else "")


def add_parser(sub) -> None:
    p = sub.add_parser("doctor", help="check the config, keys, clock, store, disk, ports and extras (no trading)",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default=os.environ.get("ABIDANCE_CONFIG"), help="the node's config file "
                   "(default $ABIDANCE_CONFIG)")
    p.add_argument("--ports", default=",".join(map(str, DEFAULT_PORTS)),
                   help="ports this machine must have free for the store and the dashboard (comma-separated; "
                        "\"\" = none)")
    p.add_argument("--min-free-gb", type=float, default=1.0, help="least free disk space, in GB (default 1)")
    p.add_argument("--offline", action="store_true", help="skip the checks that reach the venue")
    p.set_defaults(func=main)


# ---- the checks ------------------------------------------------------------------------------------

def check_config(path: str | None):
    if not path:
        return None, [Finding(FAIL, "config", "no config file given", "pass --config FILE (or set ABIDANCE_CONFIG)")]
    try:
        config = load_config(path)
    except ConfigError as exc:
        return None, [Finding(FAIL, "config", f"{path}: {len(exc.errors)} error(s): " + "; ".join(exc.errors),
                              "edit the keys named (docs/config.md lists every key)")]
    except OSError as exc:
        return None, [Finding(FAIL, "config", f"{path}: {exc.strerror}", "give the path of a readable file")]
    return config, [Finding(OK, "config", f"{path}: valid (node {config.node.name!r}, mode {config.node.mode}, "
                                          f"venue {config.binance.venue})")]


def check_credentials(config) -> list[Finding]:
    try:
        creds = Credentials.from_env()
    except CredentialsError as exc:
        return [Finding(FAIL, "API key", str(exc), "see docs/connector.md: keys come from the environment or a "
                                                   "key file private to its owner (chmod 600)")]
    needed = config.node.mode == "live" and config.binance.venue != "sim"
    if creds is None:
        if needed:
            return [Finding(FAIL, "API key", f"none set, and node.mode = \"live\" on {config.binance.venue}",
                            "set ABIDANCE_BINANCE_API_KEY and ABIDANCE_BINANCE_API_SECRET, or "
                            "ABIDANCE_BINANCE_KEY_FILE (chmod 600)")]
        return [Finding(OK, "API key", "none needed (paper mode or the simulator)")]
    return [Finding(OK, "API key", f"{creds.masked_key} ({creds.key_type}), stored privately")]


def check_clock(config, timeout_s: float = 5.0) -> list[Finding]:
    url = config.binance.rest_url + "/api/v3/time"
    try:
        t0 = time.time() * 1000
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            server = orjson.loads(resp.read())["serverTime"]
        t1 = time.time() * 1000
    except (OSError, ValueError, KeyError) as exc:
        return [Finding(FAIL, "venue", f"{config.binance.rest_url} did not answer /api/v3/time ({exc})",
                        "check the network, binance.rest_url / binance.venue, or start the simulator")]
    skew = server - (t0 + t1) / 2
    window = config.binance.recv_window_ms
    if abs(skew) >= window:
        return [Finding(FAIL, "clock", f"{skew:+.0f} ms off the venue's clock: signed requests would be refused "
                                       f"(-1021, recvWindow {window} ms)", "synchronise the clock (chrony / "
                                       "systemd-timesyncd)")]
    status = WARN if abs(skew) >= SKEW_WARN_MS else OK
    return [Finding(status, "clock", f"{skew:+.0f} ms off the venue's clock (round trip {t1 - t0:.0f} ms)",
                    "synchronise the clock (chrony / systemd-timesyncd)" if status == WARN else "")]


def check_store(config) -> list[Finding]:
    if not config.store.url:
        return [Finding(OK, "store", "none configured (store.url is empty): events are not recorded")]
    if extras.missing("store"):
        return [Finding(FAIL, "store", "the store extra is not installed", "pip install 'abidance[store]'")]
    try:
        client = connect(config.store.url, "default", connect_timeout=5, send_receive_timeout=10)
        applied = applied_versions(lambda sql: client.command(sql), config.store.database)
    except Exception as exc:  # noqa: BLE001 - any failure to reach or read the store is the finding
        text = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        return [Finding(FAIL, "store", f"{redact(config.store.url)}: {text}",
                        "start it (`abidance store` or the ClickHouse server), check store.url and "
                        "ABIDANCE_STORE_USER / ABIDANCE_STORE_PASSWORD")]
    wanted = [m.version for m in MIGRATIONS]
    pending = [v for v in wanted if v not in applied]
    if pending:
        return [Finding(WARN, "store", f"{redact(config.store.url)} reachable; migrations {pending} not applied yet",
                        "`abidance store` applies them when it starts; on a ClickHouse server or cluster run "
                        "`abidance migrate --config FILE`")]
    return [Finding(OK, "store", f"{redact(config.store.url)} reachable, migrations {wanted} applied")]


def check_disk(config, min_free_gb: float) -> list[Finding]:
    out = []
    places = {"state": Path(config.node.state_dir), "spool": Path(config.store.spool_dir)}
    store_dir = os.environ.get("ABIDANCE_STORE_DIR")
    if store_dir:
        places["store"] = Path(store_dir)
    for name, path in places.items():
        probe = path
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent            # not created yet: the file system it will be on
        free_gb = shutil.disk_usage(probe).free / 1e9
        if free_gb < min_free_gb:
            out.append(Finding(FAIL, "disk", f"{name} folder {path}: {free_gb:.2f} GB free (less than "
                                             f"{min_free_gb:g} GB)", "free space or move the folder"))
        else:
            out.append(Finding(OK, "disk", f"{name} folder {path}: {free_gb:.1f} GB free"))
    return out


def check_ports(ports: list[int]) -> list[Finding]:
    out = []
    for port in ports:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                out.append(Finding(FAIL, "ports", f"127.0.0.1:{port} is already in use",
                                   f"stop what listens there (`ss -ltnp 'sport = :{port}'`) or choose another port"))
                continue
        out.append(Finding(OK, "ports", f"127.0.0.1:{port} is free"))
    return out


ML_BUILTINS = ("ml_signal", "regime_switch")     # built-in strategies that load scikit-learn models


def check_extras(config) -> list[Finding]:
    needed = set()
    if config.store.url:
        needed.add("store")
    if any(s.class_name in ML_BUILTINS for s in config.strategies if s.enabled):
        needed.add("ml")
    installed = extras.installed()
    out = [Finding(FAIL, "extras", f"the config needs the {name} extra, which is not installed",
                   f"pip install 'abidance[{name}]'") for name in sorted(needed) if not installed[name]]
    have = ", ".join(name for name, ok in installed.items() if ok) or "none"
    out.append(Finding(OK if not out else WARN, "extras", f"installed: {have}"))
    return out


def diagnose(config_path: str | None, ports: list[int], min_free_gb: float, offline: bool) -> list[Finding]:
    config, findings = check_config(config_path)
    if config is None:
        return findings + check_ports(ports)
    findings += check_credentials(config)
    if not offline:
        findings += check_clock(config)
    findings += check_store(config)
    findings += check_disk(config, min_free_gb)
    findings += check_ports(ports)
    findings += check_extras(config)
    return findings


def main(args) -> int:
    try:
        ports = [int(p) for p in args.ports.split(",") if p.strip()]
    except ValueError:
        print(f"abidance doctor: --ports must be comma-separated numbers, got {args.ports!r}", file=sys.stderr)
        return 2
    findings = diagnose(args.config, ports, args.min_free_gb, args.offline)
    for f in findings:
        print(f.line())
    failed = sum(f.status == FAIL for f in findings)
    warned = sum(f.status == WARN for f in findings)
    print(f"abidance doctor: {failed} problem(s), {warned} warning(s)")
    return 1 if failed else 0
