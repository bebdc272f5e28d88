"""Why a backtest would say nothing: checked before it runs (data that no strategy trades, bars of
another timeframe, an account that cannot be valued) and after (no fill at all), so the command
refuses with the reason instead of printing an empty result with exit 0.

Each check names what is wrong and the fix; the command prints them and exits 2.
"""

from __future__ import annotations

from collections import Counter


def input_problems(config, symbols, instruments: dict, interval: str | None = None) -> list[str]:
    """What makes a run over data for `symbols` pointless for this config; [] when nothing does.

    `interval`: the candles' interval on a bar run (the strategies get those bars as they are:
    bars are not resampled, so a strategy on another timeframe would never see one); None on
    trades or depth, where the data engine builds every timeframe from the trades."""
    have = sorted(set(symbols))
    problems = []
    enabled = [sc for sc in config.strategies if sc.enabled]
    if not enabled:
        problems.append("the config has no enabled strategy ([[strategies]]): nothing would trade")
    for sc in enabled:
        if not set(sc.symbols) & set(have):
            problems.append(f"strategy {sc.id!r} trades {', '.join(sc.symbols)}, but the data is for "
                            f"{', '.join(have)}: give data for its symbols, or use a config whose strategies trade "
                            f"these (config/backtest-*.toml)")
        elif interval is not None and sc.timeframe != interval:
            problems.append(f"strategy {sc.id!r} acts on {sc.timeframe} bars, but the candles are {interval} "
                            f"(bars are not resampled): give {sc.timeframe} candles, or set its timeframe to "
                            f"{interval!r}")
    quote = config.risk.quote_asset
    for symbol in have:
        q = instruments[symbol].quote_asset
        if q != quote:
            problems.append(f"{symbol} is quoted in {q}, but risk.quote_asset is {quote!r}: the account could not "
                            f"be valued (set risk.quote_asset = \"{q}\" and give a {q} balance)")
    return problems


def no_fill_reason(result) -> str | None:
    """None when the run filled something; else why not, from what the engines recorded."""
    if result.fills:
        return None
    fed = (f"{result.bars} bars" if result.bars else f"{result.trades} trades" if result.trades
           else f"{result.depth_events} depth events")
    if not result.decisions:
        return (f"no fill: the strategies gave no signal the risk engine could act on in {fed} "
                "(check their parameters and that the data is long enough to warm up their indicators)")
    denied = Counter(d.reason for d in result.decisions if not d.accepted)
    accepted = sum(1 for d in result.decisions if d.accepted)
    rejected = Counter(o.reason or o.status for o in result.orders if o.status in ("REJECTED", "EXPIRED"))
    parts = [f"{len(result.decisions)} signals reached the risk engine in {fed}"]
    if denied:
        parts.append("denied: " + ", ".join(f"{r} x{n}" for r, n in denied.most_common(5)))
    if accepted:
        parts.append(f"{accepted} accepted orders never filled"
                     + (" (venue: " + ", ".join(f"{r} x{n}" for r, n in rejected.most_common(3)) + ")"
                        if rejected else ""))
    return "no fill: " + "; ".join(parts)
