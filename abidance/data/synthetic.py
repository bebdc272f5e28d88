"""A seeded synthetic L2 market: depth snapshot plus diffs shaped like Binance's.

Used when no recorded data is at hand (the offline demo, benchmarks). Each diff
changes about `levels_per_diff` levels, drawn closer to the top of the book more often
(geometric distance, as in real depth streams), mixing quantity changes, removals and
new levels, occasionally moving the top. The book stays uncrossed by construction
and its depth hovers around `depth` levels a side. Update ids are consecutive, as on
Binance Spot's diff stream.
"""

from __future__ import annotations

import bisect
import random
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DiffBatch:
    """Diffs flattened into arrays: diff i's bids are bid_px[bid_off[i]:bid_off[i+1]]."""

    first_ids: np.ndarray
    final_ids: np.ndarray
    bid_off: np.ndarray
    bid_px: np.ndarray
    bid_qty: np.ndarray
    ask_off: np.ndarray
    ask_px: np.ndarray
    ask_qty: np.ndarray

    def __len__(self) -> int:
        return len(self.first_ids)

    @property
    def level_count(self) -> int:
        return len(self.bid_px) + len(self.ask_px)

    def diff(self, i: int):
        """(first_id, final_id, bids, asks) for diff i, levels as (price, qty) lists."""
        b0, b1, a0, a1 = self.bid_off[i], self.bid_off[i + 1], self.ask_off[i], self.ask_off[i + 1]
        return (int(self.first_ids[i]), int(self.final_ids[i]),
                list(zip(self.bid_px[b0:b1].tolist(), self.bid_qty[b0:b1].tolist())),
                list(zip(self.ask_px[a0:a1].tolist(), self.ask_qty[a0:a1].tolist())))

    def arrays(self):
        return (self.first_ids, self.final_ids, self.bid_off, self.bid_px, self.bid_qty,
                self.ask_off, self.ask_px, self.ask_qty)


class SyntheticDepth:
    """A drifting L2 book in integer ticks/steps with its snapshot and diff stream."""

    def __init__(self, seed: int = 7, depth: int = 1000, mid_ticks: int = 2_000_000,
                 levels_per_diff: int = 20, mean_distance: float = 40.0, max_qty: int = 50_000):
        self._rng = random.Random(seed)
        self.depth = depth
        self.levels_per_diff = levels_per_diff
        self.max_qty = max_qty
        self._p_geo = 1.0 / mean_distance
        # Every other tick is used so that new levels can appear between existing ones.
        self.bids = {mid_ticks - 1 - 2 * i: self._qty() for i in range(depth)}
        self.asks = {mid_ticks + 1 + 2 * i: self._qty() for i in range(depth)}
        self._bid_prices = sorted(self.bids)            # ascending, best last
        self._ask_prices = sorted(self.asks)            # ascending, best first
        self.last_update_id = 1_000_000

    def _qty(self) -> int:
        return self._rng.randint(1, self.max_qty)

    def _distance(self, n: int) -> int:
        # Geometric distance from the top, capped by the side's depth.
        u = self._rng.random()
        d = int(np.log1p(-u) / np.log1p(-self._p_geo))
        return min(d, max(n - 1, 0))

    def snapshot(self):
        """(bids, asks, last_update_id), levels best first as Binance sends them."""
        bids = [(p, self.bids[p]) for p in reversed(self._bid_prices)]
        asks = [(p, self.asks[p]) for p in self._ask_prices]
        return bids, asks, self.last_update_id

    def _change(self, side: str, changed: dict[int, int]) -> None:
        rng = self._rng
        book, prices = (self.bids, self._bid_prices) if side == "b" else (self.asks, self._ask_prices)
        n = len(prices)
        d = self._distance(n)
        px = prices[n - 1 - d] if side == "b" else prices[d]
        roll = rng.random()
        grow = n < self.depth
        if roll < 0.55 or n < 2:                      # quantity change at an existing level
            qty = self._qty()
        elif roll < 0.78 and not grow:               # level removed
            qty = 0
        else:                                        # new level next to it, never crossing
            step = rng.choice((-1, 1))
            px += step
            best_bid, best_ask = self._bid_prices[-1], self._ask_prices[0]
            if px in book or (side == "b" and px >= best_ask) or (side == "a" and px <= best_bid) or px <= 0:
                return
            qty = self._qty()
        if qty == 0:
            if px in book:
                del book[px]
                prices.remove(px)
        else:
            if px not in book:
                bisect.insort(prices, px)
            book[px] = qty
        changed[px] = qty

    def diffs(self, count: int) -> DiffBatch:
        """The next `count` diffs, applied to this book as they are generated."""
        first_ids, final_ids = [], []
        bid_off, ask_off = [0], [0]
        bid_px, bid_qty, ask_px, ask_qty = [], [], [], []
        for _ in range(count):
            bids_changed: dict[int, int] = {}
            asks_changed: dict[int, int] = {}
            # Re-draws of the same price or skipped inserts don't count: aim for the size.
            for _ in range(4 * self.levels_per_diff):
                if len(bids_changed) + len(asks_changed) >= self.levels_per_diff:
                    break
                if self._rng.random() < 0.5:
                    self._change("b", bids_changed)
                else:
                    self._change("a", asks_changed)
            span = self._rng.randint(1, 40)            # several engine updates per 100 ms diff
            first_ids.append(self.last_update_id + 1)
            self.last_update_id += span
            final_ids.append(self.last_update_id)
            for px, qty in bids_changed.items():
                bid_px.append(px)
                bid_qty.append(qty)
            for px, qty in asks_changed.items():
                ask_px.append(px)
                ask_qty.append(qty)
            bid_off.append(len(bid_px))
            ask_off.append(len(ask_px))
        i64 = np.int64
        return DiffBatch(np.array(first_ids, i64), np.array(final_ids, i64),
                         np.array(bid_off, np.intp), np.array(bid_px, i64), np.array(bid_qty, i64),
                         np.array(ask_off, np.intp), np.array(ask_px, i64), np.array(ask_qty, i64))

    def best_bid(self) -> int:
        return self._bid_prices[-1]

    def best_ask(self) -> int:
        return self._ask_prices[0]
