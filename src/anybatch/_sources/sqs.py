"""Amazon SQS: ``{"Records": [...]}``, identified by ``messageId``, ordered by message group."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from operator import itemgetter
from typing import Any

from ..records import SQSRecord
from ._base import mapping
from ._path import PathSource

__all__ = ["SqsSource"]


def _fifo(arn: object) -> bool:
    return isinstance(arn, str) and arn.endswith(".fifo")


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
        try:
            arns: set[object] = set(map(itemgetter("eventSourceARN"), records))
        except (KeyError, TypeError):
            arns = {record.get("eventSourceARN") for record in records}
        return any(map(_fifo, arns))

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
