"""Fixtures of the simulator's unit tests (the helpers themselves are in kit.py)."""

import pytest

from tests.unit.sim.kit import Env


@pytest.fixture
def env():
    """A fresh exchange with alice and bob funded."""
    return Env()


@pytest.fixture
def last_trade(env):
    """BTCUSDT has last traded at 30,000 (what stops and OCO prices are judged against)."""
    env.last_at("30000.00")
