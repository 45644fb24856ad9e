"""A tiny echo backend for the demo and the tests: answers every request with what it saw, as JSON.

`python examples/echo_backend.py --name foo --port 18082 [--host 127.0.0.1]`; several
`--port`s may be given. WebSocket upgrades on any path echo messages back.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence

from aiohttp import WSMsgType, web


def make_app(name: str) -> web.Application:
    async def echo(request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            ws = web.WebSocketResponse()
            await ws.prepare(request)
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    await ws.send_str(f"{name}:{message.data}")
            return ws
        body = await request.read()
        delay = request.query.get("sleep")
        if delay:
            await asyncio.sleep(float(delay))
        return web.json_response({
            "backend": name,
            "address": f"{request.transport.get_extra_info('sockname')[0]}:{request.transport.get_extra_info('sockname')[1]}" if request.transport else "",
            "method": request.method,
            "path": request.path_qs,
            "headers": dict(request.headers),
            "body_length": len(body),
        })

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", echo)
    return app


async def serve(name: str, host: str, ports: Sequence[int]) -> None:
    runner = web.AppRunner(make_app(name), access_log=None)
    await runner.setup()
    for port in ports:
        await web.TCPSite(runner, host, port).start()
    await asyncio.Event().wait()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--name", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, action="append", required=True)
    args = parser.parse_args(argv)
    try:
        asyncio.run(serve(args.name, args.host, args.port))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
