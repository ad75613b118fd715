"""What a worker hands the processor: received messages as Lambda's records, and a context.

A handler cannot tell a worker's batch from Lambda's: each message becomes the record Lambda
would deliver, and the batch runs with a Lambda context that names the worker.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from ._plan import QueueRef

__all__ = ["WorkerContext", "lambda_record"]


def lambda_record(message: Mapping[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """One received SQS message in the shape of a Lambda event's SQS record.

    The system attributes are Lambda's (strings), the message attributes Lambda's
    (``stringValue``, ``binaryValue`` in base64, ``dataType``...), so that a handler cannot
    tell a worker's record from Lambda's.
    """
    attributes: dict[str, Any] = {}
    for name, value in cast("Mapping[str, Any]", message.get("MessageAttributes") or {}).items():
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
        "attributes": {
            str(k): str(v)
            for k, v in cast("Mapping[str, Any]", message.get("Attributes") or {}).items()
        },
        "messageAttributes": attributes,
        "md5OfBody": message.get("MD5OfBody", ""),
        "md5OfMessageAttributes": message.get("MD5OfMessageAttributes"),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


class WorkerContext:
    """The Lambda context a worker's batches get: no deadline, the worker's names."""

    def __init__(self, queue: QueueRef) -> None:
        self.function_name = f"anybatch-worker-{queue.name}"
        self.function_version = "$LATEST"
        self.invoked_function_arn = ""
        self.memory_limit_in_mb = 0
        self.aws_request_id = ""
        self.log_group_name = ""
        self.log_stream_name = ""

    def get_remaining_time_in_millis(self) -> int:
        """Never runs out: a worker's batch has no Lambda timeout, the stop drains it instead."""
        return 2**31 - 1
