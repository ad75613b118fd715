"""Per-record timeouts and the invocation deadline taken from the Lambda context."""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from anybatch import (
    AsyncBatchProcessor,
    AsyncSqsFifoPartialProcessor,
    BatchProcessor,
    DeadlineExceededError,
    EventType,
    RecordTimeoutError,
    Status,
    async_process_partial_response,
    process_partial_response,
)
from anybatch.testing import fake_lambda_context, sqs_event

if TYPE_CHECKING:
    from anybatch.records import SQSRecord


def failures(response: Any) -> list[str]:
    return [item["itemIdentifier"] for item in response["batchItemFailures"]]


async def sleep_body(record: SQSRecord) -> str:
    await anyio.sleep(float(record.body))
    return record.body


def sync_sleep_body(record: SQSRecord) -> str:
    time.sleep(float(record.body))
    return record.body


# --- record_timeout ---------------------------------------------------------------------


@pytest.mark.anyio
async def test_record_timeout_fails_only_the_slow_record() -> None:
    event = sqs_event(["0.01", "5", "0.01"])
    processor = AsyncBatchProcessor(EventType.SQS, record_timeout=0.1)
    started = time.monotonic()
    response = await async_process_partial_response(event, sleep_body, processor)
    assert time.monotonic() - started < 1.0
    assert failures(response) == [event["Records"][1]["messageId"]]
    slow = processor.result[1]
    assert slow.status is Status.TIMED_OUT
    assert isinstance(slow.exception, RecordTimeoutError)
    assert isinstance(slow.exception, TimeoutError)
    assert [o.status for o in processor.result].count(Status.SUCCESS) == 2


def test_record_timeout_abandons_a_sync_handler_even_at_concurrency_one() -> None:
    event = sqs_event(["0.5", "0.01"])
    processor = BatchProcessor(EventType.SQS, record_timeout=0.05)
    started = time.monotonic()
    response = process_partial_response(event, sync_sleep_body, processor)
    assert time.monotonic() - started < 0.4
    assert failures(response) == [event["Records"][0]["messageId"]]
    assert processor.result[0].status is Status.TIMED_OUT


# --- the invocation deadline ----------------------------------------------------------


@pytest.mark.anyio
async def test_deadline_cancels_hanging_handlers_and_reports_what_did_not_finish() -> None:
    event = sqs_event(["0.01", "30", "0.01", "30"])
    context = fake_lambda_context(0.5)
    processor = AsyncBatchProcessor(EventType.SQS, deadline_margin=0.3)
    started = time.monotonic()
    response = await async_process_partial_response(event, sleep_body, processor, context=context)
    elapsed = time.monotonic() - started
    assert 0.15 < elapsed < 0.35  # returned at the deadline, before the invocation's timeout
    ids = [r["messageId"] for r in event["Records"]]
    assert failures(response) == [ids[1], ids[3]]
    cancelled = processor.result[1]
    assert cancelled.status is Status.DEADLINE
    assert isinstance(cancelled.exception, DeadlineExceededError)
    assert cancelled.exception.started is True


@pytest.mark.anyio
async def test_records_not_started_before_the_deadline_are_reported_as_such() -> None:
    event = sqs_event(["30", "0.01", "0.01"])
    processor = AsyncBatchProcessor(
        EventType.SQS, concurrency=1, deadline_margin=0.2, raise_on_entire_batch_failure=False
    )
    response = await async_process_partial_response(
        event, sleep_body, processor, context=fake_lambda_context(0.3)
    )
    assert len(failures(response)) == 3
    statuses = [(o.status, getattr(o.exception, "started", None)) for o in processor.result]
    assert statuses == [
        (Status.DEADLINE, True),
        (Status.DEADLINE, False),
        (Status.DEADLINE, False),
    ]


def test_deadline_abandons_sync_handlers_in_worker_threads() -> None:
    finished = threading.Event()

    def handler(record: SQSRecord) -> str:
        if record.body == "slow":
            time.sleep(0.6)
            finished.set()
        return record.body

    event = sqs_event(["fast", "slow", "fast"])
    processor = BatchProcessor(EventType.SQS, concurrency=3, deadline_margin=0.2)
    started = time.monotonic()
    response = process_partial_response(event, handler, processor, context=fake_lambda_context(0.4))
    assert time.monotonic() - started < 0.45
    assert failures(response) == [event["Records"][1]["messageId"]]
    # The abandoned thread finishes later; its result changes nothing.
    assert finished.wait(2)
    assert processor.result[1].status is Status.DEADLINE
    assert failures(processor.response()) == [event["Records"][1]["messageId"]]


def test_inline_sync_handlers_start_nothing_after_the_deadline() -> None:
    event = sqs_event(["0.15"] * 5)
    processor = BatchProcessor(EventType.SQS, deadline_margin=0.2)
    response = process_partial_response(
        event, sync_sleep_body, processor, context=fake_lambda_context(0.5)
    )
    statuses = [o.status for o in processor.result]
    assert statuses[:2] == [Status.SUCCESS, Status.SUCCESS]
    assert statuses[2:] == [Status.DEADLINE] * 3 or statuses[3:] == [Status.DEADLINE] * 2
    assert len(failures(response)) == statuses.count(Status.DEADLINE)


@pytest.mark.anyio
async def test_deadline_with_fifo_groups_reports_unfinished_records_of_every_group() -> None:
    groups = ["a", "b", "a", "b"]
    event = sqs_event(["0.01", "0.01", "30", "0.01"], fifo=True, group_ids=groups)
    processor = AsyncSqsFifoPartialProcessor(concurrency=2, deadline_margin=0.2)
    response = await async_process_partial_response(
        event, sleep_body, processor, context=fake_lambda_context(0.4)
    )
    assert failures(response) == [event["Records"][2]["messageId"]]


@pytest.mark.anyio
async def test_stop_on_failure_and_deadline_each_say_why() -> None:
    async def handler(record: SQSRecord) -> None:
        if record.body == "fail":
            raise ValueError("boom")
        await anyio.sleep(float(record.body))

    event = sqs_event(["30", "fail", "0.01"])
    processor = AsyncBatchProcessor(
        EventType.SQS,
        concurrency=2,
        stop_on_failure=True,
        deadline_margin=0.2,
        raise_on_entire_batch_failure=False,
    )
    await async_process_partial_response(
        event, handler, processor, context=fake_lambda_context(0.4)
    )
    assert [o.status for o in processor.result] == [Status.DEADLINE, Status.FAILED, Status.SKIPPED]


def test_no_deadline_without_a_context_or_with_margin_none() -> None:
    processor = BatchProcessor(EventType.SQS, concurrency=2, deadline_margin=None)
    event = sqs_event(["0.2", "0.2"])
    response = process_partial_response(
        event, sleep_body, processor, context=fake_lambda_context(0.1)
    )
    assert response == {"batchItemFailures": []}


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_context_that_never_runs_out_sets_no_deadline(kind: str) -> None:
    # 2**31 - 1 ms: what the SQS worker's context says. No deadline is set (no timer, no
    # clock read a record), and a handler asking for its deadline hears there is none.
    from anybatch import current_record_deadline

    seen: list[float | None] = []

    class Forever:
        def get_remaining_time_in_millis(self) -> int:
            return 2**31 - 1

    def handler(record: SQSRecord) -> None:
        seen.append(current_record_deadline())

    async def async_handler(record: SQSRecord) -> None:
        seen.append(current_record_deadline())

    event = sqs_event(["a", "b"])
    if kind == "sync":
        response = process_partial_response(
            event, handler, BatchProcessor(EventType.SQS), context=Forever()
        )
    else:

        async def main() -> Any:
            processor = AsyncBatchProcessor(EventType.SQS)
            return await async_process_partial_response(
                event, async_handler, processor, context=Forever()
            )

        response = anyio.run(main)
    assert response == {"batchItemFailures": []}
    assert seen == [None, None]


def test_log_line_says_deadline_not_failure(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("anybatch-deadline")
    processor = BatchProcessor(EventType.SQS, concurrency=2, deadline_margin=0.2, logger=logger)
    with caplog.at_level(logging.WARNING, logger="anybatch-deadline"):
        process_partial_response(
            sqs_event(["0.01", "30"]), sleep_body, processor, context=fake_lambda_context(0.3)
        )
    summary, line = caplog.records
    assert "1 deadline" in summary.getMessage()
    assert "deadline" in line.getMessage()
    assert line.__dict__["anybatch_status"] == "deadline"


@pytest.mark.anyio
async def test_outer_cancellation_is_not_turned_into_deadline_failures() -> None:
    processor = AsyncBatchProcessor(EventType.SQS, deadline_margin=0.1)
    with anyio.move_on_after(0.05) as scope:
        await async_process_partial_response(
            sqs_event(["30"]), sleep_body, processor, context=fake_lambda_context(5)
        )
    assert scope.cancelled_caught
    assert processor.response() == {"batchItemFailures": []}  # nothing was reported


# --- property: whatever the durations, the report matches what finished ------------------


@pytest.mark.anyio
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    durations=st.lists(st.sampled_from([0.0, 0.005, 0.02, 0.05, 0.2]), min_size=1, max_size=12),
    time_left=st.sampled_from([0.01, 0.03, 0.06, 0.1]),
    concurrency=st.integers(1, 5),
)
async def test_every_record_not_done_by_the_deadline_is_reported_and_no_other(
    durations: list[float], time_left: float, concurrency: int
) -> None:
    finished: set[str] = set()

    async def handler(record: SQSRecord) -> None:
        await anyio.sleep(durations[int(record.body)])
        finished.add(record.message_id)

    event = sqs_event([str(i) for i in range(len(durations))])
    margin = 0.5
    processor = AsyncBatchProcessor(
        EventType.SQS,
        concurrency=concurrency,
        deadline_margin=margin,
        raise_on_entire_batch_failure=False,
    )
    response = await async_process_partial_response(
        event, handler, processor, context=fake_lambda_context(margin + time_left)
    )
    ids = {r["messageId"] for r in event["Records"]}
    assert set(failures(response)) == ids - finished
