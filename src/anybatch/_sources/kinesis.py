"""Kinesis Data Streams: identified by sequence number, ordered by partition key."""

from __future__ import annotations

from ..records import KinesisStreamRecord
from ._path import PathSource

__all__ = ["KinesisSource"]


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
