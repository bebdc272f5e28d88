"""The simulator's configuration: a `[sim]` table in TOML, validated with errors naming the key.

The simulated account's API key and secret are not real secrets (they only open this
simulator) but are still read from the environment, never the file:
ABIDANCE_SIM_API_KEY / ABIDANCE_SIM_API_SECRET, with documented demo defaults.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

from abidance.exchange.sim.faults import FaultSettings
from abidance.exchange.sim.limits import RateLimitConfig

ENV_SIM_KEY = "ABIDANCE_SIM_API_KEY"
ENV_SIM_SECRET = "ABIDANCE_SIM_API_SECRET"
DEMO_API_KEY = "abidance-sim-demo-key"
DEMO_API_SECRET = "abidance-sim-demo-secret"
SOURCES = ("synthetic", "candles", "trades")


class ConfigError(ValueError):
    """A config value is wrong; the message names the key and what would be right."""


@dataclass
class MarketConfig:
    symbol: str
    source: str = "synthetic"
    file: str | None = None
    start_price: Decimal | None = None


@dataclass
class SimConfig:
    host: str = "127.0.0.1"
    rest_port: int = 0                 # 0 picks a free port (logged at start)
    ws_port: int = 0
    speed: float = 1.0                 # market clock speed: 60 = one simulated minute per second
    seed: int = 7
    step_ms: int = 100                 # how often the market moves
    markets: list[MarketConfig] = field(default_factory=lambda: [
        MarketConfig("BTCUSDT"), MarketConfig("ETHUSDT"), MarketConfig("BNBUSDT")])
    balances: dict[str, Decimal] = field(default_factory=lambda: {
        "USDT": Decimal("10000"), "BTC": Decimal("0.1"), "ETH": Decimal("1"), "BNB": Decimal("10")})
    faults: FaultSettings = field(default_factory=FaultSettings)
    limits: RateLimitConfig = field(default_factory=RateLimitConfig)
    api_key: str = DEMO_API_KEY
    api_secret: str = DEMO_API_SECRET


def _typed(table: dict, key: str, kind, where: str, default):
    if key not in table:
        return default
    value = table[key]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise ConfigError(f"{where}.{key} must be {kind.__name__}, got {value!r}")
    return value


def _decimal(value, where: str) -> Decimal:
    try:
        d = Decimal(str(value))
    except InvalidOperation:
        raise ConfigError(f"{where} must be a decimal number, got {value!r}") from None
    if not d.is_finite() or d < 0:
        raise ConfigError(f"{where} must be a finite, non-negative decimal, got {value!r}")
    return d


def parse_config(data: dict) -> SimConfig:
    sim = data.get("sim", {})
    if not isinstance(sim, dict):
        raise ConfigError("[sim] must be a table")
    known = {"host", "rest_port", "ws_port", "speed", "seed", "step_ms", "markets", "balances", "faults", "limits"}
    for key in sim:
        if key not in known:
            raise ConfigError(f"sim.{key} is not a known setting (known: {', '.join(sorted(known))})")
    cfg = SimConfig()
    cfg.host = _typed(sim, "host", str, "sim", cfg.host)
    for key in ("rest_port", "ws_port"):
        port = _typed(sim, key, int, "sim", 0)
        if not 0 <= port <= 65535:
            raise ConfigError(f"sim.{key} must be within 0..65535, got {port}")
        setattr(cfg, key, port)
    cfg.speed = _typed(sim, "speed", float, "sim", cfg.speed)
    if not 0 < cfg.speed <= 10_000:
        raise ConfigError(f"sim.speed must be within (0, 10000], got {cfg.speed}")
    cfg.seed = _typed(sim, "seed", int, "sim", cfg.seed)
    if not 0 <= cfg.seed < 2**63:
        raise ConfigError(f"sim.seed must be within 0..2**63-1, got {cfg.seed}")
    cfg.step_ms = _typed(sim, "step_ms", int, "sim", cfg.step_ms)
    if not 10 <= cfg.step_ms <= 60_000:
        raise ConfigError(f"sim.step_ms must be within 10..60000, got {cfg.step_ms}")
    if "markets" in sim:
        markets = sim["markets"]
        if not isinstance(markets, list) or not markets:
            raise ConfigError("sim.markets must be a non-empty array of tables")
        cfg.markets = [_market(m, f"sim.markets[{i}]") for i, m in enumerate(markets)]
    if "balances" in sim:
        if not isinstance(sim["balances"], dict):
            raise ConfigError("sim.balances must be a table of asset = amount")
        cfg.balances = {a.upper(): _decimal(v, f"sim.balances.{a}") for a, v in sim["balances"].items()}
    if "faults" in sim:
        try:
            cfg.faults = FaultSettings(**sim["faults"])
            cfg.faults.validate()
        except TypeError as exc:
            raise ConfigError(f"sim.faults: {exc}") from None
        except ValueError as exc:
            raise ConfigError(f"sim.{exc}") from None
    if "limits" in sim:
        try:
            cfg.limits = RateLimitConfig(**sim["limits"])
            cfg.limits.validate()
        except TypeError as exc:
            raise ConfigError(f"sim.limits: {exc}") from None
        except ValueError as exc:
            raise ConfigError(f"sim.{exc}") from None
    cfg.api_key = os.environ.get(ENV_SIM_KEY, DEMO_API_KEY)
    cfg.api_secret = os.environ.get(ENV_SIM_SECRET, DEMO_API_SECRET)
    return cfg


def _market(table, where: str) -> MarketConfig:
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table")
    symbol = _typed(table, "symbol", str, where, None)
    if not symbol:
        raise ConfigError(f"{where}.symbol is required (e.g. \"BTCUSDT\")")
    source = _typed(table, "source", str, where, "synthetic")
    if source not in SOURCES:
        raise ConfigError(f"{where}.source must be one of {', '.join(SOURCES)}, got {source!r}")
    path = _typed(table, "file", str, where, None)
    if source != "synthetic":
        if not path:
            raise ConfigError(f"{where}.file is required for source = {source!r}")
        if not Path(path).exists():
            raise ConfigError(f"{where}.file {path!r} does not exist")
    start = _decimal(table["start_price"], f"{where}.start_price") if "start_price" in table else None
    return MarketConfig(symbol.upper(), source, path, start)


def load_config(path: str | Path | None) -> SimConfig:
    if path is None:
        return parse_config({})
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path}: {exc}") from None
    return parse_config(data)
