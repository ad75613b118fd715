"""The engine: runs a batch's records under a :class:`Schedule`, knowing no source and no Lambda.

Layout: ``_schedule`` is the state machine (what starts next, what is skipped, how each record
ended), I/O-free and tested without a loop. The drivers run it:

* ``_inline``: one record after another in the calling thread (a sync handler, blocking);
* ``_asyncio``: native asyncio tasks, started only as handlers really wait;
* ``_anyio``: a fixed pool of anyio workers (trio, and the reference driver);
* ``_threads``: sync handlers under either async driver, each call in a worker thread.

Two async drivers, for a measured reason: on asyncio (what Lambda runs) an anyio task group
and its workers cost several times what native tasks do per invocation, and importing
anyio's asyncio backend costs a cold start about 30 ms; trio has only anyio.

**The contract every driver keeps** (``tests/test_engine_contract.py`` proves it on each):

1. Records start as the schedule says: :meth:`Schedule.next` / :meth:`Schedule.finish`, or,
   for an unconstrained schedule, :meth:`Schedule.claim_all`'s fast path; never more than
   ``concurrency`` at once.
2. An :class:`Exception` from a handler fails its record only (``FAILURE``). A cancellation
   that no scope or timer of the engine asked for (the handler awaited a task somebody else
   cancelled) is that record's failure too.
3. ``record_timeout`` ends a record as ``TIMEOUT`` with a ``RecordTimeoutError``.
4. At the deadline (``time_left``) no record starts (``NOT_STARTED``), and records in flight
   are cancelled or abandoned (``CANCELLED``). Nothing outlives its time: a handler that
   swallows its cancellation ends at its next checkpoint (anyio) or is abandoned (asyncio,
   threads), and the driver returns on time.
5. Work abandoned while it may still run keeps its ordering key: ``finish(..., held=True)``
   skips the key's later records rather than start one beside it.
6. Any other :class:`BaseException` (``KeyboardInterrupt``, ``SystemExit``) stops every
   record and propagates from the driver, after its workers have stopped.
7. With :meth:`Schedule.time_records`, each record's handler time (and end) is noted.
8. An async *func* returns an awaitable, or a :class:`Resolved` value when the record ended
   without waiting: the driver takes its ``.value`` without an ``await``.

On native asyncio the caller may also hand :class:`OnTasks`: records then run directly in
their worker task's context while they leave it as they found it (see ``anybatch._context``).

:func:`drive` is the one place that picks an async driver; :func:`runs_inline` says when the
blocking facade needs none.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from ._inline import run_each_inline, run_inline
from ._schedule import (
    CANCELLED,
    FAILURE,
    NOT_STARTED,
    RUNNING,
    SKIPPED_KEY,
    SKIPPED_STOP,
    SUCCESS,
    TIMEOUT,
    WAIT,
    OnTasks,
    Resolved,
    Schedule,
)

__all__ = [
    "CANCELLED",
    "FAILURE",
    "NOT_STARTED",
    "RUNNING",
    "SKIPPED_KEY",
    "SKIPPED_STOP",
    "SUCCESS",
    "TIMEOUT",
    "WAIT",
    "OnTasks",
    "Resolved",
    "Schedule",
    "asyncio_running",
    "drive",
    "run_each_inline",
    "run_inline",
    "runs_inline",
]


def asyncio_running() -> bool:
    """Whether this thread runs an asyncio loop (so the native asyncio driver applies)."""
    asyncio = sys.modules.get("asyncio")
    return asyncio is not None and asyncio._get_running_loop() is not None


def runs_inline(is_async: bool, concurrency: int | None, record_timeout: float | None) -> bool:
    """Whether a blocking call runs its records inline: no loop, no thread.

    A sync handler, one record at a time, with no timeout (inline work cannot be timed out).
    """
    return not is_async and concurrency == 1 and record_timeout is None


def drive(
    schedule: Schedule,
    func: Callable[[Any], Any],
    args: Sequence[Any],
    *,
    is_async: bool,
    concurrency: int | None,
    record_timeout: float | None,
    time_left: float | None,
    on_tasks: OnTasks | None = None,
) -> Awaitable[None]:
    """Run *schedule* on the running loop: ``func(args[index])`` for each record it starts.

    A sync *func* runs in worker threads. The native asyncio driver serves an asyncio loop
    (anyio is not imported on that path); anyio's pool serves trio. *on_tasks* is for async
    records on native asyncio only. It returns the pool's own coroutine, to await: a
    coroutine of its own would be one frame more for every batch in flight.
    """
    running = None
    if not is_async:
        from ._threads import in_threads

        func, running = in_threads(func, args)
        args = range(len(args))
    if asyncio_running():
        from ._asyncio import run_pool_asyncio

        return run_pool_asyncio(
            schedule,
            func,
            args,
            concurrency=concurrency,
            record_timeout=record_timeout,
            time_left=time_left,
            running=running,
            on_tasks=on_tasks,
        )
    if on_tasks is not None:  # anyio's pool on asyncio: each record in its own copy
        func, args = _isolated(on_tasks), range(len(args))
    from ._anyio import run_pool

    return run_pool(
        schedule,
        func,
        args,
        concurrency=concurrency,
        record_timeout=record_timeout,
        time_left=time_left,
        running=running,
    )


def _isolated(on_tasks: OnTasks) -> Callable[[int], Any]:
    """*on_tasks*' records each in its own copy of the context, by index (no task checks)."""
    isolate, starts = on_tasks.isolate, on_tasks.starts
    if starts is None:
        return isolate
    clock = time.monotonic

    def timed(index: int) -> Any:
        starts[index] = clock()
        return isolate(index)

    return timed
