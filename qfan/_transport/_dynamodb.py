"""DynamoDB over an aiobotocore client: the few calls a key-value record store needs (idempotency records).

Items cross this seam as plain Python values (``str``, ``int``, ``float``, ``bytes``); DynamoDB's typed
attribute values (``{"S": ...}``, ``{"N": ...}``, ``{"B": ...}``) stay here. Conditional writes answer
``False`` when their condition does not hold, instead of raising. Like the other planes, each method makes
one request (declaring a table polls until it is active) and maps errors with ``map_aws_errors``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import anyio

from .._exceptions import AwsError, QfanError
from ._botocore import open_client
from ._errors import map_aws_errors, normalise_code
from ._settings import ConnectionSettings
from ._types import Item, ItemValue

_CONDITION_FAILED = "ConditionalCheckFailedException"
_EXISTS = frozenset({"ResourceInUseException"})
_MISSING = frozenset({"ResourceNotFoundException"})
_ACTIVE_WAIT = 60.0


def to_dynamodb(value: ItemValue) -> dict[str, Any]:
    """One plain value as DynamoDB's typed attribute value."""
    if isinstance(value, bytes):
        return {"B": value}
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise TypeError(f"unsupported item value {value!r}")
    if isinstance(value, str):
        return {"S": value}
    return {"N": str(value)}


def from_dynamodb(value: Mapping[str, Any]) -> ItemValue:
    """One typed attribute value as a plain value (``N`` becomes ``int`` or ``float``)."""
    if "S" in value:
        return str(value["S"])
    if "B" in value:
        return bytes(value["B"])
    if "N" in value:
        number = Decimal(value["N"])
        return int(number) if number == number.to_integral_value() else float(number)
    raise QfanError(f"unsupported DynamoDB attribute value {sorted(value)}")


def _typed(item: Item) -> dict[str, dict[str, Any]]:
    return {name: to_dynamodb(value) for name, value in item.items()}


class BotocoreDynamoDb:
    """Table declaration and conditional item writes over an aiobotocore DynamoDB client."""

    def __init__(self, client: Any) -> None:
        self._client = client

    async def ensure_table(self, table: str, key: str, ttl_attribute: str | None) -> bool:
        """Create ``table`` (string hash key ``key``, on-demand) unless it exists; wait until it is active;
        let DynamoDB expire items by ``ttl_attribute``. True when the table was created."""
        created = False
        if await self._status(table) is None:
            try:
                with map_aws_errors("CreateTable"):
                    await self._client.create_table(
                        TableName=table,
                        KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
                        AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
                        BillingMode="PAY_PER_REQUEST",
                    )
                created = True
            except AwsError as exc:
                if normalise_code(exc.code) not in _EXISTS:  # someone else created it meanwhile: fine
                    raise
        with anyio.fail_after(_ACTIVE_WAIT):
            while True:  # a new table becomes active in seconds; DynamoDB offers nothing to wait on
                if await self._status(table) == "ACTIVE":
                    break
                await anyio.sleep(0.2)
        if ttl_attribute is not None and created:
            with map_aws_errors("UpdateTimeToLive"):
                await self._client.update_time_to_live(
                    TableName=table,
                    TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl_attribute},
                )
        return created

    async def _status(self, table: str) -> str | None:
        try:
            with map_aws_errors("DescribeTable"):
                response = await self._client.describe_table(TableName=table)
        except AwsError as exc:
            if normalise_code(exc.code) in _MISSING:
                return None
            raise
        return str(response["Table"].get("TableStatus", "ACTIVE"))

    async def put_item(
        self, table: str, item: Item, *, condition: str | None = None, values: Item | None = None
    ) -> bool:
        """PutItem, if ``condition`` (with ``:name`` placeholders from ``values``) holds; whether it did."""
        params: dict[str, Any] = {"TableName": table, "Item": _typed(item)}
        return await self._conditional("PutItem", self._client.put_item, params, condition, values)

    async def delete_item(
        self, table: str, key: Item, *, condition: str | None = None, values: Item | None = None
    ) -> bool:
        """DeleteItem, if ``condition`` holds; whether it did."""
        params: dict[str, Any] = {"TableName": table, "Key": _typed(key)}
        return await self._conditional("DeleteItem", self._client.delete_item, params, condition, values)

    async def get_item(self, table: str, key: Item) -> dict[str, ItemValue] | None:
        """GetItem with a strongly consistent read; ``None`` when there is no such item."""
        with map_aws_errors("GetItem"):
            response = await self._client.get_item(TableName=table, Key=_typed(key), ConsistentRead=True)
        found = response.get("Item")
        return None if found is None else {name: from_dynamodb(v) for name, v in found.items()}

    @staticmethod
    async def _conditional(
        operation: str, call: Any, params: dict[str, Any], condition: str | None, values: Item | None
    ) -> bool:
        if condition is not None:
            params["ConditionExpression"] = condition
            if values:
                params["ExpressionAttributeValues"] = _typed(values)
        try:
            with map_aws_errors(operation):
                await call(**params)
        except AwsError as exc:
            if normalise_code(exc.code) == _CONDITION_FAILED:
                return False
            raise
        return True


@asynccontextmanager
async def open_dynamodb(settings: ConnectionSettings) -> AsyncIterator[BotocoreDynamoDb]:
    """Open one pooled aiobotocore DynamoDB client for the lifetime of the block."""
    async with open_client(settings, "dynamodb") as client:
        yield BotocoreDynamoDb(client)
