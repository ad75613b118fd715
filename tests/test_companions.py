"""Powertools' companions on real handlers: Idempotency, Logger, Metrics, and per-record context.

These run the real ``aws-lambda-powertools`` (a test dependency only) beside anybatch: its
``@idempotent_function`` against DynamoDB (moto's server over HTTP), ``inject_lambda_context``
and ``log_metrics`` around ``as_lambda_handler``, and ``thread_safe_append_keys`` under
concurrency, where each record runs in its own copy of the invocation's context.
"""

from __future__ import annotations

import asyncio
import contextvars
import io
import json
import logging
import threading
from collections.abc import Iterator
from typing import Any, cast

import anyio
import pytest

import anybatch._engine
from anybatch import (
    AsyncBatchProcessor,
    BatchProcessor,
    EventType,
    RecordIdFilter,
    as_lambda_handler,
    async_process_partial_response,
    current_record,
    current_record_id,
    process_partial_response,
)
from anybatch.testing import fake_lambda_context, sqs_event

pytest.importorskip("aws_lambda_powertools")

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)

#: How records run: inline, in threads, on native asyncio, anyio's pool on asyncio, trio.
WAYS = ["inline", "threads", "asyncio", "anyio-asyncio", "trio"]


def failures(response: Any) -> list[str]:
    return [item["itemIdentifier"] for item in response["batchItemFailures"]]


# -- per-record context -----------------------------------------------------------------------

MARK: contextvars.ContextVar[str] = contextvars.ContextVar("mark", default="before")


def run_way(way: str, handler_sync: Any, handler_async: Any, event: Any, monkeypatch: Any) -> Any:
    if way == "inline":
        return process_partial_response(event, handler_sync, BatchProcessor(EventType.SQS))
    if way == "threads":
        processor = BatchProcessor(EventType.SQS, concurrency=8)
        return process_partial_response(event, handler_sync, processor)
    if way == "anyio-asyncio":
        monkeypatch.setattr(anybatch._engine, "asyncio_running", lambda: False)

    async def main() -> Any:
        processor = AsyncBatchProcessor(EventType.SQS, concurrency=8)
        return await async_process_partial_response(event, handler_async, processor)

    return anyio.run(main, backend="trio" if way == "trio" else "asyncio")


@pytest.mark.parametrize("way", WAYS)
def test_each_record_runs_in_its_own_copy_of_the_context(
    way: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, tuple[str, Any, Any]] = {}
    lock = threading.Lock()
    token = MARK.set("set before the batch")

    def note(body: str) -> None:
        before = MARK.get()
        MARK.set(body)  # never seen by another record
        with lock:
            seen[body] = (before, current_record().body, current_record_id())

    def handler_sync(record: Any) -> None:
        note(record.body)

    async def handler_async(record: Any) -> None:
        await anyio.sleep(0.01)
        before = MARK.get()
        MARK.set(record.body)
        await anyio.sleep(0.01)  # other records run and set theirs meanwhile
        assert MARK.get() == record.body
        with lock:
            seen[record.body] = (before, current_record().body, current_record_id())

    event = sqs_event([str(i) for i in range(16)])
    try:
        response = run_way(way, handler_sync, handler_async, event, monkeypatch)
    finally:
        MARK.reset(token)
    assert response == {"batchItemFailures": []}
    ids = [record["messageId"] for record in event["Records"]]
    assert seen == {str(i): ("set before the batch", str(i), ids[i]) for i in range(16)}
    assert current_record() is None
    assert current_record_id() is None


class _Unanswerable:
    """A value whose ``==`` cannot say (as a numpy array's): comparing contexts raises."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __eq__(self, other: object) -> bool:
        raise ValueError("the truth value of an array is ambiguous")

    __hash__ = object.__hash__


ODD: contextvars.ContextVar[Any] = contextvars.ContextVar("odd")


@pytest.mark.parametrize("way", ["inline", "asyncio"])
def test_a_context_value_whose_equality_raises_fails_no_record(
    way: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []

    def note(record: Any) -> None:
        seen.append(ODD.get().name)
        ODD.set(_Unanswerable(record.body))  # the next record must not see it

    async def note_async(record: Any) -> None:
        note(record)

    token = ODD.set(_Unanswerable("before"))
    try:
        response = run_way(way, note, note_async, sqs_event(["1", "2", "3"]), monkeypatch)
    finally:
        ODD.reset(token)
    assert response == {"batchItemFailures": []}
    assert seen == ["before", "before", "before"]


def test_an_abandoned_handler_still_knows_its_record_after_the_batch() -> None:
    # It swallowed its timeout's cancellation and runs on, unheard: what it logs later
    # still names its record.
    later: list[Any] = []

    async def stubborn(record: Any) -> None:
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            await asyncio.sleep(0.3)  # past the engine's 0.1 s: abandoned
        later.append((current_record(), current_record_id()))

    async def main() -> Any:
        processor = AsyncBatchProcessor(
            EventType.SQS, record_timeout=0.05, raise_on_entire_batch_failure=False
        )
        event = sqs_event(["slow"])
        response = await async_process_partial_response(event, stubborn, processor)
        await asyncio.sleep(0.5)  # the abandoned handler ends meanwhile
        return event, response

    event, response = asyncio.run(main())
    message_id = event["Records"][0]["messageId"]
    assert failures(response) == [message_id]
    ((record, record_id),) = later
    assert record.body == "slow"
    assert record_id == message_id


@pytest.mark.parametrize("way", ["asyncio", "anyio-asyncio", "trio"])
def test_tasks_and_threads_a_record_starts_know_its_record(
    way: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What a handler starts inherits its context: a log line from a child task (gather, a
    # task group) or from a thread it hands work to still names the record.
    seen: dict[tuple[str, str], Any] = {}
    lock = threading.Lock()

    def note(body: str, where: str) -> None:
        with lock:
            seen[body, where] = current_record_id()

    async def handler_async(record: Any) -> None:
        async def child() -> None:
            await anyio.sleep(0.01)  # other records run meanwhile
            note(record.body, "task")

        async with anyio.create_task_group() as group:
            group.start_soon(child)
        await anyio.to_thread.run_sync(note, record.body, "thread")
        if way != "trio":
            await asyncio.gather(asyncio.sleep(0), asyncio.to_thread(note, record.body, "gather"))

    event = sqs_event([str(i) for i in range(8)])
    response = run_way(way, None, handler_async, event, monkeypatch)
    assert response == {"batchItemFailures": []}
    ids = [record["messageId"] for record in event["Records"]]
    wheres = ["task", "thread"] + ([] if way == "trio" else ["gather"])
    assert seen == {(str(i), where): ids[i] for i in range(8) for where in wheres}


def test_threads_an_inline_record_hands_its_context_know_its_record() -> None:
    # A sync record run inline hands work to a thread with a copy of its context; that
    # thread runs a blocking batch of its own meanwhile. Each names the innermost record, the
    # handing thread's record is intact after, and a thread still running once the batch
    # has ended names no record.
    seen: dict[str, Any] = {}
    outer_ids: list[Any] = []
    release, late_done = threading.Event(), threading.Event()
    late: list[Any] = []

    def inner(record: Any) -> None:
        seen[f"inner {record.body}"] = current_record_id()

    def in_thread(body: str) -> None:
        seen[f"thread before {body}"] = current_record_id()
        inner_event = sqs_event([f"{body}.a", f"{body}.b"])
        for record in inner_event["Records"]:
            record["messageId"] = f"inner {record['body']}"
        process_partial_response(inner_event, inner, BatchProcessor(EventType.SQS))
        seen[f"thread after {body}"] = current_record_id()

    def outlives() -> None:
        release.wait(5)
        late.append(current_record_id())
        late_done.set()

    def outer(record: Any) -> None:
        outer_ids.append(current_record_id())
        context = contextvars.copy_context()
        thread = threading.Thread(target=context.run, args=(in_thread, record.body))
        thread.start()
        thread.join()
        seen[f"outer after {record.body}"] = current_record_id()
        if record.body == "1":
            threading.Thread(target=contextvars.copy_context().run, args=(outlives,)).start()

    event = sqs_event(["0", "1"])
    response = process_partial_response(event, outer, BatchProcessor(EventType.SQS))
    assert response == {"batchItemFailures": []}
    release.set()
    assert late_done.wait(5)
    ids = [record["messageId"] for record in event["Records"]]
    assert outer_ids == ids
    for index, body in enumerate(["0", "1"]):
        assert seen[f"thread before {body}"] == ids[index]
        assert seen[f"thread after {body}"] == ids[index]
        assert seen[f"outer after {body}"] == ids[index]
        assert seen[f"inner {body}.a"] == f"inner {body}.a"
        assert seen[f"inner {body}.b"] == f"inner {body}.b"
    assert late == [None]
    assert current_record_id() is None


def _with_ids(event: dict[str, Any], *ids: str) -> dict[str, Any]:
    for record, message_id in zip(event["Records"], ids, strict=True):
        record["messageId"] = message_id
    return event


def test_a_thread_left_by_one_inline_batch_never_names_the_next_ones_records() -> None:
    # A warm function: invocation 1's record leaves a thread with its context; while
    # invocation 2's record runs, that thread names no record (not invocation 2's).
    go, done = threading.Event(), threading.Event()
    late: list[Any] = []

    def outlives() -> None:
        go.wait(5)
        late.append(current_record_id())
        done.set()

    def first(record: Any) -> None:
        threading.Thread(target=contextvars.copy_context().run, args=(outlives,)).start()

    def second(record: Any) -> None:
        assert current_record_id() == "SECOND"
        go.set()
        assert done.wait(5)

    process_partial_response(sqs_event(["a"]), first, BatchProcessor(EventType.SQS))
    process_partial_response(
        _with_ids(sqs_event(["b"]), "SECOND"), second, BatchProcessor(EventType.SQS)
    )
    assert late == [None]


def test_a_blocking_batch_inside_an_async_record_is_not_seen_by_its_neighbours() -> None:
    # After a blocking batch in this thread (a warm invocation), async record 1 runs a
    # blocking batch of its own while a thread of async record 0 asks: it names record 0.
    process_partial_response(sqs_event(["x"]), lambda record: None, BatchProcessor(EventType.SQS))
    inside, read = threading.Event(), threading.Event()
    seen: dict[str, Any] = {}

    def in_thread() -> None:
        assert inside.wait(5)
        seen["thread of record 0"] = current_record_id()
        read.set()

    def inner(record: Any) -> None:
        seen["inner"] = current_record_id()
        inside.set()
        assert read.wait(5)

    async def handler(record: Any) -> None:
        if record.body == "0":
            await asyncio.to_thread(in_thread)
        else:
            await asyncio.sleep(0.01)
            event = _with_ids(sqs_event(["i"]), "INNER")
            process_partial_response(event, inner, BatchProcessor(EventType.SQS))

    event = sqs_event(["0", "1"])

    async def main() -> Any:
        processor = AsyncBatchProcessor(EventType.SQS, concurrency=2)
        return await async_process_partial_response(event, handler, processor)

    assert asyncio.run(main()) == {"batchItemFailures": []}
    assert seen == {"thread of record 0": event["Records"][0]["messageId"], "inner": "INNER"}


def test_an_async_batch_in_a_thread_handed_an_inline_records_context_names_its_own() -> None:
    # The thread runs a blocking batch first, then an async one: the async records name
    # themselves, not the inline record whose context the thread was handed.
    seen: list[tuple[str, Any]] = []

    async def async_handler(record: Any) -> None:
        seen.append((record.message_id, current_record_id()))

    def in_thread() -> None:
        process_partial_response(sqs_event(["t"]), lambda r: None, BatchProcessor(EventType.SQS))
        event = _with_ids(sqs_event(["a0", "a1"]), "async-0", "async-1")
        processor = AsyncBatchProcessor(EventType.SQS)
        asyncio.run(async_process_partial_response(event, async_handler, processor))
        seen.append(("thread after", current_record_id()))

    def outer(record: Any) -> None:
        thread = threading.Thread(target=contextvars.copy_context().run, args=(in_thread,))
        thread.start()
        thread.join()

    event = _with_ids(sqs_event(["o"]), "OUTER")
    process_partial_response(event, outer, BatchProcessor(EventType.SQS))
    assert seen == [("async-0", "async-0"), ("async-1", "async-1"), ("thread after", "OUTER")]


def test_a_task_that_outlives_its_batch_names_no_record() -> None:
    # Started and never awaited: once its batch has ended, it names no record (not the
    # last one its worker ran).
    late: list[Any] = []
    children: list[asyncio.Task[None]] = []

    async def child() -> None:
        await asyncio.sleep(0.05)
        late.append(current_record_id())

    async def handler(record: Any) -> None:
        if record.body == "0":
            children.append(asyncio.create_task(child()))

    async def main() -> Any:
        processor = AsyncBatchProcessor(EventType.SQS, concurrency=1)
        response = await async_process_partial_response(sqs_event(["0", "1"]), handler, processor)
        await asyncio.gather(*children)
        return response

    assert asyncio.run(main()) == {"batchItemFailures": []}
    assert late == [None]


# -- Logger: per-record keys at any concurrency -------------------------------------------------


@pytest.fixture
def captured_logger(request: pytest.FixtureRequest) -> Iterator[tuple[Logger, io.StringIO]]:
    stream = io.StringIO()
    # A service of its own: Powertools keeps one logging.Logger per service name.
    service = f"orders-{abs(hash(request.node.nodeid))}"
    logger = Logger(service=service, logger_handler=logging.StreamHandler(stream))
    yield logger, stream
    logger.thread_safe_clear_keys()


@pytest.mark.parametrize("way", WAYS)
def test_thread_safe_append_keys_stays_with_its_record(
    way: str, monkeypatch: pytest.MonkeyPatch, captured_logger: tuple[Logger, io.StringIO]
) -> None:
    logger, stream = captured_logger
    logger.addFilter(RecordIdFilter())

    def handler_sync(record: Any) -> None:
        logger.thread_safe_append_keys(message_id=record.message_id)
        logger.info("handling", extra={"body": record.body})

    async def handler_async(record: Any) -> None:
        logger.thread_safe_append_keys(message_id=record.message_id)
        await anyio.sleep(0.01)  # the other records append their own keys meanwhile
        logger.info("handling", extra={"body": record.body})

    event = sqs_event([str(i) for i in range(32)])
    assert run_way(way, handler_sync, handler_async, event, monkeypatch) == {
        "batchItemFailures": []
    }
    ids = {record["body"]: record["messageId"] for record in event["Records"]}
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len(lines) == 32
    wrong = [line for line in lines if line["message_id"] != ids[line["body"]]]
    assert wrong == []
    assert all(line["record_id"] == ids[line["body"]] for line in lines)


def test_the_record_id_filter_stamps_stdlib_lines() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(record_id)s %(message)s"))
    handler.addFilter(RecordIdFilter(default="-"))
    log = logging.getLogger("test_companions.stdlib")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False

    def record_handler(record: Any) -> None:
        log.info("in %s", record.body)

    event = sqs_event(["a", "b"])
    processor = BatchProcessor(EventType.SQS, concurrency=2)
    process_partial_response(event, record_handler, processor)
    log.info("outside")
    ids = [record["messageId"] for record in event["Records"]]
    assert sorted(stream.getvalue().splitlines()) == sorted(
        [f"{ids[0]} in a", f"{ids[1]} in b", "- outside"]
    )


def test_the_record_id_filter_works_through_structlog() -> None:
    structlog = pytest.importorskip("structlog")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RecordIdFilter())
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ExtraAdder(allow=["record_id"]),
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.JSONRenderer(),
            ],
        )
    )
    std = logging.getLogger("test_companions.structlog")
    std.addHandler(handler)
    std.setLevel(logging.INFO)
    std.propagate = False
    log = structlog.wrap_logger(
        std,
        processors=[structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        wrapper_class=structlog.stdlib.BoundLogger,
    )

    async def record_handler(record: Any) -> None:
        await asyncio.sleep(0)
        log.info("handled", body=record.body)

    event = sqs_event(["a", "b", "c"])

    async def main() -> Any:
        processor = AsyncBatchProcessor(EventType.SQS)
        return await async_process_partial_response(event, record_handler, processor)

    asyncio.run(main())
    ids = {record["body"]: record["messageId"] for record in event["Records"]}
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert sorted((line["body"], line["record_id"]) for line in lines) == sorted(ids.items())


# -- Logger and Metrics decorators around as_lambda_handler -----------------------------------


def processed_lambda(processor: Any, seen: list[str]) -> Any:
    async def record_handler(record: Any) -> None:
        seen.append(record.body)

    async def lambda_handler(event: Any, context: Any) -> Any:
        return await async_process_partial_response(event, record_handler, processor, context)

    return lambda_handler


def test_inject_lambda_context_inside_as_lambda_handler(
    captured_logger: tuple[Logger, io.StringIO],
) -> None:
    logger, stream = captured_logger
    seen: list[str] = []
    inner = processed_lambda(AsyncBatchProcessor(EventType.SQS), seen)

    @as_lambda_handler
    @logger.inject_lambda_context
    async def lambda_handler(event: Any, context: Any) -> Any:
        logger.info("batch")
        return await inner(event, context)

    context = fake_lambda_context(function_name="orders-fn")
    assert lambda_handler(sqs_event(["a", "b"]), context) == {"batchItemFailures": []}
    assert seen == ["a", "b"]
    [line] = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert line["function_name"] == "orders-fn"


def test_inject_lambda_context_outside_as_lambda_handler(
    captured_logger: tuple[Logger, io.StringIO],
) -> None:
    logger, stream = captured_logger
    seen: list[str] = []
    inner = processed_lambda(AsyncBatchProcessor(EventType.SQS), seen)

    @logger.inject_lambda_context
    @as_lambda_handler
    async def lambda_handler(event: Any, context: Any) -> Any:
        logger.info("batch")
        return await inner(event, context)

    context = fake_lambda_context(function_name="orders-fn")
    assert lambda_handler(sqs_event(["a"]), context) == {"batchItemFailures": []}
    [line] = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert line["function_name"] == "orders-fn"


def emf_lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if "_aws" in line]


def test_log_metrics_outside_as_lambda_handler_flushes_the_invocations_metrics(
    capsys: pytest.CaptureFixture[str],
) -> None:
    metrics = Metrics(namespace="Orders", service="orders")
    seen: list[str] = []
    inner = processed_lambda(AsyncBatchProcessor(EventType.SQS), seen)

    @metrics.log_metrics
    @as_lambda_handler
    async def lambda_handler(event: Any, context: Any) -> Any:
        metrics.add_metric(name="Batches", unit=MetricUnit.Count, value=1)
        return await inner(event, context)

    assert lambda_handler(sqs_event(["a"]), fake_lambda_context()) == {"batchItemFailures": []}
    [document] = emf_lines(capsys)
    assert document["Batches"] == [1.0] or document["Batches"] == 1.0


def test_log_metrics_inside_as_lambda_handler_is_accepted_and_runs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Powertools' log_metrics is a sync decorator: around an async def it flushes when the
    # coroutine is made, before its body runs (see the Migrating page); anybatch accepts it.
    metrics = Metrics(namespace="Orders", service="orders")
    seen: list[str] = []
    inner = processed_lambda(AsyncBatchProcessor(EventType.SQS), seen)

    @as_lambda_handler
    @metrics.log_metrics
    async def lambda_handler(event: Any, context: Any) -> Any:
        return await inner(event, context)

    with pytest.warns(UserWarning, match="No application metrics to publish"):
        assert lambda_handler(sqs_event(["a"]), fake_lambda_context()) == {"batchItemFailures": []}
    assert seen == ["a"]


def test_as_lambda_handler_still_refuses_what_returns_no_awaitable() -> None:
    from anybatch import HandlerTypeError

    def plain(event: Any, context: Any) -> Any:
        return {"ok": True}

    with pytest.raises(HandlerTypeError, match="takes an 'async def' lambda handler"):
        as_lambda_handler(plain)

    async def real(event: Any, context: Any) -> Any:
        return {"ok": True}

    def not_awaiting(event: Any, context: Any) -> Any:
        return {"ok": True}

    not_awaiting.__wrapped__ = real  # type: ignore[attr-defined]
    handler = as_lambda_handler(not_awaiting)
    with pytest.raises(HandlerTypeError, match="returned dict, not an awaitable"):
        handler({}, None)


# -- Idempotency: the incumbent's documented pattern -------------------------------------------


@pytest.fixture(scope="module")
def dynamodb_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def idempotency_table(dynamodb_endpoint: str, request: pytest.FixtureRequest) -> Any:
    import boto3

    client = boto3.client("dynamodb", endpoint_url=dynamodb_endpoint, region_name="us-east-1")
    name = f"idem-{abs(hash(request.node.nodeid))}"
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return DynamoDBPersistenceLayer(table_name=name, boto3_client=client)


@pytest.mark.parametrize("concurrency", [1, 4])
@pytest.mark.parametrize("model", [False, True])
def test_idempotent_function_on_the_record_handler_replays_only_what_failed(
    idempotency_table: Any, concurrency: int, model: bool
) -> None:
    runs: list[str] = []
    lock = threading.Lock()
    failing = {"b"}
    config = IdempotencyConfig(event_key_jmespath="messageId")

    @idempotent_function(  # type: ignore[untyped-decorator]
        data_keyword_argument="record", persistence_store=idempotency_table, config=config
    )
    def record_handler(record: Any) -> dict[str, str]:
        body = record.body
        with lock:
            runs.append(body)
        if body in failing:
            raise ValueError(f"{body} failed")
        return {"done": body}

    kwargs: dict[str, Any] = {"concurrency": concurrency}
    if model:
        from anybatch.models import SqsRecordModel

        kwargs["model"] = SqsRecordModel
    processor = BatchProcessor(EventType.SQS, **kwargs)
    event = sqs_event(["a", "b", "c"])
    context = fake_lambda_context(timeout=30)
    config.register_lambda_context(cast("Any", context))
    first = process_partial_response(event, record_handler, processor, context)
    assert failures(first) == [event["Records"][1]["messageId"]]
    assert sorted(runs) == ["a", "b", "c"]
    failing.clear()
    second = process_partial_response(event, record_handler, processor, context)
    assert second == {"batchItemFailures": []}
    assert sorted(runs) == ["a", "b", "b", "c"]  # only the failed record ran again


# -- current_record() when batches nest ----------------------------------------------------------

INNER = {
    "inline": lambda: BatchProcessor(EventType.SQS),
    "threads": lambda: BatchProcessor(EventType.SQS, concurrency=2),
    "async": lambda: BatchProcessor(EventType.SQS),
}


@pytest.mark.parametrize("inner", INNER)
@pytest.mark.parametrize("outer", ["inline", "threads", "async"])
def test_current_record_is_the_innermost_record_when_batches_nest(outer: str, inner: str) -> None:
    seen: list[tuple[str, str, str]] = []
    lock = threading.Lock()
    inner_processor = INNER[inner]()

    def inner_sync(record: Any) -> None:
        with lock:
            seen.append(("inner", record.body, current_record().body))

    async def inner_async(record: Any) -> None:
        await anyio.lowlevel.checkpoint()
        with lock:
            seen.append(("inner", record.body, current_record().body))

    inner_handler = inner_async if inner == "async" else inner_sync

    def outer_sync(record: Any) -> None:
        inner_event = sqs_event([f"{record.body}.{i}" for i in range(2)])
        process_partial_response(inner_event, inner_handler, inner_processor)
        with lock:
            seen.append(("outer", record.body, current_record().body))

    async def outer_async(record: Any) -> None:
        await anyio.lowlevel.checkpoint()
        inner_event = sqs_event([f"{record.body}.{i}" for i in range(2)])
        await anyio.to_thread.run_sync(
            process_partial_response, inner_event, inner_handler, inner_processor
        )
        with lock:
            seen.append(("outer", record.body, current_record().body))

    event = sqs_event(["a", "b"])
    if outer == "async":

        async def main() -> Any:
            processor = AsyncBatchProcessor(EventType.SQS, concurrency=1)
            return await async_process_partial_response(event, outer_async, processor)

        response = asyncio.run(main())
    else:
        processor = BatchProcessor(EventType.SQS, concurrency=1 if outer == "inline" else 2)
        response = process_partial_response(event, outer_sync, processor)
    assert response == {"batchItemFailures": []}
    assert all(body == current for _, body, current in seen)
    assert len(seen) == 6
