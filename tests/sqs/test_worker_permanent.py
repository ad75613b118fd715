"""The worker with permanent failures: a message its hook took is deleted, not retried."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import anyio
import pytest

from anybatch import AsyncBatchProcessor, EventType, PermanentFailure
from anybatch.sqs import SQSWorker

from ._running import run_until

if TYPE_CHECKING:
    from anybatch.records import SQSRecord

    from ._moto import MakeQueue, Queue

pytestmark = pytest.mark.anyio


async def test_a_routed_message_is_deleted_and_a_refused_one_comes_back(
    make_queue: MakeQueue,
) -> None:
    queue = make_queue()
    queue.send(["ok", "bad-routed", "bad-refused"])
    parked: list[str] = []
    seen: list[str] = []

    async def park(record: SQSRecord, error: BaseException) -> None:
        await anyio.lowlevel.checkpoint()
        if record.body == "bad-refused":
            raise OSError("the bucket is unreachable")
        parked.append(record.body)

    async def handler(record: SQSRecord) -> None:
        seen.append(record.body)
        if record.body.startswith("bad"):
            raise PermanentFailure(record.body)

    processor = AsyncBatchProcessor(EventType.SQS, on_permanent_failure=park)
    worker = SQSWorker(queue.url, handler, processor, endpoint_url=queue.endpoint, wait_time=1)
    await run_until(worker, lambda: len(seen) >= 3)
    assert parked == ["bad-routed"]
    # ok and the routed message are deleted; the refused one waits for its visibility.
    assert queue.counts() == (0, 1)


def _with_dead_letter_queue(source: Queue) -> Queue:
    """A standard DLQ named in *source*'s RedrivePolicy."""
    from ._moto import Queue

    dlq = Queue(source.endpoint)
    policy = {"deadLetterTargetArn": dlq.arn, "maxReceiveCount": "5"}
    source.client.set_queue_attributes(
        QueueUrl=source.url, Attributes={"RedrivePolicy": json.dumps(policy)}
    )
    return dlq


def _dead_letters(dlq: Queue) -> list[dict[str, Any]]:
    answer = dlq.client.receive_message(
        QueueUrl=dlq.url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    )
    return list(answer.get("Messages", []))


async def _judge(record: SQSRecord) -> None:
    if record.body.startswith("bad"):
        raise PermanentFailure(f"{record.body} is not an order")


async def test_the_worker_sends_a_permanent_failure_to_the_queues_dead_letter_queue(
    make_queue: MakeQueue,
) -> None:
    queue = make_queue()
    dlq = _with_dead_letter_queue(queue)
    queue.client.send_message(
        QueueUrl=queue.url,
        MessageBody="bad-1",
        MessageAttributes={"tenant": {"DataType": "String", "StringValue": "acme"}},
    )
    queue.send(["ok-1", "ok-2"])
    worker = SQSWorker(
        queue.url,
        _judge,
        AsyncBatchProcessor(EventType.SQS),
        endpoint_url=queue.endpoint,
        wait_time=1,
        dead_letter_queue=True,
    )
    stats = await run_until(worker, lambda: worker.stats.deleted >= 3)
    assert queue.counts() == (0, 0)  # the two successes and the dead-lettered one: deleted
    assert (stats.succeeded, stats.routed, stats.failed, stats.deleted) == (2, 1, 0, 3)
    assert "1 failed permanently and routed away" in stats.summary()
    (message,) = _dead_letters(dlq)
    assert message["Body"] == "bad-1"
    attributes = message["MessageAttributes"]
    assert attributes["tenant"]["StringValue"] == "acme"
    assert attributes["anybatch.error_type"]["StringValue"] == "anybatch.PermanentFailure"
    assert attributes["anybatch.error_message"]["StringValue"] == "bad-1 is not an order"


async def test_an_explicit_dead_letter_queue_url(make_queue: MakeQueue) -> None:
    queue, dlq = make_queue(), make_queue()
    queue.send(["bad-1", "ok-1"])
    worker = SQSWorker(
        queue.url,
        _judge,
        endpoint_url=queue.endpoint,
        wait_time=1,
        dead_letter_queue=dlq.url,
    )
    await run_until(worker, lambda: worker.stats.deleted >= 2)
    assert queue.counts() == (0, 0)
    assert [m["Body"] for m in _dead_letters(dlq)] == ["bad-1"]


async def test_a_failing_dead_letter_send_leaves_the_message_to_come_back(
    make_queue: MakeQueue,
) -> None:
    queue = make_queue()  # no RedrivePolicy: nowhere to send it
    queue.send(["bad-1", "ok-1"])
    worker = SQSWorker(
        queue.url,
        _judge,
        endpoint_url=queue.endpoint,
        wait_time=1,
        dead_letter_queue=True,
    )
    stats = await run_until(worker, lambda: worker.stats.deleted >= 1 and worker.stats.failed >= 1)
    assert stats.failed == 1  # reported, as any failure: it waits for its visibility
    assert queue.counts() == (0, 1)


def test_dead_letter_queue_and_a_hook_are_one_target_too_many() -> None:
    async def park(record: SQSRecord, error: BaseException) -> None: ...

    processor = AsyncBatchProcessor(EventType.SQS, on_permanent_failure=park)
    with pytest.raises(TypeError, match="one target"):
        SQSWorker(
            "http://127.0.0.1:1/123456789012/q",
            _judge,
            processor,
            dead_letter_queue=True,
        )
    with pytest.raises(ValueError, match="queue URL"):
        SQSWorker("http://127.0.0.1:1/123456789012/q", _judge, dead_letter_queue="not-a-url")


async def test_a_batch_whose_every_failure_was_routed_logs_nothing_and_carries_on(
    make_queue: MakeQueue, caplog: pytest.LogCaptureFixture
) -> None:
    queue = make_queue()
    queue.send(["bad-1", "ok-1"])
    parked: list[str] = []

    async def park(record: SQSRecord, error: BaseException) -> None:
        parked.append(record.body)

    processor = AsyncBatchProcessor(EventType.SQS, on_permanent_failure=park)
    worker = SQSWorker(queue.url, _judge, processor, endpoint_url=queue.endpoint, wait_time=1)
    stats = await run_until(worker, lambda: worker.stats.deleted >= 2)
    assert parked == ["bad-1"]
    assert (stats.succeeded, stats.routed, stats.failed) == (1, 1, 0)
    assert queue.counts() == (0, 0)
    assert not [r for r in caplog.records if r.levelname in ("WARNING", "ERROR")]


def test_the_worker_leaves_its_processor_as_it_was() -> None:
    from anybatch import Status, process_partial_response
    from anybatch.testing import sqs_event

    processor = AsyncBatchProcessor(EventType.SQS)
    url = "http://127.0.0.1:1/123456789012/q"
    SQSWorker(url, _judge, processor, dead_letter_queue=True)
    SQSWorker(url, _judge, processor, dead_letter_queue=True)  # a restart: no "one target"
    # Outside the workers, its permanent failures are reported as before.
    event = sqs_event(["ok-1", "bad-1"])
    response = process_partial_response(event, _judge, processor)
    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][1]["messageId"]}]}
    assert [o.status for o in processor.result] == [Status.SUCCESS, Status.FAILED]
