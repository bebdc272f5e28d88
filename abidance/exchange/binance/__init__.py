"""Binance Spot connector: market streams, REST, user data, local order books."""
