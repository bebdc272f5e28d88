"""One kernel for live, paper and backtest: the same config builds the same engines, setting by setting.

The node's kernel (TradingNode.build_kernel, what `abidance run` starts) and a backtest's
(Backtest, what `abidance backtest`, `abidance optimize`, the RL environment and the research
tools run) are built from one config and compared component by component, key by key. The
only differences allowed are listed below, each with its reason; any other difference fails,
and so does an allowed difference that no longer occurs (the list stays true).
"""

from __future__ import annotations

from decimal import Decimal

from abidance.backtest.engine import Backtest, sim_instruments
from abidance.config import parse_config
from abidance.core.events import BookSnapshot
from abidance.exchange.backtest.venue import BacktestVenue, FillModel
from abidance.exchange.binance.ids import ClientOrderIds
from abidance.exchange.binance.rest_orders import BinanceExecutionClient
from abidance.runtime.node import TradingNode

BALANCES = {"USDT": Decimal("10000")}
CONFIG = """
config_version = 1
[node]
name = "kernel-test"
mode = "{mode}"
state_dir = "{state}"
[binance]
venue = "sim"
client_order_prefix = "kt"
[risk]
quote_asset = "USDT"
max_position = {{ BTCUSDT = "0.005" }}
stale_data_s = 10.0
kill_switch_file = "KILL"
sizing = "fixed_quote"
fixed_quote = "25"
[execution]
limit_timeout_s = 45.0
cancel_replace = true
max_slippage_bps = 30
[data]
bar_intervals = ["1m", "5m"]
depth = true
[store]
url = "chdb:///nowhere"
[backtest]
balances = {{ USDT = "10000" }}
[[strategies]]
id = "btc-ema"
class = "ema_cross"
symbols = ["BTCUSDT"]
params = {{ fast = 12, slow = 26 }}
[[strategies]]
id = "btc-imbalance"
class = "book_imbalance"
symbols = ["BTCUSDT"]
params = {{ depth = 5, threshold = 0.4, cooldown_s = 30.0 }}
"""

# (component, setting) -> why it may differ between a live node and a backtest.
LIVE_VS_BACKTEST = {
    ("Kernel", "mode"): "it is what is being compared",
    ("Kernel", "clock"): "live time is the wall clock; a backtest's is moved through the recorded data",
    ("Kernel", "client_order_ids"): "a live session draws a random tag (ids never repeat across restarts); "
                                    "a backtest's is seeded, so a run is reproducible to the order id",
    ("ExecutionEngine", "client"): "the venue: Binance (or the simulator) live, the in-process backtest venue",
    ("ExecutionEngine", "inline"): "the in-process venue answers at once: no event loop, a backtest can step",
    ("Portfolio", "equity_interval_s"): "live, equity is valued every second of wall time; a backtest values it "
                                        "at every bar itself (the risk engine's equity breakers included)",
    ("RiskEngine", "poll_interval_s"): "the kill file and stale data are checked at every decision in both; the "
                                       "poll only announces a change between decisions (a backtest: daily)",
    ("StoreWriter", "batch_rows"): "a backtest writes whole days at once: nobody watches it live",
    ("StoreWriter", "flush_s"): "the same: a backtest flushes per simulated day",
    ("VenueFeed", None): "the in-process venue fills on the recorded market data; Binance has its own market",
    ("ExitManager", "mode"): "execution.exits = \"auto\": exits rest on Binance live (they fire while the node is "
                             "down); the in-process venue keeps no resting stops, so a backtest emulates them",
}
# Paper trading runs the in-process venue on live data: it differs from a backtest in time only.
PAPER_VS_BACKTEST = {k: v for k, v in LIVE_VS_BACKTEST.items()
                     if k[0] in ("Kernel", "Portfolio", "RiskEngine", "StoreWriter")}


def config(tmp_path, mode: str):
    return parse_config(CONFIG.format(mode=mode, state=tmp_path / "state"), tmp_path, env={})


def node_kernel(tmp_path, mode: str = "live"):
    """The node's kernel exactly as TradingNode.start builds it (its venue client without a connection)."""
    cfg = config(tmp_path, mode)
    node = TradingNode(cfg)
    instruments = {s: sim_instruments()[s] for s in node.symbols}
    client = BacktestVenue(node.bus, node.clock, instruments, FillModel.from_config(cfg.backtest), BALANCES,
                           source="trades") if mode == "paper" else BinanceExecutionClient(None, instruments)
    return node.build_kernel(instruments, BALANCES, client, ClientOrderIds(cfg.binance.client_order_prefix))


def backtest_kernel(tmp_path, mode: str = "live", **data):
    cfg = config(tmp_path, mode)
    store = (lambda: None, cfg.store.database, tmp_path / "spool")
    return Backtest(cfg, balances=BALANCES, store=store, **data).kernel


def differences(a: dict, b: dict) -> dict:
    """(component, setting) -> (a's, b's); (component, None) when only one side has the component."""
    out = {}
    for comp in set(a) | set(b):
        if (comp in a) != (comp in b):
            out[(comp, None)] = (comp in a, comp in b)
            continue
        for key in set(a[comp]) | set(b[comp]):
            if a[comp].get(key) != b[comp].get(key):
                out[(comp, key)] = (a[comp].get(key), b[comp].get(key))
    return out


DEPTH = {"BTCUSDT": [BookSnapshot("BTCUSDT", [(100, 1)], [(101, 1)], 1, 0)]}


def test_live_node_and_backtest_on_trades_and_depth_build_the_same_engines_but_for_the_listed_differences(tmp_path):
    live, bt = node_kernel(tmp_path).describe(), backtest_kernel(tmp_path, trades={"BTCUSDT": []}, depth=DEPTH).describe()
    diff = differences(live, bt)
    unexplained = {k: v for k, v in diff.items() if k not in LIVE_VS_BACKTEST}
    assert unexplained == {}, unexplained
    assert set(diff) == set(LIVE_VS_BACKTEST), "an allowed difference no longer occurs: drop it from the list"
    # Spot checks that the compared settings are the config's, not defaults that happen to agree.
    for kernel in (live, bt):
        assert kernel["RiskEngine"]["limit_timeout_s"] == 45.0 and kernel["RiskEngine"]["max_slippage_bps"] == 30
        assert kernel["RiskEngine"]["kill_file"] == str(tmp_path / "state" / "KILL")
        assert kernel["RiskEngine"]["settings"]["stale_data_s"] == "10.0"
        assert kernel["ExecutionEngine"]["cancel_replace"] is True
        assert kernel["DataEngine"]["book_symbols"] == ["BTCUSDT"] and kernel["DataEngine"]["bar_source"] == "trades"
        assert [s["id"] for s in kernel["StrategyEngine"]["strategies"]] == ["btc-ema", "btc-imbalance"]


def test_paper_node_and_backtest_differ_only_in_time(tmp_path):
    paper = node_kernel(tmp_path, "paper").describe()
    bt = backtest_kernel(tmp_path, "paper", trades={"BTCUSDT": []}, depth=DEPTH).describe()
    diff = differences(paper, bt)
    assert {k: v for k, v in diff.items() if k not in PAPER_VS_BACKTEST} == {}
    # Both fill on the backtest venue, inline; only the market data it fills on differs (live trades vs
    # the recorded book): the venue's source is its own setting, below the kernel.
    assert paper["ExecutionEngine"]["client"] == bt["ExecutionEngine"]["client"] == "BacktestVenue"


def test_a_backtest_over_candles_takes_its_bars_from_the_recording(tmp_path):
    bars_bt = backtest_kernel(tmp_path, bars_by_symbol={"BTCUSDT": []}).describe()
    trades_bt = backtest_kernel(tmp_path, trades={"BTCUSDT": []}).describe()
    diff = differences(trades_bt, bars_bt)
    # Candles are bars already: nothing to aggregate, no book, and the runner feeds the venue bar by bar.
    assert diff == {("DataEngine", "bar_source"): ("trades", "bars"), ("VenueFeed", None): (True, False)}
