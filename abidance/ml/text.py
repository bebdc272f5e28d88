"""How the ML commands print times and figures ("-" where a figure is missing)."""

from __future__ import annotations


def utc(ns: int) -> str:
    """A nanosecond timestamp as 'YYYY-MM-DD HH:MM' (UTC)."""
    # Lazy: pandas is an optional extra (dev, ml, dashboard): only this path needs it.
    import pandas as pd

    return pd.Timestamp(int(ns), tz="UTC").strftime("%Y-%m-%d %H:%M")


def pct(v) -> str:
    """A return, signed: +1.23%."""
    return "-" if v is None else f"{v:+.2%}"


def drawdown(v) -> str:
    """A drawdown (a positive share): 1.23%."""
    return "-" if v is None else f"{v:.2%}"


def number(v, places: int = 4) -> str:
    return "-" if v is None else f"{v:.{places}f}"
