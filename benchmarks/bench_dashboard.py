"""The dashboard: every page's render time on a store with 10M trades, beside the same page on a small store.

Target (issue 7): "pages stay responsive (< 1 s render) on a store with 10M trades".

One served store (`abidance store --port 0`, i.e. StoreServer in its own process, as the dashboard
reaches it in production) holds two databases generated in the store itself
(`INSERT ... SELECT FROM numbers()`), both ending now and spanning 36 hours:

- `big`: 10M trades over three symbols, plus what a day and a half of the bot writes: 1m and 5m bars,
  one equity point and one top of book per symbol per second (~130k / ~390k rows), a depth snapshot
  per symbol per minute, health of six streams every 10 s, 3,000 fills (alternating buys and sells,
  so closed round trips) with their order events, positions and risk decisions, cancelled, rejected
  and open orders, 500 alerts, trading-state changes and one stored config version.
- `small` (the same-run baseline): 10k trades, the per-second series per minute and one tenth of the
  bot's rows, same span.

Each page runs through Streamlit's AppTest as tests/dashboard does (app.py -> st.navigation -> the
page, settings from ABIDANCE_STORE_URL / ABIDANCE_STORE_DATABASE / ABIDANCE_CONFIG). A page's render
is the wall time of one `at.run()`: cold = the first run after `st.cache_data.clear()` (every query
goes to the store; the client from st.cache_resource and the OS page cache stay warm), warm = the run
right after it (the queries come from st.cache_data, except live ones older than their 2 s TTL).
The median of five rounds is reported per page against the 1000 ms target, with the same page on
the small store as baseline (the report's "ratio" is baseline / measured: below 1 = slower on the big
store; extra_info has big_over_small), and split (see Probe) into store queries, plotly, the Python
metrics and the rest (Streamlit: st.cache_data's pickling, tables, widgets; AppTest's bookkeeping).
Not measured: the browser side (websocket transfer, plotly.js drawing).

Timing is reported, not asserted; every page must render without an exception, an error box or a
"No data yet" box (a page without data would be fast and prove nothing).
With --benchmark-disable (CI) it is a one-round smoke check: 200k trades, two pages.
"""

from __future__ import annotations

import contextlib
import os
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

for _mod in ("chdb", "clickhouse_connect", "streamlit", "plotly"):
    pytest.importorskip(_mod)

from streamlit.testing.v1 import AppTest  # noqa: E402

from abidance.store.client import connect  # noqa: E402
from abidance.store.migrations import apply_migrations  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "streamlit_app" / "app.py"
PAGES = ["overview", "market", "orders", "performance", "risk", "config", "alerts"]
SMOKE_PAGES = ["overview", "market"]
TARGET_MS = 1000.0
TIMEOUT_S = 300
SPAN_S = 36 * 3600

SYMBOLS = ("ETHBTC", "LTCBTC", "BNBBTC")          # ETHBTC and LTCBTC are traded by the config's strategies
BASE_PRICE = (0.05, 0.0012, 0.009)
STRATEGY = ("eth-sma", "ltc-sma", "bnb-grid")
FILL_QTY = (1, 5, 2)


@dataclass(frozen=True)
class Sizes:
    trades: int
    tick_s: int           # one equity point, and one top of book per symbol, every tick_s
    depth_s: int          # one depth snapshot per symbol every depth_s
    health_s: int         # one health record per stream every health_s
    fills: int            # the bot's fills (orders, events, positions, risk decisions follow); ETHBTC's third
                          # of them (ceil(fills / 3)) odd, the others even: one position left open
    alerts: int


BIG = Sizes(trades=10_000_000, tick_s=1, depth_s=60, health_s=10, fills=3001, alerts=500)
SMOKE_BIG = Sizes(trades=200_000, tick_s=10, depth_s=300, health_s=60, fills=1003, alerts=200)
SMALL = Sizes(trades=10_000, tick_s=60, depth_s=600, health_s=300, fills=301, alerts=50)


def _full(request) -> bool:
    return not request.config.getoption("benchmark_disable", False)


# ---- the data, generated inside the store ---------------------------------------------------------

def _arr(values) -> str:
    return "[" + ", ".join(repr(v) for v in values) + "]"


def _sym(k: str) -> str:
    return f"arrayElement({_arr(SYMBOLS)}, toUInt32({k}) + 1)"


def _price(k: str, t_s: str) -> str:
    """The price path of symbol index k at t_s seconds after the start (Float64): slow and fast waves."""
    return (f"(arrayElement({_arr(BASE_PRICE)}, toUInt32({k}) + 1) * "
            f"(1 + 0.02 * sin(({t_s}) / 7200 + {k}) + 0.005 * sin(({t_s}) / 600)))")


def _ts(start_ns: int, offset_ns: str) -> str:
    return f"fromUnixTimestamp64Nano(toInt64({start_ns} + {offset_ns}), 'UTC')"


def build_database(client, db: str, sizes: Sizes, start_ns: int, config_text: str) -> dict[str, int]:
    """Fill database `db` (migrated) with `sizes` of data over SPAN_S seconds from start_ns; {table: rows}."""
    s9, span_ns = start_ns, SPAN_S * 10**9
    run = client.command
    ins = {"max_partitions_per_insert_block": 1000}

    step = span_ns // sizes.trades
    run(f"INSERT INTO {db}.trades (ts, symbol, trade_id, price, qty, buyer_is_maker, ts_init) "
        f"SELECT {_ts(s9, f'number * {step}')} AS t, {_sym('number % 3')}, toInt64(number), "
        f"toDecimal128({_price('number % 3', f'number * {step} / 1e9')} * (1 + ((number * 7919) % 1000) / 1e6), 8), "
        f"toDecimal128(((number * 104729) % 100000 + 1) / 1e4, 8), number % 3 = 0, t FROM numbers({sizes.trades})",
        settings=ins)

    for iv, name in ((60, "1m"), (300, "5m")):
        n = SPAN_S // iv
        run(f"INSERT INTO {db}.bars (ts, symbol, interval, close_time, open, high, low, close, volume, trades) "
            f"SELECT {_ts(s9, f'i * {iv * 10**9}')}, {_sym('k')}, '{name}', {_ts(s9, f'(i + 1) * {iv * 10**9} - 1')}, "
            f"toDecimal128(o, 8), toDecimal128(greatest(o, c) * 1.001, 8), toDecimal128(least(o, c) * 0.999, 8), "
            f"toDecimal128(c, 8), toDecimal128(10 + (i * 7919) % 1000 / 10, 8), toUInt32(50 + (i * 31) % 200) "
            f"FROM (SELECT number % 3 AS k, intDiv(number, 3) AS i, {_price('k', f'i * {iv}')} AS o, "
            f"{_price('k', f'(i + 1) * {iv}')} AS c FROM numbers({3 * n}))", settings=ins)

    n_ticks = SPAN_S // sizes.tick_s
    run(f"INSERT INTO {db}.book_tops (ts, symbol, bid_price, bid_qty, ask_price, ask_qty, update_id) "
        f"SELECT {_ts(s9, f'i * {sizes.tick_s * 10**9}')}, {_sym('k')}, toDecimal128(p * 0.9998, 8), "
        f"toDecimal128(1 + (number * 7) % 50 / 10, 8), toDecimal128(p * 1.0002, 8), "
        f"toDecimal128(1 + (number * 13) % 50 / 10, 8), toInt64(number) "
        f"FROM (SELECT number, number % 3 AS k, intDiv(number, 3) AS i, {_price('k', f'i * {sizes.tick_s}')} AS p "
        f"FROM numbers({3 * n_ticks}))", settings=ins)

    n_depth = SPAN_S // sizes.depth_s
    run(f"INSERT INTO {db}.depth_snapshots (ts, symbol, update_id, bid_prices, bid_qtys, ask_prices, ask_qtys) "
        f"SELECT {_ts(s9, f'i * {sizes.depth_s * 10**9}')}, {_sym('k')}, toInt64(number), "
        f"arrayMap(j -> toDecimal128(p * (1 - j / 1000), 8), range(1, 11)), "
        f"arrayMap(j -> toDecimal128(j, 8), range(1, 11)), "
        f"arrayMap(j -> toDecimal128(p * (1 + j / 1000), 8), range(1, 11)), "
        f"arrayMap(j -> toDecimal128(j, 8), range(1, 11)) "
        f"FROM (SELECT number, number % 3 AS k, intDiv(number, 3) AS i, {_price('k', f'i * {sizes.depth_s}')} AS p "
        f"FROM numbers({3 * n_depth}))", settings=ins)

    # Equity: 10 BTC wandering by a few percent; drawdown from the running peak.
    run(f"INSERT INTO {db}.equity (ts, event_id, equity, cash, positions_value, realized_pnl, unrealized_pnl, fees, "
        f"drawdown) SELECT {_ts(s9, f'number * {sizes.tick_s * 10**9}')}, concat('eq-', toString(number)), "
        f"toDecimal128(e, 18), toDecimal128(9, 18), toDecimal128(e - 9, 18), toDecimal128(0.1 * f, 18), "
        f"toDecimal128(e - 10 - 0.1 * f, 18), toDecimal128(0.01 * f, 18), toDecimal128(peak - e, 18) FROM ("
        f"SELECT number, number / {n_ticks} AS f, 10 + 0.3 * sin(number * {sizes.tick_s} / 20000) "
        f"+ 0.1 * sin(number * {sizes.tick_s} / 1500) + 0.2 * f AS e, "
        f"max(e) OVER (ORDER BY number ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS peak "
        f"FROM numbers({n_ticks}))", settings=ins)

    # The bot's fills: per strategy/symbol a buy then a sell (closed round trips), evenly over the span;
    # ETHBTC (i % 3 = 0) gets ceil(fills / 3) of them: an odd number (see Sizes) ends on a buy, a position open.
    nf = sizes.fills
    fstep = span_ns // (nf + 1) // 10**6 * 10**6     # whole ms (plotly drops ns)
    fill = (f"SELECT number AS i, i % 3 AS k, intDiv(i, 3) AS j, if(j % 2 = 0, 'BUY', 'SELL') AS side, "
            f"arrayElement({_arr(FILL_QTY)}, toUInt32(k) + 1) AS q, {_price('k', f'(i + 1) * {fstep} / 1e9')} AS p, "
            f"arrayElement({_arr(STRATEGY)}, toUInt32(k) + 1) AS strategy, concat(strategy, '-', toString(j)) AS coid, "
            f"toInt64({s9} + (i + 1) * {fstep}) AS t FROM numbers({nf})")
    run(f"INSERT INTO {db}.fills (ts, event_id, client_order_id, strategy_id, symbol, side, qty, price, commission, "
        f"commission_asset, trade_id, is_maker) SELECT fromUnixTimestamp64Nano(t, 'UTC'), concat('f-', toString(i)), "
        f"coid, strategy, {_sym('k')}, side, toDecimal128(q, 8), toDecimal128(p, 8), toDecimal128(q * p * 0.001, 8), "
        f"'BTC', toInt64(i + 1), i % 2 = 0 FROM ({fill})", settings=ins)
    run(f"INSERT INTO {db}.order_events (ts, event_id, client_order_id, strategy_id, symbol, side, order_type, status, "
        f"previous, quantity, filled, price, order_id, reason) SELECT fromUnixTimestamp64Nano(t - (2 - e) * 1000000, "
        f"'UTC'), concat('oe-', toString(i), '-', toString(e)), coid, strategy, {_sym('k')}, side, 'MARKET', "
        f"arrayElement(['PENDING_NEW', 'NEW', 'FILLED'], toUInt32(e) + 1), arrayElement(['', 'PENDING_NEW', 'NEW'], "
        f"toUInt32(e) + 1), toDecimal128(q, 8), toDecimal128(if(e = 2, q, 0), 8), toDecimal128(0, 8), "
        f"toInt64(1000 + i), '' FROM ({fill}) ARRAY JOIN [0, 1, 2] AS e", settings=ins)
    # Cancelled and rejected limit orders (a tenth as many each), and two resting ones at the end.
    for tag, states, reason in (("cxl", ["PENDING_NEW", "NEW", "CANCELED"], "timeout"),
                                ("rej", ["PENDING_NEW", "REJECTED"],
                                 "Account has insufficient balance for requested action.")):
        prev = [""] + states[:-1]
        run(f"INSERT INTO {db}.order_events (ts, event_id, client_order_id, strategy_id, symbol, side, order_type, "
            f"status, previous, quantity, filled, price, order_id, reason) "
            f"SELECT fromUnixTimestamp64Nano(t + 500000000 + e * 1000000, 'UTC'), concat('{tag}-', toString(i), '-', "
            f"toString(e)), concat('{tag}-', coid), strategy, {_sym('k')}, 'BUY', 'LIMIT', "
            f"arrayElement({_arr(states)}, toUInt32(e) + 1), arrayElement({_arr(prev)}, toUInt32(e) + 1), "
            f"toDecimal128(q, 8), toDecimal128(0, 8), toDecimal128(p * 0.98, 8), "
            f"if(arrayElement({_arr(states)}, toUInt32(e) + 1) = 'REJECTED', toInt64(0), toInt64(500000 + i)), "
            f"if(e = {len(states) - 1}, '{reason}', '') FROM ({fill}) ARRAY JOIN range({len(states)}) AS e "
            f"WHERE i % 10 = 3", settings=ins)
    run(f"INSERT INTO {db}.order_events (ts, event_id, client_order_id, strategy_id, symbol, side, order_type, status, "
        f"previous, quantity, filled, price, order_id, reason) SELECT {_ts(s9, f'{span_ns} - (60 - e) * 1000000000')}, "
        f"concat('open-', toString(k), '-', toString(e)), concat('open-', toString(k)), "
        f"arrayElement({_arr(STRATEGY)}, toUInt32(k) + 1), {_sym('k')}, 'BUY', 'LIMIT', "
        f"if(e = 0, 'PENDING_NEW', 'NEW'), if(e = 0, '', 'PENDING_NEW'), toDecimal128(1, 8), toDecimal128(0, 8), "
        f"toDecimal128({_price('k', str(SPAN_S))} * 0.98, 8), toInt64(900000 + k), '' "
        f"FROM (SELECT number AS k FROM numbers(2)) ARRAY JOIN [0, 1] AS e", settings=ins)
    run(f"INSERT INTO {db}.positions (ts, event_id, symbol, quantity, avg_price, realized_pnl, unrealized_pnl) "
        f"SELECT fromUnixTimestamp64Nano(t, 'UTC'), concat('pos-', toString(i)), {_sym('k')}, "
        f"toDecimal128(if(side = 'BUY', q, 0), 18), toDecimal128(if(side = 'BUY', p, 0), 18), "
        f"toDecimal128(0.0001 * j, 18), toDecimal128(0, 18) FROM ({fill})", settings=ins)
    run(f"INSERT INTO {db}.risk_decisions (ts, event_id, strategy_id, symbol, side, accepted, reason, message, "
        f"quantity, price, client_order_id, confidence) SELECT fromUnixTimestamp64Nano(t - 5000000, 'UTC'), "
        f"concat('rd-', toString(i)), strategy, {_sym('k')}, side, true, 'OK', '', toDecimal128(q, 8), "
        f"toDecimal128(0, 8), coid, 0.7 FROM ({fill})", settings=ins)
    run(f"INSERT INTO {db}.risk_decisions (ts, event_id, strategy_id, symbol, side, accepted, reason, message, "
        f"quantity, price, client_order_id, confidence) SELECT fromUnixTimestamp64Nano(t + 700000000, 'UTC'), "
        f"concat('rdn-', toString(i)), strategy, {_sym('k')}, 'BUY', false, "
        f"arrayElement(['MAX_OPEN_ORDERS', 'PRICE_BAND', 'MAX_POSITION', 'DAILY_LOSS'], toUInt32(j % 4) + 1), "
        f"'denied by the risk engine', toDecimal128(0, 8), toDecimal128(p, 8), '', 0.6 FROM ({fill}) "
        f"WHERE i % 3 = 1", settings=ins)

    kinds = [("info", "node", "node_started"), ("warning", "binance.ws", "stream_disconnected"),
             ("info", "binance.ws", "stream_reconnected"), ("error", "execution", "order_rejected"),
             ("error", "store", "store_down"), ("info", "store", "store_recovered"),
             ("critical", "risk", "breaker_tripped")]
    pick = "toUInt32(number % 7) + 1"
    run(f"INSERT INTO {db}.alerts (ts, event_id, level, source, code, message) "
        f"SELECT {_ts(s9, f'number * {span_ns // sizes.alerts}')}, concat('al-', toString(number)), "
        f"arrayElement({_arr([k[0] for k in kinds])}, {pick}), arrayElement({_arr([k[1] for k in kinds])}, {pick}), "
        f"arrayElement({_arr([k[2] for k in kinds])}, {pick}), concat('alert number ', toString(number)) "
        f"FROM numbers({sizes.alerts})", settings=ins)
    run(f"INSERT INTO {db}.trading_state (ts, event_id, state, previous, reason, source) "
        f"SELECT {_ts(s9, f'number * {span_ns // 21}')}, concat('st-', toString(number)), "
        f"if(number % 2 = 0, 'ACTIVE', if(number % 4 = 1, 'HALTED', 'REDUCING')), "
        f"if(number = 0, '', if(number % 2 = 1, 'ACTIVE', if(number % 4 = 2, 'HALTED', 'REDUCING'))), "
        f"if(number % 2 = 0, 'resumed', 'breaker tripped'), if(number % 2 = 0, 'operator', 'breaker:daily_loss') "
        f"FROM numbers(21)", settings=ins)
    streams = [f"{s.lower()}@{kind}" for s in SYMBOLS for kind in ("trade", "depth@100ms")]
    n_health = SPAN_S // sizes.health_s
    run(f"INSERT INTO {db}.health (ts, event_id, stream, messages, rate_per_s, lag_ms_mean, lag_ms_max, reconnects, "
        f"resyncs) SELECT {_ts(s9, f'i * {sizes.health_s * 10**9}')}, concat('h-', toString(number)), "
        f"arrayElement({_arr(streams)}, toUInt32(number % {len(streams)}) + 1), toUInt64(i * 50), 5.0, "
        f"3.0 + number % 5, 20.0 + number % 40, toUInt32(intDiv(i, 2000)), toUInt32(intDiv(i, 5000)) "
        f"FROM (SELECT number, intDiv(number, {len(streams)}) AS i FROM numbers({len(streams) * n_health}))",
        settings=ins)
    run(f"INSERT INTO {db}.config_versions (ts, version, author, text, comment) "
        f"SELECT {_ts(s9, '0')}, 1, 'bench', {{text:String}}, 'the benchmark config'",
        parameters={"text": config_text})
    for table in ("trades", "book_tops", "equity", "health"):
        run(f"OPTIMIZE TABLE {db}.{table} FINAL")
    counts = client.query(" UNION ALL ".join(
        f"SELECT '{t}', count() FROM {db}.{t}" for t in
        ("trades", "bars", "book_tops", "depth_snapshots", "equity", "fills", "order_events", "positions",
         "risk_decisions", "alerts", "trading_state", "health", "config_versions"))).result_rows
    return {t: int(n) for t, n in counts}


# ---- where a render's time goes -------------------------------------------------------------------

KINDS = ("query", "plotly", "metrics")


@dataclass
class Probe:
    """Where one run's time goes: store queries (common._run: the query, Arrow -> pandas, queries.py's
    post-processing), plotly (the charts.*_figure builders + st.plotly_chart) and the account / trade
    metrics (metrics.account_summary, round_trips, per_strategy_symbol: Decimal arithmetic in Python).
    Only the outermost probed call counts. The rest of a run: Streamlit itself (st.cache_data pickles
    and unpickles every cached DataFrame), tables, widgets, AppTest's own bookkeeping."""
    ns: dict = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    queries: list = field(default_factory=list)
    depth: int = 0

    def reset(self) -> None:
        self.ns = dict.fromkeys(KINDS, 0)
        self.queries = []
        self.depth = 0


@contextlib.contextmanager
def probing(probe: Probe):
    import streamlit as st

    with quiet():
        from streamlit_app import charts, common
        from abidance.reports import metrics as M

    def timed(fn, kind):
        def wrapper(*args, **kwargs):
            if probe.depth:
                return fn(*args, **kwargs)
            probe.depth += 1
            t0 = time.perf_counter_ns()
            try:
                return fn(*args, **kwargs)
            finally:
                dt = time.perf_counter_ns() - t0
                probe.depth -= 1
                probe.ns[kind] += dt
                if kind == "query":
                    probe.queries.append((args[0] if args else kwargs.get("name"), dt))
        return wrapper

    targets = [(common, "_run", "query"), (st, "plotly_chart", "plotly")]
    targets += [(charts, n, "plotly") for n in dir(charts) if n.endswith("_figure")]
    targets += [(M, n, "metrics") for n in ("account_summary", "round_trips", "per_strategy_symbol")]
    with pytest.MonkeyPatch.context() as mp:
        for obj, name, kind in targets:
            mp.setattr(obj, name, timed(getattr(obj, name), kind))
        yield probe


@contextlib.contextmanager
def quiet():
    """Streamlit warns outside a script run ("No runtime found" at import of cached functions, "missing
    ScriptRunContext" from AppTest.from_file and st.cache_data.clear()): noise here."""
    import logging

    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


# ---- rendering a page -----------------------------------------------------------------------------

@dataclass
class Render:
    page: str
    database: str
    cold_ms: list = field(default_factory=list)
    warm_ms: list = field(default_factory=list)
    parts: dict = field(default_factory=dict)          # "cold_query" -> [ms per round], ...
    slowest_queries: list = field(default_factory=list)
    problems: list = field(default_factory=list)

    def med(self, name: str) -> float:
        return statistics.median(getattr(self, name) if hasattr(self, name) else self.parts[name])


def _check(at: AppTest, out: Render, when: str) -> None:
    for e in at.exception:
        out.problems.append(f"{out.page} on {out.database} ({when}): exception {e.message}\n{''.join(e.stack_trace)}")
    for e in at.error:
        out.problems.append(f"{out.page} on {out.database} ({when}): error box {e.value}")
    for i in at.info:                            # a page without data would render fast and prove nothing
        if "No data yet" in i.value:
            out.problems.append(f"{out.page} on {out.database} ({when}): {i.value}")


def render_page(page: str, database: str, rounds: int, probe: Probe) -> Render:
    """Open the app, switch to `page`, then `rounds` times: clear st.cache_data, run (cold), run (warm)."""
    import streamlit as st

    out = Render(page, database)
    os.environ["ABIDANCE_STORE_DATABASE"] = database
    with quiet():
        at = AppTest.from_file(str(APP), default_timeout=TIMEOUT_S)
    at.run()                                     # lands on the default page (overview) and registers the pages
    _check(at, out, "first run")
    if page != "overview":
        at.switch_page(f"app_pages/{page}.py")
    for _ in range(rounds):
        with quiet():
            st.cache_data.clear()
        for kind in ("cold", "warm"):
            probe.reset()
            t0 = time.perf_counter_ns()
            at.run()
            ms = (time.perf_counter_ns() - t0) / 1e6
            _check(at, out, kind)
            getattr(out, f"{kind}_ms").append(ms)
            for part, ns in probe.ns.items():
                out.parts.setdefault(f"{kind}_{part}", []).append(ns / 1e6)
            if kind == "cold" and not out.slowest_queries:
                top = sorted(probe.queries, key=lambda q: -q[1])[:3]
                out.slowest_queries = [(str(name), round(ns / 1e6, 1)) for name, ns in top]
    assert at.title and at.title[0].value, f"{page}: no title rendered"
    return out


@dataclass
class Measured:
    full: bool
    pages: list
    sizes: dict
    rows: dict
    build_s: dict
    big: dict
    small: dict
    wall_s: float


@pytest.fixture(scope="module")
def measured(request, tmp_path_factory):
    from tests.dashboard.seed import CONFIG_TEXT

    t_start = time.perf_counter()
    full = _full(request)
    big_sizes = BIG if full else SMOKE_BIG
    pages = PAGES if full else SMOKE_PAGES
    rounds = 5 if full else 1

    tmp = tmp_path_factory.mktemp("bench-dashboard")
    config = tmp / "node.toml"
    config.write_text(CONFIG_TEXT, encoding="utf-8")
    proc = subprocess.Popen([sys.executable, "-m", "abidance.cli", "store", "--data-dir", str(tmp / "data"),
                             "--port", "0", "--log-level", "WARNING"], stdout=subprocess.PIPE, text=True, cwd=ROOT,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        line = proc.stdout.readline()
        assert line.startswith("abidance store ready: "), line
        url = line.split("ready: ", 1)[1].split(" ", 1)[0]
        client = connect(url, "abidance")
        start_ns = (time.time_ns() // (60 * 10**9)) * 60 * 10**9 - SPAN_S * 10**9      # ends at this minute
        rows, build_s = {}, {}
        for db, sizes in (("small", SMALL), ("big", big_sizes)):
            apply_migrations(client.command, db)
            t0 = time.perf_counter()
            rows[db] = build_database(client, db, sizes, start_ns, CONFIG_TEXT)
            build_s[db] = time.perf_counter() - t0
        client.close()
        print(f"\nstore built: small {build_s['small']:.1f} s, big {build_s['big']:.1f} s; rows big {rows['big']}")

        probe = Probe()
        results = {"small": {}, "big": {}}
        with pytest.MonkeyPatch.context() as mp, probing(probe):
            mp.setenv("ABIDANCE_STORE_URL", url)
            mp.setenv("ABIDANCE_STORE_DATABASE", "small")
            mp.setenv("ABIDANCE_CONFIG", str(config))
            mp.setenv("ABIDANCE_DASHBOARD_REFRESH_S", "0")
            mp.delenv("ABIDANCE_DASHBOARD_PASSWORD", raising=False)
            for page in pages:                   # warm-up: imports, compiled page scripts, store connections
                render_page(page, "small", 1, probe)
                render_page(page, "big", 1, probe)
            for page in pages:
                for db in ("small", "big"):
                    results[db][page] = render_page(page, db, rounds, probe)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
    yield Measured(full, pages, {"big": big_sizes.__dict__, "small": SMALL.__dict__}, rows, build_s,
                   results["big"], results["small"], time.perf_counter() - t_start)


def _breakdown(r: Render, kind: str) -> dict[str, float]:
    """The median round of `kind` (an odd number of rounds: a real round) and where its time went."""
    times = getattr(r, f"{kind}_ms")
    i = sorted(range(len(times)), key=times.__getitem__)[(len(times) - 1) // 2]
    out = {"ms": times[i], **{f"{p}_ms": r.parts[f"{kind}_{p}"][i] for p in KINDS}}
    out["rest_ms"] = out["ms"] - sum(out[f"{p}_ms"] for p in KINDS)
    return out


def _report(kind: str, m: Measured, report, benchmark) -> None:
    problems = [p for r in (*m.big.values(), *m.small.values()) for p in r.problems]
    assert not problems, "\n\n".join(problems)
    n = m.rows["big"]["trades"]
    base_name = f"same page, {m.rows['small']['trades'] / 1e3:g}k-trade store"
    per_page = {}
    for page in m.pages:
        b, s = _breakdown(m.big[page], kind), _breakdown(m.small[page], kind)
        fig = report(f"dashboard page {page!r}, {kind} render (at.run()), {n / 1e6:g}M-trade store "
                     f"[queries {b['query_ms']:,.0f} + plotly {b['plotly_ms']:,.0f} + metrics {b['metrics_ms']:,.0f} "
                     f"+ rest {b['rest_ms']:,.0f} ms]", b["ms"], "ms", target=TARGET_MS, baseline=(base_name, s["ms"]))
        per_page[page] = {**b, "all_rounds_ms": [round(x, 1) for x in getattr(m.big[page], f"{kind}_ms")],
                          "baseline": s, "big_over_small": b["ms"] / s["ms"], "verdict": fig.verdict(),
                          "slowest_cold_queries_ms": m.big[page].slowest_queries}
    worst = max(m.pages, key=lambda p: per_page[p]["ms"])
    report(f"dashboard, slowest page {kind} ({worst!r}), {n / 1e6:g}M-trade store", per_page[worst]["ms"], "ms",
           target=TARGET_MS, baseline=(base_name, per_page[worst]["baseline"]["ms"]), benchmark=benchmark)
    benchmark.extra_info.update(pages=per_page, worst_page=worst, rows=m.rows, sizes=m.sizes, build_s=m.build_s,
                                rounds=len(m.big[worst].cold_ms), module_wall_s=m.wall_s)
    benchmark.pedantic(lambda: None, rounds=1)


def test_dashboard_pages_cold(benchmark, report, measured):
    _report("cold", measured, report, benchmark)


def test_dashboard_pages_warm(benchmark, report, measured):
    _report("warm", measured, report, benchmark)
