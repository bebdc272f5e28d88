"""Backtests over a parameter grid, in worker processes or on a Dask cluster: `run_grid(...)`.

A grid is every combination of given values of one strategy's declared parameters
(`{"fast": [8, 12], "slow": [26, 50]}`: four backtests); each point is a full backtest
(`Backtest`, the live engines under a TestClock) of that strategy alone, as a trial of
`abidance optimize` is. A backtest is deterministic given its data, config and seeded
client order ids (engine.BACKTEST_SEED), so where it runs cannot change it: a point run in a
worker gives the row it gives in this process, byte for byte (`GridRow.to_json`), with the
same fills and the same equity curve (their SHA-256 digests are part of the row).

- `jobs=1`: in this process, one after the other.
- `jobs=N`: N worker processes on this machine, forked from a fresh server process
  (multiprocessing's forkserver) that imported the engines once; each receives the config
  and the bars once.
- `cluster="dask://HOST:PORT"`: the workers of a running Dask scheduler (the `grid` extra,
  `dask[distributed]`, on this machine and on every worker, with abidance installed);
  the config and bars are sent to every worker once.

Rows come back in the grid's order whatever finishes first.
"""

from __future__ import annotations

import hashlib
import itertools
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson

from abidance.backtest.engine import Backtest
from abidance.backtest.instruments import process_instruments
from abidance.backtest.optimize import _plain, check_params, strategy_class, with_params

DASK = "dask://"
PRELOAD = ("abidance.backtest.grid", "abidance.backtest.report")     # what every point runs


# ---- the grid ------------------------------------------------------------------------------

def _typed(name: str, spec, text: str):
    kind = type(spec.default)
    try:
        if kind is bool:
            if text.lower() not in ("true", "false"):
                raise ValueError
            value = text.lower() == "true"
        else:
            value = kind(text) if kind in (int, float, str) else None
    except ValueError:
        value = None
    if value is None:
        raise ValueError(f"--grid {name}: {text!r} is not a {kind.__name__}")
    if spec.choices and value not in spec.choices:
        raise ValueError(f"--grid {name}: {text!r} is not one of {', '.join(map(str, spec.choices))}")
    return value


def parse_grid(specs: list[str], cls) -> dict[str, list]:
    """["fast=8,12", "slow=26,50"] -> {"fast": [8, 12], "slow": [26, 50]}, typed as the strategy
    class declares each parameter; an unknown parameter or a value of the wrong type is refused."""
    grid: dict[str, list] = {}
    for spec in specs:
        name, sep, values = spec.partition("=")
        name = name.strip()
        if not sep or not name or not values.strip():
            raise ValueError(f"--grid {spec!r}: write PARAM=v1,v2,...")
        if name not in cls.params:
            raise ValueError(f"--grid {name}: {cls.__name__} has no parameter {name!r} "
                             f"(has: {', '.join(cls.params) or 'none'})")
        if name in grid:
            raise ValueError(f"--grid {name}: given twice")
        grid[name] = [_typed(name, cls.params[name], v.strip()) for v in values.split(",")]
    if not grid:
        raise ValueError("an empty grid: give --grid PARAM=v1,v2,...")
    return grid


def grid_points(grid: dict[str, list]) -> list[dict]:
    """Every combination, the last parameter varying fastest."""
    names = list(grid)
    return [dict(zip(names, combo)) for combo in itertools.product(*(grid[n] for n in names))]


# ---- one point -----------------------------------------------------------------------------

@dataclass(frozen=True)
class GridRow:
    index: int
    params: dict
    final_equity: Decimal
    fills: int
    orders: int
    fills_sha256: str            # every fill (order id, side, quantity, price, fee, time), in order
    equity_sha256: str           # every point of the equity curve (time, exact equity)
    summary: dict                # the report's metrics (abidance/reports/metrics.py)
    invalid: str | None = None   # why the strategy refuses these parameters (then nothing ran)

    def to_json(self) -> bytes:
        return orjson.dumps({**self.__dict__, "final_equity": str(self.final_equity)},
                            option=orjson.OPT_SORT_KEYS)


def _digest(lines) -> str:
    h = hashlib.sha256()
    for line in lines:
        h.update(line.encode())
        h.update(b"\n")
    return h.hexdigest()


def run_point(index: int, params: dict, ctx: dict[str, Any]) -> GridRow:
    """Backtest the grid's strategy alone with `params` (`ctx`: what every point shares)."""
    # Lazy: the metrics are the report's, which needs pandas (the backtest extra).
    from abidance.backtest.report import summarize

    config, sid = ctx["config"], ctx["strategy_id"]
    why = check_params(config, sid, params)
    if why is not None:
        return GridRow(index, params, Decimal(0), 0, 0, "", "", {}, why)
    instruments, bars = process_instruments(config), ctx["bars"]
    result = Backtest(with_params(config, sid, params), bars, instruments=instruments,
                      balances=ctx["balances"], fill=ctx["fill"]).run()
    summary = summarize(result)
    return GridRow(index, params, result.final_equity, len(result.fills), len(result.orders),
                   _digest(repr(tuple(f)) for f in result.fills),
                   _digest(f"{p.ts_event} {p.equity}" for p in result.equity),
                   {k: _plain(v) for k, v in summary.items()})


_WORKER: dict = {}


def _init_worker(ctx: dict) -> None:
    _WORKER.update(ctx)


def _run_in_worker(index: int, params: dict) -> GridRow:
    return run_point(index, params, _WORKER)


def _run_on_dask(address: str, points: list[dict], ctx: dict) -> list[GridRow]:
    # Lazy: Dask is the grid extra: only a --cluster dask://... run needs it.
    from distributed import Client

    with Client(address, timeout=30) as client:
        shared = client.scatter(ctx, broadcast=True)
        futures = client.map(run_point, range(len(points)), points, [shared] * len(points), pure=False)
        return client.gather(futures)


def run_grid(config, strategy_id: str, grid: dict[str, list], bars_by_symbol: dict, *, jobs: int = 1,
             cluster: str | None = None, fill=None, balances: dict | None = None) -> list[GridRow]:
    """One backtest per point of `grid` ({param: [values]}), `jobs` at a time on this machine or on
    the Dask cluster `cluster` ("dask://host:port"); rows in the grid's order."""
    strategy_class(config, strategy_id)          # an unknown strategy fails here, before any worker starts
    if jobs < 1:
        raise ValueError(f"--jobs must be >= 1, got {jobs}")
    if cluster and not cluster.startswith(DASK):
        raise ValueError(f"--cluster {cluster!r}: give dask://HOST:PORT (a Dask scheduler)")
    points = grid_points(grid)
    ctx = {"config": config, "strategy_id": strategy_id, "bars": bars_by_symbol, "fill": fill,
           "balances": balances}
    if cluster:
        return _run_on_dask("tcp://" + cluster[len(DASK):], points, ctx)
    if jobs == 1 or len(points) == 1:
        return [run_point(i, p, ctx) for i, p in enumerate(points)]
    # Workers are forked from a fresh server process that has imported the engines once (not forked
    # from this process, whose threads and open handles a fork would copy; not spawned, which
    # would import everything again in each worker).
    mp = multiprocessing.get_context("forkserver")
    mp.set_forkserver_preload(list(PRELOAD))
    with ProcessPoolExecutor(min(jobs, len(points)), mp_context=mp, initializer=_init_worker,
                             initargs=(ctx,)) as pool:
        return list(pool.map(_run_in_worker, range(len(points)), points))
