"""Bars from trades: UTC alignment, exact OHLCV, closed on time by the clock, late and future trades."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import orjson
import pytest

from abidance._core.wire import InstrumentCodec, MarketParser
from abidance.core.clock import LiveClock, TestClock
from abidance.core.events import Bar
from abidance.data.bars import INTERVALS, BarAggregator, BarHistory, parse_interval
from tests.kit import shared_data

MS = 1_000_000
S = 1_000 * MS
MIN = 60 * S
T0 = 1_610_064_000_000 * MS      # 2021-01-08 00:00:00 UTC

PARSER = MarketParser([InstrumentCodec("BTCUSDT", "0.01", "0.00001")])


def trade(t_ns: int, price: str, qty: str = "0.00100", trade_id: int = 1, parser=PARSER, symbol="BTCUSDT"):
    """A real TradeEvent (ticks/steps) parsed from a Binance trade frame; times are whole ms."""
    assert t_ns % MS == 0
    frame = orjson.dumps({"e": "trade", "E": t_ns // MS, "s": symbol, "t": trade_id, "p": price, "q": qty,
                          "T": t_ns // MS, "m": False, "M": True})
    ev = parser.parse(frame, t_ns)
    assert ev is not None, parser.last_error
    return ev


def make(interval: str = "1m", start: int = T0, **kw):
    clock = TestClock(start)
    bars: list[Bar] = []
    agg = BarAggregator("BTCUSDT", interval, clock, bars.append, **kw)
    return clock, agg, bars


# ---- intervals --------------------------------------------------------------------------

@pytest.mark.parametrize("text, seconds", [
    ("1s", 1), ("1m", 60), ("3m", 180), ("5m", 300), ("15m", 900), ("30m", 1800), ("1h", 3600), ("2h", 7200),
    ("4h", 14400), ("6h", 21600), ("8h", 28800), ("12h", 43200), ("1d", 86400), ("1w", 7 * 86400),
    ("1M", 28 * 86400)])        # calendar months: the shortest; bar_close gives each month's end
def test_parse_interval_every_binance_interval(text, seconds):
    assert parse_interval(text) == seconds * S


def test_interval_table_is_the_fifteen_supported():
    assert list(INTERVALS) == ["1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "1w",
                               "1M"]


@pytest.mark.parametrize("bad", ["", "3d", "1y", "60s", "2m", "1H", " 1m", "m", None, 60])
def test_parse_interval_when_unknown_then_value_error_naming_the_choices(bad):
    with pytest.raises(ValueError, match=r"unknown bar interval .*use one of 1s, 1m, 3m.*1d, 1w, 1M"):
        parse_interval(bad)


def test_aggregator_when_bad_interval_then_value_error():
    with pytest.raises(ValueError, match="unknown bar interval '7m'"):
        BarAggregator("BTCUSDT", "7m", TestClock(), lambda b: None)


# ---- alignment and values ---------------------------------------------------------------

def test_week_bars_open_on_monday_and_month_bars_on_the_first():
    t = T0 + 13 * 3600 * S + 37 * MIN                 # 2021-01-08 13:37, a Friday
    for interval, opens, closes in (("1w", T0 - 4 * 86400 * S, T0 + 3 * 86400 * S),       # Mon 4th .. Mon 11th
                                    ("1M", T0 - 7 * 86400 * S, T0 + 24 * 86400 * S)):     # Jan 1st .. Feb 1st
        clock, agg, bars = make(interval, start=t)
        agg.on_trade(trade(t, "39000.00"))
        assert agg.open_time == opens
        clock.advance_to(closes)
        assert [(b.open_time, b.close_time) for b in bars] == [(opens, closes)]


@pytest.mark.parametrize("interval", [i for i in INTERVALS if i not in ("1w", "1M")])
def test_bar_open_time_is_aligned_to_utc_multiples_of_the_interval(interval):
    t = T0 + 13 * 3600 * S + 37 * MIN + 41 * S + 123 * MS        # 2021-01-08 13:37:41.123
    clock, agg, bars = make(interval, start=t)
    agg.on_trade(trade(t, "39000.00"))
    iv = parse_interval(interval)
    assert agg.open_time % iv == 0 and agg.open_time <= t < agg.open_time + iv
    clock.advance_to(agg.open_time + iv)
    (bar,) = bars
    assert (bar.open_time, bar.close_time, bar.interval) == (agg.open_time - iv, agg.open_time, interval)


def test_day_bars_open_at_midnight_utc():
    t = T0 + 23 * 3600 * S + 59 * MIN
    clock, agg, bars = make("1d", start=t)
    agg.on_trade(trade(t, "39000.00"))
    assert datetime.fromtimestamp(agg.open_time / 1e9, tz=timezone.utc) == datetime(2021, 1, 8, tzinfo=timezone.utc)


def test_ohlcv_of_one_bar_exact_in_ticks_and_steps():
    clock, agg, bars = make("1m")
    for i, (sec, price, qty) in enumerate([(1, "39000.00", "0.01000"), (5, "39010.50", "0.00200"),
                                           (20, "38990.01", "0.50000"), (59, "39001.00", "0.00001")]):
        clock.advance_to(T0 + sec * S)
        agg.on_trade(trade(T0 + sec * S, price, qty, trade_id=i))
    assert bars == []
    assert agg.partial() == Bar("BTCUSDT", "1m", T0, T0 + MIN, 3_900_000, 3_901_050, 3_899_001, 3_900_100,
                                51_201, 4)
    clock.advance_to(T0 + MIN - 1)
    assert bars == []                                  # not a nanosecond early
    clock.advance_to(T0 + MIN)
    assert bars == [Bar("BTCUSDT", "1m", T0, T0 + MIN, 3_900_000, 3_901_050, 3_899_001, 3_900_100, 51_201, 4)]
    assert all(type(v) is int for v in (bars[0].open, bars[0].high, bars[0].low, bars[0].close, bars[0].volume))


def test_trade_at_exactly_close_time_belongs_to_the_next_bar():
    clock, agg, bars = make("1m")
    agg.on_trade(trade(T0 + 10 * S, "100.00"))
    agg.on_trade(trade(T0 + MIN, "101.00"))
    assert [(b.open_time, b.close, b.trades) for b in bars] == [(T0, 10_000, 1)]
    assert agg.partial().open == 10_100 and agg.open_time == T0 + MIN


# ---- closing on time --------------------------------------------------------------------

def test_before_the_first_trade_nothing_is_emitted():
    clock, agg, bars = make("1s")
    clock.advance(10 * S)
    assert bars == [] and not agg.started and agg.partial() is None


def test_empty_bars_are_emitted_on_time_carrying_the_previous_close():
    clock, agg, bars = make("1m")
    agg.on_trade(trade(T0 + 5 * S, "100.00", "0.10000"))
    agg.on_trade(trade(T0 + 6 * S, "102.00", "0.20000"))
    clock.advance_to(T0 + 3 * MIN + 30 * S)
    assert bars == [Bar("BTCUSDT", "1m", T0, T0 + MIN, 10_000, 10_200, 10_000, 10_200, 30_000, 2),
                    Bar("BTCUSDT", "1m", T0 + MIN, T0 + 2 * MIN, 10_200, 10_200, 10_200, 10_200, 0, 0),
                    Bar("BTCUSDT", "1m", T0 + 2 * MIN, T0 + 3 * MIN, 10_200, 10_200, 10_200, 10_200, 0, 0)]
    assert agg.empty_bars == 2 and agg.bars_emitted == 3
    clock.advance_to(T0 + 3 * MIN + 40 * S)
    agg.on_trade(trade(T0 + 3 * MIN + 40 * S, "99.00", "0.00100"))
    clock.advance_to(T0 + 4 * MIN)
    assert bars[-1] == Bar("BTCUSDT", "1m", T0 + 3 * MIN, T0 + 4 * MIN, 9_900, 9_900, 9_900, 9_900, 100, 1)


def test_late_trade_for_a_closed_bar_is_counted_and_ignored():
    clock, agg, bars = make("1m")
    agg.on_trade(trade(T0 + 5 * S, "100.00"))
    clock.advance_to(T0 + MIN + 50 * MS)               # the timer closed the first bar
    agg.on_trade(trade(T0 + 59 * S + 990 * MS, "500.00"))     # traded before the close, arrived after it
    assert agg.late_trades == 1 and len(bars) == 1 and bars[0].high == 10_000 and bars[0].trades == 1
    clock.advance_to(T0 + 2 * MIN)
    assert bars[1].trades == 0 and bars[1].high == 10_000          # never reopened, not leaked forward


def test_quiet_market_bars_close_on_time_and_never_twice():
    clock, agg, bars = make("1m")
    clock.advance_to(T0 + 5 * S)                              # the clock follows the feed, as live
    agg.on_trade(trade(T0 + 5 * S, "100.00"))
    clock.advance_to(T0 + 3 * MIN + 1 * S)                    # quiet market: the timers close bars 0..2
    agg.on_trade(trade(T0 + 3 * MIN + 1 * S, "110.00"))
    assert [(b.open_time - T0) // MIN for b in bars] == [0, 1, 2]
    assert [(b.close, b.trades) for b in bars] == [(10_000, 1), (10_000, 0), (10_000, 0)]
    clock.advance_to(T0 + 5 * MIN)                            # no bar twice
    assert [(b.open_time - T0) // MIN for b in bars] == [0, 1, 2, 3, 4]
    assert (bars[3].open, bars[3].trades, bars[4].trades) == (11_000, 1, 0)


def test_gap_longer_than_max_empty_bars_is_skipped_and_counted():
    clock, agg, bars = make("1s", max_empty_bars=5)
    agg.on_trade(trade(T0, "100.00"))
    agg.on_trade(trade(T0 + 3600 * S, "100.50"))              # the feed jumps an hour ahead of the clock
    assert len(bars) == 1 and agg.skipped_bars == 3599 and agg.open_time == T0 + 3600 * S
    clock.advance_to(T0 + 1 * S)                               # one second later, on event time
    assert bars[-1].open_time == T0 + 3600 * S and bars[-1].open == 10_050


def test_grace_waits_past_close_time_for_stragglers():
    clock, agg, bars = make("1m", grace_ns=200 * MS)
    clock.advance_to(T0 + 5 * S)
    agg.on_trade(trade(T0 + 5 * S, "100.00"))
    clock.advance_to(T0 + MIN + 100 * MS)
    assert bars == []
    agg.on_trade(trade(T0 + 59 * S + 950 * MS, "101.00"))      # 150 ms late on the wire: still counted
    clock.advance_to(T0 + MIN + 200 * MS)
    assert len(bars) == 1 and bars[0].trades == 2 and bars[0].close == 10_100 and agg.late_trades == 0


def test_bars_close_by_trades_when_event_time_runs_faster_than_the_clock():
    """An accelerated replay: event time far ahead of the clock; trades close the bars,
    the timer (on event time, measured by the skew) never closes one early."""
    clock, agg, bars = make("1s")
    for i in range(300):                       # 300 event-seconds in 3 clock-seconds
        clock.advance_to(T0 + i * 10 * MS)
        agg.on_trade(trade(T0 + i * S + 500 * MS, "100.00"))
    assert len(bars) == 299 and all(b.trades == 1 for b in bars) and agg.late_trades == 0


def test_callback_error_is_contained_and_bars_keep_coming():
    clock = TestClock(T0)
    seen = []

    def on_bar(bar):
        seen.append(bar)
        raise RuntimeError("strategy bug")

    agg = BarAggregator("BTCUSDT", "1s", clock, on_bar)
    agg.on_trade(trade(T0, "100.00"))
    clock.advance_to(T0 + 3 * S)
    assert len(seen) == 3 and agg.callback_errors == 3


def test_stop_cancels_the_timer():
    clock, agg, bars = make("1s")
    agg.on_trade(trade(T0, "100.00"))
    agg.stop()
    clock.advance_to(T0 + 5 * S)
    assert bars == [] and not agg.started
    assert BarAggregator.close is BarAggregator.stop        # the DataEngine's name for it


def test_live_clock_closes_a_quiet_bar_on_time():
    async def run():
        clock = LiveClock()
        bars: list[Bar] = []
        done = asyncio.Event()
        agg = BarAggregator("BTCUSDT", "1s", clock, lambda b: (bars.append(b), done.set()))
        now = clock.time_ns() // MS * MS
        agg.on_trade(trade(now, "100.00"))
        await asyncio.wait_for(done.wait(), 2.0)
        late_by = clock.time_ns() - bars[0].close_time
        agg.stop()
        return bars, late_by

    bars, late_by = asyncio.run(run())
    assert bars[0].trades == 1 and bars[0].close_time % S == 0
    assert 0 <= late_by < 200 * MS


# ---- real data --------------------------------------------------------------------------

@pytest.mark.parametrize("interval", ["1s", "1m"])
def test_bars_from_real_binance_trades_match_a_pandas_resample(interval):
    pd = pytest.importorskip("pandas")
    np = pytest.importorskip("numpy")
    pytest.importorskip("pyarrow")
    df = pd.read_parquet(shared_data("binance-nt", "btcusdt-trades.parquet"))
    # BTCUSDT in 2021: tick 0.01, step 0.000001; the floats are those decimals to within 1e-9.
    ticks = np.round(df["price"].to_numpy() * 100).astype(np.int64)
    steps = np.round(df["quantity"].to_numpy() * 1_000_000).astype(np.int64)
    ts_ms = df["timestamp"].astype("datetime64[ms, UTC]").astype("int64").to_numpy()
    parser = MarketParser([InstrumentCodec("BTCUSDT", "0.01", "0.000001")])

    clock = TestClock(int(ts_ms[0]) * MS)
    bars: list[Bar] = []
    agg = BarAggregator("BTCUSDT", interval, clock, bars.append)
    for tid, p, q, t, maker in zip(df["trade_id"], df["price"], df["quantity"], ts_ms, df["buyer_maker"]):
        frame = orjson.dumps({"e": "trade", "E": int(t), "s": "BTCUSDT", "t": int(tid), "p": f"{p:.2f}",
                              "q": f"{q:.6f}", "T": int(t), "m": maker == "True", "M": True})
        clock.advance_to(int(t) * MS)          # the live order of things: time moves, then the trade lands
        ev = parser.parse(frame, clock.time_ns())
        assert ev is not None, parser.last_error
        agg.on_trade(ev)
    iv = parse_interval(interval)
    clock.advance_to((int(ts_ms[-1]) * MS // iv + 1) * iv)

    frame = pd.DataFrame({"ticks": ticks, "steps": steps}, index=df["timestamp"])
    rs = frame.resample(pd.Timedelta(iv, "ns"), label="left", closed="left")
    expected = pd.DataFrame({"open": rs["ticks"].first(), "high": rs["ticks"].max(), "low": rs["ticks"].min(),
                             "close": rs["ticks"].last(), "volume": rs["steps"].sum(), "trades": rs["ticks"].count()})
    expected["close"] = expected["close"].ffill()          # empty bars carry the previous close
    for col in ("open", "high", "low"):
        expected[col] = expected[col].fillna(expected["close"])
    expected = expected.astype("int64")
    expected.index = expected.index.as_unit("ns")
    got = pd.DataFrame([(b.open, b.high, b.low, b.close, b.volume, b.trades) for b in bars],
                       columns=list(expected.columns),
                       index=pd.to_datetime([b.open_time for b in bars], unit="ns", utc=True))
    assert agg.late_trades == 0 and agg.trades == len(df) == int(expected["trades"].sum())
    pd.testing.assert_frame_equal(got, expected, check_names=False, check_freq=False)


# ---- history ----------------------------------------------------------------------------

def bar(i: int, symbol="BTCUSDT", interval="1m") -> Bar:
    return Bar(symbol, interval, T0 + i * MIN, T0 + (i + 1) * MIN, 100 + i, 100 + i, 100 + i, 100 + i, 1, 1)


def test_history_keeps_the_last_capacity_bars_per_series_oldest_first():
    h = BarHistory(capacity=3)
    h.extend(bar(i) for i in range(5))
    h.add(bar(0, interval="5m"))
    h.add(bar(0, symbol="ETHUSDT"))
    assert h.count("BTCUSDT", "1m") == 3 and len(h) == 5
    assert h.last("BTCUSDT", "1m", 2) == [bar(3), bar(4)]
    assert h.last("BTCUSDT", "1m", 10) == [bar(2), bar(3), bar(4)]
    assert h.last("BTCUSDT", "1m", 0) == [] and h.last("XRPUSDT", "1m", 3) == []
    assert h.latest("BTCUSDT", "1m") == bar(4) and h.latest("BTCUSDT", "1h") is None
    assert h.closes("BTCUSDT", "1m", 3) == [102, 103, 104]
    assert h.series() == [("BTCUSDT", "1m"), ("BTCUSDT", "5m"), ("ETHUSDT", "1m")]


def test_history_ignores_duplicate_and_out_of_order_bars():
    h = BarHistory(capacity=10)
    h.add(bar(1))
    h.add(bar(1))
    h.add(bar(0))
    assert h.count("BTCUSDT", "1m") == 1 and h.ignored == 2


def test_history_fed_by_the_aggregator():
    clock = TestClock(T0)
    h = BarHistory(capacity=2)
    agg = BarAggregator("BTCUSDT", "1s", clock, h.add)
    agg.on_trade(trade(T0, "100.00"))
    clock.advance_to(T0 + 3 * S)
    assert [b.open_time for b in h.last("BTCUSDT", "1s", 5)] == [T0 + S, T0 + 2 * S]


def test_history_capacity_must_be_positive():
    with pytest.raises(ValueError):
        BarHistory(0)
