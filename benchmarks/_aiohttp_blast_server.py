"""Baseline for bench_sim: the same pre-encoded blast sent by an aiohttp WebSocket server.

Run as a subprocess: prints its port, then on each connection sends N copies of the
message followed by {"blast":"done"}.
"""

import asyncio
import sys

import orjson
from aiohttp import web

MESSAGE = orjson.dumps({"e": "depthUpdate", "E": 0, "s": "BTCUSDT", "U": 1, "u": 2,
                        "b": [["64999.99000000", "0.12000000"]] * 5, "a": [["65000.01000000", "0.3"]] * 5}).decode()


async def handler(request):
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    count = int(request.query.get("count", "100000"))
    for _ in range(count):
        await ws.send_str(MESSAGE)
    await ws.send_str('{"blast":"done"}')
    await ws.receive()
    return ws


async def main():
    app = web.Application()
    app.router.add_get("/", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(site._server.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    import uvloop
    uvloop.run(main()) if len(sys.argv) < 2 else asyncio.run(main())
