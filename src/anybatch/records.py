"""Dict-backed views of SQS, Kinesis Data Streams, DynamoDB Streams, Kafka and Firehose records.

A view wraps the record's dict without copying it; each property reads (and decodes) its value
only when it is accessed, so building a view costs one small object. Views are read-only
:class:`~collections.abc.Mapping` s of the raw record too (``record["messageId"]``,
``record.get(...)``), and ``raw_event`` is the dict itself. Names follow the incumbent's data
classes, so handlers written for them keep working.

The S3 and SNS views are what ``SQSRecord.decoded_nested_s3_event`` and
``decoded_nested_sns_event`` return for an S3 notification or an SNS message in a body.
"""

# Each source's views live with the source; this module only names them, and imports a
# source's module when one of its names is first used, so a function that reads SQS pays no
# import time for the other sources.

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._sources._nested import (
        S3Bucket,
        S3Event,
        S3EventRecord,
        S3EventRecordGlacierEventData,
        S3EventRecordGlacierRestoreEventData,
        S3EventRecordIntelligentTieringEventData,
        S3Identity,
        S3Message,
        S3Object,
        S3RequestParameters,
        SNSMessage,
        SNSMessageAttribute,
    )
    from ._sources.dynamodb import DynamoDBRecord, DynamoDBStreamRecord
    from ._sources.firehose import DROP, FirehoseRecord, FirehoseRecordMetadata, FirehoseResult
    from ._sources.kafka import KafkaEventRecord
    from ._sources.kinesis import KinesisStreamRecord, KinesisStreamRecordPayload
    from ._sources.sqs import (
        SQSMessageAttribute,
        SQSMessageAttributes,
        SQSRecord,
        SQSRecordAttributes,
    )
    from ._view import Base64Data, DictWrapper, deserialize_dynamodb

__all__ = [
    "DROP",
    "Base64Data",
    "DictWrapper",
    "DynamoDBRecord",
    "DynamoDBStreamRecord",
    "FirehoseRecord",
    "FirehoseRecordMetadata",
    "FirehoseResult",
    "KafkaEventRecord",
    "KinesisStreamRecord",
    "KinesisStreamRecordPayload",
    "S3Bucket",
    "S3Event",
    "S3EventRecord",
    "S3EventRecordGlacierEventData",
    "S3EventRecordGlacierRestoreEventData",
    "S3EventRecordIntelligentTieringEventData",
    "S3Identity",
    "S3Message",
    "S3Object",
    "S3RequestParameters",
    "SNSMessage",
    "SNSMessageAttribute",
    "SQSMessageAttribute",
    "SQSMessageAttributes",
    "SQSRecord",
    "SQSRecordAttributes",
    "deserialize_dynamodb",
]

#: The module each name lives in.
_OWNERS = {
    "Base64Data": "anybatch._view",
    "DictWrapper": "anybatch._view",
    "deserialize_dynamodb": "anybatch._view",
    "SQSMessageAttribute": "anybatch._sources.sqs",
    "SQSMessageAttributes": "anybatch._sources.sqs",
    "SQSRecord": "anybatch._sources.sqs",
    "SQSRecordAttributes": "anybatch._sources.sqs",
    "S3Bucket": "anybatch._sources._nested",
    "S3Event": "anybatch._sources._nested",
    "S3EventRecord": "anybatch._sources._nested",
    "S3EventRecordGlacierEventData": "anybatch._sources._nested",
    "S3EventRecordGlacierRestoreEventData": "anybatch._sources._nested",
    "S3EventRecordIntelligentTieringEventData": "anybatch._sources._nested",
    "S3Identity": "anybatch._sources._nested",
    "S3Message": "anybatch._sources._nested",
    "S3Object": "anybatch._sources._nested",
    "S3RequestParameters": "anybatch._sources._nested",
    "SNSMessage": "anybatch._sources._nested",
    "SNSMessageAttribute": "anybatch._sources._nested",
    "KinesisStreamRecord": "anybatch._sources.kinesis",
    "KinesisStreamRecordPayload": "anybatch._sources.kinesis",
    "DynamoDBRecord": "anybatch._sources.dynamodb",
    "DynamoDBStreamRecord": "anybatch._sources.dynamodb",
    "KafkaEventRecord": "anybatch._sources.kafka",
    "DROP": "anybatch._sources.firehose",
    "FirehoseRecord": "anybatch._sources.firehose",
    "FirehoseRecordMetadata": "anybatch._sources.firehose",
    "FirehoseResult": "anybatch._sources.firehose",
}


def __getattr__(name: str) -> Any:
    owner = _OWNERS.get(name)
    if owner is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(owner), name)
    if hasattr(value, "__qualname__") and value.__module__ == owner:  # a class or a function
        value.__module__ = __name__  # tracebacks, reprs and docs say anybatch.records.X
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
