"""The inline driver: records run one after another in the calling thread, no event loop.

The blocking facade's path for a sync handler at ``concurrency=1`` without ``record_timeout``
(a record running inline cannot be interrupted, so it can have no timeout): exactly the
incumbent's sequential loop, with the deadline checked before each record starts. Each record
runs in its own copy of the caller's context, and ``schedule.running()`` says which one runs.

The loop itself runs inside a copy (one ``Context.run`` a batch, not one a record: a record
called from Python code is a call the interpreter inlines, one called through ``Context.run``
is not). The caller may *bind* a context variable for the batch: it is set in that copy
only, never in the caller's context, so nothing is left to reset and no other batch sees
it. After each record the copy is compared with a snapshot taken as the loop began, in O(1)
while they share their mapping; a record that changed it ends the loop, which resumes in a
fresh copy of the snapshot. (A value whose ``==`` itself sets a context variable sets it in
the copy, where the next record sees it: comparing outside the copy would cost the very call
per record that this saves.)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextvars import Context, ContextVar, copy_context
from typing import Any

from ._schedule import (
    FAILURE,
    IN_ORDER,
    NOT_STARTED,
    RUNNING,
    SUCCESS,
    Schedule,
    is_asyncio_cancellation,
)

__all__ = ["Bind", "run_each_inline", "run_inline"]

#: A context variable and the value a batch's records see in it.
Bind = tuple[ContextVar[Any], Any]


def run_inline(
    schedule: Schedule,
    func: Callable[[Any], Any],
    args: Sequence[Any],
    deadline: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    bind: Bind | None = None,
) -> None:
    """Drive *schedule* sequentially in this thread: the blocking path with no event loop.

    Each record started runs ``func(args[index])``, in its own copy of the caller's context
    (with *bind* set in it). An :class:`Exception` fails that record only; any other
    :class:`BaseException` propagates. With a *deadline* (on *clock*), no record starts once
    it has passed; the one running cannot be interrupted.
    """
    # schedule.unconstrained, read without a call:
    if schedule._key_of is None and not schedule.stop_on_failure and not schedule._cursor:  # pyright: ignore[reportPrivateUsage]
        run_each_inline(schedule, func, args, deadline, clock, bind)
        return
    _in_copies(_next_records, schedule, func, args, deadline, clock, bind)


_Loop = Callable[..., bool]


def _in_copies(
    loop: _Loop,
    schedule: Schedule,
    func: Callable[[Any], Any],
    args: Any,
    deadline: float | None,
    clock: Callable[[], float],
    bind: Bind | None,
) -> None:
    """Run *loop* in a copy of this context, and again in a fresh one each time it ends one.

    *bind* is set in the first copy (the caller's context is left as it is), and the copies
    after it start from a snapshot of that one. *loop* returns whether a record changed the
    copy it ran in (``False``: the batch is over).
    """
    context = copy_context()
    if bind is not None:
        context.run(bind[0].set, bind[1])
    pristine = context.copy()
    while context.run(loop, context, pristine, schedule, func, args, deadline, clock):
        context = pristine.copy()


def _next_records(
    context: Context,
    pristine: Context,
    schedule: Schedule,
    func: Callable[[Any], Any],
    args: Sequence[Any],
    deadline: float | None,
    clock: Callable[[], float],
) -> bool:
    """:func:`run_inline`'s loop, run in *context* (see :func:`_in_copies`)."""
    while True:
        if deadline is not None and clock() >= deadline:
            schedule.stop(NOT_STARTED)
        index = schedule.next()
        if index is None:
            return False
        started = clock()
        try:
            schedule.current = index
            result = func(args[index])
        except Exception as exc:
            kind, result = FAILURE, exc
        except BaseException as exc:
            if not is_asyncio_cancellation(exc):
                raise
            kind, result = FAILURE, exc  # a cancellation no loop asked for: the record's
        else:
            kind = SUCCESS
        if schedule.durations is not None:
            _note_time(schedule, index, started, clock())
        schedule.finish(index, kind, result)
        if _changed(context, pristine):
            return True


def _changed(context: Context, pristine: Context) -> bool:
    """Whether a record changed its copy of the context (a value whose == fails: it did)."""
    try:
        return context != pristine
    except Exception:
        return True


def run_each_inline(
    schedule: Schedule,
    func: Callable[[Any], Any],
    args: Iterable[Any],
    deadline: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    bind: Bind | None = None,
) -> None:
    """Run ``func(arg)`` for the records of an unconstrained *schedule*, in order, inline.

    Nothing but the *deadline* can stop or reorder such a schedule, so this is
    :func:`run_inline` without two method calls per record: *args* holds one argument per
    record, in record order.
    """
    schedule.claim_all()  # the loop writes each outcome into schedule.kinds and .values
    if schedule.durations is not None:
        loop = _each_timed
    else:
        loop = _each
        schedule.current = IN_ORDER  # Schedule.running() finds the record running
    _in_copies(loop, schedule, func, enumerate(args), deadline, clock, bind)


def _each(
    context: Context,
    pristine: Context,
    schedule: Schedule,
    func: Callable[[Any], Any],
    items: Iterator[tuple[int, Any]],
    deadline: float | None,
    clock: Callable[[], float],
) -> bool:
    """:func:`run_each_inline`'s loop, run in *context* (see :func:`_in_copies`)."""
    kinds, values = schedule.kinds, schedule.values  # claimed by run_each_inline
    for index, arg in items:
        if deadline is not None and clock() >= deadline:
            schedule.stop(NOT_STARTED)
            return False
        try:
            values[index] = func(arg)
        except Exception as exc:
            values[index] = exc
            kinds[index] = FAILURE
        except BaseException as exc:
            if not is_asyncio_cancellation(exc):
                # What a BaseException leaves behind, as schedule.next() would have: the
                # record started (a record that ends is never read as running meanwhile:
                # nothing runs beside it).
                kinds[index] = RUNNING
                raise
            values[index] = exc  # a cancellation no loop asked for: the record's failure
            kinds[index] = FAILURE
        else:
            kinds[index] = SUCCESS
        try:  # did the record change its copy? (inline: this is _changed without a call)
            if context != pristine:
                return True
        except Exception:
            return True
    return False


def _note_time(schedule: Schedule, index: int, started: float, ended: float) -> None:
    durations, ends = schedule.durations, schedule.ends
    assert durations is not None
    durations[index] = ended - started
    if ends is not None:
        ends[index] = ended


def _each_timed(
    context: Context,
    pristine: Context,
    schedule: Schedule,
    func: Callable[[Any], Any],
    items: Iterator[tuple[int, Any]],
    deadline: float | None,
    clock: Callable[[], float],
) -> bool:
    """:func:`_each` that notes each record's time: one clock read per record.

    A record's time runs from the previous record's end, or from the (re)start of the loop.
    """
    kinds, values = schedule.kinds, schedule.values
    durations, ends = schedule.durations, schedule.ends
    assert durations is not None
    last = clock()
    for index, arg in items:
        if deadline is not None and last >= deadline:
            schedule.stop(NOT_STARTED)
            return False
        kinds[index] = RUNNING
        schedule.current = index
        try:
            values[index] = func(arg)
        except Exception as exc:
            values[index] = exc
            kinds[index] = FAILURE
        except BaseException as exc:
            if not is_asyncio_cancellation(exc):
                raise
            values[index] = exc  # a cancellation no loop asked for: the record's failure
            kinds[index] = FAILURE
        else:
            kinds[index] = SUCCESS
        now = clock()
        durations[index] = now - last
        if ends is not None:
            ends[index] = now
        last = now
        if _changed(context, pristine):
            return True
    return False
