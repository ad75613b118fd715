"""I/O efficiency: 5,000 records that each wait 10 ms (``await asyncio.sleep(0.01)``).

anybatch runs them at ``concurrency=100``: 50 waves of 10 ms, so the ideal wall time is 0.5 s;
efficiency = ideal / measured. Powertools gathers all 5,000 at once (no limit), so its time is
shown for reference only: it is not the same workload for the downstream service (5,000
simultaneous calls instead of 100). anybatch with ``concurrency=None`` (unbounded, the same
shape as Powertools) is timed too, for an apples-to-apples ratio.

The *floor* is the same workload with no batch library at all: ``asyncio.gather`` of 100
plain tasks that each sleep 50 times in a row. No library can beat it: it shows what asyncio
itself loses to timer rounding (epoll waits in whole milliseconds) and to its own per-sleep
cost, which on a slow machine already costs several percent of the 0.5 s ideal. anybatch's
efficiency is printed against the ideal (the goal) and against this floor.

Shape: each case is one blocking call, as in ``bench_engine`` (Powertools' own loop;
``asyncio.run`` of anybatch's coroutine; ``asyncio.run`` of the floor).
"""

from __future__ import annotations

import asyncio
from typing import Any

from _common import (
    Row,
    check_no_failures,
    efficiency,
    efficiency_row,
    info_row,
    interleave,
    main,
    ratio_row,
    say,
)
from aws_lambda_powertools.utilities import batch as powertools

import anybatch
from anybatch.testing import sqs_event

N_RECORDS = 5_000
SLEEP = 0.01
CONCURRENCY = 100
IDEAL = N_RECORDS / CONCURRENCY * SLEEP
ROUNDS = 5
GOAL_PERCENT = 95.0


async def wait_10ms(record: Any) -> None:
    await asyncio.sleep(SLEEP)


async def floor() -> None:
    """The workload without a batch library: CONCURRENCY tasks, each sleeping in a row."""

    async def lane(n: int) -> None:
        for _ in range(n):
            await asyncio.sleep(SLEEP)

    await asyncio.gather(*(lane(N_RECORDS // CONCURRENCY) for _ in range(CONCURRENCY)))


def run() -> list[Row]:
    event = sqs_event(f"message {i}" for i in range(N_RECORDS))
    bounded = anybatch.AsyncBatchProcessor(anybatch.EventType.SQS, concurrency=CONCURRENCY)
    unbounded = anybatch.AsyncBatchProcessor(anybatch.EventType.SQS, concurrency=None)
    pt_processor = powertools.AsyncBatchProcessor(powertools.EventType.SQS)

    def anybatch_case(processor: anybatch.AsyncBatchProcessor[Any]) -> None:
        coro = anybatch.async_process_partial_response(event, wait_10ms, processor)
        check_no_failures(asyncio.run(coro), "anybatch")

    def powertools_case() -> None:
        response = powertools.async_process_partial_response(event, wait_10ms, pt_processor)
        check_no_failures(response, "Powertools")

    say(
        f"{N_RECORDS:,} records x await asyncio.sleep({SLEEP}); anybatch at concurrency="
        f"{CONCURRENCY} (ideal {IDEAL:.2f} s); best of {ROUNDS} interleaved runs"
    )
    timings = interleave(
        {
            "anybatch": lambda: anybatch_case(bounded),
            "anybatch-unbounded": lambda: anybatch_case(unbounded),
            "Powertools": powertools_case,
            "floor": lambda: asyncio.run(floor()),
        },
        rounds=ROUNDS,
    )
    ab, abu, pt = timings["anybatch"], timings["anybatch-unbounded"], timings["Powertools"]
    fl = timings["floor"]
    say(
        f"  anybatch (concurrency={CONCURRENCY}) {ab.describe()}  "
        f"efficiency {efficiency(IDEAL, ab.best):.1f}% (median "
        f"{efficiency(IDEAL, ab.median):.1f}%)"
    )
    say(f"  anybatch (concurrency=None)  {abu.describe()}")
    say(f"  Powertools (gathers all)     {pt.describe()}")
    say(
        f"  floor: bare asyncio          {fl.describe()}  "
        f"efficiency {efficiency(IDEAL, fl.best):.1f}% of the ideal"
    )
    say(
        f"  anybatch vs floor: {efficiency(fl.best, ab.best):.1f}% "
        f"(+{(ab.best - fl.best) / N_RECORDS * 1e6:.1f} µs per record over bare asyncio)"
    )
    return [
        efficiency_row(
            f"io: 5k x 10 ms, concurrency={CONCURRENCY}",
            ab.best,
            pt.best,
            ideal=IDEAL,
            goal_min_percent=GOAL_PERCENT,
            note=f"ideal {IDEAL:.2f} s; Powertools runs all 5,000 at once (reference only)",
        ),
        info_row(
            "io: bare-asyncio floor, same workload",
            fl.best,
            None,
            f"eff {efficiency(IDEAL, fl.best):.1f}%",
            note=f"no library: {CONCURRENCY} tasks x {N_RECORDS // CONCURRENCY} sleeps; "
            f"anybatch reaches {efficiency(fl.best, ab.best):.1f}% of this floor",
        ),
        ratio_row(
            "io: 5k x 10 ms, both unbounded",
            abu.best,
            pt.best,
            goal_max=None,
            note="anybatch concurrency=None: the same shape as Powertools' gather",
        ),
    ]


if __name__ == "__main__":
    main("bench_io: I/O efficiency (5k x 10 ms sleeps)", run)
