"""I/O efficiency and the unbounded case.

(a) I/O: 5,000 records that each wait 10 ms, at ``concurrency=100``: 50 waves of 10 ms, so the
    ideal wall time is 0.5 s. On a real loop even a program with no library loses time to timer
    rounding and to the loop's own per-sleep cost, so the goal is stated against the
    *floor*: the same workload as 100 plain tasks that each sleep 50 times in a row, on the
    same loop, with no library. anybatch must reach ≥ 98% of that floor on asyncio and on trio,
    and ≥ 95% of the ideal on uvloop (whose floor is closer to the ideal).
(b) Unbounded: 5,000 no-op records with ``concurrency=None``, through the documented async entry
    points on a warm loop (anybatch's ``as_lambda_handler``; Powertools' async processor with
    ``LAMBDA_TASK_ROOT`` set, which gathers every record on one reused loop): ≤ 1.0x.
(c) For reference, the I/O workload unbounded in both libraries (5,000 sleeps at once).
"""

from __future__ import annotations

import asyncio
import os
import warnings
from typing import Any

import anyio
import trio
import uvloop
from _common import (
    Row,
    check_no_failures,
    efficiency,
    efficiency_row,
    fmt_time,
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
FLOOR_GOAL = 98.0
UVLOOP_GOAL = 95.0
UNBOUNDED_ROUNDS = 15
UNBOUNDED_GOAL = 1.0


async def wait_10ms(record: Any) -> None:
    await anyio.sleep(SLEEP)


async def asyncio_wait_10ms(record: Any) -> None:
    await asyncio.sleep(SLEEP)


async def noop(record: Any) -> None:
    """A no-op async record handler."""


async def asyncio_floor() -> None:
    async def lane(n: int) -> None:
        for _ in range(n):
            await asyncio.sleep(SLEEP)

    await asyncio.gather(*(lane(N_RECORDS // CONCURRENCY) for _ in range(CONCURRENCY)))


async def trio_floor() -> None:
    async def lane(n: int) -> None:
        for _ in range(n):
            await trio.sleep(SLEEP)

    async with trio.open_nursery() as nursery:
        for _ in range(CONCURRENCY):
            nursery.start_soon(lane, N_RECORDS // CONCURRENCY)


def io_efficiency() -> list[Row]:
    event = sqs_event(f"message {i}" for i in range(N_RECORDS))
    bounded = anybatch.AsyncBatchProcessor(anybatch.EventType.SQS, concurrency=CONCURRENCY)

    async def anybatch_batch(handler: Any) -> None:
        response = await anybatch.async_process_partial_response(event, handler, bounded)
        check_no_failures(response, "anybatch")

    say(
        f"(a) {N_RECORDS:,} records x sleep({SLEEP}) at concurrency={CONCURRENCY} "
        f"(ideal {IDEAL:.2f} s); best of {ROUNDS} interleaved runs"
    )
    timings = interleave(
        {
            "asyncio": lambda: asyncio.run(anybatch_batch(asyncio_wait_10ms)),
            "asyncio-floor": lambda: asyncio.run(asyncio_floor()),
            "trio": lambda: trio.run(anybatch_batch, wait_10ms),
            "trio-floor": lambda: trio.run(trio_floor),
            "uvloop": lambda: uvloop.run(anybatch_batch(asyncio_wait_10ms)),
            "uvloop-floor": lambda: uvloop.run(asyncio_floor()),
        },
        rounds=ROUNDS,
    )
    rows: list[Row] = []
    for loop in ("asyncio", "trio", "uvloop"):
        ab, fl = timings[loop], timings[f"{loop}-floor"]
        of_floor = efficiency(fl.best, ab.best)
        say(
            f"  {loop:<8} anybatch {ab.describe()}  {efficiency(IDEAL, ab.best):.1f}% of the "
            f"ideal; floor {fmt_time(fl.best)} ({efficiency(IDEAL, fl.best):.1f}% of the ideal); "
            f"anybatch = {of_floor:.1f}% of the floor"
        )
        if loop == "uvloop":
            rows.append(
                efficiency_row(
                    f"io: 5k x 10 ms, conc={CONCURRENCY}, uvloop",
                    ab.best,
                    None,
                    ideal=IDEAL,
                    goal_min_percent=UVLOOP_GOAL,
                    note=f"uvloop's bare floor: {efficiency(IDEAL, fl.best):.1f}% of the ideal",
                )
            )
        else:
            rows.append(
                efficiency_row(
                    f"io: 5k x 10 ms, conc={CONCURRENCY}, {loop} vs floor",
                    ab.best,
                    None,
                    ideal=fl.best,
                    goal_min_percent=FLOOR_GOAL,
                    note=f"the floor: {CONCURRENCY} bare {loop} tasks x "
                    f"{N_RECORDS // CONCURRENCY} sleeps, {efficiency(IDEAL, fl.best):.1f}% of "
                    f"the ideal {IDEAL:.2f} s; anybatch {efficiency(IDEAL, ab.best):.1f}%",
                )
            )
    return rows


def unbounded() -> list[Row]:
    event = sqs_event(f"message {i}" for i in range(N_RECORDS))
    ab_processor = anybatch.AsyncBatchProcessor(anybatch.EventType.SQS, concurrency=None)
    pt_processor = powertools.AsyncBatchProcessor(powertools.EventType.SQS)
    loop = asyncio.new_event_loop()

    @anybatch.as_lambda_handler
    async def ab_handler(event: Any, context: Any) -> Any:
        return await anybatch.async_process_partial_response(event, noop, ab_processor)

    def anybatch_case() -> None:
        check_no_failures(ab_handler(event, None), "anybatch")

    def powertools_case() -> None:
        os.environ["LAMBDA_TASK_ROOT"] = "/var/task"
        asyncio.set_event_loop(loop)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                response = powertools.async_process_partial_response(event, noop, pt_processor)
        finally:
            asyncio.set_event_loop(None)
            del os.environ["LAMBDA_TASK_ROOT"]
        check_no_failures(response, "Powertools")

    def io_case(processor: Any) -> None:
        coro = anybatch.async_process_partial_response(event, asyncio_wait_10ms, processor)
        check_no_failures(asyncio.run(coro), "anybatch")

    say(
        f"(b) {N_RECORDS:,} no-op records, concurrency=None, warm documented entry points; "
        f"best of {UNBOUNDED_ROUNDS} interleaved runs"
    )
    try:
        timings = interleave(
            {"anybatch": anybatch_case, "Powertools": powertools_case}, rounds=UNBOUNDED_ROUNDS
        )
    finally:
        loop.close()
    ab, pt = timings["anybatch"], timings["Powertools"]
    say(f"  anybatch   {ab.describe()}")
    say(f"  Powertools {pt.describe()}")

    def pt_io() -> None:
        response = powertools.async_process_partial_response(event, asyncio_wait_10ms, pt_processor)
        check_no_failures(response, "Powertools")

    say(f"(c) {N_RECORDS:,} x sleep({SLEEP}), both unbounded; best of {ROUNDS}")
    io = interleave({"anybatch": lambda: io_case(ab_processor), "Powertools": pt_io}, rounds=ROUNDS)
    say(f"  anybatch   {io['anybatch'].describe()}")
    say(f"  Powertools {io['Powertools'].describe()}")
    return [
        ratio_row(
            "unbounded: 5k no-op records, concurrency=None",
            ab.best,
            pt.best,
            goal_max=UNBOUNDED_GOAL,
            note="warm: anybatch as_lambda_handler; Powertools' gather on one reused loop",
        ),
        info_row(
            "unbounded: 5k x 10 ms, both unbounded",
            io["anybatch"].best,
            io["Powertools"].best,
            f"{io['anybatch'].best / io['Powertools'].best:.3f}x",
            note="asyncio.run per batch in both",
        ),
    ]


def run() -> list[Row]:
    rows = io_efficiency()
    say()
    rows += unbounded()
    return rows


if __name__ == "__main__":
    main("bench_io: I/O efficiency and the unbounded case", run)
