"""Backtests on the live engine: the node's own engines under a simulated clock and venue."""
