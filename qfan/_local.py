"""The embedded emulator: a moto server on a loopback port, so qfan runs with no AWS account.

Only the endpoint differs from AWS: :func:`local` points the standard ``AWS_ENDPOINT_URL`` (and dummy
credentials and region) at the emulator for the duration of the block, so the same App code runs unchanged.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio.to_thread

from ._exceptions import ConfigError

#: Account id moto uses for every resource.
MOTO_ACCOUNT_ID = "123456789012"


@dataclass(frozen=True, slots=True)
class LocalEmulator:
    """A running embedded emulator.

    Attributes:
        endpoint_url: where it listens, e.g. ``http://127.0.0.1:54321``.
        region: the region its environment points at.
        environment: the variables that point AWS clients (qfan's, boto3's, the AWS CLI's) at it.
    """

    endpoint_url: str
    region: str
    environment: Mapping[str, str] = field(default_factory=dict)


def _moto_server(port: int) -> Any:
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as exc:
        raise ConfigError("the embedded emulator needs moto: pip install 'qfan[local]'") from exc
    return ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)


@contextmanager
def running_moto(port: int = 0, region: str = "us-east-1") -> Iterator[LocalEmulator]:
    """Run a moto server in a background thread of this process (blocking form, for the CLI)."""
    server = _moto_server(port)
    # werkzeug logs every request at INFO; an emulator for local runs should be quiet.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server.start()
    try:
        host, bound = server.get_host_and_port()
        endpoint = f"http://{host}:{bound}"
        yield LocalEmulator(
            endpoint_url=endpoint,
            region=region,
            environment={
                "AWS_ENDPOINT_URL": endpoint,
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_DEFAULT_REGION": region,
                "AWS_REGION": region,
            },
        )
    finally:
        server.stop()


@contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    """Only the emulator's AWS settings for the block; the previous ones, exactly, after it.

    Every ``AWS_*`` variable goes: a real session token would be sent to the emulator beside the dummy
    keys, an ``AWS_ENDPOINT_URL_<SERVICE>`` (or ``AWS_IGNORE_CONFIGURED_ENDPOINT_URLS``) would send that
    service to the real endpoint, a profile would bring its keys. The shared config and credentials files
    are hidden too, since a profile's ``services`` section outranks ``AWS_ENDPOINT_URL``.
    """
    saved = {name: value for name, value in os.environ.items() if name.startswith("AWS_")}
    for name in saved:
        del os.environ[name]
    os.environ.update(
        {
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
            **values,
        }
    )
    try:
        yield
    finally:
        for name in [name for name in os.environ if name.startswith("AWS_")]:
            del os.environ[name]
        os.environ.update(saved)


@asynccontextmanager
async def local(
    *, port: int = 0, region: str = "us-east-1", set_environment: bool = True
) -> AsyncIterator[LocalEmulator]:
    """Start the embedded emulator for the duration of the block.

    Args:
        port: TCP port on 127.0.0.1 (0 picks a free one).
        region: the region to point clients at.
        set_environment: point every AWS setting in ``os.environ`` at the emulator for the block (its
            ``AWS_ENDPOINT_URL``, dummy credentials and region; every other ``AWS_*`` variable, such as a
            session token, a per-service endpoint or a profile, is unset, and the shared config files are
            hidden), so that any ``App()`` inside the block uses the emulator. All is restored afterwards.
    """
    manager = running_moto(port, region)
    emulator = await anyio.to_thread.run_sync(manager.__enter__)
    try:
        if set_environment:
            with _environment(emulator.environment):
                yield emulator
        else:
            yield emulator
    finally:
        await anyio.to_thread.run_sync(manager.__exit__, None, None, None)
