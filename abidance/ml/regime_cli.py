"""Command line of the regime walk-forward (abidance.ml.regime_eval): regime switching vs the
static mix vs buy-and-hold, out of sample, printed as a table and a verdict.

    python -m abidance.ml.regime_cli --candles ETHBTC=../shared/data/market/ETH_BTC-5m.feather \
        --interval 5m --train 2000 --test 1000
"""

from __future__ import annotations

import argparse
from decimal import Decimal, InvalidOperation

from abidance.backtest.data import load_candle_args
from abidance.backtest.engine import sim_instruments
from abidance.backtest.research_config import research_config
from abidance.ml.regime_eval import walk_forward_regimes

PROG = "python -m abidance.ml.regime_cli"


def fee_bps(text: str) -> Decimal:
    """--fee-bps: a decimal number of basis points in [0, 10000] (argparse names the flag)."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite() or not 0 <= value <= 10_000:
        raise argparse.ArgumentTypeError(f"must be a number of basis points in [0, 10000], got {text!r}")
    return value


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog=PROG, description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--candles", nargs="+", required=True, help="SYMBOL=FILE (feather, parquet or csv)")
    ap.add_argument("--interval", default="5m")
    ap.add_argument("--train", type=int, required=True, help="train window, bars")
    ap.add_argument("--test", type=int, required=True, help="test window, bars")
    ap.add_argument("--anchored", action="store_true")
    ap.add_argument("--regimes", default="0:rsi_reversion,1:ema_cross,2:")
    ap.add_argument("--hosted-params", default="")
    ap.add_argument("--exit-on-disable", action="store_true")
    ap.add_argument("--n-regimes", type=int, default=3)
    ap.add_argument("--method", default="kmeans", choices=("kmeans", "gmm"))
    ap.add_argument("--quote", default="BTC")
    ap.add_argument("--fraction", type=float, default=0.95, help="share of equity per entry (fixed_fraction)")
    ap.add_argument("--fee-bps", type=fee_bps, default=Decimal(10), help="taker and maker fee, basis points")
    return ap


def main(argv=None) -> int:
    ap = parser()
    args = ap.parse_args(argv)
    instruments = sim_instruments()
    try:
        bars = load_candle_args(args.candles, args.interval, instruments)
        ev = walk_forward_regimes(bars, train_bars=args.train, test_bars=args.test, anchored=args.anchored,
                                  regimes=args.regimes, hosted_params=args.hosted_params,
                                  exit_on_disable=args.exit_on_disable, n_regimes=args.n_regimes,
                                  method=args.method, config=research_config(args.quote, args.fraction),
                                  fee_bps=args.fee_bps, instruments=instruments)
    except ValueError as exc:
        ap.error(str(exc))
    print(ev.table())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
