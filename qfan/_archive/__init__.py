"""Archiving a queue to S3 (Firehose's delivery to S3): buffered objects in date or dynamic partitions."""

from ._config import ArchiveStats, S3Archive
from ._formats import parquet_schema
from ._sink import Archiver

__all__ = ["ArchiveStats", "Archiver", "S3Archive", "parquet_schema"]
