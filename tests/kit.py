"""Shared test kit: where the real Binance data lives and how to load it.

The data sits beside the project in ../shared/data on developer machines and in CI.
A user's own checkout may not have it: tests that need it skip and say why.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("ABIDANCE_SHARED_DATA", PROJECT_ROOT.parent / "shared" / "data"))


def shared_data(*parts: str) -> Path:
    """Path under ../shared/data, skipping the calling test when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real Binance data not found at {path} (set ABIDANCE_SHARED_DATA to its folder)")
    return path


def load_candles(name: str = "UNITTEST_BTC-1m"):
    """Real Binance candles from ../shared/data/market as a pandas DataFrame."""
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    return pd.read_feather(shared_data("market", f"{name}.feather"))


CANDLE_SETS = [
    "UNITTEST_BTC-1m",
    "UNITTEST_BTC-30m",
    "XRP_ETH-1m",
    "ETH_BTC-5m",
    "LTC_BTC-5m",
    "ADA_BTC-5m",
    "DASH_BTC-5m",
    "XMR_BTC-5m",
    "TRX_BTC-5m",
]
