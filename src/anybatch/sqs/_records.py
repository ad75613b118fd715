"""What a worker hands the processor: received messages as Lambda's records, and a context.

A handler cannot tell a worker's batch from Lambda's: each message becomes the record Lambda
would deliver, and the batch runs with a Lambda context that names the worker.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._plan import QueueRef

__all__ = ["WorkerContext", "lambda_record"]


def lambda_record(message: Mapping[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """One received SQS message in the shape of a Lambda event's SQS record.

    The system attributes are Lambda's (strings), the message attributes Lambda's
    (``stringValue``, ``binaryValue`` in base64, ``dataType``...), so that a handler cannot
    tell a worker's record from Lambda's. The record takes over the message's ``Attributes``
    dict (the worker lets the message go): one dict a message less in flight.
    """
    attributes: dict[str, Any] = {}
    # Annotated, not cast(): typing.cast is a call at run time, twice a message.
    message_attributes: Mapping[str, Any] = message.get("MessageAttributes") or {}
    system: Mapping[str, Any] = message.get("Attributes") or {}
    for name, value in message_attributes.items():
        binary = value.get("BinaryValue")
        binaries: list[bytes] = list(value.get("BinaryListValues") or [])
        attributes[name] = {
            "stringValue": value.get("StringValue"),
            "binaryValue": None if binary is None else base64.b64encode(binary).decode(),
            "stringListValues": list(value.get("StringListValues") or []),
            "binaryListValues": [base64.b64encode(b).decode() for b in binaries],
            "dataType": value.get("DataType"),
        }
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        # SQS's system attributes are strings already (a map of string to string).
        "attributes": system if type(system) is dict else dict(system),
        "messageAttributes": attributes,
        "md5OfBody": message.get("MD5OfBody", ""),
        "md5OfMessageAttributes": message.get("MD5OfMessageAttributes"),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


class WorkerContext:
    """The Lambda context a worker's batches get: no deadline, the worker's names.

    Each batch gets its own (:meth:`for_batch`), which knows how long its messages stay
    hidden: :meth:`get_hidden_time_in_millis`.
    """

    def __init__(self, queue: QueueRef) -> None:
        self.function_name = f"anybatch-worker-{queue.name}"
        self.function_version = "$LATEST"
        self.invoked_function_arn = ""
        self.memory_limit_in_mb = 0
        self.aws_request_id = ""
        self.log_group_name = ""
        self.log_stream_name = ""
        self.received: float | None = None
        """When the batch was received (:func:`time.monotonic`); ``None``: no batch."""
        self.visibility_timeout = 0
        """The visibility timeout its messages got, and each extension's (seconds)."""
        self.max_visibility = 0
        """The longest its messages are kept hidden, since they were received (seconds)."""

    def for_batch(
        self, received: float, visibility_timeout: int, max_visibility: int
    ) -> WorkerContext:
        """A copy of this context for a batch received at *received* (:func:`time.monotonic`)."""
        context = object.__new__(WorkerContext)
        context.__dict__.update(self.__dict__)
        context.received = received
        context.visibility_timeout = visibility_timeout
        context.max_visibility = max_visibility
        return context

    def get_remaining_time_in_millis(self) -> int:
        """Never runs out: a worker's batch has no Lambda timeout, the stop drains it instead.

        The heartbeat keeps the batch's messages hidden while it runs, so the visibility
        timeout is no deadline: :meth:`get_hidden_time_in_millis` says how long they stay
        hidden should the worker stop.
        """
        return 2**31 - 1

    def get_hidden_time_in_millis(self) -> int:
        """How long, at most, the batch's messages stay hidden from now should the worker stop.

        One visibility timeout: the heartbeat extends their visibility to one visibility
        timeout from then, and never past ``max_visibility`` since they were received. Once
        it runs out, another worker (or this one) may receive them again: an idempotent
        handler's IN_PROGRESS mark expires by then. 2**31 - 1 outside a batch.
        """
        if self.received is None:
            return 2**31 - 1
        limit = self.received + self.max_visibility - time.monotonic()
        return max(0, int(min(self.visibility_timeout, limit) * 1000))
