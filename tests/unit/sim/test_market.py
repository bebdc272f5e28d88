"""Price paths, file loaders and the MarketDriver (on a fake venue and on the real SimExchange)."""

from __future__ import annotations

import logging
from collections import deque
from decimal import Decimal
from types import SimpleNamespace
from typing import NamedTuple

import pytest

from abidance.exchange.sim.aggregates import KlineAggregator, Ticker24h
from abidance.exchange.sim.market import (BUY, SELL, CandleReplayPath, MarketDriver, PathPoint, SyntheticPath,
                                          TradeReplayPath, detect_gaps, intrabar_anchors, intrabar_points,
                                          load_candles, load_trades, to_grid, validate_candles)
from tests.kit import load_candles as kit_candles
from tests.kit import shared_data

E8 = Decimal("0.00000001")


# ---- grid conversion ---------------------------------------------------------------------------

def test_to_grid_uses_the_shortest_decimal_and_rounds_half_even():
    assert to_grid(0.00162, E8) == 162_000
    assert to_grid(0.0016200000000000001, E8) == 162_000          # float noise in the real files
    assert to_grid(Decimal("0.125"), Decimal("0.01")) == 12
    assert to_grid(Decimal("0.135"), Decimal("0.01")) == 14
    assert to_grid("0.000000001", E8) == 1                          # never <= 0 ticks
    assert to_grid(0.00031099999999999997, Decimal("0.000001")) == 311


# ---- synthetic path ----------------------------------------------------------------------------

def run_path(path, stops):
    out = []
    for t in stops:
        out += path.advance(t)
    return out


def test_synthetic_path_same_seed_same_path_however_chunked():
    a = run_path(SyntheticPath(42, 50_000, 20.0, step_ms=100, start_ms=0), [60_000])
    b = run_path(SyntheticPath(42, 50_000, 20.0, step_ms=100, start_ms=0), [*range(0, 60_000, 777), 60_000])
    c = run_path(SyntheticPath(43, 50_000, 20.0, step_ms=100, start_ms=0), [60_000])
    assert a == b and a != c
    assert a[0] == PathPoint(0, 50_000)
    assert len(a) > 50 and all(p.time_ms % 100 == 0 for p in a)
    assert all(x.price_ticks != y.price_ticks for x, y in zip(a, a[1:]))      # changes only


def test_synthetic_path_never_below_one_tick():
    path = SyntheticPath(1, 3, 3_000.0, step_ms=10, start_ms=0)
    pts = run_path(path, [200_000])
    assert min(p.price_ticks for p in pts) == 1
    assert all(isinstance(p.price_ticks, int) and p.price_ticks >= 1 for p in pts)


def test_synthetic_path_starts_at_first_advance():
    path = SyntheticPath(5, 1000)
    assert path.advance(12_345) == [PathPoint(12_345, 1000)]
    assert path.start_ms == 12_345


def test_synthetic_history_is_aligned_seeded_and_consistent():
    path = SyntheticPath(9, 100_000, 5.0)
    bars = path.history(end_ms=1_700_000_012_345, n_bars=120, interval_ms=60_000)
    assert bars == SyntheticPath(9, 100_000, 5.0).history(1_700_000_012_345, 120, 60_000)
    assert len(bars) == 120
    end = 1_700_000_012_345 // 60_000 * 60_000
    assert [b.open_ms for b in bars] == [end - 60_000 * (120 - i) for i in range(120)]
    for b in bars:
        assert b.low <= min(b.open, b.close) <= max(b.open, b.close) <= b.high and b.low >= 1
    assert abs(bars[-1].close - 100_000) < 1_000                  # ends next to the live start price


# ---- candle replay -----------------------------------------------------------------------------

def test_intrabar_anchor_order():
    assert intrabar_anchors(100, 110, 95, 105) == (100, 95, 110, 105)     # low nearer: O-L-H-C
    assert intrabar_anchors(100, 103, 90, 95) == (100, 103, 90, 95)       # high nearer: O-H-L-C
    assert intrabar_anchors(100, 105, 95, 97) == (100, 105, 95, 97)       # tie, closes down: O-H-L-C
    assert intrabar_anchors(100, 105, 95, 101) == (100, 95, 105, 101)     # tie, closes up: O-L-H-C


def test_intrabar_points_walk_tick_by_tick_between_quarter_anchors():
    pts = list(intrabar_points(0, 60_000, 100, 110, 95, 105, volume=10))
    q = 15_000
    anchors = {p.time_ms: p.price_ticks for p in pts if p.time_ms % q == 0}
    assert anchors == {0: 100, q: 95, 2 * q: 110, 3 * q: 105}
    prices = [p.price_ticks for p in pts]
    assert all(abs(a - b) == 1 for a, b in zip(prices, prices[1:]))           # linear, tick by tick
    assert [p.time_ms for p in pts] == sorted(p.time_ms for p in pts)
    assert max(p.time_ms for p in pts) == 3 * q                               # close held for the last quarter
    assert sum(p.volume_hint for p in pts) == 10
    many = list(intrabar_points(0, 400, 0 + 1000, 5000, 1000, 3000))        # more ticks than ms
    assert len({p.time_ms for p in many}) == len(many)
    assert many[-1] == PathPoint(300, 3000)


def test_candle_replay_path_on_real_candles():
    frame = kit_candles("UNITTEST_BTC-1m").iloc[:300]
    path = CandleReplayPath(frame, tick_size=E8)
    assert path.interval_ms == 60_000
    assert path.gaps == detect_gaps(path.times, 60_000) and path.gaps    # this series has gaps too
    by_bar: dict[int, list[PathPoint]] = {}
    for p in path.advance(path.times[-1] + 60_000):
        by_bar.setdefault(p.time_ms // 60_000 * 60_000, []).append(p)
    assert path.done
    for i, t in enumerate(path.times):
        row = frame.iloc[i]
        o, h, l, c = (to_grid(row[k], E8) for k in ("open", "high", "low", "close"))
        # exact conversion: the file's floats are 8-decimal prices plus binary noise
        for k, ticks in zip(("open", "high", "low", "close"), (o, h, l, c)):
            assert abs(ticks * E8 - Decimal(repr(float(row[k])))) < Decimal("1e-15")
        pts = by_bar[t]
        assert pts[0] == PathPoint(t, o, pts[0].volume_hint)
        first, second = (h, l) if h - o < o - l or (h - o == o - l and c < o) else (l, h)
        anchors = [p.price_ticks for p in pts if (p.time_ms - t) % 15_000 == 0]
        assert anchors == [o, first, second, c]
        assert all(l <= p.price_ticks <= h and t <= p.time_ms < t + 60_000 for p in pts)


def test_candle_replay_rounds_onto_a_coarser_grid_keeping_bar_order():
    frame = kit_candles("UNITTEST_BTC-1m").iloc[:500]
    tick = Decimal("0.000001")
    path = CandleReplayPath(frame, tick_size=tick)
    for o, h, l, c, row in zip(path.o, path.h, path.l, path.c, frame.itertuples()):
        assert l <= min(o, c) <= max(o, c) <= h
        assert abs(o * tick - Decimal(repr(float(row.open)))) <= tick / 2


def test_candle_replay_time_mapping_and_history():
    frame = kit_candles("XRP_ETH-1m").iloc[:50]
    path = CandleReplayPath(frame, tick_size=E8, step_size=Decimal(1), start_index=20,
                            sim_start_ms=1_800_000_030_000)
    assert path.start_ms == 1_800_000_000_000                     # rounded down to the bar interval
    hist = path.history()
    assert len(hist) == 20 and hist[-1].open_ms == path.start_ms - 60_000
    assert len(path.history(5)) == 5
    assert path.advance(path.start_ms - 1) == []
    first = path.advance(path.start_ms)
    assert first == [PathPoint(path.start_ms, path.o[20], path.v[20] // 4)]


def test_gap_detection_on_ada_btc():
    frame = load_candles(shared_data("market", "ADA_BTC-5m.feather"))
    assert frame.attrs["bad_rows"] == []
    gaps = frame.attrs["gaps"]
    assert len(frame) == 5720
    assert sum(g.missing for g in gaps) == 40                      # 5760 bars in the range
    assert sorted(g.missing for g in gaps) == [1, 1, 1, 4, 33]
    for g in gaps:
        assert frame["time_ms"][g.index] - frame["time_ms"][g.index - 1] == (g.missing + 1) * 300_000


def test_candle_replay_reports_gaps(caplog):
    frame = kit_candles("ADA_BTC-5m")
    with caplog.at_level(logging.WARNING, logger="abidance.exchange.sim.market"):
        path = CandleReplayPath(frame, tick_size=E8)
    assert path.interval_ms == 300_000 and len(path.gaps) == 5
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == ["candles: 5 gap(s), 40 bar(s) missing; largest 33 bar(s) before row "
                        f"{max(path.gaps, key=lambda g: g.missing).index} "
                        f"({max(path.gaps, key=lambda g: g.missing).prev_ms} -> "
                        f"{max(path.gaps, key=lambda g: g.missing).next_ms})"]
    # across the 33-bar gap the path jumps from the last close to the next bar's open time
    g = max(path.gaps, key=lambda g: g.missing)
    before = path.advance(g.next_ms - 1)
    after = path.advance(g.next_ms)
    assert before[-1].time_ms < g.prev_ms + 300_000 and after == [PathPoint(g.next_ms, path.o[g.index],
                                                                              path.v[g.index] // 4)]


def test_detect_gaps_plain():
    assert detect_gaps([0, 5, 10, 25, 30]) == [detect_gaps([0, 5, 10, 25, 30])[0]]
    (g,) = detect_gaps([0, 5, 10, 25, 30])
    assert (g.index, g.prev_ms, g.next_ms, g.missing) == (3, 10, 25, 2)


# ---- loaders -----------------------------------------------------------------------------------

def test_load_candles_reports_and_skips_bad_rows(tmp_path, caplog):
    csv = tmp_path / "c.csv"
    csv.write_text(
        "date,open,high,low,close,volume\n"
        "1000,1.5,2,1,1.75,10\n"
        "2000,nan,2,1,1.5,10\n"          # 1: missing price
        "3000,1.5,2,1,-1,10\n"           # 2: negative
        "4000,1.5,inf,1,1.5,10\n"        # 3: not finite
        "5000,1.5,1.6,1.4,1.7,10\n"      # 4: high below close
        "5000,1.5,2,1,1.5,10\n"          # 5: ok
        "5000,1.5,2,1,1.5,10\n"          # 6: duplicate time
        "6000,1.5,2,1,1.5,-3\n"          # 7: negative volume
        "7000,1.5,2,1,1.50000001,0\n")   # 8: ok
    with caplog.at_level(logging.WARNING):
        frame = load_candles(csv)
    assert [i for i, _ in frame.attrs["bad_rows"]] == [1, 2, 3, 4, 6, 7]
    assert frame["time_ms"].tolist() == [1000, 5000, 7000]
    assert frame["close"].tolist() == ["1.75", "1.5", "1.50000001"]          # text kept exact
    assert "row 4 skipped" in caplog.text
    with pytest.raises(ValueError, match="missing column"):
        validate_candles(frame.drop(columns=["volume"]))


def test_load_candles_feather_and_parquet_round_trip(tmp_path):
    frame = kit_candles("ETH_BTC-5m").iloc[:100]
    frame.to_parquet(tmp_path / "x.parquet")
    a = load_candles(shared_data("market", "ETH_BTC-5m.feather")).iloc[:100]
    b = load_candles(tmp_path / "x.parquet")
    assert a["time_ms"].tolist() == b["time_ms"].tolist()
    assert a["time_ms"][1] - a["time_ms"][0] == 300_000
    with pytest.raises(ValueError, match="unsupported"):
        load_candles(tmp_path / "x.txt")


def test_load_trades_freqtrade_layout():
    trades = load_trades(shared_data("market", "XRP_ETH-trades.feather"))
    assert len(trades) == 12_477 and trades.attrs["bad_rows"] == []
    assert list(trades.columns) == ["time_ms", "trade_id", "price", "qty", "side"]
    assert trades.iloc[0]["time_ms"] == 1_570_752_011_620 and trades.iloc[0]["side"] == SELL
    assert set(trades["side"]) == {BUY, SELL}


def test_load_trades_nautilus_layout():
    trades = load_trades(shared_data("binance-nt", "btcusdt-trades.parquet"))
    assert len(trades) == 2_001
    first = trades.iloc[0]
    assert first["time_ms"] == 1_610_064_000_278 and first["trade_id"] == "553287559"
    assert first["side"] == SELL                       # buyer was maker: the seller took
    assert trades.iloc[1]["side"] == BUY


def test_load_trades_bad_rows(tmp_path):
    csv = tmp_path / "t.csv"
    csv.write_text("timestamp,id,side,price,amount\n"
                   "1000,1,buy,10,1\n"
                   "1001,2,hold,10,1\n"        # unknown side
                   "1002,3,sell,0,1\n"         # zero price
                   "1003,4,sell,10,nan\n"      # no quantity
                   "900,5,sell,10,1\n"         # back in time
                   "1004,6,sell,10.5,2\n")
    trades = load_trades(csv)
    assert [i for i, _ in trades.attrs["bad_rows"]] == [1, 2, 3, 4]
    assert trades["trade_id"].tolist() == ["1", "6"]


def test_trade_replay_path_points_and_history():
    trades = load_trades(shared_data("market", "XRP_ETH-trades.feather"))
    path = TradeReplayPath(trades, tick_size=E8, step_size=Decimal(1), start_index=1000, sim_start_ms=2_000_000_000_000)
    assert path.start_ms == 2_000_000_000_000
    pts = path.advance(path.start_ms + 3_600_000)
    assert pts[0] == PathPoint(path.start_ms, to_grid(trades["price"][1000], E8),
                               int(trades["qty"][1000]), trades["side"][1000])
    assert all(p.side in (BUY, SELL) and p.volume_hint >= 1 for p in pts)
    bars = path.history(60_000)
    assert sum(b.volume for b in bars) == int(sum(trades["qty"][:1000]))
    assert sum(b.trades for b in bars) == 1000
    assert sum(b.taker_buy for b in bars) == int(sum(q for q, s in zip(trades["qty"][:1000], trades["side"][:1000])
                                                     if s == BUY))
    assert all(b.open_ms % 60_000 == 0 for b in bars)


# ---- a fake venue implementing the market-maker contract ---------------------------------------

class MMOrder(NamedTuple):
    order_id: int
    side: str
    price_ticks: int
    qty_steps: int


class FakeExchange:
    """One symbol, price-time priority, MM self-matches expired (as SimExchange does)."""

    def __init__(self, tick="0.01", step="0.001"):
        self._spec = SimpleNamespace(tick_size=Decimal(tick), step_size=Decimal(step))
        self.book = {BUY: {}, SELL: {}}         # side -> price -> deque of [id, owner, qty]
        self.where = {}                          # id -> (side, price)
        self.trades = []                         # (price, qty, taker side, maker owner)
        self.calls = []
        self.next_id = 1

    def spec(self, symbol):
        return self._spec

    def book_top(self, symbol):
        bids, asks = self.book[BUY], self.book[SELL]
        b, a = (max(bids) if bids else None), (min(asks) if asks else None)
        return (b, sum(o[2] for o in bids[b]) if b else None, a, sum(o[2] for o in asks[a]) if a else None)

    def _match(self, owner, side, limit, qty, mm_prints=False):
        book = self.book[SELL if side == BUY else BUY]
        filled = 0
        while qty > filled and book:
            best = min(book) if side == BUY else max(book)
            if limit is not None and (best > limit if side == BUY else best < limit):
                break
            queue = book[best]
            maker = queue[0]
            if owner == "mm" and maker[1] == "mm" and not mm_prints:
                queue.popleft()                  # expired, no trade
                del self.where[maker[0]]
            else:
                n = min(qty - filled, maker[2])
                maker[2] -= n
                filled += n
                self.trades.append((best, n, side, maker[1]))
                if maker[2] == 0:
                    queue.popleft()
                    del self.where[maker[0]]
            if not queue:
                del book[best]
        return filled

    def _rest(self, owner, side, price, qty):
        oid, self.next_id = self.next_id, self.next_id + 1
        filled = self._match(owner, side, price, qty)
        if filled < qty:
            self.book[side].setdefault(price, deque()).append([oid, owner, qty - filled])
            self.where[oid] = (side, price)
        return oid

    def mm_quote(self, symbol, side, price_ticks, qty_steps):
        self.calls.append(("quote", side, price_ticks, qty_steps))
        return self._rest("mm", side, price_ticks, qty_steps)

    def mm_cancel(self, symbol, order_id):
        self.calls.append(("cancel", order_id))
        side, price = self.where.pop(order_id)
        queue = self.book[side][price]
        queue.remove(next(o for o in queue if o[0] == order_id))
        if not queue:
            del self.book[side][price]
        return True

    def mm_take(self, symbol, side, limit_price_ticks, qty_steps):
        self.calls.append(("take", side, limit_price_ticks, qty_steps))
        return self._match("mm", side, limit_price_ticks, qty_steps)

    def mm_orders(self, symbol):
        return [MMOrder(o[0], side, price, o[2]) for side in (BUY, SELL)
                for price, queue in sorted(self.book[side].items()) for o in queue if o[1] == "mm"]

    def user_limit(self, side, price, qty):
        return self._rest("user", side, price, qty)

    def is_open(self, oid):
        return oid in self.where

    def mm_prices(self, side):
        return sorted({o.price_ticks for o in self.mm_orders("X") if o.side == side})


class PrintingFakeExchange(FakeExchange):
    """Also offers mm_trade: MM quotes at the price print trades instead of expiring."""

    def mm_trade(self, symbol, side, price_ticks, qty_steps):
        self.calls.append(("trade", side, price_ticks, qty_steps))
        return self._match("mm", side, price_ticks, qty_steps, mm_prints=True)


class ScriptedPath:
    """Points given by hand (time_ms, price_ticks)."""

    takes = False

    def __init__(self, points):
        self.points = [PathPoint(t, p) for t, p in points]
        self.start_ms = self.points[0].time_ms
        self.last = None

    def advance(self, now_ms):
        out = [p for p in self.points if p.time_ms <= now_ms]
        self.points = self.points[len(out):]
        return out


def assert_band(ex, driver, levels):
    bid_top, ask_top = driver.band(driver.ref)
    assert ex.mm_prices(BUY) == list(range(bid_top - levels + 1, bid_top + 1))
    assert ex.mm_prices(SELL) == list(range(ask_top, ask_top + levels))


def assert_uncrossed(ex):
    bid, _, ask, _ = ex.book_top("X")
    assert bid is None or ask is None or bid < ask


# ---- MarketDriver on the fake venue ------------------------------------------------------------

@pytest.mark.parametrize("spread", [1, 2, 3])
def test_driver_keeps_levels_and_never_crosses(spread):
    ex = PrintingFakeExchange()
    path = SyntheticPath(3, 10_000, 30.0, step_ms=50, start_ms=0)
    d = MarketDriver(ex, "X", path, levels=7, level_qty_steps=(5, 50), spread_ticks=spread, rng_seed=11)
    for t in range(0, 120_000, 100):
        d.step(t)
        assert_uncrossed(ex)
        assert_band(ex, d, 7)
        bid, _, ask, _ = ex.book_top("X")
        assert ask - bid == spread
    assert d.stats["touch_takes"] > 100 and len(ex.trades) > 100     # the tape is alive


def test_driver_is_deterministic():
    runs = []
    for _ in range(2):
        ex = PrintingFakeExchange()
        d = MarketDriver(ex, "X", SyntheticPath(8, 5_000, 10.0, start_ms=0), levels=5, rng_seed=4)
        for t in range(0, 30_000, 100):
            d.step(t)
        runs.append((ex.calls, ex.trades))
    assert runs[0] == runs[1]


def test_user_orders_fill_when_the_path_crosses_them():
    ex = FakeExchange()
    path = ScriptedPath([(0, 1000), (1000, 1010), (2000, 1016), (3000, 990), (4000, 985), (5000, 984)])
    # no touch trades: only the path's crossing fills
    d = MarketDriver(ex, "X", path, levels=5, level_qty_steps=(10, 10), rng_seed=1, activity_prob=0,
                     move_prints=False)
    d.step(0)
    sell = ex.user_limit(SELL, 1015, 3)         # above the market: rests
    buy_touch = ex.user_limit(BUY, 985, 4)      # below: the path will only touch it
    buy_cross = ex.user_limit(BUY, 989, 2)      # below: the path will cross it
    assert ex.is_open(sell) and ex.is_open(buy_touch) and ex.is_open(buy_cross)
    d.step(1000)
    assert ex.is_open(sell)                     # 1010 has not reached 1015
    d.step(2000)
    assert not ex.is_open(sell) and (1015, 3, BUY, "user") in ex.trades
    d.step(3000)
    assert ex.is_open(buy_cross) and ex.is_open(buy_touch)      # 990: above both bids
    d.step(4000)
    assert not ex.is_open(buy_cross) and (989, 2, SELL, "user") in ex.trades
    assert ex.is_open(buy_touch)                # spread 1: a bid at the reference price is not crossed
    d.step(5000)
    assert not ex.is_open(buy_touch)
    assert [t for t in ex.trades if t[3] == "mm"] == []          # no MM self-trades without mm_trade
    assert_uncrossed(ex)
    assert_band(ex, d, 5)


def test_a_move_trades_at_the_touch_where_a_user_order_has_priority():
    ex = FakeExchange()
    path = ScriptedPath([(0, 1000), (1000, 995)])
    d = MarketDriver(ex, "X", path, levels=5, level_qty_steps=(10, 10), rng_seed=1, activity_prob=0)
    d.step(0)
    touch = ex.user_limit(BUY, 995, 4)          # ahead of the MM's later quote at 995
    d.step(1000)                                # the path comes down to 995: a SELL prints at the touch
    price, qty, side, maker = ex.trades[0]
    assert (price, side, maker) == (995, SELL, "user") and 1 <= qty <= 4
    assert ex.is_open(touch) == (qty < 4)
    assert_uncrossed(ex)


def test_requote_never_crosses_a_user_order_inside_the_band():
    ex = FakeExchange()
    d = MarketDriver(ex, "X", ScriptedPath([(0, 1000)]), levels=3, spread_ticks=4, rng_seed=1, activity_prob=0)
    d.step(0)                                   # bids 996..998, asks 1002..1004
    ex.user_limit(SELL, 1000, 5)                # at the mid: not crossed by the path
    d.step(100)
    assert ex.book_top("X")[2] == 1000
    assert_uncrossed(ex)


def test_touch_activity_only_trades_users_without_mm_trade():
    ex = FakeExchange()
    d = MarketDriver(ex, "X", SyntheticPath(2, 1000, 5.0, start_ms=0), levels=3, rng_seed=5, activity_prob=1.0)
    for t in range(0, 5_000, 100):
        d.step(t)
    assert ex.trades == [] and d.stats["touch_takes"] == 0       # an all-MM touch is left alone
    bid = ex.book_top("X")[0]
    ex.user_limit(BUY, bid, 1)                  # queue behind the MM at the touch
    for t in range(5_000, 20_000, 100):
        d.step(t)
    assert all(t[3] == "user" for t in ex.trades)


def test_trade_replay_prints_each_recorded_trade():
    trades = load_trades(shared_data("market", "XRP_ETH-trades.feather")).iloc[:200].reset_index(drop=True)
    ex = PrintingFakeExchange(tick="0.00000001", step="1")
    path = TradeReplayPath(trades, tick_size=E8, step_size=Decimal(1))
    d = MarketDriver(ex, "X", path, levels=5, level_qty_steps=(1, 20), rng_seed=2)
    t0 = path.start_ms
    for t in range(t0, int(trades["time_ms"].iloc[-1]) + 1000, 1000):
        d.step(t)
        assert_uncrossed(ex)
    assert path.done and d.stats["replayed"] == 200
    printed = {}
    for price, qty, side, _ in ex.trades:
        printed[(price, side)] = printed.get((price, side), 0) + qty
    wanted = {}
    for p, q, s in zip(trades["price"], trades["qty"], trades["side"]):
        key = (to_grid(p, E8), s)
        wanted[key] = wanted.get(key, 0) + int(q)
    assert printed == wanted


def test_trade_replay_fills_a_user_order_at_the_trade_price_first():
    import pandas as pd

    frame = pd.DataFrame({"time_ms": [0, 1000], "trade_id": ["1", "2"], "price": ["1.00", "1.05"],
                          "qty": ["0.005", "0.004"], "side": [SELL, BUY]})
    ex = PrintingFakeExchange()
    path = TradeReplayPath(frame, tick_size=Decimal("0.01"), step_size=Decimal("0.001"))
    d = MarketDriver(ex, "X", path, levels=3, rng_seed=2)
    d.step(0)
    user = ex.user_limit(SELL, 105, 3)
    d.step(1000)
    assert not ex.is_open(user)
    assert ex.trades[-2:] == [(105, 3, BUY, "user"), (105, 1, BUY, "mm")]


def test_seed_history_feeds_klines_and_ticker():
    ex = FakeExchange()
    d = MarketDriver(ex, "X", SyntheticPath(1, 20_000, 3.0), levels=3)
    klines, ticker = KlineAggregator("X"), Ticker24h("X")
    end = 1_700_000_000_000
    bars = d.seed_history(klines, ticker, n_bars=300, interval="1m", end_ms=end)
    assert len(bars) == 300 and all(b.low > 0 for b in bars)
    rows = klines.klines("1m", limit=1000)
    assert len(rows) == 300 and rows[-1][0] == end // 60_000 * 60_000 - 60_000
    assert ticker.snapshot(end)["count"] == sum(b.trades for b in bars)
    assert Decimal(rows[0][1]) == bars[0].open


def test_seed_history_from_candle_replay_uses_the_candle_interval():
    frame = kit_candles("ADA_BTC-5m")
    ex = FakeExchange(tick="0.00000001", step="1")
    path = CandleReplayPath(frame, tick_size=E8, step_size=Decimal(1), start_index=2000)
    d = MarketDriver(ex, "X", path, levels=3)
    klines = KlineAggregator("X", intervals=("1m", "5m", "1h"))
    bars = d.seed_history(klines, n_bars=None)
    assert len(bars) == 2000
    rows = klines.klines("5m", limit=1000)
    assert rows[-1][0] == path.times[1999] and rows[-1][4] == format(path.c[1999] * E8, ".8f")
    assert klines.klines("1m") == []            # shorter than the source bars: no history


# ---- integration with the real SimExchange -----------------------------------------------------

def real_exchange():
    exmod = pytest.importorskip("abidance.exchange.sim.exchange")
    from abidance.exchange.sim.clock import ManualClock
    from abidance.exchange.sim.symbols import SymbolSpec

    spec = SymbolSpec("BTCUSDT", "BTC", "USDT", Decimal("0.01"), Decimal("0.00001"), Decimal("0.01"),
                      Decimal("1000000"), Decimal("0.00001"), Decimal("9000"), min_notional=Decimal("1"))
    clock = ManualClock(1_700_000_000_000)
    klines = KlineAggregator("BTCUSDT", clock_ms=clock.now_ms)

    class Listener(exmod.NullListener):
        def on_trade(self, symbol, trade):
            klines.on_trade(trade)

    ex = exmod.SimExchange([spec], clock.now_ms, Listener())
    return ex, clock, klines


def mm_prices(ex, side):
    return sorted({o.price_ticks for o in ex.mm_orders("BTCUSDT") if o.side == side})


def test_integration_with_sim_exchange():
    ex, clock, klines = real_exchange()
    user = ex.create_account("k", "s", {"USDT": Decimal("100000"), "BTC": Decimal("1")})
    path = SyntheticPath(17, 3_000_000, 8.0, step_ms=100, start_ms=clock.now_ms())
    d = MarketDriver(ex, "BTCUSDT", path, levels=10, level_qty_steps=(100, 1000), rng_seed=9)
    d.step(clock.now_ms())
    bid0, _, ask0, _ = ex.book_top("BTCUSDT")
    # a user SELL 5 ticks above the ask and a BUY 5 ticks below the bid
    sell = ex.new_order(user, symbol="BTCUSDT", side="SELL", type="LIMIT", time_in_force="GTC",
                        quantity="0.01000", price=str((ask0 + 5) * Decimal("0.01")))
    buy = ex.new_order(user, symbol="BTCUSDT", side="BUY", type="LIMIT", time_in_force="GTC",
                       quantity="0.01000", price=str((bid0 - 5) * Decimal("0.01")))
    lo = hi = d.ref
    for _ in range(3000):
        clock.advance(100)
        d.step(clock.now_ms())
        lo, hi = min(lo, d.ref), max(hi, d.ref)
        bid, _, ask, _ = ex.book_top("BTCUSDT")
        assert bid < ask
        bid_top, ask_top = d.band(d.ref)
        assert mm_prices(ex, "BUY") == list(range(bid_top - 9, bid_top + 1))
        assert mm_prices(ex, "SELL") == list(range(ask_top, ask_top + 10))
    assert hi >= ask0 + 5 or lo <= bid0 - 5, "the synthetic path should cross at least one user order"
    statuses = [ex.query_order(user, "BTCUSDT", order_id=o["orderId"])["status"] for o in (sell, buy)]
    crossed = [hi >= ask0 + 5, lo <= bid0 - 5]
    for status, was_crossed in zip(statuses, crossed):
        if was_crossed:
            assert status == "FILLED"
    assert klines.klines("1m")                  # the user's fills printed trades


def test_integration_crossed_user_order_fills_at_its_price():
    ex, clock, klines = real_exchange()
    user = ex.create_account("k", "s", {"USDT": Decimal("100000"), "BTC": Decimal("1")})
    t0 = clock.now_ms()
    path = ScriptedPath([(t0, 3_000_000), (t0 + 1000, 3_000_030), (t0 + 2000, 2_999_950)])
    # No market-maker tape here: only the user's fills print, so the kline is exact.
    d = MarketDriver(ex, "BTCUSDT", path, levels=20, level_qty_steps=(100, 1000), rng_seed=9,
                     activity_prob=0, move_prints=False)
    d.step(t0)
    assert mm_prices(ex, "BUY") == list(range(2_999_981, 3_000_001))
    assert mm_prices(ex, "SELL") == list(range(3_000_001, 3_000_021))
    sell = ex.new_order(user, symbol="BTCUSDT", side="SELL", type="LIMIT", time_in_force="GTC",
                        quantity="0.02000", price="30000.25")
    buy = ex.new_order(user, symbol="BTCUSDT", side="BUY", type="LIMIT", time_in_force="GTC",
                       quantity="0.01000", price="29999.60")
    clock.advance(1000)
    d.step(clock.now_ms())
    q = ex.query_order(user, "BTCUSDT", order_id=sell["orderId"])
    assert q["status"] == "FILLED" and q["cummulativeQuoteQty"] == "600.00500000"
    assert ex.query_order(user, "BTCUSDT", order_id=buy["orderId"])["status"] == "NEW"
    clock.advance(1000)
    d.step(clock.now_ms())
    assert ex.query_order(user, "BTCUSDT", order_id=buy["orderId"])["status"] == "FILLED"
    assert mm_prices(ex, "BUY") == list(range(2_999_931, 2_999_951))
    assert mm_prices(ex, "SELL") == list(range(2_999_951, 2_999_971))
    rows = klines.klines("1m")
    assert rows[-1][2] == "30000.25000000" and rows[-1][3] == "29999.60000000" and rows[-1][8] == 2


def test_integration_candle_replay_on_sim_exchange():
    ex, clock, klines = real_exchange()
    frame = kit_candles("ETH_BTC-5m")
    # ETH/BTC ~0.09 on a 0.01 tick would be 9 ticks: replay it on this spec's grid scaled x1e5
    # (prices 9000-ish ticks) so the band has room; the path logic is grid-agnostic.
    scaled = frame.assign(**{k: frame[k] * 100_000 for k in ("open", "high", "low", "close")})
    path = CandleReplayPath(scaled, tick_size=Decimal("0.01"), step_size=Decimal("0.00001"), start_index=500,
                            sim_start_ms=clock.now_ms())
    d = MarketDriver(ex, "BTCUSDT", path, levels=20, level_qty_steps=(100, 1000), rng_seed=5)
    bars = d.seed_history(klines, n_bars=288)
    assert len(bars) == 288 and klines.klines("5m", limit=1000)[0][0] == path.start_ms - 288 * 300_000
    assert path.start_ms <= clock.now_ms() < path.start_ms + 300_000   # rounded down to the bar
    visited: dict[int, set] = {}
    for _ in range(2 * 3600):                   # two hours at one step per sim second
        d.step(clock.now_ms())
        bar = 500 + (clock.now_ms() - path.start_ms) // 300_000
        visited.setdefault(bar, set()).add(d.ref)
        bid, _, ask, _ = ex.book_top("BTCUSDT")
        assert bid < ask
        clock.advance(1000)
    bid_top, ask_top = d.band(d.ref)
    assert mm_prices(ex, "BUY") == list(range(bid_top - 19, bid_top + 1))
    assert mm_prices(ex, "SELL") == list(range(ask_top, ask_top + 20))
    assert d.ref == path.last.price_ticks
    for i in range(501, 520):                   # every bar's extremes became the reference
        assert {path.h[i], path.l[i]} <= visited[i]
