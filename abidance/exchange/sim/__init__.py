"""A local Binance-Spot-compatible exchange: `abidance sim` (see docs/simulator.md)."""
