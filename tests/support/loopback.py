"""Small loopback HTTP(S) servers a test runs in its own event loop, to play an endpoint or a proxy.

Unlike :mod:`tests.support.proxy` (a fault proxy in its own thread), these are for tests that need to *be*
the server: answer with a redirect, a forged clock, a lying body, or forward as an HTTP forward proxy
would. Each records what it received, so a test can assert what went over the wire (and what did not).
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

Handler = Callable[[web.BaseRequest, bytes], Awaitable[web.StreamResponse]]

# Hop-by-hop headers (RFC 9110 7.6.1) and those the forwarding client recomputes.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)


@dataclass(frozen=True)
class Seen:
    """One request as a loopback server received it.

    ``target`` is the request target exactly as sent: a path for a server, the absolute URI
    (``http://host:port/``) for a request sent to a forward proxy.
    """

    method: str
    target: str
    headers: CIMultiDict[str]
    body: bytes

    @property
    def operation(self) -> str | None:
        """The SQS operation (``X-Amz-Target: AmazonSQS.<Op>``), ``None`` for other requests."""
        target = self.headers.get("X-Amz-Target")
        return None if target is None else target.rpartition(".")[2]


@dataclass
class Server:
    """A running loopback server: its base URL and every request it received, in order."""

    url: str = ""
    seen: list[Seen] = field(default_factory=list)

    def operations(self) -> list[str | None]:
        """The SQS operation of each request received (``None`` for non-SQS requests)."""
        return [request.operation for request in self.seen]


@asynccontextmanager
async def serve(handler: Handler, *, tls: ssl.SSLContext | None = None) -> AsyncIterator[Server]:
    """Serve ``handler`` on a free loopback port (HTTPS with ``tls``) for the block."""
    server = Server()

    async def record(request: web.BaseRequest) -> web.StreamResponse:
        if request.headers.get("Expect", "").lower() == "100-continue":  # S3 uploads ask first
            await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        body = await request.read()
        server.seen.append(Seen(request.method, request.raw_path, CIMultiDict(request.headers), body))
        return await handler(request, body)

    # A low-level server, no router: every request reaches ``record``, whatever its target looks like.
    runner = web.ServerRunner(web.Server(record), handle_signals=False, shutdown_timeout=0.5)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls)
        await site.start()
        host, port = runner.addresses[0][:2]
        server.url = f"{'https' if tls else 'http'}://{host}:{port}"
        yield server
    finally:
        await runner.cleanup()


@asynccontextmanager
async def forwarding(upstream: str, *, tls: ssl.SSLContext | None = None) -> AsyncIterator[Server]:
    """A server that forwards every request to ``upstream`` and relays the answer.

    It serves both as a reverse proxy (a TLS front for the plain-HTTP emulator, with ``tls``) and as a plain
    HTTP forward proxy: a client configured with it as ``HTTP_PROXY`` sends absolute-URI requests
    (``POST http://127.0.0.1:PORT/``), recorded as such in ``Seen.target``, and they reach the emulator
    the URI names (the only upstream these tests use).
    """
    async with aiohttp.ClientSession(auto_decompress=False) as client:

        async def forward(request: web.BaseRequest, body: bytes) -> web.StreamResponse:
            path = request.rel_url.raw_path_qs  # the path, whether the target was a path or an absolute URI
            headers = CIMultiDict((k, v) for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP)
            async with client.request(
                request.method,
                upstream.rstrip("/") + path,
                headers=headers,
                data=body,
                allow_redirects=False,
                skip_auto_headers=("Accept", "Accept-Encoding", "User-Agent", "Content-Type"),
            ) as answer:
                payload = await answer.read()
                relayed = CIMultiDict(
                    (k, v) for k, v in answer.headers.items() if k.lower() not in _HOP_BY_HOP
                )
                return web.Response(status=answer.status, headers=relayed, body=payload)

        async with serve(forward, tls=tls) as server:
            yield server


@dataclass(frozen=True)
class Certificate:
    """A self-signed certificate for ``127.0.0.1``: the PEM file to trust and a server TLS context."""

    pem: Path
    server_context: ssl.SSLContext


def self_signed_certificate(directory: Path) -> Certificate:
    """Generate a throwaway self-signed certificate valid for ``127.0.0.1`` (and ``localhost``)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "qfan test loopback")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = directory / "loopback-ca.pem"
    key_file = directory / "loopback-key.pem"
    pem.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pem, key_file)
    return Certificate(pem, context)
