"""The DynamoDB store against moto's server over HTTP, on asyncio and trio.

Async handlers, blocking handlers in worker threads and inline, ``model=``; the table holds
the incumbent's attributes in the incumbent's formats.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from typing import Any

import anyio
import pytest
from pydantic import BaseModel, Json

from anybatch import async_process_partial_response, process_partial_response
from anybatch.idempotency import (
    COMPLETED,
    IN_PROGRESS,
    DynamoDBStore,
    StoredRecord,
    hash_value,
    idempotent,
)
from anybatch.models import SqsRecordModel
from anybatch.testing import fake_lambda_context, sqs_event

from ._handlers import Counter, Kind, blocking_processor, errors, failures, make_handler, processor
from .conftest import Table

#: Each test runs twice: records claiming their own keys, then batched (``batched=True``).
pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("batched_writes")]
KINDS = ["async", "thread"]


@pytest.mark.parametrize("kind", KINDS)
async def test_a_replayed_batch_runs_only_what_failed(
    kind: Kind, dynamo: DynamoDBStore, table: Table
) -> None:
    counter = Counter()
    handler = make_handler(kind, dynamo, counter)
    event = sqs_event(["a", "bad-b", "c", "bad-d", "e"])
    proc = processor()
    first = await async_process_partial_response(event, handler, proc, context=None)
    ids = [r["messageId"] for r in event["Records"]]
    assert failures(first) == [ids[1], ids[3]]
    assert table.statuses() == [COMPLETED] * 3

    counter.bodies.clear()
    second = await async_process_partial_response(event, handler, proc, context=None)
    assert failures(second) == [ids[1], ids[3]]
    assert sorted(counter.bodies) == ["bad-b", "bad-d"]
    assert [proc.result[i].result for i in (0, 2, 4)] == [{"body": b} for b in "ace"]


def test_blocking_handlers_inline_and_in_threads(
    blocking_dynamo: DynamoDBStore, table: Table
) -> None:
    counter = Counter()
    handler = make_handler("thread", blocking_dynamo, counter)
    event = sqs_event(["a", "bad-b", "c"])
    for concurrency in (1, 4, 1):
        proc = blocking_processor(concurrency)
        response = process_partial_response(event, handler, proc, context=fake_lambda_context())
        assert len(failures(response)) == 1
    assert sorted(counter.bodies) == ["a", "bad-b", "bad-b", "bad-b", "c"]
    assert table.statuses() == [COMPLETED, COMPLETED]


@pytest.mark.parametrize("kind", KINDS)
async def test_two_records_with_one_key_in_one_batch_run_once(
    kind: Kind, dynamo: DynamoDBStore
) -> None:
    counter = Counter()
    handler = make_handler(kind, dynamo, counter, key="payload", sleep=0.05)
    proc = processor(concurrency=4)
    event = sqs_event(["same", "same", "other", "same"])
    response = await async_process_partial_response(event, handler, proc)
    assert failures(response) == []
    assert sorted(counter.bodies) == ["other", "same"]
    assert [o.result for o in proc.result] == [
        {"body": b} for b in ("same", "same", "other", "same")
    ]


async def test_a_run_in_another_invocation_fails_the_record_as_in_progress(
    dynamo: DynamoDBStore, table: Table
) -> None:
    counter = Counter()
    handler = make_handler("async", dynamo, counter, key="payload", key_prefix="orders")
    # Another invocation (another store, its own client) holds the key.
    other = table.store()
    now = time.time()
    key = f"orders#{hash_value('same')}"
    mark = StoredRecord(key, IN_PROGRESS, int(now + 60), int(now * 1000 + 5000))
    try:
        assert await other.claim(mark, now) is None
    finally:
        await other.aclose()
        other.close()
    proc = processor()
    await async_process_partial_response(sqs_event(["same"]), handler, proc)
    assert errors(proc) == ["IdempotencyInProgressError"]
    assert counter.bodies == []


class Order(BaseModel):
    """An order."""

    order: int
    amount: int


class Receipt(BaseModel):
    """A receipt."""

    order: int
    charged: int


class OrderRecord(SqsRecordModel):
    """An SQS record whose body is an order."""

    body: Json[Order]


async def test_model_records_and_model_results(dynamo: DynamoDBStore, table: Table) -> None:
    runs: list[int] = []

    @idempotent(dynamo)
    async def charge(record: OrderRecord) -> Receipt:
        runs.append(record.body.order)
        return Receipt(order=record.body.order, charged=record.body.amount)

    event = sqs_event([{"order": 1, "amount": 5}, {"order": 2, "amount": 7}])
    proc = processor(model=OrderRecord)
    await async_process_partial_response(event, charge, proc)
    await async_process_partial_response(event, charge, proc)
    assert sorted(runs) == [1, 2]
    receipts = [Receipt(order=1, charged=5), Receipt(order=2, charged=7)]
    assert [o.result for o in proc.result] == receipts
    data = sorted(json.loads(item["data"]["S"])["order"] for item in table.items())
    assert data == [1, 2]


async def test_payload_validation(dynamo: DynamoDBStore, table: Table) -> None:
    counter = Counter()
    handler = make_handler(
        "async", dynamo, counter, key=lambda r: r.json_body["order"], validate=True
    )
    await async_process_partial_response(sqs_event([{"order": 1, "n": 1}]), handler, processor())
    proc = processor()
    event = sqs_event([{"order": 1, "n": 2}, {"order": 1, "n": 1}])
    await async_process_partial_response(event, handler, proc)
    assert errors(proc) == ["IdempotencyValidationError", "ok"]
    assert len(counter.bodies) == 1
    [item] = table.items()
    assert item["validation"]["S"]


async def test_the_table_holds_the_incumbents_attributes_and_formats(
    dynamo: DynamoDBStore, table: Table
) -> None:
    seen: list[dict[str, Any]] = []

    @idempotent(dynamo, validate=True, expires_after=600)
    async def handler(record: Any) -> dict[str, int]:
        seen.extend(table.items())  # the IN_PROGRESS mark, while the handler runs
        return {"n": 1}

    started = time.time()
    context = fake_lambda_context(timeout=30.0)
    await async_process_partial_response(sqs_event(["a"]), handler, processor(), context=context)
    [mark] = seen
    assert set(mark) == {"id", "expiration", "in_progress_expiration", "status", "validation"}
    assert mark["status"] == {"S": "INPROGRESS"}
    assert int(mark["expiration"]["N"]) == pytest.approx(started + 600, abs=2)
    assert int(mark["in_progress_expiration"]["N"]) == pytest.approx(
        (started + 30) * 1000, abs=2000
    )
    [item] = table.items()
    assert item["status"] == {"S": "COMPLETED"}
    assert item["data"] == {"S": '{"n": 1}'}
    assert item["id"]["S"].startswith("test-func.")


async def test_a_sort_key_table(moto_endpoint: str) -> None:
    table = Table(moto_endpoint, sort_key=True)
    store = table.store(sort_key_attr="sk", static_pk_value="idempotency#orders")
    try:
        counter = Counter()
        handler = make_handler("async", store, counter)
        event = sqs_event(["a", "b"])
        await async_process_partial_response(event, handler, processor())
        await async_process_partial_response(event, handler, processor())
    finally:
        await store.aclose()
        store.close()
    assert sorted(counter.bodies) == ["a", "b"]
    assert {item["id"]["S"] for item in table.items()} == {"idempotency#orders"}


CRASH = textwrap.dedent(
    """
    import os, sys
    from anybatch import BatchProcessor, EventType, process_partial_response
    from anybatch.idempotency import DynamoDBStore, idempotent
    from anybatch.testing import fake_lambda_context, sqs_event

    store = DynamoDBStore(sys.argv[1], endpoint_url=sys.argv[2], region_name="us-east-1")

    def record_handler(record):
        if record.body == "crash":
            os._exit(3)  # the invocation dies: no release, no response
        return record.body

    handler = idempotent(store, key_prefix="crash")(record_handler)
    event = sqs_event(["a", "crash", "c"])
    process_partial_response(event, handler, BatchProcessor(EventType.SQS),
                             context=fake_lambda_context(timeout=float(sys.argv[3])))
    """
)


def test_a_crashed_invocations_mark_expires_at_its_deadline(
    blocking_dynamo: DynamoDBStore, table: Table
) -> None:
    # Records start until a second before the invocation's end: time for the child to make
    # its client and reach "crash" even under coverage on a loaded machine.
    timeout = 6.0
    started = time.time()
    proc_run = subprocess.run(
        [sys.executable, "-c", CRASH, table.name, table.endpoint, str(timeout)],
        capture_output=True,
        text=True,
        env=os.environ,
        check=False,
        timeout=60,
    )
    assert proc_run.returncode == 3, proc_run.stderr
    marks = [i for i in table.items() if i["status"]["S"] == "INPROGRESS"]
    [mark] = marks
    expires = int(mark["in_progress_expiration"]["N"]) / 1000
    assert started + timeout - 1 <= expires <= time.time() + timeout

    runs: list[str] = []

    def record_handler(record: Any) -> str:
        runs.append(record.body)
        return str(record.body)

    handler = idempotent(blocking_dynamo, key_prefix="crash")(record_handler)
    event = sqs_event(["a", "crash", "c"])  # Lambda delivers the batch again
    proc = blocking_processor()
    if time.time() < expires - 0.5:
        process_partial_response(event, handler, proc)
        assert errors(proc) == ["ok", "IdempotencyInProgressError", "ok"]
        assert runs == ["c"]  # "a" completed before the crash: replayed
    time.sleep(max(0.0, expires - time.time()) + 0.1)
    process_partial_response(event, handler, proc)
    assert errors(proc) == ["ok", "ok", "ok"]
    assert runs.count("crash") == 1  # once its mark expired, and only then
    assert "a" not in runs


async def test_two_invocations_at_once_share_one_store(dynamo: DynamoDBStore) -> None:
    # On trio the calls hop to anybatch's asyncio loop thread; on asyncio they run here.
    counter = Counter()
    handler = make_handler("async", dynamo, counter, key="payload")
    async with anyio.create_task_group() as group:
        for body in ("a", "b"):
            group.start_soon(
                async_process_partial_response, sqs_event([body]), handler, processor()
            )
    assert sorted(counter.bodies) == ["a", "b"]


async def test_the_stores_client_builds_its_user_agent_once_per_set_of_features(
    table: Table, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aiobotocore.session import get_session
    from botocore.useragent import UserAgentString

    botocores = UserAgentString.to_string
    built: list[str] = []

    def counted(self: UserAgentString) -> str:
        text: str = botocores(self)
        if text.startswith("aiobotocore/"):  # the test's own boto3 calls left out
            built.append(text)
        return text

    monkeypatch.setattr(UserAgentString, "to_string", counted)
    sent: list[str] = []
    session = get_session()
    session.register("before-send.dynamodb", lambda request, **_: sent.append(request.url))
    store = table.store(session=session)
    try:
        handler = make_handler("async", store, Counter())
        rounds: list[tuple[int, int]] = []  # (calls made, headers built), after each batch
        for bodies in (["a", "b"], ["c", "d"], ["a", "c"]):
            await async_process_partial_response(sqs_event(bodies), handler, processor())
            rounds.append((len(sent), len(built)))
    finally:
        await store.aclose()
        store.close()
    # Each batch calls DynamoDB; botocore would build each call's header twice. Here the
    # headers are all built in the first batch, none after.
    assert rounds[0][0] < rounds[1][0] < rounds[2][0]
    assert 1 <= rounds[0][1] <= 2 * rounds[0][0]
    assert rounds[2][1] == rounds[0][1]
