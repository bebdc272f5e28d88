"""RiskEngine: sizing to the step, every denial published with its reason, accepted orders sent
to execution and counted open until they end, circuit breakers, the kill switch (endpoint and
file), reduce-only, and re-pricing after a limit timeout."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from abidance.core import topics
from abidance.core.events import EquityPoint
from abidance.exchange.binance.ids import ClientOrderIds
from abidance.execution.orders import Order
from abidance.risk.engine import RiskEngine
from abidance.risk.sizing import SizingError, notional_budget, steps_for
from tests.unit.node_kit import (S, SYMBOL, T0, USDT_INSTRUMENTS, FakePortfolio, Recorder, book, fill,
                                 new_bus_clock, order_event, risk_settings, signal, ticks, trade)

MARK = "50000.00"


class Rig:
    """A started RiskEngine with fake execution endpoints; everything it publishes recorded."""

    def __init__(self, state_dir, portfolio=None, *, max_slippage_bps=0, limit_timeout_s=0.0, **settings):
        self.bus, self.clock = new_bus_clock()
        self.rec = Recorder(self.bus, topics.RISK_DECISIONS, topics.TRADING_STATE, topics.ALERTS)
        self.requests, self.cancels = [], []
        self.bus.register(topics.EXECUTE, self.requests.append)
        self.bus.register(topics.CANCEL, self.cancels.append)
        self.portfolio = portfolio if portfolio is not None else FakePortfolio()
        self.ids = ClientOrderIds("t", seed=7)
        self.risk = RiskEngine(self.bus, self.clock, risk_settings(**settings), USDT_INSTRUMENTS, self.portfolio,
                               self.ids, limit_timeout_s, state_dir, max_slippage_bps)
        self.risk.start()

    def mark(self, price: str = MARK, symbol: str = SYMBOL) -> None:
        self.bus.publish(topics.TRADES, trade(price, symbol, ts_ns=self.clock.time_ns()))

    def send(self, sig):
        self.bus.publish(topics.SIGNALS, sig)
        return self.rec[topics.RISK_DECISIONS][-1]

    @property
    def states(self) -> list[tuple[str, str, str]]:
        return [(e.state, e.previous, e.source) for e in self.rec[topics.TRADING_STATE]]

    @property
    def open_orders(self) -> int:
        return self.risk.pre_trade.open_orders


@pytest.fixture
def rig(tmp_path):
    def make(*args, **kw):
        r = Rig(tmp_path, *args, **kw)
        return r
    return make


def equity(value: str) -> EquityPoint:
    return EquityPoint(D(value), D(value), D(0), D(0), D(0), D(0), D(0), T0)


# ---- sizing ----------------------------------------------------------------------------------


@pytest.mark.parametrize("settings, portfolio, sig, qty", [
    # 20 USDT at 50000 = 0.0004 BTC = 40 steps of 0.00001
    ({}, {}, {}, 40),
    # 5 % of 1234.56 = 61.728 USDT -> 0.00123456 BTC -> 123 whole steps
    ({"sizing": "fixed_fraction", "fraction": 0.05}, {"equity": "1234.56"}, {}, 123),
    # risk 50 bps of 10000 = 50 USDT over a 1000 USDT stop distance = 0.05 BTC
    ({"sizing": "volatility", "volatility_risk_bps": 50, "max_order_notional": "5000",
      "max_gross_exposure": "10000"}, {}, {"stop_loss": ticks("49000.00")}, 5000),
    # Kelly 2p - 1 = 0.2 of 1000 = 200 USDT = 0.004 BTC
    ({"sizing": "kelly", "max_order_notional": "1000"}, {"equity": "1000"}, {"confidence": 0.6}, 400),
    # Kelly 0.8 capped at kelly_cap 0.25: 250 USDT
    ({"sizing": "kelly", "max_order_notional": "1000"}, {"equity": "1000"}, {"confidence": 0.9}, 500),
    # never more than the cash there is: 10 USDT -> 20 steps
    ({"min_confidence": 0.0}, {"cash": "10"}, {}, 20),
])
def test_buy_is_sized_by_mode_and_rounded_down_to_the_step(rig, settings, portfolio, sig, qty):
    r = rig(FakePortfolio(**portfolio), **settings)
    r.mark()
    decision = r.send(signal("BUY", **sig))
    assert (decision.accepted, decision.reason, decision.quantity) == (True, "ACCEPTED", qty), decision.message
    [req] = r.requests
    assert (req.order_type, req.side, req.quantity, req.price, req.time_in_force) == ("MARKET", "BUY", qty, 0, "")
    assert req.client_order_id == decision.client_order_id and r.ids.is_ours(req.client_order_id)


def test_market_buy_is_sized_at_the_ask_of_a_ready_book(rig):
    r = rig()
    r.bus.publish(topics.BOOKS, book([("49990.00", "1")], [("50010.00", "1")]))
    decision = r.send(signal("BUY"))
    assert decision.quantity == 39        # 20 / 50010 = 0.000399920 BTC


def test_sell_is_sized_to_the_whole_position_in_steps(rig):
    r = rig(FakePortfolio(positions={SYMBOL: "0.0012345"}))      # fee dust below one step stays
    r.mark()
    decision = r.send(signal("SELL"))
    [req] = r.requests
    assert decision.accepted and (req.side, req.quantity, req.reduce_only) == ("SELL", 123, True)


def test_limit_signal_becomes_a_gtc_limit_order_with_the_timeout_and_exits(rig):
    r = rig(limit_timeout_s=30.0)
    r.mark()
    decision = r.send(signal("BUY", price=ticks("49900.00"), stop_loss=ticks("48000.00"),
                             take_profit=ticks("52000.00"), trailing_bps=150))
    [req] = r.requests
    assert decision.accepted and decision.price == ticks("49900.00")
    assert (req.order_type, req.time_in_force, req.price, req.timeout_s) == ("LIMIT", "GTC", 4_990_000, 30.0)
    assert (req.stop_loss, req.take_profit, req.trailing_bps, req.quantity) == (4_800_000, 5_200_000, 150, 40)


def test_sizing_functions_directly():
    s = risk_settings(sizing="kelly", kelly_cap=0.25)
    assert notional_budget("kelly", s, D("1000"), 0.55, D("100"), None) == D("100.00")
    with pytest.raises(SizingError) as err:
        notional_budget("martingale", s, D("1000"), 0.9, D("100"), None)
    assert err.value.reason == "BAD_SIZING"
    assert steps_for(D("20"), D("50000"), D("0.00001")) == 40
    assert steps_for(D("0"), D("50000"), D("0.00001")) == steps_for(D("20"), D("0"), D("0.00001")) == 0


# ---- denials ---------------------------------------------------------------------------------


@pytest.mark.parametrize("settings, portfolio, sig, reason", [
    ({"min_confidence": 0.5}, {}, {"confidence": 0.3}, "LOW_CONFIDENCE"),
    ({}, {}, {"side": "SELL"}, "NO_POSITION"),
    ({}, {"cash": "0"}, {}, "SIZE_ZERO"),
    ({"sizing": "volatility"}, {}, {}, "NO_STOP"),
    ({"sizing": "kelly"}, {}, {"confidence": 0.5}, "NO_EDGE"),
    ({"max_order_notional": "10"}, {}, {}, "MAX_ORDER_NOTIONAL"),
    ({"fixed_quote": "4"}, {}, {}, "NOTIONAL_BELOW_MIN"),            # the exchange's 5 USDT minimum
    ({"max_position": {SYMBOL: D("0.0003")}}, {}, {}, "MAX_POSITION"),
    ({}, {}, {"symbol": "ETHBTC"}, "UNKNOWN_SYMBOL"),
    ({}, {}, {"price": ticks("60000.00")}, "PRICE_BAND"),             # 20 % above the mark: fat finger
])
def test_denied_signal_publishes_the_reason_and_sends_nothing(rig, settings, portfolio, sig, reason):
    r = rig(FakePortfolio(**portfolio), **settings)
    r.mark()
    decision = r.send(signal(**{"side": "BUY", **sig}))
    assert (decision.accepted, decision.reason, decision.client_order_id) == (False, reason, "")
    assert decision.message and r.requests == [] and r.risk.denied == 1 and r.open_orders == 0


def test_no_reference_price_before_any_market_data(rig):
    r = rig()
    decision = r.send(signal("BUY"))
    assert (decision.accepted, decision.reason) == (False, "NO_REFERENCE_PRICE")
    r.bus.publish(topics.BOOKS, book([("49990.00", "1")], [("50010.00", "1")]))
    assert r.send(signal("BUY")).accepted


def test_a_one_sided_book_falls_back_to_the_last_trade(rig):
    r = rig()
    r.bus.publish(topics.BOOKS, book([("49990.00", "1")], []))
    assert r.send(signal("BUY")).reason == "NO_REFERENCE_PRICE"
    r.mark()
    assert r.send(signal("BUY")).quantity == 40


def test_a_book_that_is_no_longer_ready_is_not_a_reference(rig):
    from abidance.core.events import BookStatusChanged
    r = rig()
    r.bus.publish(topics.BOOKS, book([("49990.00", "1")], [("50010.00", "1")]))
    r.bus.publish(topics.BOOK_STATUS, BookStatusChanged(SYMBOL, False, "gap", T0))
    assert r.send(signal("BUY")).reason == "NO_REFERENCE_PRICE"


def test_market_order_that_would_slip_too_far_is_denied(rig):
    r = rig(max_slippage_bps=10)
    # 10 steps at the touch, the rest 20 bps higher: 40 steps average about 15 bps worse
    r.bus.publish(topics.BOOKS, book([("49990.00", "1")], [("50000.00", "0.0001"), ("50100.00", "1")]))
    decision = r.send(signal("BUY"))
    assert (decision.accepted, decision.reason, decision.quantity) == (False, "SLIPPAGE", 40)
    assert "more than 10 bps" in decision.message and r.requests == []


def test_market_order_larger_than_the_book_is_denied(rig):
    r = rig(max_slippage_bps=10)
    r.bus.publish(topics.BOOKS, book([("49990.00", "1")], [("50000.00", "0.0001")]))
    decision = r.send(signal("BUY"))
    assert (decision.accepted, decision.reason) == (False, "BOOK_TOO_THIN")
    assert decision.message == "the book holds 10 of 40 steps"


def test_market_order_within_the_slippage_limit_is_accepted(rig):
    r = rig(max_slippage_bps=10)
    r.bus.publish(topics.BOOKS, book([("49990.00", "1")], [("50000.00", "0.0001"), ("50010.00", "1")]))
    assert r.send(signal("BUY")).accepted and len(r.requests) == 1


# ---- open orders -------------------------------------------------------------------------------


def test_accepted_order_counts_as_open_until_a_terminal_order_event(rig):
    r = rig(max_open_orders=1)
    r.mark()
    first = r.send(signal("BUY"))
    assert first.accepted and r.open_orders == 1
    assert r.send(signal("BUY")).reason == "MAX_OPEN_ORDERS"
    r.bus.publish(topics.ORDER_EVENTS, order_event(first.client_order_id, "PARTIALLY_FILLED", filled=10))
    assert r.open_orders == 1
    r.bus.publish(topics.ORDER_EVENTS, order_event(first.client_order_id, "FILLED", filled=40))
    assert r.open_orders == 0
    r.bus.publish(topics.ORDER_EVENTS, order_event(first.client_order_id, "FILLED", filled=40))   # repeated
    assert r.open_orders == 0
    assert r.send(signal("BUY")).accepted


@pytest.mark.parametrize("status", ["CANCELED", "REJECTED", "EXPIRED"])
def test_every_terminal_status_frees_the_open_order(rig, status):
    r = rig(max_open_orders=1)
    r.mark()
    cid = r.send(signal("BUY")).client_order_id
    r.bus.publish(topics.ORDER_EVENTS, order_event(cid, status))
    assert r.open_orders == 0


# ---- trading state -----------------------------------------------------------------------------


@pytest.mark.parametrize("points, source", [
    (["1000", "950", "900"], "breaker:drawdown_limit"),
    (["1000", "960", "950"], "breaker:daily_loss_limit"),
])
def test_equity_breaker_halts_and_says_so(rig, points, source):
    r = rig(max_drawdown="100", daily_loss_limit="50" if "daily" in source else "0")
    r.mark()
    for p in points[:-1]:
        r.bus.publish(topics.EQUITY, equity(p))
    assert r.risk.trading_state == "ACTIVE" and r.states == []
    r.bus.publish(topics.EQUITY, equity(points[-1]))
    assert r.states == [("HALTED", "ACTIVE", source)]
    assert r.risk.pre_trade.halt_reason.name == source.split(":")[1].upper()
    [alert] = r.rec.alerts("trading_halted")
    assert alert.level == "critical"
    assert r.send(signal("BUY")).reason == "TRADING_HALTED"
    r.bus.publish(topics.EQUITY, equity("800"))           # still below: no second announcement
    assert len(r.states) == 1


def test_consecutive_losses_breaker_halts_on_the_fill_that_reaches_the_limit(rig):
    pf = FakePortfolio(consecutive_losses=2)
    r = rig(pf, max_consecutive_losses=3)
    r.bus.publish(topics.FILLS, fill("SELL", "0.0004", "49000"))
    assert r.risk.trading_state == "ACTIVE"
    pf.consecutive_losses = 3
    r.bus.publish(topics.FILLS, fill("SELL", "0.0004", "48000", trade_id=2))
    assert r.states == [("HALTED", "ACTIVE", "breaker:consecutive_losses")]
    assert r.rec[topics.TRADING_STATE][0].reason == "3 losing trades in a row"


def test_error_rate_breaker_counts_rejections_within_a_minute(rig):
    r = rig(max_errors_per_minute=3)
    for i in range(2):
        r.bus.publish(topics.ORDER_EVENTS, order_event(f"x{i}", "REJECTED"))
    r.clock.advance(61 * S)                     # those two leave the window
    for i in range(2, 4):
        r.bus.publish(topics.ORDER_EVENTS, order_event(f"x{i}", "REJECTED"))
    assert r.risk.trading_state == "ACTIVE"
    r.bus.publish(topics.ORDER_EVENTS, order_event("x4", "CANCELED"))        # not an error
    assert r.risk.trading_state == "ACTIVE"
    r.bus.publish(topics.ORDER_EVENTS, order_event("x5", "REJECTED"))    # 3 in the window: at the limit
    assert r.risk.trading_state == "ACTIVE"
    r.bus.publish(topics.ORDER_EVENTS, order_event("x6", "REJECTED"))    # more than the limit
    assert r.states == [("HALTED", "ACTIVE", "breaker:error_rate")]


def test_stale_data_moves_to_reducing_and_fresh_data_back_to_active(rig):
    r = rig(stale_data_s=10.0)
    r.mark()                                    # data at T0
    r.clock.advance_to(T0 + 10 * S)             # exactly 10 s old: not yet stale
    assert r.risk.trading_state == "ACTIVE"
    r.clock.advance_to(T0 + 10 * S + S // 2)    # the 0.5 s poll sees it
    assert r.states == [("REDUCING", "ACTIVE", "breaker:stale_data")]
    assert r.send(signal("BUY")).reason == "REDUCING_ONLY"
    r.clock.advance_to(T0 + 30 * S)
    assert len(r.states) == 1                   # said once
    r.mark()
    r.clock.advance_to(T0 + 30 * S + S // 2)
    assert r.states[-1] == ("ACTIVE", "REDUCING", "breaker:stale_data")
    assert r.send(signal("BUY")).accepted


def test_stale_data_breaker_does_not_lift_a_state_the_operator_set(rig):
    r = rig(stale_data_s=10.0)
    r.mark()
    r.clock.advance_to(T0 + 11 * S)
    r.risk.set_reducing("operator wants to wind down")
    r.mark()
    r.clock.advance_to(T0 + 12 * S)
    assert r.risk.trading_state == "REDUCING" and r.risk.state_source == "operator"


def test_stale_data_breaker_does_not_override_a_halt(rig):
    r = rig(stale_data_s=10.0)
    r.mark()
    r.risk.halt("operator")
    r.clock.advance_to(T0 + 20 * S)
    assert r.risk.trading_state == "HALTED" and r.states == [("HALTED", "ACTIVE", "operator")]


def test_kill_switch_halts_and_cancels_every_open_order(rig):
    r = rig()
    r.mark()
    assert r.send(signal("BUY")).accepted
    r.bus.send(topics.KILL, "operator pressed the red button")
    assert r.cancels == ["*"]
    [changed] = r.rec[topics.TRADING_STATE]
    assert (changed.state, changed.previous, changed.reason, changed.source) == \
        ("HALTED", "ACTIVE", "operator pressed the red button", "kill_switch")
    assert r.rec.alerts("trading_halted")[0].level == "critical"
    assert r.send(signal("BUY")).reason == "TRADING_HALTED"
    assert r.send(signal("SELL", confidence=1.0)).accepted is False
    r.risk.resume()
    assert r.risk.trading_state == "ACTIVE" and r.states[-1] == ("ACTIVE", "HALTED", "operator")


def test_kill_switch_without_an_execution_engine_still_halts(tmp_path):
    bus, clock = new_bus_clock()
    risk = RiskEngine(bus, clock, risk_settings(), USDT_INSTRUMENTS, FakePortfolio(), ClientOrderIds(seed=1),
                      state_dir=tmp_path)
    risk.start()
    bus.send(topics.KILL, "test")
    assert risk.trading_state == "HALTED"


def test_kill_file_in_the_state_dir_is_detected_by_the_poll_timer(rig, tmp_path):
    r = rig()
    r.clock.advance(S)
    assert r.risk.trading_state == "ACTIVE"
    (tmp_path / "KILL").touch()
    r.clock.advance(S // 2)
    assert r.cancels == ["*"] and r.states == [("HALTED", "ACTIVE", "kill_switch")]
    assert str(tmp_path / "KILL") in r.rec[topics.TRADING_STATE][0].reason
    r.clock.advance(5 * S)
    assert r.cancels == ["*"]                   # once, not on every poll


def test_kill_file_off_when_not_configured(rig, tmp_path):
    r = rig(kill_switch_file=None)
    (tmp_path / "KILL").touch()
    r.clock.advance(2 * S)
    assert r.risk.trading_state == "ACTIVE" and r.risk.kill_file is None


def test_reducing_denies_a_buy_and_allows_selling_the_position(rig):
    pf = FakePortfolio()
    r = rig(pf)
    r.mark()
    r.bus.publish(topics.FILLS, fill("BUY", "0.001", MARK))
    pf.positions[SYMBOL] = D("0.001")
    r.risk.set_reducing("wind down")
    assert r.states == [("REDUCING", "ACTIVE", "operator")]
    assert r.send(signal("BUY")).reason == "REDUCING_ONLY"
    sell = r.send(signal("SELL"))
    assert sell.accepted and sell.quantity == 100 and r.requests[-1].reduce_only


def test_start_reducing_allows_selling_what_was_held_before_the_start(rig):
    r = rig(FakePortfolio(positions={SYMBOL: "0.001"}), start_reducing=True)
    r.mark()
    assert r.states == [("REDUCING", "ACTIVE", "config")]
    assert r.send(signal("BUY")).reason == "REDUCING_ONLY"
    assert r.send(signal("SELL")).accepted


def test_halt_is_stronger_than_reducing(rig):
    r = rig()
    r.risk.halt("stop")
    r.risk.set_reducing("later")
    assert r.risk.trading_state == "HALTED"


# ---- replace after a limit timeout ------------------------------------------------------------


def timed_out_order(filled: int = 10) -> Order:
    o = Order("t-old-1", "s1", SYMBOL, "BUY", "LIMIT", 40, ticks("49000.00"), "GTC", T0, filled=filled)
    o.status = "CANCELED"
    return o


def test_timed_out_limit_order_is_replaced_at_the_touch_for_the_rest(rig):
    r = rig(limit_timeout_s=15.0)
    r.bus.publish(topics.BOOKS, book([("49990.00", "1")], [("50010.00", "1")]))
    r.bus.publish(topics.REPLACE, timed_out_order())
    decision = r.rec[topics.RISK_DECISIONS][-1]
    [req] = r.requests
    assert decision.accepted and decision.client_order_id == req.client_order_id
    assert (req.order_type, req.side, req.quantity, req.price, req.time_in_force) == \
        ("LIMIT", "BUY", 30, ticks("50010.00"), "GTC")
    assert (req.parent_id, req.timeout_s, req.strategy_id) == ("t-old-1", 15.0, "s1")
    assert r.open_orders == 1


def test_replace_is_checked_like_any_order(rig):
    r = rig()
    r.mark()
    r.risk.halt("stop")
    r.bus.publish(topics.REPLACE, timed_out_order())
    decision = r.rec[topics.RISK_DECISIONS][-1]
    assert (decision.accepted, decision.reason) == (False, "TRADING_HALTED") and r.requests == []


def test_replace_without_a_price_is_denied(rig):
    r = rig()
    r.bus.publish(topics.REPLACE, timed_out_order())
    assert r.rec[topics.RISK_DECISIONS][-1].reason == "NO_REFERENCE_PRICE" and r.requests == []


# ---- with the real portfolio -----------------------------------------------------------------


def test_with_the_real_portfolio_a_round_trip_buys_then_sells_the_position(tmp_path):
    from abidance.portfolio import Portfolio

    bus, clock = new_bus_clock()
    requests = []
    bus.register(topics.EXECUTE, requests.append)
    pf = Portfolio(bus, clock, "USDT", USDT_INSTRUMENTS, {"USDT": D("1000")}, equity_interval_s=0)
    risk = RiskEngine(bus, clock, risk_settings(), USDT_INSTRUMENTS, pf, ClientOrderIds(seed=3), state_dir=tmp_path)
    pf.start()
    risk.start()
    bus.publish(topics.TRADES, trade(MARK))
    bus.publish(topics.SIGNALS, signal("BUY"))
    [buy] = requests
    assert (buy.side, buy.quantity) == ("BUY", 40)
    bought = fill("BUY", "0.0004", MARK, cid=buy.client_order_id, fee="0.02")
    pf.apply_fill(bought)                   # what the execution engine does before publishing a fill
    bus.publish(topics.FILLS, bought)
    bus.publish(topics.ORDER_EVENTS, order_event(buy.client_order_id, "FILLED", filled=40))
    assert pf.position(SYMBOL) == D("0.0004") and risk.pre_trade.position(risk.slots[SYMBOL]) == 40
    bus.publish(topics.SIGNALS, signal("SELL"))
    sell = requests[-1]
    assert (sell.side, sell.quantity, sell.reduce_only) == ("SELL", 40, True)
