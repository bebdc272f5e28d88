"""Every bus topic and endpoint name, in one place.

Topics carry events (many subscribers); endpoints take commands (one handler).
Per-symbol topics are built with `for_symbol` so subscribers can pick one market.
"""

# Market data (published by the connector or a recording, consumed by the data engine).
TRADES = "data.trades"
AGG_TRADES = "data.agg_trades"
DEPTH_DIFFS = "data.depth_diffs"     # DepthDiffEvent
BOOK_SNAPSHOTS = "data.book_snapshots"   # BookSnapshot: a full book to (re)start a local book from
DEPTH_GAPS = "data.depth_gaps"       # DepthGap: diffs may have been missed (a reconnect): resync the book
BOOK_TICKERS = "data.book_tickers"
KLINES = "data.klines"

# The data engine's view of the market.
BOOKS = "data.books"                 # a consistent book changed: BookView (read-only)
BOOK_STATUS = "data.book_status"     # a book became ready / not ready: BookStatusChanged
BOOK_REQUESTS = "data.book_requests"     # BookRequest: a book needs a snapshot (the live connector fetches one)
DEPTH_SNAPSHOTS = "data.depth_snapshots"   # DepthSnapshot: top levels of each ready book, periodically
PARTIAL_DEPTH = "data.partial_depth"       # DepthSnapshot: Binance's partial-depth streams (<s>@depth5/10/20)

# Account and orders (published by the connector, consumed by execution and portfolio).
ORDER_UPDATES = "exec.order_updates"
ORDER_LIST_UPDATES = "exec.order_list_updates"   # OrderListUpdate (listStatus)
BALANCES = "account.balances"
RECONCILIATION = "account.reconciliation"

# The node.
BARS = "data.bars"                    # Bar (closed)
BARS_SKIPPED = "data.bars_skipped"    # Bar: the last of a run a backtest fast-forwarded over (marks, freshness)
SIGNALS = "strategy.signals"          # Signal
RISK_DECISIONS = "risk.decisions"     # RiskDecision
TRADING_STATE = "risk.trading_state"  # TradingStateChanged
ORDER_EVENTS = "exec.order_events"    # OrderEvent (the node's state machine)
FILLS = "exec.fills"                  # Fill
POSITIONS = "portfolio.positions"     # PositionUpdate
EQUITY = "portfolio.equity"           # EquityPoint
COMPONENTS = "node.components"        # ComponentStateChanged

# Endpoints (commands, one handler each).
EXECUTE = "ExecutionEngine.execute"   # OrderRequest
CANCEL = "ExecutionEngine.cancel"     # client_order_id
VENUE_ANSWERS = "ExecutionEngine.answer"   # VenueAnswer: a venue's late answer to a new order
KILL = "RiskEngine.kill"              # reason text: cancel everything and halt
HALT = "RiskEngine.halt"              # reason text: halt (no new orders; open orders and exits stay)
RISK_COMMAND = "RiskEngine.command"   # TradingCommand: reduce | halt | resume (anomaly detectors, chat fallback)

# Re-pricing after a limit timeout: the cancelled Order, re-checked by the risk engine.
REPLACE = "exec.replace"

# Health and alerts.
CONNECTOR_HEALTH = "health.connector"
ALERTS = "health.alerts"
SHADOW_SIGNALS = "ml.shadow_signals"      # ShadowSignal: what a model in shadow would have signalled


def for_symbol(topic: str, symbol: str) -> str:
    return f"{topic}.{symbol}"
