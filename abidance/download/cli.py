"""`abidance download`: Binance klines for symbols and a date range into Parquet day files.

Resumable (complete days on disk are skipped), paced by the REST weight budget, gaps reported
(printed and written to gaps.json beside the data), optionally inserted into the store.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

import orjson

from abidance.exchange.binance.config import BinanceConfig
from abidance.exchange.binance.instruments import parse_exchange_info
from abidance.exchange.binance.rest import BinanceRest
from abidance.extras import require


def add_parser(sub) -> None:
    p = sub.add_parser("download", help="download Binance klines into Parquet day files (resumable)",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("--symbols", help="comma-separated symbols, e.g. BTCUSDT,ETHUSDT")
    p.add_argument("--interval", default="1m", help="kline interval: 1s 1m 3m 5m 15m 30m 1h 2h 4h 6h 8h 12h 1d")
    p.add_argument("--trades", action="store_true",
                   help="download aggregate trades (for trade-driven backtests: `abidance backtest --trades`) "
                        "instead of klines, into <out>/<SYMBOL>/trades/")
    p.add_argument("--exchange-info", metavar="FILE",
                   help="save the venue's exchangeInfo (every symbol's filters, or only --symbols') to FILE instead, "
                        "for `abidance backtest --exchange-info FILE`")
    p.add_argument("--start", help="UTC start, inclusive: 2024-01-01 or 2024-01-01T12:00 (required for klines and "
                                   "trades)")
    p.add_argument("--end", default="now",
                   help="UTC end, EXCLUSIVE: --end 2024-01-03 stops at 2024-01-03 00:00 (default now)")
    p.add_argument("--out", default="data/klines", help="output folder (default data/klines)")
    p.add_argument("--venue", default="sim", help="sim | testnet | mainnet (default sim)")
    p.add_argument("--rest-url", default="", help="REST base URL (overrides the venue's)")
    p.add_argument("--source", default="auto", choices=("auto", "rest", "vision"),
                   help="rest: REST only; vision: Binance's public daily data files first, REST for the rest; "
                        "auto (default): vision on mainnet, REST elsewhere")
    p.add_argument("--vision-url", default="https://data.binance.vision", help="public data files base URL")
    p.add_argument("--to-store", default="", metavar="URL",
                   help="also insert the bars into the store's bars table (e.g. http://127.0.0.1:8123)")
    p.add_argument("--log-level", default="WARNING")
    p.set_defaults(func=main)


async def save_exchange_info(cfg: BinanceConfig, symbols: list[str], path: str) -> int:
    """GET /api/v3/exchangeInfo (for `symbols`, or all) saved as received; the symbols it holds are
    parsed as a backtest will parse them, and any it would skip are named."""
    try:
        async with BinanceRest(cfg) as rest:
            payload = await rest.exchange_info(symbols or None)
        problems: list[str] = []
        found = parse_exchange_info(payload, problems)
    except Exception as exc:  # noqa: BLE001 - the CLI reports, it does not dump a trace
        print(f"abidance download: exchangeInfo from {cfg.rest_url}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_bytes(orjson.dumps(payload, option=orjson.OPT_INDENT_2))
    print(f"abidance download: exchangeInfo from {cfg.rest_url}: {len(found)} symbols into {path}", flush=True)
    for reason in problems:
        print(f"  skipped by backtests: {reason}", flush=True)
    return 0


async def run(args) -> int:
    # Lazy: the downloaders need pyarrow (the store extra).
    from abidance.download.klines import Downloader, StoreSink, check_symbol, interval_ms, parse_time
    try:
        cfg = BinanceConfig(venue=args.venue, rest_url=args.rest_url, ws_url="ws://unused" if args.rest_url else "")
        if args.exchange_info:
            return await save_exchange_info(cfg, [check_symbol(s) for s in (args.symbols or "").split(",")
                                                  if s.strip()], args.exchange_info)
        if not args.symbols or not args.start:
            raise ValueError("give --symbols and --start (or --exchange-info FILE)")
        start, end = parse_time(args.start), parse_time(args.end)
        symbols = [check_symbol(s) for s in args.symbols.split(",") if s.strip()]
        if not symbols:
            raise ValueError("--symbols is empty")
        interval_ms(args.interval)
        if end <= start:
            raise ValueError(f"--end ({args.end}) must be after --start ({args.start})")
    except ValueError as exc:
        print(f"abidance download: {exc}", file=sys.stderr)
        return 2
    source = args.source if args.source != "auto" else ("vision" if cfg.venue == "mainnet" and not args.rest_url
                                                          else "rest")
    store = None
    try:
        if args.to_store:
            store = StoreSink(args.to_store)
        if args.trades:
            return await _trades(args, cfg, symbols, start, end, source)
        print(f"abidance download: {','.join(symbols)} {args.interval} from {cfg.rest_url} "
              f"({source}) into {args.out}", flush=True)
        async with BinanceRest(cfg) as rest:
            dl = Downloader(rest, args.out, store=store, source=source, vision_base=args.vision_url,
                            progress=lambda line: print(line, flush=True))
            summary = await dl.run(symbols, args.interval, start, end)
        print(summary.line(), flush=True)
        for path in summary.gap_files:
            print(f"gaps written to {path}", flush=True)
    except ValueError as exc:
        print(f"abidance download: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - the CLI reports, it does not dump a trace
        print(f"abidance download: {type(exc).__name__}: {exc} (complete days are kept; run again to resume)",
              file=sys.stderr)
        return 1
    finally:
        if store is not None:
            store.close()
    return 0


async def _trades(args, cfg, symbols, start, end, source: str) -> int:
    # Lazy: the downloaders need pyarrow (the store extra).
    from abidance.download.trades import TradesDownloader
    if args.to_store:
        raise ValueError("--to-store takes klines; trades stay in the day files")
    print(f"abidance download: {','.join(symbols)} aggregate trades from {cfg.rest_url} into {args.out}", flush=True)
    async with BinanceRest(cfg) as rest:
        downloader = TradesDownloader(rest, args.out, progress=lambda line: print(line, flush=True), source=source,
                                      vision_base=args.vision_url)
        summary = await downloader.run(symbols, start, end)
    print(summary.line(), flush=True)
    for symbol, day, first, last in summary.gaps:
        print(f"  {symbol} {day}: aggregate ids {first}..{last} missing", flush=True)
    return 0


def main(args) -> int:
    require("download", "backtest")
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return asyncio.run(run(args))
    except KeyboardInterrupt:
        print("abidance download: interrupted (complete days are kept; run again to resume)", file=sys.stderr)
        return 130
