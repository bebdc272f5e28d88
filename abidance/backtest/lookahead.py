"""Look-ahead check: a decision made at time t must not change when data after t is removed.

The strategy is run on the full data, then on the data cut at several points; every
signal before a cut must be the same (time, symbol, side, confidence) in both runs. The
engine itself shows a bar only after it closes and fills no earlier than the next bar,
so what this catches is in the strategy: state carried between runs, data read from
outside the engine, randomness, wall-clock time.
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


async def lookahead_check(config, bars_by_symbol: dict, cuts: int = 4, **kwargs) -> list[Changed]:
    async def signals(bars) -> list[tuple]:
        seen = []
        result = await run_backtest(config, bars, on_bus=lambda bus: bus.subscribe(
            topics.SIGNALS, lambda s: seen.append(_key(s))), **kwargs)
        del result
        return seen

    full = await signals(bars_by_symbol)
    times = sorted(b.close_time for bars in bars_by_symbol.values() for b in bars)
    changed: list[Changed] = []
    for k in range(1, cuts + 1):
        cut = times[len(times) * k // (cuts + 1)]
        truncated = await signals({s: [b for b in bars if b.close_time <= cut] for s, bars in bars_by_symbol.items()})
        before = [s for s in full if s[0] <= cut]
        for i in range(max(len(before), len(truncated))):
            a = before[i] if i < len(before) else None
            b = truncated[i] if i < len(truncated) else None
            if a != b:
                changed.append(Changed(cut, (a or b)[0], a, b))
                break
    return changed
