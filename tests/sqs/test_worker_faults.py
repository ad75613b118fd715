"""The worker under faults on the wire: aiobotocore's httpx backend, answered by respx.

An in-memory queue answers ``ReceiveMessage``, ``DeleteMessageBatch`` and
``ChangeMessageVisibilityBatch`` as SQS does, except when a scripted fault answers instead:
throttling, server errors, dropped connections, entries that fail. Whatever happens, no
message is reported deleted that the queue did not delete, no failed message is deleted, and
every message ends deleted or visible again.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio
import httpx
import pytest
import respx
from aiobotocore.config import AioConfig
from aiobotocore.httpxsession import HttpxSession

from anybatch import AsyncBatchProcessor, EventType
from anybatch.sqs import RetryPolicy, SQSWorker, SQSWorkerError, WorkerStats

from ._running import run_until

if TYPE_CHECKING:
    from anybatch.records import SQSRecord

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.filterwarnings(
        "ignore:aiobotocore's httpx backend now prefers httpx2:DeprecationWarning"
    ),
]

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
            return httpx.Response(200, json={"Attributes": {"QueueArn": ARN}})
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
            message.visible_at = now + body.get("VisibilityTimeout", 30)
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


@pytest.fixture
def sqs() -> Iterator[FakeQueue]:
    queue = FakeQueue()
    with respx.mock(using="httpx", assert_all_called=False) as router:
        router.post(f"{ENDPOINT}/").mock(side_effect=queue)
        yield queue


def worker(handler: Any, **options: Any) -> SQSWorker:
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


def fail_bad(record: SQSRecord) -> None:
    if record.body.startswith("bad"):
        raise ValueError(record.body)


def check_nothing_lost(sqs: FakeQueue, stats: WorkerStats) -> None:
    """Deleted = what the worker says it deleted; no failed message deleted."""
    deleted = [m for m in sqs.messages if m.deleted]
    assert stats.deleted == len(deleted)
    assert not [m for m in deleted if m.body.startswith("bad")]


async def test_throttled_and_failing_receives_are_retried(sqs: FakeQueue) -> None:
    sqs.add([f"ok-{i}" for i in range(20)])
    sqs.faults["ReceiveMessage"] = [throttled, server_error, dropped, throttled]
    stats = await run_until(worker(fail_bad), lambda: all(m.deleted for m in sqs.messages))
    assert stats.receive_errors == 4
    assert stats.deleted == 20
    check_nothing_lost(sqs, stats)


async def test_a_receive_refused_for_good_stops_the_worker_with_the_error(
    sqs: FakeQueue,
) -> None:
    def denied() -> httpx.Response:
        return httpx.Response(
            403, json={"__type": "com.amazonaws.sqs#AccessDenied", "message": "not yours"}
        )

    sqs.faults["ReceiveMessage"] = [denied]
    with pytest.raises(SQSWorkerError, match="AccessDenied: not yours") as raised:
        with anyio.fail_after(10):
            await worker(fail_bad).run()
    assert raised.value.code == "AccessDenied"


async def test_deletes_that_fail_are_retried_and_never_reported_done(sqs: FakeQueue) -> None:
    sqs.add([f"ok-{i}" for i in range(12)] + ["bad-1"])
    sqs.faults["DeleteMessageBatch"] = [server_error, dropped, throttled]
    stats = await run_until(
        worker(fail_bad),
        lambda: sum(m.deleted for m in sqs.messages) == 12,
    )
    assert stats.deleted == 12
    assert stats.not_deleted == 0
    check_nothing_lost(sqs, stats)


async def test_a_delete_entry_that_keeps_failing_is_reported_not_deleted(
    sqs: FakeQueue,
) -> None:
    sqs.add(["ok-0", "ok-1"])
    # The first message's first receipt fails for good: SQS refuses its receipt handle.
    sqs.entry_failures["DeleteMessageBatch"] = {"rh-0": ("ReceiptHandleIsInvalid", True)}
    stats = await run_until(worker(fail_bad), lambda: sqs.messages[1].deleted)
    assert stats.not_deleted == 1
    assert stats.failures[0].code == "ReceiptHandleIsInvalid"
    assert not sqs.messages[0].deleted  # will be delivered again: not lost
    check_nothing_lost(sqs, stats)


async def test_failed_visibility_calls_are_retried(sqs: FakeQueue) -> None:
    sqs.add(["bad-0", "ok-1"])
    sqs.faults["ChangeMessageVisibilityBatch"] = [throttled, dropped]
    stats = await run_until(
        worker(fail_bad, failed_visibility_timeout=300),
        lambda: sqs.messages[1].deleted and sqs.messages[0].visible_at > time.monotonic() + 200,
    )
    assert stats.visibility_changed >= 1
    assert stats.visibility_not_changed == 0
    check_nothing_lost(sqs, stats)


async def test_a_heartbeat_that_fails_is_logged_and_the_record_still_settles(
    sqs: FakeQueue, caplog: pytest.LogCaptureFixture
) -> None:
    sqs.add(["slow"])
    sqs.faults["ChangeMessageVisibilityBatch"] = [server_error] * 8  # every retry of one beat

    async def slow(record: SQSRecord) -> None:
        await anyio.sleep(1.5)

    stats = await run_until(worker(slow, visibility_timeout=1), lambda: sqs.messages[0].deleted)
    assert stats.deleted == 1
    assert "could not be extended" in caplog.text
