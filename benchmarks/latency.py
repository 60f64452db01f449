"""A loopback proxy that adds network latency: real SQS is ~20 ms away, an emulator on loopback 0.1 ms.

``with latency_proxy(upstream, one_way=0.02) as url:`` forwards every request to ``upstream`` after
``one_way`` seconds and hands the answer back after another ``one_way``, on its own event loop in a
background thread (so its CPU is the harness's, never the measured client's). Requests keep their
``Host`` header: what the client signed is what the server sees.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import aiohttp
from aiohttp import web

_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding", "upgrade"}
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _serve(
    upstream: str, one_way: float, port: int, ready: threading.Event, stop: asyncio.Event
) -> None:
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0), auto_decompress=False
    ) as session:

        async def forward(request: web.Request) -> web.StreamResponse:
            body = await request.read()
            await asyncio.sleep(one_way)
            headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
            async with session.request(
                request.method, upstream + request.path_qs, headers=headers, data=body, allow_redirects=False
            ) as answer:
                payload = await answer.read()
                reply = {k: v for k, v in answer.headers.items() if k.lower() not in _HOP_BY_HOP}
            await asyncio.sleep(one_way)
            return web.Response(status=answer.status, headers=reply, body=payload)

        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", forward)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        ready.set()
        try:
            await stop.wait()
        finally:
            await runner.cleanup()


@contextmanager
def latency_proxy(upstream: str, one_way: float = 0.02) -> Iterator[str]:
    """The proxy's URL for the block (``upstream`` without a trailing slash or path)."""
    port = _free_port()
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    ready = threading.Event()
    thread = threading.Thread(
        target=loop.run_until_complete,
        args=(_serve(upstream.rstrip("/"), one_way, port, ready, stop),),
        daemon=True,
        name="latency-proxy",
    )
    thread.start()
    if not ready.wait(10):
        raise RuntimeError("the latency proxy did not start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()
