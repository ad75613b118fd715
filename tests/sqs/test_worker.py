"""The SQS worker against moto's server over real HTTP: receive, settle, heartbeat, FIFO, stop."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import pytest

from anybatch import AsyncBatchProcessor, BatchProcessor, EventType
from anybatch.records import SQSRecord
from anybatch.sqs import ExponentialBackoff, SQSWorker
from anybatch.sqs._records import lambda_record

from ._running import run_until

if TYPE_CHECKING:
    from ._moto import MakeQueue, Queue

pytestmark = pytest.mark.anyio

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "worker_handler.py"


def worker_for(queue: Queue, handler: Any, processor: Any = None, **options: Any) -> SQSWorker:
    options.setdefault("wait_time", 1)
    return SQSWorker(queue.url, handler, processor, endpoint_url=queue.endpoint, **options)


def receive_all(queue: Queue) -> list[dict[str, Any]]:
    """What another consumer would receive now (visibility 0: left visible)."""
    messages: list[dict[str, Any]] = []
    while True:
        answer = queue.client.receive_message(
            QueueUrl=queue.url, MaxNumberOfMessages=10, VisibilityTimeout=0, WaitTimeSeconds=0
        )
        got = answer.get("Messages", [])
        if not got or len(messages) > 1000:
            return messages
        messages.extend(got)
        if len(got) < 10:
            return messages


async def test_successes_are_deleted_and_failures_come_back(make_queue: MakeQueue) -> None:
    queue = make_queue()
    queue.send([f"ok-{i}" if i % 5 else f"bad-{i}" for i in range(40)])
    seen: list[str] = []

    async def handler(record: SQSRecord) -> None:
        await anyio.sleep(0.001)
        seen.append(record.body)
        if record.body.startswith("bad"):
            raise ValueError(record.body)

    worker = worker_for(queue, handler, AsyncBatchProcessor(EventType.SQS, concurrency=20))
    stats = await run_until(worker, lambda: len(seen) >= 40)
    assert sorted(seen) == sorted(f"ok-{i}" if i % 5 else f"bad-{i}" for i in range(40))
    assert (stats.received, stats.succeeded, stats.failed, stats.deleted) == (40, 32, 8, 32)
    assert stats.not_deleted == 0
    # The failed messages are in flight (their visibility is the receive's), none visible.
    assert queue.counts() == (0, 8)


async def test_a_failed_message_gets_the_backoff_of_its_receive_count(
    make_queue: MakeQueue,
) -> None:
    queue = make_queue()
    queue.send(["bad", "ok"])
    seen: list[str] = []

    def handler(record: SQSRecord) -> None:
        seen.append(record.body)
        if record.body == "bad":
            raise ValueError("bad")

    # Visible again after 1 s on the first failure, 2 s on the second...
    backoff = ExponentialBackoff(base=1, cap=1, jitter=False)
    worker = worker_for(
        queue,
        handler,
        BatchProcessor(EventType.SQS),
        visibility_timeout=60,
        failed_visibility_timeout=backoff,
    )
    started = time.monotonic()
    stats = await run_until(worker, lambda: seen.count("bad") >= 2)
    took = time.monotonic() - started
    assert seen.count("ok") == 1
    assert stats.visibility_changed >= 2
    assert 0.9 < took < 10  # without the backoff the 60 s receive visibility would hold it


async def test_failures_are_left_to_the_queue_without_a_policy(make_queue: MakeQueue) -> None:
    queue = make_queue()
    queue.send(["bad"])
    seen: list[int] = []

    def handler(record: SQSRecord) -> None:
        seen.append(int(record.attributes.approximate_receive_count))
        raise ValueError("bad")

    worker = worker_for(queue, handler, BatchProcessor(EventType.SQS), visibility_timeout=1)
    stats = await run_until(worker, lambda: len(seen) >= 2)
    assert seen[:2] == [1, 2]  # came back when the receive's visibility ran out
    # No failure's visibility was changed: only a receive the stop let finish was released.
    assert stats.visibility_changed == stats.released
    assert stats.deleted == 0


async def test_the_handler_gets_the_record_lambda_would_give_it(make_queue: MakeQueue) -> None:
    queue = make_queue()
    queue.client.send_message(
        QueueUrl=queue.url,
        MessageBody=json.dumps({"id": 7}),
        MessageAttributes={
            "tenant": {"DataType": "String", "StringValue": "acme"},
            "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
        },
    )
    got: list[SQSRecord] = []

    async def handler(record: SQSRecord) -> None:
        got.append(record)

    stats = await run_until(worker_for(queue, handler), lambda: bool(got))
    (record,) = got
    raw = record.raw_event
    assert set(raw) == {
        "messageId",
        "receiptHandle",
        "body",
        "attributes",
        "messageAttributes",
        "md5OfBody",
        "md5OfMessageAttributes",
        "eventSource",
        "eventSourceARN",
        "awsRegion",
    }
    assert record.json_body == {"id": 7}
    assert record.event_source == "aws:sqs"
    assert record.event_source_arn == queue.arn
    assert record.aws_region == "us-east-1"
    assert record.attributes.approximate_receive_count == "1"
    assert record.attributes.sent_timestamp.isdigit()
    assert record.message_attributes["tenant"].string_value == "acme"
    assert record.message_attributes["blob"].binary_value == base64.b64encode(b"\x00\x01").decode()
    assert record.message_attributes["blob"].data_type == "Binary"
    assert stats.deleted == 1


async def test_each_batch_starts_in_the_context_the_worker_gave_it(make_queue: MakeQueue) -> None:
    # As on Lambda, where each invocation runs in a task of its own: what a batch's hooks set
    # in their context and never reset is not seen by the next batch.
    from contextvars import ContextVar

    queue = make_queue()
    marker: ContextVar[str | None] = ContextVar("marker", default=None)
    seen: list[str | None] = []

    class Leaky:
        def batch_started(self, batch: object) -> None:
            seen.append(marker.get())
            marker.set("left by an earlier batch")

        def batch_finished(self, result: object) -> None:
            pass

    async def handler(record: SQSRecord) -> None:
        pass

    processor = AsyncBatchProcessor(EventType.SQS, observers=[Leaky()])
    worker = worker_for(queue, handler, processor)

    async def one_message_at_a_time() -> None:
        # Each sent once the one before is deleted: the batch before has ended by then.
        for sent in range(1, 6):
            await anyio.to_thread.run_sync(queue.send, [f"m-{sent}"])
            while worker.stats.deleted < sent:  # noqa: ASYNC110 - the test's own condition
                await anyio.sleep(0.01)

    async with anyio.create_task_group() as group:
        group.start_soon(one_message_at_a_time)
        await run_until(worker, lambda: worker.stats.deleted >= 5)
    assert seen == [None] * 5


def test_a_received_message_becomes_lambdas_record_shape() -> None:
    message = {
        "MessageId": "m-1",
        "ReceiptHandle": "rh",
        "MD5OfBody": "x",
        "Body": "hello",
        "Attributes": {"ApproximateReceiveCount": "3", "MessageGroupId": "g"},
        "MessageAttributes": {
            "n": {"DataType": "Number", "StringValue": "5"},
            "list": {"DataType": "Binary", "BinaryListValues": [b"a"]},
        },
    }
    record = lambda_record(message, "arn:aws:sqs:eu-west-1:1:q.fifo", "eu-west-1")
    assert record["attributes"] == {"ApproximateReceiveCount": "3", "MessageGroupId": "g"}
    assert record["messageAttributes"]["n"] == {
        "stringValue": "5",
        "binaryValue": None,
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": "Number",
    }
    assert record["messageAttributes"]["list"]["binaryListValues"] == ["YQ=="]
    assert record["md5OfMessageAttributes"] is None
    view = SQSRecord(record)
    assert view.attributes.message_group_id == "g"
    assert view.queue_url == "https://sqs.eu-west-1.amazonaws.com/1/q.fifo"


async def test_a_model_is_validated_and_a_poison_message_fails_alone(
    make_queue: MakeQueue,
) -> None:
    from pydantic import BaseModel, Json

    from anybatch.models import SqsRecordModel

    class Order(BaseModel):
        id: int

    class OrderRecord(SqsRecordModel):
        body: Json[Order]

    queue = make_queue()
    queue.send([json.dumps({"id": 1}), "not json", json.dumps({"id": 3})])
    ids: list[int] = []

    def handler(record: OrderRecord) -> None:
        ids.append(record.body.id)

    processor = BatchProcessor(EventType.SQS, model=OrderRecord)
    stats = await run_until(worker_for(queue, handler, processor), lambda: len(ids) >= 2)
    assert sorted(ids) == [1, 3]
    assert (stats.deleted, stats.failed) == (2, 1)


async def test_a_slow_record_keeps_its_message_hidden_until_it_is_done(
    make_queue: MakeQueue,
) -> None:
    queue = make_queue()
    queue.send(["slow"])
    done: list[str] = []
    peeked: list[int] = []

    async def handler(record: SQSRecord) -> None:
        for _ in range(8):  # 6 s: three times the visibility timeout
            await anyio.sleep(0.75)
            # Another consumer looks (in a thread: the worker's loop goes on meanwhile).
            peeked.append(len(await anyio.to_thread.run_sync(receive_all, queue)))
        done.append(record.body)

    worker = worker_for(queue, handler, visibility_timeout=2, wait_time=0)
    stats = await run_until(worker, lambda: bool(done), within=30)
    assert peeked == [0] * 8  # nobody else could receive it while it ran
    assert stats.extended >= 3
    assert stats.deleted == 1
    assert queue.counts() == (0, 0)


async def test_at_most_max_in_flight_messages_are_received_and_unfinished(
    make_queue: MakeQueue,
) -> None:
    queue = make_queue()
    queue.send([str(i) for i in range(30)])
    running = 0
    most = 0
    finished: list[str] = []

    async def handler(record: SQSRecord) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await anyio.sleep(0.05)
        running -= 1
        finished.append(record.body)

    worker = worker_for(
        queue, handler, AsyncBatchProcessor(EventType.SQS), max_in_flight=5, pollers=3
    )
    stats = await run_until(worker, lambda: len(finished) >= 30)
    assert most <= 5
    assert stats.deleted == 30


async def test_fifo_groups_run_in_order_and_a_failure_releases_the_rest_of_its_group(
    make_queue: MakeQueue,
) -> None:
    queue = make_queue(fifo=True)
    bodies = [f"a{i}" for i in range(4)] + [f"b{i}" for i in range(4)]
    queue.send(bodies, group_ids=["a"] * 4 + ["b"] * 4)
    seen: list[str] = []
    failed_once: list[str] = []

    async def handler(record: SQSRecord) -> None:
        await anyio.sleep(0.005)
        seen.append(record.body)
        if record.body == "a1" and not failed_once:
            failed_once.append("a1")
            raise ValueError("a1 fails once")

    worker = worker_for(
        queue,
        handler,
        AsyncBatchProcessor(EventType.SQS, concurrency=10),
        failed_visibility_timeout=0,
    )
    stats = await run_until(worker, lambda: seen.count("a3") >= 1 and "b3" in seen)
    a_order = [b for b in seen if b.startswith("a")]
    assert a_order == ["a0", "a1", "a1", "a2", "a3"]  # a2, a3 waited for a1's retry
    assert [b for b in seen if b.startswith("b")] == ["b0", "b1", "b2", "b3"]
    assert stats.released >= 2
    assert stats.deleted == 8


async def test_stop_lets_messages_in_flight_finish(make_queue: MakeQueue) -> None:
    queue = make_queue()
    queue.send([str(i) for i in range(5)])
    started: list[str] = []
    finished: list[str] = []

    async def handler(record: SQSRecord) -> None:
        started.append(record.body)
        await anyio.sleep(0.5)
        finished.append(record.body)

    worker = worker_for(queue, handler, drain_timeout=10)
    stats = await run_until(worker, lambda: len(started) >= 5)
    assert sorted(finished) == sorted(started)
    assert stats.deleted == 5
    assert queue.counts() == (0, 0)


async def test_what_the_drain_leaves_unfinished_is_released_and_what_finished_deleted(
    make_queue: MakeQueue,
) -> None:
    queue = make_queue()
    queue.send(["fast", "slow"])
    started: list[str] = []

    async def handler(record: SQSRecord) -> None:
        started.append(record.body)
        await anyio.sleep(0.01 if record.body == "fast" else 30)

    worker = worker_for(queue, handler, drain_timeout=0.5, visibility_timeout=60)
    began = time.monotonic()
    stats = await run_until(worker, lambda: len(started) >= 2)
    assert time.monotonic() - began < 10
    assert (stats.deleted, stats.released) == (1, 1)
    visible = receive_all(queue)
    assert [m["Body"] for m in visible] == ["slow"]  # released at once for another worker


async def test_a_second_stop_stops_at_once_and_settles_nothing(make_queue: MakeQueue) -> None:
    queue = make_queue()
    queue.send(["slow"])
    started: list[str] = []

    async def handler(record: SQSRecord) -> None:
        started.append(record.body)
        await anyio.sleep(30)

    worker = worker_for(queue, handler, drain_timeout=30, visibility_timeout=60)
    async with anyio.create_task_group() as group:

        async def stop_twice() -> None:
            while not started:  # noqa: ASYNC110 - polls a condition of the test's own
                await anyio.sleep(0.02)
            worker.stop()
            await anyio.sleep(0.2)
            worker.stop(now=True)

        group.start_soon(stop_twice)
        with anyio.fail_after(10):
            stats = await worker.run()
    assert (stats.deleted, stats.released) == (0, 0)
    assert queue.counts() == (0, 1)  # still in flight: visible again when its visibility ends


def test_the_settings_are_checked() -> None:
    async def handler(record: Any) -> None: ...

    url = "https://sqs.us-east-1.amazonaws.com/123456789012/q"
    with pytest.raises(ValueError, match="queue_url must be an SQS queue URL"):
        SQSWorker("q", handler)
    with pytest.raises(TypeError, match="record_handler must be callable"):
        SQSWorker(url, "nope")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="wait_time must be between 0 and 20"):
        SQSWorker(url, handler, wait_time=21)
    with pytest.raises(ValueError, match="max_in_flight must be > 0"):
        SQSWorker(url, handler, max_in_flight=0)
    with pytest.raises(ValueError, match="max_visibility must be between"):
        SQSWorker(url, handler, visibility_timeout=60, max_visibility=30)
    with pytest.raises(TypeError, match=r"reads EventType\.SQS, not EventType\.Kafka"):
        SQSWorker(url, handler, AsyncBatchProcessor(EventType.Kafka))
    assert SQSWorker(url, handler).region == "us-east-1"


def test_exponential_backoff_grows_caps_and_jitters() -> None:
    plain = ExponentialBackoff(base=2, cap=20, jitter=False)
    assert [plain(n) for n in (1, 2, 3, 4, 5, 9)] == [2, 4, 8, 16, 20, 20]
    jittered = ExponentialBackoff(base=2, cap=20, rand=lambda: 0.0)
    assert jittered(3) == 4  # half of 8 at the lowest
    high = ExponentialBackoff(base=2, cap=20, rand=lambda: 0.999999)
    assert 7.99 < high(3) <= 8
    with pytest.raises(ValueError, match="0 < base <= cap"):
        ExponentialBackoff(base=10, cap=5)


async def test_the_examples_handler_and_processor_run_as_a_worker(make_queue: MakeQueue) -> None:
    import importlib.util

    path = EXAMPLE
    spec = importlib.util.spec_from_file_location("worker_handler_example", path)
    assert spec is not None
    assert spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    queue = make_queue()
    orders = [{"id": i, "quantity": 0 if i in (2, 5) else 1} for i in range(8)]
    queue.send([json.dumps(order) for order in orders])
    worker = worker_for(queue, example.record_handler, example.processor)
    stats = await run_until(worker, lambda: worker.stats.deleted + worker.stats.failed >= 8)
    assert (stats.deleted, stats.failed) == (6, 2)


async def test_the_processors_observers_see_every_batch_of_the_worker(
    make_queue: MakeQueue,
) -> None:
    class Counting:
        timing = "durations"

        def __init__(self) -> None:
            self.records = 0
            self.failed = 0

        def batch_finished(self, result: Any) -> None:
            self.records += len(result)
            self.failed += len(result.failed)

    observer = Counting()
    queue = make_queue()
    queue.send(["ok", "bad", "ok", "ok"])

    def handler(record: SQSRecord) -> None:
        if record.body == "bad":
            raise ValueError("bad")

    processor = BatchProcessor(EventType.SQS, observers=[observer])
    stats = await run_until(worker_for(queue, handler, processor), lambda: observer.records >= 4)
    assert (observer.records, observer.failed) == (4, 1)
    assert stats.deleted == 3


def test_the_backoff_is_the_same_policy_object_the_sqs_processors_take() -> None:
    from anybatch.sqs import SqsBatchProcessor
    from anybatch.sqs._plan import visibility_timeout_for
    from anybatch.testing import sqs_record

    backoff = ExponentialBackoff(base=2, cap=10, jitter=False)
    record = sqs_record("x", receive_count=3)
    assert visibility_timeout_for(backoff, record) == 8
    processor = SqsBatchProcessor(failed_visibility_timeout=backoff)
    assert processor.failed_visibility_timeout is backoff
