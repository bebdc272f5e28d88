"""The attribution's arithmetic and reasons on hand-made orders: exact to the last digit with
awkward decimals, each reason found, a fee without a price shown apart, pairing by nearness."""

from __future__ import annotations

from decimal import Decimal as D

from abidance.drift.attribution import Context, Market, Valuation, attribute, pair_orders
from abidance.drift.orders import Denial, FillRecord, OrderRecord

MIN = 60_000_000_000
MARKET = Market({"ETHBTC": [(i * MIN, D("0.05") + D(i) / 10_000) for i in range(0, 100)]})
VALUE = Valuation("BTC", {"ETHBTC": "ETH"}, {"ETHBTC": MARKET.mark("ETHBTC", 100 * MIN)})


def order(side, decided, fills=(), ordered="0.3", status="FILLED", acked=None, sid="s", manual=False):
    o = OrderRecord(sid, "ETHBTC", side, decided, D(ordered), acked=acked, status=status, manual=manual,
                    order_type="MARKET")
    o.fills = [FillRecord(D(q), D(p), D(f), a, False, t) for q, p, f, a, t in fills]
    return o


def test_lines_add_up_to_the_difference_to_the_last_digit():
    live = [order("BUY", 10 * MIN, [("0.1", "0.05107", "0.0001", "ETH", 11 * MIN),
                                    ("0.133", "0.05119", "0.00000681", "BTC", 12 * MIN)], ordered="0.3"),
            order("SELL", 30 * MIN, [("0.2", "0.05297", "0.00001059", "BTC", 31 * MIN)], ordered="0.23")]
    replay = [order("BUY", 10 * MIN, [("0.3", "0.0510", "0.0003", "ETH", 10 * MIN)]),
              order("SELL", 30 * MIN, [("0.299", "0.0530", "0.0000158", "BTC", 30 * MIN)], ordered="0.299")]
    d = attribute(live, replay, MARKET, VALUE, Context(tolerance=MIN))["s"]
    assert d.residual == 0 and d.difference == sum(d.lines.values()) and d.difference != 0
    # The live BUY reached the venue a minute later (the market one tick up) and filled 0.233 of 0.3.
    assert d.lines["latency"] == D("0.233") * (D("0.0510") - D("0.0511")) + D("-0.2") * (D("0.0530") - D("0.0531"))
    assert d.lines["partial fills and unfilled limits"] != 0 and d.lines["sizing and positions"] != 0
    assert d.counts["paired"] == 2 and d.counts["live partly or not filled"] == 2


def test_orders_in_one_run_get_their_reason():
    ctx = Context(gaps={"ETHBTC": [(40 * MIN, 45 * MIN)]}, halts=[(60 * MIN, 65 * MIN)], restarts=[80 * MIN],
                  restart_window=MIN, tolerance=MIN)
    fill = lambda t: [("0.1", "0.0520", "0", "BTC", t)]      # noqa: E731
    replay = [order("BUY", 20 * MIN, fill(20 * MIN)), order("BUY", 41 * MIN, fill(41 * MIN)),
              order("BUY", 62 * MIN, fill(62 * MIN)), order("BUY", 81 * MIN, fill(81 * MIN)),
              order("SELL", 90 * MIN, fill(90 * MIN))]
    replay.append(order("SELL", 47 * MIN, fill(47 * MIN)))       # the runs pair again after the gap
    live = [order("SELL", 47 * MIN, fill(47 * MIN)), order("SELL", 50 * MIN, fill(50 * MIN), manual=True),
            order("SELL", 95 * MIN, fill(95 * MIN))]
    denials = [Denial("s", "ETHBTC", "BUY", 20 * MIN, "MAX_POSITION")]
    d = attribute(live, replay, MARKET, VALUE, ctx, live_denials=denials)["s"]
    reasons = {((p.live or p.replay).decided // MIN): p.reason for p in d.pairs if p.live is None or p.replay is None}
    assert reasons == {20: "risk denial", 41: "data gap", 50: "manual operator action", 62: "halt", 81: "restart",
                       90: "position differed", 95: "position differed"}
    assert d.residual == 0


def test_a_fee_in_an_asset_without_a_price_is_left_out_and_shown():
    live = [order("BUY", 10 * MIN, [("0.1", "0.0510", "0.0007", "BNB", 10 * MIN)])]
    replay = [order("BUY", 10 * MIN, [("0.1", "0.0510", "0.00001", "BTC", 10 * MIN)])]
    d = attribute(live, replay, MARKET, VALUE, Context(tolerance=MIN))["s"]
    assert d.unpriced_fees == {"BNB": D("0.0007")} and d.lines["fees"] == D("0.00001") and d.residual == 0


def test_pairs_take_the_nearest_decision_within_the_window():
    live = [order("BUY", 10 * MIN), order("BUY", 12 * MIN)]
    replay = [order("BUY", 11 * MIN - 1), order("BUY", 12 * MIN), order("BUY", 30 * MIN)]
    pairs = pair_orders(live, replay, MIN)
    got = [(p.live and p.live.decided, p.replay and p.replay.decided) for p in pairs]
    assert got == [(10 * MIN, 11 * MIN - 1), (12 * MIN, 12 * MIN), (None, 30 * MIN)]


def test_a_rejected_live_order_costs_the_replay_order_s_value_under_rejections():
    live = [order("BUY", 10 * MIN, ordered="0.3", status="REJECTED")]
    replay = [order("BUY", 10 * MIN, [("0.3", "0.0510", "0", "BTC", 10 * MIN)], ordered="0.3")]
    d = attribute(live, replay, MARKET, VALUE, Context(tolerance=MIN))["s"]
    mark = VALUE.marks["ETHBTC"]
    assert d.lines["rejections"] == -D("0.3") * (mark - D("0.0510")) == d.difference
    assert d.residual == 0 and d.lines["partial fills and unfilled limits"] == 0
