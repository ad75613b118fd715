"""Idempotent record handlers on the in-memory store: the incumbent's semantics, async and sync.

Async tests run on asyncio and trio, each with an ``async def`` handler and a blocking one
(in the processor's worker threads); blocking tests run ``BatchProcessor`` inline.
"""

from __future__ import annotations

import hashlib
import json
import logging
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

import pytest
from pydantic import BaseModel, Json

from anybatch import async_process_partial_response, process_partial_response
from anybatch.idempotency import (
    COMPLETED,
    IN_PROGRESS,
    IdempotencyInProgressError,
    IdempotencyKeyError,
    IdempotencyResultError,
    IdempotencyValidationError,
    InMemoryStore,
    StoredRecord,
    idempotent,
    payload_of,
    record_identifier,
)
from anybatch.models import SqsRecordModel
from anybatch.testing import (
    dynamodb_event,
    fake_lambda_context,
    kafka_event,
    kinesis_event,
    sqs_event,
)

from ._handlers import (
    Counter,
    Kind,
    blocking_processor,
    errors,
    failures,
    make_handler,
    processor,
)

KINDS = ["async", "thread"]

#: Each test runs twice: records claiming their own keys, then batched (``batched=True``).
pytestmark = pytest.mark.usefixtures("batched_writes")


def _ids(event: dict[str, Any], *indices: int) -> list[str]:
    return [event["Records"][i]["messageId"] for i in indices]


# -- the incumbent's semantics --------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("kind", KINDS)
async def test_a_replayed_batch_runs_only_what_failed(kind: Kind) -> None:
    store, counter = InMemoryStore(), Counter()
    handler = make_handler(kind, store, counter)
    event = sqs_event(["a", "bad-b", "c", "bad-d"])
    proc = processor()
    first = await async_process_partial_response(event, handler, proc, context=None)
    assert failures(first) == _ids(event, 1, 3)
    assert sorted(counter.bodies) == ["a", "bad-b", "bad-d", "c"]

    counter.bodies.clear()
    second = await async_process_partial_response(event, handler, proc, context=None)
    assert failures(second) == _ids(event, 1, 3)
    assert sorted(counter.bodies) == ["bad-b", "bad-d"]  # a and c were replayed
    assert [o.result for o in proc.result][::2] == [{"body": "a"}, {"body": "c"}]


def test_a_replayed_batch_runs_only_what_failed_inline() -> None:
    store, counter = InMemoryStore(), Counter()
    handler = make_handler("thread", store, counter)
    event = sqs_event(["a", "bad-b", "c"])
    proc = blocking_processor()
    assert failures(process_partial_response(event, handler, proc)) == _ids(event, 1)
    counter.bodies.clear()
    assert failures(process_partial_response(event, handler, proc)) == _ids(event, 1)
    assert counter.bodies == ["bad-b"]
    assert [o.result for o in proc.result][::2] == [{"body": "a"}, {"body": "c"}]


@pytest.mark.anyio
@pytest.mark.parametrize("kind", KINDS)
async def test_a_completed_key_stores_its_result_for_expires_after(kind: Kind) -> None:
    store, counter = InMemoryStore(), Counter()
    handler = make_handler(kind, store, counter, expires_after=120)
    before = time.time()
    await async_process_partial_response(sqs_event(["a"]), handler, processor())
    [record] = store.records.values()
    assert record.status == COMPLETED
    assert record.data == '{"body": "a"}'
    assert int(before) + 120 <= record.expires_at <= int(time.time()) + 120


@pytest.mark.anyio
@pytest.mark.parametrize("kind", KINDS)
async def test_an_expired_result_runs_the_handler_again(kind: Kind) -> None:
    store, counter = InMemoryStore(), Counter()
    handler = make_handler(kind, store, counter)
    event = sqs_event(["a"])
    await async_process_partial_response(event, handler, processor())
    [(key, record)] = store.records.items()
    store.records[key] = record._replace(expires_at=int(time.time()) - 1)
    await async_process_partial_response(event, handler, processor())
    assert counter.bodies == ["a", "a"]


@pytest.mark.anyio
@pytest.mark.parametrize("kind", KINDS)
async def test_a_key_in_progress_fails_its_record_with_in_progress_error(kind: Kind) -> None:
    store, counter = InMemoryStore(), Counter()
    handler = make_handler(kind, store, counter)
    event = sqs_event(["a", "b"])
    await async_process_partial_response(event, handler, processor())
    key = next(k for k, r in store.records.items() if r.data == '{"body": "a"}')
    now = time.time()
    store.records[key] = StoredRecord(key, IN_PROGRESS, int(now + 3600), int(now * 1000 + 60_000))
    counter.bodies.clear()
    proc = processor()
    response = await async_process_partial_response(event, handler, proc)
    assert failures(response) == _ids(event, 0)
    assert errors(proc) == ["IdempotencyInProgressError", "ok"]
    assert counter.bodies == []
    error = proc.result[0].exception
    assert isinstance(error, IdempotencyInProgressError)
    assert error.key == key
    assert error.expires_at == pytest.approx(now + 60, abs=0.01)


@pytest.mark.anyio
@pytest.mark.parametrize("kind", KINDS)
async def test_an_expired_in_progress_mark_runs_the_handler(kind: Kind) -> None:
    store, counter = InMemoryStore(), Counter()
    handler = make_handler(kind, store, counter)
    event = sqs_event(["a"])
    key = handler.__name__  # any key: learn the real one from a first run
    await async_process_partial_response(event, handler, processor())
    [key] = store.records
    now = time.time()
    store.records[key] = StoredRecord(key, IN_PROGRESS, int(now + 3600), int(now * 1000 - 1))
    await async_process_partial_response(event, handler, processor())
    assert counter.bodies == ["a", "a"]
    assert store.records[key].status == COMPLETED


@pytest.mark.anyio
@pytest.mark.parametrize("kind", KINDS)
async def test_a_handler_that_raises_releases_its_key(kind: Kind) -> None:
    store, counter = InMemoryStore(), Counter()
    handler = make_handler(kind, store, counter)
    await async_process_partial_response(sqs_event(["bad"]), handler, processor())
    assert store.records == {}


# -- the mark's expiry -----------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("kind", KINDS)
async def test_the_in_progress_mark_expires_when_the_invocation_does(kind: Kind) -> None:
    store, seen = InMemoryStore(), []

    def watch(record: Any) -> Any:
        [mark] = store.records.values()
        seen.append(mark)
        return "ok"

    if kind == "async":

        async def handler(record: Any) -> Any:
            return watch(record)

    else:
        handler = watch
    started = time.time()
    context = fake_lambda_context(timeout=42.0)
    await async_process_partial_response(
        sqs_event(["a"]), idempotent(store)(handler), processor(), context=context
    )
    [mark] = seen
    assert mark.status == IN_PROGRESS
    assert mark.in_progress_expires_at is not None
    assert mark.in_progress_expires_at / 1000 == pytest.approx(started + 42.0, abs=0.5)


def test_without_a_context_the_mark_lasts_in_progress_timeout() -> None:
    store, seen = InMemoryStore(), []

    @idempotent(store, in_progress_timeout=7.5)
    def handler(record: Any) -> str:
        seen.append(next(iter(store.records.values())))
        return "ok"

    started = time.time()
    process_partial_response(sqs_event(["a"]), handler, blocking_processor())
    assert (seen[0].in_progress_expires_at or 0) / 1000 == pytest.approx(started + 7.5, abs=0.5)


def test_a_context_longer_than_in_progress_timeout_is_capped() -> None:
    # A worker's context never runs out: the mark still expires.
    store, seen = InMemoryStore(), []

    @idempotent(store, in_progress_timeout=30)
    def handler(record: Any) -> str:
        seen.append(next(iter(store.records.values())))
        return "ok"

    started = time.time()
    context = fake_lambda_context(timeout=10_000)
    process_partial_response(sqs_event(["a"]), handler, blocking_processor(), context=context)
    assert (seen[0].in_progress_expires_at or 0) / 1000 == pytest.approx(started + 30, abs=0.5)


def test_the_handler_gets_the_lambda_context_when_it_names_it() -> None:
    store, got = InMemoryStore(), []

    @idempotent(store)
    def handler(record: Any, lambda_context: Any) -> str:
        got.append(lambda_context)
        return "ok"

    context = fake_lambda_context()
    process_partial_response(sqs_event(["a"]), handler, blocking_processor(), context=context)
    assert got == [context]


# -- two records of one key in one batch -----------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("kind", KINDS)
async def test_two_records_with_one_key_in_one_batch_run_once(kind: Kind) -> None:
    store, counter = InMemoryStore(), Counter()
    handler = make_handler(kind, store, counter, key="payload", sleep=0.1)
    event = sqs_event(["same", "other", "same"])
    proc = processor(concurrency=3)
    response = await async_process_partial_response(event, handler, proc)
    assert failures(response) == []
    assert sorted(counter.bodies) == ["other", "same"]
    assert [o.result for o in proc.result] == [{"body": b} for b in ("same", "other", "same")]


@pytest.mark.anyio
@pytest.mark.parametrize("kind", KINDS)
async def test_when_the_first_of_two_records_of_a_key_fails_the_second_runs(
    kind: Kind,
) -> None:
    store, counter = InMemoryStore(), Counter()
    runs: list[str] = []

    def fail_first(body: str) -> bool:
        runs.append(body)
        return len(runs) == 1

    handler = make_handler(kind, store, counter, key="payload", sleep=0.1, fail=fail_first)
    event = sqs_event(["same", "same"])
    proc = processor(concurrency=2)
    response = await async_process_partial_response(event, handler, proc)
    assert len(counter.bodies) == 2  # as the incumbent's loop: the failure released the key
    assert len(failures(response)) == 1


def test_two_records_with_one_key_run_once_in_blocking_threads() -> None:
    store, counter = InMemoryStore(), Counter()
    handler = make_handler("thread", store, counter, key="payload", sleep=0.1)
    proc = blocking_processor(concurrency=4)
    response = process_partial_response(sqs_event(["x", "x", "x", "y"]), handler, proc)
    assert failures(response) == []
    assert sorted(counter.bodies) == ["x", "y"]
    assert [o.result for o in proc.result] == [{"body": b} for b in "xxxy"]


# -- payload validation ----------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("kind", KINDS)
async def test_the_same_key_with_another_payload_fails_validation(kind: Kind) -> None:
    store, counter = InMemoryStore(), Counter()
    handler = make_handler(kind, store, counter, key=lambda r: r.json_body["order"], validate=True)
    first = sqs_event([{"order": 1, "amount": 10}])
    await async_process_partial_response(first, handler, processor())
    second = sqs_event([{"order": 1, "amount": 99}, {"order": 1, "amount": 10}])
    proc = processor()
    response = await async_process_partial_response(second, handler, proc)
    assert failures(response) == _ids(second, 0)
    assert errors(proc) == ["IdempotencyValidationError", "ok"]
    assert proc.result[1].result == {"body": json.dumps({"order": 1, "amount": 10})}
    assert len(counter.bodies) == 1


def test_validation_checks_a_record_waiting_for_another_of_its_key() -> None:
    store, counter = InMemoryStore(), Counter()
    handler = make_handler(
        "thread", store, counter, key=lambda r: r.json_body["order"], validate=True, sleep=0.1
    )
    proc = blocking_processor(concurrency=2)
    event = sqs_event([{"order": 1, "amount": 10}, {"order": 1, "amount": 11}])
    process_partial_response(event, handler, proc)
    assert sorted(errors(proc)) == ["IdempotencyValidationError", "ok"]
    assert len(counter.bodies) == 1


def test_validate_takes_a_function_of_the_record() -> None:
    store, counter = InMemoryStore(), Counter()
    handler = make_handler(
        "thread",
        store,
        counter,
        key=lambda r: r.json_body["order"],
        validate=lambda r: r.json_body["amount"],
    )
    proc = blocking_processor()
    event = sqs_event([{"order": 1, "amount": 10, "note": "x"}])
    process_partial_response(event, handler, proc)
    again = sqs_event([{"order": 1, "amount": 10, "note": "y"}, {"order": 1, "amount": 5}])
    process_partial_response(again, handler, proc)
    assert errors(proc) == ["ok", "IdempotencyValidationError"]
    [record] = store.records.values()
    assert record.validation == hashlib.md5(b"10").hexdigest()


# -- results ---------------------------------------------------------------------------------


class Order(BaseModel):
    """A test order."""

    order: int
    amount: int


class Receipt(BaseModel):
    """What the handler returns."""

    order: int
    charged: int


class OrderRecord(SqsRecordModel):
    """An SQS record whose body is an order."""

    body: Json[Order]


@pytest.mark.anyio
@pytest.mark.parametrize("kind", KINDS)
async def test_pydantic_models_round_trip_with_model_records(kind: Kind) -> None:
    store, runs = InMemoryStore(), []

    def charge(record: OrderRecord) -> Receipt:
        runs.append(record.body.order)
        return Receipt(order=record.body.order, charged=record.body.amount)

    if kind == "async":

        async def handler(record: OrderRecord) -> Receipt:
            return charge(record)

    else:
        handler = charge  # type: ignore[assignment]
    wrapped = idempotent(store)(handler)
    event = sqs_event([{"order": 1, "amount": 5}, {"order": 2, "amount": 7}])
    proc = processor(model=OrderRecord)
    await async_process_partial_response(event, wrapped, proc)
    await async_process_partial_response(event, wrapped, proc)
    assert runs == [1, 2] or sorted(runs) == [1, 2]
    assert [o.result for o in proc.result] == [
        Receipt(order=1, charged=5),
        Receipt(order=2, charged=7),
    ]
    assert all(type(o.result) is Receipt for o in proc.result)


def test_result_type_rebuilds_what_the_annotation_cannot_say() -> None:
    store = InMemoryStore()

    @idempotent(store, result_type=list[Receipt])
    def handler(record: Any) -> Any:
        return [Receipt(order=1, charged=2)]

    proc = blocking_processor()
    process_partial_response(sqs_event(["a"]), handler, proc)
    process_partial_response(sqs_event(["a"]), handler, proc)
    assert proc.result[0].result == [Receipt(order=1, charged=2)]


@pytest.mark.anyio
@pytest.mark.parametrize("kind", KINDS)
async def test_an_unserialisable_result_fails_its_record_and_leaves_the_key_free(
    kind: Kind,
) -> None:
    store, runs = InMemoryStore(), []

    def make(record: Any) -> Any:
        runs.append(record.body)
        return {"at": object()} if len(runs) == 1 else {"ok": True}

    if kind == "async":

        async def handler(record: Any) -> Any:
            return make(record)

    else:
        handler = make
    wrapped = idempotent(store)(handler)
    event = sqs_event(["a"])
    proc = processor()
    await async_process_partial_response(event, wrapped, proc)
    assert errors(proc) == ["IdempotencyResultError"]
    assert "cannot be stored as JSON" in str(proc.result[0].exception)
    assert store.records == {}
    await async_process_partial_response(event, wrapped, proc)
    assert errors(proc) == ["ok"]
    assert len(runs) == 2


def test_json_results_round_trip() -> None:
    store = InMemoryStore()
    values: list[Any] = [None, 0, "", [], {}, 1.5, "text", [1, {"a": None}], {"z": 1, "a": 2}]
    results = iter(values)

    @idempotent(store)
    def handler(record: Any) -> Any:
        return next(results)

    event = sqs_event([str(i) for i in range(len(values))])
    proc = blocking_processor()
    process_partial_response(event, handler, proc)
    process_partial_response(event, handler, proc)  # every one replayed
    assert [o.result for o in proc.result] == values


def test_a_result_that_could_not_be_stored_still_succeeds(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class FailingCompletes(InMemoryStore):
        def complete_blocking(self, record: StoredRecord) -> None:
            raise OSError("the store is gone")

        def settle_many_blocking(  # batched: the results are stored when the batch ends
            self, completed: Sequence[StoredRecord], released: Sequence[str]
        ) -> None:
            raise OSError("the store is gone")

    store, counter = FailingCompletes(), Counter()
    handler = make_handler("thread", store, counter)
    proc = blocking_processor()
    with caplog.at_level(logging.WARNING, logger="anybatch.idempotency"):
        response = process_partial_response(sqs_event(["a"]), handler, proc)
    assert failures(response) == []
    assert counter.bodies == ["a"]
    assert "could not be stored" in caplog.text
    [record] = store.records.values()
    assert record.status == IN_PROGRESS  # until its mark expires


# -- keys ------------------------------------------------------------------------------------


def _incumbent_key(prefix: str, value: object) -> str:
    digest = hashlib.md5(json.dumps(value, sort_keys=True).encode()).hexdigest()
    return f"{prefix}#{digest}"


def test_the_default_key_is_the_incumbents_for_the_message_id(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "orders")
    store = InMemoryStore()

    def charge(record: Any) -> str:
        return "ok"

    event = sqs_event(["a"])
    process_partial_response(event, idempotent(store)(charge), blocking_processor())
    prefix = f"orders.{__name__}.test_the_default_key_is_the_incumbents_for_the_message_id."
    prefix += "<locals>.charge"
    assert list(store.records) == [_incumbent_key(prefix, event["Records"][0]["messageId"])]


def test_key_prefix_replaces_the_handlers_name() -> None:
    store = InMemoryStore()

    @idempotent(store, key_prefix="payments", key=lambda r: r.json_body["id"])
    def handler(record: Any) -> str:
        return "ok"

    process_partial_response(sqs_event([{"id": 7}]), handler, blocking_processor())
    assert list(store.records) == [_incumbent_key("payments", 7)]


def test_each_source_is_keyed_by_its_identifier() -> None:
    from anybatch.records import DynamoDBRecord, KafkaEventRecord, KinesisStreamRecord

    kinesis = kinesis_event(["x"])["Records"][0]
    dynamodb = dynamodb_event([{"keys": {"id": 1}, "new_image": {"id": 1}}])["Records"][0]
    kafka = next(iter(kafka_event(["v"], topic="t")["records"].values()))[0]
    assert record_identifier(KinesisStreamRecord(kinesis)) == kinesis["kinesis"]["sequenceNumber"]
    assert record_identifier(DynamoDBRecord(dynamodb)) == dynamodb["dynamodb"]["SequenceNumber"]
    kafka_id = record_identifier(KafkaEventRecord(kafka))
    assert dict(kafka_id) == {"partition": f"t-{kafka['partition']}", "offset": kafka["offset"]}  # type: ignore[call-overload]
    assert str(record_identifier(sqs_event(["a"])["Records"][0])).startswith("00000000")


def test_a_model_is_keyed_by_its_identifier_too() -> None:
    raw = sqs_event([{"order": 1, "amount": 2}])["Records"][0]
    assert record_identifier(OrderRecord.model_validate(raw)) == raw["messageId"]


def test_the_payload_key_reads_each_sources_payload() -> None:
    assert payload_of(sqs_event(["body"])["Records"][0]) == "body"
    kinesis = kinesis_event(["x"])["Records"][0]
    assert payload_of(kinesis) == kinesis["kinesis"]["data"]
    dynamodb = dynamodb_event([{"keys": {"id": 1}, "new_image": {"id": 1}}])["Records"][0]
    assert payload_of(dynamodb) == dynamodb["dynamodb"]["NewImage"]


def test_a_record_without_a_key_fails_without_running_the_handler() -> None:
    store, counter = InMemoryStore(), Counter()
    handler = make_handler("thread", store, counter, key=lambda r: r.json_body.get("id"))
    proc = blocking_processor()
    process_partial_response(sqs_event([{"id": None}, {"id": 3}]), handler, proc)
    assert errors(proc) == ["IdempotencyKeyError", "ok"]
    assert counter.bodies == ['{"id": 3}']
    assert isinstance(proc.result[0].exception, IdempotencyKeyError)


def test_the_decorator_refuses_what_cannot_work() -> None:
    store = InMemoryStore()
    with pytest.raises(TypeError, match="key="):
        idempotent(store, key="messageId")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="positive"):
        idempotent(store, expires_after=0)
    with pytest.raises(TypeError, match="validate="):
        idempotent(store, validate="body")  # type: ignore[arg-type]


def test_errors_are_anybatch_errors_the_incumbents_names_included() -> None:
    import anybatch
    import anybatch.idempotency as module

    for name in ("InProgress", "Validation", "Key", "Result", "Store"):
        assert issubclass(getattr(module, f"Idempotency{name}Error"), anybatch.AnybatchError)
    assert module.IdempotencyAlreadyInProgressError is IdempotencyInProgressError
    assert IdempotencyValidationError.__module__ == "anybatch.idempotency"
    assert issubclass(IdempotencyResultError, TypeError)


def test_importing_anybatch_imports_no_idempotency_and_it_imports_no_aiobotocore() -> None:
    code = (
        "import sys, anybatch; assert 'anybatch.idempotency' not in sys.modules;"
        "import anybatch.idempotency;"
        "print(sorted(m for m in ('aiobotocore', 'botocore', 'pydantic') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
