"""`abidance download`: Binance public market data (klines, aggregate trades) by day, resumable."""
