"""The read API: every query the dashboard, reports and ML run against the store, in one place.

`StoreReader(client)` takes any clickhouse-connect client (`abidance.store.client.connect`:
the served embedded store, a ClickHouse server, or chdb in-process) and returns pandas
DataFrames.

Types (all queries go through `query_arrow`, then `to_pandas`):
- Decimal columns (prices, quantities, PnL) come back as Python `Decimal` objects in an
  object column: exact, never float (query_df would also keep them, chdb's own DataFrame
  output would not). Convert with `.astype(float)` for charts.
- Times are `datetime64[ns, UTC]` (the store keeps nanoseconds; Python datetimes would cut
  them to microseconds).
- LowCardinality strings are plain strings; Bool is bool; counters are ints.

Time arguments (`start`, `end`, `since`) take a datetime (naive = UTC), a pandas Timestamp,
an ISO string, or int nanoseconds since the epoch; `start` is inclusive, `end` exclusive.
Every user value is a bound query parameter (`{name:Type}`), never formatted into SQL.
"""

from __future__ import annotations

import datetime as _dt
from collections import defaultdict
from decimal import Decimal
from typing import Any

from abidance.reports.fills import book_fill
from abidance.store import schema
from abidance.store.migrations import check_identifier

ZERO = Decimal(0)


def to_ns(value: Any) -> int:
    """A time argument -> int ns since the epoch (UTC)."""
    if isinstance(value, bool):
        raise TypeError(f"not a time: {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        # Lazy: pandas is an optional extra (dev, ml, dashboard): only this path needs it.
        import pandas as pd

        ts = pd.Timestamp(value)
        return int((ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")).value)
    if hasattr(value, "value") and hasattr(value, "tz_localize"):        # pandas Timestamp
        return int((value.tz_localize("UTC") if value.tzinfo is None else value.tz_convert("UTC")).value)
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=_dt.timezone.utc)
        delta = value - _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
        return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000
    if isinstance(value, _dt.date):
        return to_ns(_dt.datetime(value.year, value.month, value.day))
    raise TypeError(f"not a time: {value!r}")


class _Where:
    """WHERE clauses built from fixed SQL snippets; values only ever travel as parameters."""

    def __init__(self):
        self.clauses: list[str] = []
        self.params: dict[str, Any] = {}

    def eq(self, column: str, name: str, value, ch_type: str = "String"):
        if value is not None:
            self.clauses.append(f"{column} = {{{name}:{ch_type}}}")
            self.params[name] = value
        return self

    def time(self, column: str, start=None, end=None):
        if start is not None:
            self.clauses.append(f"{column} >= fromUnixTimestamp64Nano({{start_ns:Int64}}, 'UTC')")
            self.params["start_ns"] = to_ns(start)
        if end is not None:
            self.clauses.append(f"{column} < fromUnixTimestamp64Nano({{end_ns:Int64}}, 'UTC')")
            self.params["end_ns"] = to_ns(end)
        return self

    def sql(self) -> str:
        return (" WHERE " + " AND ".join(self.clauses)) if self.clauses else ""


def _limit(limit) -> int:
    limit = int(limit)
    if limit <= 0:
        raise ValueError(f"limit must be > 0, got {limit}")
    return limit


class StoreReader:
    def __init__(self, client, database: str = "abidance"):
        self.client = client
        self.database = check_identifier(database)

    # -- plumbing ---------------------------------------------------------------------------------
    def _t(self, table: str) -> str:
        return f"{self.database}.{schema.BY_NAME[table].name}"

    def query(self, sql: str, parameters: dict | None = None):
        """Run a SELECT (with `{name:Type}` parameters) and return a pandas DataFrame (see module doc)."""
        return self.client.query_arrow(sql, parameters=parameters or {}).to_pandas()

    def _select(self, table: str, where: _Where, order: str, limit: int | None = None, columns: str = "*"):
        params = dict(where.params)
        sql = f"SELECT {columns} FROM {self._t(table)}{where.sql()} ORDER BY {order}"
        if limit is not None:
            sql += " LIMIT {limit:UInt64}"
            params["limit"] = _limit(limit)
        return self.query(sql, params)

    # -- account ----------------------------------------------------------------------------------
    def equity_curve(self, start=None, end=None):
        """Equity points oldest first: ts, equity, cash, positions_value, realized_pnl, unrealized_pnl, fees, drawdown."""
        return self._select("equity", _Where().time("ts", start, end), "ts",
                            columns="ts, equity, cash, positions_value, realized_pnl, unrealized_pnl, fees, drawdown")

    def performance(self, start=None, end=None):
        """Every figure of the run in the store over [start, end): `abidance.reports.metrics.performance`
        on its equity curve and all its fills, the computation the backtester and the dashboard use
        (so a backtest written with --to-store reads the same here as on its command line).
        None without equity."""
        # Lazy: the metrics need pandas, an optional extra (dev, ml, dashboard): only this path does.
        from abidance.reports.metrics import performance

        fills = self._select("fills", _Where().time("ts", start, end), "ts, trade_id",
                             columns="ts, strategy_id, symbol, side, qty, price, commission, commission_asset")
        return performance(self.equity_curve(start, end), fills)

    def positions(self):
        """The latest position record of each (strategy, symbol): the portfolio keeps one per strategy."""
        return self.query(
            "SELECT p.strategy_id AS strategy_id, p.symbol AS symbol, max(p.ts) AS ts, "
            "argMax(p.quantity, p.ts) AS quantity, argMax(p.avg_price, p.ts) AS avg_price, "
            "argMax(p.realized_pnl, p.ts) AS realized_pnl, argMax(p.unrealized_pnl, p.ts) AS unrealized_pnl "
            f"FROM {self._t('positions')} AS p GROUP BY p.strategy_id, p.symbol ORDER BY symbol, strategy_id")

    def account_positions(self) -> dict:
        """symbol -> (quantity, realized PnL) of the account: every strategy's latest record added up."""
        out: dict[str, tuple[Decimal, Decimal]] = {}
        pos = self.positions()
        for symbol, qty, realized in zip(pos["symbol"], pos["quantity"], pos["realized_pnl"]):
            q, r = out.get(symbol, (ZERO, ZERO))
            out[symbol] = (q + Decimal(qty), r + Decimal(realized))
        return out

    def pnl_by(self, by: str = "strategy", start=None, end=None):
        """Realised PnL per strategy or per symbol, computed from the fills.

        Average cost, as the portfolio books it (`abidance.reports.fills.book_fill`, shared with
        the dashboard's round trips): a buy adds its quantity at its price, a sell realises
        `sold x price - cost of the sold share`; fees are costs. A fee paid in the
        quote asset counts as it is, one paid in the base asset at the fill price (a buy's
        base fee reduces the quantity received, a sell's leaves with the sold quantity); a
        fee in a third asset (BNB) has no price here and is listed in `unpriced_fees`.
        Each strategy keeps its own book per symbol (by="strategy"); by="symbol" books all
        strategies' fills of a symbol together and adds `portfolio_realized_pnl`, the
        portfolio's own latest figure from the positions table (it also values BNB fees),
        to check against. Columns: the key, realized_pnl, fees, fills, buy_qty, sell_qty,
        open_qty, unpriced_fees (Decimals; sorted by the key).
        """
        if by not in ("strategy", "symbol"):
            raise ValueError(f"pnl_by: by must be 'strategy' or 'symbol', got {by!r}")
        # Lazy: pandas is an optional extra (dev, ml, dashboard): only this path needs it.
        import pandas as pd

        fills = self._select("fills", _Where().time("ts", start, end), "ts, trade_id",
                             columns="strategy_id, symbol, side, qty, price, commission, commission_asset")
        books: dict[tuple[str, str], dict] = {}
        for strategy, symbol, side, qty, price, fee, fee_asset in fills.itertuples(index=False, name=None):
            key = (strategy if by == "strategy" else "", symbol)
            b = books.get(key)
            if b is None:
                b = books[key] = {"qty": ZERO, "cost": ZERO, "realized": ZERO, "fees": ZERO, "fills": 0,
                                  "buy": ZERO, "sell": ZERO, "unpriced": defaultdict(lambda: ZERO)}
            side = str(side).upper()
            book_fill(b, symbol, side, Decimal(qty), Decimal(price), Decimal(fee or 0), fee_asset or "")
            b["buy" if side == "BUY" else "sell"] += Decimal(qty)
            b["fills"] += 1
        out: dict[str, dict] = {}
        for (strategy, symbol), b in books.items():
            k = strategy if by == "strategy" else symbol
            o = out.setdefault(k, {"realized_pnl": ZERO, "fees": ZERO, "fills": 0, "buy_qty": ZERO,
                                   "sell_qty": ZERO, "open_qty": ZERO, "unpriced": defaultdict(lambda: ZERO)})
            o["realized_pnl"] += b["realized"]
            o["fees"] += b["fees"]
            o["fills"] += b["fills"]
            o["buy_qty"] += b["buy"]
            o["sell_qty"] += b["sell"]
            o["open_qty"] += b["qty"]
            for asset, v in b["unpriced"].items():
                o["unpriced"][asset] += v
        key = "strategy_id" if by == "strategy" else "symbol"
        rows = []
        for k in sorted(out):
            o = out[k]
            unpriced = " ".join(f"{v.normalize()} {a}" for a, v in sorted(o.pop("unpriced").items()))
            rows.append({key: k, **{n: (v.normalize() if isinstance(v, Decimal) else v) for n, v in o.items()},
                         "unpriced_fees": unpriced})
        df = pd.DataFrame(rows, columns=[key, "realized_pnl", "fees", "fills", "buy_qty", "sell_qty", "open_qty",
                                         "unpriced_fees"])
        if by == "symbol":
            book = {sym: realized for sym, (_, realized) in self.account_positions().items()}
            df["portfolio_realized_pnl"] = [book.get(s) for s in df["symbol"]]
        return df

    # -- market data ------------------------------------------------------------------------------
    def trades(self, symbol: str | None = None, start=None, end=None, limit: int = 1000):
        """Market trades, newest first (at most `limit`)."""
        w = _Where().eq("symbol", "symbol", symbol).time("ts", start, end)
        return self._select("trades", w, "ts DESC, trade_id DESC", limit)

    def bars(self, symbol: str, interval: str, start=None, end=None, limit: int | None = None):
        """Bars of one symbol and interval, oldest first (the newest `limit` when given)."""
        w = _Where().eq("symbol", "symbol", symbol).eq("interval", "interval", interval).time("ts", start, end)
        if limit is None:
            return self._select("bars", w, "ts")
        df = self._select("bars", w, "ts DESC", limit)
        return df.iloc[::-1].reset_index(drop=True)

    def ohlcv(self, symbol: str, start, end, bucket_s: int = 60):
        """OHLCV buckets of `bucket_s` seconds from the trades of one symbol (oldest first)."""
        w = _Where().eq("t.symbol", "symbol", symbol).time("t.ts", start, end)
        params = dict(w.params, bucket=int(bucket_s))
        return self.query(
            "SELECT toStartOfInterval(t.ts, toIntervalSecond({bucket:UInt32})) AS bucket, "
            "argMin(t.price, t.ts) AS open, max(t.price) AS high, min(t.price) AS low, argMax(t.price, t.ts) AS close, "
            f"sum(t.qty) AS volume, count() AS trades FROM {self._t('trades')} AS t{w.sql()} "
            "GROUP BY bucket ORDER BY bucket", params)

    # -- the node's decisions and orders ----------------------------------------------------------
    def fills(self, symbol: str | None = None, strategy: str | None = None, start=None, end=None,
              limit: int = 1000):
        """The bot's fills, newest first."""
        w = _Where().eq("symbol", "symbol", symbol).eq("strategy_id", "strategy", strategy).time("ts", start, end)
        return self._select("fills", w, "ts DESC, trade_id DESC", limit)

    def orders(self, symbol: str | None = None, status: str | None = None, strategy: str | None = None,
               start=None, end=None, limit: int = 1000):
        """The latest state of each order (by client_order_id, from order_events), newest first.

        `created` is the order's first event; `ts` its latest; `status` filters the latest state
        (e.g. "NEW", "PARTIALLY_FILLED" for the open ones); start/end filter on the latest event.
        """
        inner = _Where().eq("e.symbol", "symbol", symbol).eq("e.strategy_id", "strategy", strategy)
        outer = _Where().eq("status", "status", status).time("ts", start, end)
        cols = ["strategy_id", "symbol", "side", "order_type", "status", "previous", "quantity", "filled", "price",
                "order_id", "reason"]
        latest = ", ".join(f"argMax(e.{c}, (e.ts, e.filled, e.event_id)) AS {c}" for c in cols)
        sql = (f"SELECT * FROM (SELECT e.client_order_id AS client_order_id, min(e.ts) AS created, "
               f"max(e.ts) AS ts, {latest}, count() AS events FROM {self._t('order_events')} AS e{inner.sql()} "
               f"GROUP BY e.client_order_id){outer.sql()} ORDER BY ts DESC, client_order_id LIMIT {{limit:UInt64}}")
        return self.query(sql, {**inner.params, **outer.params, "limit": _limit(limit)})

    def order_events(self, client_order_id: str):
        """Every event of one order, oldest first."""
        return self._select("order_events", _Where().eq("client_order_id", "coid", client_order_id), "ts, filled")

    def signals(self, strategy: str | None = None, symbol: str | None = None, start=None, end=None,
                limit: int = 1000):
        w = _Where().eq("strategy_id", "strategy", strategy).eq("symbol", "symbol", symbol).time("ts", start, end)
        return self._select("signals", w, "ts DESC", limit)

    def risk_decisions(self, strategy: str | None = None, symbol: str | None = None, accepted: bool | None = None,
                       start=None, end=None, limit: int = 1000):
        """Risk decisions newest first; accepted=False gives the rejections (with `reason`)."""
        w = _Where().eq("strategy_id", "strategy", strategy).eq("symbol", "symbol", symbol) \
            .eq("accepted", "accepted", None if accepted is None else bool(accepted), "Bool").time("ts", start, end)
        return self._select("risk_decisions", w, "ts DESC", limit)

    # -- health -----------------------------------------------------------------------------------
    def alerts(self, level: str | None = None, source: str | None = None, start=None, end=None, limit: int = 200):
        """Alerts newest first."""
        w = _Where().eq("level", "level", level).eq("source", "source", source).time("ts", start, end)
        return self._select("alerts", w, "ts DESC", limit)

    def trading_state_history(self, limit: int = 100):
        return self._select("trading_state", _Where(), "ts DESC", limit)

    def latest_trading_state(self) -> dict | None:
        """The last trading-state change {ts, state, previous, reason, source, event_id}, or None."""
        df = self._select("trading_state", _Where(), "ts DESC", 1)
        if not len(df):
            return None
        return {k: (v.item() if type(v).__module__ == "numpy" else v) for k, v in df.iloc[0].to_dict().items()}

    def health_stats(self, since=None):
        """Per stream: the latest health record (messages, rate_per_s, lag_ms_mean, reconnects, resyncs),
        the worst lag over the window (`lag_ms_max`), `records` and `last_ts` / `age_s` (seconds since it)."""
        w = _Where().time("h.ts", since, None)
        return self.query(
            "SELECT h.stream AS stream, max(h.ts) AS last_ts, argMax(h.messages, h.ts) AS messages, "
            "argMax(h.rate_per_s, h.ts) AS rate_per_s, argMax(h.lag_ms_mean, h.ts) AS lag_ms_mean, "
            "max(h.lag_ms_max) AS lag_ms_max, argMax(h.reconnects, h.ts) AS reconnects, "
            "argMax(h.resyncs, h.ts) AS resyncs, count() AS records, "
            "dateDiff('millisecond', max(h.ts), now64(3, 'UTC')) / 1000 AS age_s "
            f"FROM {self._t('health')} AS h{w.sql()} GROUP BY h.stream ORDER BY stream", w.params)

    def counts(self) -> dict[str, int]:
        """{table: rows} for every table of the schema (exact count())."""
        sql = " UNION ALL ".join(f"SELECT '{t.name}' AS t, count() AS n FROM {self._t(t.name)}" for t in schema.TABLES)
        rows = self.client.query(sql).result_rows
        found = {t: int(n) for t, n in rows}
        return {t.name: found.get(t.name, 0) for t in schema.TABLES}

    # -- operator commands ------------------------------------------------------------------------
    def commands(self, limit: int = 100):
        return self._select("commands", _Where(), "ts DESC", limit)

    def pending_commands(self, since=None):
        """Operator commands the node has not acted on yet, oldest first.

        Acted on = a trading_state row names the command's `command_id` in its `reason` (the
        node's CommandPoller writes "... (by <author>, command <id>)") or its `source`. A command
        that changed nothing (resume while already ACTIVE) leaves no trading_state row and stays
        listed: pass `since` (e.g. the last few minutes) to ignore older ones.
        """
        w = _Where().time("c.ts", since, None)
        extra = (" AND " + " AND ".join(w.clauses)) if w.clauses else ""
        return self.query(
            f"WITH (SELECT groupArray(concat(source, ' ', reason)) FROM {self._t('trading_state')}) AS acks "
            f"SELECT c.* FROM {self._t('commands')} AS c "
            f"WHERE NOT arrayExists(a -> position(a, c.command_id) > 0, acks){extra} "
            "ORDER BY c.ts, c.command_id", w.params)

    # -- model registry (abidance/ml/registry.py writes these tables) ------------------------------
    def models(self, name: str | None = None, status: str | None = None):
        """The current state of every model version (the newest row per name and version), in name and
        version order: name, version, status, artifact_path, artifact_sha256, feature_set, train_start,
        train_end, params, in_sample, out_of_sample (JSON strings), created_at, ts (of this state),
        reason, author. The drift reference (large) is left out."""
        inner = _Where().eq("m.name", "name", name)
        outer = _Where().eq("status", "status", status)
        cols = ("status", "artifact_path", "artifact_sha256", "feature_set", "train_start", "train_end", "params",
                "in_sample", "out_of_sample", "created_at", "reason", "author")
        latest = ", ".join(f"argMax(m.{c}, m.ts) AS {c}" for c in cols)
        return self.query(
            f"SELECT * FROM (SELECT m.name AS name, m.version AS version, {latest}, max(m.ts) AS ts "
            f"FROM {self._t('models')} AS m{inner.sql()} GROUP BY m.name, m.version){outer.sql()} "
            "ORDER BY name, version", {**inner.params, **outer.params})

    def model_events(self, name: str | None = None, version: int | None = None, limit: int = 200):
        """Registry events (registered, promoted, demoted, retired, retrain_*...), newest first."""
        w = _Where().eq("name", "name", name).eq("version", "version", version, "UInt32")
        return self._select("model_events", w, "ts DESC, event_id DESC", limit)

    def shadow_signals(self, model: str | None = None, version: int | None = None, symbol: str | None = None,
                       start=None, end=None, limit: int = 200):
        """What models in shadow would have signalled (never traded), newest first."""
        w = _Where().eq("model", "model", model).eq("version", "version", version, "UInt32") \
            .eq("symbol", "symbol", symbol).time("ts", start, end)
        return self._select("shadow_signals", w, "ts DESC, event_id DESC", limit)
