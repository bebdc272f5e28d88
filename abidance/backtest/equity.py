"""The per-bar equity curve of a backtest, exact and cheap to record.

Valuing the account through `Portfolio.snapshot()` on every bar (realised and unrealised
PnL, drawdown, an event) is the costliest part of a bar. Equity is cash plus positions
times marks, and cash and positions change only on fills: so each bar records only its
time, symbol and close (and which holdings were current), and the exact Decimal values
are computed when the curve is first read. Quiet stretches that the backtester
fast-forwards are added in bulk (`extend`).
"""

from __future__ import annotations

from decimal import Decimal, localcontext
from typing import NamedTuple

from abidance.portfolio.portfolio import _CTX

ZERO = Decimal(0)


class CurvePoint(NamedTuple):
    ts_event: int
    equity: Decimal
    cash: Decimal
    positions_value: Decimal
    drawdown: Decimal           # from the running peak, >= 0


class EquityCurve:
    """`record(...)` after each bar; reads like a list of CurvePoints."""

    def __init__(self, portfolio, instruments: dict):
        self._portfolio = portfolio
        self.symbols = list(instruments)
        self._index = {s: i for i, s in enumerate(self.symbols)}
        self._tick = [instruments[s].filters.price_fp.increment for s in self.symbols]
        self._step = {s: instruments[s].filters.qty_fp.increment for s in self.symbols}
        # Holdings after each fill: (cash, ((symbol index, quantity, cost), ...), exposed).
        self._holdings: list[tuple] = [(portfolio.cash(), (), False)]
        self._dirty = False
        self._ts: list[int] = []
        self._sym: list[int] = []
        self._close: list[int] = []
        self._seg: list[int] = []
        self._values: tuple | None = None       # (equity, cash, positions_value) lists, once read

    def on_fill(self, _fill) -> None:
        self._dirty = True                      # read the portfolio after it has booked the fill

    def _segment(self) -> int:
        if self._dirty:
            self._dirty = False
            pf = self._portfolio
            held, exposed = [], False
            for s, (q, cost) in pf.holdings().items():     # one read of the portfolio per fill
                i = self._index.get(s)
                if i is not None:
                    held.append((i, q, cost))
                    # Exposed: at least one whole lot held (fee dust left after a sale is not a position).
                    exposed = exposed or q >= self._step[s]
            self._holdings.append((pf.cash(), tuple(held), exposed))
        return len(self._holdings) - 1

    def record(self, ts: int, symbol: str, close_ticks: int) -> None:
        self._ts.append(ts)
        self._sym.append(self._index[symbol])
        self._close.append(close_ticks)
        # Runs on every bar: the call only when a fill changed the holdings.
        self._seg.append(self._segment() if self._dirty else len(self._holdings) - 1)
        self._values = None

    def extend(self, ts, symbol: str, closes) -> None:
        """Many bars of one symbol with no fill among them (sequences of ints)."""
        n = len(ts)
        self._ts.extend(ts)
        self._sym.extend([self._index[symbol]] * n)
        self._close.extend(closes)
        self._seg.extend([self._segment()] * n)
        self._values = None

    # ---- reading ---------------------------------------------------------------------

    def _computed(self) -> tuple:
        if self._values is None:
            with localcontext(_CTX):
                self._values = self._compute()
        return self._values

    def _compute(self) -> tuple:
        equity, cash, value = [], [], []
        marks: list[int | None] = [None] * len(self.symbols)
        tick, holdings = self._tick, self._holdings
        last_key, last = None, None
        for sym, close, seg in zip(self._sym, self._close, self._seg):
            marks[sym] = close
            c, held, _ = holdings[seg]
            if not held:
                equity.append(c)
                cash.append(c)
                value.append(ZERO)
                continue
            key = (seg, close) if len(held) == 1 and held[0][0] == sym else None
            if key is not None and key == last_key:
                v = last                          # same holdings, same close: same value
            else:
                v = ZERO
                for s, qty, cost in held:
                    # Unmarked: at what was paid, as Portfolio.positions_value values it.
                    v += qty * tick[s] * marks[s] if marks[s] is not None else cost
                last_key, last = key, v
            equity.append(c + v)
            cash.append(c)
            value.append(v)
        return equity, cash, value

    @property
    def equity(self) -> list[Decimal]:
        return self._computed()[0]

    @property
    def ts(self) -> list[int]:
        return self._ts

    def __len__(self) -> int:
        return len(self._ts)

    def __getitem__(self, i: int) -> CurvePoint:
        if not isinstance(i, int):
            raise TypeError("EquityCurve indices are integers")
        n = len(self._ts)
        i = i + n if i < 0 else i
        if not 0 <= i < n:
            raise IndexError(i)
        equity, cash, value = self._computed()
        return CurvePoint(self._ts[i], equity[i], cash[i], value[i], max(equity[: i + 1]) - equity[i])

    def __iter__(self):
        equity, cash, value = self._computed()
        peak = None
        for i, e in enumerate(equity):
            peak = e if peak is None or e > peak else peak
            yield CurvePoint(self._ts[i], e, cash[i], value[i], peak - e)

    def frame(self):
        """ts, equity, cash, positions_value, drawdown (Decimals, exact) and exposed (a whole lot
        held) as a DataFrame."""
        # Lazy: pandas is an optional extra (dev, ml, dashboard): only this path needs it.
        import pandas as pd

        equity, cash, value = self._computed()
        peak, drawdown = None, []
        for e in equity:
            peak = e if peak is None or e > peak else peak
            drawdown.append(peak - e)
        return pd.DataFrame({"ts": pd.to_datetime(self._ts, utc=True), "equity": equity, "cash": cash,
                             "positions_value": value, "drawdown": drawdown,
                             "exposed": [self._holdings[seg][2] for seg in self._seg]})
