"""The archive's pure parts as tables, without I/O: key templates, settings bounds, sizes, Parquet types."""

import argparse
from datetime import UTC, date, datetime
from typing import Any

import msgspec
import pytest

import qfan
from qfan._archive._keys import KeyTemplate, PartitionError
from qfan._cli._archive import byte_size

WHEN = datetime(2026, 12, 1, 7, 30, tzinfo=UTC)


class Inner(msgspec.Struct):
    region: str


class Record(msgspec.Struct):
    sector: str
    n: int
    inner: Inner
    flag: bool = False


@pytest.mark.parametrize(
    ("template", "attributes", "value", "expected"),
    [
        ("{yyyy}/{MM}/{dd}/{HH}/", {}, None, "2026/12/01/07/"),
        ("s={field:sector}/{yyyy}/", {}, Record("TECH", 1, Inner("eu")), "s=TECH/2026/"),
        ("{field:inner.region}/{HH}/", {}, Record("X", 1, Inner("us-east-1")), "us-east-1/07/"),
        ("{field:sector}/", {}, {"sector": "ENERGY"}, "ENERGY/"),
        ("{field:n}-{field:flag}/", {}, Record("X", 42, Inner("eu")), "42-false/"),
        ("src={attr:source}/{dd}/", {"source": "feed-a"}, None, "src=feed-a/01/"),
        ("{attr:n}/", {"n": 7}, None, "7/"),
        ("flat-", {}, None, "flat-"),
    ],
)
def test_templates_render(template: str, attributes: dict[str, Any], value: Any, expected: str) -> None:
    assert KeyTemplate.parse(template).render(WHEN, attributes, value) == expected


@pytest.mark.parametrize(
    ("template", "attributes", "value", "reason"),
    [
        ("{attr:source}/", {}, None, "attr:source is missing"),
        ("{field:sector}/", {}, {"other": 1}, "field:sector is missing"),
        ("{field:inner}/", {}, Record("X", 1, Inner("eu")), "is a Inner, not a scalar"),
        ("{field:sector}/", {}, {"sector": "a/b"}, "cannot be a key segment"),
        ("{field:sector}/", {}, {"sector": ".."}, "cannot be a key segment"),
        ("{field:sector}/", {}, {"sector": ""}, "cannot be a key segment"),
        ("{attr:source}/", {"source": "x\ny"}, None, "cannot be a key segment"),
    ],
)
def test_bad_partition_values_are_partition_errors(
    template: str, attributes: dict[str, Any], value: Any, reason: str
) -> None:
    with pytest.raises(PartitionError, match=reason):
        KeyTemplate.parse(template).render(WHEN, attributes, value)


@pytest.mark.parametrize(
    "template", ["{yy}/", "{attr:}/", "{field:a b}/", "{weird}", "a/{yyyy}}/", "../{yyyy}/", "/{yyyy}/"]
)
def test_bad_templates_are_config_errors(template: str) -> None:
    with pytest.raises(qfan.ConfigError):
        qfan.S3Archive("b", key_template=template)


@pytest.mark.parametrize(
    "options",
    [
        {"max_bytes": 0},
        {"max_bytes": 128 * 1024 * 1024 + 1},
        {"max_interval": 0},
        {"max_interval": 901},
        {"max_records": 0},
        {"max_records": 10_001},
        {"format": "csv"},
        {"compression": "zstd"},
        {"prefix": "/abs/"},
        {"prefix": "a/../b/"},
        {"prefix": "x/", "error_prefix": "x/"},
    ],
)
def test_settings_out_of_bounds_are_config_errors(options: dict[str, Any]) -> None:
    with pytest.raises(qfan.ConfigError):
        qfan.S3Archive("bucket", **options)


def test_firehose_defaults_and_bounds() -> None:
    sink = qfan.S3Archive("bucket")
    assert (sink.max_bytes, sink.max_interval, sink.key_template) == (
        5 << 20,
        300.0,
        "{yyyy}/{MM}/{dd}/{HH}/",
    )
    qfan.S3Archive("bucket", max_bytes=128 << 20, max_interval=900)  # Firehose's largest
    qfan.S3Archive("bucket", max_bytes=1, max_interval=0.01)  # smaller than Firehose allows: for tests


@pytest.mark.parametrize(
    ("text", "size"), [("5242880", 5 << 20), ("512KiB", 512 << 10), ("5MiB", 5 << 20), ("128M", 128 << 20)]
)
def test_cli_sizes(text: str, size: int) -> None:
    assert byte_size(text) == size


@pytest.mark.parametrize("text", ["5GB", "-1", "MiB", "1.5MiB"])
def test_cli_sizes_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        byte_size(text)


def test_parquet_types_from_msgspec_types() -> None:
    pa = pytest.importorskip("pyarrow")

    class Typed(msgspec.Struct, rename="camel"):
        some_int: int
        some_bytes: bytes
        day: date
        counts: dict[str, int]
        nested: Inner
        maybe: float | None = None

    schema = qfan.parquet_schema(Typed)
    assert schema.names == ["someInt", "someBytes", "day", "counts", "nested", "maybe"]
    assert [f.type for f in schema] == [
        pa.int64(),
        pa.binary(),
        pa.date32(),
        pa.map_(pa.string(), pa.int64()),
        pa.struct([pa.field("region", pa.string(), nullable=False)]),
        pa.float64(),
    ]
    assert [f.nullable for f in schema] == [False, False, False, False, False, True]


@pytest.mark.parametrize("record_type", [Any, dict[str, int], int, Record | None])
def test_parquet_needs_a_record_type(record_type: Any) -> None:
    pytest.importorskip("pyarrow")
    with pytest.raises(qfan.ConfigError):
        qfan.parquet_schema(record_type)
