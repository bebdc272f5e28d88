"""The node's config sections, declared once: the schema, the defaults and the typed result."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from abidance._core.risk import RiskLimits, quote_units
from abidance.config.ops_sections import (ALERTS, ANOMALY, CHAT, METRICS, AlertsSection, AnomalySection,
                                          ChatSection, MetricsSection)
from abidance.config.schema import (BOOL, BPS_TABLE, FLOAT, INT, KIND_OF_TYPE, MONEY, PATH, QTY, QTY_TABLE,
                                    REQUIRED, STR, STR_LIST, TABLE, Section, Spec, key)
from abidance.exchange.binance.config import VENUES, BinanceConfig

CONFIG_VERSION = 1
INTERVALS = ("1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "1w", "1M")
SIZING = ("fixed_quote", "fixed_fraction", "volatility", "kelly")
SYMBOL = dict(pattern=r"[A-Z0-9]{2,20}", hint="an uppercase Binance symbol like 'BTCUSDT'")
ASSET = dict(pattern=r"[A-Z0-9]{2,10}", hint="an uppercase asset like 'USDT'")


@dataclass(frozen=True)
class NodeSection:
    name: str = key(STR, "abidance", "The node's name, shown in logs, alerts and the store.",
                    pattern=r"[A-Za-z0-9_.-]{1,64}", hint="1-64 letters, digits, '.', '-' or '_'")
    mode: str = key(STR, "paper", "'live' sends orders to the venue; 'paper' uses live market data with "
                    "simulated fills.", choices=("live", "paper"))
    state_dir: Path = key(PATH, "state", "Folder for the node's state and local files; relative to the config "
                          "file's folder.")
    strategies_dir: Path | None = key(PATH, "", "Folder of user strategy files for `module_file:ClassName` "
                                      "classes; relative to the config file's folder; \"\" = none.")
    log_level: str = key(STR, "INFO", "Least severe log level written.",
                         choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    log_format: str = key(STR, "text", "Log lines as readable text or as one JSON object per line.",
                          choices=("text", "json"))
    cancel_orders_on_stop: bool = key(BOOL, True, "Cancel the node's open orders when it stops.")
    heartbeat_s: float = key(FLOAT, 5.0, "Seconds between the node's health heartbeats.", gt=0, le=3600)
    symbols: tuple[str, ...] = key(STR_LIST, [], "Symbols to subscribe to in addition to the strategies' "
                                   "symbols (the effective list always includes them).", **SYMBOL)


@dataclass(frozen=True)
class RiskSection:
    quote_asset: str = key(STR, "USDT", "Asset all money limits are in; every traded symbol must be quoted "
                           "in it.", **ASSET)
    max_order_notional: Decimal = key(MONEY, "100", "Largest notional of one order, in the quote asset; "
                                      "\"0\" = off.")
    max_gross_exposure: Decimal = key(MONEY, "1000", "Largest sum of |position| x price over all symbols; "
                                      "\"0\" = off.")
    daily_loss_limit: Decimal = key(MONEY, "50", "Halt trading when the day's loss reaches this; \"0\" = off.")
    max_drawdown: Decimal = key(MONEY, "100", "Halt trading when equity falls this far below its peak; "
                                "\"0\" = off.")
    max_open_orders: int = key(INT, 10, "Most open orders at once over all symbols; 0 = off.", ge=0, le=1_000_000)
    orders_per_10s: int = key(INT, 10, "Most new orders in any 10 seconds (Binance allows 50); 0 = off.", ge=0, le=1_000_000)
    orders_per_day: int = key(INT, 1000, "Most new orders per day (Binance allows 160000); 0 = off.", ge=0, le=100_000_000)
    price_band_bps: int = key(INT, 500, "Deny limit orders priced further than this from the mid (fat finger), "
                              "in basis points; 0 = off.", ge=0, le=10_000)
    max_position: dict[str, Decimal] = key(QTY_TABLE, {}, "Largest |position| per symbol in the base asset, "
                                           "e.g. { BTCUSDT = \"0.01\" }; unlisted symbols are unlimited.", **SYMBOL)
    max_consecutive_losses: int = key(INT, 0, "Halt trading after this many losing round trips in a row "
                                      "(an operator resumes); 0 = off.", ge=0, le=1_000_000)
    max_errors_per_minute: int = key(INT, 20, "Halt trading when more order rejections than this happen "
                                     "in a minute; 0 = off.", ge=0, le=1_000_000)
    stale_data_s: float = key(FLOAT, 10.0, "Move to REDUCING (no new positions) when no market data has "
                              "arrived for this long, back to ACTIVE when it flows again; 0 = off.", ge=0, le=86_400)
    kill_switch_file: Path | None = key(PATH, "KILL", "Trading halts while this file exists (`touch` it); "
                                        "relative to node.state_dir; \"\" = off.")
    sizing: str = key(STR, "fixed_quote", "How an order's size is chosen from a signal.", choices=SIZING)
    fixed_quote: Decimal = key(MONEY, "20", "Quote asset per order when sizing = 'fixed_quote'.")
    fraction: float = key(FLOAT, 0.02, "Share of equity per order when sizing = 'fixed_fraction'.", gt=0, le=1)
    volatility_risk_bps: int = key(INT, 50, "Equity risked per trade in basis points when sizing = 'volatility' "
                                   "(stop distance from the ATR).", ge=1, le=10000)
    kelly_cap: float = key(FLOAT, 0.25, "Largest share of equity the Kelly fraction may use when "
                           "sizing = 'kelly'.", gt=0, le=1)
    min_confidence: float = key(FLOAT, 0.0, "Ignore signals whose confidence is below this.", ge=0, le=1)
    start_reducing: bool = key(BOOL, False, "Start in reduce-only mode: only orders that move positions "
                               "towards zero.")

    def limits(self) -> Any:
        """The pre-trade limits in quote units (1e-8 of the quote asset), for abidance._core.risk."""
        money = ("max_order_notional", "max_gross_exposure", "daily_loss_limit", "max_drawdown")
        counts = ("max_open_orders", "orders_per_10s", "orders_per_day", "price_band_bps")
        return RiskLimits(**{n: quote_units(str(getattr(self, n))) for n in money},
                          **{n: getattr(self, n) for n in counts})


@dataclass(frozen=True)
class ExecutionSection:
    limit_timeout_s: float = key(FLOAT, 30.0, "Seconds an unfilled limit order may rest before its timeout "
                                 "action; 0 = never.", ge=0, le=30 * 86_400)
    cancel_replace: bool = key(BOOL, False, "On timeout re-price the order at the current market instead of "
                               "cancelling it.")
    exits: str = key(STR, "auto", "Where stop loss, take profit and trailing stops live: 'native' rests them "
                     "on the exchange (STOP_LOSS, LIMIT_MAKER, OCO: they fire while the node is down), 'emulated' "
                     "watches trades in the node; 'auto' is native when trading live, emulated in paper mode and "
                     "backtests (docs/node.md, Exits).", choices=("auto", "native", "emulated"))
    max_slippage_bps: int = key(INT, 50, "Most adverse slippage accepted for market and marketable orders, "
                                "in basis points.", ge=0, le=10_000)


@dataclass(frozen=True)
class DataSection:
    bar_intervals: tuple[str, ...] = key(STR_LIST, ["1m"], "Bar intervals to build; every strategy's timeframe "
                                         "is added.", choices=INTERVALS)
    depth: bool = key(BOOL, True, "Keep a local L2 order book per symbol from the depth stream.")
    book_ticker: bool = key(BOOL, True, "Subscribe to the best bid/ask stream of each symbol.")
    depth_snapshot_s: float = key(FLOAT, 5.0, "Seconds between snapshots of each ready book's top 20 levels "
                                  "(for the store and the dashboard's depth chart); 0 = none.", ge=0, le=86_400)


@dataclass(frozen=True)
class StoreSection:
    url: str = key(STR, "", "Where events are written: 'http://127.0.0.1:8123' (an `abidance store` process or a "
                   "ClickHouse server), 'chdb:///path' (embedded, only this process can open it); \"\" = off.")
    database: str = key(STR, "abidance", "ClickHouse database of the node's tables.",
                        pattern=r"[A-Za-z_][A-Za-z0-9_]{0,63}", hint="a plain identifier")
    batch_rows: int = key(INT, 2000, "A table's batch is written once it holds this many rows.", gt=0, le=1_000_000)
    flush_s: float = key(FLOAT, 1.0, "Seconds between writes of partial batches.", gt=0, le=3600)
    spool_dir: Path = key(PATH, "store-spool", "Batches wait here while the store is unreachable (relative to "
                          "node.state_dir); replayed in order when it is back.")
    market_data: bool = key(BOOL, True, "Also record trades, bars and book tops (high volume).")
    cluster: str = key(STR, "", "ClickHouse cluster (a name in the servers' remote_servers) the tables live on: "
                       "replicated local tables behind Distributed tables of the usual names, created by "
                       "`abidance migrate` ON CLUSTER (docs/store.md); \"\" = one server.",
                       pattern=r"|[A-Za-z_][A-Za-z0-9_-]{0,63}", hint="empty, or a cluster name from remote_servers")
    market_ttl_days: int = key(INT, 0, "Days `abidance migrate` keeps market data (trades, bars, book tops, depth) "
                               "on a ClickHouse server or cluster; 0 = forever (`abidance store` takes "
                               "--market-ttl-days instead).", ge=0, le=36_500)


@dataclass(frozen=True)
class MlSection:
    min_oos_auc: float = key(FLOAT, 0.55, "Promotion to live needs at least this out-of-sample ROC AUC "
                             "(0.5 = no skill); `abidance models promote --force` with a reason overrides.",
                             ge=0.5, le=1)
    min_oos_signals: int = key(INT, 50, "Promotion to live needs at least this many out-of-sample signals "
                               "behind its hit rate: confident calls (p(up) >= min_confidence or <= 1 - "
                               "min_confidence), one per bar, so calls whose label horizons overlap count each "
                               "(not a count of independent trades).", ge=0, le=10_000_000)
    min_confidence: float = key(FLOAT, 0.55, "A model's signal is acted on (live) or recorded as a would-be "
                                "signal (shadow) only when its probability reaches this.", ge=0.5, le=1)
    drift_window: int = key(INT, 500, "Rolling window, in live predictions, over which feature drift (PSI) and "
                            "the live hit rate are measured.", ge=20, le=100000)
    drift_psi_threshold: float = key(FLOAT, 0.25, "Demote a live model to shadow when a feature's PSI against "
                                     "its training distribution exceeds this (0.1 = moderate, 0.25 = large shift) "
                                     "and the PSI that windows of this length reach inside the training data.",
                                     gt=0, le=100)
    min_live_hit_rate_ratio: float = key(FLOAT, 0.7, "Demote a live model to shadow when its live hit rate falls "
                                         "below this share of its out-of-sample hit rate; 0 = off.", ge=0, le=1)
    drift_min_outcomes: int = key(INT, 50, "Realised outcomes needed in the window before the live hit rate is "
                                  "judged.", ge=1, le=100_000)
    registry_poll_s: float = key(FLOAT, 5.0, "Seconds between the node's reads of the model registry (a "
                                 "promotion or demotion made with `abidance models` takes effect then).", gt=0, le=86_400)
    close_on_demote: bool = key(BOOL, True, "When a live model is demoted (by drift or an operator), sell what "
                                "its strategy bought (its exits are no longer traded); false leaves the position "
                                "to the risk limits, the exits and the operator. The sell is sized from that "
                                "strategy's own position: other strategies' holdings in the symbol are untouched.")


@dataclass(frozen=True)
class BacktestSection:
    taker_bps: Decimal = key(QTY, "10", "Taker fee in bps of the notional (10 = 0.1 %, Binance's base rate), "
                             "charged in the asset received.", le=10_000)
    maker_bps: Decimal = key(QTY, "10", "Maker fee in bps, for limit orders that rested before filling.", le=10_000)
    taker_bps_by_symbol: dict = key(BPS_TABLE, {}, "Per-instrument taker fees overriding backtest.taker_bps, "
                                    "e.g. { BTCUSDT = \"0\" } for a zero-fee pair.")
    maker_bps_by_symbol: dict = key(BPS_TABLE, {}, "Per-instrument maker fees overriding backtest.maker_bps.")
    slippage_bps: Decimal = key(QTY, "0", "Market orders fill this many bps worse than the next open / trade.", le=10_000)
    spread_bps: Decimal = key(QTY, "0", "Market orders also pay half this spread (bar data has no book).", le=10_000)
    participation: Decimal = key(QTY, "0", "Fill at most this share of a bar's (or trade's) volume; the rest "
                                 "waits (partial fills); \"0\" = no volume limit.", le=1)
    latency_ms: int = key(INT, 0, "An order reaches only bars opening (trades printed) at least this long after "
                          "it was sent.", ge=0, le=86_400_000)
    balances: dict = key(QTY_TABLE, {}, "Starting balances (ASSET = \"amount\") of backtests run without "
                         "--balance and of the paper node; {} = 10000 of risk.quote_asset.")
    exchange_info: Path | None = key(PATH, "", "A saved Binance exchangeInfo JSON file (`abidance download "
                                     "--exchange-info`) whose symbols backtests and optimisations may use, as "
                                     "--exchange-info gives; relative to this file; \"\" = none.")


@dataclass(frozen=True, kw_only=True)
class InstrumentConfig:
    symbol: str = key(STR, REQUIRED, "The symbol as the data names it.", **SYMBOL)
    base: str = key(STR, REQUIRED, "The asset bought and sold.", **ASSET)
    quote: str = key(STR, REQUIRED, "The asset prices are in (risk.quote_asset for a traded symbol).", **ASSET)
    tick_size: Decimal = key(QTY, REQUIRED, "Price grid: every price is a whole number of ticks.", gt=0)
    step_size: Decimal = key(QTY, REQUIRED, "Quantity grid: every quantity is a whole number of steps.", gt=0)
    min_qty: Decimal = key(QTY, "0", "Smallest order quantity; \"0\" = one step.")
    max_qty: Decimal = key(QTY, "0", "Largest order quantity; \"0\" = no limit.")
    min_notional: Decimal = key(QTY, "0", "Smallest order value (price x quantity) in the quote asset; \"0\" = none.")
    max_notional: Decimal = key(QTY, "0", "Largest order value in the quote asset; \"0\" = no limit.")
    min_price: Decimal = key(QTY, "0", "Lowest price allowed; \"0\" = no limit.")
    max_price: Decimal = key(QTY, "0", "Highest price allowed; \"0\" = no limit.")


@dataclass(frozen=True, kw_only=True)
class StrategyConfig:
    id: str = key(STR, REQUIRED, "Unique name of this strategy instance (orders and reports carry it).",
                  pattern=r"[A-Za-z0-9_-]{1,32}", hint="1-32 letters, digits, '-' or '_'")
    class_name: str = key(STR, REQUIRED, "A built-in strategy ('ema_cross') or 'module_file:ClassName' in "
                          "node.strategies_dir.", name="class",
                          pattern=r"[a-z][a-z0-9_]*|[A-Za-z0-9_.-]+:[A-Za-z_][A-Za-z0-9_]*",
                          hint="a built-in name like 'ema_cross' or 'module_file:ClassName'")
    symbols: tuple[str, ...] = key(STR_LIST, REQUIRED, "Symbols this strategy trades.", nonempty=True, **SYMBOL)
    timeframe: str = key(STR, "1m", "Bar interval the strategy runs on.", choices=INTERVALS)
    enabled: bool = key(BOOL, True, "Run this strategy; false keeps it configured but idle.")
    params: dict[str, Any] = key(TABLE, {}, "The strategy's parameters; checked against the strategy's "
                                 "declared parameters when it is loaded.")


BINANCE_DESCRIPTIONS: dict[str, str] = {
    "venue": f"Named venue: {', '.join(repr(v) for v in VENUES)}; any other name needs rest_url and ws_url.",
    "rest_url": "REST base URL; \"\" = the venue's.",
    "ws_url": "WebSocket streams base URL; \"\" = the venue's.",
    "ws_api_url": "WebSocket API URL (user data and orders); \"\" = the venue's (on the simulator: ws_url + "
                  "/ws-api/v3).",
    "recv_window_ms": "How long a signed request stays valid after its timestamp, in ms (at most 60000).",
    "request_timeout_s": "Seconds to wait for a REST answer.",
    "time_sync_interval_s": "Seconds between measurements of the server clock offset.",
    "order_retry_attempts": "Resubmits of an order whose status is unknown, each after querying it.",
    "weight_limit_per_minute": "REST weight budget per minute until exchangeInfo's REQUEST_WEIGHT limit replaces it.",
    "weight_safety_margin": "Share of the weight budget the node lets itself use, in (0, 1].",
    "client_order_prefix": "Prefix of client order ids: 1-8 letters, digits, '-' or '_'.",
    "daily_order_budget": "When the day's order budget (exchangeInfo's ORDERS per DAY, less the safety margin) is "
                          "spent: 'halt' refuses new orders, alerts and halts trading until an operator resumes; "
                          "'wait' holds new orders until the next UTC day.",
    "max_streams_per_connection": "Streams per WebSocket connection (Binance's limit is 1024).",
    "max_messages_per_second": "Subscribe requests per second on one connection (Binance disconnects above 5).",
    "subscribe_batch": "Streams per SUBSCRIBE request.",
    "reconnect_initial_s": "First reconnect delay in seconds; doubles up to reconnect_max_s.",
    "reconnect_max_s": "Longest reconnect delay in seconds.",
    "reconnect_jitter": "Random +- share added to each reconnect delay, in [0, 1).",
    "stale_after_s": "Reconnect a stream connection silent for this many seconds.",
    "max_connection_age_s": "Reconnect before this age in seconds (Binance cuts connections at 24 h).",
    "depth_snapshot_limit": "Levels requested in a REST depth snapshot when syncing a book.",
    "depth_stream_speed": "Depth stream update speed: '100ms' or '1000ms'.",
    "health_interval_s": "Seconds between connector health reports.",
    "user_data_auth": "How the user-data subscription is authorised on the WebSocket API: 'signature' "
                      "(userDataStream.subscribe.signature, any key type) or 'logon' (session.logon, Ed25519 "
                      "keys only, then userDataStream.subscribe).",
    "order_transport": "Where orders, cancels and order queries go: 'ws_api' (the WebSocket API, lower "
                       "latency) or 'rest'.",
}


# Bounds of the connector's numbers, checked here before BinanceConfig runs its own rules (a value
# such as 1e308 seconds would pass "positive" and then overflow a timer at run time).
BINANCE_RANGES: dict[str, dict] = {
    "recv_window_ms": dict(gt=0, le=60_000, hint="within (0, 60000] (Binance's maximum)"),
    "request_timeout_s": dict(gt=0, le=300),
    "time_sync_interval_s": dict(gt=0, le=86_400),
    "order_retry_attempts": dict(gt=0, le=100),
    "weight_limit_per_minute": dict(gt=0, le=10_000_000),
    "weight_safety_margin": dict(gt=0, le=1),
    "max_streams_per_connection": dict(gt=0, le=1024, hint="within (0, 1024] (Binance's limit)"),
    "max_messages_per_second": dict(gt=0, le=1000),
    "subscribe_batch": dict(gt=0, le=1024),
    "reconnect_initial_s": dict(gt=0, le=3600),
    "reconnect_max_s": dict(gt=0, le=86_400),
    "reconnect_jitter": dict(ge=0, lt=1),
    "stale_after_s": dict(gt=0, le=86_400),
    "max_connection_age_s": dict(gt=0, le=24 * 3600),
    "depth_snapshot_limit": dict(gt=0, le=5000),
    "health_interval_s": dict(gt=0, le=86_400),
}


def _binance_section() -> Section:
    keys = {}
    for f in dataclasses.fields(BinanceConfig):
        keys[f.name] = Spec(KIND_OF_TYPE[str(f.type)], f.default, BINANCE_DESCRIPTIONS[f.name], attr=f.name,
                            **BINANCE_RANGES.get(f.name, {}))
    return Section("binance", BinanceConfig, "The Binance connector: which venue, REST and stream settings. "
                   "Checked by the connector's own BinanceConfig.", keys)


NODE = Section.of("node", NodeSection, "The node itself: mode, folders, logging.")
BINANCE = _binance_section()
RISK = Section.of("risk", RiskSection, "Hard risk limits and order sizing. Money is a quoted decimal string in "
                  "risk.quote_asset (\"1000.5\", never a float); \"0\" turns a limit off.")
EXECUTION = Section.of("execution", ExecutionSection, "How orders are worked once risk accepts them.")
DATA = Section.of("data", DataSection, "Market data the node subscribes to and builds.")
STORE = Section.of("store", StoreSection, "The ClickHouse store every event is written to (docs/store.md). Its "
                   "user and password come from ABIDANCE_STORE_USER / ABIDANCE_STORE_PASSWORD, never this file.")
ML = Section.of("ml", MlSection, "Machine-learning models in the node: promotion criteria, the confidence to "
                "act, and the drift safeguards that demote a live model to shadow (docs/registry.md).")
BACKTEST = Section.of("backtest", BacktestSection, "Simulated fills: the backtester's and the paper node's "
                      "(node.mode = \"paper\") fill model, fees and starting balances (docs/backtest.md); "
                      "`abidance backtest` flags override them.")
STRATEGY = Section.of("strategies", StrategyConfig, "One [[strategies]] table per strategy instance.")
INSTRUMENT = Section.of("instruments", InstrumentConfig, "Symbols of your own data declared by hand, one "
                        "[[instruments]] table each, for backtests and optimisations (they add to, or replace, the "
                        "simulator's symbols and those of backtest.exchange_info; docs/backtest.md).")
SECTIONS: dict[str, Section] = {s.name: s for s in (NODE, BINANCE, RISK, EXECUTION, DATA, STORE, ML,
                                                           BACKTEST, ALERTS, ANOMALY, CHAT, METRICS)}
VERSION = Spec(INT, CONFIG_VERSION, "Version of this file's layout, for later migrations.", choices=(CONFIG_VERSION,),
               attr="config_version")
SIM_DOC = ("The local simulator's settings, passed through as a raw table and validated by the simulator "
           "(docs/simulator.md).")


@dataclass(frozen=True)
class NodeConfig:
    """The whole validated config: build it with load_config() / parse_config()."""

    config_version: int = CONFIG_VERSION
    node: NodeSection = field(default_factory=NodeSection)
    binance: BinanceConfig = field(default_factory=BinanceConfig)
    risk: RiskSection = field(default_factory=RiskSection)
    execution: ExecutionSection = field(default_factory=ExecutionSection)
    data: DataSection = field(default_factory=DataSection)
    store: StoreSection = field(default_factory=StoreSection)
    ml: MlSection = field(default_factory=MlSection)
    backtest: BacktestSection = field(default_factory=BacktestSection)
    alerts: AlertsSection = field(default_factory=AlertsSection)
    anomaly: AnomalySection = field(default_factory=AnomalySection)
    chat: ChatSection = field(default_factory=ChatSection)
    metrics: MetricsSection = field(default_factory=MetricsSection)
    strategies: tuple[StrategyConfig, ...] = ()
    instruments: tuple[InstrumentConfig, ...] = ()
    sim: dict[str, Any] = field(default_factory=dict)     # raw [sim] table: the simulator validates it
    # As plain values or TOML again: abidance.config.as_dict(cfg) / to_toml(cfg) (config/render.py).
