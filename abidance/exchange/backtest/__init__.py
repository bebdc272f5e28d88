"""The backtest venue: an in-process, Binance-compatible venue for backtests and the paper node."""
