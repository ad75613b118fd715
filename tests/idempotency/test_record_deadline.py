"""The IN_PROGRESS mark follows the record's own end, and ``current_record_deadline()`` says it.

With the processor's ``record_timeout`` and no Lambda context, a mark expires a second
(``RECORD_TIMEOUT_MARGIN``) after its record's end, not ``in_progress_timeout`` after it
was written; with a Lambda context, when the earlier of the two comes.
"""

from __future__ import annotations

import time
from typing import Any

import anyio
import pytest

import anybatch
from anybatch import (
    DEFAULT_DEADLINE_MARGIN,
    AsyncBatchProcessor,
    BatchProcessor,
    EventType,
    async_process_partial_response,
    process_partial_response,
)
from anybatch.idempotency import (
    RECORD_TIMEOUT_MARGIN,
    DynamoDBStore,
    InMemoryStore,
    StoredRecord,
    idempotent,
)
from anybatch.testing import fake_lambda_context, sqs_event

from ._handlers import Kind, processor

KINDS = ["async", "thread"]
Seen = list[tuple[float, float, Any]]


def watching(kind: Kind, store: InMemoryStore, seen: Seen) -> Any:
    """A handler of *kind* that notes when it started, its deadline and its key's mark."""

    def watch(record: Any) -> str:
        [mark] = [m for m in store.records.values() if m.status == "INPROGRESS"]
        seen.append((time.monotonic(), anybatch.current_record_deadline() or 0.0, mark))
        return "ok"

    if kind == "thread":
        return watch

    async def handler(record: Any) -> str:
        return watch(record)

    return handler


def mark_length(mark: StoredRecord, written: float) -> float:
    """Seconds from *written* (epoch) to when *mark* expires."""
    assert mark.in_progress_expires_at is not None
    return mark.in_progress_expires_at / 1000 - written


@pytest.mark.anyio
@pytest.mark.parametrize("kind", KINDS)
async def test_the_mark_expires_with_the_record_timeout(kind: Kind) -> None:
    store, seen = InMemoryStore(), Seen()
    handler = idempotent(store)(watching(kind, store, seen))
    written = time.time()
    await async_process_partial_response(
        sqs_event(["a", "b"]), handler, processor(record_timeout=5.0), context=None
    )
    assert len(seen) == 2
    for started, deadline, mark in seen:
        assert deadline - started == pytest.approx(5.0, abs=0.3)
        assert mark_length(mark, written) == pytest.approx(5.0 + RECORD_TIMEOUT_MARGIN, abs=0.5)


@pytest.mark.anyio
async def test_each_record_has_its_own_end() -> None:
    store = InMemoryStore()
    seen: list[tuple[float | None, StoredRecord]] = []

    @idempotent(store)
    async def handler(record: Any) -> str:
        [mark] = [m for m in store.records.values() if m.status == "INPROGRESS"]
        seen.append((anybatch.current_record_deadline(), mark))
        await anyio.sleep(0.4)
        return "ok"

    # One at a time: the second starts 0.4 s after the first, and ends 0.4 s later too.
    proc = processor(concurrency=1, record_timeout=3.0)
    await async_process_partial_response(sqs_event(["a", "b"]), handler, proc, context=None)
    (first, first_mark), (second, second_mark) = seen
    assert first is not None
    assert second is not None
    assert second - first == pytest.approx(0.4, abs=0.2)
    assert mark_length(second_mark, 0) - mark_length(first_mark, 0) == pytest.approx(0.4, abs=0.2)


def test_a_record_timeout_longer_than_in_progress_timeout_is_capped() -> None:
    store, seen = InMemoryStore(), Seen()
    handler = idempotent(store, in_progress_timeout=2)(watching("thread", store, seen))
    written = time.time()
    proc = BatchProcessor(EventType.SQS, record_timeout=60.0)
    process_partial_response(sqs_event(["a"]), handler, proc)
    [(started, deadline, mark)] = seen
    assert deadline - started == pytest.approx(60.0, abs=0.3)
    assert mark_length(mark, written) == pytest.approx(2.0, abs=0.5)


def test_the_invocation_ends_the_mark_when_it_ends_first() -> None:
    store, seen = InMemoryStore(), Seen()
    handler = idempotent(store)(watching("thread", store, seen))
    written = time.time()
    proc = BatchProcessor(EventType.SQS, record_timeout=60.0)
    context = fake_lambda_context(timeout=10.0)
    process_partial_response(sqs_event(["a"]), handler, proc, context=context)
    [(started, deadline, mark)] = seen
    # The record must end by anybatch's deadline, a deadline_margin before Lambda's end;
    # the mark lasts as long as the invocation.
    assert deadline - started == pytest.approx(10.0 - DEFAULT_DEADLINE_MARGIN, abs=0.3)
    assert mark_length(mark, written) == pytest.approx(10.0, abs=0.5)


def test_the_record_ends_the_mark_when_it_ends_first() -> None:
    store, seen = InMemoryStore(), Seen()
    handler = idempotent(store)(watching("thread", store, seen))
    written = time.time()
    proc = BatchProcessor(EventType.SQS, concurrency=4, record_timeout=3.0)
    context = fake_lambda_context(timeout=600.0)
    process_partial_response(sqs_event(["a"]), handler, proc, context=context)
    [(started, deadline, mark)] = seen
    assert deadline - started == pytest.approx(3.0, abs=0.3)
    assert mark_length(mark, written) == pytest.approx(3.0 + RECORD_TIMEOUT_MARGIN, abs=0.5)


def test_without_a_record_timeout_or_a_context_there_is_no_deadline() -> None:
    store, seen = InMemoryStore(), Seen()
    handler = idempotent(store, in_progress_timeout=30)(watching("thread", store, seen))
    written = time.time()
    process_partial_response(sqs_event(["a"]), handler, BatchProcessor(EventType.SQS))
    [(_, deadline, mark)] = seen
    assert deadline == 0.0  # None
    assert mark_length(mark, written) == pytest.approx(30.0, abs=0.5)


# -- current_record_deadline() --------------------------------------------------------------


def test_outside_a_record_there_is_no_deadline() -> None:
    assert anybatch.current_record_deadline() is None


def test_inline_records_have_the_batchs_deadline() -> None:
    deadlines: list[float | None] = []

    def handler(record: Any) -> None:
        deadlines.append(anybatch.current_record_deadline())

    proc = BatchProcessor(EventType.SQS, deadline_margin=2.0)
    began = time.monotonic()
    context = fake_lambda_context(timeout=20.0)
    process_partial_response(sqs_event(["a", "b"]), handler, proc, context=context)
    first, second = deadlines
    assert first is not None
    assert first == second  # one deadline for the batch
    assert first - began == pytest.approx(18.0, abs=0.3)
    assert anybatch.current_record_deadline() is None


@pytest.mark.anyio
async def test_a_sync_batch_inside_an_async_record_has_its_own_limits() -> None:
    inner: list[float | None] = []
    outer: list[tuple[float, float | None, float | None]] = []

    def inner_handler(record: Any) -> None:
        inner.append(anybatch.current_record_deadline())

    async def outer_handler(record: Any) -> None:
        began = time.monotonic()
        process_partial_response(sqs_event(["x"]), inner_handler, BatchProcessor(EventType.SQS))
        outer.append((began, anybatch.current_record_deadline(), inner[-1]))

    proc = AsyncBatchProcessor(EventType.SQS, record_timeout=4.0)
    await async_process_partial_response(sqs_event(["a"]), outer_handler, proc)
    [(began, deadline, inner_deadline)] = outer
    assert inner_deadline is None  # the inner batch has no deadline and no record_timeout
    assert deadline is not None
    assert deadline - began == pytest.approx(4.0, abs=0.3)


@pytest.mark.anyio
async def test_a_handler_can_stop_before_its_record_timeout() -> None:
    ended: list[str] = []

    async def handler(record: Any) -> None:
        deadline = anybatch.current_record_deadline()
        assert deadline is not None
        with anyio.move_on_after(deadline - time.monotonic() - 0.2):
            await anyio.sleep(10)
        ended.append(record.body)

    proc = AsyncBatchProcessor(EventType.SQS, record_timeout=0.5)
    response = await async_process_partial_response(sqs_event(["a"]), handler, proc)
    assert ended == ["a"]
    assert response == {"batchItemFailures": []}


# -- DynamoDB -------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_the_tables_mark_expires_with_the_record_timeout(
    dynamo: DynamoDBStore, table: Any
) -> None:
    seen: list[dict[str, Any]] = []

    @idempotent(dynamo)
    async def handler(record: Any) -> str:
        seen.extend(table.items())
        return "ok"

    written = time.time()
    proc = processor(record_timeout=20.0)
    await async_process_partial_response(sqs_event(["a"]), handler, proc, context=None)
    [mark] = seen
    expires = int(mark["in_progress_expiration"]["N"]) / 1000
    assert expires - written == pytest.approx(20.0 + RECORD_TIMEOUT_MARGIN, abs=2.0)
