"""SQS FIFO: 10 message groups x 100 records, each record a 10 ms wait.

Records are interleaved as a FIFO queue delivers them: record *i* belongs to group ``i % 10``.
Each group must run one record at a time, in order, so with the 10 groups side by side the
ideal is 100 x 10 ms = 1.0 s.

anybatch: ``AsyncSqsFifoPartialProcessor(concurrency=10)`` with an async handler
(``await asyncio.sleep(0.01)``), timed as ``asyncio.run(async_process_partial_response(...))``.
Powertools: ``SqsFifoPartialProcessor`` is sync-only and sequential, so its handler is
``time.sleep(0.01)`` and 1,000 records take ~10 s. To keep the suite short it is timed on 10
groups x 20 records and multiplied by 5 (sleep-bound, so linear); the output says so.

Also shown (information): anybatch's *blocking* ``SqsFifoPartialProcessor(concurrency=10)`` with
Powertools' very handler (``time.sleep``, run in worker threads): the drop-in with one knob.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from _common import (
    Row,
    check_no_failures,
    efficiency,
    efficiency_row,
    fmt_time,
    interleave,
    main,
    ratio_row,
    say,
)
from aws_lambda_powertools.utilities import batch as powertools

import anybatch
from anybatch.testing import sqs_event

GROUPS = 10
PER_GROUP = 100
PT_PER_GROUP = 20  # Powertools is sequential: time 10 x 20, extrapolate to 10 x 100
SLEEP = 0.01
CONCURRENCY = 10
IDEAL = PER_GROUP * SLEEP
ROUNDS = 3
GOAL_PERCENT = 90.0


def fifo_event(per_group: int) -> dict[str, Any]:
    return sqs_event(
        (f"message {i}" for i in range(GROUPS * per_group)),
        fifo=True,
        group_ids=lambda i: f"group-{i % GROUPS}",
    )


async def wait_10ms(record: Any) -> None:
    await asyncio.sleep(SLEEP)


def sleep_10ms(record: Any) -> None:
    time.sleep(SLEEP)


def run() -> list[Row]:
    event = fifo_event(PER_GROUP)
    pt_event = fifo_event(PT_PER_GROUP)
    warm_event = fifo_event(1)
    async_processor = anybatch.AsyncSqsFifoPartialProcessor(concurrency=CONCURRENCY)
    blocking_processor = anybatch.SqsFifoPartialProcessor(concurrency=CONCURRENCY)
    pt_processor = powertools.SqsFifoPartialProcessor()

    def anybatch_async(ev: dict[str, Any]) -> None:
        coro = anybatch.async_process_partial_response(ev, wait_10ms, async_processor)
        check_no_failures(asyncio.run(coro), "anybatch")

    def anybatch_blocking(ev: dict[str, Any]) -> None:
        response = anybatch.process_partial_response(ev, sleep_10ms, blocking_processor)
        check_no_failures(response, "anybatch")

    def powertools_case(ev: dict[str, Any]) -> None:
        response = powertools.process_partial_response(ev, sleep_10ms, pt_processor)
        check_no_failures(response, "Powertools")

    # Warm every path on a 10-record batch (a full warm-up round would cost ~4 s).
    for case in (anybatch_async, anybatch_blocking, powertools_case):
        case(warm_event)

    say(
        f"{GROUPS} groups x {PER_GROUP} records (record i in group i % {GROUPS}), 10 ms each, "
        f"concurrency={CONCURRENCY} (ideal {IDEAL:.1f} s); best of {ROUNDS} interleaved runs"
    )
    timings = interleave(
        {
            "anybatch": lambda: anybatch_async(event),
            "anybatch-blocking": lambda: anybatch_blocking(event),
            "Powertools": lambda: powertools_case(pt_event),
        },
        rounds=ROUNDS,
        warmup=0,
    )
    ab, abb, pt = timings["anybatch"], timings["anybatch-blocking"], timings["Powertools"]
    scale = PER_GROUP / PT_PER_GROUP
    pt_extrapolated = pt.best * scale
    say(f"  anybatch async     {ab.describe()}  efficiency {efficiency(IDEAL, ab.best):.1f}%")
    say(f"  anybatch blocking  {abb.describe()}  efficiency {efficiency(IDEAL, abb.best):.1f}%")
    say(
        f"  Powertools         {pt.describe()} for {GROUPS} x {PT_PER_GROUP} records "
        f"→ {fmt_time(pt_extrapolated)} for {GROUPS} x {PER_GROUP} (extrapolated x{scale:g})"
    )
    note = (
        f"Powertools (sequential, sync time.sleep handler) EXTRAPOLATED: "
        f"{GROUPS} x {PT_PER_GROUP} records timed, x{scale:g}"
    )
    return [
        efficiency_row(
            "fifo: 10 groups x 100 x 10 ms, async",
            ab.best,
            pt_extrapolated,
            ideal=IDEAL,
            goal_min_percent=GOAL_PERCENT,
            note=note,
        ),
        ratio_row(
            "fifo: same, blocking + sync handler",
            abb.best,
            pt_extrapolated,
            goal_max=None,
            note="anybatch SqsFifoPartialProcessor(concurrency=10), time.sleep handler in "
            f"worker threads: efficiency {efficiency(IDEAL, abb.best):.1f}%",
        ),
    ]


if __name__ == "__main__":
    main("bench_fifo: SQS FIFO, ordered concurrency", run)
