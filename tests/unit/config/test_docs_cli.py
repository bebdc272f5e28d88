"""The generated reference, the [binance] descriptions, and `abidance config`."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from abidance.config import BINANCE_DESCRIPTIONS, load_config, parse_config, schema_markdown
from abidance.config import cli
from abidance.config.render import REGENERATE
from abidance.config.sections import SECTIONS, STRATEGY
from abidance.exchange.binance.config import BinanceConfig

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = str(ROOT / "config" / "sim.toml")


def test_docs_config_md_is_up_to_date():
    docs = ROOT / "docs" / "config.md"
    assert docs.read_text() == schema_markdown(), f"docs/config.md is stale: run `{REGENERATE}`"


def test_every_binance_field_has_a_description_and_every_key_is_documented():
    assert set(BINANCE_DESCRIPTIONS) == {f.name for f in dataclasses.fields(BinanceConfig)}
    docs = schema_markdown()
    for section in (*SECTIONS.values(), STRATEGY):
        for name, spec in section.keys.items():
            assert spec.doc.strip() and f"| `{name}` |" in docs, f"{section.name}.{name}"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser()
    cli.add_parser(parser.add_subparsers())
    args = parser.parse_args(["config", *argv])
    code = cli.main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_check_example_prints_ok_and_summary(capsys, monkeypatch):
    monkeypatch.delenv("ABIDANCE__RISK__MAX_OPEN_ORDERS", raising=False)
    code, out, _ = run(capsys, "check", EXAMPLE)
    assert code == 0 and out.startswith("ok\n") and "btc-ema: ema_cross on BTCUSDT 1m" in out


def test_cli_check_bad_file_prints_every_error_and_exits_2(capsys, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[node]\nmode = "x"\n[risk]\nmax_open_orders = -1\n')
    code, out, err = run(capsys, "check", str(bad))
    assert code == 2 and out == "" and "2 errors" in err
    assert "node.mode must be one of" in err and "risk.max_open_orders must be within [0, 1000000]" in err


def test_cli_show_prints_effective_toml_after_env_overrides(capsys, monkeypatch):
    monkeypatch.setenv("ABIDANCE__RISK__MAX_OPEN_ORDERS", "4")
    code, out, _ = run(capsys, "show", EXAMPLE)
    assert code == 0 and "max_open_orders = 4" in out
    assert parse_config(out, ".", env={}) == load_config(EXAMPLE)


def test_cli_docs_prints_the_reference(capsys):
    code, out, _ = run(capsys, "docs")
    assert code == 0 and out == schema_markdown()
