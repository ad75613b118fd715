"""An SQS queue in memory, answered through respx on aiobotocore's httpx backend.

It answers ``GetQueueAttributes``, ``ReceiveMessage``, ``DeleteMessageBatch`` and
``ChangeMessageVisibilityBatch`` as SQS does, counts every call, and lets a test script
faults: throttling, server errors, dropped connections, entries that fail.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx
import pytest
import respx
from aiobotocore.config import AioConfig
from aiobotocore.httpxsession import HttpxSession

from anybatch import AsyncBatchProcessor, EventType
from anybatch.sqs import RetryPolicy, SQSWorker

#: What tests on the fake queue need: aiobotocore warns when it uses its httpx backend.
HTTPX_BACKEND = pytest.mark.filterwarnings(
    "ignore:aiobotocore's httpx backend now prefers httpx2:DeprecationWarning"
)

ENDPOINT = "http://127.0.0.1:9"  # never reached: respx answers
QUEUE_URL = f"{ENDPOINT}/123456789012/worker-faults"
ARN = "arn:aws:sqs:us-east-1:123456789012:worker-faults"
FAST = RetryPolicy(attempts=4, base_delay=0.001, max_delay=0.002)

Fault = Callable[[], httpx.Response]


def throttled() -> httpx.Response:
    return httpx.Response(
        400,
        json={"__type": "com.amazonaws.sqs#ThrottlingException", "message": "Rate exceeded"},
        headers={"x-amzn-query-error": "ThrottlingException;Sender"},
    )


def server_error() -> httpx.Response:
    return httpx.Response(500, json={"__type": "InternalFailure", "message": "boom"})


def dropped() -> httpx.Response:
    raise httpx.RemoteProtocolError("Server disconnected without sending a response.")


@dataclass
class Message:
    body: str
    message_id: str
    receives: int = 0
    handle: str = ""
    visible_at: float = 0.0
    deleted: bool = False


@dataclass
class FakeQueue:
    """An SQS queue in memory, with scripted faults per action."""

    messages: list[Message] = field(default_factory=list[Message])
    faults: dict[str, list[Fault]] = field(default_factory=dict[str, list[Fault]])
    #: Entry ids (receipt handles) that fail once per action: (code, sender fault).
    entry_failures: dict[str, dict[str, tuple[str, bool]]] = field(
        default_factory=dict[str, dict[str, tuple[str, bool]]]
    )
    calls: dict[str, int] = field(default_factory=dict[str, int])
    #: The queue's own visibility timeout (seconds), for a receive that asks for none.
    visibility_timeout: int = 30
    _handles: Iterator[int] = field(default_factory=itertools.count)

    def add(self, bodies: list[str]) -> None:
        for body in bodies:
            self.messages.append(Message(body, f"id-{len(self.messages)}"))

    def by_handle(self, handle: str) -> Message | None:
        for message in self.messages:
            if message.handle == handle:
                return message
        return None

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        action = request.headers["X-Amz-Target"].removeprefix("AmazonSQS.")
        self.calls[action] = self.calls.get(action, 0) + 1
        body = json.loads(request.content)
        script = self.faults.get(action)
        if script:
            return script.pop(0)()
        if action == "GetQueueAttributes":
            attributes = {"QueueArn": ARN, "VisibilityTimeout": str(self.visibility_timeout)}
            return httpx.Response(200, json={"Attributes": attributes})
        if action == "ReceiveMessage":
            return await self.receive(body)
        return self.batch(action, body["Entries"])

    async def receive(self, body: dict[str, Any]) -> httpx.Response:
        now = time.monotonic()
        ready = [m for m in self.messages if not m.deleted and m.visible_at <= now]
        if not ready:
            await anyio.sleep(0.01)  # a (short) long poll
            return httpx.Response(200, json={})
        out = []
        for message in ready[: body.get("MaxNumberOfMessages", 1)]:
            message.receives += 1
            message.handle = f"rh-{next(self._handles)}"
            message.visible_at = now + body.get("VisibilityTimeout", self.visibility_timeout)
            out.append(
                {
                    "MessageId": message.message_id,
                    "ReceiptHandle": message.handle,
                    "MD5OfBody": hashlib.md5(message.body.encode()).hexdigest(),
                    "Body": message.body,
                    "Attributes": {"ApproximateReceiveCount": str(message.receives)},
                }
            )
        return httpx.Response(200, json={"Messages": out})

    def batch(self, action: str, entries: list[dict[str, Any]]) -> httpx.Response:
        successful, failed = [], []
        once = self.entry_failures.get(action, {})
        for entry in entries:
            handle = entry["ReceiptHandle"]
            if handle in once:
                code, sender = once.pop(handle)
                failed.append({"Id": entry["Id"], "Code": code, "SenderFault": sender})
                continue
            message = self.by_handle(handle)
            if message is None or message.deleted:
                failed.append({"Id": entry["Id"], "Code": "ReceiptHandleIsInvalid"})
                continue
            if action == "DeleteMessageBatch":
                message.deleted = True
            else:
                message.visible_at = time.monotonic() + entry["VisibilityTimeout"]
            successful.append({"Id": entry["Id"]})
        return httpx.Response(200, json={"Successful": successful, "Failed": failed})


def worker(handler: Any, **options: Any) -> SQSWorker:
    """A worker on the fake queue, through aiobotocore's httpx backend."""
    return SQSWorker(
        QUEUE_URL,
        handler,
        AsyncBatchProcessor(EventType.SQS, concurrency=10),
        endpoint_url=ENDPOINT,
        region="us-east-1",
        config=AioConfig(http_session_cls=HttpxSession),
        retry=FAST,
        wait_time=0,
        **options,
    )


def serve(queue: FakeQueue) -> Iterator[FakeQueue]:
    """Answer every SQS call to :data:`ENDPOINT` with *queue* while the generator runs."""
    with respx.mock(using="httpx", assert_all_called=False) as router:
        router.post(f"{ENDPOINT}/").mock(side_effect=queue)
        yield queue
