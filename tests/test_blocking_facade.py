"""The blocking facade: BatchProcessor, process_partial_response and @batch_processor."""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from anybatch import (
    AsyncBatchProcessor,
    BatchProcessingError,
    BatchProcessor,
    EventType,
    ExceptionInfo,
    FailureResponse,
    HandlerTypeError,
    ProcessorStateError,
    SuccessResponse,
    as_lambda_handler,
    async_batch_processor,
    async_process_partial_response,
    batch_processor,
    process_partial_response,
)
from anybatch.records import SQSRecord
from anybatch.testing import fake_lambda_context, sqs_event

BACKENDS = ["asyncio", "trio"]


def failures(response: Any) -> list[str]:
    return [item["itemIdentifier"] for item in response["batchItemFailures"]]


def fail_odd(record: SQSRecord) -> int:
    number = int(record.body)
    if number % 2:
        raise ValueError(f"odd {number}")
    return number


async def async_fail_odd(record: SQSRecord) -> int:
    await anyio.lowlevel.checkpoint()
    return fail_odd(record)


def test_sync_handler_reports_exactly_the_failed_records() -> None:
    event = sqs_event(["0", "1", "2", "3"])
    response = process_partial_response(event, fail_odd, BatchProcessor(EventType.SQS))
    assert failures(response) == [
        event["Records"][1]["messageId"],
        event["Records"][3]["messageId"],
    ]


def test_default_concurrency_is_one() -> None:
    assert BatchProcessor(EventType.SQS).concurrency == 1


def test_concurrency_one_runs_sync_handlers_inline_without_an_event_loop() -> None:
    caller = threading.get_ident()
    seen: list[tuple[int, bool]] = []

    def handler(record: SQSRecord) -> None:
        try:
            asyncio.get_running_loop()
            running = True
        except RuntimeError:
            running = False
        seen.append((threading.get_ident(), running))

    process_partial_response(sqs_event(["a", "b"]), handler, BatchProcessor(EventType.SQS))
    assert seen == [(caller, False), (caller, False)]


def test_context_manager_use_of_the_incumbent_works_unchanged() -> None:
    processor = BatchProcessor(EventType.SQS, raise_on_entire_batch_failure=False)
    records = sqs_event(["0", "1"])["Records"]
    context = fake_lambda_context()
    with processor(records, fail_odd, lambda_context=context):
        processed = processor.process()
    (status0, result0, record0), (status1, result1, _record1) = processed
    assert isinstance(processed[0], SuccessResponse)
    assert isinstance(processed[1], FailureResponse)
    assert (status0, result0, record0.body) == ("success", 0, "0")
    assert status1 == "fail"
    assert "odd 1" in result1
    assert [r.body for r in processor.success_messages] == ["0"]
    assert [r.body for r in processor.fail_messages] == ["1"]
    assert len(processor.exceptions) == 1
    exc_type, exc, _ = processor.exceptions[0]
    assert exc_type is ValueError
    assert str(exc) == "odd 1"
    assert failures(processor.response()) == [records[1]["messageId"]]


def test_process_outside_the_context_manager_says_how_to_use_it() -> None:
    processor = BatchProcessor(EventType.SQS)
    processor(sqs_event(["0"])["Records"], fail_odd)
    with pytest.raises(ProcessorStateError, match="with processor"):
        processor.process()


def test_entering_without_a_batch_says_how_to_use_it() -> None:
    processor = BatchProcessor(EventType.SQS)
    with pytest.raises(ProcessorStateError, match="call the processor"), processor:
        pass


class CountingProcessor(BatchProcessor[SQSRecord]):
    """The incumbent's recipe: count failures as a metric from the hooks."""

    def __init__(self) -> None:
        super().__init__(EventType.SQS, raise_on_entire_batch_failure=False)
        self.metric_failures = 0
        self.metric_successes = 0

    def success_handler(self, record: SQSRecord, result: Any) -> SuccessResponse:
        self.metric_successes += 1
        return super().success_handler(record, result)

    def failure_handler(self, record: SQSRecord, exception: ExceptionInfo) -> FailureResponse:
        self.metric_failures += 1
        return super().failure_handler(record, exception)


@pytest.mark.parametrize("handler", [fail_odd, async_fail_odd])
def test_subclass_hooks_are_called_for_every_record(handler: Any) -> None:
    processor = CountingProcessor()
    response = process_partial_response(sqs_event(["0", "1", "2", "3", "5"]), handler, processor)
    assert (processor.metric_successes, processor.metric_failures) == (2, 3)
    assert len(response["batchItemFailures"]) == 3


def test_sync_handlers_above_concurrency_one_run_in_bounded_worker_threads() -> None:
    lock = threading.Lock()
    in_flight = peak = 0
    threads: set[int] = set()

    def handler(record: SQSRecord) -> None:
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
            threads.add(threading.get_ident())
        time.sleep(0.01)
        with lock:
            in_flight -= 1

    processor = BatchProcessor(EventType.SQS, concurrency=5)
    process_partial_response(sqs_event(["x"] * 30), handler, processor)
    assert peak == 5
    assert threading.get_ident() not in threads


@pytest.mark.parametrize("backend", BACKENDS)
def test_async_handlers_run_on_the_chosen_backend(backend: Any) -> None:
    libraries: list[str] = []

    async def handler(record: SQSRecord) -> None:
        import sniffio

        libraries.append(sniffio.current_async_library())
        await anyio.lowlevel.checkpoint()

    processor = BatchProcessor(EventType.SQS, concurrency=2, backend=backend)
    process_partial_response(sqs_event(["a", "b"]), handler, processor)
    assert libraries == [backend, backend]


@pytest.mark.parametrize("backend", BACKENDS)
def test_async_handlers_on_the_blocking_facade_report_failures(backend: Any) -> None:
    event = sqs_event(["1", "2", "3"])
    processor = BatchProcessor(EventType.SQS, concurrency=3, backend=backend)
    response = process_partial_response(event, async_fail_odd, processor)
    assert failures(response) == [
        event["Records"][0]["messageId"],
        event["Records"][2]["messageId"],
    ]


@pytest.mark.parametrize("backend", BACKENDS)
def test_loop_bound_resources_survive_warm_invocations(backend: Any) -> None:
    # A lock created by the first invocation must work in the next ones (it is bound to the
    # loop it was first used on: a fresh loop per call would break it).
    state: dict[str, Any] = {}

    async def handler(record: SQSRecord) -> None:
        if "lock" not in state:
            state["lock"] = anyio.Lock()
            state["loop_thread"] = threading.get_ident()
        async with state["lock"]:
            await anyio.lowlevel.checkpoint()
        assert threading.get_ident() == state["loop_thread"]

    processor = BatchProcessor(EventType.SQS, concurrency=4, backend=backend)
    for _ in range(5):
        response = process_partial_response(sqs_event(["a", "b", "c"]), handler, processor)
        assert response == {"batchItemFailures": []}


def test_asyncio_lock_survives_warm_invocations() -> None:
    locks: list[asyncio.Lock] = []

    async def handler(record: SQSRecord) -> None:
        if not locks:
            locks.append(asyncio.Lock())
        async with locks[0]:
            await asyncio.sleep(0.001)

    processor = BatchProcessor(EventType.SQS, concurrency=3)
    for _ in range(3):
        response = process_partial_response(sqs_event(["a", "b", "c"]), handler, processor)
        assert response == {"batchItemFailures": []}


@pytest.mark.anyio
async def test_blocking_call_works_from_code_that_runs_an_event_loop() -> None:
    # A sync helper called from async code: no "cannot be called from a running event loop".
    async def handler(record: SQSRecord) -> int:
        await anyio.lowlevel.checkpoint()
        return int(record.body)

    processor = BatchProcessor(EventType.SQS, concurrency=2)
    response = process_partial_response(sqs_event(["1", "2"]), handler, processor)
    assert response == {"batchItemFailures": []}
    assert [o.result for o in processor.result] == [1, 2]


def test_process_partial_response_accepts_an_async_processor() -> None:
    event = sqs_event(["1", "2"])
    response = process_partial_response(event, async_fail_odd, AsyncBatchProcessor(EventType.SQS))
    assert failures(response) == [event["Records"][0]["messageId"]]


@pytest.mark.anyio
async def test_async_entry_point_accepts_a_blocking_processor_and_sync_handler() -> None:
    event = sqs_event(["1", "2"])
    response = await async_process_partial_response(event, fail_odd, BatchProcessor(EventType.SQS))
    assert failures(response) == [event["Records"][0]["messageId"]]


def test_sync_handler_returning_a_coroutine_fails_at_once_with_advice() -> None:
    def handler(record: SQSRecord) -> Any:
        return async_fail_odd(record)  # forgot to declare it async

    with pytest.raises(HandlerTypeError, match="async def"):
        process_partial_response(sqs_event(["1", "2"]), handler, BatchProcessor(EventType.SQS))


@pytest.mark.anyio
async def test_sync_handler_returning_a_coroutine_fails_at_once_in_async_code() -> None:
    def handler(record: SQSRecord) -> Any:
        return async_fail_odd(record)

    with pytest.raises(HandlerTypeError, match="async def"):
        await async_process_partial_response(
            sqs_event(["1", "2"]), handler, AsyncBatchProcessor(EventType.SQS)
        )


def test_batch_processor_decorator_processes_before_the_handler() -> None:
    processor = BatchProcessor(EventType.SQS)

    @batch_processor(record_handler=fail_odd, processor=processor)
    def lambda_handler(event: dict[str, Any], context: object) -> Any:
        return processor.response()

    event = sqs_event(["1", "2"])
    assert failures(lambda_handler(event, fake_lambda_context())) == [
        event["Records"][0]["messageId"]
    ]


def test_batch_processor_refuses_an_async_lambda_handler() -> None:
    processor = BatchProcessor(EventType.SQS)

    with pytest.raises(HandlerTypeError, match="async_batch_processor"):

        @batch_processor(record_handler=fail_odd, processor=processor)
        async def lambda_handler(event: dict[str, Any], context: object) -> Any:
            return processor.response()


def test_async_batch_processor_refuses_a_sync_lambda_handler() -> None:
    processor = AsyncBatchProcessor(EventType.SQS)

    with pytest.raises(HandlerTypeError, match="batch_processor"):

        @async_batch_processor(record_handler=fail_odd, processor=processor)
        def lambda_handler(event: dict[str, Any], context: object) -> Any:
            return processor.response()


def test_as_lambda_handler_gives_lambda_a_plain_function_on_a_long_lived_loop() -> None:
    processor = AsyncBatchProcessor(EventType.SQS)
    loops: list[asyncio.AbstractEventLoop] = []

    @as_lambda_handler
    @async_batch_processor(record_handler=async_fail_odd, processor=processor)
    async def lambda_handler(event: dict[str, Any], context: object) -> Any:
        loops.append(asyncio.get_running_loop())
        return processor.response()

    event = sqs_event(["1", "2"])
    assert failures(lambda_handler(event, fake_lambda_context())) == [
        event["Records"][0]["messageId"]
    ]
    lambda_handler(event, fake_lambda_context())
    assert loops[0] is loops[1]


def test_blocking_call_inside_an_async_lambda_handler_says_to_await() -> None:
    processor = BatchProcessor(EventType.SQS, concurrency=2)

    @as_lambda_handler
    async def lambda_handler(event: dict[str, Any], context: object) -> Any:
        return process_partial_response(event, async_fail_odd, processor, context)

    with pytest.raises(HandlerTypeError, match="await"):
        lambda_handler(sqs_event(["1"]), fake_lambda_context())


def test_every_record_failing_raises_and_keeps_the_response() -> None:
    processor = BatchProcessor(EventType.SQS)
    with pytest.raises(BatchProcessingError, match="All records failed"):
        process_partial_response(sqs_event(["1", "3"]), fail_odd, processor)
    assert len(processor.response()["batchItemFailures"]) == 2


def test_keyboard_interrupt_in_an_inline_handler_propagates() -> None:
    def handler(record: SQSRecord) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        process_partial_response(sqs_event(["1"]), handler, BatchProcessor(EventType.SQS))


def test_processor_refuses_a_second_batch_while_one_runs() -> None:
    processor = BatchProcessor(EventType.SQS, raise_on_entire_batch_failure=False)
    records = sqs_event(["1"])["Records"]
    with processor(records, fail_odd):
        with pytest.raises(ProcessorStateError, match="already"):
            processor(records, fail_odd)
        processor.process()
    assert len(processor.response()["batchItemFailures"]) == 1


def test_a_batch_left_unprocessed_is_an_error_not_an_empty_response() -> None:
    # The incumbent's async_process() blocks; here it is a coroutine. Code migrated without
    # an await must not report "no failures" for records that never ran.
    processor = AsyncBatchProcessor(EventType.SQS)
    records = sqs_event(["1"])["Records"]
    with pytest.raises(ProcessorStateError, match="await"), processor(records, async_fail_odd):
        forgotten = processor.async_process()  # the mistake: no await
    forgotten.close()


def test_a_handler_mistake_does_not_break_the_long_lived_loop() -> None:
    def sync_returning_coroutine(record: SQSRecord) -> Any:
        return async_fail_odd(record)

    with pytest.raises(HandlerTypeError):
        process_partial_response(
            sqs_event(["2", "4"]),
            sync_returning_coroutine,
            BatchProcessor(EventType.SQS, concurrency=2),
        )
    response = process_partial_response(
        sqs_event(["2"]), async_fail_odd, BatchProcessor(EventType.SQS)
    )
    assert response == {"batchItemFailures": []}


def test_logger_writes_one_line_per_failure_with_its_status(
    caplog: pytest.LogCaptureFixture,
) -> None:
    logger = logging.getLogger("anybatch-test")
    processor = BatchProcessor(EventType.SQS, logger=logger)
    with caplog.at_level(logging.WARNING, logger="anybatch-test"):
        process_partial_response(sqs_event(["0", "1"]), fail_odd, processor)
    summary, record = caplog.records
    assert summary.getMessage() == (
        "batch of 2 records: 1 success, 1 failed; 1 reported for retry: "
        "00000000-0000-4000-8000-000000000001 failed: ValueError: odd 1"
    )
    assert summary.__dict__["anybatch_counts"] == {"success": 1, "failed": 1}
    assert "failed" in record.getMessage()
    assert record.__dict__["anybatch_status"] == "failed"
    assert record.__dict__["item_identifier"] == "00000000-0000-4000-8000-000000000001"


def test_logs_are_one_summary_and_capped_record_lines_never_bodies(
    caplog: pytest.LogCaptureFixture,
) -> None:
    logger = logging.getLogger("anybatch-test-cap")

    def fail_all(record: SQSRecord) -> None:
        raise ValueError("cannot handle this record")

    event = sqs_event([f"SECRET-BODY-{i}" for i in range(10)])
    with caplog.at_level(logging.WARNING, logger="anybatch-test-cap"):
        process_partial_response(
            event,
            fail_all,
            BatchProcessor(
                EventType.SQS, logger=logger, log_records=2, raise_on_entire_batch_failure=False
            ),
        )
    ids = [r["messageId"] for r in event["Records"]]
    summary, *lines = caplog.records
    assert summary.getMessage() == (
        "batch of 10 records: 10 failed; 10 reported for retry: "
        + "; ".join(f"{ident} failed: ValueError: cannot handle this record" for ident in ids[:3])
        + "; and 7 more"
    )
    assert [line.__dict__["item_identifier"] for line in lines] == ids[:2]
    assert all(line.exc_info is not None for line in lines)
    assert "SECRET-BODY" not in caplog.text


def test_log_records_zero_keeps_only_the_summary(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("anybatch-test-zero")
    processor = BatchProcessor(EventType.SQS, logger=logger, log_records=0)
    with caplog.at_level(logging.WARNING, logger="anybatch-test-zero"):
        process_partial_response(sqs_event(["0", "1", "3"]), fail_odd, processor)
    (summary,) = caplog.records
    assert summary.getMessage().startswith("batch of 3 records: 1 success, 2 failed; 2 reported")


def test_a_batch_that_all_succeeded_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("anybatch-test-quiet")
    processor = BatchProcessor(EventType.SQS, logger=logger)
    with caplog.at_level(logging.DEBUG, logger="anybatch-test-quiet"):
        process_partial_response(sqs_event(["0", "2"]), fail_odd, processor)
    assert caplog.records == []


@pytest.mark.parametrize("value", [-1, 1.5, True, "3"])
def test_log_records_must_be_a_count(value: Any) -> None:
    with pytest.raises(ValueError, match="log_records must be an int >= 0"):
        BatchProcessor(EventType.SQS, log_records=value)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"concurrency": 0}, ValueError, "concurrency"),
        ({"concurrency": 2.5}, TypeError, "concurrency"),
        ({"concurrency": True}, TypeError, "concurrency"),
        ({"record_timeout": 0}, ValueError, "record_timeout"),
        ({"record_timeout": "1"}, TypeError, "record_timeout"),
        ({"deadline_margin": -1}, ValueError, "deadline_margin"),
        ({"deadline_margin": float("nan")}, ValueError, "deadline_margin"),
        ({"backend": "curio"}, ValueError, "backend"),
    ],
)
def test_bad_knobs_are_refused_when_the_processor_is_built(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        BatchProcessor(EventType.SQS, **kwargs)


def test_trio_backend_without_trio_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from anybatch import MissingDependencyError

    monkeypatch.setitem(sys.modules, "trio", None)
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(MissingDependencyError, match=r"anybatch\[trio\]"):
        BatchProcessor(EventType.SQS, backend="trio")


def test_process_returns_every_item_after_the_processor_served_an_entry_point() -> None:
    processor = BatchProcessor(EventType.SQS)
    process_partial_response(sqs_event(["0", "2"]), fail_odd, processor)
    assert [r.body for r in processor.success_messages] == ["0", "2"]
    with processor(sqs_event(["4", "6"])["Records"], fail_odd):
        processed = processor.process()
    assert [(status, result) for status, result, _ in processed] == [("success", 4), ("success", 6)]


def test_async_handlers_run_on_the_calling_main_thread_without_a_thread_hop() -> None:
    # Lambda calls handlers on the main thread: anybatch's loop lives there, entered per call.
    threads: list[threading.Thread] = []

    async def handler(record: SQSRecord) -> None:
        threads.append(threading.current_thread())
        await anyio.lowlevel.checkpoint()

    assert threading.current_thread() is threading.main_thread()
    process_partial_response(sqs_event(["a", "b"]), handler, BatchProcessor(EventType.SQS))
    assert threads == [threading.main_thread()] * 2


def test_blocking_calls_from_other_threads_share_one_loop_thread() -> None:
    loops: list[asyncio.AbstractEventLoop] = []

    async def handler(record: SQSRecord) -> None:
        loops.append(asyncio.get_running_loop())

    processor = BatchProcessor(EventType.SQS)

    def invoke() -> None:
        process_partial_response(sqs_event(["a"]), handler, processor)

    for _ in range(2):
        worker = threading.Thread(target=invoke)
        worker.start()
        worker.join()
    assert len(loops) == 2
    assert loops[0] is loops[1]


class SilentFailures(BatchProcessor[SQSRecord]):
    """A failure hook that keeps nothing: failures must still be reported."""

    def failure_handler(self, record: SQSRecord, exception: ExceptionInfo) -> FailureResponse:
        return FailureResponse("fail", str(exception[1]), record)


def test_failures_are_reported_even_when_a_hook_keeps_none_of_them() -> None:
    event = sqs_event(["0", "1"])
    response = process_partial_response(event, fail_odd, SilentFailures(EventType.SQS))
    assert failures(response) == [event["Records"][1]["messageId"]]
    with pytest.raises(BatchProcessingError, match="2 individual errors"):
        process_partial_response(sqs_event(["1", "3"]), fail_odd, SilentFailures(EventType.SQS))
