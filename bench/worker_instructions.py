"""The SQS worker against the hand-written aiobotocore loop, in instructions per message.

``bench_worker.py`` times both in CPU seconds, which move with whatever else the machine
runs (its figures drift by 20% from one run to the next on a busy shared machine). This
counts instructions instead, under ``valgrind --tool=callgrind``: each consumer runs in a
process of its own against the same endpoint as in ``bench_worker.py`` (in a child process,
not counted), is warmed up on 500 messages, and is counted while it consumes *count* more,
its client's creation included, as ``bench_worker.py``'s CPU figure includes it (each
consumer's aiobotocore session is made once, in the warm-up, as a long-running consumer's
is). The
worker is counted twice: as it runs, and with its client as botocore's defaults make it
(``defaults``: parameter validation on, the ``User-Agent`` header built twice per call), like
for like with the loop, which keeps botocore's defaults::

    python bench/worker_instructions.py          # 3,000 messages: about 3 minutes
    python bench/worker_instructions.py 1000
    python bench/worker_instructions.py --cache 3000   # simulated caches: about 6 minutes

With ``--cache``, callgrind also simulates the caches, with this machine's L2 (one core's,
from ``/sys``) as the last level, and the branch predictor; the misses per message are
printed beside the instructions (what the instruction count does not see), and the cycle
estimate that weighs them (KCachegrind's weights: instructions, plus 10 per first-level miss
and per mispredicted branch, plus 100 per L2 miss): the figure ``bench_worker.py``'s CPU
ratio aims at, without the noise of a shared machine's CPU time. The worker executes as many
instructions as the loop, yet its CPU time moves from run to run around the loop's; it
misses that L2 more often (its code and the objects and types it touches are more than the
loop's), and what a miss costs depends on what else shares the machine's L3.

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
#: The worker as it runs, the worker with its client as botocore's defaults make it (it turns
#: parameter validation off, as it builds its requests, and builds the User-Agent header once
#: per set of request features), and the loop (botocore's defaults).
CONSUMERS = ("SQSWorker", "defaults", "hand-written")
WARMUP = 500


def child(name: str, count: int) -> None:
    """Run in the counted process: warm *name* up, then one marked segment of *count*."""
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1"
    )
    import bench_worker

    consume = {
        "SQSWorker": bench_worker.anybatch_worker,
        "defaults": functools.partial(bench_worker.anybatch_worker, defaults=True),
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


def l2_cache() -> str:
    """This machine's L2 as callgrind's ``--LL`` takes it: size,associativity,line size.

    Read from ``/sys``; 512 KiB, 8-way, 64-byte lines where it cannot be read (or gives an
    associativity of 0, which valgrind refuses).
    """
    folder = "/sys/devices/system/cpu/cpu0/cache"

    def read(index: str, name: str) -> str:
        with open(os.path.join(folder, index, name)) as file:
            return file.read().strip()

    try:
        for index in sorted(os.listdir(folder)):
            if not index.startswith("index") or read(index, "level") != "2":
                continue
            size = read(index, "size")
            kib = int(size[:-1]) if size.endswith("K") else int(size) // 1024
            ways, line = (
                int(read(index, "ways_of_associativity")),
                int(read(index, "coherency_line_size")),
            )
            if kib > 0 and ways > 0 and line > 0:
                return f"{kib * 1024},{ways},{line}"
    except (OSError, ValueError):
        pass
    return f"{512 * 1024},8,64"


def main(argv: list[str]) -> None:
    if argv[:1] == ["--child"]:
        child(argv[1], int(argv[2]))
        return
    if not _callgrind.available():
        sys.exit("valgrind is not installed: instruction counts need it")
    cache = "--cache" in argv
    numbers = [argument for argument in argv if argument != "--cache"]
    if len(numbers) > 1 or not all(number.isdigit() for number in numbers):
        sys.exit("usage: worker_instructions.py [--cache] [COUNT]")
    count = int(numbers[0]) if numbers else 3_000
    options = ["--cache-sim=yes", "--branch-sim=yes", f"--LL={l2_cache()}"] if cache else []
    jobs = [
        lambda name=name: _callgrind.count_segment_events(
            [
                sys.executable,
                os.path.join(HERE, "worker_instructions.py"),
                "--child",
                name,
                str(count),
            ],
            options=options,
        )[0]
        for name in CONSUMERS
    ]
    counts = dict(zip(CONSUMERS, _callgrind.parallel(jobs), strict=True))
    floor = counts["hand-written"]
    assert isinstance(floor, dict)
    simulated = f" (L2 simulated as --LL={l2_cache()})" if cache else ""
    print(f"{count:,} messages, a 10 ms handler, concurrency=100; per message{simulated}")
    for name in CONSUMERS:
        events = counts[name]
        assert isinstance(events, dict)
        line = f"  {name:<12} {events['Ir'] / count:12,.0f} instructions, "
        line += f"{events['Ir'] / floor['Ir']:.3f}x the hand-written loop"
        if cache:
            misses = _callgrind.last_level_misses(events)
            floor_misses = _callgrind.last_level_misses(floor)
            line += f"; {misses / count:,.0f} L2 misses ({misses / floor_misses:.3f}x)"
            cycles, floor_cycles = _callgrind.estimate(events), _callgrind.estimate(floor)
            line += f"; est {cycles / count:,.0f} cycles ({cycles / floor_cycles:.3f}x)"
        print(line)


if __name__ == "__main__":
    main(sys.argv[1:])
