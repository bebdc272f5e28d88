"""A backtest honours the settings a live node runs with: limit timeouts, cancel-replace, the kill
file, the stale-data breaker. (Before the kernel, the backtest built its risk engine with no
timeout and no kill file, checked stale data once a simulated day, and never re-priced.)"""

from __future__ import annotations

from decimal import Decimal as D

from abidance._core.wire import trade_event
from abidance.backtest.engine import Backtest
from tests.unit.backtest.kit import MIN, T0, config, flat_bars, scripted

S = 1_000_000_000


def test_a_resting_limit_is_cancelled_after_limit_timeout_s_and_its_funds_released(tmp_path):
    cfg = config(tmp_path, "[execution]\nlimit_timeout_s = 30", strategies=scripted("lim", "1:BUY@9000"))
    bt = Backtest(cfg, {"BTCUSDT": flat_bars(["100", "100", "100"])}, balances={"USDT": D("10000")})
    result = bt.run()
    cancel = [o for o in result.orders if o.status == "CANCELED"]
    # Placed at the first bar's close (T0 + 1 min), cancelled 30 s later.
    assert [(o.reason, o.ts_event) for o in cancel] == [("timeout", T0 + MIN + 30 * S)]
    assert bt.venue.balances()["USDT"] == (D("10000"), D(0)) and result.fills == []


def test_cancel_replace_re_prices_a_timed_out_limit_at_the_touch_through_the_risk_engine(tmp_path):
    cfg = config(tmp_path, "[execution]\nlimit_timeout_s = 45\ncancel_replace = true",
                 strategies=scripted("lim", "1:BUY@9000"))
    # The limit at 90.00 (placed at T0 + 1 min) times out at T0 + 105 s; the rest is placed again at the
    # touch (the last close, 100.00) and fills at the next bar's open (T0 + 2 min).
    result = Backtest(cfg, {"BTCUSDT": flat_bars(["100", "100", "100"])}, balances={"USDT": D("10000")}).run()
    replace = [d for d in result.decisions if d.message.startswith("replace ")]
    assert [(d.accepted, d.price, d.ts_event) for d in replace] == [(True, 10000, T0 + MIN + 45 * S)]
    [buy] = result.fills
    assert buy.price == D("100.00") and buy.quantity == D("11.11111")         # what the first one did not fill


def test_a_kill_file_present_at_the_start_halts_the_backtest_as_it_halts_a_node(tmp_path):
    cfg = config(tmp_path, strategies=scripted("s", "1:BUY 2:BUY"))
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "KILL").write_text("stop")
    bt = Backtest(cfg, {"BTCUSDT": flat_bars(["100", "100", "100"])}, balances={"USDT": D("10000")})
    result = bt.run()
    assert bt.risk.trading_state == "HALTED" and result.fills == []
    assert {d.reason for d in result.decisions} == {"TRADING_HALTED"}


def test_a_gap_in_the_trades_longer_than_stale_data_s_stops_new_positions_until_data_flows(tmp_path):
    # One trade a second for 3 s, nothing until 25 s (stale_data_s = 10), then trades again. Bars close on
    # time through the gap: the BUY decided at 15 s is denied (REDUCING), as a node would deny it; the one
    # at 30 s, with trades flowing again, is accepted.
    cfg = config(tmp_path, strategies=scripted("s", "1:BUY 2:SELL 15:BUY 30:BUY", timeframe="1s"),
                 risk='sizing = "fixed_quote"\nfixed_quote = "1000"\nstale_data_s = 10.0')
    times = [0, 1, 2] + list(range(25, 32))
    trades = [trade_event("BTCUSDT", i + 1, 10_000, 100_000, False, T0 + t * S) for i, t in enumerate(times)]
    result = Backtest(cfg, trades={"BTCUSDT": trades}, balances={"USDT": D("10000")}).run()
    decided = [((d.ts_event - T0) // S, d.side, d.reason) for d in result.decisions]
    assert decided == [(1, "BUY", "ACCEPTED"), (2, "SELL", "ACCEPTED"), (15, "BUY", "REDUCING_ONLY"),
                       (30, "BUY", "ACCEPTED")]
