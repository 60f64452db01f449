"""Which implementation serves the SQS data plane: the lean JSON-protocol one or aiobotocore's.

The control plane is always aiobotocore's. The lean plane is opened from the same aiobotocore session and
client, so both resolve endpoint, region and credentials identically.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Literal, get_args

from aiobotocore.credentials import AioCredentials
from aiobotocore.session import AioSession

from .._exceptions import ConfigError
from ._base import KeyValueTable, ObjectStore, SnsPlane, SqsControlPlane, SqsDataPlane
from ._botocore import BotocoreSqs, open_client, plane_connection
from ._dynamodb import open_dynamodb
from ._s3 import open_s3
from ._settings import ConnectionSettings
from ._sns import open_sns
from ._sqs_json import FastSqs, http_session

TransportName = Literal["fast", "botocore"]
TRANSPORTS: tuple[TransportName, ...] = get_args(TransportName)
TRANSPORT_ENV = "QFAN_TRANSPORT"
DEFAULT_TRANSPORT: TransportName = "fast"


def resolve_transport(explicit: str | None) -> TransportName:
    """The explicit choice > ``QFAN_TRANSPORT`` > ``fast``; anything else is a ``ConfigError``."""
    chosen = explicit or os.environ.get(TRANSPORT_ENV) or DEFAULT_TRANSPORT
    if chosen not in TRANSPORTS:
        source = "transport" if explicit else TRANSPORT_ENV
        raise ConfigError(f"{source} must be one of {list(TRANSPORTS)}, got {chosen!r}")
    return chosen


async def _credentials(settings: ConnectionSettings, session: AioSession) -> Any | None:
    """The credentials aiobotocore's ``create_client`` would use: explicit keys, else the session's chain."""
    if settings.access_key_id is not None and settings.secret_access_key is not None:
        return AioCredentials(settings.access_key_id, settings.secret_access_key, settings.session_token)
    return await session.get_credentials()


@asynccontextmanager
async def open_sqs_planes(
    settings: ConnectionSettings, transport: TransportName
) -> AsyncIterator[tuple[SqsDataPlane, SqsControlPlane]]:
    """Open SQS for the block: the data plane on ``transport``, the control plane on aiobotocore."""
    session = AioSession(profile=settings.profile)
    async with open_client(settings, "sqs", session=session) as client:
        control = BotocoreSqs(client)
        if transport == "botocore":
            yield control, control
            return
        credentials = await _credentials(settings, session)
        # The botocore client's proxy and TLS settings, so that both planes connect the same way.
        connection = await plane_connection(client)
        async with http_session(settings, connection.connector) as http:
            yield (
                FastSqs(
                    http,
                    client.meta.endpoint_url,
                    client.meta.region_name,
                    credentials,
                    proxy=connection.proxy,
                    proxy_headers=connection.proxy_headers,
                ),
                control,
            )


class AwsTransport:
    """The AWS transports: SQS's per-message calls on the lean plane (``"fast"``) or on aiobotocore
    (``"botocore"``); SQS management, SNS, S3 and DynamoDB on aiobotocore either way.

    Args:
        name: ``"fast"`` or ``"botocore"``; ``None`` reads ``QFAN_TRANSPORT``, else ``"fast"``.
    """

    def __init__(self, name: str | None = None) -> None:
        self.name: str = resolve_transport(name)

    def open_sqs(
        self, settings: ConnectionSettings
    ) -> AbstractAsyncContextManager[tuple[SqsDataPlane, SqsControlPlane]]:
        return open_sqs_planes(settings, self.name)  # type: ignore[arg-type]

    def open_sns(self, settings: ConnectionSettings) -> AbstractAsyncContextManager[SnsPlane]:
        return open_sns(settings)

    def open_s3(self, settings: ConnectionSettings) -> AbstractAsyncContextManager[ObjectStore]:
        return open_s3(settings)

    def open_dynamodb(self, settings: ConnectionSettings) -> AbstractAsyncContextManager[KeyValueTable]:
        return open_dynamodb(settings)

    def __repr__(self) -> str:
        return f"<AwsTransport {self.name!r}>"
