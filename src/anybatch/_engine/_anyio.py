"""The async driver of :class:`~anybatch._schedule.Schedule`: a fixed pool of anyio workers.

Never one task per record: ``concurrency`` workers pull record indices from the schedule until
it has none left. Per record this costs a method call and an ``await`` of the handler, no task,
no limiter. The module imports anyio, so the facades import it only when they run async work:
the blocking inline path and ``import anybatch`` never pay for it.
"""

from __future__ import annotations

import functools
import math
import sys
from collections.abc import Awaitable, Callable, Container, Sequence
from time import monotonic
from typing import Any

import anyio

from .._exceptions import RecordTimeoutError
from ._schedule import (
    FAILURE,
    NOT_STARTED,
    RUNNING,
    SUCCESS,
    TIMEOUT,
    WAIT,
    Resolved,
    Schedule,
    is_asyncio_cancellation,
)

if sys.version_info < (3, 11):  # pragma: no cover - exercised on 3.10 only
    from exceptiongroup import BaseExceptionGroup

__all__ = ["run_pool"]


async def run_pool(
    schedule: Schedule,
    func: Callable[[Any], Awaitable[Any]],
    args: Sequence[Any],
    *,
    concurrency: int | None,
    record_timeout: float | None = None,
    time_left: float | None = None,
    running: Container[int] | None = None,
) -> None:
    """Run every record *schedule* lets start, at most *concurrency* at a time.

    Starting record ``index`` awaits ``func(args[index])``. An :class:`Exception` fails that
    record only. *record_timeout* (seconds) bounds each call; *time_left* (seconds) is the
    batch deadline: then no record starts and calls in flight are cancelled. Cancellation from
    outside and other :class:`BaseException` s propagate after every worker has stopped.
    *running* holds the indices whose work goes on after the call returned (a worker thread
    abandoned at its timeout): such a record keeps its ordering key held.

    anyio re-delivers a cancellation at every checkpoint, so a handler that swallows one
    ends at its next ``await``.
    """
    workers = schedule.n if concurrency is None else min(concurrency, schedule.n)
    if workers <= 0:
        return
    current_time = anyio.current_time
    effective_deadline = anyio.current_effective_deadline
    deadline = math.inf if time_left is None else current_time() + time_left
    timed = time_left is not None
    durations, ends = schedule.durations, schedule.ends
    # An unconstrained schedule (no keys, no stop policy) starts records in order and nothing
    # else: the workers share one index iterator and write outcomes directly (the schedule's
    # claim_all fast path), instead of two schedule calls per record. A keyed one decides
    # through next()/finish().
    free = schedule.unconstrained
    kinds, values = schedule.claim_all() if free else (schedule.kinds, schedule.values)
    take = functools.partial(next, iter(range(schedule.n)), None) if free else schedule.next
    finish = schedule.finish
    held = (() if running is None else running).__contains__
    wake = anyio.Event()
    waiting = 0
    cancelled = anyio.get_cancelled_exc_class()
    fatal: list[BaseException] = []
    group = anyio.create_task_group()

    async def worker() -> None:
        nonlocal wake, waiting
        while True:
            if timed and current_time() >= deadline:
                schedule.stop(NOT_STARTED)
                return
            index = take()
            if index is None:
                return
            if index == WAIT:
                waiting += 1
                try:
                    await wake.wait()
                finally:
                    waiting -= 1
                continue
            kinds[index] = RUNNING
            started = monotonic() if durations is not None else 0.0  # the timings' clock
            try:
                if record_timeout is None:
                    step = func(args[index])
                    result = step[0] if type(step) is Resolved else await step
                    kind = SUCCESS
                else:
                    kind, result = TIMEOUT, RecordTimeoutError(record_timeout)
                    with anyio.move_on_after(record_timeout):
                        step = func(args[index])
                        result = step[0] if type(step) is Resolved else await step
                        kind = SUCCESS
            except Exception as exc:
                kind, result = FAILURE, exc
            except cancelled as exc:
                if effective_deadline() <= current_time():
                    raise  # a cancel scope around the handler was cancelled: ours or the caller's
                # A cancellation that no scope asked for (the handler awaited a task somebody
                # else cancelled) is that record's failure, never the deadline's.
                kind, result = FAILURE, exc
            except BaseException as exc:
                if not is_asyncio_cancellation(exc):
                    # KeyboardInterrupt, SystemExit...: stop every worker and raise it in the
                    # caller's task. Raised out of a worker task, asyncio would let it escape
                    # the event loop and leave the other workers unfinished.
                    fatal.append(exc)
                    group.cancel_scope.cancel()
                    return
                # asyncio's CancelledError under trio (a thread's, a handler's own): no scope
                # of trio's asked for it, so it is that record's failure.
                kind, result = FAILURE, exc
            if durations is not None:
                ended = monotonic()
                durations[index] = ended - started
                if ends is not None:
                    ends[index] = ended
            if free:
                kinds[index] = kind
                values[index] = result
            else:
                finish(index, kind, result, kind == TIMEOUT and held(index))
                if waiting:
                    # A key may have unblocked, a stop may have come, or nothing is left:
                    # waiting workers look again.
                    wake.set()
                    wake = anyio.Event()

    try:
        with anyio.CancelScope(deadline=deadline) as deadline_scope:
            async with group:
                for _ in range(workers):
                    group.start_soon(worker)
    except BaseExceptionGroup as group_error:  # pragma: no cover - a bug of the engine's own
        if len(group_error.exceptions) == 1:
            raise group_error.exceptions[0] from None
        raise
    if fatal:
        raise fatal[0]
    if deadline_scope.cancelled_caught:
        schedule.stop(NOT_STARTED)
