"""The heartbeat: while a batch runs, its messages stay hidden from other workers.

:class:`~anybatch.sqs._plan.Heartbeat` decides when and by how much; :func:`heartbeat` sleeps
until then and makes the ``ChangeMessageVisibilityBatch`` calls; :class:`Heartbeats` starts
it for a worker's batches, each only once its first extension is due.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import math
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import anyio

from ._plan import Entry, Heartbeat, first_extension
from ._settle import calls_of

if TYPE_CHECKING:
    from ._plan import QueueRef
    from ._settle import Caller
    from ._stats import WorkerStats

__all__ = ["Heartbeats", "heartbeat"]

logger = logging.getLogger("anybatch.worker")


async def heartbeat(
    caller: Caller,
    queue: QueueRef,
    records: Sequence[Mapping[str, Any]],
    *,
    received: float,
    visibility: int,
    max_visibility: int,
    stats: WorkerStats,
) -> None:
    """Extend the batch's visibility whenever a third of it is left, up to *max_visibility*.

    *received* is when the batch was received (``time.monotonic()``), *visibility* the
    visibility timeout it got then, and each extension's.
    """
    beat = Heartbeat(received, visibility, max_visibility)
    while beat.due is not None:
        await anyio.sleep(max(0.0, beat.due - time.monotonic()))
        extension = beat.extend(time.monotonic())
        if extension is None:
            return  # the maximum: let the visibility run out
        arn = queue.arn
        entries = [
            Entry(i, "change_visibility", str(r["messageId"]), r["receiptHandle"], arn, extension)
            for i, r in enumerate(records)
        ]
        settlement = await caller.perform(calls_of("change_visibility", queue, entries))
        stats.extended += len(settlement.done)
        for failure in settlement.failures:
            logger.warning(
                "the visibility of message %s could not be extended (%s: %s)",
                failure.message_id,
                failure.code,
                failure.reason,
            )


class Heartbeats:
    """The heartbeats of a worker's batches in flight, on one loop timer for them all.

    Most batches end long before a third of their visibility is left: for them the heartbeat
    is an entry in a dict, added and removed. The timer is set for the earliest extension
    due; when it fires, it starts the heartbeat task of each batch due and is set again for
    the next. (A timer a batch, as it was, left a cancelled timer in the loop's heap for
    each batch, for as long as its visibility; a task from the start cost more still: a
    task group, a task, its cancellation, about 130 µs a batch.) The worker runs on asyncio
    (aiobotocore's loop), so the timer is the loop's own.
    """

    __slots__ = (
        "_at", "_caller", "_context", "_count", "_due", "_max", "_stats", "_tasks", "_timer",
        "_visibility",
    )  # fmt: skip

    def __init__(
        self, caller: Caller, visibility: int, max_visibility: int, stats: WorkerStats
    ) -> None:
        self._caller = caller
        self._visibility = visibility
        self._max = max_visibility
        self._stats = stats
        self._count = 0
        # The heartbeats run in a copy of the context the worker made them in (its run()'s),
        # as each batch's heartbeat did in its own, which started as that one.
        self._context = contextvars.copy_context()
        #: The batches whose heartbeat has not started: when it is due, the queue, the
        #: records, when they were received. The timer fires about once in two thirds of the
        #: visibility timeout, so each time it looks at every batch waiting.
        self._due: dict[int, tuple[float, QueueRef, Sequence[Mapping[str, Any]], float]] = {}
        self._tasks: dict[int, asyncio.Task[None]] = {}  # the heartbeats started
        self._timer: asyncio.TimerHandle | None = None
        self._at = math.inf  # when the timer fires (time.monotonic())

    def start(self, queue: QueueRef, records: Sequence[Mapping[str, Any]], received: float) -> int:
        """Keep the messages of a batch received at *received* hidden; a key for :meth:`stop`."""
        self._count = key = self._count + 1
        due = first_extension(received, self._visibility)
        self._due[key] = (due, queue, records, received)
        if due < self._at:  # the first batch waiting, or one due sooner than the timer
            self._set(due)
        return key

    async def stop(self, key: int) -> None:
        """Stop the heartbeat of batch *key* (it has run) and wait until its task has ended."""
        if self._due.pop(key, None) is not None:
            return  # never started: nothing to wait for (the timer may fire for nothing)
        task = self._tasks.pop(key, None)
        if task is None:
            return
        task.cancel()
        with anyio.CancelScope(shield=True):
            try:
                await task
            except asyncio.CancelledError:
                if not task.cancelled():
                    raise

    def close(self) -> None:
        """Let go of the timer, and of any heartbeat left (none is, once every batch has run)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._at = math.inf
        self._due.clear()
        for task in self._tasks.values():
            task.cancel()
        self._tasks.clear()

    def _set(self, at: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._at = at
        delay = max(0.0, at - time.monotonic())
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(delay, self._fire, context=self._context)

    def _fire(self) -> None:
        """Start the heartbeat of every batch due; set the timer for the next.

        A loop may run a timer a little before its time (by its clock's resolution: 15.6 ms
        on Windows, a millisecond on uvloop): what the timer was set for counts as due.
        """
        self._timer = None
        now = max(time.monotonic(), self._at)
        self._at = math.inf
        loop = asyncio.get_running_loop()
        later = math.inf
        for key, (due, queue, records, received) in list(self._due.items()):
            if due > now:
                later = min(later, due)
                continue
            del self._due[key]
            self._tasks[key] = loop.create_task(
                heartbeat(
                    self._caller,
                    queue,
                    records,
                    received=received,
                    visibility=self._visibility,
                    max_visibility=self._max,
                    stats=self._stats,
                )
            )
        if later < math.inf:
            self._set(later)
