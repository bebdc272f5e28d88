"""`abidance train`: train a model, judge it out of sample, register it, report it.

    abidance train signal --candles ETHBTC=ETH_BTC-5m.feather --report eth.html
    abidance train signal --store http://127.0.0.1:8123 --symbol ETHBTC --name eth-lr   # bars from the store
    abidance train signal --retrain eth-lr --store http://127.0.0.1:8123               # the systemd timer
    abidance train regime --candles ETHBTC=... LTCBTC=... --train 1500 --test 500
    abidance train rl --candles ETHBTC=... --timesteps 200000 --out models/eth-ppo

signal: scikit-learn model on the node's features (abidance.ml.signal_training): purged CV,
then judged on a held-out tail of the bars (never trained on) by its classification metrics and
by a backtest of the ml_signal strategy beside buy-and-hold and ema_cross. With --store the
model is registered as a candidate with all of it. --retrain NAME instead runs
abidance.ml.retrain.retrain: a challenger against the live champion, promoted only if better.
regime: walk-forward of regime switching vs the static mix (abidance.ml.regime_eval).
rl: PPO on the vectorised environment, judged on a held-out tail on the engine (abidance.ml.rl).

Progress bars go to stderr when it is a terminal. Exit codes: 0 done (a retrain that promoted
nothing is done too), 1 the run failed, 2 bad input.
"""

from __future__ import annotations

import getpass
import os
import sys
import time
from dataclasses import replace
from decimal import Decimal, InvalidOperation
from pathlib import Path

from abidance.backtest.data import bars_from_frame, load_candle_args
from abidance.backtest.engine import sim_instruments
from abidance.backtest.research_config import research_config
from abidance.config import ConfigError, load_config
from abidance.config.sections import MlSection
from abidance.data.bars import parse_interval
from abidance.ml.labels import ForwardReturn, TripleBarrier
from abidance.ml.models import KINDS
from abidance.ml.regime_eval import VARIANTS, walk_forward_regimes
from abidance.ml.rl.settings import EnvSettings
from abidance.ml.text import drawdown, number, pct, utc
from abidance.store.client import redact
from abidance.extras import require
from abidance.store.reader import StoreReader

PROG = "abidance train"


class InputError(ValueError):
    """Bad input: exit code 2, the message names what was wrong."""


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train a model (signal, regime, rl), judge it out of sample, register it",
                       description=__doc__.split("\n\n")[0])
    kinds = p.add_subparsers(dest="kind_of_model", required=True, metavar="KIND")
    _signal_parser(kinds.add_parser(
        "signal", help="a scikit-learn signal model (or --retrain a registered one)",
        description="Train a scikit-learn signal model on the node's features; purged CV; judged on a held-out "
                    "tail by its metrics and a backtest (ml_signal vs buy-and-hold vs ema_cross); registered as a "
                    "candidate with --store. --retrain NAME runs a retraining against the live champion instead."))
    _regime_parser(kinds.add_parser("regime", help="a regime model: walk-forward vs the static mix",
                                    description="Regime switching vs the static mix vs buy-and-hold, walk-forward "
                                                "(a model fitted per train window, judged on the next test window)."))
    _rl_parser(kinds.add_parser("rl", help="a PPO agent, judged on a held-out tail on the engine",
                                description="PPO (stable-baselines3) on the vectorised environment; evaluated on the "
                                            "held-out tail on the backtest engine beside buy-and-hold and ema_cross."))
    p.set_defaults(func=main)


def _data_args(p, many: bool = False) -> None:
    p.add_argument("--candles", nargs="+" if many else None, action="extend" if many else "append",
                   metavar="SYMBOL=FILE", help="recorded candles (feather/parquet/csv with date, open, high, low, "
                   "close, volume)" + ("; several symbols allowed" if many else ""))
    p.add_argument("--interval", default=None, help="the bars' interval (default 5m; --retrain: the model's)")
    p.add_argument("--last", type=int, default=None, metavar="N", help="use only the newest N bars")


def _report_arg(p) -> None:
    p.add_argument("--report", metavar="FILE.html", help="write the charts and metrics here (plotly, opens offline)")


def _signal_parser(p) -> None:
    _data_args(p)
    p.add_argument("--store", metavar="URL", help="the store: registers the model as a candidate; without "
                   "--candles the bars come from it (--symbol, --interval)")
    p.add_argument("--database", default=None, help="the store's database (default $ABIDANCE_STORE_DATABASE, "
                   "else the config's, else abidance)")
    p.add_argument("--symbol", help="the symbol of the store's bars (default: --candles' symbol; with --retrain, "
                   "the one the model was trained on)")
    p.add_argument("--config", default=None, help="node config: its [ml] section (min_confidence, promotion "
                   "criteria, drift_window); default $ABIDANCE_CONFIG, else the defaults")
    p.add_argument("--name", help="registry name of the model (default SYMBOL-KIND, e.g. ethbtc-logistic)")
    p.add_argument("--kind", choices=("logistic", "hgb", "gb"), default=None,
                   help="logistic regression or gradient boosting (default logistic; --retrain: the champion's)")
    p.add_argument("--label", choices=("forward", "triple"), default=None,
                   help="forward return over --horizon (default) or triple barrier")
    p.add_argument("--horizon", type=int, default=None, help="label horizon in bars (default 12)")
    p.add_argument("--threshold", type=float, default=None, help="forward return that counts as up (default 0)")
    p.add_argument("--take-profit", type=float, default=None, help="triple barrier: take profit (default 0.005)")
    p.add_argument("--stop-loss", type=float, default=None, help="triple barrier: stop loss (default 0.005)")
    p.add_argument("--holdout", type=float, default=None,
                   help="share of the bars held out at the end (default 0.25; --retrain: 0.2)")
    p.add_argument("--folds", type=int, default=5, help="purged cross-validation folds (default 5)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--min-confidence", type=float, default=None,
                   help="act at p >= this (default the config's ml.min_confidence, 0.55)")
    p.add_argument("--exit-after", type=int, default=None, metavar="BARS",
                   help="in the backtest, sell after this many bars (default the label horizon; 0: only on p)")
    p.add_argument("--fee-bps", default="10", help="backtest taker and maker fee in bps (default 10)")
    p.add_argument("--slippage-bps", default="0", help="backtest market-order slippage in bps (default 0)")
    p.add_argument("--fraction", type=float, default=0.95, help="share of equity per entry (default 0.95)")
    p.add_argument("--cash", default="1", help="starting cash in the quote asset (default 1)")
    p.add_argument("--curve-points", type=int, default=4, help="learning-curve points (default 4; 0: none)")
    p.add_argument("--model-dir", default="models", help="where model files go (default ./models)")
    p.add_argument("--out", help="the model file (default MODEL_DIR/NAME[-vVERSION].joblib)")
    p.add_argument("--author", default=None, help="recorded in the registry (default the login name)")
    p.add_argument("--retrain", metavar="NAME", help="retrain the registered model NAME: a challenger trained on "
                   "the bars, compared with the live champion on the held-out tail, promoted only if better")
    p.add_argument("--promote-to", choices=("shadow", "live"), default="shadow",
                   help="--retrain: how far a better challenger is promoted (default shadow)")
    _report_arg(p)


def _regime_parser(p) -> None:
    _data_args(p, many=True)
    p.add_argument("--train", type=int, required=True, help="train window, bars")
    p.add_argument("--test", type=int, required=True, help="test window, bars")
    p.add_argument("--anchored", action="store_true", help="train windows all start at the first bar")
    p.add_argument("--regimes", default="0:rsi_reversion,1:ema_cross,2:", help="regime -> strategies mapping")
    p.add_argument("--hosted-params", default="", help="parameters of the hosted strategies")
    p.add_argument("--n-regimes", type=int, default=3)
    p.add_argument("--method", choices=("kmeans", "gmm"), default="kmeans")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fraction", type=float, default=0.95, help="share of equity per entry (default 0.95)")
    p.add_argument("--fee-bps", default="10", help="taker and maker fee in bps (default 10)")
    p.add_argument("--out", help="also fit a regime model on all the bars and save it here (with its sha256)")
    _report_arg(p)


def _rl_parser(p) -> None:
    _data_args(p)
    p.add_argument("--holdout", type=float, default=0.3, help="share of the bars held out at the end (default 0.3)")
    p.add_argument("--timesteps", type=int, default=200_000, help="PPO training timesteps (default 200000)")
    p.add_argument("--envs", type=int, default=8, help="sub-environments (default 8)")
    p.add_argument("--episode-bars", type=int, default=256, help="bars per training episode (default 256)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fee-bps", default="10", help="taker fee in bps (default 10)")
    p.add_argument("--slippage-bps", default="0", help="slippage in bps (default 0)")
    p.add_argument("--fraction", type=float, default=0.98, help="share of equity per entry (default 0.98)")
    p.add_argument("--cash", default="1", help="starting cash in the quote asset (default 1)")
    p.add_argument("--out", help="save the agent in this folder (policy.zip + agent.json)")
    _report_arg(p)


# ---- shared ------------------------------------------------------------------------------------

def main(args) -> int:
    require("train", "ml")
    run = {"signal": _signal, "regime": _regime, "rl": _rl}[args.kind_of_model]
    if args.interval is None and not getattr(args, "retrain", None):
        args.interval = "5m"
    try:
        return run(args)
    except InputError as exc:
        print(f"{PROG} {args.kind_of_model}: {exc}", file=sys.stderr)
        return 2


def _decimal(flag: str, text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise InputError(f"{flag} {text!r} is not a number") from None
    if not value.is_finite() or value < 0:
        raise InputError(f"{flag} must be a finite number >= 0, got {text!r}")
    return value


def _positive(flag: str, value, allow_zero: bool = False):
    if value is not None and (value < 0 or (value == 0 and not allow_zero)):
        raise InputError(f"{flag} must be {'>= 0' if allow_zero else '> 0'}, got {value}")
    return value


def _fraction(flag: str, value: float, low: float, high: float) -> float:
    if not low <= value <= high:
        raise InputError(f"{flag} must be within [{low}, {high}], got {value}")
    return value


def _progress(total: int, desc: str, unit: str):
    """A tqdm bar on stderr, drawn only when stderr is a terminal (not in logs or pipes)."""
    # Lazy: tqdm comes with the ml extra: only `abidance train` draws progress bars.
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, disable=not sys.stderr.isatty(), leave=False,
                dynamic_ncols=True)


class _Stages:
    """One progress bar over named stages; backtests show their bars in the postfix."""

    def __init__(self, stages, desc: str):
        self.bar = _progress(len(stages), desc, "stage")
        self.started = 0

    def stage(self, name: str) -> None:
        if self.started:
            self.bar.update(1)
        self.started += 1
        self.bar.set_postfix_str(name)

    def bars(self, done: int, total: int) -> None:
        if done == total or done % max(1, total // 50) == 0:
            self.bar.set_postfix_str(f"backtest {done}/{total} bars")

    def close(self) -> None:
        self.bar.update(self.bar.total - self.bar.n)
        self.bar.close()


def _load_bars(args, instruments, many: bool = False, store_client=None, database: str = "abidance",
               symbol: str | None = None) -> dict:
    """{symbol: Bars} from --candles, else from the store's bars table; --last keeps the newest N."""
    try:
        parse_interval(args.interval)
    except ValueError as exc:
        raise InputError(f"--interval {args.interval!r}: {exc}") from None
    _positive("--last", args.last)
    if args.candles:
        try:
            bars = load_candle_args(args.candles, args.interval, instruments)
        except ValueError as exc:
            raise InputError(str(exc)) from None
    elif store_client is not None:
        bars = {symbol: _store_bars(store_client, database, symbol, args.interval, args.last, instruments)}
    else:
        raise InputError("no data: give --candles SYMBOL=FILE" + ("" if many else " or --store URL with --symbol"))
    if not many and len(bars) != 1:
        raise InputError(f"one symbol at a time, got {', '.join(bars)}")
    if args.last:
        bars = {s: b[-args.last:] for s, b in bars.items()}
    for s, b in bars.items():
        if len(b) < 2:
            raise InputError(f"{s}: {len(b)} bars is not enough to train on")
    return bars


def _store_bars(client, database: str, symbol: str | None, interval: str, last: int | None, instruments):
    """The store's bars of one symbol as Bars in the instrument's ticks and steps (as recorded files are)."""
    if not symbol:
        raise InputError("bars from the store need --symbol")
    symbol = symbol.upper()
    if symbol not in instruments:
        raise InputError(f"--symbol {symbol}: no instrument for it")
    frame = StoreReader(client, database).bars(symbol, interval, limit=last)
    if not len(frame):
        raise InputError(f"the store ({database}) has no {symbol} {interval} bars")
    return bars_from_frame(frame.rename(columns={"ts": "date"}), symbol, interval, instruments[symbol])


def _write_report(path: str, title: str, subtitle: str, metrics: list, text: str, charts: dict) -> None:
    # Lazy: the report draws with plotly (the dashboard extra).
    from abidance.ml.train_report import write_html

    try:
        n = write_html(path, title, subtitle, metrics, text, charts)
    except OSError as exc:
        raise InputError(f"--report {path}: {exc.strerror or exc}") from None
    print(f"report: {path} ({n} charts)")


# ---- signal ------------------------------------------------------------------------------------

def _ml_settings(args):
    """(the [ml] section, the config or None) from --config / $ABIDANCE_CONFIG."""
    path = args.config or os.environ.get("ABIDANCE_CONFIG")
    if not path:
        return MlSection(), None
    try:
        cfg = load_config(path)
    except ConfigError as exc:
        raise InputError("bad config:\n  " + "\n  ".join(exc.errors)) from None
    return cfg.ml, cfg


def _labeler(args, default_needed: bool):
    """The label spec from the flags; None when no label flag is given and none is needed (--retrain
    then keeps the champion's)."""
    given = [a for a in ("label", "horizon", "threshold", "take_profit", "stop_loss") if getattr(args, a) is not None]
    if not given and not default_needed:
        return None
    horizon = 12 if args.horizon is None else args.horizon
    if (args.label or "forward") == "forward" and (args.take_profit is not None or args.stop_loss is not None):
        raise InputError("--take-profit and --stop-loss belong to --label triple")
    if args.label == "triple":
        if args.threshold is not None:
            raise InputError("--threshold belongs to --label forward")
        labeler = TripleBarrier(horizon, 0.005 if args.take_profit is None else args.take_profit,
                                0.005 if args.stop_loss is None else args.stop_loss)
    else:
        labeler = ForwardReturn(horizon, 0.0 if args.threshold is None else args.threshold)
    try:
        labeler.apply([1.0] * 3, [1.0] * 3, [1.0] * 3)      # the label code's own checks, now rather than mid-run
    except ValueError as exc:
        raise InputError(f"labels: {exc}") from None
    return labeler


def _open_registry(args, ml, cfg):
    # Lazy: the model registry needs pyarrow (the store extra).
    from abidance.ml.registry import Criteria, ModelRegistry
    database = args.database or os.environ.get("ABIDANCE_STORE_DATABASE") or (cfg.store.database if cfg else "abidance")
    author = args.author or os.environ.get("ABIDANCE_AUTHOR") or getpass.getuser()
    try:
        return ModelRegistry.open(args.store, database, criteria=Criteria.from_config(ml), author=author), database
    except Exception as exc:  # noqa: BLE001 - a bad URL, a store that is down or locked: say which
        raise InputError(f"cannot open the store at {redact(args.store)} (database {database}): {exc}") from None


def _signal(args) -> int:
    ml, cfg = _ml_settings(args)
    _positive("--folds", args.folds)
    if args.folds < 2:
        raise InputError(f"--folds must be >= 2, got {args.folds}")
    _positive("--curve-points", args.curve_points, allow_zero=True)
    _positive("--exit-after", args.exit_after, allow_zero=True)
    min_conf = ml.min_confidence if args.min_confidence is None else args.min_confidence
    _fraction("--min-confidence", min_conf, 0.5, 1.0)
    _fraction("--fraction", args.fraction, 0.01, 1.0)
    if args.retrain:
        return _retrain(args, ml, cfg)
    labeler = _labeler(args, default_needed=True)
    holdout = 0.25 if args.holdout is None else args.holdout
    _fraction("--holdout", holdout, 0.05, 0.5)
    # Lazy: training and judging models needs the ml extra (scikit-learn, pandas, torch).
    from abidance.ml.oos_backtest import JudgeSettings

    judge = JudgeSettings(_decimal("--cash", args.cash), _decimal("--fee-bps", args.fee_bps),
                          _decimal("--slippage-bps", args.slippage_bps), args.fraction)
    if judge.starting_cash <= 0:
        raise InputError(f"--cash must be > 0, got {args.cash}")
    instruments = sim_instruments()
    registry, database = _open_registry(args, ml, cfg) if args.store else (None, None)
    try:
        return _train_signal(args, ml, registry, database, instruments, labeler, holdout, min_conf, judge)
    finally:
        if registry is not None:
            registry.close()


def _train_signal(args, ml, registry, database, instruments, labeler, holdout, min_conf, judge) -> int:
    # Lazy: the model registry needs pyarrow (the store extra).
    from abidance.ml.registry import RegistryError
    from abidance.ml.signal_training import STAGES, register_run, train_signal
    bars = _load_bars(args, instruments, store_client=registry.client if registry else None,
                      database=database or "abidance", symbol=args.symbol)
    (symbol, series), = bars.items()
    kind = args.kind or KINDS[0]
    name = args.name or f"{symbol.lower()}-{kind}"
    version = None
    if registry is not None:
        try:
            version = max((m.version for m in registry.list(name)), default=0) + 1
        except RegistryError as exc:
            raise InputError(str(exc)) from None
    model_path = Path(args.out) if args.out else Path(args.model_dir) / (
        f"{name}-v{version}.joblib" if version else f"{name}.joblib")
    print(f"data: {symbol} {args.interval}, {len(series)} bars, {utc(series[0].open_time)} .. "
          f"{utc(series[-1].close_time)} UTC")
    progress = _Stages(STAGES, f"train {name}")
    t0 = time.perf_counter()
    try:
        run = train_signal(series, instruments[symbol], model_path, kind=kind, labeler=labeler, seed=args.seed,
                           n_splits=args.folds, holdout_fraction=holdout, min_confidence=min_conf,
                           horizon=args.exit_after, curve_points=args.curve_points, judge=judge,
                           stage=progress.stage, bar_progress=progress.bars)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    finally:
        progress.close()
    elapsed = time.perf_counter() - t0
    metrics = _signal_metrics(run)
    h = run.holdout
    print(f"trained on {len(run.train)} rows ({utc(run.train.times[0])} .. {utc(run.train.times[-1])}); "
          f"held out: {h['bars'] - h['cut_bar']} bars, {h['rows']} rows ({utc(h['start_ns'])} .. {utc(h['end_ns'])}), "
          f"never trained on; {elapsed:.1f} s")
    for key, value in metrics:
        print(f"{key}: {value}")
    print(f"held-out backtest ({run.comparison.bars} bars, fee {judge.fee_bps} bps, {judge.fraction:.0%} of equity "
          f"per entry, ml_signal at p >= {min_conf:g}, exit after {run.horizon or 'p only'} bars):")
    print(run.comparison.text())
    print(_verdict(run))
    print(f"model: {run.model_path} sha256 {run.sha256}")
    if registry is not None:
        try:
            mv = register_run(registry, name, run, symbol=symbol, interval=args.interval,
                              drift_window=ml.drift_window, version=version)
        except RegistryError as exc:
            print(f"{PROG} signal: not registered: {exc}", file=sys.stderr)
            return 1
        print(f"registered: {mv.label} as {mv.status} in {redact(args.store)} ({database}); "
              f"promote with `abidance models promote {mv.name} {mv.version}`")
    if args.report:
        _write_report(args.report, f"Abidance training: {name}",
                      f"{symbol} {args.interval}, {kind}, labels {run.labels}; held out from {utc(h['start_ns'])} UTC",
                      metrics, run.comparison.text() + "\n" + _verdict(run), run.charts())
    return 0


def _signal_metrics(run) -> list[tuple[str, str]]:
    cv, ho, ins, t = run.result.oos, run.holdout_metrics, run.result.in_sample, run.comparison.table
    rows = [("cv_auc", number(cv["auc"])), ("cv_log_loss", number(cv["log_loss"])), ("cv_hit_rate", number(cv["hit_rate"])),
            ("holdout_auc", number(ho["auc"])), ("holdout_log_loss", number(ho["log_loss"])),
            ("holdout_hit_rate", number(ho["hit_rate"])), ("holdout_signals", str(ho["n_acted"])),
            ("in_sample_auc", number(ins["auc"]))]
    for name, r in t.items():
        rows += [(f"{name}_return", pct(r["total_return"])), (f"{name}_max_drawdown", drawdown(r["max_drawdown"])),
                 (f"{name}_round_trips", str(r["round_trips"]))]
    if run.importances:
        rows.append(("top_features", ", ".join(run.importances["names"][:3])))
    return rows


def _verdict(run) -> str:
    t = run.comparison.table
    mine = t["model"]["total_return"] or 0.0
    beaten = [k for k in t if k != "model" and mine > (t[k]["total_return"] or 0.0)]
    others = [k for k in t if k != "model"]
    auc = run.holdout_metrics["auc"]
    edge = "no edge in ranking (held-out AUC <= 0.5)" if auc is None or auc <= 0.5 else f"held-out AUC {auc:.3f}"
    if len(beaten) == len(others):
        return f"verdict: the model beat {' and '.join(others)} on the held-out bars; {edge}."
    if beaten:
        return f"verdict: the model beat {', '.join(beaten)} but not {', '.join(set(others) - set(beaten))}; {edge}."
    return f"verdict: the model beat neither {' nor '.join(others)} on the held-out bars; {edge}."


def _retrain(args, ml, cfg) -> int:
    # Lazy: the model registry needs pyarrow (the store extra).
    from abidance.ml.registry import RegistryError
    from abidance.ml.retrain import retrain

    name = args.retrain
    if args.min_confidence is not None:
        ml = replace(ml, min_confidence=args.min_confidence)
    if not args.store:
        raise InputError("--retrain needs --store (the registry holds the champion and records every step)")
    holdout = 0.2 if args.holdout is None else args.holdout
    _fraction("--holdout", holdout, 0.05, 0.5)
    labeler = _labeler(args, default_needed=False)
    registry, database = _open_registry(args, ml, cfg)
    try:
        try:
            known = registry.list(name)
        except RegistryError as exc:
            raise InputError(str(exc)) from None
        newest = known[-1].params if known else {}
        symbol = args.symbol or (None if args.candles else newest.get("symbol"))
        if not args.candles and not symbol:
            raise InputError(f"{name} has no registered version to take the symbol from: give --symbol (or --candles)")
        args.interval = args.interval or (None if args.candles else newest.get("interval")) or "5m"
        instruments = sim_instruments()
        bars = _load_bars(args, instruments, store_client=registry.client, database=database, symbol=symbol)
        (symbol, series), = bars.items()
        kind = args.kind or newest.get("kind") or "logistic"
        progress = _Stages(("retrain",), f"retrain {name}")
        progress.stage(f"retrain on {len(series)} bars")
        try:
            outcome = retrain(registry, name, series, model_dir=args.model_dir,
                              tick_size=float(instruments[symbol].filters.price_fp.increment), symbol=symbol,
                              interval=args.interval, labeler=labeler, kind=kind, seed=args.seed,
                              holdout_fraction=holdout, ml=ml, promote_to=args.promote_to,
                              train_options={"n_splits": args.folds})
        except Exception as exc:  # noqa: BLE001 - the timer's journal must say why (a training failure is
            # also recorded in the registry as retrain_failed)
            print(f"{PROG} --retrain {name}: failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
        finally:
            progress.close()
    finally:
        registry.close()
    c = outcome.challenger
    print(f"retrain: {name} on {len(series)} {symbol} {args.interval} bars; held out "
          f"{utc(outcome.holdout['start_ns'])} .. {utc(outcome.holdout['end_ns'])} UTC")
    print(f"challenger: {c.label} {outcome.metric} {number(outcome.challenger_score)}")
    print(f"champion: {f'v{outcome.champion.version} ' if outcome.champion else 'none '}"
          f"{outcome.metric} {number(outcome.champion_score)}")
    print(f"outcome: {c.label} is {c.status} ({'promoted' if outcome.promoted else 'not promoted'}): {outcome.reason}")
    return 0


# ---- regime ------------------------------------------------------------------------------------

def _regime(args) -> int:
    # Lazy: training and judging models needs the ml extra (scikit-learn, pandas, torch).
    from abidance.ml.regime import RegimeModel
    _positive("--train", args.train)
    _positive("--test", args.test)
    _fraction("--fraction", args.fraction, 0.01, 1.0)
    fee = _decimal("--fee-bps", args.fee_bps)
    instruments = sim_instruments()
    bars = _load_bars(args, instruments, many=True)
    quotes = {instruments[s].quote_asset for s in bars}
    if len(quotes) != 1:
        raise InputError(f"the symbols must share one quote asset, got {sorted(quotes)}")
    progress = _Stages(("walk-forward", "final model"), "train regime")
    try:
        progress.stage("walk-forward")
        ev = walk_forward_regimes(bars, train_bars=args.train, test_bars=args.test, anchored=args.anchored,
                                  regimes=args.regimes, hosted_params=args.hosted_params, n_regimes=args.n_regimes,
                                  method=args.method, seed=args.seed, config=research_config(quotes.pop(), args.fraction),
                                  fee_bps=fee, instruments=instruments)
        progress.stage("final model")
        model = sha = None
        if args.out:
            model = RegimeModel(args.n_regimes, args.method, args.seed).fit_bars(bars)
            sha = model.save(args.out)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    finally:
        progress.close()
    if not ev.windows:
        raise InputError(f"not enough bars for one train ({args.train}) + test ({args.test}) window")
    print(ev.table())
    metrics = []
    for name in VARIANTS:
        t = ev.totals[name]
        metrics += [(f"{name}_compounded_return", pct(t["compounded_return"])),
                    (f"{name}_worst_drawdown", drawdown(t["worst_drawdown"])), (f"{name}_trades", str(t["trades"]))]
    metrics.append(("windows", str(len(ev.windows))))
    for key, value in metrics:
        print(f"{key}: {value}")
    if model is not None:
        print(f"model: {args.out} sha256 {sha} ({model.describe()})")
    if args.report:
        charts = {"windows": {"window": [w.window for w in ev.windows],
                              "test_start": [w.test_start for w in ev.windows],
                              **{v: [w.results[v].total_return for w in ev.windows] for v in VARIANTS}}}
        _write_report(args.report, "Abidance training: regimes", f"{', '.join(bars)} {args.interval}; regimes "
                      f"{args.regimes}", metrics, ev.table(), charts)
    return 0


# ---- rl ----------------------------------------------------------------------------------------

def _rl(args) -> int:
    # Lazy: training and judging models needs the ml extra (scikit-learn, pandas, torch).
    from abidance.ml.oos_backtest import thin_curve
    _positive("--timesteps", args.timesteps)
    _positive("--envs", args.envs)
    _positive("--episode-bars", args.episode_bars)
    _fraction("--holdout", args.holdout, 0.05, 0.5)
    _fraction("--fraction", args.fraction, 0.01, 1.0)
    settings = EnvSettings(_decimal("--cash", args.cash), _decimal("--fee-bps", args.fee_bps),
                           _decimal("--slippage-bps", args.slippage_bps), args.fraction)
    if settings.starting_cash <= 0:
        raise InputError(f"--cash must be > 0, got {args.cash}")
    instruments = sim_instruments()
    (symbol, bars), = _load_bars(args, instruments).items()
    cut = int(len(bars) * (1.0 - args.holdout))
    # Lazy: training and judging models needs the ml extra (scikit-learn, pandas, torch).
    from abidance.ml.rl.agent import evaluate, train_agent

    bar = _progress(args.timesteps, "train rl", "step")
    t0 = time.perf_counter()
    try:
        agent = train_agent(bars, instruments[symbol], window=(0, cut - 1), timesteps=args.timesteps,
                            num_envs=args.envs, episode_bars=args.episode_bars, seed=args.seed, settings=settings,
                            progress=lambda done, total: bar.update(done - bar.n))
    except ValueError as exc:
        raise InputError(str(exc)) from None
    finally:
        bar.close()
    trained_s = time.perf_counter() - t0
    result = evaluate(agent, bars, instruments[symbol], window=(cut, len(bars) - 1), settings=settings)
    table = result.table
    curve = agent.learning_curve
    k = max(1, min(16, len(curve) // 4))
    first, last = curve["episode_return"].head(k).mean(), curve["episode_return"].tail(k).mean()
    print(f"trained on bars 0..{cut - 1} ({utc(bars[0].open_time)} .. {utc(bars[cut - 1].close_time)}), "
          f"{args.timesteps} timesteps in {trained_s:.1f} s; held out bars {cut}..{len(bars) - 1} "
          f"({utc(bars[cut].open_time)} .. {utc(bars[-1].close_time)})")
    print(table.to_string())
    metrics = [("episodes", str(len(curve))), ("first_episodes_return", number(first)),
               ("last_episodes_return", number(last))]
    for name, row in table.iterrows():
        metrics += [(f"{name}_return", pct(row["total_return"])), (f"{name}_max_drawdown", drawdown(row["max_drawdown"])),
                    (f"{name}_trades", str(int(row["trades"])))]
    for key, value in metrics:
        print(f"{key}: {value}")
    if args.out:
        print(f"agent: {agent.save(args.out)}")
    if args.report:
        charts = {"episodes": {"timesteps": [int(v) for v in curve["timesteps"]],
                               "episode_return": [float(v) for v in curve["episode_return"]]},
                  "equity": {name: thin_curve([t.value for t in c["ts"]], list(c["equity"]))
                             for name, c in result.curves.items()}}
        _write_report(args.report, f"Abidance training: RL agent on {symbol}", f"PPO, {args.timesteps} timesteps, "
                      f"seed {args.seed}", metrics, table.to_string(), charts)
    return 0
