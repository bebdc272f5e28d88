"""Market: candlesticks of a symbol's bars with the bot's fills and indicator overlays; top of book,
spread and the latest depth."""

import pandas as pd
import streamlit as st

from streamlit_app import charts, common

st.title("Market")
common.require_store()

OVERLAYS = {"EMA 12": ("ema", 12, 0.0), "EMA 26": ("ema", 26, 0.0), "SMA 20": ("sma", 20, 0.0),
            "SMA 50": ("sma", 50, 0.0)}


def strategy_overlays(symbol: str) -> dict[str, tuple]:
    """The indicators of the configured strategies that trade `symbol`, as price overlays."""
    cfg, _ = common.node_config()
    out = {}
    for s in (cfg.strategies if cfg is not None else ()):
        if symbol not in s.symbols or not s.enabled:
            continue
        p = s.params
        if s.class_name == "ema_cross":
            for which, default in (("fast", 12), ("slow", 26)):
                n = int(p.get(which, default))
                out[f"{s.id}: EMA {n}"] = ("ema", n, 0.0)
        elif s.class_name == "bollinger_breakout":
            n, k = int(p.get("period", 20)), float(p.get("k", 2.0))
            out[f"{s.id}: SMA {n}"] = ("sma", n, 0.0)
            out[f"{s.id}: upper band"] = ("band", n, k)
            out[f"{s.id}: lower band"] = ("band", n, -k)
    return out


def overlay(close: pd.Series, kind: str, n: int, k: float) -> pd.Series:
    if kind == "ema":
        return close.ewm(span=n, adjust=False).mean()
    mean = close.rolling(n).mean()
    return mean if kind == "sma" else mean + k * close.rolling(n).std(ddof=0)


series = common.slow("q.bar_series")
if common.is_empty(series):
    common.no_data("no bars in the store (the node records them when store.market_data is on)")
else:
    symbols = sorted(series["symbol"].unique())
    c1, c2, c3, c4 = st.columns([2, 1, 1, 3])
    symbol = c1.selectbox("Symbol", symbols, key="market_symbol")
    intervals = list(series[series["symbol"] == symbol]["interval"])
    interval = c2.selectbox("Interval", intervals, key="market_interval")
    n = c3.number_input("Bars", min_value=20, max_value=20_000, value=300, step=50, key="market_bars")
    options = {**strategy_overlays(symbol), **OVERLAYS}
    default = [k for k in options if ":" in k] or ["EMA 12", "EMA 26"]
    chosen = c4.multiselect("Overlays", list(options), default=default, key=f"market_overlays_{symbol}",
                            help="the configured strategies' indicators on this symbol, and a few common ones")

    @st.fragment(run_every=common.refresh_s())
    def candles() -> None:
        bars = common.live("bars", symbol=symbol, interval=interval, limit=int(n))
        if common.is_empty(bars):
            common.no_data(f"no {interval} bars for {symbol}")
            return
        close = common.to_float(bars["close"])
        lines = {name: overlay(close, *options[name]) for name in chosen}
        start, end = bars["ts"].iloc[0], bars["close_time"].iloc[-1]
        fills = common.live("fills", symbol=symbol, start=start, end=end, limit=common.BIG)
        last = bars.iloc[-1]
        m1, m2, m3 = st.columns(3)
        m1.metric(f"{symbol} close", f"{last['close'].normalize():f}", help=f"bar of {common.fmt_ts(last['ts'])}")
        m2.metric("Bars shown", len(bars))
        m3.metric("Bot fills in view", len(fills))
        st.plotly_chart(charts.candles_figure(bars, fills, lines, f"{symbol} {interval}"), key="candles_chart")

    candles()

st.subheader("Top of book")
book_symbols = common.slow("q.book_symbols")
if not book_symbols:
    common.no_data("no top-of-book records (book_tops)")
else:
    c1, c2 = st.columns([2, 1])
    default = book_symbols.index(st.session_state.get("market_symbol")) \
        if st.session_state.get("market_symbol") in book_symbols else 0
    book_symbol = c1.selectbox("Book symbol", book_symbols, index=default, key="book_symbol")
    rows = c2.number_input("Points", min_value=50, max_value=50_000, value=2000, step=500, key="book_points")

    @st.fragment(run_every=common.refresh_s())
    def book() -> None:
        tops = common.live("q.book_tops", symbol=book_symbol, limit=int(rows))
        if common.is_empty(tops):
            common.no_data(f"no top of book for {book_symbol}")
            return
        last = tops.iloc[-1]
        m1, m2, m3 = st.columns(3)
        m1.metric("Best bid", f"{last['bid_price'].normalize():f}")
        m2.metric("Best ask", f"{last['ask_price'].normalize():f}")
        m3.metric("Spread", f"{last['spread_bps']:.2f} bps", help=f"at {common.fmt_ts(last['ts'])}")
        st.plotly_chart(charts.book_figure(tops, f"{book_symbol} best bid / ask"), key="book_chart")
        depth = common.live("q.latest_depth", symbol=book_symbol)
        if depth is None:
            st.caption("No depth snapshot recorded for this symbol.")
        else:
            st.plotly_chart(charts.depth_figure(depth, f"{book_symbol} depth at {common.fmt_ts(depth['ts'])}"),
                            key="depth_chart")

    book()
