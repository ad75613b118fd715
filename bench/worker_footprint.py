"""What the SQS worker keeps alive while its batches run, against the hand-written loop.

``bench_worker.py`` and ``worker_instructions.py`` run both consumers against an SQS endpoint
through aiobotocore, whose calls are about 70% of the CPU a message costs. Here SQS is an
in-memory fake in the process (no HTTP, no botocore): what is left is each consumer's own
work, and what it keeps alive while 100 handlers wait. That is what a busy worker pays for
twice: its young collections walk it, and botocore's calls, between two steps of a batch,
evict it from the caches. Each receive returns new message dicts, as botocore's parsing
does, so both consumers hold what they received.

For each consumer (the same 10 ms handler, ``concurrency=100``, batches of 10 as in
``bench_worker.py``): the memory its run keeps alive while handlers wait, sampled with
:mod:`tracemalloc` ten times during the run (the mean), and the objects the collector
tracks. With ``--cache``, each also runs under callgrind with this machine's L2 simulated as
the last level (as ``worker_instructions.py --cache``): instructions and L2 misses per
message. The memory figures repeat to within a few percent; the callgrind counts repeat::

    python bench/worker_footprint.py            # a few seconds
    python bench/worker_footprint.py --cache    # and the simulated L2: about 2 minutes

Not part of ``run_all.py``: a tool for work on the worker's footprint, not a comparison
with the incumbent.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import os
import sys
import tracemalloc
from collections.abc import Awaitable, Callable
from typing import Any

import _callgrind
from worker_instructions import l2_cache

HERE = os.path.dirname(os.path.abspath(__file__))
COUNT = 3_000
CONCURRENCY = 100
HANDLER_SECONDS = 0.01
SAMPLES = 10
QUEUE_URL = "http://127.0.0.1:1/123456789012/footprint"
ARN = "arn:aws:sqs:us-east-1:123456789012:footprint"


class FakeSQS:
    """The calls the worker makes, answered from memory: every message received is deleted."""

    has_clients = False

    def __init__(self, count: int) -> None:
        # The queue's messages, as numbers (no object the collector tracks): each receive
        # makes its messages anew.
        self.bodies = [str(i) for i in range(count)]
        self.deleted = 0

    async def queue_attributes(self, url: str, region: Any, names: Any) -> dict[str, str]:
        return {"QueueArn": ARN, "VisibilityTimeout": "30"}

    async def receive(
        self, url: str, region: Any, *, max_messages: int, **options: Any
    ) -> list[dict[str, Any]]:
        await asyncio.sleep(0)  # a call's turn of the loop
        taken, self.bodies[:max_messages] = self.bodies[:max_messages], []
        if not taken:
            await asyncio.sleep(0.05)  # an empty long poll
        return [message(body) for body in taken]

    async def send(self, action: str, queue: Any, entries: list[dict[str, Any]]) -> Any:
        await asyncio.sleep(0)
        if action == "delete":
            self.deleted += len(entries)
        return {"Successful": [{"Id": entry["Id"]} for entry in entries], "Failed": []}

    async def aclose(self) -> None:
        pass


def message(number: str) -> dict[str, Any]:
    """A message as botocore returns it from ``ReceiveMessage``."""
    body = f"body-{number}"
    return {
        "MessageId": f"m-{number}",
        "ReceiptHandle": f"rh-{number}",
        "Body": body,
        "MD5OfBody": hashlib.md5(body.encode()).hexdigest(),
        "Attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1"},
    }


async def worker(fake: FakeSQS, sample: Callable[[], None]) -> None:
    """``SQSWorker`` with an async handler, its SQS calls answered by *fake*."""
    import anyio

    from anybatch import AsyncBatchProcessor, EventType
    from anybatch.sqs import SQSWorker
    from anybatch.sqs._settle import Caller

    count = len(fake.bodies)
    done = [0]
    handled = anyio.Event()

    async def handler(record: Any) -> None:
        done[0] += 1
        if done[0] % (count // SAMPLES) == count // (2 * SAMPLES):
            sample()
        await asyncio.sleep(HANDLER_SECONDS)
        if done[0] >= count:
            handled.set()

    consumer = SQSWorker(
        QUEUE_URL,
        handler,
        AsyncBatchProcessor(EventType.SQS, concurrency=CONCURRENCY),
        max_in_flight=CONCURRENCY,
        wait_time=1,
        region="us-east-1",
    )
    consumer._sqs = fake  # type: ignore[assignment]
    consumer._caller = Caller(fake, consumer.retry, consumer.max_concurrent_calls)  # type: ignore[arg-type]
    async with anyio.create_task_group() as group:

        async def stop_when_done() -> None:
            await handled.wait()
            while fake.deleted < count:  # noqa: ASYNC110
                await anyio.sleep(0.002)
            consumer.stop()

        group.start_soon(stop_when_done)
        await consumer.run()


async def handwritten(fake: FakeSQS, sample: Callable[[], None]) -> None:
    """The hand-written loop of ``bench_worker.py``, its SQS calls answered by *fake*."""
    count = len(fake.bodies)
    slots = asyncio.Semaphore(CONCURRENCY)
    done = asyncio.Event()
    handled = [0]

    async def handle(received: dict[str, Any]) -> bool:
        try:
            handled[0] += 1
            if handled[0] % (count // SAMPLES) == count // (2 * SAMPLES):
                sample()
            await asyncio.sleep(HANDLER_SECONDS)
            return True
        finally:
            slots.release()

    async def batch(messages: list[dict[str, Any]]) -> None:
        results = await asyncio.gather(*(handle(m) for m in messages))
        entries = [
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
            for i, (m, ok) in enumerate(zip(messages, results, strict=True))
            if ok
        ]
        await fake.send("delete", None, entries)
        if fake.deleted >= count:
            done.set()

    async def receiver(tasks: set[asyncio.Task[None]]) -> None:
        while True:
            for _ in range(10):
                await slots.acquire()
            if done.is_set():
                return
            messages = await fake.receive(QUEUE_URL, None, max_messages=10)
            for _ in range(10 - len(messages)):
                slots.release()
            if messages:
                task = asyncio.create_task(batch(messages))
                tasks.add(task)
                task.add_done_callback(tasks.discard)

    tasks: set[asyncio.Task[None]] = set()
    receivers = [asyncio.create_task(receiver(tasks)) for _ in range(10)]
    await done.wait()
    await asyncio.gather(*receivers)
    await asyncio.gather(*tasks)


CONSUMERS: dict[str, Callable[[FakeSQS, Callable[[], None]], Awaitable[None]]] = {
    "SQSWorker": worker,
    "hand-written": handwritten,
}


def nothing() -> None:
    pass


def kept_alive(name: str) -> tuple[float, float, float]:
    """The bytes and blocks (tracemalloc) and tracked objects a run keeps alive, on average."""
    consume = CONSUMERS[name]
    asyncio.run(consume(FakeSQS(300), nothing))  # imports, and the first run's one-time costs
    fake = FakeSQS(COUNT)  # the queue's content: not what a consumer keeps alive
    gc.collect()
    samples: list[tuple[int, int, int]] = []

    def sample() -> None:
        objects = len(gc.get_objects())  # first: the statistics are objects too
        stats = tracemalloc.take_snapshot().statistics("filename")
        samples.append((sum(s.size for s in stats), sum(s.count for s in stats), objects))

    tracemalloc.start()
    try:
        asyncio.run(consume(fake, sample))
        gc.collect()
        objects = len(gc.get_objects())
        after = tracemalloc.take_snapshot().statistics("filename")
        base = (sum(s.size for s in after), sum(s.count for s in after), objects)
    finally:
        tracemalloc.stop()
    return tuple(  # type: ignore[return-value]
        sum(values[i] for values in samples) / len(samples) - base[i] for i in range(3)
    )


def child(name: str) -> None:
    """Run in a counted process: warm *name* up, then one marked segment of :data:`COUNT`."""
    consume = CONSUMERS[name]
    asyncio.run(consume(FakeSQS(300), nothing))
    _callgrind.segment(lambda count: asyncio.run(consume(FakeSQS(count), nothing)), COUNT)


def main(argv: list[str]) -> None:
    if argv[:1] == ["--child"]:
        child(argv[1])
        return
    if argv not in ([], ["--cache"]):
        sys.exit("usage: worker_footprint.py [--cache]")
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    print(
        f"{COUNT:,} messages, a {HANDLER_SECONDS * 1000:g} ms handler, "
        f"concurrency={CONCURRENCY}, SQS an in-memory fake; kept alive while handlers wait "
        f"(mean of {SAMPLES} samples):"
    )
    kept = {name: kept_alive(name) for name in CONSUMERS}
    floor = kept["hand-written"]
    for name, (size, blocks, objects) in kept.items():
        print(
            f"  {name:<12} {size / 1024:7,.0f} KiB in {blocks:6,.0f} blocks "
            f"({size / floor[0]:.2f}x the hand-written loop), {objects:6,.0f} tracked objects"
        )
    if not argv:
        return
    if not _callgrind.available():
        sys.exit("valgrind is not installed: --cache needs it")
    options = ["--cache-sim=yes", f"--LL={l2_cache()}"]
    script = os.path.join(HERE, "worker_footprint.py")
    jobs = [
        lambda name=name: _callgrind.count_segment_events(
            [sys.executable, script, "--child", name], options=options
        )[0]
        for name in CONSUMERS
    ]
    events = dict(zip(CONSUMERS, _callgrind.parallel(jobs), strict=True))
    print(f"per message, under callgrind (L2 simulated as --LL={l2_cache()}):")
    base = events["hand-written"]
    assert isinstance(base, dict)
    base_misses = _callgrind.last_level_misses(base)
    for name in CONSUMERS:
        counts = events[name]
        assert isinstance(counts, dict)
        misses = _callgrind.last_level_misses(counts)
        print(
            f"  {name:<12} {counts['Ir'] / COUNT:10,.0f} instructions "
            f"({counts['Ir'] / base['Ir']:.3f}x), {misses / COUNT:5,.0f} L2 misses "
            f"({misses / base_misses:.2f}x)"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
