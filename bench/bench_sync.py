"""The blocking facade: ``BatchProcessor`` + ``process_partial_response``.

(a) Overhead: 10,000 SQS records through a no-op *sync* handler at ``concurrency=1`` (the
    default): anybatch runs them inline (no loop, no thread), as Powertools' ``BatchProcessor``.
(b) Threads: 200 records x ``time.sleep(0.01)`` at ``concurrency=20``: ideal 0.1 s. Powertools
    runs sync handlers one after another; its figure is timed on 20 records and multiplied by
    10 (the handler is sleep-bound, so that is linear), and marked as extrapolated.
(c) Warm invocations: 100 successive blocking calls with an *async* handler (10 records each),
    as a warm Lambda makes them. anybatch runs each call on its long-lived loop (on the main
    thread: a loop of its own, entered per call);
    compared per call with ``asyncio.run(async_process_partial_response(...))`` per call (the
    same anybatch work, a new loop each time), with Powertools' async processor as it runs
    outside Lambda (``asyncio.run`` per call), and as it runs on Lambda (``LAMBDA_TASK_ROOT``
    set: one loop reused through ``get_event_loop``).
"""

from __future__ import annotations

import asyncio
import os
import time
import warnings
from collections.abc import Callable
from typing import Any

from _common import (
    Row,
    check_no_failures,
    efficiency,
    efficiency_row,
    fmt_ratio,
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

OVERHEAD_RECORDS = 10_000
OVERHEAD_ROUNDS = 41
OVERHEAD_GOAL = 1.0

THREAD_RECORDS = 200
THREAD_SLEEP = 0.01
THREAD_CONCURRENCY = 20
THREAD_IDEAL = THREAD_RECORDS / THREAD_CONCURRENCY * THREAD_SLEEP
THREAD_PT_RECORDS = 20  # Powertools is sequential: time 20 records, extrapolate to 200
THREAD_ROUNDS = 5
THREAD_GOAL_PERCENT = 80.0

WARM_CALLS = 100
WARM_RECORDS = 10
WARM_ROUNDS = 7


def noop_sync(record: Any) -> None:
    """A record handler (Powertools passes it as ``record=``)."""


async def noop_async(record: Any) -> None:
    """An async record handler."""


def sleep_10ms(record: Any) -> None:
    time.sleep(THREAD_SLEEP)


def overhead() -> list[Row]:
    event = sqs_event(f"message {i}" for i in range(OVERHEAD_RECORDS))
    ab_processor = anybatch.BatchProcessor(anybatch.EventType.SQS)
    pt_processor = powertools.BatchProcessor(powertools.EventType.SQS)

    def anybatch_case() -> None:
        response = anybatch.process_partial_response(event, noop_sync, ab_processor)
        check_no_failures(response, "anybatch")

    def powertools_case() -> None:
        response = powertools.process_partial_response(event, noop_sync, pt_processor)
        check_no_failures(response, "Powertools")

    say(
        f"(a) {OVERHEAD_RECORDS:,} records, no-op sync handler, concurrency=1; "
        f"best of {OVERHEAD_ROUNDS} interleaved runs"
    )
    timings = interleave(
        {"anybatch": anybatch_case, "Powertools": powertools_case}, rounds=OVERHEAD_ROUNDS
    )
    ab, pt = timings["anybatch"], timings["Powertools"]
    say(f"  anybatch   {ab.describe(OVERHEAD_RECORDS, 'record')}")
    say(f"  Powertools {pt.describe(OVERHEAD_RECORDS, 'record')}")
    return [ratio_row("sync: 10k records, no-op sync", ab.best, pt.best, goal_max=OVERHEAD_GOAL)]


def threads() -> list[Row]:
    event = sqs_event(f"message {i}" for i in range(THREAD_RECORDS))
    pt_event = sqs_event(f"message {i}" for i in range(THREAD_PT_RECORDS))
    ab_processor = anybatch.BatchProcessor(anybatch.EventType.SQS, concurrency=THREAD_CONCURRENCY)
    pt_processor = powertools.BatchProcessor(powertools.EventType.SQS)

    def anybatch_case() -> None:
        response = anybatch.process_partial_response(event, sleep_10ms, ab_processor)
        check_no_failures(response, "anybatch")

    def powertools_case() -> None:
        response = powertools.process_partial_response(pt_event, sleep_10ms, pt_processor)
        check_no_failures(response, "Powertools")

    say(
        f"(b) {THREAD_RECORDS} records x time.sleep({THREAD_SLEEP}), concurrency="
        f"{THREAD_CONCURRENCY} (ideal {fmt_time(THREAD_IDEAL)}); best of {THREAD_ROUNDS}"
    )
    timings = interleave(
        {"anybatch": anybatch_case, "Powertools": powertools_case}, rounds=THREAD_ROUNDS
    )
    ab, pt = timings["anybatch"], timings["Powertools"]
    scale = THREAD_RECORDS / THREAD_PT_RECORDS
    pt_extrapolated = pt.best * scale
    say(
        f"  anybatch   {ab.describe()}  efficiency {efficiency(THREAD_IDEAL, ab.best):.1f}% "
        f"(median {efficiency(THREAD_IDEAL, ab.median):.1f}%)"
    )
    say(
        f"  Powertools {pt.describe()} for {THREAD_PT_RECORDS} records "
        f"→ {fmt_time(pt_extrapolated)} for {THREAD_RECORDS} (extrapolated x{scale:g})"
    )
    return [
        efficiency_row(
            f"sync: 200 x sleep 10 ms, conc={THREAD_CONCURRENCY}",
            ab.best,
            pt_extrapolated,
            ideal=THREAD_IDEAL,
            goal_min_percent=THREAD_GOAL_PERCENT,
            note=f"Powertools (sequential) EXTRAPOLATED: {THREAD_PT_RECORDS} records timed, "
            f"x{scale:g}",
        )
    ]


def warm() -> list[Row]:
    event = sqs_event(f"message {i}" for i in range(WARM_RECORDS))
    # The same processor configuration on both anybatch paths: concurrency=1.
    portal_processor = anybatch.BatchProcessor(anybatch.EventType.SQS)
    run_processor = anybatch.AsyncBatchProcessor(anybatch.EventType.SQS, concurrency=1)
    pt_processor = powertools.AsyncBatchProcessor(powertools.EventType.SQS)
    lambda_loop = asyncio.new_event_loop()  # the loop a warm Lambda keeps for Powertools

    def calls(one: Callable[[], dict[str, Any]], what: str) -> Callable[[], None]:
        def sample() -> None:
            for _ in range(WARM_CALLS):
                check_no_failures(one(), what)

        return sample

    def anybatch_portal() -> dict[str, Any]:
        return dict(anybatch.process_partial_response(event, noop_async, portal_processor))

    def anybatch_asyncio_run() -> dict[str, Any]:
        coro = anybatch.async_process_partial_response(event, noop_async, run_processor)
        return dict(asyncio.run(coro))

    def powertools_call() -> dict[str, Any]:
        return dict(powertools.async_process_partial_response(event, noop_async, pt_processor))

    run_powertools = calls(powertools_call, "Powertools")

    def powertools_on_lambda() -> None:
        # Powertools reuses get_event_loop() when LAMBDA_TASK_ROOT is set; set once per
        # sample (not per call) so the switch costs nothing per call.
        os.environ["LAMBDA_TASK_ROOT"] = "/var/task"
        asyncio.set_event_loop(lambda_loop)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                run_powertools()
        finally:
            asyncio.set_event_loop(None)
            del os.environ["LAMBDA_TASK_ROOT"]

    say(
        f"(c) warm invocations: {WARM_CALLS} blocking calls x {WARM_RECORDS} records, no-op "
        f"async handler; best of {WARM_ROUNDS} interleaved samples"
    )
    try:
        timings = interleave(
            {
                "portal": calls(anybatch_portal, "anybatch"),
                "asyncio.run": calls(anybatch_asyncio_run, "anybatch"),
                "Powertools": run_powertools,
                "Powertools-lambda": powertools_on_lambda,
            },
            rounds=WARM_ROUNDS,
        )
    finally:
        lambda_loop.close()
    per_call = {name: s.best / WARM_CALLS for name, s in timings.items()}
    labels = {
        "portal": "anybatch process_partial_response (long-lived loop)",
        "asyncio.run": "anybatch asyncio.run(async_process_partial_response) per call",
        "Powertools": "Powertools async_process_partial_response (asyncio.run per call)",
        "Powertools-lambda": "Powertools, LAMBDA_TASK_ROOT set (one reused loop)",
    }
    for name, label in labels.items():
        say(
            f"  {fmt_time(per_call[name]):>9}/call  {label}  "
            f"(median {fmt_time(timings[name].median / WARM_CALLS)})"
        )
    portal = per_call["portal"]
    say(
        f"  portal / asyncio.run: {fmt_ratio(portal / per_call['asyncio.run'])}   "
        f"portal / Powertools: {fmt_ratio(portal / per_call['Powertools'])}   "
        f"portal / Powertools on Lambda: {fmt_ratio(portal / per_call['Powertools-lambda'])}"
    )
    return [
        info_row(
            "warm: long-lived loop vs asyncio.run per call",
            portal,
            None,
            fmt_ratio(portal / per_call["asyncio.run"]),
            note=f"per call; anybatch's own asyncio.run(...) per call: "
            f"{fmt_time(per_call['asyncio.run'])}",
        ),
        ratio_row(
            "warm: long-lived loop vs Powertools (asyncio.run)",
            portal,
            per_call["Powertools"],
            goal_max=None,
        ),
        ratio_row(
            "warm: long-lived loop vs Powertools on Lambda",
            portal,
            per_call["Powertools-lambda"],
            goal_max=None,
            note="Powertools with LAMBDA_TASK_ROOT set: run_until_complete on one reused loop",
        ),
    ]


def run() -> list[Row]:
    rows = overhead()
    say()
    rows += threads()
    say()
    rows += warm()
    return rows


if __name__ == "__main__":
    main("bench_sync: blocking facade", run)
