"""One module-level processor serving several invocations at once (threads or tasks).

Lambda Managed Instances can run invocations of one function concurrently. The entry points
give each invocation batch state of its own; the context-manager protocol, used directly,
still runs one batch at a time per processor.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import anyio
import pytest

from anybatch import (
    AsyncBatchProcessor,
    BatchProcessor,
    EventType,
    ProcessorStateError,
    async_batch_processor,
    async_process_partial_response,
    batch_processor,
    process_partial_response,
)
from anybatch.testing import sqs_event

if TYPE_CHECKING:
    from anybatch.records import SQSRecord

pytestmark = pytest.mark.filterwarnings("error")


def failures(response: Any) -> list[str]:
    return [item["itemIdentifier"] for item in response["batchItemFailures"]]


def two_events() -> list[dict[str, Any]]:
    first = sqs_event(["a-ok", "a-bad", "a-ok"])
    second = sqs_event(["b-bad", "b-ok"])
    for index, record in enumerate(second["Records"]):  # distinct identifiers
        record["messageId"] = f"second-{index}"
    return [first, second]


def expected(event: dict[str, Any]) -> list[str]:
    return [r["messageId"] for r in event["Records"] if r["body"].endswith("bad")]


def in_threads(*calls: Any) -> list[Any]:
    results: list[Any] = [None] * len(calls)

    def run(index: int) -> None:
        try:
            results[index] = calls[index]()
        except BaseException as exc:
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


@pytest.mark.parametrize("concurrency", [1, 4])
def test_two_threads_share_a_blocking_processor(concurrency: int) -> None:
    barrier = threading.Barrier(2, timeout=10)
    met: set[str] = set()

    def handler(record: SQSRecord) -> None:
        side = record.body[0]
        if side not in met:
            met.add(side)
            barrier.wait()  # both invocations are in flight at the same time
        if record.body.endswith("bad"):
            raise ValueError(record.body)

    processor = BatchProcessor(EventType.SQS, concurrency=concurrency)
    events = two_events()
    responses = in_threads(
        *(lambda e=event: process_partial_response(e, handler, processor) for event in events)
    )
    for event, response in zip(events, responses, strict=True):
        assert not isinstance(response, BaseException), response
        assert failures(response) == expected(event)
    assert len(processor.result) in (2, 3)  # the invocation that finished last


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_two_threads_share_a_blocking_processor_with_async_handlers(backend: Any) -> None:
    barrier = threading.Barrier(2, timeout=10)
    met: set[str] = set()

    async def handler(record: SQSRecord) -> None:
        side = record.body[0]
        if side not in met:
            met.add(side)
            await anyio.to_thread.run_sync(barrier.wait)
        if record.body.endswith("bad"):
            raise ValueError(record.body)

    processor = BatchProcessor(EventType.SQS, backend=backend)
    events = two_events()
    responses = in_threads(
        *(lambda e=event: process_partial_response(e, handler, processor) for event in events)
    )
    for event, response in zip(events, responses, strict=True):
        assert not isinstance(response, BaseException), response
        assert failures(response) == expected(event)


def test_the_decorator_gives_each_thread_its_own_response() -> None:
    barrier = threading.Barrier(2, timeout=10)
    processor = BatchProcessor(EventType.SQS)

    def handler(record: SQSRecord) -> None:
        if record.body.endswith("bad"):
            raise ValueError(record.body)

    @batch_processor(record_handler=handler, processor=processor)
    def lambda_handler(event: Any, context: Any) -> Any:
        barrier.wait()  # both invocations have processed; each reads its own response
        return processor.response()

    events = two_events()
    responses = in_threads(*(lambda e=event: lambda_handler(e, None) for event in events))
    for event, response in zip(events, responses, strict=True):
        assert not isinstance(response, BaseException), response
        assert failures(response) == expected(event)


@pytest.mark.anyio
async def test_two_tasks_share_an_async_processor() -> None:
    both = anyio.Event()
    started: set[str] = set()

    async def handler(record: SQSRecord) -> None:
        started.add(record.body[0])
        if len(started) == 2:
            both.set()
        await both.wait()  # both invocations are in flight at the same time
        if record.body.endswith("bad"):
            raise ValueError(record.body)

    processor = AsyncBatchProcessor(EventType.SQS)
    events = two_events()
    responses: dict[int, Any] = {}

    async def invoke(index: int) -> None:
        responses[index] = await async_process_partial_response(events[index], handler, processor)

    async with anyio.create_task_group() as group:
        group.start_soon(invoke, 0)
        group.start_soon(invoke, 1)
    for index, event in enumerate(events):
        assert failures(responses[index]) == expected(event)


@pytest.mark.anyio
async def test_the_async_decorator_gives_each_task_its_own_response() -> None:
    both = anyio.Event()
    done: list[int] = []
    processor = AsyncBatchProcessor(EventType.SQS)

    async def handler(record: SQSRecord) -> None:
        if record.body.endswith("bad"):
            raise ValueError(record.body)

    @async_batch_processor(record_handler=handler, processor=processor)
    async def lambda_handler(event: Any, context: Any) -> Any:
        done.append(1)
        if len(done) == 2:
            both.set()
        await both.wait()  # both have processed their batch; each reads its own response
        return processor.response()

    events = two_events()
    responses: dict[int, Any] = {}

    async def invoke(index: int) -> None:
        responses[index] = await lambda_handler(events[index], None)

    async with anyio.create_task_group() as group:
        group.start_soon(invoke, 0)
        group.start_soon(invoke, 1)
    for index, event in enumerate(events):
        assert failures(responses[index]) == expected(event)


def test_the_context_manager_itself_runs_one_batch_at_a_time() -> None:
    processor = BatchProcessor(EventType.SQS)
    first, second = two_events()
    with processor(first["Records"], lambda record: None):
        with pytest.raises(ProcessorStateError, match="already processing a batch"):
            processor(second["Records"], lambda record: None)
        processor.process()


def test_an_entry_point_runs_while_the_context_manager_is_in_use() -> None:
    processor = BatchProcessor(EventType.SQS)
    first, second = two_events()

    def handler(record: SQSRecord) -> None:
        if record.body.endswith("bad"):
            raise ValueError(record.body)

    with processor(first["Records"], handler):
        # Another invocation through an entry point gets its own state...
        assert failures(process_partial_response(second, handler, processor)) == expected(second)
        processor.process()
        # ...and this block's state is still its own.
        assert failures(processor.response()) == expected(first)
