"""The SQS worker against the hand-written aiobotocore loop, in instructions per message.

``bench_worker.py`` times both in CPU seconds, which move with whatever else the machine
runs (its figures drift by 20% from one run to the next on a busy shared machine). This
counts instructions instead, under ``valgrind --tool=callgrind``: each consumer runs in a
process of its own against the same endpoint as in ``bench_worker.py`` (in a child process,
not counted), is warmed up on 500 messages, and is counted while it consumes *count* more,
its client's creation included, as ``bench_worker.py``'s CPU figure includes it (each
consumer's aiobotocore session is made once, in the warm-up, as a long-running consumer's
is). The
worker is counted twice: as it runs, and with botocore's parameter validation turned back
on (``validating``), like for like with the loop, which keeps botocore's default::

    python bench/worker_instructions.py          # 3,000 messages: about 3 minutes
    python bench/worker_instructions.py 1000

Not part of ``run_all.py``: too slow for it. The counts repeat to within a fraction of a
percent (the loop's timing decides little: both consume a queue filled before they start).
"""

from __future__ import annotations

import asyncio
import functools
import os
import sys

import _callgrind

HERE = os.path.dirname(os.path.abspath(__file__))
#: The worker as it runs, the worker with botocore's parameter validation on (which it turns
#: off: it builds its requests), and the loop (validation on, botocore's default).
CONSUMERS = ("SQSWorker", "validating", "hand-written")
WARMUP = 500


def child(name: str, count: int) -> None:
    """Run in the counted process: warm *name* up, then one marked segment of *count*."""
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1"
    )
    import bench_worker

    consume = {
        "SQSWorker": bench_worker.anybatch_worker,
        "validating": functools.partial(bench_worker.anybatch_worker, validate=True),
        "hand-written": bench_worker.handwritten_loop,
    }[name]
    endpoint = bench_worker.Endpoint()
    try:
        endpoint.fill("w", WARMUP)
        asyncio.run(consume(endpoint, WARMUP))
        endpoint.fill("w", count)
        _callgrind.segment(lambda _: asyncio.run(consume(endpoint, count)), count)
        status = endpoint.ask("status")
        if status["deleted"] != count or status["left"]:
            sys.exit(f"{name} left {status}")
    finally:
        endpoint.close()


def main(argv: list[str]) -> None:
    if argv[:1] == ["--child"]:
        child(argv[1], int(argv[2]))
        return
    if not _callgrind.available():
        sys.exit("valgrind is not installed: instruction counts need it")
    count = int(argv[0]) if argv else 3_000
    jobs = [
        lambda name=name: _callgrind.count_segments(
            [
                sys.executable,
                os.path.join(HERE, "worker_instructions.py"),
                "--child",
                name,
                str(count),
            ]
        )[0]
        for name in CONSUMERS
    ]
    counts = dict(zip(CONSUMERS, _callgrind.parallel(jobs), strict=True))
    floor = counts["hand-written"]
    print(f"{count:,} messages, a 10 ms handler, concurrency=100; instructions per message")
    for name in CONSUMERS:
        total = counts[name]
        assert isinstance(total, int)
        assert isinstance(floor, int)
        print(f"  {name:<12} {total / count:12,.0f}  {total / floor:.3f}x the hand-written loop")


if __name__ == "__main__":
    main(sys.argv[1:])
