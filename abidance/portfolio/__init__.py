"""Positions, balances, fees, realised/unrealised PnL and equity, in exact decimals."""

from abidance.portfolio.portfolio import Portfolio

__all__ = ["Portfolio"]
