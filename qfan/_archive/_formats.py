"""What an archive object holds: JSON Lines (optionally gzipped) or Parquet, and the Parquet schema derived
from the msgspec type of the records. Pure; ``pyarrow`` (the ``qfan[parquet]`` extra) is imported only when
Parquet is asked for.
"""

from __future__ import annotations

import gzip
import importlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any, Literal

import msgspec
import msgspec.inspect as mi

from .._exceptions import ConfigError

FormatName = Literal["jsonl", "parquet"]
Compression = Literal["gzip"] | None

# Kept as Python objects (not strings) when records become rows, so Arrow stores them typed.
_ROW_TYPES = (datetime, date, time, bytes)


def _pyarrow() -> Any:
    try:
        return importlib.import_module("pyarrow")
    except ImportError as exc:
        raise ConfigError("format='parquet' needs pyarrow: pip install 'qfan[parquet]'") from exc


@dataclass(frozen=True, slots=True)
class Encoded:
    """An object's bytes and how to store them.

    Attributes:
        data: the object.
        content_type: its ``Content-Type``.
        extension: the key's suffix (``.jsonl``, ``.jsonl.gz``, ``.parquet``).
    """

    data: bytes
    content_type: str
    extension: str


def encode_lines(lines: Sequence[bytes], compression: Compression) -> Encoded:
    """JSON Lines: one record per line; gzip with a fixed mtime, so one batch always makes the same bytes."""
    data = b"".join(line + b"\n" for line in lines)
    if compression == "gzip":
        return Encoded(gzip.compress(data, mtime=0), "application/gzip", ".jsonl.gz")
    return Encoded(data, "application/x-ndjson", ".jsonl")


class ParquetWriter:
    """Writes records of one msgspec type as Parquet, with the schema derived from the type.

    Attributes:
        schema: the ``pyarrow.Schema`` (column names are the fields' encoded names).
    """

    def __init__(self, record_type: Any, compression: str = "snappy") -> None:
        pa = _pyarrow()
        self._pa = pa
        self._parquet = importlib.import_module("pyarrow.parquet")
        info = mi.type_info(record_type)
        if not isinstance(info, (mi.StructType, mi.DataclassType, mi.TypedDictType)):
            raise ConfigError(
                f"format='parquet' needs a struct, dataclass or TypedDict record type, got {record_type!r}"
            )
        self.schema = pa.schema([_arrow_field(pa, f.encode_name, f.type) for f in _fields(info)])
        self._compression = compression

    def row(self, value: Any) -> dict[str, Any]:
        """One record as a row of Python values (checked against the schema by :meth:`encode`)."""
        row: dict[str, Any] = msgspec.to_builtins(value, builtin_types=_ROW_TYPES)
        return row

    def encode(self, rows: Sequence[dict[str, Any]]) -> tuple[Encoded | None, dict[int, str]]:
        """The Parquet file of the rows that fit the schema (``None`` if none does), and why each other
        row (by index) does not."""
        pa = self._pa
        try:
            table = pa.Table.from_pylist(list(rows), schema=self.schema)
            refused: dict[int, str] = {}
        except (pa.ArrowException, ValueError, TypeError, OverflowError):
            refused = {}
            for index, row in enumerate(rows):  # find the rows at fault, keep the others
                try:
                    pa.Table.from_pylist([row], schema=self.schema)
                except (pa.ArrowException, ValueError, TypeError, OverflowError) as exc:
                    refused[index] = f"{type(exc).__name__}: {exc}"
            kept = [row for index, row in enumerate(rows) if index not in refused]
            if not kept:
                return None, refused
            table = pa.Table.from_pylist(kept, schema=self.schema)
        sink = io.BytesIO()
        self._parquet.write_table(table, sink, compression=self._compression)
        return Encoded(sink.getvalue(), "application/vnd.apache.parquet", ".parquet"), refused


def parquet_schema(record_type: Any) -> Any:
    """The ``pyarrow.Schema`` qfan writes records of ``record_type`` with."""
    return ParquetWriter(record_type).schema


def _fields(info: mi.StructType | mi.DataclassType | mi.TypedDictType) -> tuple[mi.Field, ...]:
    return info.fields


def _arrow_field(pa: Any, name: str, type_: mi.Type) -> Any:
    nullable = False
    if isinstance(type_, mi.UnionType) and type_.includes_none:
        others = [t for t in type_.types if not isinstance(t, mi.NoneType)]
        nullable = True
        if len(others) == 1:
            type_ = others[0]
    return pa.field(name, _arrow_type(pa, type_), nullable=nullable)


def _arrow_type(pa: Any, t: mi.Type) -> Any:
    simple = {
        mi.IntType: pa.int64(),
        mi.FloatType: pa.float64(),
        mi.BoolType: pa.bool_(),
        mi.StrType: pa.string(),
        mi.BytesType: pa.binary(),
        mi.ByteArrayType: pa.binary(),
        mi.DateType: pa.date32(),
        mi.UUIDType: pa.string(),
        mi.DecimalType: pa.string(),
    }
    for kind, arrow in simple.items():
        if isinstance(t, kind):
            return arrow
    if isinstance(t, mi.DateTimeType):
        return pa.timestamp("us", tz=None if t.tz is False else "UTC")  # aware or either: stored as UTC
    if isinstance(t, mi.TimeType):
        return pa.time64("us")
    if isinstance(t, (mi.EnumType, mi.LiteralType)):
        values = [m.value for m in t.cls] if isinstance(t, mi.EnumType) else list(t.values)
        return pa.int64() if all(isinstance(v, int) for v in values) else pa.string()
    if isinstance(t, (mi.ListType, mi.SetType, mi.FrozenSetType, mi.VarTupleType)):
        return pa.list_(pa.field("element", _arrow_type(pa, t.item_type)))  # Parquet's name for it
    if isinstance(t, mi.DictType):
        return pa.map_(_arrow_type(pa, t.key_type), _arrow_type(pa, t.value_type))
    if isinstance(t, (mi.StructType, mi.DataclassType, mi.TypedDictType)):
        return pa.struct([_arrow_field(pa, f.encode_name, f.type) for f in _fields(t)])
    if isinstance(t, mi.UnionType) and t.includes_none:
        return _arrow_field(pa, "_", t).type
    raise ConfigError(f"format='parquet': no Arrow column type for {t!r} (give the field a concrete type)")
