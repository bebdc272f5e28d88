"""Optional dependencies by extra: a command that needs one says which, and how to install it.

`pip install abidance` is the trading node alone (numpy, orjson, uvloop, picows, aiohttp).
Everything else comes in extras named in pyproject.toml; `require("backtest", "backtest")`
at the top of a command turns a missing module into one line naming the extra to install,
instead of an ImportError traceback from deep inside the command.
"""

from __future__ import annotations

import importlib.util

# extra -> the modules it provides (import names), as pyproject.toml's optional-dependencies.
EXTRAS: dict[str, tuple[str, ...]] = {
    "store": ("chdb", "clickhouse_connect", "pyarrow"),
    "dashboard": ("streamlit", "plotly", "pandas", "pyarrow"),
    "backtest": ("pandas", "pyarrow", "plotly"),
    "optimize": ("optuna", "pandas", "pyarrow", "plotly"),
    "ml": ("sklearn", "torch", "gymnasium", "stable_baselines3", "joblib", "pandas", "pyarrow", "tqdm"),
    "ed25519": ("cryptography",),
    "ops": ("prometheus_client", "apprise"),
    "grid": ("distributed",),
}


class MissingExtra(Exception):
    """A command needs an extra that is not installed; the message says how to install it."""


def _absent(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is None
    except (ValueError, ImportError):      # blocked (sys.modules[name] is None) or a broken parent package
        return True


def missing(extra: str) -> list[str]:
    """The modules of `extra` that cannot be imported here."""
    return [m for m in EXTRAS[extra] if _absent(m)]


def require(command: str, *extras: str) -> None:
    """Raise MissingExtra naming every extra `command` needs that is not (fully) installed."""
    absent = {extra: gone for extra in extras if (gone := missing(extra))}
    if absent:
        names = ",".join(absent)
        modules = ", ".join(m for gone in absent.values() for m in gone)
        raise MissingExtra(f"abidance {command} needs the {names} extra{'s' if len(absent) > 1 else ''} "
                           f"(missing: {modules}); install it with: pip install 'abidance[{names}]'")


def installed() -> dict[str, bool]:
    """Every extra and whether all its modules are importable (for `abidance doctor`)."""
    return {extra: not missing(extra) for extra in EXTRAS}
