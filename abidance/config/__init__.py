"""The node's configuration: one TOML file, a declarative schema, environment overrides, no secrets.

    cfg = load_config("config/sim.toml")      # raises ConfigError listing every problem
    cfg.risk.limits()                         # RiskLimits in quote units
    print(to_toml(cfg))                       # the effective config

The reference of every key is docs/config.md (`schema_markdown()`).
"""

from abidance.config.loader import ConfigError, load_config, parse_config
from abidance.config.render import as_dict, schema_markdown, to_toml
from abidance.config.sections import (BINANCE_DESCRIPTIONS, DataSection, ExecutionSection, NodeConfig, NodeSection,
                                      RiskSection, StrategyConfig)

__all__ = [
    "BINANCE_DESCRIPTIONS", "ConfigError", "DataSection", "ExecutionSection", "NodeConfig", "NodeSection",
    "RiskSection", "StrategyConfig", "as_dict", "load_config", "parse_config", "schema_markdown", "to_toml",
]
