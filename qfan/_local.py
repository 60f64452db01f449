"""The embedded emulator: a moto server on a loopback port, so qfan runs with no AWS account.

Only the endpoint differs from AWS: :func:`local` points the standard ``AWS_ENDPOINT_URL`` (and dummy
credentials and region) at the emulator for the duration of the block, so the same App code runs unchanged.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING

import anyio.to_thread

if TYPE_CHECKING:  # the launcher (subprocess, urllib, tempfile...) is loaded by local(), not on import
    from ._emulators import RunningEmulator as LocalEmulator


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

    Raises:
        EmulatorUnavailable: moto is not installed (``pip install 'qfan[local]'``), or ``port`` is taken.
    """
    from ._emulators import running_in_process

    manager = running_in_process(port=port, region=region)
    emulator = await anyio.to_thread.run_sync(manager.__enter__)
    try:
        if set_environment:
            with _environment(emulator.environment):
                yield emulator
        else:
            yield emulator
    finally:
        await anyio.to_thread.run_sync(manager.__exit__, None, None, None)
