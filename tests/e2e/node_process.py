"""`abidance run` as a real process against a RunningSim: a config, a strategy file, waits."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

STRATEGY = '''
from abidance.strategy import Strategy


class OneShot(Strategy):
    """Buys at market once, then rests one limit buy 5% under the bid: an open order to crash with."""

    wants_book = True

    def on_start(self):
        self.step = 0

    def on_book(self, book):
        bid = book.best_bid()[0]
        if self.step == 0:
            self.step = 1
            self.buy(book.symbol, 1.0, reason="first buy")
        elif self.step == 1 and self.position(book.symbol) > 0:
            self.step = 2
            self.buy(book.symbol, 1.0, price=bid * 95 // 100, reason="resting limit")
'''


RESTER = '''
from abidance.strategy import Strategy


class Rester(Strategy):
    """Asks for another limit buy far under the bid on every book (at most one every 0.1 s): orders
    rest until the risk engine's max_open_orders says no more."""

    wants_book = True

    def on_start(self):
        self.last = 0
        self.n = 0

    def on_book(self, book):
        now = self.now_ns()
        if now - self.last < 100_000_000:
            return
        self.last = now
        self.n += 1
        self.buy(book.symbol, 1.0, price=book.best_bid()[0] * 95 // 100 - self.n % 50, reason="resting limit")
'''


def config_text(sim, state: Path, strategies: Path, enabled: bool, binance_extra: str = "",
                strategy_class: str = "oneshot:OneShot", risk_extra: str = "") -> str:
    return f"""
config_version = 1
[node]
name = "crash"
mode = "live"
state_dir = "{state}"
strategies_dir = "{strategies}"
symbols = ["ETHUSDT"]
heartbeat_s = 0.5
log_format = "json"
cancel_orders_on_stop = true
[binance]
venue = "sim"
rest_url = "{sim.rest_url}"
ws_url = "{sim.ws_url}"
client_order_prefix = "crash"
{binance_extra}
[risk]
quote_asset = "USDT"
max_order_notional = "100"
max_gross_exposure = "1000"
price_band_bps = 1000
sizing = "fixed_quote"
fixed_quote = "30"
min_confidence = 0.0
{risk_extra}
[data]
depth = true
[[strategies]]
id = "one-shot"
class = "{strategy_class}"
symbols = ["ETHUSDT"]
timeframe = "1m"
enabled = {"true" if enabled else "false"}
"""


def start_node(cfg: Path, notify_socket: str | None = None, extra_env: dict | None = None) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(extra_env or {})}
    if notify_socket:
        env["NOTIFY_SOCKET"] = notify_socket      # as systemd sets it for Type=notify
    return subprocess.Popen([sys.executable, "-m", "abidance.cli", "run", "--config", str(cfg)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


def wait(predicate, timeout: float, what: str):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        result = predicate()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
