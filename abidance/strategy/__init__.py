"""Strategies: small classes that turn market data into signals with a confidence."""

from abidance.strategy.base import Param, Strategy

__all__ = ["Param", "Strategy"]
