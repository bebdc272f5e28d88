"""The regime walk-forward's command line: a table and a verdict, and bad flags named."""

from __future__ import annotations

from decimal import Decimal

import pytest

from abidance.ml.regime_cli import fee_bps, main
from tests.kit import shared_data


def candles(name: str) -> str:
    return str(shared_data("market", f"{name}.feather"))


def test_prints_every_variant_and_the_verdict(capsys):
    assert main(["--candles", f"ETHBTC={candles('ETH_BTC-5m')}", "--train", "2000", "--test", "1500",
                 "--fee-bps", "7.5", "--fraction", "0.5"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ("regime", "static", "buy_and_hold"))
    assert "Regime switching" in out and "Only 2 window(s)" in out


@pytest.mark.parametrize("value", ["abc", "-1", "nan", "1e999999", "10001"])
def test_a_bad_fee_is_refused_naming_the_flag(capsys, value):
    with pytest.raises(SystemExit) as stop:
        main(["--candles", f"ETHBTC={candles('ETH_BTC-5m')}", "--train", "2000", "--test", "1000",
              "--fee-bps", value])
    assert stop.value.code == 2
    assert f"argument --fee-bps: must be a number of basis points in [0, 10000], got '{value}'" \
        in capsys.readouterr().err


def test_fee_bps_keeps_the_decimal_exact():
    assert fee_bps("7.5") == Decimal("7.5") and fee_bps("0") == 0


def test_a_mapping_naming_a_regime_the_model_lacks_is_an_error_not_a_result(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--candles", f"ETHBTC={candles('ETH_BTC-5m')}", "--train", "2000", "--test", "1000",
              "--n-regimes", "2"])
    assert stop.value.code == 2
    assert "regimes: regime 2 is not a regime of the model (it has 2: 0-1)" in capsys.readouterr().err
