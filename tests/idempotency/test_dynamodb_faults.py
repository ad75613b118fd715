"""Faults on the wire between the DynamoDB store and moto: no handler runs twice, no record is lost.

aiobotocore's httpx backend, answered by respx: each request goes on to moto's server (so the
table is real) unless the script says otherwise for its action. ``throttle`` and ``error``
answer without reaching DynamoDB; ``lost`` lets the write happen and loses its answer;
``drop`` breaks the connection.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import anyio
import pytest

from anybatch import async_process_partial_response, process_partial_response
from anybatch.idempotency import COMPLETED, IN_PROGRESS, DynamoDBStore
from anybatch.testing import fake_lambda_context, sqs_event

from ._handlers import Counter, blocking_processor, errors, make_handler, processor
from ._wire import CONFIG, Wire

if TYPE_CHECKING:
    from .conftest import Table

pytestmark = pytest.mark.filterwarnings(
    "ignore:aiobotocore's httpx backend now prefers httpx2:DeprecationWarning"
)


@pytest.fixture
def anyio_backend() -> str:
    """aiobotocore needs asyncio (trio's calls hop to its loop thread, as blocking ones do)."""
    return "asyncio"


def _mark_expiry(table: Table) -> float:
    """When the table's one IN_PROGRESS mark expires (epoch seconds)."""
    [mark] = [item for item in table.items() if item["status"]["S"] == IN_PROGRESS]
    return int(mark["in_progress_expiration"]["N"]) / 1000


@pytest.fixture
async def faulty(table: Table, wire: Wire) -> Any:
    """A store whose calls go over the scripted wire."""
    store = table.store(config=CONFIG)
    yield store
    await store.aclose()
    store.close()


@pytest.mark.anyio
async def test_a_throttled_claim_is_retried_and_runs_the_handler_once(
    faulty: DynamoDBStore, wire: Wire, table: Table
) -> None:
    wire.script = {"PutItem": ["throttle"]}
    counter = Counter()
    proc = processor()
    await async_process_partial_response(
        sqs_event(["a"]), make_handler("async", faulty, counter), proc
    )
    assert errors(proc) == ["ok"]
    assert counter.bodies == ["a"]
    assert wire.seen == ["PutItem", "PutItem", "UpdateItem"]
    assert table.statuses() == [COMPLETED]


@pytest.mark.anyio
@pytest.mark.parametrize("fault", ["throttle", "error", "drop"])
async def test_a_claim_that_keeps_failing_fails_the_record_and_never_runs_it(
    faulty: DynamoDBStore, wire: Wire, table: Table, fault: str
) -> None:
    wire.script = {"PutItem": [fault, fault]}
    counter = Counter()
    handler = make_handler("async", faulty, counter)
    event = sqs_event(["a", "b"])
    proc = processor(concurrency=1)
    await async_process_partial_response(event, handler, proc)
    assert errors(proc) == ["IdempotencyStoreError", "ok"]
    assert counter.bodies == ["b"]
    assert table.statuses() == [COMPLETED]

    await async_process_partial_response(event, handler, proc)  # the record comes back
    assert errors(proc) == ["ok", "ok"]
    assert counter.bodies == ["b", "a"]


@pytest.mark.anyio
async def test_a_claim_written_but_unanswered_never_runs_the_handler_twice(
    faulty: DynamoDBStore, wire: Wire, table: Table
) -> None:
    # The write happens, its answer is lost; the retry finds the mark and cannot tell it is
    # its own: the record fails as in progress, and runs once its mark expires.
    wire.script = {"PutItem": ["lost"]}
    counter = Counter()
    # Its mark lasts 2 s: longer than botocore's backoff before the retry (at most 1 s).
    handler = make_handler("async", faulty, counter, in_progress_timeout=2.0)
    event = sqs_event(["a"])
    proc = processor()
    context = fake_lambda_context(timeout=10)
    await async_process_partial_response(event, handler, proc, context=context)
    assert errors(proc) == ["IdempotencyInProgressError"]
    assert table.statuses() == [IN_PROGRESS]

    expires = _mark_expiry(table)
    if time.time() < expires - 0.3:  # botocore's backoff may have taken the mark's second
        await async_process_partial_response(event, handler, proc, context=fake_lambda_context())
        assert errors(proc) == ["IdempotencyInProgressError"]
    await anyio.sleep(max(0.0, expires - time.time()) + 0.1)
    await async_process_partial_response(event, handler, proc, context=fake_lambda_context())
    assert errors(proc) == ["ok"]
    assert counter.bodies == ["a"]


def test_blocking_handlers_meet_the_same_faults(table: Table, wire: Wire) -> None:
    store = table.store(config=CONFIG)
    try:
        counter = Counter()
        handler = make_handler("thread", store, counter, in_progress_timeout=2.0)
        wire.script = {"PutItem": ["throttle", "throttle", "lost"]}
        event = sqs_event(["a", "b"])
        proc = blocking_processor()
        process_partial_response(event, handler, proc, context=fake_lambda_context(10))
        assert errors(proc) == ["IdempotencyStoreError", "IdempotencyInProgressError"]
        assert counter.bodies == []
        time.sleep(max(0.0, _mark_expiry(table) - time.time()) + 0.1)
        process_partial_response(event, handler, proc, context=fake_lambda_context())
        assert errors(proc) == ["ok", "ok"]
        assert counter.bodies == ["a", "b"]
    finally:
        store.close()


@pytest.mark.anyio
async def test_a_result_that_cannot_be_stored_keeps_its_success(
    faulty: DynamoDBStore, wire: Wire, table: Table, caplog: pytest.LogCaptureFixture
) -> None:
    wire.script = {"UpdateItem": ["error", "error"]}
    counter = Counter()
    proc = processor()
    with caplog.at_level(logging.WARNING, logger="anybatch.idempotency"):
        await async_process_partial_response(
            sqs_event(["a"]), make_handler("async", faulty, counter), proc
        )
    assert errors(proc) == ["ok"]  # failing it would run the handler again
    assert counter.bodies == ["a"]
    assert "could not be stored" in caplog.text
    assert table.statuses() == [IN_PROGRESS]


@pytest.mark.anyio
async def test_a_release_that_fails_reports_the_record_with_a_store_error(
    faulty: DynamoDBStore, wire: Wire, table: Table
) -> None:
    wire.script = {"DeleteItem": ["error", "error"]}
    counter = Counter()
    proc = processor()
    await async_process_partial_response(
        sqs_event(["bad"]), make_handler("async", faulty, counter), proc
    )
    assert errors(proc) == ["IdempotencyStoreError"]
    assert "could not be released" in str(proc.result[0].exception)
    assert table.statuses() == [IN_PROGRESS]  # until its mark expires
