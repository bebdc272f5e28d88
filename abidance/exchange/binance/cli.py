"""`abidance stream`: watch the connector work (books, trades, health) on any venue.

With `--venue sim` and no URLs, a simulator is started in-process on free loopback
ports, so this runs offline. Stop with Ctrl-C or after --seconds.
"""

from __future__ import annotations

import asyncio
import logging
import sys

from abidance.core import topics
from abidance.core.bus import MessageBus
from abidance.core.clock import LiveClock
from abidance.core.loop import run as runner
from abidance.data.depth_files import DepthRecorder
from abidance.data.engine import DataEngine
from abidance.exchange.binance.config import BinanceConfig
from abidance.exchange.binance.connector import BinanceConnector
from abidance.exchange.binance.credentials import Credentials, CredentialsError
from abidance.exchange.binance.rest import BinanceRest
from abidance.exchange.sim.config import DEMO_API_KEY, DEMO_API_SECRET, SimConfig
from abidance.exchange.sim.server import SimServer


def add_parser(sub) -> None:
    p = sub.add_parser("stream", help="connect to Binance (or the simulator) and print books, trades and health",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("--venue", default="sim", help="sim | testnet | mainnet (default sim: started in-process)")
    p.add_argument("--rest-url", default="", help="REST base URL (overrides the venue's)")
    p.add_argument("--ws-url", default="", help="stream base URL (overrides the venue's)")
    p.add_argument("--symbols", default="BTCUSDT,ETHUSDT", help="comma-separated symbols")
    p.add_argument("--channels", default="trade,depth", help="comma-separated: trade, aggTrade, depth, bookTicker")
    p.add_argument("--ws-api-url", default="", help="WebSocket API URL (overrides the venue's)")
    p.add_argument("--user-data", action="store_true",
                   help="also subscribe to user data over the WebSocket API (credentials from ABIDANCE_BINANCE_* "
                        "variables)")
    p.add_argument("--seconds", type=float, default=0, help="stop after this long (0 = until Ctrl-C)")
    p.add_argument("--record", metavar="FOLDER", help="write the depth snapshots, diffs and trades received to "
                   "FOLDER (the format `abidance backtest --depth` reads; docs/backtest.md)")
    p.add_argument("--log-level", default="WARNING")
    p.set_defaults(func=main)


async def run(args) -> int:
    sim = None
    creds = None
    rest_url, ws_url = args.rest_url, args.ws_url
    if args.venue == "sim" and not (rest_url or ws_url):
        sim = SimServer(SimConfig())
        await sim.start()
        rest_url, ws_url = sim.rest_url, sim.ws_url
        creds = Credentials(DEMO_API_KEY, DEMO_API_SECRET)
    try:
        cfg = BinanceConfig(venue=args.venue, rest_url=rest_url, ws_url=ws_url, ws_api_url=args.ws_api_url)
        if args.user_data and creds is None:
            creds = Credentials.load()
    except (ValueError, CredentialsError) as exc:
        print(f"abidance stream: {exc}", file=sys.stderr)
        return 2
    symbols = [s.strip().upper() for s in args.symbols.split(",") if s.strip()]
    channels = [c.strip() for c in args.channels.split(",") if c.strip()]
    bus = MessageBus()
    trades = {s: 0 for s in symbols}
    bus.subscribe(topics.TRADES, lambda ev: trades.__setitem__(ev.symbol, trades.get(ev.symbol, 0) + 1))
    bus.subscribe(topics.ALERTS, lambda a: print(f"ALERT {a.level} {a.code}: {a.message}"))
    bus.subscribe(topics.ORDER_UPDATES, lambda u: print(f"ORDER {u.symbol} {u.client_order_id} {u.execution_type} {u.status}"))
    print(f"abidance stream: {cfg.venue} REST {cfg.rest_url} streams {cfg.ws_url}"
          + (f" WebSocket API {cfg.ws_api_url}" if args.user_data else ""), flush=True)
    try:
        async with BinanceRest(cfg, creds, bus) as rest:
            conn = BinanceConnector(cfg, bus, rest)
            # The books are the data engine's (the node's own), fed by the connector's diffs and snapshots.
            data = DataEngine(bus, LiveClock(), symbols, [], bar_source="bars",
                              book_symbols=symbols if "depth" in channels else (),
                              snapshot_limit=cfg.depth_snapshot_limit)
            recorder = DepthRecorder(bus, args.record, await rest.load_instruments(symbols)) if args.record else None
            if recorder is not None:
                recorder.start()
            conn.snapshots.start()
            data.start()
            await conn.start(symbols, channels, user_data=args.user_data)
            loop = asyncio.get_running_loop()
            end = loop.time() + args.seconds if args.seconds > 0 else float("inf")
            try:
                while loop.time() < end:
                    await asyncio.sleep(min(1.0, max(0.0, end - loop.time())))
                    print(status_line(conn, data, trades), flush=True)
            finally:
                h = conn.health_snapshot()
                print(f"summary: {conn.parser.parsed} events, reconnects {h.reconnects}, resyncs {h.resyncs}, "
                      f"dropped {h.dropped or 0}, REST weight used {h.used_weight}", flush=True)
                data.stop()
                await conn.stop()
                if recorder is not None:
                    recorder.close()
                    print(f"recorded {recorder.rows} rows in {args.record}", flush=True)
    except Exception as exc:  # noqa: BLE001 - the CLI reports, it does not dump a trace
        print(f"abidance stream: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        if sim is not None:
            await sim.stop()
    return 0


def status_line(conn, data, trades: dict) -> str:
    parts = []
    for symbol in data.books.symbols:
        book = data.books.view(symbol)
        if book is not None:
            codec = conn.parser.codec(symbol)
            (bid, _), (ask, _) = book.best_bid(), book.best_ask()
            parts.append(f"{symbol} {codec.price.to_str(bid)}/{codec.price.to_str(ask)}")
        else:
            parts.append(f"{symbol} syncing")
    parts.append("trades " + " ".join(f"{s}:{n}" for s, n in trades.items()))
    return " | ".join(parts)


def main(args) -> int:
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    try:
        return runner(run(args))
    except KeyboardInterrupt:
        return 0
