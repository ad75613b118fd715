"""Engine overhead: 10,000 SQS records through a no-op async handler.

anybatch: ``await async_process_partial_response(event, handler, AsyncBatchProcessor(SQS))``.
Powertools: ``async_process_partial_response(event, handler, AsyncBatchProcessor(SQS))``,
which is a *blocking* function that starts its own event loop (``asyncio.run`` outside Lambda)
and gathers one task per record.

Shape of the comparison: Powertools cannot be awaited, so the headline ratio times one whole
blocking call for each: Powertools' call, and ``asyncio.run(anybatch's coroutine)``. Both
therefore pay for creating and closing one event loop (~0.1 ms, under 1% of either figure).
For reference anybatch is also timed awaited inside an already running loop (how an async
application uses it); Powertools has no such form.
"""

from __future__ import annotations

import asyncio
import io
from typing import Any

from _common import (
    Row,
    check_no_failures,
    fmt_ratio,
    info_row,
    interleave,
    interleave_async,
    main,
    ratio_row,
    say,
)
from aws_lambda_powertools.utilities import batch as powertools

import anybatch
from anybatch.observe import EmfMetrics
from anybatch.testing import fake_lambda_context, sqs_event

N_RECORDS = 10_000
ROUNDS = 25
GOAL = 0.2
EMF_GOAL = 1.2


async def noop(record: Any) -> None:
    """The record handler (Powertools passes it as ``record=``)."""


def run() -> list[Row]:
    event = sqs_event(f"message {i}" for i in range(N_RECORDS))
    # Processors are made once and reused, as a Lambda module does across warm invocations.
    ab_processor = anybatch.AsyncBatchProcessor(anybatch.EventType.SQS)
    pt_processor = powertools.AsyncBatchProcessor(powertools.EventType.SQS)

    def anybatch_case() -> None:
        response = asyncio.run(anybatch.async_process_partial_response(event, noop, ab_processor))
        check_no_failures(response, "anybatch")

    def powertools_case() -> None:
        response = powertools.async_process_partial_response(event, noop, pt_processor)
        check_no_failures(response, "Powertools")

    say(f"{N_RECORDS:,} SQS records, no-op async handler; best of {ROUNDS} interleaved runs")
    say("shape: one blocking call each (Powertools runs its own loop; anybatch in asyncio.run)")
    timings = interleave({"anybatch": anybatch_case, "Powertools": powertools_case}, rounds=ROUNDS)
    ab, pt = timings["anybatch"], timings["Powertools"]
    say(f"  anybatch   {ab.describe(N_RECORDS, 'record')}")
    say(f"  Powertools {pt.describe(N_RECORDS, 'record')}")
    say(
        f"  ratio (best) {fmt_ratio(ab.best / pt.best)}   ratio (median) "
        f"{fmt_ratio(ab.median / pt.median)}"
    )

    async def anybatch_in_loop() -> None:
        response = await anybatch.async_process_partial_response(event, noop, ab_processor)
        check_no_failures(response, "anybatch")

    emf_processor = anybatch.AsyncBatchProcessor(
        anybatch.EventType.SQS, observers=[EmfMetrics("bench", stream=io.StringIO())]
    )

    async def anybatch_with_emf() -> None:
        response = await anybatch.async_process_partial_response(event, noop, emf_processor)
        check_no_failures(response, "anybatch")

    # On Lambda every invocation has a context, so the batch has a deadline (checked before
    # each record starts). A long timeout: the deadline never comes within the run.
    context = fake_lambda_context(900.0)

    async def on_lambda() -> None:
        response = await anybatch.async_process_partial_response(
            event, noop, ab_processor, context=context
        )
        check_no_failures(response, "anybatch")

    async def on_lambda_with_emf() -> None:
        response = await anybatch.async_process_partial_response(
            event, noop, emf_processor, context=context
        )
        check_no_failures(response, "anybatch")

    awaited = interleave_async(
        {
            "anybatch": anybatch_in_loop,
            "emf": anybatch_with_emf,
            "lambda": on_lambda,
            "lambda+emf": on_lambda_with_emf,
        },
        rounds=ROUNDS,
    )
    in_loop, emf = awaited["anybatch"], awaited["emf"]
    lam, lam_emf = awaited["lambda"], awaited["lambda+emf"]
    say(f"  anybatch awaited in a running loop: {in_loop.describe(N_RECORDS, 'record')}")
    say(f"  the same with EmfMetrics observing:  {emf.describe(N_RECORDS, 'record')}")
    say(f"  awaited with a Lambda context:      {lam.describe(N_RECORDS, 'record')}")
    say(f"  the same with EmfMetrics observing:  {lam_emf.describe(N_RECORDS, 'record')}")

    return [
        ratio_row(
            "engine: 10k records, no-op async",
            ab.best,
            pt.best,
            goal_max=GOAL,
            note="both timed as one blocking call: Powertools' own asyncio.run vs "
            "asyncio.run(anybatch coroutine)",
        ),
        Row(
            "engine: 10k with context, EmfMetrics vs none",
            lam_emf.best,
            lam.best,
            measured=fmt_ratio(lam_emf.best / lam.best),
            goal=f"≤ {EMF_GOAL:g}x",
            ok=lam_emf.best / lam.best <= EMF_GOAL,
            note="anybatch only, awaited with a Lambda context (a deadline), as on Lambda: "
            "the 'Powertools' column is anybatch without observers",
        ),
        info_row(
            "engine: 10k no context, EmfMetrics vs none",
            emf.best,
            in_loop.best,
            fmt_ratio(emf.best / in_loop.best),
            note="anybatch only, awaited without a context (no deadline): each record's "
            "time is a clock read of its own, where on Lambda it shares the deadline's",
        ),
        info_row(
            "engine: same, awaited in running loop",
            in_loop.best,
            pt.best,
            fmt_ratio(in_loop.best / pt.best),
            note="anybatch only: Powertools cannot be awaited (Powertools column repeated)",
        ),
    ]


if __name__ == "__main__":
    main("bench_engine: engine overhead (async, 10k records)", run)
