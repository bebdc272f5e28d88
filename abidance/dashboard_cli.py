"""`abidance dashboard`: run the Streamlit dashboard (streamlit_app/app.py) as a child process.

    abidance dashboard                                   # http://127.0.0.1:8501, store at $ABIDANCE_STORE_URL
    abidance dashboard --config config/sim.toml --store-url http://127.0.0.1:8123
    ABIDANCE_DASHBOARD_PASSWORD=... abidance dashboard --address 0.0.0.0

The dashboard binds to loopback by default; any other address needs ABIDANCE_DASHBOARD_PASSWORD
(the app then asks for it before showing anything). The store URL is, in order: --store-url,
$ABIDANCE_STORE_URL, the config's store.url, http://127.0.0.1:8123.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import abidance
from abidance.config import ConfigError, load_config
from abidance.store.client import redact

PASSWORD_ENV = "ABIDANCE_DASHBOARD_PASSWORD"
DEFAULT_STORE_URL = "http://127.0.0.1:8123"


def app_path() -> Path:
    """streamlit_app/app.py beside the abidance package (the repository layout; editable installs)."""
    return Path(abidance.__file__).resolve().parent.parent / "streamlit_app" / "app.py"


def is_loopback(address: str) -> bool:
    if address in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return False


def add_parser(sub) -> None:
    p = sub.add_parser("dashboard", help="run the Streamlit dashboard (monitoring, reports, kill switch, config)",
                       description=__doc__.split("\n\n")[0] + " Binds to 127.0.0.1 unless told otherwise; "
                       f"another address requires {PASSWORD_ENV}.")
    p.add_argument("--port", type=int, default=8501, help="port to serve on (default 8501)")
    p.add_argument("--address", default="127.0.0.1",
                   help=f"address to bind (default 127.0.0.1; a non-loopback address requires {PASSWORD_ENV})")
    p.add_argument("--store-url", default=None,
                   help="the store: an `abidance store` process or a ClickHouse server (default $ABIDANCE_STORE_URL, "
                        f"else the config's store.url, else {DEFAULT_STORE_URL})")
    p.add_argument("--config", default=None, help="the node's config file: limits, config editing, store database "
                   "(default $ABIDANCE_CONFIG)")
    p.set_defaults(func=main)


def build(args, environ: dict[str, str] | None = None) -> tuple[list[str], dict[str, str]]:
    """The streamlit command line and its environment. Raises SystemExit(2) with a message on bad input."""
    env = dict(os.environ if environ is None else environ)
    if not is_loopback(args.address) and not env.get(PASSWORD_ENV):
        raise SystemExit(f"abidance dashboard: refusing to bind {args.address}: a non-loopback address requires a "
                         f"password; set {PASSWORD_ENV} (or bind 127.0.0.1)")
    if not 0 < args.port < 65536:
        raise SystemExit(f"abidance dashboard: --port must be 1-65535, got {args.port}")
    app = app_path()
    if not app.is_file():
        raise SystemExit(f"abidance dashboard: {app} not found: the dashboard runs from a checkout of the "
                         "repository (streamlit_app/ beside abidance/)")
    config = args.config or env.get("ABIDANCE_CONFIG")
    url = args.store_url or env.get("ABIDANCE_STORE_URL")
    if config:
        path = Path(config).resolve()
        if not path.is_file():
            raise SystemExit(f"abidance dashboard: config file {config} not found")
        env["ABIDANCE_CONFIG"] = str(path)
        if not url:
            url = _config_store_url(path)
    env["ABIDANCE_STORE_URL"] = url or DEFAULT_STORE_URL
    root = str(app.parent.parent)
    env["PYTHONPATH"] = os.pathsep.join([root, *([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])])
    argv = [sys.executable, "-m", "streamlit", "run", str(app),
            "--server.headless", "true", "--server.address", args.address, "--server.port", str(args.port),
            "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
            "--client.toolbarMode", "minimal"]        # no "Deploy" button on an operator's dashboard
    return argv, env


def port_in_use(address: str, port: int) -> str | None:
    """Why Streamlit could not listen on (address, port), or None. Bound the way its server binds
    (SO_REUSEADDR: a port left in TIME_WAIT is free, one another process listens on is not), then
    released: checked before the URL is printed, so a busy port never shows a URL that serves
    someone else's page."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((address, port))
        except OSError as exc:
            return exc.strerror or str(exc)
    return None


def _config_store_url(path: Path) -> str | None:
    try:
        return load_config(path).store.url or None
    except ConfigError:
        return None          # the Config page shows the errors


def main(args) -> int:
    # Lazy: Streamlit is the dashboard extra: only `abidance dashboard` needs it.
    try:
        import streamlit  # noqa: F401
    except ImportError:
        print("abidance dashboard: streamlit is not installed: pip install 'abidance[dashboard]'", file=sys.stderr)
        return 2
    try:
        argv, env = build(args)
    except SystemExit as exc:
        print(exc, file=sys.stderr)
        return 2

    busy = port_in_use(args.address, args.port)
    if busy:
        print(f"abidance dashboard: cannot serve on {args.address}:{args.port}: {busy} (another dashboard or "
              f"program has it: stop it, or give --port with a free port)", file=sys.stderr)
        return 2
    url = env["ABIDANCE_STORE_URL"]
    if url.startswith("chdb:"):
        print("abidance dashboard: warning: a chdb:// store can only be opened while no other process (the node, "
              "`abidance store`) has it; serve it with `abidance store` and use its http:// URL", file=sys.stderr)
    host = f"[{args.address}]" if ":" in args.address else args.address
    print(f"abidance dashboard: http://{host}:{args.port}  (store {redact(url)})", flush=True)
    proc = subprocess.Popen(argv, env=env)
    # SIGTERM (a service manager) and SIGINT sent to this process alone do not reach the child:
    # pass them on, then wait for it. SIGINT gets a handler of its own because a process started
    # in the background inherits it ignored (issue 18: `kill -INT` left the dashboard serving).
    previous = {}
    for signum in (signal.SIGTERM, signal.SIGINT):
        try:
            previous[signum] = signal.signal(signum, lambda _signum, _frame: proc.terminate())
        except ValueError:                # not the main thread: the caller handles signals
            break
    try:
        return proc.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def run(argv: list[str] | None = None) -> int:
    """Standalone entry: `python -m abidance.dashboard_cli [--port ...]`."""
    parser = argparse.ArgumentParser(prog="abidance")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["dashboard", *(sys.argv[1:] if argv is None else argv)])
    return args.func(args)


if __name__ == "__main__":
    sys.exit(run())
