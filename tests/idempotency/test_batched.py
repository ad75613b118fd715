"""``idempotent(store, batched=True)`` against moto's DynamoDB over HTTP: two calls a batch.

The keys of a batch are claimed in one ``TransactWriteItems`` when its first record starts;
the results are stored in one ``BatchWriteItem`` when it ends. Every decision stays the
per-record one (replay, in progress, release on failure); what changes is how many calls a
batch makes, which the tests count with a botocore event hook, and what happens to keys
claimed for records that never run. Faults on the wire (respx) never run a handler twice
and never lose a record.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest
from aiobotocore.session import get_session
from pydantic import BaseModel, Json

from anybatch import (
    AsyncBatchProcessor,
    EventType,
    async_process_partial_response,
    process_partial_response,
)
from anybatch.idempotency import (
    COMPLETED,
    IN_PROGRESS,
    DynamoDBStore,
    InMemoryStore,
    StoredRecord,
    hash_value,
    idempotent,
)
from anybatch.models import SqsRecordModel
from anybatch.testing import fake_lambda_context, sqs_event

from ._handlers import Counter, Kind, blocking_processor, errors, failures, make_handler, processor
from ._wire import CONFIG, Wire

if TYPE_CHECKING:
    from .conftest import Table

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.filterwarnings(
        "ignore:aiobotocore's httpx backend now prefers httpx2:DeprecationWarning"
    ),
]


class Calls(list[str]):
    """The DynamoDB operations a store's clients made, in order (a botocore event hook)."""

    def record(self, model: Any, **_: Any) -> None:
        self.append(model.name)


def counted(table: Table, **options: Any) -> tuple[DynamoDBStore, Calls]:
    """A store on *table* whose calls are counted."""
    calls = Calls()
    session = get_session()
    session.register("before-call.dynamodb", calls.record)
    return table.store(session=session, **options), calls


@pytest.fixture
async def counted_store(table: Table) -> AsyncIterator[tuple[DynamoDBStore, Calls]]:
    """A store on ``table`` whose calls are counted, its clients closed after the test."""
    store, calls = counted(table)
    yield store, calls
    await store.aclose()
    store.close()


def ids_of(event: dict[str, Any]) -> list[str]:
    return [record["messageId"] for record in event["Records"]]


@pytest.mark.parametrize("kind", ["async", "thread"])
async def test_a_batch_costs_two_calls_and_its_replay_one(
    kind: Kind, counted_store: tuple[DynamoDBStore, Calls], table: Table
) -> None:
    store, calls = counted_store
    counter = Counter()
    handler = make_handler(kind, store, counter, batched=True)
    event = sqs_event([f"m{i}" for i in range(10)] + ["bad-x"])
    proc = processor(concurrency=4)
    response = await async_process_partial_response(event, handler, proc)
    assert failures(response) == [ids_of(event)[-1]]
    # The failed record's key is released at once (its retry must run); the rest at the end.
    assert calls == ["TransactWriteItems", "DeleteItem", "BatchWriteItem"]
    assert table.statuses() == [COMPLETED] * 10

    calls.clear()
    counter.bodies.clear()
    response = await async_process_partial_response(event, handler, proc)
    assert failures(response) == [ids_of(event)[-1]]
    assert counter.bodies == ["bad-x"]  # the ten replayed from their stored results
    assert [o.result for o in proc.result][:10] == [{"body": f"m{i}"} for i in range(10)]
    # Held keys cancel the transaction; the one free key is claimed in a second one.
    assert calls == ["TransactWriteItems", "TransactWriteItems", "DeleteItem"]


def test_blocking_handlers_inline_and_in_threads(table: Table) -> None:
    store, calls = counted(table)
    try:
        counter = Counter()
        handler = make_handler("thread", store, counter, key="payload", batched=True)
        for concurrency, bodies in ((1, "abc"), (4, "def")):
            event = sqs_event(list(bodies))
            proc = blocking_processor(concurrency)
            response = process_partial_response(event, handler, proc, context=fake_lambda_context())
            assert failures(response) == []
            assert calls == ["TransactWriteItems", "BatchWriteItem"]
            calls.clear()
        assert sorted(counter.bodies) == list("abcdef")
        assert table.statuses() == [COMPLETED] * 6
    finally:
        store.close()


async def test_held_keys_replay_or_fail_as_in_progress(
    counted_store: tuple[DynamoDBStore, Calls], table: Table
) -> None:
    store, calls = counted_store
    counter = Counter()
    handler = make_handler("async", store, counter, key="payload", key_prefix="p", batched=True)
    await async_process_partial_response(sqs_event(["done"]), handler, processor())
    now = time.time()
    other = StoredRecord(
        f"p#{hash_value('busy')}", IN_PROGRESS, int(now + 60), int(now * 1000 + 60_000)
    )
    assert await store.claim(other, now) is None  # another invocation runs "busy"
    calls.clear()
    counter.bodies.clear()

    proc = processor()
    await async_process_partial_response(sqs_event(["new", "done", "busy", "also"]), handler, proc)
    assert errors(proc) == ["ok", "ok", "IdempotencyInProgressError", "ok"]
    assert sorted(counter.bodies) == ["also", "new"]
    assert proc.result[1].result == {"body": "done"}
    assert calls == ["TransactWriteItems", "TransactWriteItems", "BatchWriteItem"]
    assert table.statuses() == [COMPLETED] * 3 + [IN_PROGRESS]


async def test_keys_of_records_that_never_ran_are_released(
    counted_store: tuple[DynamoDBStore, Calls], table: Table
) -> None:
    store, calls = counted_store
    counter = Counter()
    handler = make_handler("async", store, counter, batched=True)
    # A FIFO group stops at its first failure: the records after it never run.
    event = sqs_event(["a", "bad-b", "c", "d"], fifo=True, group_ids=["g"] * 4)
    proc = processor(concurrency=1)
    await async_process_partial_response(event, handler, proc)
    assert errors(proc) == ["ok", "ValueError", "RecordSkippedError", "RecordSkippedError"]
    assert counter.bodies == ["a", "bad-b"]
    assert calls == ["TransactWriteItems", "DeleteItem", "BatchWriteItem"]
    assert table.statuses() == [COMPLETED]  # c and d claimed, then released

    await async_process_partial_response(event, handler, proc)  # they come back and run
    assert counter.bodies == ["a", "bad-b", "bad-b"]


async def test_records_cut_off_by_the_deadline_release_their_keys(
    counted_store: tuple[DynamoDBStore, Calls], table: Table
) -> None:
    store, _ = counted_store
    counter = Counter()
    handler = make_handler("async", store, counter, sleep=0.6, batched=True)
    proc = AsyncBatchProcessor(
        EventType.SQS, concurrency=1, deadline_margin=0.0, raise_on_entire_batch_failure=False
    )
    event = sqs_event(["a", "b", "c", "d"])
    context = fake_lambda_context(timeout=1.0)
    await async_process_partial_response(event, handler, proc, context=context)
    assert errors(proc)[0] == "ok"
    assert "ok" not in errors(proc)[1:]
    # a is stored; b was cut off while running (its mark expires with the invocation); c and
    # d never ran: their keys are free for the retry.
    statuses = table.statuses()
    assert statuses in ([COMPLETED, IN_PROGRESS], [COMPLETED])
    assert counter.bodies == ["a", "b"]


class Order(BaseModel):
    """An order."""

    order: int


class OrderRecord(SqsRecordModel):
    """An SQS record whose body is an order."""

    body: Json[Order]


async def test_model_records_are_claimed_by_their_ids(
    counted_store: tuple[DynamoDBStore, Calls], table: Table
) -> None:
    store, calls = counted_store
    ran: list[int] = []

    @idempotent(store, batched=True)
    async def record_handler(record: OrderRecord) -> dict[str, int]:
        ran.append(record.body.order)
        return {"order": record.body.order}

    proc = AsyncBatchProcessor(EventType.SQS, model=OrderRecord, concurrency=3)
    event = sqs_event([f'{{"order": {i}}}' for i in range(6)])
    for _ in range(2):
        response = await async_process_partial_response(event, record_handler, proc)
        assert failures(response) == []
    assert sorted(ran) == list(range(6))
    assert calls == ["TransactWriteItems", "BatchWriteItem", "TransactWriteItems"]
    assert table.statuses() == [COMPLETED] * 6


async def test_with_a_record_timeout_each_record_claims_its_own_key(
    counted_store: tuple[DynamoDBStore, Calls],
) -> None:
    store, calls = counted_store
    counter = Counter()
    handler = make_handler("async", store, counter, batched=True)
    proc = processor(concurrency=2, record_timeout=5.0)
    await async_process_partial_response(sqs_event(["a", "b"]), handler, proc)
    assert errors(proc) == ["ok", "ok"]
    assert sorted(calls) == ["PutItem", "PutItem", "UpdateItem", "UpdateItem"]


@pytest.mark.parametrize("fault", ["throttle", "error", "drop"])
async def test_a_failing_transaction_leaves_each_record_to_claim_its_own_key(
    table: Table, wire: Wire, fault: str
) -> None:
    store = table.store(config=CONFIG)
    try:
        wire.script = {"TransactWriteItems": [fault, fault]}
        counter = Counter()
        handler = make_handler("async", store, counter, batched=True)
        proc = processor(concurrency=1)
        await async_process_partial_response(sqs_event(["a", "b", "c"]), handler, proc)
        assert errors(proc) == ["ok", "ok", "ok"]
        assert counter.bodies == ["a", "b", "c"]
        assert wire.seen == ["TransactWriteItems"] * 2 + ["PutItem"] * 3 + ["BatchWriteItem"]
        assert table.statuses() == [COMPLETED] * 3
    finally:
        await store.aclose()
        store.close()


async def test_a_transaction_written_but_unanswered_never_runs_a_handler_twice(
    table: Table, wire: Wire
) -> None:
    store = table.store(config=CONFIG)
    try:
        wire.script = {"TransactWriteItems": ["lost"]}
        counter = Counter()
        handler = make_handler("async", store, counter, batched=True)
        event = sqs_event(["a", "b", "c"])
        proc = processor()
        response = await async_process_partial_response(event, handler, proc)
        # The retry (the same client request token) either is answered as the first write
        # was, or finds the marks and cannot tell they are its own: then each record fails as
        # in progress. Either way every record is reported or stored, and none runs twice.
        reported = set(failures(response))
        assert len(counter.bodies) == len(set(counter.bodies))
        for index, outcome in enumerate(errors(proc)):
            assert (outcome == "ok") != (ids_of(event)[index] in reported)
            assert outcome in ("ok", "IdempotencyInProgressError")
    finally:
        await store.aclose()
        store.close()


async def test_results_that_could_not_be_stored_leave_the_records_succeeded(
    table: Table, wire: Wire, caplog: pytest.LogCaptureFixture
) -> None:
    store = table.store(config=CONFIG)
    try:
        wire.script = {"BatchWriteItem": ["error", "error"]}
        counter = Counter()
        handler = make_handler("async", store, counter, batched=True)
        with caplog.at_level(logging.WARNING, logger="anybatch.idempotency"):
            response = await async_process_partial_response(
                sqs_event(["a", "b"]), handler, processor()
            )
        assert failures(response) == []
        assert "the results of 2 records could not be stored" in caplog.text
        # The handlers ran: their keys stay in progress until their marks expire.
        assert table.statuses() == [IN_PROGRESS, IN_PROGRESS]
    finally:
        await store.aclose()
        store.close()


def test_batched_needs_a_store_that_batches() -> None:
    class OneAtATime:
        async def claim(self, record: StoredRecord, now: float) -> StoredRecord | None:
            return None

        async def complete(self, record: StoredRecord) -> None:
            return None

        async def release(self, key: str) -> None:
            return None

    with pytest.raises(TypeError, match="batched=True needs a store with claim_many"):
        idempotent(OneAtATime(), batched=True)
    idempotent(InMemoryStore(), batched=True)  # claims and settles many
