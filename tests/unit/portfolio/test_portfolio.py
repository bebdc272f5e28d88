"""Portfolio: known answers to the unit in exact decimals (average cost, fees in quote/base/BNB),
equity and drawdown from marks, balance drift alerts, restart state, and no float anywhere."""

from __future__ import annotations

import json
from dataclasses import astuple
from decimal import Decimal as D

import orjson
import pytest

from abidance._core.wire import InstrumentCodec, MarketParser
from abidance.core import topics
from abidance.core.bus import MessageBus
from abidance.core.clock import TestClock
from abidance.core.component import ComponentState
from abidance.core.events import (Alert, Balance, BalanceDelta, BalanceUpdate, EquityPoint, Fill, PositionUpdate,
                                  Reconciliation)
from abidance.exchange.binance.instruments import parse_symbol
from abidance.portfolio import Portfolio

S = 1_000_000_000
T0 = 1_700_000_000 * S


def instrument(symbol, base, quote, tick, step):
    return parse_symbol({
        "symbol": symbol, "status": "TRADING", "baseAsset": base, "quoteAsset": quote, "baseAssetPrecision": 8,
        "quoteAssetPrecision": 8, "orderTypes": ["LIMIT", "MARKET"],
        "filters": [{"filterType": "PRICE_FILTER", "tickSize": tick, "minPrice": tick, "maxPrice": "1000000"},
                    {"filterType": "LOT_SIZE", "stepSize": step, "minQty": step, "maxQty": "9000"}]})


INSTRUMENTS = {
    "BTCUSDT": instrument("BTCUSDT", "BTC", "USDT", "0.01", "0.00001"),
    "BNBUSDT": instrument("BNBUSDT", "BNB", "USDT", "0.01", "0.001"),
    "ETHBTC": instrument("ETHBTC", "ETH", "BTC", "0.00001", "0.0001"),
}
PARSER = MarketParser([InstrumentCodec(s, i.price, i.qty) for s, i in INSTRUMENTS.items()])


class Rig:
    """A started portfolio on a bus, with everything it publishes recorded by topic."""

    def __init__(self, balances=None, start=True, **kw):
        self.bus = MessageBus()
        self.clock = TestClock(T0)
        self.seen: dict[str, list] = {}
        for topic in (topics.POSITIONS, topics.EQUITY, topics.ALERTS):
            self.bus.subscribe(topic, self.seen.setdefault(topic, []).append)
        if balances is None:
            balances = {"USDT": D("20000")}
        self.pf = Portfolio(self.bus, self.clock, "USDT", INSTRUMENTS, balances, **kw)
        if start:
            self.pf.start()
        self.trade_id = 0

    def fill(self, side, qty, price, fee="0", fee_asset="USDT", symbol="BTCUSDT"):
        self.trade_id += 1
        # The execution engine books a fill in the portfolio before it publishes it.
        self.pf.apply_fill(Fill(f"c{self.trade_id}", "s1", symbol, side, D(qty), D(price), D(fee), fee_asset,
                                self.trade_id, False, self.clock.time_ns()))

    def mark(self, price: str, symbol="BTCUSDT"):
        self.trade_id += 1
        frame = orjson.dumps({"e": "trade", "E": 1, "s": symbol, "t": self.trade_id, "p": price, "q": "1",
                              "T": 1, "m": False, "M": True})
        ev = PARSER.parse(frame, self.clock.time_ns())
        assert ev is not None, PARSER.last_error
        self.bus.publish(topics.TRADES, ev)

    def alerts(self, code=None) -> list[Alert]:
        return [a for a in self.seen[topics.ALERTS] if code is None or a.code == code]


def assert_all_decimal(*values):
    """Walk values (dicts, lists, dataclasses) and check money is Decimal and no float hides anywhere."""
    for v in values:
        if isinstance(v, dict):
            assert_all_decimal(*v.keys(), *v.values())
        elif isinstance(v, (list, tuple, set)):
            assert_all_decimal(*v)
        elif hasattr(v, "__dataclass_fields__"):
            assert_all_decimal(*astuple(v))
        else:
            assert not isinstance(v, float), f"a float: {v!r}"


# ---- positions, average cost, realised PnL, fees ----------------------------------------

def test_buy_buy_more_partial_sell_sell_all_with_quote_fees_known_answers():
    r = Rig()
    pf = r.pf
    r.fill("BUY", "0.1", "40000", "4")
    assert (pf.position("BTCUSDT"), pf.avg_price("BTCUSDT"), pf.cash("USDT")) == (D("0.1"), D("40000"), D("15996"))
    assert (pf.realized_pnl("BTCUSDT"), pf.fees_paid(), pf.cash("BTC")) == (D("-4"), D("4"), D("0.1"))

    r.fill("BUY", "0.3", "44000", "13.2")               # avg = (4000 + 13200) / 0.4 = 43000
    assert (pf.position("BTCUSDT"), pf.avg_price("BTCUSDT")) == (D("0.4"), D("43000"))
    assert (pf.cash(), pf.realized_pnl(), pf.fees_paid()) == (D("2782.8"), D("-17.2"), D("17.2"))

    r.fill("SELL", "0.1", "45000", "4.5")              # + 4500 - 4300 - 4.5
    assert (pf.position("BTCUSDT"), pf.avg_price("BTCUSDT")) == (D("0.3"), D("43000"))
    assert (pf.cash(), pf.realized_pnl(), pf.fees_paid()) == (D("7278.3"), D("178.3"), D("21.7"))
    assert pf.round_trips == 0

    r.mark("46000.00")
    assert pf.unrealized_pnl("BTCUSDT") == D("900") and pf.equity() == D("21078.3")
    assert pf.equity() == D("20000") + pf.realized_pnl() + pf.unrealized_pnl()

    r.fill("SELL", "0.3", "42000", "12.6")             # + 12600 - 12900 - 12.6
    assert (pf.position("BTCUSDT"), pf.avg_price("BTCUSDT"), pf.cash("BTC")) == (D("0"), D("0"), D("0"))
    assert (pf.cash(), pf.realized_pnl(), pf.unrealized_pnl()) == (D("19865.7"), D("-134.3"), D("0"))
    assert pf.equity() == D("19865.7") == D("20000") + pf.realized_pnl()
    assert (pf.round_trips, pf.losses, pf.consecutive_losses) == (1, 1, 1)

    updates = r.seen[topics.POSITIONS]
    assert len(updates) == 4
    assert updates[1] == PositionUpdate("s1", "BTCUSDT", D("0.4"), D("43000"), D("-17.2"), D("0"), T0)
    assert updates[2].unrealized_pnl == D("0")          # no mark yet at that fill: valued at entry
    assert updates[3] == PositionUpdate("s1", "BTCUSDT", D("0"), D("0"), D("-134.3"), D("0"), T0)


def test_fee_in_base_asset_reduces_the_quantity_received_and_is_charged_at_the_fill_price():
    r = Rig()
    pf = r.pf
    r.fill("BUY", "0.1", "40000", "0.0001", "BTC")
    assert (pf.position("BTCUSDT"), pf.avg_price("BTCUSDT"), pf.cash("BTC")) == (D("0.0999"), D("40000"), D("0.0999"))
    assert (pf.cash(), pf.realized_pnl(), pf.fees_paid()) == (D("16000"), D("-4"), D("4"))
    assert pf.equity() == D("19996") and pf.unmarked() == ["BTCUSDT"]       # valued at entry, flagged

    r.fill("SELL", "0.0999", "41000", "4.0959")        # + 4095.9 - 3996 - 4.0959
    assert pf.position("BTCUSDT") == 0 and pf.realized_pnl() == D("91.8041")
    assert pf.cash() == D("20091.8041") and pf.fees_paid() == D("8.0959")
    assert (pf.round_trips, pf.wins, pf.consecutive_losses) == (1, 1, 0)


def test_fee_in_base_asset_on_a_sell_leaves_the_position_with_the_sold_quantity():
    r = Rig()
    pf = r.pf
    r.fill("BUY", "0.2", "40000")
    r.fill("SELL", "0.1", "41000", "0.0001", "BTC")    # 0.1001 leaves: (41000-40000)*0.1 - 40000*0.0001
    assert pf.position("BTCUSDT") == D("0.0999") and pf.cash("BTC") == D("0.0999")
    assert pf.realized_pnl() == D("96") and pf.fees_paid() == D("4.1")
    assert pf.cash() == D("16100")
    r.mark("41000.00")
    assert pf.unrealized_pnl() == D("99.9")
    assert pf.equity() == D("20195.9") == D("20000") + pf.realized_pnl() + pf.unrealized_pnl()


def test_fee_in_bnb_with_a_bnb_mark_is_charged_at_that_mark():
    r = Rig({"USDT": D("20000"), "BNB": D("1")})
    pf = r.pf
    r.mark("300.00", "BNBUSDT")
    r.fill("BUY", "0.1", "40000", "0.01", "BNB")
    assert (pf.position("BTCUSDT"), pf.avg_price("BTCUSDT")) == (D("0.1"), D("40000"))
    assert (pf.realized_pnl(), pf.fees_paid(), pf.fees_unpriced) == (D("-3.00"), D("3.00"), {})
    assert pf.cash("BNB") == D("0.99") and pf.cash() == D("16000")


def test_fee_in_bnb_without_a_bnb_mark_is_tracked_unpriced_and_reported():
    r = Rig({"USDT": D("20000"), "BNB": D("1")})
    pf = r.pf
    r.fill("BUY", "0.1", "40000", "0.01", "BNB")
    r.fill("SELL", "0.1", "40000", "0.0075", "BNB")
    assert (pf.realized_pnl(), pf.fees_paid()) == (D("0"), D("0"))
    assert pf.fees_unpriced == {"BNB": D("0.0175")} and pf.stats()["fees_unpriced"] == {"BNB": D("0.0175")}
    assert pf.cash("BNB") == D("0.9825")
    assert (pf.round_trips, pf.wins, pf.losses, pf.consecutive_losses) == (1, 0, 0, 0)     # break-even


def test_average_cost_keeps_round_trips_exact_when_the_average_does_not_divide():
    r = Rig()
    pf = r.pf
    r.fill("BUY", "0.3", "40000.01")
    r.fill("BUY", "0.4", "40000.02")
    r.fill("BUY", "0.2", "40000.04")                   # avg 36000.0191/0.9 = 40000.0212222...
    r.fill("SELL", "0.7", "40001")
    r.fill("SELL", "0.2", "40002.5")
    assert pf.position("BTCUSDT") == 0
    # proceeds 28000.7 + 8000.5 - cost (12000.003 + 16000.008 + 8000.008), to the last digit
    assert str(pf.realized_pnl()) == "1.181" and str(pf.cash()) == "20001.181"


def test_dust_below_one_step_closes_the_round_trip():
    r = Rig()
    pf = r.pf
    r.fill("BUY", "0.01", "40000", "0.00001234", "BTC")    # receives 0.00998766
    r.fill("SELL", "0.00998", "39000", "0.3892", "USDT")
    assert pf.position("BTCUSDT") == D("0.00000766")
    assert (pf.round_trips, pf.losses, pf.consecutive_losses) == (1, 1, 1)


def test_consecutive_losses_count_losing_round_trips_in_a_row_and_reset_on_a_win():
    r = Rig()
    pf = r.pf
    for sell in ("39000", "39500"):
        r.fill("BUY", "0.1", "40000")
        r.fill("SELL", "0.05", sell)
        assert pf.consecutive_losses == (0 if sell == "39000" else 1)      # a partial sell closes nothing
        r.fill("SELL", "0.05", sell)
    assert (pf.consecutive_losses, pf.losses) == (2, 2)
    r.fill("BUY", "0.1", "40000")
    r.fill("SELL", "0.1", "40100")
    assert (pf.consecutive_losses, pf.max_consecutive_losses, pf.wins, pf.round_trips) == (0, 2, 1, 3)


def test_selling_more_than_the_position_books_the_excess_at_the_sale_price_and_alerts():
    r = Rig({"USDT": D("20000"), "BTC": D("1")})
    pf = r.pf
    r.fill("BUY", "0.1", "40000")
    r.fill("SELL", "0.3", "41000")
    assert pf.position("BTCUSDT") == 0 and pf.realized_pnl() == D("100")
    assert pf.cash("BTC") == D("0.8") and len(r.alerts("oversold")) == 1


def test_fill_in_an_unknown_symbol_is_not_booked_and_alerts_once():
    r = Rig()
    r.fill("BUY", "1", "10", symbol="DOGEUSDT")
    r.fill("BUY", "1", "10", symbol="DOGEUSDT")
    assert r.pf.ignored_fills == 2 and r.pf.cash() == D("20000") and len(r.alerts("unknown_symbol")) == 1


def test_fill_quoted_in_another_asset_moves_balances_only():
    r = Rig({"USDT": D("20000"), "BTC": D("1")})
    r.fill("BUY", "2", "0.05", "0.002", "ETH", symbol="ETHBTC")
    assert r.pf.cash("BTC") == D("0.9") and r.pf.cash("ETH") == D("1.998")
    assert r.pf.position("ETHBTC") == 0 and len(r.alerts("unsupported_quote")) == 1


def test_fill_with_a_float_is_refused():
    r = Rig()
    bad = Fill("c1", "s1", "BTCUSDT", "BUY", 0.1, D("40000"), D("0"), "USDT", 1, False, T0)
    with pytest.raises(TypeError, match="fill.quantity must be a Decimal"):
        r.pf.apply_fill(bad)
    assert r.pf.position("BTCUSDT") == 0 and r.pf.cash() == D("20000")


# ---- equity, drawdown, snapshots ---------------------------------------------------------

def test_equity_peak_and_drawdown_follow_the_marks():
    r = Rig()
    pf = r.pf
    r.fill("BUY", "0.5", "40000")
    assert pf.snapshot().equity == D("20000") and pf.unmarked() == ["BTCUSDT"]
    r.mark("42000.00")
    p = pf.snapshot()
    assert (p.equity, p.cash, p.positions_value, p.unrealized_pnl, p.drawdown) == \
        (D("21000"), D("0"), D("21000"), D("1000"), D("0")) and pf.unmarked() == []
    r.mark("38000.00")
    p = pf.snapshot(T0 + 5)
    assert (p.equity, p.drawdown, p.ts_event) == (D("19000"), D("2000"), T0 + 5)
    r.mark("41000.00")
    p = pf.snapshot()
    assert p == EquityPoint(D("20500"), D("0"), D("20500"), D("0"), D("500"), D("0"), D("500"), T0)
    s = pf.stats()
    assert (s["peak_equity"], s["drawdown"], s["max_drawdown"]) == (D("21000"), D("500"), D("2000"))
    assert abs(s["drawdown_pct"] - D("500") / D("21000")) < D("1e-25")
    assert r.seen[topics.EQUITY][-1] == p and len(r.seen[topics.EQUITY]) == 4


def test_equity_points_on_a_timer_while_started_and_none_after_stop():
    r = Rig(equity_interval_s=1.0)
    assert r.pf.state == ComponentState.RUNNING
    r.clock.advance(3 * S)
    assert [p.ts_event for p in r.seen[topics.EQUITY]] == [T0 + S, T0 + 2 * S, T0 + 3 * S]
    r.pf.stop()
    r.clock.advance(3 * S)
    assert len(r.seen[topics.EQUITY]) == 3


def test_withdrawal_of_quote_moves_the_peak_not_the_drawdown():
    r = Rig()
    r.pf.snapshot()
    r.bus.publish(topics.BALANCES, BalanceDelta("USDT", D("-5000"), T0, T0))
    p = r.pf.snapshot()
    assert (p.equity, p.drawdown) == (D("15000"), D("0"))


# ---- reconciliation ----------------------------------------------------------------------

def test_balance_drift_on_reconciliation_alerts_and_adopts_the_exchange_figure():
    r = Rig({"USDT": D("20000"), "BNB": D("1")})
    pf = r.pf
    r.fill("BUY", "0.1", "40000", "4")
    r.bus.publish(topics.RECONCILIATION, Reconciliation(
        (), (Balance("USDT", D("15990"), D("0")), Balance("BTC", D("0.06"), D("0.04"))), "reconnect", T0 + 1))
    (drift_bnb, drift_usdt) = r.alerts("balance_drift")       # BNB missing from a full snapshot: 0
    assert "BNB" in drift_bnb.message and "ours 1" in drift_bnb.message and "exchange 0" in drift_bnb.message
    assert drift_usdt.message.startswith("USDT: ours 15996 vs exchange 15990 (diff -6)")
    assert drift_usdt.level == "warning" and drift_usdt.source == "portfolio" and drift_usdt.ts_event == T0 + 1
    assert pf.drift_events == 2 and pf.cash() == D("15990") and pf.cash("BNB") == D("0") and pf.cash("BTC") == D("0.1")

    r.bus.publish(topics.RECONCILIATION, Reconciliation(
        (), (Balance("USDT", D("15990"), D("0")), Balance("BTC", D("0.1"), D("0"))), "reconnect", T0 + 2))
    assert pf.drift_events == 2                        # in agreement: nothing new


def test_partial_balance_update_compares_only_the_assets_it_lists():
    r = Rig({"USDT": D("20000"), "BNB": D("1")})
    r.bus.publish(topics.BALANCES, BalanceUpdate((Balance("USDT", D("19999.5"), D("0.5")),), False, T0, T0))
    assert r.pf.drift_events == 0
    r.bus.publish(topics.BALANCES, BalanceUpdate((Balance("USDT", D("19000"), D("0")),), False, T0, T0))
    assert r.pf.drift_events == 1 and r.pf.cash() == D("19000") and r.pf.cash("BNB") == D("1")


def test_without_starting_balances_the_first_snapshot_initialises_the_wallet_silently():
    r = Rig(balances=None, start=False)
    r.pf = Portfolio(r.bus, r.clock, "USDT", INSTRUMENTS)
    r.pf.start()
    r.bus.publish(topics.RECONCILIATION, Reconciliation((), (Balance("USDT", D("500"), D("0")),), "start", T0))
    assert r.pf.cash() == D("500") and r.pf.drift_events == 0 and r.alerts() == []


def test_position_larger_than_the_exchange_balance_alerts():
    r = Rig()
    r.fill("BUY", "0.1", "40000")
    r.bus.publish(topics.RECONCILIATION, Reconciliation(
        (), (Balance("USDT", D("16000"), D("0")), Balance("BTC", D("0.05"), D("0"))), "reconnect", T0))
    assert len(r.alerts("balance_drift")) == 1 and len(r.alerts("position_exceeds_balance")) == 1


# ---- restart state, types ----------------------------------------------------------------

def test_state_round_trip_through_json_restores_every_view():
    r = Rig({"USDT": D("20000"), "BNB": D("1")})
    r.fill("BUY", "0.3", "40000.01", "0.0003", "BTC")
    r.fill("SELL", "0.1", "39000", "0.01", "BNB")
    r.fill("BUY", "0.1", "41000", "4.1")
    r.mark("40500.00")
    r.pf.snapshot()
    state = json.loads(json.dumps(r.pf.to_state()))

    other = Portfolio(MessageBus(), TestClock(T0), "USDT", INSTRUMENTS)
    other.from_state(state)
    other.set_mark("BTCUSDT", D("40500.00"))
    for view in ("position", "avg_price", "realized_pnl", "unrealized_pnl", "fees_paid"):
        assert getattr(other, view)("BTCUSDT") == getattr(r.pf, view)("BTCUSDT"), view
    assert other.stats() == r.pf.stats()
    assert other.balances() == r.pf.balances() and other.to_state() == r.pf.to_state()


def test_state_of_another_quote_asset_or_version_is_refused():
    state = Rig().pf.to_state()
    other = Portfolio(MessageBus(), TestClock(), "USDC", INSTRUMENTS)
    with pytest.raises(ValueError, match="USDT"):
        other.from_state(state)
    with pytest.raises(ValueError, match="version"):
        Rig().pf.from_state({**state, "version": 99})


def test_no_float_anywhere():
    r = Rig({"USDT": D("20000"), "BNB": D("1")})
    r.mark("300.00", "BNBUSDT")
    r.fill("BUY", "0.3", "40000.01", "0.0003", "BTC")
    r.fill("SELL", "0.1", "39000", "0.01", "BNB")
    r.fill("SELL", "0.1", "39000", "0.01", "XRP")
    r.mark("40500.00")
    p = r.pf.snapshot()
    assert_all_decimal(r.pf.stats(), r.pf.to_state(), r.seen, p)
    pf = r.pf
    money = [pf.position("BTCUSDT"), pf.avg_price("BTCUSDT"), pf.equity(), pf.cash("USDT"), pf.cash("BTC"),
             pf.realized_pnl(), pf.realized_pnl("BTCUSDT"), pf.unrealized_pnl(), pf.unrealized_pnl("BTCUSDT"),
             pf.fees_paid(), pf.drawdown(), pf.mark("BTCUSDT"), pf.positions_value(), *pf.fees_unpriced.values(),
             *astuple(p)[:-1], *tuple(r.seen[topics.POSITIONS][-1])[2:-1]]
    assert all(type(v) is D for v in money), [type(v) for v in money]
    s = pf.stats()
    assert all(type(s[k]) is D for k in ("equity", "cash", "positions_value", "realized_pnl", "unrealized_pnl",
                                         "fees", "peak_equity", "drawdown", "drawdown_pct", "max_drawdown"))
