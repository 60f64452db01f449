"""The aiobotocore implementation of the transport: one session, one pooled client per service.

Every client refuses redirects: aiohttp (under aiobotocore) would otherwise follow a 3xx and re-send the
signed request, session token included, wherever ``Location`` points. Its HTTP session class also hands the
lean SQS plane the connection settings botocore resolved (proxy, CA bundle, client certificate), so both
transports connect the same way.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiobotocore.config import AioConfig
from aiobotocore.httpsession import AIOHTTPSession
from aiobotocore.session import AioSession

from .._exceptions import RedirectRefused
from . import _types as wire
from ._errors import map_aws_errors
from ._redact import register_secret
from ._settings import ConnectionSettings, Service

_ALL = ["All"]


def wire_to_boto(attributes: wire.WireAttributes) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name, attribute in attributes.items():
        if attribute.binary_value is not None:
            out[name] = {"DataType": attribute.data_type, "BinaryValue": attribute.binary_value}
        else:
            out[name] = {"DataType": attribute.data_type, "StringValue": attribute.string_value}
    return out


def _boto_to_wire(attributes: Mapping[str, Mapping[str, Any]]) -> dict[str, wire.WireAttribute]:
    return {
        name: wire.WireAttribute(
            data_type=value["DataType"],
            string_value=value.get("StringValue"),
            binary_value=value.get("BinaryValue"),
        )
        for name, value in attributes.items()
    }


def batch_item(
    entry_id: str,
    body: tuple[str, str],
    attributes: wire.WireAttributes,
    group_id: str | None,
    dedup_id: str | None,
    **optional: Any,
) -> dict[str, Any]:
    """An SQS or SNS batch entry: ``body`` is (parameter, text); ``None`` options are left out."""
    item: dict[str, Any] = {"Id": entry_id, body[0]: body[1]}
    if attributes:
        item["MessageAttributes"] = wire_to_boto(attributes)
    fifo = {"MessageGroupId": group_id, "MessageDeduplicationId": dedup_id}  # FIFO and fair queues
    item.update((key, value) for key, value in (optional | fifo).items() if value is not None)
    return item


async def collect_pages(operation: str, call: Any, key: str, **params: Any) -> list[Any]:
    """Every item under ``key`` across a ``NextToken``-paginated list call."""
    items: list[Any] = []
    token: str | None = None
    while True:
        with map_aws_errors(operation):
            response = await call(**params, **({"NextToken": token} if token else {}))
        items.extend(response.get(key, ()))
        token = response.get("NextToken")
        if not token:
            return items


def entry_failures(response: Mapping[str, Any]) -> list[wire.EntryFailure]:
    """The ``Failed`` entries of a batch response (SQS and SNS use the same shape)."""
    return [
        wire.EntryFailure(
            id=failed["Id"],
            code=failed.get("Code", "Unknown"),
            message=failed.get("Message", ""),
            sender_fault=bool(failed.get("SenderFault", True)),
        )
        for failed in response.get("Failed", ())
    ]


class BotocoreSqs:
    """SQS over an aiobotocore client: both the data plane and the control plane."""

    def __init__(self, client: Any) -> None:
        self._client = client

    # -- data plane -----------------------------------------------------------------------------------

    async def send_batch(
        self, queue_url: str, entries: Sequence[wire.SendEntry]
    ) -> wire.BatchResult[wire.SentMessage]:
        request = [
            batch_item(
                e.id,
                ("MessageBody", e.body),
                e.attributes,
                e.group_id,
                e.dedup_id,
                DelaySeconds=e.delay_seconds,
                MessageSystemAttributes=wire_to_boto(e.system_attributes) if e.system_attributes else None,
            )
            for e in entries
        ]
        with map_aws_errors("SendMessageBatch"):
            response = await self._client.send_message_batch(QueueUrl=queue_url, Entries=request)
        return wire.BatchResult(
            succeeded=[
                wire.SentMessage(
                    id=ok["Id"],
                    message_id=ok["MessageId"],
                    md5_of_body=ok["MD5OfMessageBody"],
                    md5_of_attributes=ok.get("MD5OfMessageAttributes"),
                    sequence_number=ok.get("SequenceNumber"),
                )
                for ok in response.get("Successful", ())
            ],
            failed=entry_failures(response),
        )

    async def receive(
        self, queue_url: str, *, max_messages: int, wait_seconds: int, visibility_timeout: int | None
    ) -> list[wire.ReceivedMessage]:
        params: dict[str, Any] = {
            "QueueUrl": queue_url,
            "MaxNumberOfMessages": max_messages,
            "WaitTimeSeconds": wait_seconds,
            "MessageAttributeNames": _ALL,
            "MessageSystemAttributeNames": _ALL,
        }
        if visibility_timeout is not None:
            params["VisibilityTimeout"] = visibility_timeout
        with map_aws_errors("ReceiveMessage"):
            response = await self._client.receive_message(**params)
        return [
            wire.ReceivedMessage(
                message_id=raw["MessageId"],
                receipt_handle=raw["ReceiptHandle"],
                body=raw.get("Body", ""),
                attributes=_boto_to_wire(raw.get("MessageAttributes", {})),
                system_attributes=raw.get("Attributes", {}),
                md5_of_body=raw.get("MD5OfBody"),
                md5_of_attributes=raw.get("MD5OfMessageAttributes"),
            )
            for raw in response.get("Messages", ())
        ]

    async def delete_batch(
        self, queue_url: str, entries: Sequence[wire.ReceiptEntry]
    ) -> wire.BatchResult[str]:
        request = [{"Id": e.id, "ReceiptHandle": e.receipt_handle} for e in entries]
        with map_aws_errors("DeleteMessageBatch"):
            response = await self._client.delete_message_batch(QueueUrl=queue_url, Entries=request)
        return wire.BatchResult(
            succeeded=[ok["Id"] for ok in response.get("Successful", ())],
            failed=entry_failures(response),
        )

    async def change_visibility_batch(
        self, queue_url: str, entries: Sequence[wire.VisibilityEntry]
    ) -> wire.BatchResult[str]:
        request = [
            {
                "Id": e.id,
                "ReceiptHandle": e.receipt_handle,
                "VisibilityTimeout": e.visibility_timeout,
            }
            for e in entries
        ]
        with map_aws_errors("ChangeMessageVisibilityBatch"):
            response = await self._client.change_message_visibility_batch(QueueUrl=queue_url, Entries=request)
        return wire.BatchResult(
            succeeded=[ok["Id"] for ok in response.get("Successful", ())],
            failed=entry_failures(response),
        )

    # -- control plane --------------------------------------------------------------------------------

    async def get_queue_url(self, name: str) -> str:
        with map_aws_errors("GetQueueUrl"):
            response = await self._client.get_queue_url(QueueName=name)
        return str(response["QueueUrl"])

    async def create_queue(self, name: str, attributes: Mapping[str, str], tags: Mapping[str, str]) -> str:
        params: dict[str, Any] = {"QueueName": name, "Attributes": dict(attributes)}
        if tags:
            params["tags"] = dict(tags)
        with map_aws_errors("CreateQueue"):
            response = await self._client.create_queue(**params)
        return str(response["QueueUrl"])

    async def get_queue_attributes(self, queue_url: str) -> dict[str, str]:
        with map_aws_errors("GetQueueAttributes"):
            response = await self._client.get_queue_attributes(QueueUrl=queue_url, AttributeNames=_ALL)
        return dict(response.get("Attributes", {}))

    async def set_queue_attributes(self, queue_url: str, attributes: Mapping[str, str]) -> None:
        with map_aws_errors("SetQueueAttributes"):
            await self._client.set_queue_attributes(QueueUrl=queue_url, Attributes=dict(attributes))

    async def list_queue_tags(self, queue_url: str) -> dict[str, str]:
        with map_aws_errors("ListQueueTags"):
            response = await self._client.list_queue_tags(QueueUrl=queue_url)
        return dict(response.get("Tags", {}))

    async def tag_queue(self, queue_url: str, tags: Mapping[str, str]) -> None:
        with map_aws_errors("TagQueue"):
            await self._client.tag_queue(QueueUrl=queue_url, Tags=dict(tags))

    async def delete_queue(self, queue_url: str) -> None:
        with map_aws_errors("DeleteQueue"):
            await self._client.delete_queue(QueueUrl=queue_url)

    async def purge_queue(self, queue_url: str) -> None:
        with map_aws_errors("PurgeQueue"):
            await self._client.purge_queue(QueueUrl=queue_url)

    async def list_queues(self, prefix: str) -> list[str]:
        return await collect_pages(
            "ListQueues", self._client.list_queues, "QueueUrls", QueueNamePrefix=prefix, MaxResults=1000
        )

    async def list_dead_letter_source_queues(self, queue_url: str) -> list[str]:
        with map_aws_errors("ListDeadLetterSourceQueues"):
            response = await self._client.list_dead_letter_source_queues(QueueUrl=queue_url)
        return list(response.get("queueUrls", []))

    async def start_message_move_task(self, source_arn: str, destination_arn: str | None) -> str:
        params = {"SourceArn": source_arn}
        if destination_arn is not None:
            params["DestinationArn"] = destination_arn
        with map_aws_errors("StartMessageMoveTask"):
            response = await self._client.start_message_move_task(**params)
        return str(response["TaskHandle"])

    async def list_message_move_tasks(self, source_arn: str) -> list[wire.MoveTask]:
        with map_aws_errors("ListMessageMoveTasks"):
            response = await self._client.list_message_move_tasks(SourceArn=source_arn, MaxResults=10)
        return [
            wire.MoveTask(
                status=str(task.get("Status", "")),
                handle=task.get("TaskHandle"),
                moved=int(task.get("ApproximateNumberOfMessagesMoved", 0)),
                to_move=task.get("ApproximateNumberOfMessagesToMove"),
                failure_reason=task.get("FailureReason"),
                started_at=int(task.get("StartedTimestamp", 0)),
            )
            for task in response.get("Results", [])
        ]


class _NoRedirects:
    """The one method of an aiohttp session that ``AIOHTTPSession.send`` calls, never following redirects."""

    __slots__ = ("_session",)

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self._session = session

    def request(self, *args: Any, **kwargs: Any) -> Any:
        return self._session.request(*args, allow_redirects=False, **kwargs)


@dataclass(frozen=True, slots=True)
class PlaneConnection:
    """How to reach an endpoint the way a botocore client does, for the lean SQS plane's own session.

    Attributes:
        connector: a connector with the client's TLS settings (CA bundle or ``verify``, client
            certificate) and pool size; owned by whoever receives it.
        proxy: the proxy URL botocore would use for the endpoint (``None``: connect directly).
        proxy_headers: the headers botocore would send to that proxy.
    """

    connector: aiohttp.BaseConnector
    proxy: str | None
    proxy_headers: Mapping[str, str]


class QfanHttpSession(AIOHTTPSession):  # type: ignore[misc]  # aiobotocore ships no type information
    """aiobotocore's HTTP session, except that it never follows a redirect.

    The 3xx answer itself reaches botocore as any error answer does, and ``refuse_redirects`` turns it into
    ``RedirectRefused`` before botocore's parsers (or S3's region redirector) act on it.
    """

    async def _get_session(self, proxy_url: str | None) -> _NoRedirects:
        return _NoRedirects(await super()._get_session(proxy_url))

    async def plane_connection(self, url: str) -> PlaneConnection:
        """The proxy, proxy headers and TLS settings this session uses for requests to ``url``.

        They were resolved when the client was created, as botocore resolves them: ``HTTP(S)_PROXY`` and
        ``NO_PROXY`` (or ``Config(proxies=...)``), ``AWS_CA_BUNDLE`` or the profile's ``ca_bundle`` (or
        ``REQUESTS_CA_BUNDLE``), ``client_cert`` and ``proxies_config``. The connector is built the way
        this session builds its own.
        """
        proxy = self._proxy_config.proxy_url_for(url)
        headers = dict(self._proxy_config.proxy_headers_for(url))
        connector = self._create_connector(proxy)
        if inspect.isawaitable(connector):  # aiobotocore >= 3.8 reads the TLS files off the event loop
            connector = await connector
        return PlaneConnection(connector, proxy, headers)


def refuse_redirects(response_dict: Mapping[str, Any], operation_model: Any, **_: Any) -> None:
    """botocore ``before-parse`` hook: a 3xx answer becomes ``RedirectRefused`` (never retried)."""
    status = response_dict["status_code"]
    if 300 <= status < 400:
        headers = response_dict["headers"]
        raise RedirectRefused(
            status=status,
            location=headers.get("location"),
            operation=operation_model.name,
            request_id=headers.get("x-amzn-requestid") or headers.get("x-amz-request-id"),
        )


def client_config(settings: ConnectionSettings, **extra: Any) -> AioConfig:
    """The client configuration every qfan client shares, plus service-specific ``extra`` settings.

    botocore's retries are disabled (one attempt): qfan's ``RetryPolicy`` is the only retry layer. The HTTP
    session never follows redirects (see ``QfanHttpSession``).
    """
    return AioConfig(
        retries={"total_max_attempts": 1, "mode": "standard"},
        max_pool_connections=settings.max_connections,
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        tcp_keepalive=True,
        http_session_cls=QfanHttpSession,
        **extra,
    )


@asynccontextmanager
async def open_client(
    settings: ConnectionSettings, service: Service, *, session: AioSession | None = None, **config: Any
) -> AsyncIterator[Any]:
    """One pooled aiobotocore client for ``service``: endpoint, region and credentials the AWS way.

    ``session`` shares an aiobotocore session (and its credential chain) with the caller.
    """
    session = session or AioSession(profile=settings.profile)
    async with session.create_client(
        service,
        region_name=settings.resolve_region(session.get_config_variable("region")),
        endpoint_url=settings.endpoint(service),
        aws_access_key_id=settings.access_key_id,
        aws_secret_access_key=settings.secret_access_key,
        aws_session_token=settings.session_token,
        config=client_config(settings, **config),
    ) as client:
        # Before parsing, so that no 3xx reaches botocore's own redirect handling (S3 region redirects).
        client.meta.events.register("before-parse", refuse_redirects, unique_id="qfan-refuse-redirects")
        client.meta.events.register("before-send", _register_token, unique_id="qfan-register-token")
        yield client


def _register_token(request: Any, **_: Any) -> None:
    """Redact the session token a botocore request carries (the chain may have refreshed it) from logs."""
    token = request.headers.get("X-Amz-Security-Token")
    if token:
        register_secret(token.decode() if isinstance(token, bytes) else str(token))


async def plane_connection(client: Any) -> PlaneConnection:
    """How ``client`` (opened by ``open_client``) connects to its endpoint, for the lean SQS plane."""
    http_session: QfanHttpSession = client._endpoint.http_session
    return await http_session.plane_connection(client.meta.endpoint_url)


@asynccontextmanager
async def open_sqs(settings: ConnectionSettings) -> AsyncIterator[BotocoreSqs]:
    """Open one pooled aiobotocore SQS client for the lifetime of the block."""
    async with open_client(settings, "sqs") as client:
        yield BotocoreSqs(client)
