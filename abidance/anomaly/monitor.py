"""AnomalyMonitor: the detectors on the bus. Each anomaly is an Alert (source "anomaly", code = the
detector) and, when its [anomaly] action says so, a TradingCommand to the risk engine's endpoint
(topics.RISK_COMMAND): REDUCING or HALTED.

It reads market data (trades, best bid/ask, depth diffs: prices in ticks, so ratios need no
conversion), risk decisions (the reference price of each accepted order), order events
(rejections), fills, balances and equity. It needs the instruments only for their assets and
tick sizes. Every handler is O(1) per message (detectors.py).
"""

from __future__ import annotations

import logging
from decimal import Decimal

from abidance.anomaly.detectors import (BalanceDrift, DrawdownVelocity, FeedLag, FeedStall, PriceJump,
                                        RejectionBurst, Slippage, SpreadBlowout, VolumeSpike)
from abidance.core import topics
from abidance.core.component import Component
from abidance.core.events import Alert, BalanceDelta, BalanceUpdate, TradingCommand

log = logging.getLogger("abidance.anomaly")

NS = 1_000_000_000
TERMINAL = {"FILLED", "CANCELED", "REJECTED", "EXPIRED"}
LEVEL = {"alert": "warning", "reduce": "error", "halt": "critical"}


class AnomalyMonitor(Component):
    def __init__(self, bus, clock, settings, instruments: dict, quote_asset: str):
        super().__init__("AnomalyMonitor", bus, clock)
        s = self.settings = settings
        self.instruments = instruments
        self.quote_asset = quote_asset
        self.ticks = {sym: float(i.filters.price_fp.increment) for sym, i in instruments.items()}
        self.assets = {sym: (i.base_asset, i.quote_asset) for sym, i in instruments.items()}
        self.pair_of = {(b, q): sym for sym, (b, q) in self.assets.items()}
        cd = s.cooldown_s
        self.price_jump = PriceJump(s.price_jump_bps, s.price_jump_window_s, cd)
        self.spread = SpreadBlowout(s.spread_bps, s.spread_factor, cooldown_s=cd)
        self.volume = VolumeSpike(s.volume_z, s.volume_bucket_s, s.volume_window, cd)
        self.lag = FeedLag(s.feed_lag_ms, s.feed_lag_count, cd)
        self.stall = FeedStall(s.stall_s)
        self.slippage = Slippage(s.slippage_bps)
        self.rejections = RejectionBurst(s.rejections, s.rejection_window_s, cd)
        self.drawdown = DrawdownVelocity(s.drawdown_velocity, s.drawdown_velocity_bps, s.drawdown_window_s, cd)
        self.balance = BalanceDrift(s.balance_drift, s.balance_drift_bps)
        self.mid: dict[str, tuple[int, int]] = {}       # symbol -> (mid ticks x2, ts)
        self.last_trade: dict[str, int] = {}            # symbol -> ticks
        self.fired: dict[str, int] = {}
        self._timer = None
        self._subs = ((topics.TRADES, self.handle_trade), (topics.BOOK_TICKERS, self.handle_book_ticker),
                      (topics.DEPTH_DIFFS, self.handle_depth), (topics.RISK_DECISIONS, self.handle_decision),
                      (topics.ORDER_EVENTS, self.handle_order_event), (topics.FILLS, self.handle_fill),
                      (topics.BALANCES, self.handle_balances), (topics.RECONCILIATION, self.handle_reconciliation),
                      (topics.EQUITY, self.handle_equity))

    def on_start(self) -> None:
        if not self.settings.enabled:
            return
        for topic, handler in self._subs:
            self.bus.subscribe(topic, handler)
        self._timer = self.clock.call_every(NS, self.check_stalls)

    def on_stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        for topic, handler in self._subs:
            self.bus.unsubscribe(topic, handler)

    # ---- market data ----------------------------------------------------------------------

    def _market(self, stream: str, ts_event: int, ts_init: int) -> None:
        stall = self.stall
        stall.last[stream] = ts_init
        if stall.stalled and stall.seen(stream, ts_init) is not None:
            self.bus.publish(topics.ALERTS, Alert("info", "anomaly", "feed_resumed", f"{stream}: market data flows "
                                                  "again", ts_init))
        anomaly = self.lag.update(stream, ts_event, ts_init)
        if anomaly is not None:
            self.fire(anomaly, self.settings.feed_action)

    def handle_trade(self, ev) -> None:
        # The hot one (every trade): locals, and fire() only when something fired (bench_ops.py).
        symbol, ts = ev.symbol, ev.ts_init
        self._market(symbol, ev.ts_event, ts)
        self.last_trade[symbol] = ev.price
        anomaly = self.price_jump.update(symbol, ev.price, ts)
        if anomaly is not None:
            self.fire(anomaly, self.settings.price_jump_action)
        anomaly = self.volume.update(symbol, ev.qty, ts)
        if anomaly is not None:
            self.fire(anomaly, self.settings.volume_action)

    def handle_book_ticker(self, ev) -> None:
        self._market(ev.symbol, ev.ts_event, ev.ts_init)
        if ev.bid_price > 0 and ev.ask_price > 0:
            self.mid[ev.symbol] = (ev.bid_price + ev.ask_price, ev.ts_init)
            self.fire(self.spread.update(ev.symbol, ev.bid_price, ev.ask_price, ev.ts_init),
                      self.settings.spread_action)

    def handle_depth(self, ev) -> None:
        self._market(ev.symbol, ev.ts_event, ev.ts_init)

    def check_stalls(self, now: int) -> None:
        for anomaly in self.stall.check(now):
            self.fire(anomaly, self.settings.feed_action)

    # ---- orders and account -----------------------------------------------------------------

    def reference_ticks(self, symbol: str) -> float:
        mid = self.mid.get(symbol)
        if mid is not None and self.clock.time_ns() - mid[1] < 5 * NS:
            return mid[0] / 2
        return float(self.last_trade.get(symbol, 0))

    def handle_decision(self, d) -> None:
        if d.accepted and d.client_order_id and d.symbol in self.ticks:
            ref = self.reference_ticks(d.symbol) or float(d.price)
            self.slippage.decide(d.client_order_id, d.side, ref * self.ticks[d.symbol])

    def handle_order_event(self, ev) -> None:
        if ev.status == "REJECTED":
            self.fire(self.rejections.update(ev.ts_event, (ev.reason or "").split(":")[0]),
                      self.settings.rejection_action)
        if ev.status in TERMINAL:
            self.slippage.done(ev.client_order_id)

    def handle_fill(self, fill) -> None:
        self.fire(self.slippage.fill(fill.client_order_id, fill.symbol, float(fill.price), fill.ts_event),
                  self.settings.slippage_action)
        assets = self.assets.get(fill.symbol)
        if assets is None:
            return
        base, quote = assets
        sign = 1 if fill.side == "BUY" else -1
        self.balance.apply(base, sign * fill.quantity)
        self.balance.apply(quote, -sign * fill.quantity * fill.price)
        if fill.commission and fill.commission_asset:
            self.balance.apply(fill.commission_asset, -fill.commission)

    def _value(self, asset: str, qty: Decimal) -> Decimal | None:
        if asset == self.quote_asset:
            return qty
        sym = self.pair_of.get((asset, self.quote_asset))
        ticks = self.last_trade.get(sym) if sym else None
        if not ticks:
            return None
        return qty * self.instruments[sym].filters.price_fp.increment * ticks

    def _balances(self, balances, full: bool, ts: int) -> None:
        report = {b.asset: b.free + b.locked for b in balances}
        for anomaly in self.balance.report(report, full, ts, self._value):
            self.fire(anomaly, self.settings.balance_action)

    def handle_balances(self, msg) -> None:
        if isinstance(msg, BalanceDelta):
            self.balance.apply(msg.asset, msg.delta)
        elif isinstance(msg, BalanceUpdate):
            self._balances(msg.balances, msg.is_snapshot, msg.ts_event)

    def handle_reconciliation(self, rec) -> None:
        self._balances(rec.balances, True, rec.ts_init)

    def handle_equity(self, point) -> None:
        self.fire(self.drawdown.update(point.equity, point.ts_event), self.settings.drawdown_action)

    # ---- out ----------------------------------------------------------------------------------

    def fire(self, anomaly, action: str) -> None:
        if anomaly is None:
            return
        self.fired[anomaly.detector] = self.fired.get(anomaly.detector, 0) + 1
        what = {"reduce": " -> REDUCING", "halt": " -> HALTED"}.get(action, "")
        self.bus.publish(topics.ALERTS, Alert(LEVEL[action], "anomaly", anomaly.detector,
                                              anomaly.message + what, anomaly.ts))
        if action in ("reduce", "halt"):
            try:
                self.bus.send(topics.RISK_COMMAND, TradingCommand(action, anomaly.message,
                                                                   f"anomaly:{anomaly.detector}"))
            except LookupError:
                log.error("anomaly %s wants %s but no risk engine takes %s", anomaly.detector, action,
                          topics.RISK_COMMAND)
