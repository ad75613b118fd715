"""Kinesis Data Streams: identified by sequence number, ordered by partition key."""

from __future__ import annotations

from typing import Any

from .._view import Base64Data, StreamRecord
from ._path import PathSource

__all__ = ["KinesisSource", "KinesisStreamRecord", "KinesisStreamRecordPayload"]


class KinesisStreamRecordPayload(Base64Data):
    """The ``kinesis`` part of a Kinesis record."""

    __slots__ = ()

    @property
    def approximate_arrival_timestamp(self) -> float:
        """When the record reached the stream, in epoch seconds."""
        return float(self._data["approximateArrivalTimestamp"])

    @property
    def data(self) -> str:
        """The payload, base64-encoded as Lambda delivers it."""
        return str(self._data["data"])

    @property
    def kinesis_schema_version(self) -> str:
        """The schema version of the record."""
        return str(self._data["kinesisSchemaVersion"])

    @property
    def partition_key(self) -> str:
        """The partition key: records with the same key are kept in order."""
        return str(self._data["partitionKey"])

    @property
    def sequence_number(self) -> str:
        """The sequence number: the ``itemIdentifier`` reported when the record fails."""
        return str(self._data["sequenceNumber"])

    def data_zlib_compressed_as_json(self) -> Any:
        """The payload, zlib- or gzip-decompressed and parsed as JSON.

        What CloudWatch Logs subscriptions put on a stream: ``{"logGroup": ..., "logEvents":
        [...]}``.
        """
        import json
        import zlib

        return json.loads(zlib.decompress(self.data_as_bytes(), zlib.MAX_WBITS | 32))


class KinesisStreamRecord(StreamRecord):
    """One record of a Kinesis Data Streams event."""

    __slots__ = ()

    @property
    def invoke_identity_arn(self) -> str:
        """The role Lambda read the stream with."""
        return str(self._data["invokeIdentityArn"])

    @property
    def kinesis(self) -> KinesisStreamRecordPayload:
        """The record's payload and its stream metadata."""
        return KinesisStreamRecordPayload(self._data["kinesis"])


class KinesisSource(PathSource[KinesisStreamRecord]):
    """Kinesis Data Streams: records that share a partition key run in order."""

    name = "KinesisDataStreams"
    event_sources = ("aws:kinesis",)
    id_field = "kinesis.sequenceNumber"
    id_path = ("kinesis", "sequenceNumber")
    key_path = ("kinesis", "partitionKey")
    view = KinesisStreamRecord
    model_name = "KinesisDataStreamRecordModel"
    own_fields = frozenset({"kinesis", "invokeIdentityArn"})
    shared_fields = frozenset(
        {"eventSource", "eventSourceARN", "awsRegion", "eventID", "eventName", "eventVersion"}
    )
    narrow_hint = (
        "subclass anybatch.models.KinesisDataStreamRecordPayload with data: Json[{name}], "
        "and anybatch.models.KinesisDataStreamRecordModel with kinesis: that payload"
    )
