"""Klines and 24 h tickers against hand-built trades: Binance's exact shapes and strings."""

import calendar
from decimal import Decimal

import pytest

from abidance.exchange.sim.aggregates import (INTERVAL_MS, KLINE_INTERVALS, Bar, KlineAggregator, Ticker24h,
                                              bar_open, fmt, next_open)

H = 3_600_000
T0 = 1_700_000_000_000 // H * H          # an hour boundary: aligned for every interval up to 1h


def utc_ms(*ymdhms):
    return calendar.timegm((*ymdhms, 0, 0, 0)[:6]) * 1000


def trade(tid, t, price, qty, buyer_is_maker=False):
    quote = Decimal(price) * Decimal(qty)
    return {"id": tid, "price": price, "qty": qty, "quote_qty": format(quote, "f"), "time": t,
            "buyer_is_maker": buyer_is_maker}


# ---- interval arithmetic -----------------------------------------------------------------------

def test_bar_open_is_utc_aligned():
    t = utc_ms(2024, 1, 3, 13, 47, 12) + 345
    assert bar_open("1s", t) == utc_ms(2024, 1, 3, 13, 47, 12)
    assert bar_open("1m", t) == utc_ms(2024, 1, 3, 13, 47, 0)
    assert bar_open("15m", t) == utc_ms(2024, 1, 3, 13, 45, 0)
    assert bar_open("4h", t) == utc_ms(2024, 1, 3, 12, 0, 0)
    assert bar_open("1d", t) == utc_ms(2024, 1, 3, 0, 0, 0)
    assert bar_open("1w", t) == utc_ms(2024, 1, 1, 0, 0, 0)          # 2024-01-01 was a Monday
    assert bar_open("1w", utc_ms(2024, 1, 7, 23, 59, 59)) == utc_ms(2024, 1, 1, 0, 0, 0)
    assert bar_open("1M", t) == utc_ms(2024, 1, 1, 0, 0, 0)
    assert bar_open("3d", t) % (3 * 86_400_000) == 0


def test_close_time_is_next_open_minus_one():
    assert next_open("1m", T0) - 1 == T0 + 59_999
    assert next_open("1M", utc_ms(2024, 2, 1, 0, 0, 0)) == utc_ms(2024, 3, 1, 0, 0, 0)
    assert next_open("1M", utc_ms(2024, 12, 1, 0, 0, 0)) == utc_ms(2025, 1, 1, 0, 0, 0)
    assert set(INTERVAL_MS) | {"1M"} == set(KLINE_INTERVALS)


def test_fmt_is_binance_fixed_decimal():
    assert fmt(Decimal("1E+2")) == "100.00000000"
    assert fmt(Decimal("0.123456785")) == "0.12345678"       # half-even beyond 8 places
    assert fmt(Decimal("-95.96"), 3) == "-95.960"


# ---- klines ------------------------------------------------------------------------------------

@pytest.fixture
def agg():
    a = KlineAggregator("BTCUSDT")
    a.on_trade(trade(1, T0 + 1_000, "100.5", "2"))
    a.on_trade(trade(2, T0 + 30_000, "101", "1", buyer_is_maker=True))
    a.on_trade(trade(3, T0 + 59_999, "99.25", "0.5"))
    # no trade in [T0+60s, T0+120s): an empty bar
    a.on_trade(trade(4, T0 + 150_000, "102", "3", buyer_is_maker=True))
    a.advance(T0 + 200_000)
    return a


def test_1m_klines_rows_exact(agg):
    rows = agg.klines("1m")
    assert rows == [
        [T0, "100.50000000", "101.00000000", "99.25000000", "99.25000000", "3.50000000", T0 + 59_999,
         "351.62500000", 3, "2.50000000", "250.62500000", "0"],
        # trade-less: o = h = l = c = previous close, zero volume
        [T0 + 60_000, "99.25000000", "99.25000000", "99.25000000", "99.25000000", "0.00000000", T0 + 119_999,
         "0.00000000", 0, "0.00000000", "0.00000000", "0"],
        [T0 + 120_000, "102.00000000", "102.00000000", "102.00000000", "102.00000000", "3.00000000",
         T0 + 179_999, "306.00000000", 1, "0.00000000", "0.00000000", "0"],
        # the bar in progress (advanced to T0+200s), still empty
        [T0 + 180_000, "102.00000000", "102.00000000", "102.00000000", "102.00000000", "0.00000000",
         T0 + 239_999, "0.00000000", 0, "0.00000000", "0.00000000", "0"],
    ]


def test_larger_intervals_aggregate_the_same_trades(agg):
    assert [r[0] for r in agg.klines("3m")] == [T0, T0 + 180_000]   # T0+150s is still in the first 3m
    assert agg.klines("3m")[0][1:6] == ["100.50000000", "102.00000000", "99.25000000", "102.00000000", "6.50000000"]
    for interval in ("5m", "15m", "30m", "1h"):
        rows = agg.klines(interval)
        assert rows == [[T0, "100.50000000", "102.00000000", "99.25000000", "102.00000000", "6.50000000",
                         T0 + INTERVAL_MS[interval] - 1, "657.62500000", 4, "2.50000000", "250.62500000", "0"]]


def test_1s_klines_fill_empty_seconds(agg):
    rows = agg.klines("1s", start_time=T0, limit=3)
    assert [r[0] for r in rows] == [T0 + 1_000, T0 + 2_000, T0 + 3_000]
    assert rows[0][1:6] == ["100.50000000"] * 4 + ["2.00000000"]
    assert rows[1][1:6] == ["100.50000000"] * 4 + ["0.00000000"] and rows[1][8] == 0
    assert rows[1][6] == T0 + 2_999
    assert len(agg.klines("1s", limit=1000)) == 200           # T0+1s .. T0+200s


def test_klines_start_end_limit_semantics(agg):
    opens = lambda rows: [r[0] for r in rows]                 # noqa: E731
    assert opens(agg.klines("1m", limit=2)) == [T0 + 120_000, T0 + 180_000]         # the most recent
    assert opens(agg.klines("1m", start_time=T0 + 1, limit=2)) == [T0 + 60_000, T0 + 120_000]
    assert opens(agg.klines("1m", end_time=T0 + 60_000)) == [T0, T0 + 60_000]       # open <= endTime
    assert opens(agg.klines("1m", start_time=T0 + 60_000, end_time=T0 + 150_000)) == [T0 + 60_000, T0 + 120_000]
    assert agg.klines("1m", start_time=T0 + 10 * H) == []


def test_first_trade_opens_a_trade_less_bar(agg):
    agg.on_trade(trade(5, T0 + 190_000, "105", "1"))
    row = agg.klines("1m")[-1]
    assert row[:6] == [T0 + 180_000, "105.00000000", "105.00000000", "105.00000000", "105.00000000", "1.00000000"]


def test_kline_stream_payload_and_close_events(agg):
    k = agg.current("1m")
    assert k == {"t": T0 + 180_000, "T": T0 + 239_999, "s": "BTCUSDT", "i": "1m", "f": -1, "L": -1,
                 "o": "102.00000000", "c": "102.00000000", "h": "102.00000000", "l": "102.00000000",
                 "v": "0.00000000", "n": 0, "x": False, "q": "0.00000000", "V": "0.00000000",
                 "Q": "0.00000000", "B": "0"}
    closed = [k for iv, k in agg.drain_closed() if iv == "1m"]
    assert [k["t"] for k in closed] == [T0, T0 + 60_000, T0 + 120_000]
    assert all(k["x"] for k in closed)
    assert closed[0]["f"] == 1 and closed[0]["L"] == 3 and closed[0]["n"] == 3
    assert agg.drain_closed() == []                          # each close is reported once
    agg.advance(T0 + 240_000)
    assert [(iv, k["t"]) for iv, k in agg.drain_closed()] == \
        [("1s", T0 + 200_000 + 1000 * i) for i in range(40)] + [("1m", T0 + 180_000)]


def test_on_close_callback_gets_each_closed_bar_once():
    seen = []
    a = KlineAggregator("X", intervals=("1m",), on_close=lambda iv, k: seen.append((iv, k["t"], k["x"])))
    a.on_trade(trade(1, T0, "1", "1"))
    a.advance(T0 + 60_000)
    a.advance(T0 + 60_001)
    a.advance(T0 + 180_000)
    assert seen == [("1m", T0, True), ("1m", T0 + 60_000, True), ("1m", T0 + 120_000, True)]


def test_clock_callable_advances_on_query():
    now = [T0]
    a = KlineAggregator("X", intervals=("1m",), clock_ms=lambda: now[0])
    a.on_trade(trade(1, T0, "1", "1"))
    now[0] = T0 + 3 * 60_000
    assert [r[0] for r in a.klines("1m")] == [T0, T0 + 60_000, T0 + 120_000, T0 + 180_000]


def test_seeded_history_rolls_up_and_fills_gaps():
    a = KlineAggregator("X", intervals=("1s", "1m", "5m", "1h"))
    d = Decimal
    bars = [Bar(T0, d(10), d(12), d(9), d(11), d(5), d(50), 7),
            Bar(T0 + 60_000, d(11), d(11), d(8), d(8), d(1), d(9), 2),
            # T0+2m missing in the source: emitted as a trade-less bar
            Bar(T0 + 180_000, d(8), d(13), d(8), d(13), d(2), d(22), 1)]
    assert a.seed(bars, "1m") == 3
    assert a.drain_closed() == []                  # history is not reported as live closes
    rows = a.klines("1m")
    assert [r[0] for r in rows] == [T0, T0 + 60_000, T0 + 120_000, T0 + 180_000]
    assert rows[2][1:6] == ["8.00000000"] * 4 + ["0.00000000"]
    assert a.klines("5m") == [[T0, "10.00000000", "13.00000000", "8.00000000", "13.00000000", "8.00000000",
                               T0 + 299_999, "81.00000000", 10, "0.00000000", "0.00000000", "0"]]
    assert a.klines("1h")[0][1:5] == ["10.00000000", "13.00000000", "8.00000000", "13.00000000"]
    assert a.klines("1s") == []                    # 1 m history cannot make 1 s bars
    a.on_trade(trade(9, T0 + 240_500, "14", "1"))  # the live market continues the same 5m/1h bars
    assert a.klines("5m")[0][1:6] == ["10.00000000", "14.00000000", "8.00000000", "14.00000000", "9.00000000"]
    assert a.klines("1s")[0][0] == T0 + 240_000


def test_idle_gap_is_bounded_by_max_bars():
    a = KlineAggregator("X", intervals=("1s",), max_bars=100)
    a.on_trade(trade(1, T0, "1", "1"))
    a.on_trade(trade(2, T0 + 10 * 86_400_000, "2", "1"))     # ten idle days of 1 s bars
    rows = a.klines("1s", limit=1000)
    assert len(rows) == 101 and rows[-1][0] == T0 + 10 * 86_400_000
    assert rows[-2][1] == "1.00000000"


def test_unknown_interval_rejected():
    with pytest.raises(ValueError):
        KlineAggregator("X", intervals=("2m",))


# ---- 24 h ticker -------------------------------------------------------------------------------

def ticker_trades(t):
    t.on_trade(trade(1, 1_000, "10", "1"))
    t.on_trade(trade(2, 2_000, "12", "2", buyer_is_maker=True))
    t.on_trade(trade(3, 3_000, "9", "1"))
    t.on_trade(trade(4, 5_000, "11", "0.5"))


def test_ticker_24h_exact_numbers():
    t = Ticker24h("BTCUSDT", window_ms=10_000, bucket_ms=1,
                  book_top=lambda: ("10.99", "3", "11.01", "4.5"))
    ticker_trades(t)
    assert t.snapshot(10_500) == {
        "symbol": "BTCUSDT", "priceChange": "1.00000000", "priceChangePercent": "10.000",
        "weightedAvgPrice": "10.77777778", "prevClosePrice": "10.00000000", "lastPrice": "11.00000000",
        "lastQty": "0.50000000", "bidPrice": "10.99000000", "bidQty": "3.00000000", "askPrice": "11.01000000",
        "askQty": "4.50000000", "openPrice": "10.00000000", "highPrice": "12.00000000", "lowPrice": "9.00000000",
        "volume": "4.50000000", "quoteVolume": "48.50000000", "openTime": 500, "closeTime": 10_500,
        "firstId": 1, "lastId": 4, "count": 4}


def test_ticker_window_rolls():
    t = Ticker24h("BTCUSDT", window_ms=10_000, bucket_ms=1)
    ticker_trades(t)
    s = t.snapshot(11_500)                        # trade 1 (t=1000) left the window
    assert (s["openPrice"], s["highPrice"], s["lowPrice"], s["prevClosePrice"]) == \
        ("12.00000000", "12.00000000", "9.00000000", "10.00000000")
    assert (s["priceChange"], s["priceChangePercent"], s["volume"], s["quoteVolume"], s["weightedAvgPrice"]) == \
        ("-1.00000000", "-8.333", "3.50000000", "38.50000000", "11.00000000")
    assert (s["firstId"], s["lastId"], s["count"]) == (2, 4, 3)
    assert t.snapshot(12_500)["highPrice"] == "11.00000000"      # the 12 left: the max deque moved on
    s = t.snapshot(30_000)                        # nothing traded in the window
    assert (s["openPrice"], s["highPrice"], s["lowPrice"], s["lastPrice"], s["prevClosePrice"]) == \
        ("11.00000000",) * 5
    assert (s["volume"], s["count"], s["firstId"], s["lastId"], s["priceChange"], s["weightedAvgPrice"]) == \
        ("0.00000000", 0, -1, -1, "0.00000000", "0.00000000")
    assert (s["bidPrice"], s["askQty"]) == ("0.00000000", "0.00000000")   # no book given


def test_ticker_buckets_count_a_second_that_overlaps_the_window():
    t = Ticker24h("X", window_ms=10_000)          # 1 s buckets
    t.on_trade(trade(1, 1_200, "10", "1"))
    t.on_trade(trade(2, 1_900, "11", "1"))
    assert t.snapshot(11_500)["count"] == 2       # bucket [1000, 2000) overlaps [1500, 11500]
    assert t.snapshot(12_000)["count"] == 0


def test_ticker_seeded_history_and_empty_ticker():
    assert Ticker24h("X").snapshot(0)["lastPrice"] == "0.00000000"
    t = Ticker24h("X", window_ms=10 * 60_000)
    d = Decimal
    t.seed([Bar(0, d(10), d(12), d(9), d(11), d(5), d(50), 7), Bar(60_000, d(11), d(15), d(11), d(14), d(1), d(14), 2)],
           "1m")
    s = t.snapshot(120_000)
    assert (s["openPrice"], s["highPrice"], s["lowPrice"], s["lastPrice"], s["volume"], s["count"]) == \
        ("10.00000000", "15.00000000", "9.00000000", "14.00000000", "6.00000000", 9)
    assert (s["firstId"], s["lastId"]) == (-1, -1)
