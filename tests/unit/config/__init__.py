"""Tests of abidance.config; `errors_of` returns the errors a config text produces."""

from __future__ import annotations

from pathlib import Path

import pytest

from abidance.config import ConfigError, parse_config

STRATEGY = '[[strategies]]\nid = "a"\nclass = "ema_cross"\nsymbols = ["BTCUSDT"]\n'


def errors_of(text: str, env: dict[str, str] | None = None, base_dir: str | Path = ".") -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, base_dir, env or {})
    return info.value.errors
