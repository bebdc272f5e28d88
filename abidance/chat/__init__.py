"""Chat control of the node over Telegram (docs/alerts.md)."""
