"""Amazon SQS: ``{"Records": [...]}``, identified by ``messageId``, ordered by message group.

The record views (:class:`SQSRecord` and its parts) and the source itself.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Mapping, Sequence
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from .._view import DictWrapper
from ._base import mapping
from ._path import PathSource

if TYPE_CHECKING:
    from ._nested import S3Event, SNSMessage

__all__ = [
    "SQSMessageAttribute",
    "SQSMessageAttributes",
    "SQSRecord",
    "SQSRecordAttributes",
    "SqsSource",
]

# --- the views -----------------------------------------------------------------------------


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

    # The parsed body, with the dict it was parsed from; emptied when the view is re-pointed
    # at another record (see anybatch._view.make_views), which then parses its own.
    __slots__ = ("_json",)
    _repointable = True

    @staticmethod
    def _repoint(views: Sequence[Any], records: Sequence[Mapping[str, Any]]) -> None:
        for view, record in zip(views, records, strict=False):
            view._data = record
            view._json = None

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
        data = self._data
        cached: tuple[Mapping[str, Any], Any] | None = getattr(self, "_json", None)
        if cached is not None and cached[0] is data:
            return cached[1]
        import json

        parsed = json.loads(data["body"])
        self._json: tuple[Mapping[str, Any], Any] | None = (data, parsed)
        return parsed

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

    @property
    def decoded_nested_s3_event(self) -> S3Event:
        """The S3 event notification the body holds, as a view (the body is not checked)."""
        from ._nested import S3Event  # here: only handlers of nested events pay for it

        return S3Event(self.json_body)

    @property
    def decoded_nested_sns_event(self) -> SNSMessage:
        """The SNS message the body holds (SNS to SQS, without raw delivery), as a view."""
        from ._nested import SNSMessage

        return SNSMessage(self.json_body)


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


def _fifo(arn: object) -> bool:
    return isinstance(arn, str) and arn.endswith(".fifo")


def is_fifo_batch(records: Sequence[Mapping[str, Any]]) -> bool:
    """Whether *records* come from a FIFO queue: an ``eventSourceARN`` naming a ``.fifo`` one.

    The one rule for "this SQS batch is FIFO": a FIFO batch skips the rest of a failed
    message group. A ``MessageGroupId`` alone does not make one: a fair queue (a standard
    queue whose messages carry groups) is not FIFO.
    """
    try:
        arns: set[object] = set(map(itemgetter("eventSourceARN"), records))
    except (KeyError, TypeError):
        arns = {record.get("eventSourceARN") for record in records}
    for arn in arns:  # noqa: SIM110 - any() of a generator costs a frame per batch
        if isinstance(arn, str) and arn.endswith(".fifo"):
            return True
    return False


def has_message_groups(records: Sequence[Mapping[str, Any]]) -> bool:
    """Whether any of *records* carries a ``MessageGroupId`` (a FIFO or a fair queue's)."""
    for record in records:
        attributes = mapping(record.get("attributes"))
        if attributes is not None and attributes.get("MessageGroupId"):
            return True
    return False


# --- the source ----------------------------------------------------------------------------


class SqsSource(PathSource[SQSRecord]):
    """SQS standard and FIFO queues.

    A FIFO queue's message group is the ordering key; a batch from a FIFO queue skips the
    rest of a failed group (a FIFO message handled after an earlier one of its group failed is
    out of order, and that cannot be undone). Standard queues run every record.
    """

    name = "SQS"
    event_sources = ("aws:sqs",)
    id_field = "messageId"
    id_path = ("messageId",)
    key_path = ("attributes", "MessageGroupId")
    view = SQSRecord
    model_name = "SqsRecordModel"
    own_fields = frozenset(
        {
            "messageId",
            "receiptHandle",
            "body",
            "attributes",
            "messageAttributes",
            "md5OfBody",
            "md5OfMessageAttributes",
        }
    )
    shared_fields = frozenset({"eventSource", "eventSourceARN", "awsRegion"})
    narrow_hint = "subclass anybatch.models.SqsRecordModel and narrow its body (body: Json[{name}])"

    def fast_identifiers(self, records: Sequence[Any]) -> list[Any]:
        return list(map(itemgetter("messageId"), records))

    def ordering_key(self, record: Mapping[str, Any]) -> Hashable | None:
        key = super().ordering_key(record)
        if key is not None:
            return key
        # A record from a FIFO queue without a MessageGroupId (never sent by Lambda, but
        # hand-made events have them): keep the whole queue in order rather than guess.
        arn = record.get("eventSourceARN")
        return ("queue", arn) if _fifo(arn) else None

    def ordered_without_keys(self, records: Sequence[Mapping[str, Any]]) -> bool:
        # No MessageGroupId anywhere: ordered only if a queue is FIFO (hand-made events).
        return self.skips_key_on_failure(records)

    def skips_key_on_failure(self, records: Sequence[Mapping[str, Any]]) -> bool:
        # Streams and standard queues run every record (what the incumbent documents).
        return is_fifo_batch(records)

    def trace_headers(self, record: Mapping[str, Any]) -> Mapping[str, str]:
        attributes = mapping(record.get("messageAttributes"))
        if attributes is None:
            return {}
        carrier: dict[str, str] = {}
        for name in ("traceparent", "tracestate"):
            attribute = mapping(attributes.get(name))
            value = None if attribute is None else attribute.get("stringValue")
            if isinstance(value, str):
                carrier[name] = value
        return carrier

    def xray_header(self, record: Mapping[str, Any]) -> str | None:
        attributes = mapping(record.get("attributes"))
        header = None if attributes is None else attributes.get("AWSTraceHeader")
        return header if isinstance(header, str) else None
