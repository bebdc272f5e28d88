"""Parameter search and walk-forward over the backtester: `optimize(...)`, `walk_forward(...)`.

A trial is one full backtest (`run_backtest`, the live engines under a TestClock) of ONE
strategy of the config (the others are left out, so they do not share its capital) with
parameters proposed by Optuna inside the ranges the strategy class declares
(`params = {"fast": Param(12, 2, 200)}`: ints searched as ints, floats as floats,
`choices` as categories; parameters without a range keep their configured value).

- Samplers: "tpe" (Bayesian, Optuna's TPESampler) and "random".
- Objectives (maximised), from `summarize()`: "sharpe", "sortino", "calmar" (CAGR / max
  drawdown) and "return_dd" (total_return - dd_penalty * max_drawdown).
- Invalid combinations (the class refuses them, or its on_start raises, as ema_cross does
  for fast >= slow: the StrategyEngine would disable it and the backtest would trade
  nothing) are checked before running and the trial is PRUNED with the reason in its
  user attrs "invalid". A trial with fewer fills than `min_trades` or fewer round trips
  than `min_round_trips` (RunSettings; 1 each by default: a trial that bought once and never
  sold is no evidence) is PRUNED with "too_few_trades", so it can never be "best". A trial
  whose objective is undefined (Sharpe of a flat equity curve, or withheld on too short a
  run) is PRUNED with "no_score". A backtest that raises is FAILED. None of them stops the
  study; `OptimizeResult.pruned_reasons` counts the reasons, with an example of each.
- Parallel: the main process owns the study (ask / tell, a single writer to the SQLite
  file); a pool of `jobs` worker processes runs the backtests. TPE uses the constant-liar
  heuristic when trials run in parallel.
- Resumable: with `storage="sqlite:///study.sqlite"` and a study name, a second run loads
  the study and adds `n_trials` more trials to it.
- Walk-forward: train/test windows (rolling or anchored) over the bars' time axis; each
  train window gets its own (in-memory) study; its best parameters are then backtested
  alone on the next test window. The test window starts flat with cold indicators (it is
  a separate backtest), like a fresh deployment of those parameters.
"""

from __future__ import annotations

import json
import math
import multiprocessing
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from abidance.backtest.engine import run_backtest
from abidance.backtest.instruments import process_instruments
from abidance.core.clock import TestClock
from abidance.core.loop import run
from abidance.strategy.base import StrategyContext
from abidance.strategy.loader import load_strategy_class

OBJECTIVES = ("sharpe", "sortino", "calmar", "return_dd")
SAMPLERS = ("tpe", "random")


# ---- search space, configs, validity -------------------------------------------------------

def strategy_class(config, strategy_id: str):
    sc = _strategy_config(config, strategy_id)
    return load_strategy_class(sc.class_name, config.node.strategies_dir or None)


def _strategy_config(config, strategy_id: str):
    for sc in config.strategies:
        if sc.id == strategy_id:
            return sc
    raise KeyError(f"no strategy {strategy_id!r} in the config "
                   f"(have: {', '.join(s.id for s in config.strategies) or 'none'})")


def search_space(cls) -> dict[str, Any]:
    """The declared parameters that can be searched: with choices, or a numeric low and high."""
    out = {}
    for name, spec in cls.params.items():
        kind = type(spec.default)
        if spec.choices:
            out[name] = spec
        elif kind in (int, float) and kind is not bool and spec.low is not None and spec.high is not None:
            out[name] = spec
    return out


def suggest(trial, space: dict) -> dict:
    """Optuna suggestions for the search space: ints as ints, floats as floats, choices as categories."""
    out = {}
    for name, spec in space.items():
        if spec.choices:
            out[name] = trial.suggest_categorical(name, list(spec.choices))
        elif type(spec.default) is int:
            out[name] = trial.suggest_int(name, int(spec.low), int(spec.high))
        else:
            out[name] = trial.suggest_float(name, float(spec.low), float(spec.high))
    return out


def with_params(config, strategy_id: str, params: dict):
    """The config holding only `strategy_id` (enabled), its params updated with `params`."""
    sc = _strategy_config(config, strategy_id)
    merged = {**dict(sc.params), **params}
    return replace(config, strategies=(replace(sc, params=merged, enabled=True),))


def check_params(config, strategy_id: str, params: dict) -> str | None:
    """Why these parameters cannot run (the class refuses them, or its on_start raises), else None."""
    sc = _strategy_config(config, strategy_id)
    try:
        cls = strategy_class(config, strategy_id)
        s = cls(sc.id, sc.symbols, {**dict(sc.params), **params}, sc.timeframe)
        s._abd_ctx = StrategyContext(lambda *a: None, TestClock(0), None, {}, {sym: 1e-8 for sym in sc.symbols})
        s.on_start()
    except Exception as exc:       # any refusal: the StrategyEngine would disable the strategy
        return f"{type(exc).__name__}: {exc}"
    return None


# ---- objectives ----------------------------------------------------------------------------

def _num(v) -> float | None:
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def objective_value(objective: str, summary: dict, dd_penalty: float = 1.0) -> float | None:
    """The objective from a `summarize()` dict; None when it is undefined (no trade, no drawdown...)."""
    if objective == "sharpe":
        return _num(summary.get("sharpe"))
    if objective == "sortino":
        return _num(summary.get("sortino"))
    if objective == "calmar":
        cagr, mdd = _num(summary.get("cagr")), _num(summary.get("max_drawdown"))
        if cagr is None or mdd is None or mdd <= 0:
            return None
        return cagr / mdd
    if objective == "return_dd":
        ret, mdd = _num(summary.get("total_return")), _num(summary.get("max_drawdown"))
        if ret is None or mdd is None:
            return None
        return ret - dd_penalty * mdd
    raise ValueError(f"unknown objective {objective!r} (one of {', '.join(OBJECTIVES)})")


# ---- one trial -----------------------------------------------------------------------------

@dataclass
class RunSettings:
    """What every trial shares besides the parameters."""

    objective: str = "sharpe"
    dd_penalty: float = 1.0
    balances: dict | None = None
    fee_bps: Decimal = Decimal(10)
    slippage_bps: Decimal = Decimal(0)
    min_trades: int = 1             # fills a trial needs to be scored
    min_round_trips: int = 1        # and closed round trips


def too_few_trades(summary: dict, settings: RunSettings) -> str | None:
    """Why a trial's trades are too few to score it, or None."""
    fills, trips = summary.get("fills") or 0, summary.get("round_trips") or 0
    if fills < settings.min_trades:
        return f"{fills} fills < --min-trades {settings.min_trades}"
    if trips < settings.min_round_trips:
        return f"{trips} round trips < --min-round-trips {settings.min_round_trips}"
    return None


def no_score_reason(objective: str, summary: dict) -> str:
    """Why the objective of a run is undefined, from its summary."""
    if not summary.get("round_trips"):
        return f"{objective} undefined: no round trip"
    if summary.get("annualised") and objective in ("sharpe", "sortino", "calmar"):
        return f"{objective} {summary['annualised']}"
    return f"{objective} undefined: flat equity or no drawdown"


def _plain(v):
    if isinstance(v, Decimal):
        return float(v)
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def evaluate(config, strategy_id: str, params: dict, bars_by_symbol: dict, settings: RunSettings,
             instruments: dict | None = None) -> tuple[float | None, dict]:
    """Backtest `strategy_id` alone with `params`: (objective value or None, summary as plain numbers)."""
    # Lazy: the report draws with plotly (the dashboard extra).
    from abidance.backtest.report import summarize
    instruments = instruments or process_instruments(config)
    cfg = with_params(config, strategy_id, params)
    result = run(run_backtest(cfg, bars_by_symbol, instruments=instruments, balances=settings.balances,
                              taker_bps=settings.fee_bps, maker_bps=settings.fee_bps,
                              slippage_bps=settings.slippage_bps))
    summary = summarize(result)
    value = objective_value(settings.objective, summary, settings.dd_penalty)
    return value, {k: _plain(v) for k, v in summary.items()}


_WORKER: dict = {}


def _init_worker(config, strategy_id, bars_by_symbol, settings) -> None:
    _WORKER.update(config=config, strategy_id=strategy_id, bars=bars_by_symbol, settings=settings,
                   instruments=process_instruments(config))


def _run_in_worker(params: dict):
    w = _WORKER
    return evaluate(w["config"], w["strategy_id"], params, w["bars"], w["settings"], w["instruments"])


# ---- the study -----------------------------------------------------------------------------

@dataclass
class OptimizeResult:
    study_name: str
    objective: str
    best_params: dict | None
    best_value: float | None
    best_summary: dict | None
    trials: int                        # all trials in the study (earlier runs included)
    complete: int
    pruned: int
    failed: int
    pruned_reasons: dict = field(default_factory=dict)    # kind -> (count, an example)

    def as_dict(self) -> dict:
        return dict(self.__dict__)


PRUNE_KINDS = {"invalid": "invalid parameters", "too_few_trades": "too few trades", "no_score": "no score"}


def format_pruned(reasons: dict) -> str:
    """"too few trades x5 (e.g. 1 fills < --min-trades 2); invalid parameters x3 (e.g. ...)"."""
    return "; ".join(f"{PRUNE_KINDS.get(k, k)} x{n} (e.g. {example})" for k, (n, example) in reasons.items())


def make_sampler(name: str, seed: int | None, parallel: bool):
    # Lazy: Optuna is the optimize extra: only `abidance optimize` needs it.
    import optuna

    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, constant_liar=parallel)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise ValueError(f"unknown sampler {name!r} (one of {', '.join(SAMPLERS)})")


def study_storage(url: str | None):
    """Where the study lives, so that workers on one or many machines share it:
    - "journal:///path/study.log": Optuna's journal in a file (one machine, or a shared file
      system with working locks); no database server needed;
    - "sqlite:///path/study.db": one machine;
    - "postgresql://user:password@host/db" (or mysql://...): many machines, one database server.
    None: in memory (one process)."""
    if not url:
        return None
    if url.startswith("journal://"):
        # Lazy: optuna (the optimize extra).
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        path = url[len("journal://"):]
        if not path or path == "/":
            raise ValueError(f"--storage {url!r}: a journal needs a file, e.g. journal:///var/lib/abidance/study.log")
        return JournalStorage(JournalFileBackend(path))
    if url.split("://", 1)[0] in ("sqlite", "postgresql", "postgresql+psycopg2", "mysql", "mysql+pymysql"):
        return url
    raise ValueError(f"--storage {url!r}: use journal:///FILE, sqlite:///FILE or postgresql://USER@HOST/DB")


def optimize(config, strategy_id: str, bars_by_symbol: dict, *, n_trials: int = 50, sampler: str = "tpe",
             objective: str = "sharpe", jobs: int = 1, storage: str | None = None, study_name: str | None = None,
             seed: int | None = 0, settings: RunSettings | None = None, instruments: dict | None = None,
             log=None) -> OptimizeResult:
    """Run `n_trials` more trials of the study (created or resumed), `jobs` backtests at a time."""
    # Lazy: Optuna is the optimize extra: only `abidance optimize` needs it.
    import optuna
    from optuna.trial import TrialState

    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r} (one of {', '.join(OBJECTIVES)})")
    settings = replace(settings or RunSettings(), objective=objective)
    cls = strategy_class(config, strategy_id)
    space = search_space(cls)
    if not space:
        raise ValueError(f"strategy {strategy_id!r} ({cls.__name__}) declares no parameter range to search")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    name = study_name or f"{strategy_id}-{objective}"
    # Resume: a fresh seed per run, so a resumed random search does not replay the first run's points.
    existing = 0
    if storage:
        try:
            existing = len(optuna.load_study(study_name=name, storage=storage).trials)
        except KeyError:
            existing = 0
    run_seed = None if seed is None else seed + existing
    study = optuna.create_study(study_name=name, storage=storage, direction="maximize", load_if_exists=True,
                                sampler=make_sampler(sampler, run_seed, jobs > 1))
    study.set_user_attr("strategy_id", strategy_id)
    study.set_user_attr("objective", objective)

    def finish(trial, outcome) -> None:
        if isinstance(outcome, BaseException):
            trial.set_user_attr("error", f"{type(outcome).__name__}: {outcome}")
            study.tell(trial, state=TrialState.FAIL)
        else:
            value, summary = outcome
            trial.set_user_attr("summary", summary)
            few = too_few_trades(summary, settings)
            if few is not None:
                trial.set_user_attr("too_few_trades", few)
                study.tell(trial, state=TrialState.PRUNED)
            elif value is None:
                trial.set_user_attr("no_score", no_score_reason(objective, summary))
                study.tell(trial, state=TrialState.PRUNED)
            else:
                study.tell(trial, value)
        if log:
            log(trial.number, trial.params, None if isinstance(outcome, BaseException) else outcome[0])

    def ask():
        """The next valid trial to run; invalid proposals are pruned on the spot (they count as trials)."""
        nonlocal left
        while left > 0:
            left -= 1
            trial = study.ask()
            params = suggest(trial, space)
            why = check_params(config, strategy_id, params)
            if why is None:
                return trial, params
            trial.set_user_attr("invalid", why)
            study.tell(trial, state=TrialState.PRUNED)
            if log:
                log(trial.number, params, None)
        return None

    left = n_trials
    if jobs <= 1:
        instruments = instruments or process_instruments(config)
        while (nxt := ask()) is not None:
            trial, params = nxt
            try:
                outcome = evaluate(config, strategy_id, params, bars_by_symbol, settings, instruments)
            except Exception as exc:
                outcome = exc
            finish(trial, outcome)
    else:
        ctx = multiprocessing.get_context("spawn")      # no fork of the parent's SQLite connection
        with ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_init_worker,
                                 initargs=(config, strategy_id, bars_by_symbol, settings)) as pool:
            pending = {}
            while True:
                while len(pending) < jobs and (nxt := ask()) is not None:
                    trial, params = nxt
                    pending[pool.submit(_run_in_worker, params)] = trial
                if not pending:
                    break
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    trial = pending.pop(fut)
                    exc = fut.exception()
                    finish(trial, exc if exc is not None else fut.result())
    return _result(study, objective)


def _result(study, objective: str) -> OptimizeResult:
    # Lazy: Optuna is the optimize extra: only `abidance optimize` needs it.
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    count = {s: sum(1 for t in trials if t.state == s) for s in (TrialState.COMPLETE, TrialState.PRUNED,
                                                                 TrialState.FAIL)}
    best = None
    if count[TrialState.COMPLETE]:
        best = study.best_trial
    reasons: dict[str, tuple[int, str]] = {}
    for t in trials:
        if t.state == TrialState.PRUNED:
            kind = next((k for k in PRUNE_KINDS if k in t.user_attrs), "unknown")
            n, example = reasons.get(kind, (0, t.user_attrs.get(kind, "no reason recorded")))
            reasons[kind] = (n + 1, example)
    return OptimizeResult(study.study_name, objective, dict(best.params) if best else None,
                          best.value if best else None, best.user_attrs.get("summary") if best else None,
                          len(trials), count[TrialState.COMPLETE], count[TrialState.PRUNED],
                          count[TrialState.FAIL], reasons)


# ---- walk-forward --------------------------------------------------------------------------

@dataclass
class WindowResult:
    window: int
    train_start: int            # ns, open time of the first train bar
    train_end: int              # ns, close time of the last train bar
    test_start: int
    test_end: int
    train_bars: int
    test_bars: int
    best_params: dict | None
    in_sample: float | None     # best objective on the train window
    out_of_sample: float | None  # the same params backtested on the test window
    in_sample_return: float | None = None
    out_of_sample_return: float | None = None
    extra: dict = field(default_factory=dict)
    note: str = ""              # why a figure is missing

    @property
    def degradation(self) -> float | None:
        """Out-of-sample minus in-sample objective (negative: the parameters did worse on new data)."""
        if self.in_sample is None or self.out_of_sample is None:
            return None
        return self.out_of_sample - self.in_sample

    def as_dict(self) -> dict:
        return {**self.__dict__, "degradation": self.degradation}


def windows(n: int, train_bars: int, test_bars: int, anchored: bool) -> list[tuple[int, int, int, int]]:
    """(train_lo, train_hi, test_lo, test_hi) index ranges, half-open; only complete test windows.
    Rolling: the train window slides by test_bars; anchored: it always starts at 0 and grows."""
    if train_bars <= 0 or test_bars <= 0:
        raise ValueError("train_bars and test_bars must be positive")
    out, k = [], 0
    while True:
        train_hi = train_bars + k * test_bars
        test_hi = train_hi + test_bars
        if test_hi > n:
            return out
        out.append((0 if anchored else train_hi - train_bars, train_hi, train_hi, test_hi))
        k += 1


def _slice(bars_by_symbol: dict, lo_ns: int, hi_ns: int) -> dict:
    return {s: [b for b in bars if lo_ns <= b.open_time < hi_ns] for s, bars in bars_by_symbol.items()}


def walk_forward(config, strategy_id: str, bars, train_bars: int, test_bars: int, anchored: bool = False,
                 n_trials: int = 20, objective: str = "sharpe", *, sampler: str = "tpe", jobs: int = 1,
                 seed: int | None = 0, settings: RunSettings | None = None,
                 instruments: dict | None = None) -> list[WindowResult]:
    """Optimise on each train window, score the best parameters on the next test window.
    `bars`: {symbol: [Bar]} (or a list of one symbol's bars); windows count distinct bar open times."""
    if not isinstance(bars, dict):
        bars = {bars[0].symbol: list(bars)} if bars else {}
    settings = replace(settings or RunSettings(), objective=objective)
    instruments = instruments or process_instruments(config)
    times = sorted({b.open_time for bs in bars.values() for b in bs})
    close = {}
    for bs in bars.values():
        for b in bs:
            close[b.open_time] = max(close.get(b.open_time, 0), b.close_time)
    rows = []
    for i, (tr_lo, tr_hi, te_lo, te_hi) in enumerate(windows(len(times), train_bars, test_bars, anchored)):
        train = _slice(bars, times[tr_lo], times[tr_hi - 1] + 1)
        test = _slice(bars, times[te_lo], times[te_hi - 1] + 1)
        res = optimize(config, strategy_id, train, n_trials=n_trials, sampler=sampler, objective=objective,
                       jobs=jobs, storage=None, study_name=f"{strategy_id}-wf{i}",
                       seed=None if seed is None else seed + i, settings=settings, instruments=instruments)
        row = WindowResult(i, times[tr_lo], close[times[tr_hi - 1]], times[te_lo], close[times[te_hi - 1]],
                           tr_hi - tr_lo, te_hi - te_lo, res.best_params, res.best_value, None)
        if res.best_params is not None:
            row.in_sample_return = (res.best_summary or {}).get("total_return")
            value, summary = evaluate(config, strategy_id, res.best_params, test, settings, instruments)
            row.out_of_sample, row.out_of_sample_return = value, summary.get("total_return")
            row.extra = {"train_round_trips": (res.best_summary or {}).get("round_trips"),
                         "test_round_trips": summary.get("round_trips"),
                         "train_trials": res.trials, "train_complete": res.complete}
            few = too_few_trades(summary, settings)
            if few is not None:        # the same bar as a trial's: too few trades score nothing
                row.out_of_sample, row.note = None, f"OOS not scored: {few} in the test window"
            elif value is None:
                row.note = "OOS " + no_score_reason(objective, summary)
        else:
            row.note = (f"no trial scored in training ({res.pruned} pruned: {format_pruned(res.pruned_reasons)}; "
                        f"{res.failed} failed)")
        rows.append(row)
    return rows


def _ts(ns: int) -> str:
    # Lazy: pandas is an optional extra (dev, ml, dashboard): only this path needs it.
    import pandas as pd

    return pd.Timestamp(ns, tz="UTC").strftime("%Y-%m-%d %H:%M")


def _f(v) -> str:
    return "-" if v is None else f"{v:.4f}"


def format_walk_forward(rows: list[WindowResult], objective: str) -> str:
    """A text table: one line per window, in-sample next to out-of-sample."""
    head = (f"{'win':>3}  {'train':<33}  {'test':<33}  {'IS ' + objective:>12}  {'OOS ' + objective:>12}  "
            f"{'OOS-IS':>8}  {'IS ret':>8}  {'OOS ret':>8}  {'IS/OOS trips':>12}  params")
    lines = [head, "-" * len(head)]
    for r in rows:
        params = "-" if r.best_params is None else json.dumps(
            {k: round(v, 4) if isinstance(v, float) else v for k, v in r.best_params.items()})
        trips = f"{r.extra.get('train_round_trips', '-')}/{r.extra.get('test_round_trips', '-')}"
        lines.append(f"{r.window:>3}  {_ts(r.train_start) + ' - ' + _ts(r.train_end):<33}  "
                     f"{_ts(r.test_start) + ' - ' + _ts(r.test_end):<33}  {_f(r.in_sample):>12}  "
                     f"{_f(r.out_of_sample):>12}  {_f(r.degradation):>8}  {_f(r.in_sample_return):>8}  "
                     f"{_f(r.out_of_sample_return):>8}  {trips:>12}  {params}")
        if r.note:
            lines.append(f"     - {r.note}")          # why a figure of this window is missing
    scored = [r for r in rows if r.degradation is not None]
    if scored:
        ins = sum(r.in_sample for r in scored) / len(scored)
        oos = sum(r.out_of_sample for r in scored) / len(scored)
        lines.append(f"mean {objective}: in-sample {ins:.4f}, out-of-sample {oos:.4f}, degradation {oos - ins:+.4f} "
                     f"({len(scored)} of {len(rows)} windows scored)")
    else:
        lines.append(f"no window has both an in-sample and an out-of-sample {objective}: see the reasons above")
    return "\n".join(lines)
