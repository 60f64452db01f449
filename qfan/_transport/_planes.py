"""Which implementation serves the per-message calls: the lean planes or aiobotocore's.

Management calls are always aiobotocore's. A lean plane is opened beside an aiobotocore client, from the same
session, so both resolve endpoint, region, credentials, proxy and TLS settings identically.

aiobotocore, botocore and aiohttp are imported when a plane is first opened, not with ``qfan``: they take
most of a cold start's import time, and a Lambda function that only handles messages may never need them.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any, Literal, get_args

from .._exceptions import ConfigError
from ._base import KeyValueTable, ObjectStore, SnsPlane, SqsControlPlane, SqsDataPlane
from ._settings import ConnectionSettings

if TYPE_CHECKING:
    from aiobotocore.session import AioSession

    from ._signed import ErrorReader, SignedClient

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
    from aiobotocore.credentials import AioCredentials

    if settings.access_key_id is not None and settings.secret_access_key is not None:
        return AioCredentials(settings.access_key_id, settings.secret_access_key, settings.session_token)
    return await session.get_credentials()


@asynccontextmanager
async def _lean(
    settings: ConnectionSettings, session: AioSession, client: Any, service: str, errors: ErrorReader
) -> AsyncIterator[SignedClient]:
    """Signed posts beside ``client``: its endpoint, region, credentials, proxy and TLS settings."""
    from ._botocore import plane_connection
    from ._signed import SignedClient, http_session

    credentials = await _credentials(settings, session)
    connection = await plane_connection(client)
    async with http_session(settings, connection.connector) as http:
        yield SignedClient(
            http,
            client.meta.endpoint_url,
            client.meta.region_name,
            service,
            credentials,
            errors=errors,
            proxy=connection.proxy,
            proxy_headers=connection.proxy_headers,
        )


@asynccontextmanager
async def open_sqs_planes(
    settings: ConnectionSettings, transport: TransportName
) -> AsyncIterator[tuple[SqsDataPlane, SqsControlPlane]]:
    """Open SQS for the block: the data plane on ``transport``, the control plane on aiobotocore."""
    from aiobotocore.session import AioSession

    from ._botocore import BotocoreSqs, open_client
    from ._sqs_json import FastSqs, error_from_response

    session = AioSession(profile=settings.profile)
    async with open_client(settings, "sqs", session=session) as client:
        control = BotocoreSqs(client)
        if transport == "botocore":
            yield control, control
            return
        async with _lean(settings, session, client, "sqs", error_from_response) as signed:
            yield FastSqs(signed), control


@asynccontextmanager
async def open_sns_plane(settings: ConnectionSettings, transport: TransportName) -> AsyncIterator[SnsPlane]:
    """Open SNS for the block: ``PublishBatch`` on ``transport``, everything else on aiobotocore."""
    from aiobotocore.session import AioSession

    from ._botocore import open_client
    from ._sns import BotocoreSns
    from ._sns_query import FastSns
    from ._xml import error_from_xml

    session = AioSession(profile=settings.profile)
    async with open_client(settings, "sns", session=session) as client:
        if transport == "botocore":
            yield BotocoreSns(client)
            return
        async with _lean(settings, session, client, "sns", error_from_xml) as signed:
            yield FastSns(client, signed)


@asynccontextmanager
async def open_s3_plane(settings: ConnectionSettings, transport: TransportName) -> AsyncIterator[ObjectStore]:
    """Open S3 for the block: objects on ``transport``, buckets and lifecycle rules on aiobotocore."""
    from aiobotocore.session import AioSession

    from ._s3 import BotocoreS3, open_s3_client
    from ._s3_rest import FastS3
    from ._xml import error_from_xml

    session = AioSession(profile=settings.profile)
    async with open_s3_client(settings, session) as client:
        region = client.meta.region_name
        if transport == "botocore":
            yield BotocoreS3(client, region)
            return
        async with _lean(settings, session, client, "s3", error_from_xml) as signed:
            yield FastS3(client, region, signed)


class AwsTransport:
    """The AWS transports: the per-message calls (SQS send/receive/delete/visibility, SNS ``PublishBatch``,
    S3 put/get/delete of payloads) on the lean planes (``"fast"``) or on aiobotocore (``"botocore"``);
    management calls (queues, topics, subscriptions, buckets) and DynamoDB on aiobotocore either way.

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
        return open_sns_plane(settings, self.name)  # type: ignore[arg-type]

    def open_s3(self, settings: ConnectionSettings) -> AbstractAsyncContextManager[ObjectStore]:
        return open_s3_plane(settings, self.name)  # type: ignore[arg-type]

    def open_dynamodb(self, settings: ConnectionSettings) -> AbstractAsyncContextManager[KeyValueTable]:
        from ._dynamodb import open_dynamodb

        return open_dynamodb(settings)

    def __repr__(self) -> str:
        return f"<AwsTransport {self.name!r}>"
