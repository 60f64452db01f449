"""A web endpoint answered through request/response queues: synchronous to the caller, queued behind.

``GET /resize?key=a.jpg&width=128`` puts a ``ResizeRequest`` on the ``resize-requests`` queue and awaits the
reply; a worker (here in the same process; ``qfan run examples.async_web:app`` runs more elsewhere) answers
it. Each web request waits only for its own reply: one reply queue per process, one long poll for all.

Serve on the embedded emulator:       python examples/async_web.py            (http://127.0.0.1:8080)
Serve, ask it 50 times, print p50/p99: python examples/async_web.py --self-test 50
"""

import argparse
import contextlib
import statistics
import time

import aiohttp
import anyio
import msgspec
from aiohttp import web

import qfan


class ResizeRequest(msgspec.Struct):
    key: str
    width: int


class ResizeResult(msgspec.Struct):
    key: str
    thumbnail: str
    width: int


app = qfan.App("web-demo")
resize = app.queue("resize-requests", ResizeRequest)


@app.responder(resize, concurrency=16, expose_errors=True)  # its error messages are written for the caller
async def do_resize(request: ResizeRequest) -> ResizeResult:
    if request.width <= 0:
        raise ValueError(f"width must be positive, got {request.width}")
    return ResizeResult(request.key, f"thumbs/{request.width}/{request.key}", request.width)


async def handle_resize(request: web.Request) -> web.Response:
    try:
        ask = ResizeRequest(request.query["key"], int(request.query.get("width", "128")))
    except (KeyError, ValueError):
        return web.json_response({"error": "usage: /resize?key=<name>&width=<int>"}, status=400)
    try:
        result = await app.request(resize, ask, response_type=ResizeResult, timeout=10)
    except qfan.RemoteError as exc:  # the worker raised: its error type (and, exposed, message) come back
        return web.json_response({"error": f"{exc.remote_type}: {exc.remote_message}"}, status=422)
    except qfan.RequestTimeout:
        return web.json_response({"error": "no worker answered in time"}, status=504)
    return web.Response(body=msgspec.json.encode(result), content_type="application/json")


async def self_test(base: str, count: int) -> None:
    latencies: list[float] = []
    async with aiohttp.ClientSession() as http:
        for i in range(count):
            began = time.perf_counter()
            async with http.get(f"{base}/resize", params={"key": f"img-{i}.jpg", "width": "128"}) as resp:
                body = await resp.json()
                assert resp.status == 200, body
                assert body["thumbnail"] == f"thumbs/128/img-{i}.jpg", body
            latencies.append(time.perf_counter() - began)
        async with http.get(f"{base}/resize", params={"key": "bad.jpg", "width": "-1"}) as resp:
            print(f"GET /resize?key=bad.jpg&width=-1 -> {resp.status} {(await resp.json())['error']}")
    cuts = statistics.quantiles(latencies, n=100)
    print(
        f"{count} web requests answered through the queues: p50 {cuts[49] * 1000:.1f} ms, "
        f"p99 {cuts[98] * 1000:.1f} ms"
    )


async def main(port: int, test: int | None) -> None:
    web_app = web.Application()
    web_app.router.add_get("/resize", handle_resize)
    runner = web.AppRunner(web_app)
    async with qfan.local(), app, anyio.create_task_group() as tg:
        tg.start_soon(app.run)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        host, bound = runner.addresses[0][:2]  # port 0: whichever the system chose
        base = f"http://{host}:{bound}"
        try:
            if test is None:
                print(f"serving {base}/resize?key=a.jpg&width=128 (Ctrl-C stops)")
                await anyio.sleep_forever()
            await self_test(base, test)
        finally:
            await runner.cleanup()
            app.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8080, help="0: any free port")
    parser.add_argument("--self-test", type=int, metavar="N", help="ask N times, print latency, exit")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C ends the server
        anyio.run(main, args.port, args.self_test)
