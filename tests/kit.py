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


class ServedStore:
    """`abidance store` in its own process (chdb allows one data directory per process at a time):
    `url` for the node, the CLI and `client()`; a context manager that stops it."""

    def __init__(self, data_dir: Path):
        import subprocess
        import sys

        self.proc = subprocess.Popen([sys.executable, "-m", "abidance.cli", "store", "--data-dir", str(data_dir),
                                      "--port", "0"], stdout=subprocess.PIPE, text=True,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.url = self.proc.stdout.readline().split("ready: ")[1].split()[0]

    def client(self, database: str = "default"):
        from abidance.store.client import connect

        return connect(self.url, database)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        import signal

        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(15)
