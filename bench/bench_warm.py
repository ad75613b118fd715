"""The common case: warm invocations of the documented Lambda entry points, by batch size.

SQS hands a function 10 records by default and Kinesis 100, so those are the sizes that
matter most; 1, 1,000 and 10,000 frame them. Each path is timed per invocation, warm (the
processor and the loop exist already, as on a warm Lambda), with a no-op record handler, for
anybatch and Powertools side by side:

* ``async``: anybatch's documented async form, ``@as_lambda_handler`` on an ``async def``
  that awaits ``async_process_partial_response`` with ``AsyncBatchProcessor(EventType.SQS)``;
  Powertools' ``async_process_partial_response`` with its ``AsyncBatchProcessor``, as it runs
  on Lambda (``LAMBDA_TASK_ROOT`` set: ``run_until_complete`` on one reused loop).
* ``sync``: ``process_partial_response`` with ``BatchProcessor(EventType.SQS)`` and a sync
  handler, in both libraries.
* ``sync-async``: anybatch's ``process_partial_response`` with ``BatchProcessor`` and an
  async handler (its long-lived loop), against Powertools' async path as above (its only way
  to run an async handler).

The rows judged are the goals of the performance issue: async and sync-async at 10 and 100
records ≤ 1.0x, sync at 10 records ≤ 1.0x.
"""

from __future__ import annotations

import asyncio
import os
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from _common import Row, check_no_failures, fmt_ratio, fmt_time, interleave, main, ratio_row, say
from aws_lambda_powertools.utilities import batch as powertools

import anybatch
from anybatch.testing import fake_lambda_context, sqs_event

SIZES = (1, 10, 100, 1_000, 10_000)
JUDGED = {("async", 10), ("async", 100), ("sync", 10), ("sync-async", 10), ("sync-async", 100)}
GOAL = 1.0
#: Each sample runs this many records' worth of invocations (at least one invocation).
RECORDS_PER_SAMPLE = 4_000


def rounds_for(size: int) -> int:
    return 11 if size <= 100 else 5


def noop_sync(record: Any) -> None:
    """A no-op record handler (Powertools passes it as ``record=``)."""


async def noop_async(record: Any) -> None:
    """A no-op async record handler."""


@contextmanager
def on_lambda(loop: asyncio.AbstractEventLoop) -> Iterator[None]:
    """Powertools' async processor as on Lambda: LAMBDA_TASK_ROOT set, one reused loop."""
    os.environ["LAMBDA_TASK_ROOT"] = "/var/task"
    asyncio.set_event_loop(loop)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            yield
    finally:
        asyncio.set_event_loop(None)
        del os.environ["LAMBDA_TASK_ROOT"]


def paths(size: int, loop: asyncio.AbstractEventLoop) -> dict[str, dict[str, Callable[[], Any]]]:
    """For each path, the one-invocation callables of both libraries."""
    event = sqs_event(f"message {i}" for i in range(size))
    context = fake_lambda_context(900)

    ab_async = anybatch.AsyncBatchProcessor(anybatch.EventType.SQS)

    @anybatch.as_lambda_handler
    async def ab_async_handler(event: Any, context: Any) -> Any:
        return await anybatch.async_process_partial_response(event, noop_async, ab_async, context)

    ab_sync = anybatch.BatchProcessor(anybatch.EventType.SQS)
    ab_sync_async = anybatch.BatchProcessor(anybatch.EventType.SQS)
    pt_sync = powertools.BatchProcessor(powertools.EventType.SQS)
    pt_async = powertools.AsyncBatchProcessor(powertools.EventType.SQS)

    def pt_async_handler() -> Any:
        return powertools.async_process_partial_response(event, noop_async, pt_async, context)

    return {
        "async": {
            "anybatch": lambda: ab_async_handler(event, context),
            "Powertools": pt_async_handler,
        },
        "sync": {
            "anybatch": lambda: anybatch.process_partial_response(
                event, noop_sync, ab_sync, context
            ),
            "Powertools": lambda: powertools.process_partial_response(
                event, noop_sync, pt_sync, context
            ),
        },
        "sync-async": {
            "anybatch": lambda: anybatch.process_partial_response(
                event, noop_async, ab_sync_async, context
            ),
            "Powertools": pt_async_handler,
        },
    }


def measure(size: int, path: str, one: dict[str, Callable[[], Any]], loop: Any) -> dict[str, float]:
    calls = max(1, RECORDS_PER_SAMPLE // size)

    def sample(name: str) -> Callable[[], None]:
        invoke = one[name]

        def run() -> None:
            for _ in range(calls):
                check_no_failures(invoke(), name)

        if name == "Powertools" and path != "sync":

            def on_lambda_run() -> None:
                with on_lambda(loop):
                    run()

            return on_lambda_run
        return run

    timings = interleave({name: sample(name) for name in one}, rounds=rounds_for(size), warmup=2)
    return {name: s.best / calls for name, s in timings.items()}


def chart(table: dict[tuple[str, int], dict[str, float]], path: str) -> None:
    """Draw cost per invocation against batch size, both libraries, log-log, into *path*."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    styles = {"async": "o", "sync": "s", "sync-async": "^"}
    figure, axes = plt.subplots(figsize=(8, 5), dpi=120)
    for path_name, marker in styles.items():
        for library, line in (("anybatch", "-"), ("Powertools", "--")):
            xs = [size for size in SIZES if (path_name, size) in table]
            ys = [table[path_name, size][library] * 1e6 for size in xs]
            axes.plot(xs, ys, line, marker=marker, label=f"{library}, {path_name}")
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("records per invocation")
    axes.set_ylabel("time per invocation (µs), warm, no-op handler")
    axes.set_title("Warm invocations: anybatch vs Powertools (lower is better)")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    say(f"chart written to {path}")


def run(chart_path: str | None = None) -> list[Row]:
    loop = asyncio.new_event_loop()  # the loop a warm Lambda keeps for Powertools
    rows: list[Row] = []
    table: dict[tuple[str, int], dict[str, float]] = {}
    try:
        for size in SIZES:
            for path, one in paths(size, loop).items():
                table[path, size] = measure(size, path, one, loop)
    finally:
        loop.close()
    if chart_path:
        chart(table, chart_path)
    say("per invocation, warm, no-op handler (best of interleaved samples)")
    say(f"  {'path':<11} {'records':>8} {'anybatch':>10} {'Powertools':>11} {'ratio':>8}")
    for (path, size), times in table.items():
        ab, pt = times["anybatch"], times["Powertools"]
        say(
            f"  {path:<11} {size:>8,} {fmt_time(ab):>10} {fmt_time(pt):>11} {fmt_ratio(ab / pt):>8}"
        )
        judged = (path, size) in JUDGED
        rows.append(
            ratio_row(
                f"warm {path}: {size:,} records",
                ab,
                pt,
                goal_max=GOAL if judged else None,
                note="per invocation",
            )
        )
    return rows


if __name__ == "__main__":
    import sys

    # --chart PATH (run_all.py passes the docs' image): also draw the matrix.
    argv = sys.argv[1:]
    chart_to = None
    if "--chart" in argv:
        at = argv.index("--chart")
        chart_to = argv[at + 1]
        del argv[at : at + 2]
    main("bench_warm: warm invocations by batch size", lambda: run(chart_to), argv)
