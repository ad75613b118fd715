"""Queues on the moto server, and what tests do with them through boto3 (setup and checks)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any, Protocol

import boto3

from anybatch.testing import sqs_record

ACCOUNT = "123456789012"  # moto's account
_names = itertools.count()


class Queue:
    """A fresh moto queue, and what a test does with it through boto3 (setup and checks)."""

    def __init__(
        self,
        endpoint: str,
        *,
        fifo: bool = False,
        region: str = "us-east-1",
        visibility_timeout: int | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.region = region
        self.fifo = fifo
        self.client: Any = boto3.client("sqs", endpoint_url=endpoint, region_name=region)
        self.name = f"anybatch-{next(_names)}" + (".fifo" if fifo else "")
        attributes = {"FifoQueue": "true", "ContentBasedDeduplication": "true"} if fifo else {}
        if visibility_timeout is not None:
            attributes["VisibilityTimeout"] = str(visibility_timeout)
        self.url: str = self.client.create_queue(QueueName=self.name, Attributes=attributes)[
            "QueueUrl"
        ]
        # SQS's own ARN: its partition is the region's (arn:aws-cn:... in cn-north-1).
        self.arn: str = self.client.get_queue_attributes(
            QueueUrl=self.url, AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]

    def send(self, bodies: Sequence[str], group_ids: Sequence[str] | None = None) -> None:
        """Send one message per body (FIFO: in group ``group_ids[i]``, default ``g``)."""
        for index, body in enumerate(bodies):
            extra = {"MessageGroupId": group_ids[index] if group_ids else "g"} if self.fifo else {}
            self.client.send_message(QueueUrl=self.url, MessageBody=body, **extra)

    def receive_records(self, count: int) -> list[dict[str, Any]]:
        """Receive *count* messages, in order, as the records of a Lambda event."""
        messages: list[dict[str, Any]] = []
        while len(messages) < count:
            answer = self.client.receive_message(
                QueueUrl=self.url,
                MaxNumberOfMessages=min(10, count - len(messages)),
                AttributeNames=["All"],
            )
            got = answer.get("Messages", [])
            assert got, f"the queue holds fewer than {count} messages"
            messages.extend(got)
        return [
            sqs_record(
                message["Body"],
                index=index,
                message_id=message["MessageId"],
                receipt_handle=message["ReceiptHandle"],
                queue_arn=self.arn,
                fifo=self.fifo,
                group_id=message["Attributes"].get("MessageGroupId"),
                receive_count=int(message["Attributes"]["ApproximateReceiveCount"]),
            )
            for index, message in enumerate(messages)
        ]

    def event(
        self, bodies: Sequence[str], group_ids: Sequence[str] | None = None
    ) -> dict[str, Any]:
        """Send *bodies*, receive them back: the event Lambda would deliver."""
        self.send(bodies, group_ids)
        return {"Records": self.receive_records(len(bodies))}

    def counts(self) -> tuple[int, int]:
        """``(visible, in flight)`` messages."""
        attributes = self.client.get_queue_attributes(
            QueueUrl=self.url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
            ],
        )["Attributes"]
        return (
            int(attributes["ApproximateNumberOfMessages"]),
            int(attributes["ApproximateNumberOfMessagesNotVisible"]),
        )

    def bodies_left(self, records: Sequence[dict[str, Any]]) -> list[str]:
        """The bodies of every message still in the queue, sorted.

        Makes the messages of *records* visible again first (those that were deleted are
        reported invalid by SQS and ignored), then receives everything.
        """
        for start in range(0, len(records), 10):
            chunk = records[start : start + 10]
            self.client.change_message_visibility_batch(
                QueueUrl=self.url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": r["receiptHandle"], "VisibilityTimeout": 0}
                    for i, r in enumerate(chunk)
                ],
            )
        bodies: list[str] = []
        while True:
            answer = self.client.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10)
            messages = answer.get("Messages", [])
            if not messages:
                return sorted(bodies)
            bodies.extend(message["Body"] for message in messages)


class MakeQueue(Protocol):
    """The ``make_queue`` fixture."""

    def __call__(
        self,
        *,
        fifo: bool = False,
        region: str = "us-east-1",
        visibility_timeout: int | None = None,
    ) -> Queue: ...
