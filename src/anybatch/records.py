"""Dict-backed views of SQS, Kinesis Data Streams, DynamoDB Streams, Kafka and Firehose records.

A view wraps the record's dict without copying it; each property reads (and decodes) its value
only when it is accessed, so building a view costs one small object. Views are read-only
:class:`~collections.abc.Mapping` s of the raw record too (``record["messageId"]``,
``record.get(...)``), and ``raw_event`` is the dict itself. Names follow the incumbent's data
classes, so handlers written for them keep working.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from decimal import Decimal

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
    "SQSMessageAttribute",
    "SQSMessageAttributes",
    "SQSRecord",
    "SQSRecordAttributes",
    "deserialize_dynamodb",
]


def _b64decode(value: str | bytes) -> bytes:
    """Decode strict base64: any character outside the alphabet, or bad padding, raises.

    Lenient decoding drops what it cannot read (``"$$$$aGk="`` would become ``b"hi"``), so a
    corrupt payload would succeed as another one instead of failing its record.
    """
    return base64.b64decode(value, validate=True)


class DictWrapper(Mapping[str, Any]):
    """A read-only view of one dict of an event."""

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, Any]) -> None:
        self._data = data

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, DictWrapper):
            return self._data == other._data
        return self._data == other

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._data!r})"

    @property
    def raw_event(self) -> Mapping[str, Any]:
        """The wrapped dict, unchanged."""
        return self._data


# --- SQS -------------------------------------------------------------------------------


class SQSRecordAttributes(DictWrapper):
    """The ``attributes`` of an SQS record."""

    __slots__ = ()

    @property
    def approximate_receive_count(self) -> str:
        """How many times the message was received (a number, as SQS sends it: a string)."""
        return str(self._data["ApproximateReceiveCount"])

    @property
    def approximate_first_receive_timestamp(self) -> str:
        """When the message was first received, in epoch milliseconds."""
        return str(self._data["ApproximateFirstReceiveTimestamp"])

    @property
    def sent_timestamp(self) -> str:
        """When the message was sent, in epoch milliseconds."""
        return str(self._data["SentTimestamp"])

    @property
    def sender_id(self) -> str:
        """The IAM user or role that sent the message."""
        return str(self._data["SenderId"])

    @property
    def aws_trace_header(self) -> str | None:
        """The X-Ray trace header, when there is one."""
        return self._data.get("AWSTraceHeader")

    @property
    def sequence_number(self) -> str | None:
        """FIFO queues: the message's sequence number."""
        return self._data.get("SequenceNumber")

    @property
    def message_group_id(self) -> str | None:
        """FIFO queues: the message group; messages of a group are processed in order."""
        return self._data.get("MessageGroupId")

    @property
    def message_deduplication_id(self) -> str | None:
        """FIFO queues: the deduplication id."""
        return self._data.get("MessageDeduplicationId")

    @property
    def dead_letter_queue_source_arn(self) -> str | None:
        """For a message moved to a dead-letter queue: the ARN of its source queue."""
        return self._data.get("DeadLetterQueueSourceArn")


class SQSMessageAttribute(DictWrapper):
    """One user-defined message attribute."""

    __slots__ = ()

    @property
    def string_value(self) -> str | None:
        """The value of a ``String`` or ``Number`` attribute."""
        return self._data.get("stringValue")

    @property
    def binary_value(self) -> str | None:
        """The base64 value of a ``Binary`` attribute."""
        return self._data.get("binaryValue")

    @property
    def data_type(self) -> str:
        """``String``, ``Number`` or ``Binary`` (with an optional custom suffix)."""
        return str(self._data["dataType"])


class SQSMessageAttributes(Mapping[str, SQSMessageAttribute]):
    """The user-defined message attributes, by name."""

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, Any]) -> None:
        self._data = data

    def __getitem__(self, key: str) -> SQSMessageAttribute:
        return SQSMessageAttribute(self._data[key])

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


class SQSRecord(DictWrapper):
    """One message of an SQS event."""

    __slots__ = ("_json",)

    @property
    def message_id(self) -> str:
        """The message id: the ``itemIdentifier`` reported when the record fails."""
        return str(self._data["messageId"])

    @property
    def receipt_handle(self) -> str:
        """The handle that deletes or changes the visibility of this receipt of the message."""
        return str(self._data["receiptHandle"])

    @property
    def body(self) -> str:
        """The message body, as sent."""
        return str(self._data["body"])

    @property
    def json_body(self) -> Any:
        """The body parsed as JSON (parsed once, on first access)."""
        try:
            return self._json
        except AttributeError:
            import json

            self._json: Any = json.loads(self._data["body"])
            return self._json

    @property
    def attributes(self) -> SQSRecordAttributes:
        """The system attributes (receive count, timestamps, FIFO group...)."""
        return SQSRecordAttributes(self._data.get("attributes") or {})

    @property
    def message_attributes(self) -> SQSMessageAttributes:
        """The user-defined message attributes."""
        return SQSMessageAttributes(self._data.get("messageAttributes") or {})

    @property
    def md5_of_body(self) -> str:
        """The MD5 digest of the body."""
        return str(self._data["md5OfBody"])

    @property
    def event_source(self) -> str:
        """Always ``aws:sqs``."""
        return str(self._data["eventSource"])

    @property
    def event_source_arn(self) -> str:
        """The ARN of the queue the message came from."""
        return str(self._data["eventSourceARN"])

    @property
    def aws_region(self) -> str:
        """The region of the queue."""
        return str(self._data["awsRegion"])

    @property
    def queue_url(self) -> str:
        """The queue's public URL, built from ``eventSourceARN`` (its partition's domain)."""
        _, partition, _, region, account, name = self.event_source_arn.split(":", 5)
        domain = _PARTITION_DOMAINS.get(partition, "amazonaws.com")
        return f"https://sqs.{region}.{domain}/{account}/{name}"


#: The DNS suffix of each AWS partition whose endpoints are not under ``amazonaws.com``
#: (botocore's ``endpoints.json``).
_PARTITION_DOMAINS = {
    "aws-cn": "amazonaws.com.cn",
    "aws-iso": "c2s.ic.gov",
    "aws-iso-b": "sc2s.sgov.gov",
    "aws-iso-e": "cloud.adc-e.uk",
    "aws-iso-f": "csp.hci.ic.gov",
    "aws-eusc": "amazonaws.eu",
}


# --- Kinesis ---------------------------------------------------------------------------


class Base64Data(DictWrapper):
    """A view whose ``data`` field is a base64 payload (Kinesis, Firehose)."""

    __slots__ = ()

    def data_as_bytes(self) -> bytes:
        """The payload, base64-decoded; raises :class:`binascii.Error` on invalid base64."""
        return _b64decode(self._data["data"])

    def data_as_text(self) -> str:
        """The payload decoded as UTF-8 text."""
        return self.data_as_bytes().decode("utf-8")

    def data_as_json(self) -> Any:
        """The payload parsed as JSON."""
        import json

        return json.loads(self.data_as_bytes())


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


class _StreamRecord(DictWrapper):
    """What Kinesis and DynamoDB Streams records have in common."""

    __slots__ = ()

    @property
    def aws_region(self) -> str:
        """The region of the stream."""
        return str(self._data["awsRegion"])

    @property
    def event_id(self) -> str:
        """The record's id in the stream (Kinesis: ``shardId:sequenceNumber``)."""
        return str(self._data["eventID"])

    @property
    def event_name(self) -> str:
        """Kinesis: ``aws:kinesis:record``; DynamoDB: ``INSERT``, ``MODIFY`` or ``REMOVE``."""
        return str(self._data["eventName"])

    @property
    def event_source(self) -> str:
        """``aws:kinesis`` or ``aws:dynamodb``."""
        return str(self._data["eventSource"])

    @property
    def event_source_arn(self) -> str:
        """The ARN of the stream (Kinesis: or of its consumer)."""
        return str(self._data["eventSourceARN"])

    @property
    def event_version(self) -> str:
        """The event format's version."""
        return str(self._data["eventVersion"])


class KinesisStreamRecord(_StreamRecord):
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


# --- DynamoDB Streams ------------------------------------------------------------------


def _decimal(text: str) -> Decimal:
    from decimal import Decimal

    return Decimal(text)


def deserialize_dynamodb(value: Mapping[str, Any]) -> Any:
    """Turn one DynamoDB attribute value (``{"S": "x"}``, ``{"N": "1"}``...) into Python.

    ``N`` becomes :class:`~decimal.Decimal` (exact, as DynamoDB numbers are), ``B`` bytes,
    ``SS``/``NS``/``BS`` sets, ``M`` and ``L`` dicts and lists, ``NULL`` ``None``.
    """
    if len(value) != 1:
        raise ValueError(f"a DynamoDB attribute value has exactly one type key, got {value!r}")
    ((tag, raw),) = value.items()
    if tag == "S" or tag == "BOOL":
        return raw
    if tag == "N":
        return _decimal(raw)
    if tag == "NULL":
        return None
    if tag == "M":
        return {k: deserialize_dynamodb(v) for k, v in raw.items()}
    if tag == "L":
        return [deserialize_dynamodb(v) for v in raw]
    if tag == "B":
        return _b64decode(raw)
    if tag == "SS":
        return set(raw)
    if tag == "NS":
        return {_decimal(n) for n in raw}
    if tag == "BS":
        return {_b64decode(b) for b in raw}
    raise ValueError(f"unknown DynamoDB attribute type {tag!r}")


def _image(data: Mapping[str, Any], name: str) -> dict[str, Any] | None:
    image = data.get(name)
    if image is None:
        return None
    return {k: deserialize_dynamodb(v) for k, v in image.items()}


class DynamoDBStreamRecord(DictWrapper):
    """The ``dynamodb`` part of a DynamoDB Streams record."""

    __slots__ = ()

    @property
    def approximate_creation_date_time(self) -> float:
        """When the change was made, in epoch seconds."""
        return float(self._data["ApproximateCreationDateTime"])

    @property
    def keys(self) -> dict[str, Any] | None:  # type: ignore[override]
        """The item's primary key, as Python values."""
        return _image(self._data, "Keys")

    @property
    def new_image(self) -> dict[str, Any] | None:
        """The item after the change (``NEW_IMAGE`` / ``NEW_AND_OLD_IMAGES`` streams)."""
        return _image(self._data, "NewImage")

    @property
    def old_image(self) -> dict[str, Any] | None:
        """The item before the change (``OLD_IMAGE`` / ``NEW_AND_OLD_IMAGES`` streams)."""
        return _image(self._data, "OldImage")

    @property
    def sequence_number(self) -> str:
        """The sequence number: the ``itemIdentifier`` reported when the record fails."""
        return str(self._data["SequenceNumber"])

    @property
    def size_bytes(self) -> int:
        """The size of the stream record."""
        return int(self._data["SizeBytes"])

    @property
    def stream_view_type(self) -> str:
        """``KEYS_ONLY``, ``NEW_IMAGE``, ``OLD_IMAGE`` or ``NEW_AND_OLD_IMAGES``."""
        return str(self._data["StreamViewType"])


class DynamoDBRecord(_StreamRecord):
    """One record of a DynamoDB Streams event."""

    __slots__ = ()

    @property
    def user_identity(self) -> Mapping[str, Any] | None:
        """For a TTL deletion: who made it (``dynamodb.amazonaws.com``)."""
        return self._data.get("userIdentity")

    @property
    def dynamodb(self) -> DynamoDBStreamRecord:
        """The change itself: keys, images, sequence number."""
        return DynamoDBStreamRecord(self._data["dynamodb"])


# --- Kafka and Firehose ------------------------------------------------------------------
# Their views live with their sources and are imported on first use, so that a function
# that reads SQS pays no import time for them.

_LAZY = {
    "KafkaEventRecord": "kafka",
    "FirehoseRecord": "firehose",
    "FirehoseRecordMetadata": "firehose",
    "FirehoseResult": "firehose",
    "DROP": "firehose",
}

if TYPE_CHECKING:
    from ._sources.firehose import DROP, FirehoseRecord, FirehoseRecordMetadata, FirehoseResult
    from ._sources.kafka import KafkaEventRecord


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"anybatch._sources.{module}"), name)
    if isinstance(value, type):
        value.__module__ = __name__  # tracebacks, reprs and docs say anybatch.records.X
    globals()[name] = value
    return value
