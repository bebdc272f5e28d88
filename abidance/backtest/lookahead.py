"""Look-ahead check: a decision made at time t must not change when data after t is removed.

The strategy is run on the full data twice (the same data must give the same signals: a second
run that differs carries state from the first), then once per cut on the data ending at the
cut; every signal up to a cut must be the same (time, strategy, symbol, side, confidence) as in
the first full run.
The cuts are the bars where a signal changes in the full run (a (strategy, symbol)'s first
signal, and each one whose side differs from its previous one): cutting right after the bar
that decided is where a decision that used the future would differ. `cuts=N` checks N of
them, spread evenly; None checks every one.

What the re-runs catch, and what they do not:
- caught: a decision that read data the engine had not delivered yet (peeking at the engine's
  queue, the next bar, the venue), because that data is absent in the cut run; state carried
  between runs (globals of a module that outlives the run, class attributes of an imported
  module, caches on disk written by an earlier run), because the two full runs, or a full and a
  cut run, differ (the loader runs a strategy file afresh for each backtest, so a global of
  that file alone starts over and is no leak); randomness and wall-clock time, most of the time.
- not caught by the re-runs: reading the complete data from outside the engine (the candle
  file on disk, a URL): the file is whole in every run, so every run decides the same. The
  audit hook (abidance/backtest/audit.py) reports that instead: file, socket and subprocess
  access by strategy code during any backtest (`BacktestResult.outside_access`).
- not caught at all: a leak that changes no signal at a cut (e.g. only the size of an order),
  or state kept in a place neither sees (another process).
"""

from __future__ import annotations

from dataclasses import dataclass

from abidance.backtest.engine import run_backtest
from abidance.core import topics


@dataclass(frozen=True)
class Changed:
    cut_ns: int
    ts_event: int
    full: tuple | None
    truncated: tuple | None


def _key(s) -> tuple:
    return (s.ts_event, s.strategy_id, s.symbol, s.side, round(float(s.confidence), 12))


def signal_changes(signals: list[tuple]) -> list[int]:
    """The times of the signals that change something: a (strategy, symbol)'s first signal and each
    one whose side differs from its previous one (a repeated BUY decides nothing new)."""
    last: dict[tuple[str, str], str] = {}
    out = []
    for ts, strategy, symbol, side, _ in signals:
        if last.get((strategy, symbol)) != side:
            out.append(ts)
        last[(strategy, symbol)] = side
    return sorted(set(out))


def choose_cuts(changes: list[int], cuts: int | None) -> list[int]:
    """All the change times (cuts None), or `cuts` of them spread evenly, first and last included."""
    if cuts is None or cuts >= len(changes):
        return list(changes)
    if cuts <= 0:
        return []
    if cuts == 1:
        return [changes[len(changes) // 2]]
    step = (len(changes) - 1) / (cuts - 1)
    return sorted({changes[round(i * step)] for i in range(cuts)})


async def lookahead_check(config, bars_by_symbol: dict, cuts: int | None = None, *, checked: list | None = None,
                          **kwargs) -> list[Changed]:
    """The signals that changed when the data was cut (one per cut at most). `checked`, when given,
    receives the cut times used (how many cuts ran is len(checked))."""
    async def signals(bars) -> list[tuple]:
        seen = []
        result = await run_backtest(config, bars, on_bus=lambda bus: bus.subscribe(
            topics.SIGNALS, lambda s: seen.append(_key(s))), **kwargs)
        del result
        return seen

    full = await signals(bars_by_symbol)
    again = await signals(bars_by_symbol)
    changed: list[Changed] = []
    end = max((b.close_time for bars in bars_by_symbol.values() for b in bars), default=0)
    _first_difference(changed, end, full, again)
    # A signal is published at its bar's close: the cut keeps every bar that closed by then.
    points = choose_cuts(sorted(set(signal_changes(full)) | set(signal_changes(again))), cuts)
    if checked is not None:
        checked.extend(points)
    for cut in points:
        truncated = await signals({s: [b for b in bars if b.close_time <= cut] for s, bars in bars_by_symbol.items()})
        _first_difference(changed, cut, [s for s in full if s[0] <= cut], truncated)
    return changed


def _first_difference(changed: list, cut: int, reference: list, other: list) -> None:
    for i in range(max(len(reference), len(other))):
        a = reference[i] if i < len(reference) else None
        b = other[i] if i < len(other) else None
        if a != b:
            changed.append(Changed(cut, (a or b)[0], a, b))
            return
