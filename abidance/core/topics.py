"""Every bus topic and endpoint name, in one place.

Topics carry events (many subscribers); endpoints take commands (one handler).
Per-symbol topics are built with `for_symbol` so subscribers can pick one market.
"""

# Market data (published by the connector, consumed by the data engine).
TRADES = "data.trades"
AGG_TRADES = "data.agg_trades"
DEPTH_DIFFS = "data.depth_diffs"
BOOK_TICKERS = "data.book_tickers"
KLINES = "data.klines"
BOOKS = "data.books"                 # a book changed (ready or not): BookUpdate
BOOK_STATUS = "data.book_status"     # a book became ready / not ready: BookStatusChanged

# Account and orders (published by the connector, consumed by execution and portfolio).
ORDER_UPDATES = "exec.order_updates"
BALANCES = "account.balances"
RECONCILIATION = "account.reconciliation"

# Health and alerts.
CONNECTOR_HEALTH = "health.connector"
ALERTS = "health.alerts"


def for_symbol(topic: str, symbol: str) -> str:
    return f"{topic}.{symbol}"
