"""`abidance demo`: the whole product on one machine, offline, with one command.

    abidance demo                      # synthetic seeded market (config/sim.toml)
    abidance demo --data ../shared/data/market   # real recorded ETH/BTC and LTC/BTC candles, 60x

Starts the embedded store (`abidance store`, its own process), the simulator and the
trading node (this process, writing every event to the store), and the dashboard (its own
process), prints the dashboard's URL, and stops everything cleanly on Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

from abidance import config as config_package
from abidance.config import load_config, parse_config, to_toml
from abidance.core.loop import run as runner
from abidance.dashboard_cli import build, port_in_use
from abidance.extras import require
from abidance.runtime.cli import _embedded_sim
from abidance.runtime.logs import setup_logging
from abidance.runtime.node import TradingNode

REPLAY = {"ETHBTC": "ETH_BTC-5m.feather", "LTCBTC": "LTC_BTC-5m.feather"}


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="store + simulator + node + dashboard, offline, one command",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("--data", help="folder of recorded candles (ETH_BTC-5m.feather, LTC_BTC-5m.feather) to replay "
                                  "instead of the synthetic market")
    p.add_argument("--speed", type=float, default=60.0, help="market clock speed of the --data replay (default 60)")
    p.add_argument("--port", type=int, default=8501, help="dashboard port (default 8501; 0 = any free port)")
    p.add_argument("--address", default="127.0.0.1", help="dashboard address (default 127.0.0.1; another one, e.g. "
                                                          "0.0.0.0 in a container, requires ABIDANCE_DASHBOARD_PASSWORD)")
    p.add_argument("--state-dir", default="state/demo", help="folder for the demo's store and node state "
                                                             "(emptied at start)")
    p.add_argument("--seconds", type=float, default=0, help="stop after this long (0 = until Ctrl-C)")
    p.add_argument("--no-dashboard", action="store_true", help="everything but the dashboard")
    p.set_defaults(func=main)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def example_config() -> Path:
    """The shipped example node config (config/sim.toml in a checkout links to it)."""
    return Path(config_package.__file__).resolve().parent / "examples" / "sim.toml"


def replay_config(data: Path, state_dir: Path, speed: float = 60.0) -> str:
    """The replay demo: two strategies on real 5-minute candles quoted in BTC."""
    markets = "\n".join(f'[[sim.markets]]\nsymbol = "{s}"\nsource = "candles"\nfile = "{(data / f).resolve()}"'
                        for s, f in REPLAY.items())
    return f"""
config_version = 1
[node]
name = "demo-replay"
mode = "live"
state_dir = "{state_dir}"
[binance]
venue = "sim"
client_order_prefix = "demo"
[risk]
quote_asset = "BTC"
max_order_notional = "0.05"
max_gross_exposure = "0.5"
daily_loss_limit = "0.2"
max_drawdown = "0.3"
sizing = "fixed_quote"
fixed_quote = "0.01"
min_confidence = 0.0
[data]
bar_intervals = ["5m"]
[[strategies]]
id = "eth-ema"
class = "ema_cross"
symbols = ["ETHBTC"]
timeframe = "5m"
params = {{ fast = 3, slow = 8 }}
[[strategies]]
id = "ltc-rsi"
class = "rsi_reversion"
symbols = ["LTCBTC"]
timeframe = "5m"
params = {{ period = 6, oversold = 35.0, overbought = 65.0 }}
[sim]
speed = {float(speed)}
seed = 3
balances = {{ BTC = "1" }}
{markets}
"""


def load_demo_config(args, state_dir: Path, store_url: str):

    if args.data:
        data = Path(args.data)
        missing = [f for f in REPLAY.values() if not (data / f).is_file()]
        if missing:
            raise ValueError(f"--data {data}: missing {', '.join(missing)}")
        config = parse_config(replay_config(data, state_dir, args.speed), state_dir, env={})
    else:
        # The state dir given as an override, so that every path resolved against it (the kill
        # file, the store spool) is the demo's: `abidance kill --config config/sim.toml` writes
        # the example's own state dir, and a demo started later must not read that KILL.
        config = load_config(example_config(), env={**os.environ, "ABIDANCE__NODE__STATE_DIR": str(state_dir)})
    store = dataclasses.replace(config.store, url=store_url, spool_dir=state_dir / "store-spool")
    return dataclasses.replace(config, store=store)


def start_store(state_dir: Path, port: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "abidance.cli", "store", "--data-dir", str(state_dir / "store"),
                             "--port", str(port), "--log-level", "WARNING"], stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if "abidance store ready" not in line:
        proc.kill()
        raise RuntimeError(f"the store did not start: {line.strip() or 'no output'}")
    return proc


def ready_line(args, store_url: str, state_dir: Path, config_path: Path) -> str:
    """What the demo prints once everything runs: the dashboard's URL only when there is one."""
    dashboard = "" if args.no_dashboard else f"dashboard http://127.0.0.1:{args.port}  "
    return (f"abidance demo: {dashboard}store {store_url}  state {state_dir}  (Ctrl-C stops everything)\n"
            f"abidance demo: its config, with the ports in use: {config_path} "
            f"(`abidance models --config {config_path} list` reads this store)")


def running_config(config, sim):
    """The config as the demo runs it: the simulator's real ports in [sim] as well as in [binance]
    (the dashboard's Config page and `abidance models --config` read this file)."""
    ports = {"rest_port": sim.rest_port, "ws_port": sim.ws_port}
    return dataclasses.replace(config, sim={**config.sim, **ports})


def start_dashboard(args, config_path: Path | None, store_url: str) -> subprocess.Popen:

    ns = argparse.Namespace(port=args.port, address=args.address, store_url=store_url,
                            config=str(config_path) if config_path else None)
    argv, env = build(ns)
    return subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)


async def run(args) -> int:
    state_dir = Path(args.state_dir).resolve()
    shutil.rmtree(state_dir, ignore_errors=True)
    state_dir.mkdir(parents=True)
    port = free_port()
    store_url = f"http://127.0.0.1:{port}"
    children: list[subprocess.Popen] = []
    sim = None
    try:
        children.append(start_store(state_dir, port))
        config, sim = await _embedded_sim(load_demo_config(args, state_dir, store_url))
        config = running_config(config, sim)
        config_path = state_dir / "node.toml"
        config_path.write_text(to_toml(config))
        node = TradingNode(config, config_dir=state_dir)
        if not args.no_dashboard:
            children.append(start_dashboard(args, config_path, store_url))
        print(ready_line(args, store_url, state_dir, config_path), flush=True)
        if args.seconds > 0:
            asyncio.get_running_loop().call_later(args.seconds, node.stopping.set)
        return await node.run()
    finally:
        if sim is not None:
            await sim.stop()
        for child in reversed(children):
            child.send_signal(signal.SIGTERM)
        for child in reversed(children):
            try:
                child.wait(15)
            except subprocess.TimeoutExpired:
                child.kill()


def dashboard_port(args) -> int:
    """The dashboard's port (a free one for --port 0); ValueError when another program has it, before
    anything starts or prints a URL."""
    port = args.port or free_port()
    busy = None if args.no_dashboard else port_in_use(args.address, port)
    if busy:
        raise ValueError(f"cannot serve the dashboard on {args.address}:{port}: {busy} (stop what has it, "
                         "or give --port with a free port, or --port 0)")
    return port


def main(args) -> int:
    require("demo", "store", *(() if args.no_dashboard else ("dashboard",)))
    try:
        args.port = dashboard_port(args)
    except ValueError as exc:
        print(f"abidance demo: {exc}", file=sys.stderr)
        return 2
    setup_logging("INFO")

    try:
        return runner(run(args))
    except (ValueError, RuntimeError) as exc:
        print(f"abidance demo: {exc}", file=sys.stderr)
        return 2
