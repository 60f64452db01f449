"""S3 planes: the object calls payload offloading makes."""

from __future__ import annotations

from typing import Any

import pytest

import qfan

from .conftest import Planes, bucket_name


async def test_put_get_delete(planes: Planes) -> None:
    bucket = bucket_name()
    await planes.s3.create_bucket(bucket)
    await planes.s3.create_bucket(bucket)  # idempotent for its owner
    await planes.s3.put_object(bucket, "p/one", b"\x00payload\xff", content_type="application/json")
    stored = await planes.s3.get_object(bucket, "p/one", max_size=1024)
    assert (stored.size, stored.data, stored.content_type) == (9, b"\x00payload\xff", "application/json")
    await planes.s3.delete_object(bucket, "p/one")
    with pytest.raises(qfan.ObjectNotFound):
        await planes.s3.get_object(bucket, "p/one", max_size=1024)
    await planes.s3.delete_object(bucket, "p/one")  # already gone: fine


async def test_too_large_object_is_not_read(planes: Planes) -> None:
    bucket = bucket_name()
    await planes.s3.create_bucket(bucket)
    await planes.s3.put_object(bucket, "big", b"x" * 2048)
    stored = await planes.s3.get_object(bucket, "big", max_size=1024)
    assert (stored.size, stored.data) == (2048, None)
    exact = await planes.s3.get_object(bucket, "big", max_size=2048)
    assert exact.data == b"x" * 2048


async def test_missing_bucket(planes: Planes) -> None:
    bucket = bucket_name()
    with pytest.raises(qfan.ObjectNotFound) as missing:
        await planes.s3.get_object(bucket, "key", max_size=10)
    assert missing.value.code == "NoSuchBucket"
    with pytest.raises(qfan.ObjectNotFound):
        await planes.s3.put_object(bucket, "key", b"x")


async def test_lifecycle_rules(planes: Planes) -> None:
    bucket = bucket_name()
    await planes.s3.create_bucket(bucket)
    rule = {
        "ID": "qfan-expire:p/",
        "Filter": {"Prefix": "p/"},
        "Status": "Enabled",
        "Expiration": {"Days": 4},
    }
    seen: list[list[dict[str, Any]]] = []

    def add(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
        seen.append(rules)
        return [r for r in rules if r.get("ID") != rule["ID"]] + [rule]

    await planes.s3.update_lifecycle_rules(bucket, add)
    await planes.s3.update_lifecycle_rules(bucket, add)
    assert seen[0] == []
    assert [r["ID"] for r in seen[1]] == [rule["ID"]]
    assert seen[1][0]["Expiration"] == {"Days": 4}
