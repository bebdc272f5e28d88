"""Performance metrics and reports shared by the dashboard and the backtester."""
