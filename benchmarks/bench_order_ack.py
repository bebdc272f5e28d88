"""Order-ack latency over loopback: the WebSocket API against REST, in the same run (issue 14).

The simulator runs in its own process (its order limits raised so no request waits for
budget). One client process places a passive LIMIT order and times decision -> ack: the
execution client's `prepare` (build and sign) plus `submit` up to the answer, for
- the WebSocket API (WsApiExecutionClient: one kept-open picows connection), and
- REST (BinanceExecutionClient over aiohttp with keep-alive),
alternating the two so both see the same machine. Each order is cancelled untimed.
There is no target in the issue: the figure is reported beside the REST baseline.
"""

from __future__ import annotations

import statistics
import sys
import time
from decimal import Decimal

import pytest
import uvloop

from abidance.core.bus import MessageBus
from abidance.exchange.binance.config import BinanceConfig
from abidance.exchange.binance.connector import BinanceConnector
from abidance.exchange.binance.credentials import Credentials
from abidance.exchange.binance.rate_limit import Limits
from abidance.exchange.binance.rest import BinanceRest
from abidance.exchange.binance.ws_orders import WsApiExecutionClient
from abidance.exchange.sim.config import DEMO_API_KEY, DEMO_API_SECRET
from abidance.execution.orders import Order
from abidance.exchange.binance.rest_orders import BinanceExecutionClient
from benchmarks.bench_sim import start

SIM_LIMITS = """
[sim.limits]
weight_per_minute = 10000000
orders_per_10s = 1000000
orders_per_day = 100000000
"""


@pytest.fixture(scope="module")
def fast_sim(tmp_path_factory):
    cfg = tmp_path_factory.mktemp("sim") / "sim.toml"
    cfg.write_text(SIM_LIMITS)
    proc, line = start([sys.executable, "-m", "abidance.cli", "sim", "--log-level", "WARNING", "--config", str(cfg)])
    assert line.startswith("abidance sim ready"), line
    yield line.split("REST ")[1].split()[0], line.split("streams ")[1].split()[0]
    proc.terminate()
    proc.wait(10)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def ack_latencies(rest_url: str, ws_url: str, rounds: int) -> tuple[list[float], list[float]]:
    """(WebSocket API µs, REST µs) per order, alternating."""
    cfg = BinanceConfig(venue="sim", rest_url=rest_url, ws_url=ws_url)
    async with BinanceRest(cfg, Credentials(DEMO_API_KEY, DEMO_API_SECRET), MessageBus()) as rest:
        instruments = await rest.load_instruments(["BTCUSDT"])
        rest.limiter.limits = Limits(10_000_000, 1_000_000, 100_000_000)   # as the simulator was told
        conn = BinanceConnector(cfg, MessageBus(), rest)
        api = conn.api()
        await api.connected.wait()
        await rest.sync_time()
        ws_client, rest_client = WsApiExecutionClient(api, rest, instruments), BinanceExecutionClient(rest, instruments)
        inst = instruments["BTCUSDT"]
        bid = Decimal((await rest.book_ticker("BTCUSDT"))["bidPrice"])
        price = inst.filters.price_fp.to_units(inst.filters.price_fp.to_str(
            inst.filters.price_fp.to_units(bid * Decimal("0.8"))))
        qty = inst.filters.qty_fp.to_units(Decimal("0.001"))
        samples: dict[str, list[float]] = {"ws": [], "rest": []}
        try:
            for i in range(rounds + 10):                      # the first 10 rounds warm both paths up
                for name, client in (("ws", ws_client), ("rest", rest_client)) if i % 2 else \
                        (("rest", rest_client), ("ws", ws_client)):
                    order = Order(rest.ids.next(), "bench", "BTCUSDT", "BUY", "LIMIT", qty, price, "GTC", 0)
                    t0 = time.perf_counter_ns()
                    order.request = client.prepare(order)
                    answer = await client.submit(order)
                    elapsed = (time.perf_counter_ns() - t0) / 1000
                    assert answer["status"] == "NEW", answer
                    if i >= 10:
                        samples[name].append(elapsed)
                    await client.cancel(order)
            assert ws_client.counters.rest_fallbacks == 0
        finally:
            await conn.stop()
    return samples["ws"], samples["rest"]


def test_order_ack_latency_ws_api_against_rest(benchmark, report, fast_sim):
    rest_url, ws_url = fast_sim
    rounds = 20 if benchmark.disabled else 400
    ws, rest = uvloop.run(ack_latencies(rest_url, ws_url, rounds))
    benchmark.extra_info.update(rounds=rounds, ws_p50_us=statistics.median(ws), rest_p50_us=statistics.median(rest),
                                ws_p99_us=percentile(ws, 0.99), rest_p99_us=percentile(rest, 0.99))
    report("order ack p50 (decision -> ack, loopback): WebSocket API", statistics.median(ws), "us",
           baseline=("REST", statistics.median(rest)), min_ratio=1.0, benchmark=benchmark)
    report("order ack p99: WebSocket API", percentile(ws, 0.99), "us",
           baseline=("REST", percentile(rest, 0.99)), min_ratio=1.0, benchmark=benchmark)
    benchmark.pedantic(lambda: None, rounds=1)
