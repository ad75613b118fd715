"""The async core: AsyncBatchProcessor and its entry points, on asyncio and trio."""

from __future__ import annotations

import gc
import threading
from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel
import pytest

from anybatch import (
    AsyncBatchProcessor,
    BatchProcessingError,
    EventType,
    FailureResponse,
    Status,
    SuccessResponse,
    async_batch_processor,
    async_process_partial_response,
)
from anybatch.testing import dynamodb_event, fake_lambda_context, kinesis_event, sqs_event

if TYPE_CHECKING:
    from anybatch.records import DynamoDBRecord, KinesisStreamRecord, SQSRecord

pytestmark = pytest.mark.anyio


def failures(response: Any) -> list[str]:
    return [item["itemIdentifier"] for item in response["batchItemFailures"]]


async def fail_odd(record: SQSRecord) -> int:
    await anyio.lowlevel.checkpoint()
    number = int(record.body)
    if number % 2:
        raise ValueError(f"odd {number}")
    return number


async def test_reports_exactly_the_records_whose_handler_raised() -> None:
    event = sqs_event([str(i) for i in range(6)])
    response = await async_process_partial_response(
        event, fail_odd, AsyncBatchProcessor(EventType.SQS)
    )
    ids = [r["messageId"] for r in event["Records"]]
    assert failures(response) == [ids[1], ids[3], ids[5]]


async def test_all_success_reports_an_empty_list() -> None:
    async def ok(record: SQSRecord) -> None:
        await anyio.lowlevel.checkpoint()

    response = await async_process_partial_response(
        sqs_event(["a", "b"]), ok, AsyncBatchProcessor(EventType.SQS)
    )
    assert response == {"batchItemFailures": []}


async def test_empty_batch_reports_nothing() -> None:
    response = await async_process_partial_response(
        {"Records": []}, fail_odd, AsyncBatchProcessor(EventType.SQS)
    )
    assert response == {"batchItemFailures": []}


async def test_kinesis_failures_report_sequence_numbers() -> None:
    event = kinesis_event([b"ok", b"bad", b"ok"])

    async def handler(record: KinesisStreamRecord) -> None:
        if record.kinesis.data_as_bytes() == b"bad":
            raise RuntimeError("bad payload")

    response = await async_process_partial_response(
        event, handler, AsyncBatchProcessor(EventType.KinesisDataStreams)
    )
    assert failures(response) == [event["Records"][1]["kinesis"]["sequenceNumber"]]


async def test_dynamodb_failures_report_sequence_numbers() -> None:
    event = dynamodb_event(
        [
            {"keys": {"id": 1}, "new_image": {"id": 1, "ok": True}},
            {"keys": {"id": 2}, "new_image": {"id": 2, "ok": False}},
        ]
    )

    async def handler(record: DynamoDBRecord) -> None:
        image = record.dynamodb.new_image
        assert image is not None
        if not image["ok"]:
            raise RuntimeError("not ok")

    response = await async_process_partial_response(
        event, handler, AsyncBatchProcessor(EventType.DynamoDBStreams)
    )
    assert failures(response) == [event["Records"][1]["dynamodb"]["SequenceNumber"]]


async def test_concurrency_limit_bounds_records_in_flight() -> None:
    # The first records wait until the limit's worth are in flight: the pool widens over a
    # few loop turns, so a fixed sleep would race it on a loaded machine.
    in_flight = peak = 0
    full = anyio.Event()

    async def handler(record: SQSRecord) -> None:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        if in_flight == 7:
            full.set()
        await full.wait()
        await anyio.lowlevel.checkpoint()
        in_flight -= 1

    processor = AsyncBatchProcessor(EventType.SQS, concurrency=7)
    with anyio.fail_after(10):
        await async_process_partial_response(sqs_event(["x"] * 60), handler, processor)
    assert peak == 7


async def test_unbounded_concurrency_runs_every_record_at_once() -> None:
    # No record ends before all 150 are in flight: with any limit below 150 this would wait
    # for ever, and fail_after fails it.
    in_flight = peak = 0
    everyone = anyio.Event()

    async def handler(record: SQSRecord) -> None:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        if in_flight == 150:
            everyone.set()
        await everyone.wait()
        in_flight -= 1

    processor = AsyncBatchProcessor(EventType.SQS, concurrency=None)
    with anyio.fail_after(10):
        await async_process_partial_response(sqs_event(["x"] * 150), handler, processor)
    assert peak == 150


async def test_default_concurrency_is_100() -> None:
    assert AsyncBatchProcessor(EventType.SQS).concurrency == 100


async def test_a_fixed_pool_of_workers_runs_the_batch_not_a_task_per_record() -> None:
    seen_tasks: set[int] = set()

    async def handler(record: SQSRecord) -> None:
        task = anyio.get_current_task()
        seen_tasks.add(task.id)
        await anyio.lowlevel.checkpoint()

    processor = AsyncBatchProcessor(EventType.SQS, concurrency=4)
    await async_process_partial_response(sqs_event(["x"] * 200), handler, processor)
    assert len(seen_tasks) == 4


async def test_results_are_in_input_order_whatever_the_finish_order() -> None:
    async def handler(record: SQSRecord) -> str:
        await anyio.sleep(0.001 * (10 - int(record.body)))
        return record.body

    processor = AsyncBatchProcessor(EventType.SQS, concurrency=10)
    with processor(sqs_event([str(i) for i in range(10)])["Records"], handler):
        processed = await processor.async_process()
    assert [result for _, result, _ in processed] == [str(i) for i in range(10)]
    assert [o.result for o in processor.result] == [str(i) for i in range(10)]


async def test_processed_items_unpack_as_status_result_record() -> None:
    event = sqs_event(["0", "1"])
    processor = AsyncBatchProcessor(EventType.SQS, raise_on_entire_batch_failure=False)
    with processor(event["Records"], fail_odd):
        processed = await processor.async_process()
    (status0, result0, record0), (status1, result1, record1) = processed
    assert isinstance(processed[0], SuccessResponse)
    assert isinstance(processed[1], FailureResponse)
    assert (status0, result0, record0.body) == ("success", 0, "0")
    assert status1 == "fail"
    assert "ValueError" in result1
    assert "odd 1" in result1
    assert record1.message_id == event["Records"][1]["messageId"]


async def test_typed_outcomes_say_how_each_record_ended() -> None:
    processor = AsyncBatchProcessor(EventType.SQS)
    await async_process_partial_response(sqs_event(["0", "1"]), fail_odd, processor)
    ok, failed = processor.result
    assert ok.status is Status.SUCCESS
    assert ok.ok
    assert ok.result == 0
    assert failed.status is Status.FAILED
    assert isinstance(failed.exception, ValueError)
    assert failed.identifier == "00000000-0000-4000-8000-000000000001"
    assert processor.result.response() == processor.response()


async def test_record_handler_declaring_lambda_context_receives_it() -> None:
    received: list[object] = []

    async def handler(record: SQSRecord, lambda_context: object) -> None:
        received.append(lambda_context)

    context = fake_lambda_context()
    await async_process_partial_response(
        sqs_event(["a"]), handler, AsyncBatchProcessor(EventType.SQS), context=context
    )
    assert received == [context]


async def test_record_handler_without_lambda_context_is_called_with_the_record_only() -> None:
    calls: list[str] = []

    async def handler(record: SQSRecord) -> None:
        calls.append(record.body)

    await async_process_partial_response(
        sqs_event(["a"]), handler, AsyncBatchProcessor(EventType.SQS), context=fake_lambda_context()
    )
    assert calls == ["a"]


async def test_every_record_failing_raises_with_every_exception() -> None:
    async def handler(record: SQSRecord) -> None:
        raise KeyError(f"missing-{record.body}")

    processor = AsyncBatchProcessor(EventType.SQS)
    event = sqs_event(["a", "b", "c"])
    with pytest.raises(BatchProcessingError) as caught:
        await async_process_partial_response(event, handler, processor)
    error = caught.value
    assert len(error.child_exceptions) == 3
    message = str(error)
    for body in "abc":
        assert f"missing-{body}" in message
    # The response is still readable after the error.
    assert len(processor.response()["batchItemFailures"]) == 3


async def test_entire_batch_failure_can_return_the_failures_instead() -> None:
    async def handler(record: SQSRecord) -> None:
        raise KeyError(record.body)

    processor = AsyncBatchProcessor(EventType.SQS, raise_on_entire_batch_failure=False)
    response = await async_process_partial_response(sqs_event(["a", "b"]), handler, processor)
    assert len(response["batchItemFailures"]) == 2


class Fatal(BaseException):
    """Not an Exception: must never become a record failure."""


async def test_base_exceptions_propagate_and_are_not_record_failures() -> None:
    async def handler(record: SQSRecord) -> None:
        if record.body == "2":
            raise Fatal
        await anyio.sleep(0.01)

    processor = AsyncBatchProcessor(EventType.SQS, concurrency=3)
    with pytest.raises(Fatal):
        await async_process_partial_response(sqs_event(["1", "2", "3", "4"]), handler, processor)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_keyboard_interrupt_propagates_as_itself(backend: str) -> None:
    # asyncio lets KeyboardInterrupt out of the loop itself, so this runs its own loop.
    async def handler(record: SQSRecord) -> None:
        if record.body == "2":
            raise KeyboardInterrupt
        await anyio.sleep(0.01)

    async def main() -> None:
        await async_process_partial_response(
            sqs_event(["1", "2", "3"]), handler, AsyncBatchProcessor(EventType.SQS)
        )

    with pytest.raises(KeyboardInterrupt):
        anyio.run(main, backend=backend)


async def test_outer_cancellation_is_not_swallowed_and_stops_every_worker() -> None:
    started = 0

    async def handler(record: SQSRecord) -> None:
        nonlocal started
        started += 1
        await anyio.sleep(10)

    processor = AsyncBatchProcessor(EventType.SQS, concurrency=5)
    with anyio.move_on_after(0.05) as scope:
        await async_process_partial_response(sqs_event(["x"] * 20), handler, processor)
    assert scope.cancelled_caught
    assert started == 5
    # The processor is usable again: nothing of the cancelled batch is in the way.
    response = await async_process_partial_response(sqs_event(["0", "1"]), fail_odd, processor)
    assert len(response["batchItemFailures"]) == 1


async def test_no_worker_threads_or_tasks_outlive_a_batch() -> None:
    threads_before = threading.active_count()
    processor = AsyncBatchProcessor(EventType.SQS, concurrency=8)
    await async_process_partial_response(
        sqs_event([str(i) for i in range(50)]), fail_odd, processor
    )
    gc.collect()
    assert threading.active_count() == threads_before


async def test_state_of_one_batch_does_not_leak_into_the_next() -> None:
    processor = AsyncBatchProcessor(EventType.SQS)
    first = await async_process_partial_response(sqs_event(["1", "3", "4"]), fail_odd, processor)
    assert len(first["batchItemFailures"]) == 2
    assert len(processor.fail_messages) == 2
    second = await async_process_partial_response(sqs_event(["2"]), fail_odd, processor)
    assert second == {"batchItemFailures": []}
    assert processor.fail_messages == []
    assert processor.exceptions == []
    assert [r.body for r in processor.success_messages] == ["2"]
    assert len(processor.result) == 1


async def test_decorator_processes_the_batch_and_stays_awaitable() -> None:
    processor = AsyncBatchProcessor(EventType.SQS)

    @async_batch_processor(record_handler=fail_odd, processor=processor)
    async def lambda_handler(event: dict[str, Any], context: object) -> Any:
        return processor.response()

    event = sqs_event(["1", "2"])
    response = await lambda_handler(event, fake_lambda_context())
    assert failures(response) == [event["Records"][0]["messageId"]]


async def test_sync_record_handlers_run_in_worker_threads() -> None:
    main_thread = threading.get_ident()
    threads: set[int] = set()

    def handler(record: SQSRecord) -> str:
        threads.add(threading.get_ident())
        return record.body

    processor = AsyncBatchProcessor(EventType.SQS, concurrency=4)
    await async_process_partial_response(sqs_event(["a", "b", "c"]), handler, processor)
    assert main_thread not in threads
    assert [o.result for o in processor.result] == ["a", "b", "c"]
