"""Make-before-break renewal of a market-stream connection before Binance's 24-hour cut.

Closing the old connection and opening a new one leaves a gap: diffs are missed and every
book on the connection must resync from a REST snapshot. Instead the new connection is
opened and subscribed first, with its frames held back, while the old one keeps
delivering and the last id of every stream it delivers is noted. At the switch (one loop
turn) the old one is muted, the held frames are delivered minus those the old one already
delivered (by trade id, aggregate id, update id, final diff id, kline event time), and
the new one delivers from then on. No gap, no duplicate, no resync. When the new
connection cannot be made ready in time, the old one falls back to a plain reconnect.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Callable

from abidance._core.wire import AggTradeEvent, BookTickerEvent, DepthDiffEvent, KlineEvent, TradeEvent

log = logging.getLogger("abidance.binance.handover")

MAX_HELD_FRAMES = 200_000       # a bound, counted when hit: the overlap normally lasts well under a second
READY_TIMEOUT_S = 30.0


def sequence_key(ev) -> tuple | None:
    """(key, id) ordering an event within its stream, or None for events without one."""
    t = type(ev)
    if t is TradeEvent:
        return (t, ev.symbol), ev.trade_id
    if t is DepthDiffEvent:
        return (t, ev.symbol), ev.final_id
    if t is AggTradeEvent:
        return (t, ev.symbol), ev.agg_id
    if t is BookTickerEvent:
        return (t, ev.symbol), ev.update_id
    if t is KlineEvent:
        return (t, ev.symbol, ev.interval), ev.ts_event
    return None


async def hand_over(streams, old, parse: Callable, dispatch: Callable) -> bool:
    """Replace `old` in `streams` by a fresh connection; True when it went without a gap."""
    delivered: dict[tuple, int] = {}
    held: list[tuple[bytes, int]] = []
    overflow = [0]

    def track_old(conn, payload: bytes, ts_init: int) -> None:
        ev = parse(payload, ts_init)
        seq = sequence_key(ev)
        if seq is not None:
            delivered[seq[0]] = seq[1]
        dispatch(conn, ev, ts_init)

    def hold_new(conn, payload: bytes, ts_init: int) -> None:
        if len(held) < MAX_HELD_FRAMES:
            held.append((payload, ts_init))
        else:
            overflow[0] += 1

    started = time.monotonic()
    old.on_frame = track_old
    new = streams.new_connection(old.streams, on_frame=hold_new)
    new.start()
    try:
        await asyncio.wait_for(_ready(new), READY_TIMEOUT_S)
    except (asyncio.TimeoutError, ConnectionError) as exc:
        log.warning("stream connection %d: handover failed (%s); reconnecting instead", old.conn_id,
                    type(exc).__name__)
        await new.stop()
        old.renewing = False
        old.drop("renewal before the 24 h cut (handover failed)")
        return False
    # The switch: nothing awaits between these lines, so no frame slips through on either side.
    old.on_frame = lambda conn, payload, ts_init: None
    streams.replace(old, new)
    replayed = skipped = 0
    for payload, ts_init in held:
        ev = parse(payload, ts_init)
        seq = sequence_key(ev)
        if seq is not None and seq[1] <= delivered.get(seq[0], -1):
            skipped += 1
            continue
        dispatch(new, ev, ts_init)
        replayed += 1
    new.on_frame = streams.on_frame
    log.info("stream connection %d handed over to %d in %.2fs (%d held frames replayed, %d already delivered%s)",
             old.conn_id, new.conn_id, time.monotonic() - started, replayed, skipped,
             f", {overflow[0]} over the bound" if overflow[0] else "")
    await old.stop()
    return overflow[0] == 0


async def _ready(conn) -> None:
    """Connected, every stream subscribed, and a first message seen (the server is sending)."""
    await conn.connected.wait()
    while conn.active != conn.streams or conn.messages == 0:
        if not conn.is_connected:
            raise ConnectionError("the new connection dropped before it was ready")
        await asyncio.sleep(0.01)
