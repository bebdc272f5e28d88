"""Abidance: an automated trading bot for Binance Spot."""

__version__ = "0.1.0"
