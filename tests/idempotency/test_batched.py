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
import types
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import anyio
import pytest
from aiobotocore.session import get_session
from pydantic import BaseModel, Json

from anybatch import (
    AsyncBatchProcessor,
    BatchProcessor,
    EventType,
    async_process_partial_response,
    process_partial_response,
)
from anybatch._context import AT_END
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
    from collections.abc import Sequence

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
    # Each record takes 1.2 s: a ends well inside the deadline (at 2 s; its claim may take
    # 0.8 s on a slow run, moto's server under coverage), b is cut off while it runs.
    handler = make_handler("async", store, counter, sleep=1.2, batched=True)
    # The batch's deadline comes 2 s before the invocation's end, where the marks expire.
    proc = AsyncBatchProcessor(
        EventType.SQS, concurrency=1, deadline_margin=2.0, raise_on_entire_batch_failure=False
    )
    event = sqs_event(["a", "b", "c", "d"])
    context = fake_lambda_context(timeout=4.0)
    await async_process_partial_response(event, handler, proc, context=context)
    assert errors(proc)[0] == "ok"
    assert "ok" not in errors(proc)[1:]
    # a is stored; b was cut off while running (its mark expires with the invocation); c and
    # d never ran: their keys are free for the retry.
    assert table.statuses() in ([COMPLETED, IN_PROGRESS], [COMPLETED])
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


# -- in memory: what a batch does with its held results and its claims ----------------------


@pytest.mark.parametrize("kind", ["async", "thread"])
async def test_a_key_repeated_in_a_batch_replays_the_result_held_back(kind: Kind) -> None:
    store, counter = InMemoryStore(), Counter()
    handler = make_handler(kind, store, counter, key="payload", batched=True)
    proc = processor(concurrency=1)
    await async_process_partial_response(sqs_event(["a", "a", "b"]), handler, proc)
    assert errors(proc) == ["ok", "ok", "ok"]
    assert counter.bodies == ["a", "b"]
    assert proc.result[1].result == {"body": "a"}


async def test_two_batches_at_once_see_each_others_held_results() -> None:
    store, counter = InMemoryStore(), Counter()
    handler = make_handler("async", store, counter, key="payload", sleep=0.05, batched=True)

    async def batch(bodies: list[str], proc: AsyncBatchProcessor[Any]) -> None:
        await async_process_partial_response(sqs_event(bodies), handler, proc)

    first, second = processor(concurrency=1), processor(concurrency=1)
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(batch, ["a", "x"], first)
        await anyio.sleep(0.02)  # a has run and is held back when the second batch starts
        tasks.start_soon(batch, ["y", "a"], second)
    assert errors(first) == errors(second) == ["ok", "ok"]
    assert sorted(counter.bodies) == ["a", "x", "y"]


async def test_a_batch_cancelled_from_outside_stores_what_ran_and_frees_the_rest() -> None:
    store, counter = InMemoryStore(), Counter()
    handler = make_handler(
        "async", store, counter, key="payload", fail=lambda body: body == "slow", batched=True
    )

    async def slow_or_not(record: Any) -> Any:
        if record.body == "slow":
            await anyio.sleep(10)
        return await handler(record)

    with anyio.move_on_after(0.3):
        await async_process_partial_response(
            sqs_event(["a", "b", "slow", "c"]), slow_or_not, processor(concurrency=1)
        )
    assert counter.bodies == ["a", "b"]
    # a and b are stored; c never ran and its key was released; nothing is left behind.
    assert sorted(r.status for r in store.records.values()) == [COMPLETED, COMPLETED]
    assert AT_END == {}


def test_a_handler_reaching_the_store_after_its_batch_ended_runs_on_alone() -> None:
    store = InMemoryStore()

    @idempotent(store, batched=True)
    def charge(record: Any) -> int:
        return 1

    def record_handler(record: Any) -> int:
        time.sleep(0.6)  # past the deadline: the batch ends without this record
        return charge(record)

    proc = BatchProcessor(
        EventType.SQS, concurrency=2, deadline_margin=0.0, raise_on_entire_batch_failure=False
    )
    event = sqs_event(["a", "b", "c"])
    process_partial_response(event, record_handler, proc, context=fake_lambda_context(0.3))
    time.sleep(0.8)  # the abandoned threads reach charge() and end
    # Each claimed and stored its own key: nothing waits for an end that has passed.
    assert sorted(r.status for r in store.records.values()) == [COMPLETED, COMPLETED]
    assert AT_END == {}


def test_a_mark_made_ahead_that_expired_is_claimed_again_not_used() -> None:
    store, counter = InMemoryStore(), Counter()
    claims: list[str] = []
    claim = store.claim_blocking

    def counting(record: StoredRecord, now: float) -> StoredRecord | None:
        claims.append(record.key)
        return claim(record, now)

    store.claim_blocking = counting  # type: ignore[method-assign]
    # Marks last 0.5 s from the batch's start: c starts after its mark made ahead expired.
    handler = make_handler(
        "thread", store, counter, sleep=0.3, in_progress_timeout=0.5, batched=True
    )
    response = process_partial_response(sqs_event(["a", "b", "c"]), handler, blocking_processor())
    assert failures(response) == []
    assert counter.bodies == ["a", "b", "c"]
    # claim_many claimed the three; c then claimed its key again, its mark having expired.
    assert len(claims) == 4
    assert claims[3] == claims[2]


class SlowClaims(InMemoryStore):
    """Claims that land at once and are answered a second later (a slow network)."""

    def claim_many_blocking(
        self, records: Sequence[StoredRecord], now: float
    ) -> dict[str, StoredRecord | None]:
        answer = super().claim_many_blocking(records, now)
        time.sleep(1.0)
        return answer

    async def claim_many(
        self, records: Sequence[StoredRecord], now: float
    ) -> dict[str, StoredRecord | None]:
        answer = super().claim_many_blocking(records, now)
        await anyio.sleep(1.0)
        return answer


@pytest.mark.parametrize("kind", ["async", "thread"])
async def test_keys_claimed_after_the_deadline_are_released(kind: Kind, anyio_backend: str) -> None:
    if kind == "async" and anyio_backend == "trio":
        pytest.skip("on trio a cancelled claim is not answered: its marks expire by themselves")
    store, counter = SlowClaims(), Counter()
    handler = make_handler(kind, store, counter, batched=True)
    # The batch's deadline is 0.5 s in; the marks last until the invocation's end, 5 s in.
    proc = AsyncBatchProcessor(
        EventType.SQS, concurrency=4, deadline_margin=4.5, raise_on_entire_batch_failure=False
    )
    event = sqs_event(["a", "b", "c"])
    response = await async_process_partial_response(
        event, handler, proc, context=fake_lambda_context(timeout=5.0)
    )
    assert len(failures(response)) == 3  # none ran before the deadline
    await anyio.sleep(1.5)  # the claims are answered: too late, they are released
    # Async records were cancelled; blocking ones, abandoned in their threads, run on and
    # claim their own keys (as without batched=). No key is left in progress.
    assert sorted(r.status for r in store.records.values()) == [COMPLETED] * len(counter.bodies)
    assert counter.bodies == [] if kind == "async" else sorted(counter.bodies) == ["a", "b", "c"]


def test_an_expires_after_shorter_than_the_batch_keeps_each_key_held_while_it_may_run() -> None:
    store, counter = InMemoryStore(), Counter()
    handler = make_handler(
        "thread", store, counter, key="payload", sleep=0.8, expires_after=1, batched=True
    )
    proc = blocking_processor()
    seen: list[StoredRecord | None] = []

    def other_process_claims(record: Any) -> Any:
        if record.body == "x":  # a's mark made ahead still holds a's key while x runs
            now = time.time()
            key = next(iter(store.records))
            seen.append(store.claim_blocking(StoredRecord(key, IN_PROGRESS, int(now + 60)), now))
        return handler(record)

    response = process_partial_response(sqs_event(["a", "x", "a"]), other_process_claims, proc)
    assert failures(response) == []
    assert seen[0] is not None  # refused: the key is held
    # The second a replays a's result, or runs again once that expired (expires_after counts
    # whole seconds): never fails as in progress on the batch's own mark.
    assert counter.bodies in (["a", "x"], ["a", "x", "a"])


class SlowSettles(InMemoryStore):
    """Results written three seconds late (a throttled BatchWriteItem)."""

    async def settle_many(self, completed: Sequence[StoredRecord], released: Sequence[str]) -> None:
        await anyio.sleep(3)
        self.settle_many_blocking(completed, released)


async def test_the_writes_at_the_end_stop_before_the_invocation_does(
    caplog: pytest.LogCaptureFixture,
) -> None:
    slow, fast, counter = SlowSettles(), InMemoryStore(), Counter()
    charge = make_handler("async", slow, counter, key="payload", batched=True)
    notify = make_handler("async", fast, Counter(), key="payload", batched=True)

    async def record_handler(record: Any) -> Any:
        await notify(record)
        return await charge(record)

    proc = AsyncBatchProcessor(EventType.SQS, raise_on_entire_batch_failure=False)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="anybatch.idempotency"):
        await async_process_partial_response(
            sqs_event(["a", "b"]), record_handler, proc, context=fake_lambda_context(1.5)
        )
    # The invocation has 1.5 s: its end does not wait out the slow store's 3 s.
    assert time.monotonic() - started < 1.5
    assert errors(proc) == ["ok", "ok"]
    assert "could not be stored (TimeoutError" in caplog.text
    assert sorted(r.status for r in slow.records.values()) == [IN_PROGRESS, IN_PROGRESS]
    assert AT_END == {}


def test_an_expired_held_result_never_lets_a_record_run_on_a_key_another_run_holds() -> None:
    from anybatch.idempotency._ledger import NOT_CLAIMED, Ledger, Ledgers

    now, key = time.time(), "h#k"
    ledgers = Ledgers(types.SimpleNamespace(store=InMemoryStore()))  # type: ignore[arg-type]
    first, second, third = (Ledger(ledgers, [n], blocking=True) for n in range(3))
    # The first batch ran the key long ago: its result, held back, has expired, and so has
    # its mark; another process has claimed the key since, which the second batch's claims
    # made ahead found. A third batch made no claim for the key.
    first.written[key] = StoredRecord(key, IN_PROGRESS, int(now - 5), int((now - 5) * 1000))
    first.claimed({key: None})
    assert first.take(key, now - 10) is None  # its record took the claim, then ran
    first.hold(StoredRecord(key, COMPLETED, int(now - 9), None, '"r"'))
    other = StoredRecord(key, IN_PROGRESS, int(now + 3600), int((now + 60) * 1000))
    second.written[key] = other
    second.claimed({key: other})
    assert second.take(key, now) == other  # the record fails as in progress: never runs
    assert third.take(key, now) is NOT_CLAIMED  # the store decides
