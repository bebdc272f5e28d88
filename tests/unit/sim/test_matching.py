"""MatchingEngine: price-time priority, order types, time in force, stops, market-maker self-match."""

import pytest

from abidance.exchange.sim.book import Book
from abidance.exchange.sim.errors import BinanceError
from abidance.exchange.sim.matching import MM_ACCOUNT_ID, MatchingEngine, Order
from abidance.exchange.sim.symbols import default_symbols

USER, OTHER = 1, 2


class Harness:
    """An engine on BTCUSDT recording its trades and order updates."""

    def __init__(self):
        self.now = 1000
        self.trades = []
        self.updates = []
        self.book = Book()
        self.engine = MatchingEngine(default_symbols()[0], self.book, lambda: self.now,
                                     lambda t, maker, taker: self.trades.append((t, maker, taker)),
                                     lambda o, x: self.updates.append((o.order_id, x, o.status)))

    def order(self, side, qty, price=0, *, type="LIMIT", tif="GTC", account=USER, stop=0) -> Order:
        self.now += 1
        o = Order(self.engine.next_order_id(), f"c{self.engine.last_order_id}", account, side, type, tif, price, qty,
                  stop_price_ticks=stop, symbol="BTCUSDT")
        self.engine.submit(o)
        return o

    def fills(self):
        return [(t.price_ticks, t.qty_steps, maker.order_id, taker.order_id) for t, maker, taker in self.trades]


@pytest.fixture
def h():
    return Harness()


def test_limit_when_two_makers_share_a_price_then_the_earlier_fills_first(h):
    first = h.order("SELL", 5, 100, account=OTHER)
    second = h.order("SELL", 5, 100, account=OTHER)
    taker = h.order("BUY", 7, 100)
    assert h.fills() == [(100, 5, first.order_id, taker.order_id), (100, 2, second.order_id, taker.order_id)]
    assert (first.status, second.status, taker.status) == ("FILLED", "PARTIALLY_FILLED", "FILLED")
    assert list(h.book.asks.levels[100].orders) == [second] and h.book.asks.levels[100].total == 3


def test_limit_when_better_price_arrives_later_then_it_fills_before_older_worse_price(h):
    worse = h.order("SELL", 5, 101, account=OTHER)
    better = h.order("SELL", 5, 100, account=OTHER)
    h.order("BUY", 6, 101)
    assert [(p, q, m) for p, q, m, _ in h.fills()] == [(100, 5, better.order_id), (101, 1, worse.order_id)]


def test_limit_when_crossing_then_trades_at_maker_price_and_remainder_rests(h):
    h.order("SELL", 3, 100, account=OTHER)
    taker = h.order("BUY", 10, 105)
    assert h.fills()[0][:2] == (100, 3)
    assert taker.status == "PARTIALLY_FILLED" and taker.executed_qty_steps == 3
    assert h.book.bids.levels[105].total == 7
    assert taker.cum_quote_units == 100 * 3 * h.engine.spec.quote_per_tick_step


def test_limit_when_not_crossing_then_rests_with_new_and_no_trades(h):
    h.order("SELL", 3, 101, account=OTHER)
    buy = h.order("BUY", 2, 100)
    assert h.trades == [] and buy.status == "NEW" and buy.is_working
    assert h.updates[-1] == (buy.order_id, "NEW", "NEW")


def test_ioc_when_partially_filled_then_remainder_expired(h):
    h.order("SELL", 3, 100, account=OTHER)
    ioc = h.order("BUY", 5, 100, tif="IOC")
    assert ioc.status == "EXPIRED" and ioc.executed_qty_steps == 3
    assert h.updates[-1] == (ioc.order_id, "EXPIRED", "EXPIRED")
    assert h.book.bids.best_price() is None


def test_fok_when_not_fully_fillable_then_expired_without_any_trade(h):
    h.order("SELL", 3, 100, account=OTHER)
    h.order("SELL", 3, 102, account=OTHER)
    fok = h.order("BUY", 5, 101, tif="FOK")
    assert fok.status == "EXPIRED" and fok.executed_qty_steps == 0 and h.trades == []
    assert h.book.asks.levels[100].total == 3


def test_fok_when_fully_fillable_then_filled_across_levels(h):
    h.order("SELL", 3, 100, account=OTHER)
    h.order("SELL", 3, 102, account=OTHER)
    fok = h.order("BUY", 5, 102, tif="FOK")
    assert fok.status == "FILLED" and [f[:2] for f in h.fills()] == [(100, 3), (102, 2)]


def test_market_when_book_deep_enough_then_sweeps_levels_best_first(h):
    h.order("BUY", 2, 99, account=OTHER)
    h.order("BUY", 2, 98, account=OTHER)
    sell = h.order("SELL", 3, type="MARKET")
    assert sell.status == "FILLED" and [f[:2] for f in h.fills()] == [(99, 2), (98, 1)]


def test_market_when_book_too_thin_then_fills_what_exists_and_expires(h):
    h.order("BUY", 2, 99, account=OTHER)
    sell = h.order("SELL", 5, type="MARKET")
    assert sell.status == "EXPIRED" and sell.executed_qty_steps == 2


def test_plan_market_when_quote_budget_then_whole_steps_it_pays_for(h):
    h.order("SELL", 10, 100, account=OTHER)
    h.order("SELL", 10, 200, account=OTHER)
    k = h.engine.spec.quote_per_tick_step
    # 10 steps at 100 cost 1000k; the remaining 650k buys 3 steps at 200 (600k), 50k left over.
    assert h.engine.plan_market("BUY", quote_units=1650 * k) == (13, 1600 * k)
    assert h.engine.plan_market("BUY", qty_steps=12) == (12, 1400 * k)
    assert h.engine.plan_market("BUY", qty_steps=50) == (20, 3000 * k)
    assert h.engine.plan_market("SELL", qty_steps=5) == (0, 0)


def test_limit_maker_when_it_would_cross_then_2010_and_nothing_happens(h):
    h.order("SELL", 3, 100, account=OTHER)
    with pytest.raises(BinanceError) as info:
        h.order("BUY", 1, 100, type="LIMIT_MAKER")
    assert (info.value.code, info.value.msg) == (-2010, "Order would immediately match and take.")
    assert h.trades == [] and h.book.bids.best_price() is None


def test_limit_maker_when_passive_then_rests(h):
    h.order("SELL", 3, 100, account=OTHER)
    maker = h.order("BUY", 1, 99, type="LIMIT_MAKER")
    assert maker.status == "NEW" and h.book.bids.best_price() == 99


def test_stop_loss_sell_when_last_price_falls_to_stop_then_triggers_as_limit(h):
    h.order("BUY", 1, 100, account=OTHER)
    h.order("SELL", 1, type="MARKET", account=OTHER)            # last = 100
    stop = h.order("SELL", 2, 95, type="STOP_LOSS_LIMIT", stop=97)
    assert stop.status == "NEW" and not stop.is_working and h.engine.stops == [stop]
    assert stop.working_time == -1 and h.book.asks.best_price() is None
    h.order("BUY", 1, 98, account=OTHER)
    h.order("SELL", 1, type="MARKET", account=OTHER)            # last = 98: not yet
    assert not stop.is_working
    h.order("BUY", 5, 96, account=OTHER)
    h.order("SELL", 1, type="MARKET", account=OTHER)            # last = 96 <= 97: trigger
    assert stop.is_working and h.engine.stops == []
    assert (stop.order_id, "NEW", "NEW") in h.updates
    assert stop.status == "FILLED" and h.fills()[-1][:2] == (96, 2)


def test_stop_loss_buy_when_last_price_rises_to_stop_then_triggers(h):
    h.order("SELL", 1, 100, account=OTHER)
    h.order("BUY", 1, type="MARKET", account=OTHER)
    stop = h.order("BUY", 1, 106, type="STOP_LOSS_LIMIT", stop=105)
    h.order("SELL", 1, 104, account=OTHER)
    h.order("BUY", 1, type="MARKET", account=OTHER)
    assert not stop.is_working
    h.order("SELL", 1, 105, account=OTHER)
    h.order("BUY", 1, type="MARKET", account=OTHER)
    assert stop.is_working and stop.status == "NEW" and h.book.bids.best_price() == 106


def test_take_profit_sell_when_last_price_rises_to_stop_then_triggers(h):
    h.order("SELL", 1, 100, account=OTHER)
    h.order("BUY", 1, type="MARKET", account=OTHER)
    tp = h.order("SELL", 1, 110, type="TAKE_PROFIT_LIMIT", stop=110)
    h.order("SELL", 1, 110, account=OTHER)
    h.order("BUY", 1, type="MARKET", account=OTHER)
    assert tp.is_working and h.book.asks.best_price() == 110


def test_take_profit_buy_when_last_price_falls_to_stop_then_triggers(h):
    h.order("BUY", 1, 100, account=OTHER)
    h.order("SELL", 1, type="MARKET", account=OTHER)
    tp = h.order("BUY", 1, 90, type="TAKE_PROFIT_LIMIT", stop=90)
    h.order("BUY", 1, 91, account=OTHER)
    h.order("SELL", 1, type="MARKET", account=OTHER)
    assert not tp.is_working
    h.order("BUY", 1, 90, account=OTHER)
    h.order("SELL", 1, type="MARKET", account=OTHER)
    assert tp.is_working


def test_stop_when_a_sweep_passes_through_its_stop_then_it_triggers_even_if_last_differs(h):
    h.order("BUY", 1, 100, account=OTHER)
    h.order("SELL", 1, type="MARKET", account=OTHER)
    stop = h.order("SELL", 1, 50, type="STOP_LOSS_LIMIT", stop=97)
    h.order("BUY", 1, 98, account=OTHER)
    h.order("BUY", 1, 96, account=OTHER)
    h.order("SELL", 2, type="MARKET", account=OTHER)            # trades 98 then 96
    assert stop.is_working


def test_stop_when_triggered_with_ioc_and_no_liquidity_then_expired(h):
    h.order("BUY", 1, 100, account=OTHER)
    h.order("SELL", 1, type="MARKET", account=OTHER)
    stop = h.order("SELL", 1, 99, type="STOP_LOSS_LIMIT", tif="IOC", stop=99)
    h.order("BUY", 1, 99, account=OTHER)
    h.order("SELL", 1, type="MARKET", account=OTHER)
    assert stop.status == "EXPIRED" and [u[1] for u in h.updates if u[0] == stop.order_id] == [
        "NEW", "NEW", "EXPIRED"]


def test_would_trigger_when_stop_already_crossed_then_true(h):
    h.order("BUY", 1, 100, account=OTHER)
    h.order("SELL", 1, type="MARKET", account=OTHER)
    probe = Order(0, "", USER, "SELL", "STOP_LOSS_LIMIT", "GTC", 90, 1, stop_price_ticks=101)
    assert h.engine.would_trigger(probe)
    probe.stop_price_ticks = 99
    assert not h.engine.would_trigger(probe)


def test_market_maker_when_taking_its_own_quote_then_expires_it_instead_of_trading(h):
    own = h.order("SELL", 5, 100, account=MM_ACCOUNT_ID)
    user = h.order("SELL", 5, 101, account=USER)
    take = h.order("BUY", 3, 101, tif="IOC", account=MM_ACCOUNT_ID)
    assert own.status == "EXPIRED" and own.executed_qty_steps == 0
    assert h.fills() == [(101, 3, user.order_id, take.order_id)]
    assert 100 not in h.book.asks.levels


def test_market_maker_when_self_trade_allowed_for_one_order_then_its_quote_prints(h):
    own = h.order("SELL", 5, 100, account=MM_ACCOUNT_ID)
    h.now += 1
    take = Order(h.engine.next_order_id(), "", MM_ACCOUNT_ID, "BUY", "LIMIT", "IOC", 100, 3, symbol="BTCUSDT")
    h.engine.submit(take, mm_self_trade=True)
    assert h.fills() == [(100, 3, own.order_id, take.order_id)] and own.status == "PARTIALLY_FILLED"
    h.order("BUY", 1, 100, tif="IOC", account=MM_ACCOUNT_ID)       # the flag did not stick
    assert own.status == "EXPIRED"


def test_user_when_trading_with_itself_then_self_trade_is_allowed(h):
    h.order("SELL", 2, 100, account=USER)
    h.order("BUY", 2, 100, account=USER)
    assert len(h.trades) == 1


def test_trade_ids_when_trades_print_then_increment_from_one(h):
    h.order("SELL", 1, 100, account=OTHER)
    h.order("SELL", 1, 101, account=OTHER)
    h.order("BUY", 2, 101)
    assert [t.id for t, _, _ in h.trades] == [1, 2]
    assert h.trades[0][0].buyer_is_maker is False and h.engine.last_price == 101


def test_cancel_when_order_open_then_removed_else_false(h):
    rest = h.order("BUY", 1, 90)
    assert h.engine.cancel(rest) and rest.status == "CANCELED"
    assert h.book.bids.best_price() is None
    assert not h.engine.cancel(rest)


# ---- market stops, trailing stops ---------------------------------------------------------------

def last_at(h, price):
    """One trade at `price` between two other accounts."""
    h.order("SELL", 1, price, account=OTHER)
    h.order("BUY", 1, price, account=OTHER + 1)


def stop(h, side, type_, *, price=0, stop=0, trailing=0, qty=1, tif="GTC"):
    h.now += 1
    o = Order(h.engine.next_order_id(), "", USER, side, type_, tif, price, qty, stop_price_ticks=stop,
              trailing_delta=trailing, symbol="BTCUSDT")
    h.engine.submit(o)
    return o


def test_stop_loss_market_when_triggered_then_sweeps_like_market_and_expires_the_rest(h):
    last_at(h, 100)
    sl = stop(h, "SELL", "STOP_LOSS", stop=97, qty=5)
    h.order("BUY", 2, 96, account=OTHER)
    h.order("BUY", 1, 90, account=OTHER)
    h.order("SELL", 1, 97, account=OTHER + 1)
    h.order("BUY", 1, 97, account=OTHER)                       # last 97: the stop fires
    assert [f[:2] for f in h.fills() if f[3] == sl.order_id] == [(96, 2), (90, 1)]
    assert (sl.status, sl.executed_qty_steps, sl.expiry_reason) == ("EXPIRED", 3, "INSUFFICIENT_LIQUIDITY")


def test_trailing_stop_loss_limit_buy_when_faq_scenario_a_then_triggers_at_5_percent_above_the_low(h):
    # Binance's trailing-stop FAQ scenario A: stop 44,000, delta 500; tracking starts at the first
    # trade >= 44,000, the low then falls to 42,000 and 44,100 = 42,000 * 1.05 triggers.
    last_at(h, 40000)
    o = stop(h, "BUY", "STOP_LOSS_LIMIT", price=45000, stop=44000, trailing=500)
    for p in (37000, 43999):
        last_at(h, p)
    assert o.trailing_time == -1
    last_at(h, 44000)
    assert (o.trailing_time, o.trail_ref) == (h.now, 44000)
    for p in (45000, 46000, 42000, 44099):
        last_at(h, p)
    assert not o.is_working and o.trail_ref == 42000
    last_at(h, 44100)
    assert o.is_working and o.status in ("NEW", "FILLED", "PARTIALLY_FILLED")


def test_trailing_stop_when_no_stop_price_then_tracks_from_the_last_price_at_placement(h):
    # FAQ scenario E: SELL, delta 700, last 40,000; the high rises to 45,500 and 42,315 triggers.
    last_at(h, 40000)
    o = stop(h, "SELL", "STOP_LOSS_LIMIT", price=39000, trailing=700)
    assert (o.trailing_time, o.trail_ref) == (o.time, 40000)
    for p in (42000, 39500, 45500, 42316):
        last_at(h, p)
    assert not o.is_working and o.trail_ref == 45500
    last_at(h, 42315)
    assert o.is_working


def test_trailing_take_profit_sell_when_price_keeps_rising_then_reference_follows_the_high(h):
    # FAQ scenario D: stop 42,000, delta 750: 46,500 * 0.925 = 43,012.5 -> 43,012 ticks triggers, 43,013 not.
    last_at(h, 40000)
    o = stop(h, "SELL", "TAKE_PROFIT_LIMIT", price=41000, stop=42000, trailing=750)
    for p in (41500, 39000, 42000, 45000, 44000, 46500, 43013):
        last_at(h, p)
    assert not o.is_working and o.trail_ref == 46500
    last_at(h, 43012)
    assert o.is_working


# ---- self-trade prevention ----------------------------------------------------------------------

def own(h, side, qty, price, mode="NONE", type="LIMIT", tif="GTC"):
    h.now += 1
    o = Order(h.engine.next_order_id(), "", USER, side, type, tif, price, qty, stp_mode=mode, symbol="BTCUSDT")
    h.engine.submit(o)
    return o


@pytest.fixture
def prevented(h):
    matches = []
    h.engine._on_prevent = matches.append
    return matches


def test_stp_expire_taker_when_meeting_own_maker_then_taker_expires_in_match_and_maker_stays(h, prevented):
    maker = own(h, "BUY", 5, 100)
    taker = own(h, "SELL", 3, 100, "EXPIRE_TAKER")
    assert (taker.status, taker.prevented_qty_steps, maker.status) == ("EXPIRED_IN_MATCH", 3, "NEW")
    assert h.trades == [] and h.book.bids.levels[100].total == 5
    assert [(m.id, m.taker_steps, m.maker_steps) for m in prevented] == [(0, 3, 0)]


def test_stp_expire_maker_when_own_makers_first_then_they_expire_and_taker_trades_on(h, prevented):
    mine = own(h, "BUY", 2, 101)
    theirs = h.order("BUY", 2, 100, account=OTHER)
    taker = own(h, "SELL", 3, 100, "EXPIRE_MAKER")
    assert (mine.status, mine.prevented_qty_steps) == ("EXPIRED_IN_MATCH", 2)
    assert h.fills() == [(100, 2, theirs.order_id, taker.order_id)]
    assert taker.status == "PARTIALLY_FILLED" and h.book.asks.levels[100].total == 1
    assert 101 not in h.book.bids.levels


def test_stp_expire_both_when_meeting_own_maker_then_both_expire(h, prevented):
    maker = own(h, "BUY", 1, 100)
    taker = own(h, "SELL", 3, 100, "EXPIRE_BOTH")
    assert (maker.status, taker.status) == ("EXPIRED_IN_MATCH", "EXPIRED_IN_MATCH")
    assert (maker.prevented_qty_steps, taker.prevented_qty_steps) == (1, 3) and h.book.bids.best_price() is None


@pytest.mark.parametrize("mode", ["DECREMENT", "TRANSFER"])
def test_stp_decrement_when_taker_smaller_then_both_lose_its_size_and_only_taker_expires(h, prevented, mode):
    # STP FAQ scenario G (TRANSFER inside one account behaves the same).
    maker = own(h, "BUY", 6, 100)
    taker = own(h, "SELL", 2, 100, mode)
    assert (maker.status, maker.prevented_qty_steps, maker.remaining_steps) == ("NEW", 2, 4)
    assert (taker.status, taker.prevented_qty_steps) == ("EXPIRED_IN_MATCH", 2)
    assert maker.prevented_match_id == taker.prevented_match_id == 0 and prevented[0].mode == "DECREMENT"
    assert h.book.bids.levels[100].total == 4 and list(h.book.bids.levels[100].orders) == [maker]


def test_stp_market_taker_when_own_maker_expired_then_market_expires_for_liquidity(h, prevented):
    # STP FAQ scenario F: the maker ends EXPIRED_IN_MATCH, the MARKET taker EXPIRED.
    maker = own(h, "BUY", 1, 100)
    taker = own(h, "SELL", 1, 0, "EXPIRE_MAKER", type="MARKET")
    assert (maker.status, taker.status, taker.expiry_reason) == ("EXPIRED_IN_MATCH", "EXPIRED",
                                                                 "INSUFFICIENT_LIQUIDITY")


def test_stp_mode_none_when_meeting_own_maker_then_trades(h, prevented):
    own(h, "BUY", 1, 100)
    own(h, "SELL", 1, 100, "NONE")
    assert len(h.trades) == 1 and prevented == []


# ---- amend ---------------------------------------------------------------------------------------

def test_amend_when_reduced_then_keeps_its_place_and_the_level_shrinks(h):
    first = h.order("BUY", 5, 100)
    second = h.order("BUY", 5, 100, account=OTHER)
    assert h.engine.amend(first, 2) is False
    assert list(h.book.bids.levels[100].orders) == [first, second] and h.book.bids.levels[100].total == 7
    h.order("SELL", 3, 100, account=OTHER + 1)
    assert (first.status, second.executed_qty_steps) == ("FILLED", 1)


def test_amend_when_reduced_to_what_executed_then_off_the_book(h):
    maker = h.order("BUY", 5, 100)
    h.order("SELL", 2, 100, account=OTHER)
    assert h.engine.amend(maker, 2) is True
    assert maker.status == "EXPIRED" and h.book.bids.best_price() is None
