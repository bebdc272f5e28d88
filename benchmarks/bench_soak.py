"""Soak: the trading node against the simulator for 24 accelerated hours; memory and state stay flat.

The simulator runs in a process of its own (`abidance sim`, its market clock at SPEED x real
time) and so does the store (`abidance store`); the node runs here, as `abidance run` runs it,
with every event going to the store. Strategies keep it busy: a churner that buys and sells
every few dozen trades and rests limit orders that time out (so orders open and close all day),
book_imbalance on the books, ema_cross on 1m bars. Every accelerated hour the node's resident
memory (VmRSS of this process) and the size of its state file are recorded.

Figures: RSS and state-file growth from the hours after warm-up (hours 3-5) to the last three
hours, target < 5 % each. Run it for the record with

    .venv/bin/python -m pytest benchmarks/bench_soak.py -p no:cacheprovider \
        --benchmark-json=benchmarks/results/issue15-soak.json

(about 24 h / SPEED of wall time). Under --benchmark-disable (the test command's smoke pass) it
runs a quarter of an accelerated hour and checks only that the loop holds together.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

from abidance.core import topics
from abidance.runtime.demo import free_port, start_store
from tests.integration.node_kit import RunningNode, node_config
from tests.unit.backtest.kit import RISK_OFF

SPEED = 240.0                 # market seconds per wall second: 24 h in 6 minutes
HOURS = 24
WARM_UP = (3, 6)              # hours whose median is the baseline (after caches, pools and the order window fill)
HOUR_S = 3600.0

CHURN = '''
from abidance.strategy import Param, Strategy


class Churn(Strategy):
    """Buys, then sells `hold` trades later, every `every` trades; rests a limit far below the
    market every `limit_every` trades (it times out: an order that opens and closes unfilled)."""

    wants_trades = True
    params = {"every": Param(40, 2, 10_000), "hold": Param(15, 1, 10_000), "limit_every": Param(60, 2, 10_000)}

    def on_start(self):
        self.n = 0

    def on_trade(self, trade):
        self.n += 1
        if self.n % self.p.every == 0:
            self.buy(trade.symbol, 1.0, reason="churn in")
        elif self.n % self.p.every == self.p.hold:
            self.sell(trade.symbol, 1.0, reason="churn out")
        if self.n % self.p.limit_every == 0:
            self.buy(trade.symbol, 1.0, price=trade.price * 95 // 100, reason="churn rest")
'''

BODY = """
[risk]
""" + RISK_OFF.replace("{", "{{").replace("}", "}}") + """
max_open_orders = 20
orders_per_10s = 40
orders_per_day = 0
max_errors_per_minute = 0
sizing = "fixed_quote"
fixed_quote = "20"
[execution]
limit_timeout_s = 1.0
cancel_replace = false
[data]
bar_intervals = ["1m"]
depth = true
book_ticker = false
[store]
url = "{store}"

[[strategies]]
id = "churn"
class = "churn:Churn"
symbols = ["BTCUSDT"]

[[strategies]]
id = "imbalance"
class = "book_imbalance"
symbols = ["BTCUSDT"]
params = {{ depth = 5, threshold = 0.4, cooldown_s = 2.0 }}

[[strategies]]
id = "ema"
class = "ema_cross"
symbols = ["BTCUSDT"]
timeframe = "1m"
params = {{ fast = 5, slow = 20 }}
"""


def rss_bytes() -> int:
    text = Path("/proc/self/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", text).group(1)) * 1024


def start_sim(speed: float) -> tuple[subprocess.Popen, SimpleNamespace]:
    proc = subprocess.Popen([sys.executable, "-m", "abidance.cli", "sim", "--rest-port", "0", "--ws-port", "0",
                             "--speed", str(speed), "--seed", "15", "--log-level", "WARNING"],
                            stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    m = re.search(r"REST (\S+)\s+streams (\S+)", line)
    if not m:
        proc.kill()
        raise RuntimeError(f"the simulator did not start: {line.strip() or 'no output'}")
    return proc, SimpleNamespace(rest_url=m.group(1), ws_url=m.group(2))


def median(values):
    s = sorted(values)
    return s[len(s) // 2]


def soak(tmp_path: Path, hours: int, speed: float, hour_s: float = HOUR_S) -> list[dict]:
    """Samples every `hour_s` market seconds for `hours` such periods."""
    (tmp_path / "strategies").mkdir()
    (tmp_path / "strategies" / "churn.py").write_text(CHURN)
    store_port = free_port()
    store = start_store(tmp_path, store_port)
    sim, urls = start_sim(speed)
    node = None
    samples = []
    try:
        cfg = node_config(urls, tmp_path / "state", BODY.format(store=f"http://127.0.0.1:{store_port}"),
                          node=f'strategies_dir = "{tmp_path / "strategies"}"')
        node = RunningNode(cfg, topics_to_record=())
        counts = {"trades": 0, "orders": 0, "fills": 0}
        for topic, key in ((topics.TRADES, "trades"), (topics.ORDER_EVENTS, "orders"), (topics.FILLS, "fills")):
            node.run(lambda t=topic, k=key: node.node.bus.subscribe(t, lambda ev, k=k: counts.__setitem__(k, counts[k] + 1)))
        state = tmp_path / "state" / "node-state.json"
        start = time.monotonic()
        for hour in range(1, hours + 1):
            time.sleep(max(0.0, start + hour * hour_s / speed - time.monotonic()))
            ex = node.run(lambda: (len(node.node.execution.orders), len(node.node.execution.closed),
                                   node.node.risk.trading_state, node.node.store_writer.written.get("fills", 0)))
            samples.append({"hour": hour, "rss_bytes": rss_bytes(),
                            "state_bytes": state.stat().st_size if state.exists() else 0,
                            "open_orders": ex[0], "closed_orders_kept": ex[1], "trading_state": ex[2],
                            "fills_in_store": ex[3], **counts})
            print(f"soak hour {hour}: {samples[-1]}", flush=True)
    finally:
        if node is not None:
            node.stop()
        sim.send_signal(signal.SIGTERM)
        store.send_signal(signal.SIGTERM)
        for proc in (sim, store):
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
    return samples


def test_soak_24_accelerated_hours_memory_and_state_file_stay_flat(benchmark, report, tmp_path):
    hours = 1 if benchmark.disabled else HOURS
    samples = soak(tmp_path, hours, SPEED, HOUR_S / 4 if benchmark.disabled else HOUR_S)
    last = samples[-1]
    assert last["trades"] > 0 and last["orders"] > 0 and last["fills"] > 0, last
    assert last["trading_state"] == "ACTIVE", last
    benchmark.extra_info.update(speed=SPEED, hours=hours, samples=samples)
    if benchmark.disabled:
        report("soak (a quarter of an accelerated hour)", last["rss_bytes"] / 2**20, "MiB")
        benchmark.pedantic(lambda: None, rounds=1)
        return
    base = [s for s in samples if WARM_UP[0] <= s["hour"] < WARM_UP[1]]
    rss0, rss1 = median(s["rss_bytes"] for s in base), median(s["rss_bytes"] for s in samples[-3:])
    st0, st1 = max(s["state_bytes"] for s in base), max(s["state_bytes"] for s in samples[-3:])
    rss_growth, state_growth = 100.0 * (rss1 - rss0) / rss0, 100.0 * (st1 - st0) / max(st0, 1)
    benchmark.extra_info.update(rss_growth_pct=rss_growth, state_growth_pct=state_growth,
                                rss_after_warm_up_mib=rss0 / 2**20, rss_end_mib=rss1 / 2**20,
                                state_after_warm_up_bytes=st0, state_end_bytes=st1)
    report("soak RSS growth after warm-up (24 accelerated h)", rss_growth, "%", target=5.0, benchmark=benchmark)
    report("soak state-file growth after warm-up", state_growth, "%", target=5.0, benchmark=benchmark)
    benchmark.pedantic(lambda: None, rounds=1)
