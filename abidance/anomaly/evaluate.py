"""The detectors on real recorded data with anomalies injected at known times: precision, recall, delay.

    python -m abidance.anomaly.evaluate [--data ../shared/data]      # prints the Markdown table

Each detector runs with the [anomaly] defaults (docs/config.md) twice over its data set: once clean
(every alert there is a false alarm), once with anomalies injected at known, evenly spread times. An
alert within a detector's tolerance after an injection detects it (the first one counts; repeats
inside the window are neither hits nor false alarms); any other alert is a false alarm.

Data (../shared/data, see its SOURCES.md): XRP/ETH trades (12,477 over 2.5 days), BTCUSDT trades
(2,001) and best bid/ask quotes (451, 46 s, laid end to end 20 times), UNITTEST/BTC 1-minute candles
(13,681). What is not in any recording is simulated on top of it, seeded: feed receive times (a 20 ms
base latency plus exponential jitter of 30 ms mean on the real event times), which orders are
rejected (2 % at random, orders placed at every 5th real XRP/ETH trade), an account holding a tenth
of its equity in UNITTEST at the real closes, and balance reports that arrive before or after the fill
they include (half each). docs/anomaly.md quotes this table; tests/unit/anomaly checks they match.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from abidance.config.ops_sections import AnomalySection
from abidance.anomaly.detectors import (BalanceDrift, DrawdownVelocity, FeedLag, FeedStall, PriceJump,
                                        RejectionBurst, Slippage, SpreadBlowout, VolumeSpike)

NS = 1_000_000_000
INJECTIONS = 10


@dataclass
class Result:
    detector: str
    data: str
    injected: str
    n: int
    detected: int
    false_alarms: int
    clean_alarms: int
    delays: list

    def row(self) -> str:
        precision = self.detected / (self.detected + self.false_alarms) if self.detected + self.false_alarms else 1.0
        recall = self.detected / self.n
        med = f"{statistics.median(self.delays):.1f}" if self.delays else "-"
        worst = f"{max(self.delays):.1f}" if self.delays else "-"
        return (f"| {self.detector} | {self.data} | {self.injected} | {self.n} | {precision:.2f} | {recall:.2f} | "
                f"{med} | {worst} | {self.clean_alarms} |")


def score(name, data, injected, inject_ts, alerts, clean_alerts, tolerance_s) -> Result:
    tol = int(tolerance_s * NS)
    detected, delays, false = set(), [], 0
    for ts in sorted(alerts):
        hit = next((i for i, t in enumerate(inject_ts) if t <= ts <= t + tol), None)
        if hit is None:
            false += 1
        elif hit not in detected:
            detected.add(hit)
            delays.append((ts - inject_ts[hit]) / NS)
    return Result(name, data, injected, len(inject_ts), len(detected), false, len(clean_alerts), delays)


def spread_times(start: int, end: int, n: int = INJECTIONS, margin: float = 0.1) -> list[int]:
    """n times evenly spread over [start, end], leaving a margin at each end (warm-up, tail)."""
    a, b = start + (end - start) * margin, end - (end - start) * margin
    return [int(a + (b - a) * i / (n - 1)) for i in range(n)]


def bar_times(ts: list[int], n: int = INJECTIONS) -> list[int]:
    """n bar times evenly spread over the recording, a tenth in from each end."""
    return [ts[int(len(ts) * (0.1 + 0.8 * k / (n - 1)))] for k in range(n)]


# ---- the data ---------------------------------------------------------------------------------------

def load(data: Path) -> dict:
    # Lazy: reading the recorded data needs pandas (an extra); the detectors themselves do not.
    import pandas as pd

    xrp = pd.read_feather(data / "market" / "XRP_ETH-trades.feather")
    btc = pd.read_parquet(data / "binance-nt" / "btcusdt-trades.parquet")
    quotes = pd.read_parquet(data / "binance-nt" / "btcusdt-quotes.parquet")
    candles = pd.read_feather(data / "market" / "UNITTEST_BTC-1m.feather")
    ns = lambda s: s.astype("datetime64[ns, UTC]").astype("int64").tolist()   # noqa: E731
    return {
        "xrp": (xrp["timestamp"].astype("int64").mul(1_000_000).tolist(), xrp["price"].tolist(),
                xrp["amount"].tolist()),
        "btc": (ns(btc["timestamp"]), btc["price"].tolist(), btc["quantity"].tolist()),
        "quotes": (ns(quotes["timestamp"]), quotes["bid"].tolist(), quotes["ask"].tolist()),
        "candles": (ns(candles["date"]), candles["close"].tolist(), candles["volume"].tolist()),
    }


def tile(ts: list[int], times: int, *cols: list) -> tuple:
    """A short recording laid end to end `times` times (times shifted by its length plus one gap)."""
    span = ts[-1] - ts[0] + (ts[-1] - ts[0]) // max(len(ts) - 1, 1)
    out_ts = [t + k * span for k in range(times) for t in ts]
    return (out_ts, *[c * times for c in cols])


# ---- one evaluation per detector ------------------------------------------------------------------------

def eval_price_jump(d, cfg) -> Result:
    ts, px, _ = d["xrp"]
    inject = spread_times(ts[0], ts[-1])

    def run(prices):
        det = PriceJump(cfg.price_jump_bps, cfg.price_jump_window_s, cfg.cooldown_s)
        return [a.ts for t, p in zip(ts, prices) if (a := det.update("XRPETH", p, t))]

    spiked = [p * 1.06 if any(t0 <= t < t0 + 120 * NS for t0 in inject) else p for t, p in zip(ts, px)]
    first = [next(t for t in ts if t >= t0) for t0 in inject]     # the first trade at or after each injection
    return score("price jump", "XRP/ETH trades", "+6 % for 2 min", first, run(spiked), run(px), 60)


def eval_spread(d, cfg) -> Result:
    ts, bid, ask = tile(d["quotes"][0], 100, d["quotes"][1], d["quotes"][2])
    inject = spread_times(ts[0], ts[-1])
    rng = random.Random(3)

    def run(asks):
        det = SpreadBlowout(cfg.spread_bps, cfg.spread_factor, cooldown_s=cfg.cooldown_s)
        return [a.ts for t, b, k in zip(ts, bid, asks) if (a := det.update("BTCUSDT", b, k, t))]

    wide = [k + b * 0.008 * (1 + rng.random()) if any(t0 <= t < t0 + 5 * NS for t0 in inject) else k
            for t, b, k in zip(ts, bid, ask)]
    first = [next(t for t in ts if t >= t0) for t0 in inject]
    return score("spread blow-out", "BTCUSDT quotes x100", "80-160 bps for 5 s", first, run(wide), run(ask), 10)


def eval_volume(d, cfg) -> Result:
    ts, _, vol = d["candles"]
    inject = bar_times(ts)
    med = statistics.median(vol)

    def run(volumes):
        det = VolumeSpike(cfg.volume_z, cfg.volume_bucket_s, cfg.volume_window, cfg.cooldown_s)
        out = []
        for t, v in zip(ts, volumes):
            if (a := det.update("UNITTEST", v, t + NS)):      # one update per bar, 1 s after it opens
                out.append(a.ts)
        return out

    bucket = int(cfg.volume_bucket_s * NS)
    inject = [t - t % bucket for t in inject]          # a surge filling one whole bucket
    spiked = [v + 200 * med if any(t0 <= t < t0 + bucket for t0 in inject) else v for t, v in zip(ts, vol)]
    # A bucket closes when the next bucket's first trade arrives, one bucket after it opened.
    return score("volume spike", "UNITTEST/BTC 1m volumes", "+200x median for 5 min", inject, run(spiked), run(vol),
                 cfg.volume_bucket_s * 2 + 60)


def _receive_times(ts, rng) -> list[int]:
    return [t + int((0.020 + rng.expovariate(1 / 0.030)) * NS) for t in ts]


def eval_feed_lag(d, cfg) -> Result:
    ts = tile(d["btc"][0], 100)[0]
    inject = spread_times(ts[0], ts[-1])

    def run(lagged):
        rng = random.Random(5)
        recv = _receive_times(ts, rng)
        det = FeedLag(cfg.feed_lag_ms, cfg.feed_lag_count, cfg.cooldown_s)
        out = []
        for t, r in zip(ts, recv):
            if lagged and any(t0 <= t < t0 + 10 * NS for t0 in inject):
                r += 3 * NS
            if (a := det.update("BTCUSDT", t, r)):
                out.append(a.ts - 0)
        return out

    return score("feed lag", "BTCUSDT trades x100", "+3 s for 10 s", inject, run(True), run(False), 15)


def eval_feed_stall(d, cfg) -> Result:
    ts = tile(d["btc"][0], 100)[0]
    inject = spread_times(ts[0], ts[-1])

    def run(cut):
        rng = random.Random(5)
        det = FeedStall(cfg.stall_s)
        out, next_check = [], ts[0] + NS
        for t, r in zip(ts, _receive_times(ts, rng)):
            if cut and any(t0 <= t < t0 + 30 * NS for t0 in inject):
                continue
            while next_check <= r:                    # the monitor's one-second timer
                out += [a.ts for a in det.check(next_check)]
                next_check += NS
            det.seen("BTCUSDT", r)
        return out

    return score("feed stall", "BTCUSDT trades x100", "30 s silence", inject, run(True), run(False), 30)


def _orders(d, every: int = 5):
    ts, px, _ = d["xrp"]
    return [(ts[i], px[i], next((j for j in range(i + 1, len(ts)) if ts[j] >= ts[i] + 200_000_000), None))
            for i in range(0, len(ts), every)]


def eval_slippage(d, cfg) -> Result:
    ts, px, _ = d["xrp"]
    orders = [(t, p, j) for t, p, j in _orders(d, 50) if j is not None]
    rng = random.Random(7)
    bad = set(sorted(rng.sample(range(len(orders) // 10, len(orders) - len(orders) // 10), INJECTIONS)))

    def run(inject):
        det = Slippage(cfg.slippage_bps)
        out = []
        for k, (t, p, j) in enumerate(orders):
            side = "BUY" if k % 2 == 0 else "SELL"
            det.decide(f"o{k}", side, p)
            fill = px[j] * ((1.02 if side == "BUY" else 0.98) if inject and k in bad else 1)
            if (a := det.fill(f"o{k}", "XRPETH", fill, ts[j])):
                out.append(a.ts)
            det.done(f"o{k}")
        return out

    inject_ts = sorted(ts[orders[k][2]] for k in bad)
    return score("fill slippage", "XRP/ETH trades (orders every 50th)", "2 % worse fills", inject_ts, run(True),
                 run(False), 1)


def eval_rejections(d, cfg) -> Result:
    orders = _orders(d)
    ts = [t for t, _, _ in orders]
    inject = spread_times(ts[0], ts[-1])

    def run(bursts):
        rng = random.Random(11)
        det = RejectionBurst(cfg.rejections, cfg.rejection_window_s, cfg.cooldown_s)
        events = [(t, "-2010") for t in ts if rng.random() < 0.02]
        if bursts:
            events += [(t0 + k * 2 * NS, "-1013") for t0 in inject for k in range(8)]
        return [a.ts for t, r in sorted(events) if (a := det.update(t, r))]

    return score("rejection burst", "orders at XRP/ETH trade times", "8 in 16 s", inject, run(True), run(False), 30)


def _equity(d, crash_at=()):
    """10,000 quote: 9,000 cash and 1,000 in UNITTEST at the real closes (risk.max_gross_exposure's default
    share); a flash crash takes the coin 10 % lower each minute for five minutes, then it is back."""
    ts, close, _ = d["candles"]
    units = Decimal(1000) / Decimal(str(close[0]))
    out = []
    for t, c in zip(ts, close):
        price = Decimal(str(c))
        for t0 in crash_at:
            if t0 <= t < t0 + 5 * 60 * NS:
                price *= 1 - Decimal("0.1") * (1 + (t - t0) // (60 * NS))
        out.append((t, Decimal(9000) + units * price))
    return out


def eval_drawdown(d, cfg) -> Result:
    ts = d["candles"][0]
    inject = bar_times(ts)

    def run(points):
        det = DrawdownVelocity(cfg.drawdown_velocity, cfg.drawdown_velocity_bps, cfg.drawdown_window_s,
                               cfg.cooldown_s)
        return [a.ts for t, e in points if (a := det.update(e, t))]

    return score("drawdown velocity", "10 % of equity in UNITTEST/BTC 1m", "coin -10 %/min for 5 min", inject,
                 run(_equity(d, inject)), run(_equity(d)), 600)


def eval_balance(d, cfg) -> Result:
    ts, px, _ = d["xrp"]
    orders = [(t, p, j) for t, p, j in _orders(d, 5) if j is not None]
    inject_at = spread_times(orders[0][0], orders[-1][0])

    def run(drift):
        rng = random.Random(13)
        det = BalanceDrift(cfg.balance_drift, cfg.balance_drift_bps)
        exchange = {"XRP": Decimal(100000), "ETH": Decimal(100)}
        det.report(dict(exchange), True, ts[0])
        pending = list(inject_at) if drift else []
        out = []
        for k, (t, p, j) in enumerate(orders):
            qty, price = Decimal(10), Decimal(str(px[j]))
            sign = 1 if k % 2 == 0 else -1
            exchange["XRP"] += sign * qty
            exchange["ETH"] -= sign * qty * price
            if pending and ts[j] >= pending[0]:
                pending.pop(0)
                exchange["XRP"] -= 500                   # a fill the node never heard of
            late = rng.random() < 0.5                    # the balance report arrives before the fill
            if late:
                out += [a.ts for a in det.report(dict(exchange), False, ts[j])]
            det.apply("XRP", sign * qty)
            det.apply("ETH", -sign * qty * price)
            if not late:
                out += [a.ts for a in det.report(dict(exchange), False, ts[j])]
        return out

    first = [next(ts[j] for _, _, j in orders if ts[j] >= t0) for t0 in inject_at]
    return score("balance drift", "fills at XRP/ETH trade prices", "500 XRP missing", first, run(True), run(False),
                 3600)


EVALUATIONS = (eval_price_jump, eval_spread, eval_volume, eval_feed_lag, eval_feed_stall, eval_slippage,
               eval_rejections, eval_drawdown, eval_balance)
HEADER = ("| detector | data | injected | n | precision | recall | median delay s | max delay s "
          "| alerts on clean data |\n|---|---|---|---|---|---|---|---|---|")


def table(data: Path, cfg=None) -> str:
    cfg = cfg or AnomalySection()
    d = load(data)
    return "\n".join([HEADER, *(e(d, cfg).row() for e in EVALUATIONS)])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m abidance.anomaly.evaluate", description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=None, help="the shared data folder (default ../shared/data)")
    args = parser.parse_args(argv)
    default = Path(os.environ.get("ABIDANCE_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))
    print(table(args.data or default))
    return 0


if __name__ == "__main__":
    sys.exit(main())
