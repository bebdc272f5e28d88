"""Tables of the store, one place. Same SQL for embedded chdb and a ClickHouse server.

Binance's values (prices, quantities, fees) are Decimal(38, 8), exactly Binance's
precision; money the node computes (average prices, PnL, equity) is Decimal(38, 18).
Every table has a dedup key (`event_id`, or the natural id) and the MergeTree setting
`non_replicated_deduplication_window`, and the writer sends each batch with an
`insert_deduplication_token`: a batch replayed from the spool after an outage is dropped
by ClickHouse itself, so every event lands exactly once. Times are
DateTime64(9, 'UTC') (ns, as in the node). Sort keys fit
the dashboard's queries: by symbol then time for market data, by time for the rest.
High-volume market data has a TTL (`market_ttl_days`, 0 = keep).
"""

from __future__ import annotations

from dataclasses import dataclass

DEC = "Decimal(38, 18)"     # computed money (average prices, PnL, equity)
DEC8 = "Decimal(38, 8)"     # Binance's own values: every price, quantity and fee has at most 8 decimals
TS = "DateTime64(9, 'UTC')"
SYM = "LowCardinality(String)"
DEDUP_WINDOW = 10_000       # batches remembered per table for deduplication
ENGINE = "MergeTree"        # every table's engine family (a cluster uses its Replicated variant)


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[tuple[str, str], ...]     # (name, ClickHouse type)
    order_by: str
    partition_by: str = "toYYYYMM(ts)"
    market_data: bool = False                # gets the market-data TTL

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c for c, _ in self.columns)

    def columns_sql(self) -> str:
        return ",\n    ".join(f"`{c}` {t}" for c, t in self.columns)

    def ddl(self, database: str, market_ttl_days: int = 0, *, name: str = "", on_cluster: str = "",
            engine: str = ENGINE, dedup_setting: str = "non_replicated_deduplication_window") -> str:
        """The CREATE statement on one server (the defaults). A cluster (abidance/store/cluster.py)
        names the local table, adds `ON CLUSTER` and gives the replicated engine and its dedup setting."""
        ttl = f"\nTTL toDateTime(ts) + INTERVAL {int(market_ttl_days)} DAY" \
            if self.market_data and market_ttl_days > 0 else ""
        return (f"CREATE TABLE IF NOT EXISTS {database}.{name or self.name}{on_cluster} (\n    {self.columns_sql()}\n)"
                f" ENGINE = {engine}\nPARTITION BY {self.partition_by}\nORDER BY ({self.order_by}){ttl}"
                f"\nSETTINGS {dedup_setting} = {DEDUP_WINDOW}")


def _t(name, order_by, *columns, market_data=False, partition_by="toYYYYMM(ts)"):
    return Table(name, tuple(columns), order_by, partition_by, market_data)


TABLES: tuple[Table, ...] = (
    # market data
    _t("trades", "symbol, ts, trade_id",
       ("ts", TS), ("symbol", SYM), ("trade_id", "Int64"), ("price", DEC8), ("qty", DEC8),
       ("buyer_is_maker", "Bool"), ("ts_init", TS), market_data=True),
    _t("bars", "symbol, interval, ts",
       ("ts", TS), ("symbol", SYM), ("interval", SYM), ("close_time", TS), ("open", DEC8), ("high", DEC8),
       ("low", DEC8), ("close", DEC8), ("volume", DEC8), ("trades", "UInt32"), market_data=True),
    _t("book_tops", "symbol, ts",
       ("ts", TS), ("symbol", SYM), ("bid_price", DEC8), ("bid_qty", DEC8), ("ask_price", DEC8), ("ask_qty", DEC8),
       ("update_id", "Int64"), market_data=True),
    _t("depth_snapshots", "symbol, ts",
       ("ts", TS), ("symbol", SYM), ("update_id", "Int64"), ("bid_prices", f"Array({DEC8})"),
       ("bid_qtys", f"Array({DEC8})"), ("ask_prices", f"Array({DEC8})"), ("ask_qtys", f"Array({DEC8})"),
       market_data=True),
    # the node's decisions and orders
    _t("signals", "ts, strategy_id",
       ("ts", TS), ("event_id", "String"), ("strategy_id", SYM), ("symbol", SYM), ("side", SYM),
       ("confidence", "Float64"), ("price", DEC8), ("reason", "String")),
    _t("risk_decisions", "ts, strategy_id",
       ("ts", TS), ("event_id", "String"), ("strategy_id", SYM), ("symbol", SYM), ("side", SYM),
       ("accepted", "Bool"), ("reason", SYM), ("message", "String"), ("quantity", DEC8), ("price", DEC8),
       ("client_order_id", "String"), ("confidence", "Float64")),
    _t("order_events", "ts, client_order_id",
       ("ts", TS), ("event_id", "String"), ("client_order_id", "String"), ("strategy_id", SYM),
       ("symbol", SYM), ("side", SYM), ("order_type", SYM), ("status", SYM), ("previous", SYM),
       ("quantity", DEC8), ("filled", DEC8), ("price", DEC8), ("order_id", "Int64"), ("reason", "String")),
    _t("fills", "ts, client_order_id, trade_id",
       ("ts", TS), ("event_id", "String"), ("client_order_id", "String"), ("strategy_id", SYM),
       ("symbol", SYM), ("side", SYM), ("qty", DEC8), ("price", DEC8), ("commission", DEC8),
       ("commission_asset", SYM), ("trade_id", "Int64"), ("is_maker", "Bool")),
    # account
    _t("balances", "ts, asset",
       ("ts", TS), ("event_id", "String"), ("asset", SYM), ("free", DEC8), ("locked", DEC8), ("source", SYM)),
    # One row per fill: that strategy's position in the symbol (strategy_id "" = bought by none).
    _t("positions", "ts, symbol",
       ("ts", TS), ("event_id", "String"), ("strategy_id", SYM), ("symbol", SYM), ("quantity", DEC),
       ("avg_price", DEC), ("realized_pnl", DEC), ("unrealized_pnl", DEC)),
    _t("equity", "ts",
       ("ts", TS), ("event_id", "String"), ("equity", DEC), ("cash", DEC), ("positions_value", DEC),
       ("realized_pnl", DEC), ("unrealized_pnl", DEC), ("fees", DEC), ("drawdown", DEC)),
    # health
    _t("alerts", "ts, level",
       ("ts", TS), ("event_id", "String"), ("level", SYM), ("source", SYM), ("code", SYM), ("message", "String")),
    _t("trading_state", "ts",
       ("ts", TS), ("event_id", "String"), ("state", SYM), ("previous", SYM), ("reason", "String"),
       ("source", SYM)),
    _t("health", "ts, stream",
       ("ts", TS), ("event_id", "String"), ("stream", SYM), ("messages", "UInt64"), ("rate_per_s", "Float64"),
       ("lag_ms_mean", "Float64"), ("lag_ms_max", "Float64"), ("reconnects", "UInt32"), ("resyncs", "UInt32")),
    _t("config_versions", "ts, version",
       ("ts", TS), ("version", "UInt32"), ("author", "String"), ("text", "String"), ("comment", "String"),
       partition_by="tuple()"),
    # operator commands for the node (kill switch, REDUCING, resume), written by the dashboard
    _t("commands", "ts, command_id",
       ("ts", TS), ("command_id", "String"), ("command", SYM), ("reason", "String"), ("author", "String"),
       partition_by="tuple()"),
    # the model registry (abidance/ml/registry.py; migration 2). `models` is append-only too: every
    # change of a version writes a new full row and the newest row (largest ts) per (name, version) is
    # its state, so no UPDATE mutation is ever needed. JSON columns are Strings.
    _t("models", "name, version, ts",
       ("ts", TS), ("name", SYM), ("version", "UInt32"), ("status", SYM), ("artifact_path", "String"),
       ("artifact_sha256", "String"), ("feature_set", "String"), ("train_start", TS), ("train_end", TS),
       ("params", "String"), ("in_sample", "String"), ("out_of_sample", "String"), ("reference", "String"),
       ("created_at", TS), ("reason", "String"), ("author", "String"),
       partition_by="tuple()"),
    _t("model_events", "ts, name, version",
       ("ts", TS), ("event_id", "String"), ("name", SYM), ("version", "UInt32"), ("event", SYM),
       ("from_status", SYM), ("to_status", SYM), ("reason", "String"), ("author", "String"),
       ("details", "String"),
       partition_by="tuple()"),
    # what a model in shadow would have done (never traded), one row per would-be signal
    _t("shadow_signals", "ts, model, version",
       ("ts", TS), ("event_id", "String"), ("model", SYM), ("version", "UInt32"), ("strategy_id", SYM),
       ("symbol", SYM), ("side", SYM), ("confidence", "Float64"), ("price", DEC8), ("reason", "String")),
)

BY_NAME = {t.name: t for t in TABLES}
