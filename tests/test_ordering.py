"""Ordered concurrency: FIFO message groups, stream partition keys, stop policies."""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from anybatch import (
    AsyncBatchProcessor,
    AsyncSqsFifoPartialProcessor,
    BatchProcessingError,
    EventType,
    SQSFifoCircuitBreakerError,
    SQSFifoMessageGroupCircuitBreakerError,
    SqsFifoPartialProcessor,
    Status,
    async_process_partial_response,
    process_partial_response,
)
from anybatch.testing import dynamodb_event, kinesis_event, sqs_event

if TYPE_CHECKING:
    from anybatch.records import DynamoDBRecord, KinesisStreamRecord, SQSRecord


def failures(response: Any) -> list[str]:
    return [item["itemIdentifier"] for item in response["batchItemFailures"]]


class Tracker:
    """Records what runs when: keys in flight, start order, peak concurrency."""

    def __init__(self, keys: list[Any], fail: set[int] = frozenset(), delay: float = 0.002) -> None:  # type: ignore[assignment]
        self.keys = keys
        self.fail = fail
        self.delay = delay
        self.in_flight: set[int] = set()
        self.started: list[int] = []
        self.peak = 0
        self.started_before_first_failure: int | None = None

    async def enter(self, index: int, delay: float | None = None) -> None:
        key = self.keys[index]
        assert all(self.keys[other] != key for other in self.in_flight), "two of a key in flight"
        self.in_flight.add(index)
        self.started.append(index)
        self.peak = max(self.peak, len(self.in_flight))
        try:
            await anyio.sleep(self.delay if delay is None else delay)
        finally:
            self.in_flight.discard(index)
        if index in self.fail:
            if self.started_before_first_failure is None:
                self.started_before_first_failure = len(self.started)
            raise RuntimeError(f"record {index} failed")

    def started_per_key(self) -> dict[Any, list[int]]:
        per_key: dict[Any, list[int]] = defaultdict(list)
        for index in self.started:
            per_key[self.keys[index]].append(index)
        return per_key


# --- SQS FIFO ---------------------------------------------------------------------------


def fifo_event(groups: list[str]) -> dict[str, Any]:
    return sqs_event([str(i) for i in range(len(groups))], fifo=True, group_ids=groups)


def test_fifo_default_stops_at_the_first_failure_like_the_incumbent() -> None:
    event = fifo_event(["a", "b", "a", "b", "c"])
    ran: list[int] = []

    def handler(record: SQSRecord) -> None:
        ran.append(int(record.body))
        if record.body == "1":
            raise ValueError("boom")

    processor = SqsFifoPartialProcessor()
    response = process_partial_response(event, handler, processor)
    ids = [r["messageId"] for r in event["Records"]]
    assert ran == [0, 1]
    assert failures(response) == ids[1:]
    # As the incumbent reports them: every record after the failure, of any group.
    for skipped in processor.result[2:]:
        assert skipped.status is Status.SKIPPED
        assert type(skipped.exception) is SQSFifoCircuitBreakerError


def test_fifo_skip_group_on_error_skips_only_that_group() -> None:
    event = fifo_event(["a", "b", "a", "b", "c", "a"])

    def handler(record: SQSRecord) -> None:
        if record.body == "0":
            raise ValueError("boom")

    processor = SqsFifoPartialProcessor(skip_group_on_error=True)
    response = process_partial_response(event, handler, processor)
    ids = [r["messageId"] for r in event["Records"]]
    assert failures(response) == [ids[0], ids[2], ids[5]]
    assert isinstance(processor.result[2].exception, SQSFifoMessageGroupCircuitBreakerError)


def test_fifo_raise_on_entire_batch_failure_is_honoured() -> None:
    def handler(record: SQSRecord) -> None:
        raise ValueError("boom")

    # Both records ran (their groups differ) and failed: the entire batch failed.
    with pytest.raises(BatchProcessingError):
        process_partial_response(
            fifo_event(["a", "b"]), handler, SqsFifoPartialProcessor(skip_group_on_error=True)
        )
    processor = SqsFifoPartialProcessor(
        skip_group_on_error=True, raise_on_entire_batch_failure=False
    )
    response = process_partial_response(fifo_event(["a", "b"]), handler, processor)
    assert len(response["batchItemFailures"]) == 2


def test_fifo_stop_after_the_first_failure_returns_the_partial_response() -> None:
    def handler(record: SQSRecord) -> None:
        raise ValueError("boom")

    # The second record never ran: not an entire-batch failure, so no exception.
    processor = SqsFifoPartialProcessor()
    response = process_partial_response(fifo_event(["a", "b"]), handler, processor)
    assert len(response["batchItemFailures"]) == 2
    assert [o.status for o in processor.result] == [Status.FAILED, Status.SKIPPED]


@pytest.mark.anyio
async def test_fifo_groups_run_side_by_side_each_in_order() -> None:
    groups = [f"g{i % 4}" for i in range(40)]
    tracker = Tracker(groups)

    async def handler(record: SQSRecord) -> None:
        await tracker.enter(int(record.body))

    processor = AsyncSqsFifoPartialProcessor(concurrency=4)
    response = await async_process_partial_response(fifo_event(groups), handler, processor)
    assert response == {"batchItemFailures": []}
    assert tracker.peak == 4
    for indices in tracker.started_per_key().values():
        assert indices == sorted(indices)


@pytest.mark.anyio
async def test_plain_processor_keeps_fifo_group_order_by_itself() -> None:
    groups = ["a"] * 10 + ["b"] * 10
    tracker = Tracker(groups, fail={3})

    async def handler(record: SQSRecord) -> None:
        await tracker.enter(int(record.body))

    processor = AsyncBatchProcessor(EventType.SQS, concurrency=10)
    response = await async_process_partial_response(fifo_event(groups), handler, processor)
    assert tracker.peak == 2  # one per group, whatever the limit
    ids = [r["messageId"] for r in fifo_event(groups)["Records"]]
    # After the failure in "a", the later "a" records are not run and are reported.
    assert failures(response) == ids[3:10]
    assert all(groups[i] == "b" or i < 4 for i in tracker.started)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("queue", "peak"),
    [("anybatch-queue.fifo", 1), ("anybatch-queue", 4)],
)
async def test_fifo_arn_without_group_ids_keeps_the_queue_in_order(queue: str, peak: int) -> None:
    event = sqs_event([str(i) for i in range(8)], queue_arn=f"arn:aws:sqs:us-east-1:1:{queue}")
    tracker = Tracker(list(range(8)))

    async def handler(record: SQSRecord) -> None:
        await tracker.enter(int(record.body))

    processor = AsyncBatchProcessor(EventType.SQS, concurrency=4)
    await async_process_partial_response(event, handler, processor)
    assert tracker.peak == peak
    assert tracker.started == sorted(tracker.started)


# --- streams ----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_kinesis_keeps_partition_key_order_under_concurrency() -> None:
    keys = [f"pk{i % 3}" for i in range(30)]
    tracker = Tracker(keys, fail={4})
    event = kinesis_event([str(i) for i in range(30)], partition_keys=keys)

    async def handler(record: KinesisStreamRecord) -> None:
        await tracker.enter(int(record.kinesis.data_as_text()))

    processor = AsyncBatchProcessor(EventType.KinesisDataStreams, concurrency=8)
    response = await async_process_partial_response(event, handler, processor)
    assert tracker.peak == 3
    for indices in tracker.started_per_key().values():
        assert indices == sorted(indices)
    sequence = [r["kinesis"]["sequenceNumber"] for r in event["Records"]]
    # Every record runs: only pk1's record 4 failed, and only it is reported.
    assert sorted(tracker.started) == list(range(30))
    assert failures(response) == [sequence[4]]


@pytest.mark.anyio
async def test_kinesis_skip_key_on_failure_skips_the_rest_of_the_key() -> None:
    keys = [f"pk{i % 3}" for i in range(30)]
    tracker = Tracker(keys, fail={4})
    event = kinesis_event([str(i) for i in range(30)], partition_keys=keys)

    async def handler(record: KinesisStreamRecord) -> None:
        await tracker.enter(int(record.kinesis.data_as_text()))

    processor = AsyncBatchProcessor(
        EventType.KinesisDataStreams, concurrency=8, skip_key_on_failure=True
    )
    response = await async_process_partial_response(event, handler, processor)
    sequence = [r["kinesis"]["sequenceNumber"] for r in event["Records"]]
    # pk1's record 4 failed: it and every later pk1 record are reported; pk0 and pk2 ran.
    assert failures(response) == [sequence[i] for i in range(30) if keys[i] == "pk1" and i >= 4]
    assert {processor.result[i].status for i in range(7, 30, 3)} == {Status.SKIPPED}


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("concurrency", [1, 4])
def test_kinesis_one_key_first_record_failing_runs_every_record(
    backend: Any, concurrency: int
) -> None:
    from anybatch import BatchProcessor

    ran: list[str] = []

    def handler(record: KinesisStreamRecord) -> str:
        text = record.kinesis.data_as_text()
        ran.append(text)
        if text == "0":
            raise ValueError("the first record fails")
        return text

    event = kinesis_event([str(i) for i in range(5)], partition_keys=["one-key"] * 5)
    processor = BatchProcessor(
        EventType.KinesisDataStreams, concurrency=concurrency, backend=backend
    )
    response = process_partial_response(event, handler, processor)  # no BatchProcessingError
    assert ran == ["0", "1", "2", "3", "4"]  # in order: one key runs one record at a time
    assert failures(response) == [event["Records"][0]["kinesis"]["sequenceNumber"]]


@pytest.mark.anyio
async def test_dynamodb_one_item_first_change_failing_runs_every_change() -> None:
    event = dynamodb_event(
        [{"keys": {"pk": "same"}, "new_image": {"pk": "same", "n": i}} for i in range(4)]
    )

    async def handler(record: DynamoDBRecord) -> None:
        image = record.dynamodb.new_image
        assert image is not None
        if image["n"] == 0:
            raise ValueError("first change fails")

    processor = AsyncBatchProcessor(EventType.DynamoDBStreams)
    response = await async_process_partial_response(event, handler, processor)
    assert failures(response) == [event["Records"][0]["dynamodb"]["SequenceNumber"]]
    assert [o.status for o in processor.result] == [Status.FAILED] + [Status.SUCCESS] * 3


@pytest.mark.anyio
async def test_standard_sqs_with_group_ids_runs_every_record() -> None:
    # A standard (fair) queue: MessageGroupId orders, but a failure skips nothing.
    event = sqs_event([str(i) for i in range(4)], group_ids=["g"] * 4)
    for record in event["Records"]:
        record["eventSourceARN"] = record["eventSourceARN"].removesuffix(".fifo")

    async def handler(record: SQSRecord) -> None:
        if record.body == "0":
            raise ValueError("fails")

    processor = AsyncBatchProcessor(EventType.SQS)
    response = await async_process_partial_response(event, handler, processor)
    assert failures(response) == [event["Records"][0]["messageId"]]


@pytest.mark.anyio
async def test_fifo_batch_on_a_plain_processor_skips_the_rest_of_a_failed_group() -> None:
    event = fifo_event(["a", "b", "a", "b", "a"])

    async def handler(record: SQSRecord) -> None:
        if record.body == "0":
            raise ValueError("fails")

    processor = AsyncBatchProcessor(EventType.SQS)
    response = await async_process_partial_response(event, handler, processor)
    ids = [r["messageId"] for r in event["Records"]]
    assert failures(response) == [ids[0], ids[2], ids[4]]
    assert [o.status for o in processor.result] == [
        Status.FAILED,
        Status.SUCCESS,
        Status.SKIPPED,
        Status.SUCCESS,
        Status.SKIPPED,
    ]


@pytest.mark.parametrize(
    ("statuses", "raises"),
    [
        (["fail", "fail"], True),
        (["fail", "timeout"], True),
        (["fail", "skip"], False),
    ],
)
def test_entire_batch_failure_means_every_handler_ran_and_failed(
    statuses: list[str], raises: bool
) -> None:
    import time

    from anybatch import BatchProcessor

    def handler(record: KinesisStreamRecord) -> None:
        what = statuses[int(record.kinesis.data_as_text())]
        if what == "timeout":
            time.sleep(0.3)
        raise ValueError(what)

    same_key = "skip" in statuses
    event = kinesis_event(
        [str(i) for i in range(len(statuses))],
        partition_keys=["k"] * len(statuses) if same_key else None,
    )
    processor = BatchProcessor(
        EventType.KinesisDataStreams,
        concurrency=2,
        record_timeout=0.1 if "timeout" in statuses else None,
        skip_key_on_failure=same_key,
    )
    if raises:
        with pytest.raises(BatchProcessingError):
            process_partial_response(event, handler, processor)
    else:
        response = process_partial_response(event, handler, processor)
        assert len(response["batchItemFailures"]) == len(statuses)
        assert processor.result[1].status is Status.SKIPPED


@pytest.mark.anyio
async def test_kinesis_ordered_false_runs_one_key_concurrently() -> None:
    keys = ["same"] * 12
    tracker = Tracker(keys)
    tracker.keys = list(range(12))  # track in-flight per record, not per key
    event = kinesis_event([str(i) for i in range(12)], partition_keys=keys)

    async def handler(record: KinesisStreamRecord) -> None:
        await tracker.enter(int(record.kinesis.data_as_text()))

    processor = AsyncBatchProcessor(EventType.KinesisDataStreams, concurrency=6, ordered=False)
    await async_process_partial_response(event, handler, processor)
    assert tracker.peak == 6


@pytest.mark.anyio
async def test_dynamodb_orders_by_item_keys() -> None:
    items = [{"pk": f"item{i % 2}", "sk": 1} for i in range(8)]
    event = dynamodb_event(
        [{"keys": item, "new_image": {**item, "n": i}} for i, item in enumerate(items)]
    )
    keys = [item["pk"] for item in items]
    tracker = Tracker(keys)

    async def handler(record: DynamoDBRecord) -> None:
        image = record.dynamodb.new_image
        assert image is not None
        await tracker.enter(int(image["n"]))

    processor = AsyncBatchProcessor(EventType.DynamoDBStreams, concurrency=8)
    await async_process_partial_response(event, handler, processor)
    assert tracker.peak == 2
    for indices in tracker.started_per_key().values():
        assert indices == sorted(indices)


@pytest.mark.anyio
async def test_stop_on_failure_is_checkpoint_mode_for_streams() -> None:
    event = kinesis_event([str(i) for i in range(6)])  # every record its own key

    async def handler(record: KinesisStreamRecord) -> None:
        if record.kinesis.data_as_text() == "2":
            raise RuntimeError("boom")

    processor = AsyncBatchProcessor(
        EventType.KinesisDataStreams, concurrency=1, stop_on_failure=True
    )
    response = await async_process_partial_response(event, handler, processor)
    sequence = [r["kinesis"]["sequenceNumber"] for r in event["Records"]]
    assert failures(response) == sequence[2:]


# --- properties over random batches, on both backends -----------------------------------


@st.composite
def random_batches(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(1, 25))
    return {
        "groups": draw(st.lists(st.sampled_from("abcde"), min_size=n, max_size=n)),
        "fail": draw(st.sets(st.integers(0, n - 1), max_size=n)),
        "delays": draw(
            st.lists(st.sampled_from([0.0, 0.0005, 0.001, 0.003]), min_size=n, max_size=n)
        ),
        "concurrency": draw(st.integers(1, 6)),
        "skip_group_on_error": draw(st.booleans()),
    }


@pytest.mark.anyio
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batch=random_batches())
async def test_random_fifo_batches_keep_every_promise(batch: dict[str, Any]) -> None:
    groups: list[str] = batch["groups"]
    fail: set[int] = batch["fail"]
    tracker = Tracker(groups, fail)
    event = fifo_event(groups)

    async def handler(record: SQSRecord) -> None:
        index = int(record.body)
        await tracker.enter(index, batch["delays"][index])

    processor = AsyncSqsFifoPartialProcessor(
        concurrency=batch["concurrency"],
        skip_group_on_error=batch["skip_group_on_error"],
        raise_on_entire_batch_failure=False,
    )
    response = await async_process_partial_response(event, handler, processor)
    ids = [r["messageId"] for r in event["Records"]]
    reported = set(failures(response))

    assert tracker.peak <= batch["concurrency"]
    for indices in tracker.started_per_key().values():
        assert indices == sorted(indices)
    succeeded = {i for i in tracker.started if i not in fail}
    # Every record that did not finish successfully is reported; no success is.
    assert reported == {ids[i] for i in range(len(groups)) if i not in succeeded}
    if batch["skip_group_on_error"]:
        failed_groups = {groups[i] for i in tracker.started if i in fail}
        for index, group in enumerate(groups):
            if group not in failed_groups:
                assert ids[index] not in reported  # a healthy group is never reported
    else:
        # Stop policy: once a record has failed, no record starts.
        if tracker.started_before_first_failure is not None:
            assert len(tracker.started) == tracker.started_before_first_failure
