"""Custom processors: subclasses of BasePartialProcessor that implement the documented hooks."""

from __future__ import annotations

import contextlib
import importlib
import sqlite3
import sys
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from anybatch import (
    BasePartialProcessor,
    BatchProcessingError,
    EventType,
    FailureResponse,
    InvalidEventError,
    RecordFailedError,
    Status,
    SuccessResponse,
    async_batch_processor,
    async_process_partial_response,
    batch_processor,
    process_partial_response,
)
from anybatch.testing import fake_lambda_context, kinesis_event, sqs_event

ROOT = Path(__file__).resolve().parents[1]

Entry = SuccessResponse | FailureResponse


def failures(response: Any) -> list[str]:
    return [item["itemIdentifier"] for item in response["batchItemFailures"]]


def fail_bad(record: dict[str, Any]) -> str:
    body = str(record["body"])
    if body.startswith("bad"):
        raise ValueError(body)
    return body.upper()


class Collecting(BasePartialProcessor[dict[str, Any]]):
    """The documented shape: no super().__init__(), its own state, the three hooks."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.written: list[Any] = []
        self.results: list[Any] = []

    def _prepare(self) -> None:
        self.calls.append("prepare")
        self.results = []

    def _clean(self) -> None:
        self.calls.append("clean")
        self.written.extend(self.results)

    def _process_record(self, record: dict[str, Any]) -> Entry:
        self.calls.append("record")
        try:
            result = self.handler(record)
        except Exception:
            return self.failure_handler(record, sys.exc_info())
        self.results.append(result)
        return self.success_handler(record, result)


def test_a_subclass_that_never_calls_init_works_as_a_context_manager() -> None:
    event = sqs_event(["a", "bad-1", "c"])
    processor = Collecting()
    with processor(event["Records"], fail_bad):
        processed = processor.process()
        assert processor.calls == ["prepare", "record", "record", "record"]
    assert processor.calls[-1] == "clean"
    assert processor.written == ["A", "C"]
    assert failures(processor.response()) == [event["Records"][1]["messageId"]]
    # Its return tuples are the records' results, in record order.
    assert [entry.status for entry in processed] == ["success", "fail", "success"]
    assert processed[0] == ("success", "A", event["Records"][0])
    assert processor.result[0].result == ("success", "A", event["Records"][0])
    assert isinstance(processor.result[1].exception, ValueError)
    assert processor.success_messages == [event["Records"][0], event["Records"][2]]
    assert processor.fail_messages == [event["Records"][1]]


def test_a_custom_processor_works_with_the_decorator_and_the_function() -> None:
    processor = Collecting()
    event = sqs_event(["a", "bad"])

    @batch_processor(record_handler=fail_bad, processor=processor)
    def lambda_handler(event: Any, context: Any) -> Any:
        return processor.response()

    assert failures(lambda_handler(event, None)) == [event["Records"][1]["messageId"]]
    assert failures(process_partial_response(event, fail_bad, processor)) == [
        event["Records"][1]["messageId"]
    ]
    assert processor.written == ["A", "A"]


class Bare(BasePartialProcessor[dict[str, Any]]):
    def __init__(self) -> None:
        super().__init__()

    def _process_record(self, record: dict[str, Any]) -> Entry:
        try:
            return self.success_handler(record, self.handler(record))
        except Exception:
            return self.failure_handler(record, sys.exc_info())


def test_super_init_without_arguments_takes_the_event_type_from_the_batch() -> None:
    processor = Bare()
    assert processor.event_type is None
    sqs = sqs_event(["ok", "bad"])
    assert failures(process_partial_response(sqs, fail_bad, processor)) == [
        sqs["Records"][1]["messageId"]
    ]

    def kinesis_handler(record: dict[str, Any]) -> None:
        if record["kinesis"]["partitionKey"] == "p1":
            raise ValueError("p1")

    stream = kinesis_event(["x", "y"], partition_keys=["p0", "p1"])
    assert failures(process_partial_response(stream, kinesis_handler, processor)) == [
        stream["Records"][1]["kinesis"]["sequenceNumber"]
    ]


def test_a_batch_that_names_no_event_type_is_refused_clearly() -> None:
    records = [{"messageId": "m1", "body": "x"}]
    with pytest.raises(InvalidEventError, match="no event type and record 0 has no 'eventSource'"):
        process_partial_response({"Records": records}, fail_bad, Bare())


def test_an_overridden_failure_handler_keeps_failures_reported() -> None:
    class Quiet(Bare):
        def failure_handler(self, record: dict[str, Any], exception: Any) -> FailureResponse:
            return FailureResponse("fail", "hidden", record)  # keeps nothing, no super()

    processor = Quiet()
    event = sqs_event(["ok", "bad"])
    assert failures(process_partial_response(event, fail_bad, processor)) == [
        event["Records"][1]["messageId"]
    ]
    exc = processor.result[1].exception
    assert isinstance(exc, RecordFailedError)
    assert exc.entry == ("fail", "hidden", event["Records"][1])


def test_a_process_record_that_raises_fails_its_record_and_gets_a_failure_entry() -> None:
    class Raising(Collecting):
        def _process_record(self, record: dict[str, Any]) -> Entry:
            if record["body"] == "explode":
                raise KeyError("from _process_record itself")
            return super()._process_record(record)

    processor = Raising()
    event = sqs_event(["a", "explode"])
    with processor(event["Records"], fail_bad):
        processed = processor.process()
    assert processed[1].status == "fail"
    assert processor.fail_messages == [event["Records"][1]]
    assert isinstance(processor.result[1].exception, KeyError)


def test_clean_and_prepare_overrides_lose_neither_the_response_nor_the_entire_batch_check() -> None:
    processor = Collecting()  # its _prepare and _clean never call super()
    with pytest.raises(BatchProcessingError):
        process_partial_response(sqs_event(["bad-1", "bad-2"]), fail_bad, processor)
    assert len(processor.response()["batchItemFailures"]) == 2
    assert processor.calls[-1] == "clean"


class Threaded(BasePartialProcessor[dict[str, Any]]):
    """A custom processor that calls super().__init__() with settings."""

    def __init__(self, **options: Any) -> None:
        super().__init__(EventType.SQS, **options)
        self.lock = threading.Lock()
        self.in_flight = 0
        self.peak = 0

    def _process_record(self, record: dict[str, Any]) -> Entry:
        with self.lock:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
        try:
            time.sleep(0.02)
            return self.success_handler(record, self.handler(record))
        except Exception:
            return self.failure_handler(record, sys.exc_info())
        finally:
            with self.lock:
                self.in_flight -= 1


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_process_record_runs_under_the_concurrency_limit(backend: str) -> None:
    processor = Threaded(concurrency=3, backend=backend)
    event = sqs_event([str(i) for i in range(9)])
    assert process_partial_response(event, fail_bad, processor) == {"batchItemFailures": []}
    assert processor.peak == 3


def test_process_record_keeps_fifo_group_order_and_skips_a_failed_group() -> None:
    processor = Threaded(concurrency=4)
    event = sqs_event(["bad", "b1", "a2", "b2"], fifo=True, group_ids=["a", "b", "a", "b"])
    response = process_partial_response(event, fail_bad, processor)
    ids = [r["messageId"] for r in event["Records"]]
    assert failures(response) == [ids[0], ids[2]]
    assert [o.status for o in processor.result] == [
        Status.FAILED,
        Status.SUCCESS,
        Status.SKIPPED,
        Status.SUCCESS,
    ]


def test_process_record_stops_at_the_deadline_and_reports_the_rest() -> None:
    processor = Threaded(concurrency=1, deadline_margin=0.0)
    event = sqs_event([str(i) for i in range(50)])
    context = fake_lambda_context(0.1)
    with processor(event["Records"], fail_bad, lambda_context=context):
        processed = processor.process()
    statuses = [o.status for o in processor.result]
    assert Status.SUCCESS in statuses
    assert statuses[-1] is Status.DEADLINE
    reported = failures(processor.response())
    assert reported == [o.identifier for o in processor.result if not o.ok]
    # Records that never ran still got their failure_handler call and entry.
    assert len(processed) == 50
    assert processed[-1].status == "fail"


class AsyncCustom(BasePartialProcessor[dict[str, Any]]):
    def __init__(self) -> None:
        super().__init__(EventType.SQS, concurrency=10)
        self.seen_async = 0

    async def _async_process_record(self, record: dict[str, Any]) -> Entry:
        self.seen_async += 1
        await anyio.lowlevel.checkpoint()
        try:
            return self.success_handler(record, await self.handler(record))
        except Exception:
            return self.failure_handler(record, sys.exc_info())


async def async_fail_bad(record: dict[str, Any]) -> str:
    await anyio.lowlevel.checkpoint()
    return fail_bad(record)


@pytest.mark.anyio
async def test_async_process_record_is_awaited_by_async_process() -> None:
    processor = AsyncCustom()
    event = sqs_event(["a", "bad", "c"])
    response = await async_process_partial_response(event, async_fail_bad, processor)
    assert failures(response) == [event["Records"][1]["messageId"]]
    assert processor.seen_async == 3


@pytest.mark.anyio
async def test_async_process_record_with_the_async_decorator() -> None:
    processor = AsyncCustom()
    event = sqs_event(["a", "b"])

    @async_batch_processor(record_handler=async_fail_bad, processor=processor)
    async def lambda_handler(event: Any, context: Any) -> Any:
        return processor.response()

    assert await lambda_handler(event, None) == {"batchItemFailures": []}


def test_async_process_record_runs_from_blocking_code_too() -> None:
    processor = AsyncCustom()
    event = sqs_event(["a", "bad"])
    response = process_partial_response(event, async_fail_bad, processor)
    assert failures(response) == [event["Records"][1]["messageId"]]


@pytest.mark.anyio
async def test_a_sync_process_record_runs_in_threads_under_async_process() -> None:
    processor = Threaded(concurrency=2)
    event = sqs_event(["a", "b", "bad"])
    response = await async_process_partial_response(event, fail_bad, processor)
    assert failures(response) == [event["Records"][2]["messageId"]]
    assert processor.peak == 2


def test_a_subclass_may_call_the_default_process_record() -> None:
    class Counting(BasePartialProcessor[Any]):
        def __init__(self) -> None:
            super().__init__(EventType.SQS)
            self.count = 0

        def _process_record(self, record: Any) -> Entry:
            self.count += 1
            return super()._process_record(record)

    processor = Counting()
    seen: list[str] = []

    def handler(record: Any) -> None:
        seen.append(record.body)  # the default hands the handler the record's view

    process_partial_response(sqs_event(["x", "y"]), handler, processor)
    assert processor.count == 2
    assert seen == ["x", "y"]


def test_the_documented_example_stores_successes_in_clean(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = tmp_path / "results.sqlite3"
    monkeypatch.setenv("RESULTS_DB", str(database))
    monkeypatch.syspath_prepend(str(ROOT))
    sys.modules.pop("examples.custom_processor", None)
    example = importlib.import_module("examples.custom_processor")
    import json

    event = json.loads((ROOT / "examples" / "events" / "classic.json").read_text())
    response = example.lambda_handler(event, fake_lambda_context())
    assert failures(response) == [
        "00000000-0000-4000-8000-000000000001",
        "00000000-0000-4000-8000-000000000002",
    ]
    with contextlib.closing(sqlite3.connect(database)) as connection:
        rows = connection.execute("SELECT result FROM results").fetchall()
    assert [json.loads(row[0])["invoice"] for row in rows] == ["inv-100", "inv-103", "inv-104"]
    sys.modules.pop("examples.custom_processor", None)
