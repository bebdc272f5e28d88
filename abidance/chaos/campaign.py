"""One fault campaign: the simulator, the store and the node each in its own process, faults of
every kind the simulator has switched on in turn, `kill -9` of the node and of the store on a
period, then the invariants checked against the venue's and the store's records.

Faults, one phase each in turn: REST/WebSocket API 5xx and 429, lost order replies, depth
drops/duplicates/reorders, clock skew, 418 bans (only in campaigns of 10 minutes or more: one
injected ban lasts 120 s), plus connection cuts and stream stalls as one-off events. The node's
strategy rests limit orders far under the market (they stay across restarts until their
timeout) and buys and sells at market, so that fills, open orders and restarts meet.
"""

from __future__ import annotations

import logging
import time
import urllib.request
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import orjson

from abidance.chaos import invariants, procs
from abidance.chaos.venue import VenueReader
from abidance.exchange.sim.config import DEMO_API_KEY, DEMO_API_SECRET
from abidance.runtime.demo import free_port
from abidance.store.client import connect

log = logging.getLogger("abidance.chaos")

SYMBOL = "BTCUSDT"
MAX_OPEN_ORDERS = 5
MAX_POSITION = Decimal("0.01")
STATE_FILE = "node-state.json"

STRATEGY = '''
from abidance.strategy import Param, Strategy


class ChaosTrader(Strategy):
    """Rests a limit buy far under the market every `rest_every` trades (it stays open across
    restarts until its timeout) and churns a market buy and sell every `every` trades."""

    wants_trades = True
    params = {"every": Param(8, 2, 10_000), "hold": Param(4, 1, 10_000), "rest_every": Param(15, 2, 10_000)}

    def on_start(self):
        self.n = 0

    def on_trade(self, trade):
        self.n += 1
        if self.n % self.p.rest_every == 0:
            self.buy(trade.symbol, 1.0, price=trade.price * 97 // 100 - self.n % 40, reason="chaos rest")
        if self.n % self.p.every == 0:
            self.buy(trade.symbol, 1.0, reason="chaos in")
        elif self.n % self.p.every == self.p.hold:
            self.sell(trade.symbol, 1.0, reason="chaos out")
'''

NODE = """
config_version = 1
[node]
name = "chaos"
mode = "live"
state_dir = "{state}"
strategies_dir = "{strategies}"
symbols = ["{symbol}"]
heartbeat_s = 0.5
log_format = "json"
cancel_orders_on_stop = true
[binance]
venue = "sim"
rest_url = "{rest}"
ws_url = "{ws}"
client_order_prefix = "chaos"
reconnect_max_s = 4.0
[risk]
quote_asset = "USDT"
max_open_orders = {max_open}
max_position = {{ {symbol} = "{max_position}" }}
max_order_notional = "100"
max_gross_exposure = "100000"
daily_loss_limit = "0"
max_drawdown = "0"
max_consecutive_losses = 0
max_errors_per_minute = 0
orders_per_10s = 30
price_band_bps = 1000
sizing = "fixed_quote"
fixed_quote = "20"
min_confidence = 0.0
[execution]
limit_timeout_s = 8.0
[data]
depth = true
depth_snapshot_s = 1.0
[store]
url = "http://127.0.0.1:{store_port}"
market_data = true
[[strategies]]
id = "chaos"
class = "chaos_trader:ChaosTrader"
symbols = ["{symbol}"]
"""

# (name, fault settings) switched on one at a time; every phase ends with all of them off.
PHASES = [
    ("rest_5xx", {"rest_5xx_rate": 0.1}),
    ("rest_429", {"rest_429_rate": 0.1}),
    ("order_reply_lost", {"order_reply_lost_rate": 0.25}),
    ("depth_faults", {"depth_drop_rate": 0.03, "depth_duplicate_rate": 0.03, "depth_reorder_rate": 0.03}),
    ("clock_skew", {"clock_skew_ms": 700}),
]
BAN_PHASE = ("rest_418", {"rest_418_rate": 0.01})
OFF = {"rest_5xx_rate": 0.0, "rest_429_rate": 0.0, "rest_418_rate": 0.0, "order_reply_lost_rate": 0.0,
       "depth_drop_rate": 0.0, "depth_duplicate_rate": 0.0, "depth_reorder_rate": 0.0, "clock_skew_ms": 0}


@dataclass
class Settings:
    seconds: float = 60.0
    speed: float = 20.0
    seed: int = 16
    node_kill_every_s: float = 20.0
    store_kill_every_s: float = 30.0
    workdir: Path = Path("chaos-run")


@dataclass
class Record:
    restarts: int = 0
    store_restarts: int = 0
    faults: dict = field(default_factory=dict)
    venue_open: list = field(default_factory=list)
    samples: list = field(default_factory=list)     # RSS and fds of the node over time


class Campaign:
    def __init__(self, settings: Settings):
        self.s = settings
        self.rec = Record()
        self.dir = Path(settings.workdir).resolve()
        self.sim = self.store = self.node = None

    # ---- processes -------------------------------------------------------------------

    def _admin(self, path: str, body: dict | None = None) -> dict:
        req = urllib.request.Request(self.urls.rest_url + path, data=orjson.dumps(body or {}), method="POST")
        with urllib.request.urlopen(req, timeout=10) as resp:
            return orjson.loads(resp.read())

    def _fault(self, name: str, changes: dict) -> None:
        self._admin("/admin/faults", {**OFF, **changes})
        self.rec.faults[name] = self.rec.faults.get(name, 0) + 1
        log.info("chaos: fault phase %s", name)

    def _start_node(self) -> None:
        log_file = self.dir / "node.log"
        self._node_log_from = log_file.stat().st_size if log_file.exists() else 0
        self.node = procs.start_node(self.config, log_file)

    def _node_started(self) -> bool:
        """The node started last has said it is running, or has exited."""
        if self.node.poll() is not None:
            return True
        with open(self.dir / "node.log", "rb") as f:
            f.seek(self._node_log_from)
            return b" running: " in f.read()

    def _sample(self, t0: float) -> None:
        pid = self.node.pid if self.node is not None and self.node.poll() is None else 0
        if pid:
            self.rec.samples.append({"t_s": round(time.monotonic() - t0, 1), "rss_bytes": procs.rss_bytes(pid),
                                     "open_fds": procs.open_fds(pid), "node_pid": pid})
        try:
            self.rec.venue_open.append(len(self.venue.open_orders(SYMBOL)))
        except OSError as exc:          # a ban or a fault on the reader's own call: no sample this time
            log.info("chaos: venue sample failed: %s", exc)

    # ---- the run ---------------------------------------------------------------------

    def run(self) -> dict:
        s = self.s
        self.dir.mkdir(parents=True, exist_ok=True)
        strategies = self.dir / "strategies"
        strategies.mkdir(exist_ok=True)
        (strategies / "chaos_trader.py").write_text(STRATEGY)
        store_port = free_port()
        self.store = procs.start_store(self.dir / "store", store_port)
        self.sim, self.urls = procs.start_sim(s.speed, s.seed)
        self.venue = VenueReader(self.urls.rest_url, DEMO_API_KEY, DEMO_API_SECRET)
        self.config = self.dir / "node.toml"
        self.config.write_text(NODE.format(state=self.dir / "state", strategies=strategies, symbol=SYMBOL,
                                           rest=self.urls.rest_url, ws=self.urls.ws_url, max_open=MAX_OPEN_ORDERS,
                                           max_position=MAX_POSITION, store_port=store_port))
        phases = PHASES + ([BAN_PHASE] if s.seconds >= 600 else [])
        phase_s = max(3.0, s.seconds / (2 * len(phases) + 2))
        try:
            self._start_node()
            t0 = time.monotonic()
            end = t0 + s.seconds
            next_node_kill, next_store_kill = t0 + s.node_kill_every_s, t0 + s.store_kill_every_s
            next_phase, phase_i, events_i = t0 + phase_s, 0, 0
            while time.monotonic() < end:
                now = time.monotonic()
                self._sample(t0)
                if now >= next_phase:
                    if phase_i % 2 == 0:
                        name, changes = phases[(phase_i // 2) % len(phases)]
                        self._fault(name, changes)
                    else:
                        self._admin("/admin/faults", OFF)
                        # One-off events between phases: cut every connection, or stall the streams.
                        if events_i % 2 == 0:
                            self._admin("/admin/close-connections?kind=all")
                            self.rec.faults["connection_cut"] = self.rec.faults.get("connection_cut", 0) + 1
                        else:
                            self._admin("/admin/stall?seconds=3")
                            self.rec.faults["stall"] = self.rec.faults.get("stall", 0) + 1
                        events_i += 1
                    phase_i += 1
                    next_phase = now + phase_s
                if now >= next_node_kill:
                    procs.kill9(self.node)
                    self.rec.restarts += 1
                    time.sleep(0.5)
                    self._start_node()
                    next_node_kill = now + s.node_kill_every_s
                if now >= next_store_kill:
                    procs.kill9(self.store)
                    time.sleep(1.0)
                    self.store = procs.start_store(self.dir / "store", store_port)
                    self.rec.store_restarts += 1
                    next_store_kill = now + s.store_kill_every_s
                if self.node.poll() is not None:          # the node died by itself: that is a finding
                    self.rec.faults["node_exited_by_itself"] = self.rec.faults.get("node_exited_by_itself", 0) + 1
                    self._start_node()
                time.sleep(1.0)
            self._admin("/admin/faults", OFF)
            # A node still importing when the final SIGTERM comes dies of it (exit -15) before it can
            # stop cleanly, which is no finding; one that never starts is reported by its exit code.
            try:
                procs.wait_for(self._node_started, 60.0, "the restarted node to run")
            except TimeoutError:
                pass
            time.sleep(3.0)
            rc = procs.stop(self.node, 30)
            time.sleep(2.0)         # the store writer's last flush (the node flushes on stop)
            return self.report(rc)
        finally:
            for proc in (self.node, self.sim, self.store):
                if proc is not None:
                    procs.stop(proc)

    # ---- the invariants ----------------------------------------------------------------

    def report(self, node_rc) -> dict:
        state = orjson.loads((self.dir / "state" / STATE_FILE).read_bytes())
        node_balances = {a: Decimal(v) for a, v in state["portfolio"]["balances"].items()}
        orders = self.venue.all_orders(SYMBOL)
        trades = self.venue.trades(SYMBOL)
        store = connect(f"http://127.0.0.1:{self._store_port()}", "abidance")
        stored_fills = store.query("SELECT client_order_id, trade_id, toString(qty) FROM fills").result_rows
        fills_in_time = store.query("SELECT ts, side, toString(qty) FROM fills ORDER BY ts").result_rows
        events = store.query("SELECT ts, client_order_id, status FROM order_events ORDER BY ts").result_rows
        books = store.query("SELECT ts, toString(bid_prices[1]), toString(ask_prices[1]) FROM depth_snapshots "
                            "WHERE length(bid_prices) > 0 AND length(ask_prices) > 0").result_rows
        checks = [
            invariants.balances_match(self.venue.balances(), node_balances),
            invariants.unique_client_order_ids(orders),
            invariants.fills_stored_once(trades, orders, stored_fills),
            invariants.venue_open_orders_sampled(self.rec.venue_open, MAX_OPEN_ORDERS),
            # Times on the venue's (accelerated) clock: "now" is its last update.
            invariants.venue_open_intervals_within(orders, MAX_OPEN_ORDERS,
                                                   max((o["updateTime"] for o in orders), default=0) + 1),
            invariants.store_order_events(events, MAX_OPEN_ORDERS),
            invariants.position_within(fills_in_time, MAX_POSITION),
            invariants.books_never_crossed(books),
        ]
        # RSS and fds of a started node (a sample taken while a restarted node imports is not one).
        samples = [x for x in self.rec.samples if x["rss_bytes"] > 100 * 2**20]
        return {
            "ok": all(c.ok for c in checks) and node_rc == 0,
            "settings": {"seconds": self.s.seconds, "speed": self.s.speed, "seed": self.s.seed,
                         "node_kill_every_s": self.s.node_kill_every_s, "store_kill_every_s": self.s.store_kill_every_s,
                         "max_open_orders": MAX_OPEN_ORDERS, "max_position": str(MAX_POSITION)},
            "node_exit_code_at_the_end": node_rc,
            "node_restarts": self.rec.restarts, "store_restarts": self.rec.store_restarts,
            "faults": self.rec.faults, "fills": len(trades), "orders": len(orders),
            "rss_start_bytes": samples[0]["rss_bytes"] if samples else 0,
            "rss_end_bytes": samples[-1]["rss_bytes"] if samples else 0,
            "fds_start": samples[0]["open_fds"] if samples else 0,
            "fds_end": samples[-1]["open_fds"] if samples else 0,
            "invariants": [c.as_dict() for c in checks],
            "node_samples": samples,
        }

    def _store_port(self) -> int:
        for line in self.config.read_text().splitlines():
            if line.startswith("url = \"http://127.0.0.1:"):
                return int(line.rsplit(":", 1)[1].rstrip('"'))
        raise ValueError("no store url in the node config")
