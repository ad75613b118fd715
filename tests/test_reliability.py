"""The deadline and per-key order hold against hostile handlers, through the public API.

Each processor runs its records one of five ways: inline (a sync handler, blocking, one at a
time), anyio's pool on asyncio and on trio, the native asyncio pool, and worker threads. A
handler that swallows its cancellation must not keep the invocation past ``record_timeout``
or the deadline, and a record abandoned while it still runs must keep the later records of
its key from starting beside it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import anyio
import pytest

import anybatch._engine
from anybatch import (
    AsyncBatchProcessor,
    BatchProcessor,
    EventType,
    RecordSkippedError,
    Status,
    async_process_partial_response,
    process_partial_response,
)
from anybatch.testing import fake_lambda_context, kinesis_event, sqs_event

if TYPE_CHECKING:
    from anybatch.records import KinesisStreamRecord, SQSRecord

#: How async work is driven: the native asyncio pool (what Lambda runs), anyio's pool on
#: asyncio (the reference driver) and on trio.
ASYNC_WAYS = ["asyncio", "anyio-asyncio", "trio"]


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """Set at the end of a test: blocked handlers left behind then end."""
    event = threading.Event()
    yield event
    event.set()


def run_async(way: str, main: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    if way == "anyio-asyncio":  # anyio's driver, on an asyncio loop
        monkeypatch.setattr(anybatch._engine, "asyncio_running", lambda: False)
    return anyio.run(main, backend="trio" if way == "trio" else "asyncio")


def failures(response: Any) -> list[str]:
    return [item["itemIdentifier"] for item in response["batchItemFailures"]]


async def stubborn(record: SQSRecord) -> str:
    if record.body == "x":
        try:
            await anyio.sleep(3600)
        except (asyncio.CancelledError, anyio.get_cancelled_exc_class()):
            await anyio.sleep(20)  # swallows its cancellation and waits again
    return record.body


# -- 1. a handler that swallows cancellation ends on time ----------------------------------------


@pytest.mark.parametrize("way", ASYNC_WAYS)
def test_a_handler_that_swallows_cancellation_is_timed_out_at_record_timeout(
    way: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    processor = AsyncBatchProcessor(EventType.SQS, concurrency=3, record_timeout=0.2)
    event = sqs_event(["ok", "x", "ok"])

    async def main() -> Any:
        return await async_process_partial_response(event, stubborn, processor)

    began = time.monotonic()
    response = run_async(way, main, monkeypatch)
    assert time.monotonic() - began < 5
    assert failures(response) == [event["Records"][1]["messageId"]]
    assert [o.status for o in processor.result] == [
        Status.SUCCESS,
        Status.TIMED_OUT,
        Status.SUCCESS,
    ]


@pytest.mark.parametrize("way", ASYNC_WAYS)
def test_a_handler_that_swallows_cancellation_ends_at_the_deadline(
    way: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    processor = AsyncBatchProcessor(EventType.SQS, concurrency=3, deadline_margin=0.3)
    event = sqs_event(["ok", "x", "ok"])

    async def main() -> Any:
        context = fake_lambda_context(timeout=0.6)
        return await async_process_partial_response(event, stubborn, processor, context)

    began = time.monotonic()
    response = run_async(way, main, monkeypatch)
    assert time.monotonic() - began < 0.6 + 0.5  # before Lambda's own timeout, and then some
    assert failures(response) == [event["Records"][1]["messageId"]]
    assert processor.result[1].status is Status.DEADLINE


def test_an_abandoned_task_says_so_in_the_log(caplog: pytest.LogCaptureFixture) -> None:
    processor = AsyncBatchProcessor(EventType.SQS, concurrency=3, record_timeout=0.1)

    async def main() -> Any:
        return await async_process_partial_response(sqs_event(["ok", "x"]), stubborn, processor)

    with caplog.at_level(logging.WARNING, logger="anybatch.engine"):
        asyncio.run(main())
    [line] = [r.getMessage() for r in caplog.records if r.name == "anybatch.engine"]
    assert "did not end" in line
    assert "abandoned" in line
    assert "must re-raise it" in line


# -- 2. an abandoned record keeps its key -------------------------------------------------------


def key_order_handler(
    release: threading.Event, seen: list[tuple[str, int]], lock: threading.Lock
) -> Any:
    def record_handler(record: KinesisStreamRecord) -> None:
        index = int(record.kinesis.data_as_text())
        with lock:
            seen.append(("start", index))
        try:
            if index == 0:
                release.wait(10)  # outlives its record_timeout: the thread is abandoned
        finally:
            with lock:
                seen.append(("end", index))

    return record_handler


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("concurrency", [1, 3])
def test_a_thread_abandoned_at_its_timeout_keeps_its_key(
    concurrency: int, backend: Any, release: threading.Event
) -> None:
    seen: list[tuple[str, int]] = []
    lock = threading.Lock()
    handler = key_order_handler(release, seen, lock)
    event = kinesis_event(["0", "1", "2", "3"], partition_keys=["a", "b", "a", "c"])
    processor = BatchProcessor(
        EventType.KinesisDataStreams,
        concurrency=concurrency,
        record_timeout=0.05,
        backend=backend,
    )
    response = process_partial_response(event, handler, processor)
    time.sleep(0.1)  # record 2 would have started by now, were it let
    with lock:
        started = [index for what, index in seen if what == "start"]
    assert 2 not in started  # never beside record 0, which still runs
    statuses = [outcome.status for outcome in processor.result]
    assert statuses == [Status.TIMED_OUT, Status.SUCCESS, Status.SKIPPED, Status.SUCCESS]
    assert isinstance(processor.result[2].exception, RecordSkippedError)
    records = event["Records"]
    assert failures(response) == [
        records[0]["kinesis"]["sequenceNumber"],
        records[2]["kinesis"]["sequenceNumber"],
    ]


def test_a_task_abandoned_at_its_timeout_keeps_its_key() -> None:
    started: list[str] = []

    async def record_handler(record: KinesisStreamRecord) -> None:
        index = record.kinesis.data_as_text()
        started.append(index)
        if index == "0":
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                await asyncio.sleep(20)

    event = kinesis_event(["0", "1", "2"], partition_keys=["a", "b", "a"])
    processor = AsyncBatchProcessor(
        EventType.KinesisDataStreams, concurrency=3, record_timeout=0.05
    )

    async def main() -> Any:
        return await async_process_partial_response(event, record_handler, processor)

    asyncio.run(main())
    assert started == ["0", "1"]
    assert [o.status for o in processor.result] == [
        Status.TIMED_OUT,
        Status.SUCCESS,
        Status.SKIPPED,
    ]


def test_a_sync_handler_that_returns_runs_its_key_in_order_inline() -> None:
    # Inline (no record_timeout): nothing can be abandoned, every record runs, in order.
    seen: list[str] = []

    def record_handler(record: KinesisStreamRecord) -> None:
        seen.append(record.kinesis.data_as_text())

    event = kinesis_event(["0", "1", "2"], partition_keys=["a", "b", "a"])
    processor = BatchProcessor(EventType.KinesisDataStreams)
    assert process_partial_response(event, record_handler, processor) == {"batchItemFailures": []}
    assert seen == ["0", "1", "2"]
