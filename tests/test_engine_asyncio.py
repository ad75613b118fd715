"""The native asyncio engine: workers only as the batch needs them, and no anyio."""

from __future__ import annotations

import asyncio
import gc
import os
import subprocess
import sys
import textwrap
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from anybatch import AsyncBatchProcessor, EventType, Status, async_process_partial_response
from anybatch.testing import sqs_event

if TYPE_CHECKING:
    from anybatch.records import SQSRecord

ROOT = Path(__file__).resolve().parents[1]


def tasks_seen(handler: Any, concurrency: int | None, n: int = 50) -> set[int]:
    seen: set[int] = set()

    async def tracking(record: SQSRecord) -> None:
        seen.add(id(asyncio.current_task()))
        await handler(record)

    async def main() -> None:
        processor = AsyncBatchProcessor(EventType.SQS, concurrency=concurrency)
        response = await async_process_partial_response(
            sqs_event([str(i) for i in range(n)]), tracking, processor
        )
        assert response == {"batchItemFailures": []}

    asyncio.run(main())
    return seen


async def never_waits(record: SQSRecord) -> None:
    pass


async def waits_a_turn(record: SQSRecord) -> None:
    await asyncio.sleep(0)


async def waits(record: SQSRecord) -> None:
    await asyncio.sleep(0.05)  # longer than the few loop turns the workers take to start


def test_handlers_that_never_wait_run_in_one_worker_task() -> None:
    assert len(tasks_seen(never_waits, concurrency=100)) == 1
    assert len(tasks_seen(never_waits, concurrency=None)) == 1


@pytest.mark.parametrize("concurrency", [1, 7, 100, None])
def test_handlers_that_wait_get_workers_up_to_the_limit(concurrency: int | None) -> None:
    expected = 50 if concurrency is None else min(concurrency, 50)
    assert len(tasks_seen(waits, concurrency=concurrency)) == expected


def test_a_record_timeout_leaves_the_worker_able_to_run_more() -> None:
    async def slow_first(record: SQSRecord) -> None:
        if record.body == "0":
            await asyncio.sleep(5)
        await asyncio.sleep(0)

    async def main() -> list[Status]:
        processor = AsyncBatchProcessor(EventType.SQS, concurrency=1, record_timeout=0.05)
        await async_process_partial_response(sqs_event(["0", "1", "2"]), slow_first, processor)
        # The timeout's cancellation was taken back: a later await in the task is not hit.
        await asyncio.sleep(0)
        return [outcome.status for outcome in processor.result]

    assert asyncio.run(main()) == [Status.TIMED_OUT, Status.SUCCESS, Status.SUCCESS]


def test_an_async_batch_on_asyncio_never_imports_anyio() -> None:
    code = textwrap.dedent(
        """
        import sys
        from anybatch import AsyncBatchProcessor, BatchProcessor, EventType
        from anybatch import as_lambda_handler, async_process_partial_response
        from anybatch import process_partial_response
        from anybatch.testing import fake_lambda_context, sqs_event

        processor = AsyncBatchProcessor(EventType.SQS, record_timeout=5)

        async def record_handler(record):
            if record.body == "bad":
                raise ValueError("bad")

        @as_lambda_handler
        async def lambda_handler(event, context):
            return await async_process_partial_response(event, record_handler, processor, context)

        response = lambda_handler(sqs_event(["ok", "bad"]), fake_lambda_context(30))
        assert len(response["batchItemFailures"]) == 1
        process_partial_response(sqs_event(["ok"]), record_handler, BatchProcessor(EventType.SQS))
        print(sorted(name for name in sys.modules if name.split(".")[0] in ("anyio", "sniffio")))
        """
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.skipif(sys.version_info < (3, 12), reason="eager task factories are 3.12+")
@pytest.mark.parametrize("waits", [(), (0,), (0, 2)])
def test_an_eager_task_factory_runs_every_record_and_waits_for_them(
    waits: tuple[int, ...],
) -> None:
    # An eager task runs inside create_task(): the pool must count its worker in before.
    done: list[int] = []

    async def handler(record: SQSRecord) -> None:
        index = int(record.body)
        if index in waits:
            await asyncio.sleep(0.02)
        done.append(index)

    async def main() -> Any:
        loop = asyncio.get_running_loop()
        loop.set_task_factory(asyncio.eager_task_factory)  # type: ignore[attr-defined, unused-ignore]
        processor = AsyncBatchProcessor(EventType.SQS, concurrency=4)
        return await asyncio.wait_for(
            async_process_partial_response(
                sqs_event([str(i) for i in range(6)]), handler, processor
            ),
            5,
        )

    assert asyncio.run(main()) == {"batchItemFailures": []}
    assert sorted(done) == list(range(6))


def test_a_task_factory_the_user_set_makes_the_workers() -> None:
    # A factory that instruments tasks (tracing, monitoring) sees every worker.
    made: list[str] = []

    async def handler(record: SQSRecord) -> None:
        await asyncio.sleep(0.01)

    async def main() -> Any:
        loop = asyncio.get_running_loop()

        def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> Any:
            made.append(coro.__qualname__)
            return asyncio.Task(coro, loop=loop, **kwargs)

        loop.set_task_factory(factory)
        processor = AsyncBatchProcessor(EventType.SQS, concurrency=3)
        return await async_process_partial_response(sqs_event(["a", "b", "c"]), handler, processor)

    assert asyncio.run(main()) == {"batchItemFailures": []}
    assert made.count("_Pool.worker") == 3


def test_a_task_factory_gets_no_more_workers_than_records_left() -> None:
    # Workers made the usual way claim their record only once they run: the pool counts the
    # records left, not the workers it may still make.
    made: list[str] = []

    async def last_ten_wait(record: SQSRecord) -> None:
        if int(record.body) >= 990:
            await asyncio.sleep(0.01)

    async def main() -> Any:
        def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> Any:
            made.append(coro.__qualname__)
            return asyncio.Task(coro, loop=loop, **kwargs)

        asyncio.get_running_loop().set_task_factory(factory)
        processor = AsyncBatchProcessor(EventType.SQS, concurrency=100)
        event = sqs_event([str(i) for i in range(1000)])
        return await async_process_partial_response(event, last_ten_wait, processor)

    assert asyncio.run(main()) == {"batchItemFailures": []}
    assert made.count("_Pool.worker") <= 10


def test_after_a_fatal_error_a_handler_that_swallowed_its_cancellation_starts_nothing() -> None:
    started: list[str] = []

    class Fatal(BaseException):
        pass

    async def handler(record: SQSRecord) -> None:
        started.append(record.body)
        if record.body == "fatal":
            await asyncio.sleep(0.02)
            raise Fatal
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            await asyncio.sleep(0.01)  # swallowed: it returns, well within the grace

    async def main() -> None:
        processor = AsyncBatchProcessor(EventType.SQS, concurrency=2)
        with pytest.raises(Fatal):
            await async_process_partial_response(
                sqs_event(["slow", "fatal", "a", "b", "c"]), handler, processor
            )
        await asyncio.sleep(0.2)  # what the worker would start, it would have started by now

    asyncio.run(main())
    assert started == ["slow", "fatal"]


def test_a_loop_that_makes_its_own_tasks_makes_the_workers() -> None:
    # A loop subclass that overrides create_task (instrumentation) sees every worker.
    made: list[str] = []

    class CountingLoop(asyncio.SelectorEventLoop):
        def create_task(self, coro: Any, **kwargs: Any) -> Any:
            made.append(coro.__qualname__)
            return super().create_task(coro, **kwargs)

    async def handler(record: SQSRecord) -> None:
        await asyncio.sleep(0.01)

    async def main() -> Any:
        processor = AsyncBatchProcessor(EventType.SQS, concurrency=3)
        return await async_process_partial_response(sqs_event(["a", "b", "c"]), handler, processor)

    loop = CountingLoop()
    try:
        assert loop.run_until_complete(main()) == {"batchItemFailures": []}
    finally:
        loop.close()
    assert made.count("_Pool.worker") == 3


def test_a_task_a_handler_creates_starts_when_the_handler_waits() -> None:
    # The pool's own workers may start at once; the loop's tasks keep asyncio's order, so a
    # handler's create_task() does not run the new task before the handler waits.
    order: list[str] = []

    async def child(body: str) -> None:
        order.append(f"child {body}")

    async def handler(record: SQSRecord) -> None:
        task = asyncio.create_task(child(record.body))
        order.append(f"created {record.body}")
        await task

    async def main() -> Any:
        processor = AsyncBatchProcessor(EventType.SQS, concurrency=1)
        return await async_process_partial_response(sqs_event(["a", "b"]), handler, processor)

    assert asyncio.run(main()) == {"batchItemFailures": []}
    assert order == ["created a", "child a", "created b", "child b"]


def garbage_per_batch(handler: Any, together: int) -> float:
    """Objects only the garbage collector frees, per batch, once the processor is warm."""
    processor = AsyncBatchProcessor(EventType.SQS, concurrency=10)
    event = sqs_event([str(i) for i in range(10)])

    async def batches(n: int) -> None:
        for _ in range(n):
            # *together* at once on one processor, as the SQS worker runs them
            await asyncio.gather(
                *(
                    async_process_partial_response(event, handler, processor)
                    for _ in range(together)
                )
            )

    async def main() -> float:
        await batches(5)
        gc.collect()
        gc.disable()
        try:
            await batches(20)
            return gc.collect() / (20 * together)
        finally:
            gc.enable()

    return asyncio.run(main())


@pytest.mark.parametrize("together", [1, 3])
@pytest.mark.parametrize("handler", [never_waits, waits_a_turn], ids=["never waits", "waits"])
def test_a_batch_leaves_no_garbage_for_the_collector(handler: Any, together: int) -> None:
    # A long-lived process (the SQS worker) pays for every collection the garbage brings on.
    assert garbage_per_batch(handler, together) == 0


@pytest.mark.parametrize("keyed", [False, True], ids=["free", "keyed"])
def test_a_task_abandoned_at_the_deadline_keeps_none_of_its_batch(keyed: bool) -> None:
    # Its handler swallowed the deadline's cancellation and runs on unheard: the batch has
    # ended all the same, and what it held (the records) goes with it, not with that task.
    from anybatch._engine._asyncio import ABANDON_AFTER, run_pool_asyncio
    from anybatch._engine._schedule import Schedule

    class Records(list[int]):  # a list a weak reference can watch
        pass

    still_running = asyncio.Event()

    async def swallows(record: int) -> None:
        if record == 0:
            try:
                await asyncio.sleep(5)
            except asyncio.CancelledError:
                still_running.set()
                await asyncio.sleep(3 * ABANDON_AFTER)  # past its grace: abandoned
                still_running.clear()
                return
        await asyncio.sleep(0.05)

    async def main() -> tuple[bool, bool]:
        schedule = Schedule(4, keys=[i % 2 for i in range(4)] if keyed else None)
        records = Records(range(4))
        watch = weakref.ref(records)
        await run_pool_asyncio(schedule, swallows, records, concurrency=2, time_left=0.02)
        del records
        return still_running.is_set(), watch() is None

    assert asyncio.run(main()) == (True, True)
