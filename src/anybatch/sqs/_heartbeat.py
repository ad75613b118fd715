"""The heartbeat: while a batch runs, its messages stay hidden from other workers.

:class:`~anybatch.sqs._plan.Heartbeat` decides when and by how much; :func:`heartbeat` sleeps
until then and makes the ``ChangeMessageVisibilityBatch`` calls; :class:`Beating` starts it
only once the first extension is due.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import anyio

from ._plan import Entry, Heartbeat
from ._settle import calls_of

if TYPE_CHECKING:
    from ._plan import QueueRef
    from ._settle import Caller
    from ._stats import WorkerStats

__all__ = ["Beating", "heartbeat"]

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


class Beating:
    """A batch's heartbeat, its task started only when the first extension is due.

    Most batches end long before a third of their visibility is left: for them the heartbeat
    is one loop timer, set and cancelled, where a task from the start cost more than ten times
    as much (a task group, a task, its cancellation: about 130 µs a batch, measured). The
    worker runs on asyncio (aiobotocore's loop), so the timer is the loop's own.
    """

    __slots__ = ("_beats", "_task", "_timer")

    def __init__(
        self,
        caller: Caller,
        queue: QueueRef,
        records: Sequence[Mapping[str, Any]],
        *,
        received: float,
        visibility: int,
        max_visibility: int,
        stats: WorkerStats,
    ) -> None:
        self._beats = functools.partial(
            heartbeat,
            caller,
            queue,
            records,
            received=received,
            visibility=visibility,
            max_visibility=max_visibility,
            stats=stats,
        )
        self._task: asyncio.Task[None] | None = None
        first = Heartbeat(received, visibility, max_visibility).due
        self._timer: asyncio.TimerHandle | None = None
        if first is not None:
            delay = max(0.0, first - time.monotonic())
            self._timer = asyncio.get_running_loop().call_later(delay, self._start)

    def _start(self) -> None:
        self._timer = None
        self._task = asyncio.get_running_loop().create_task(self._beats())

    async def stop(self) -> None:
        """Stop the heartbeat (its batch has run) and wait until its task, if any, has ended."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        task = self._task
        if task is None:
            return
        task.cancel()
        with anyio.CancelScope(shield=True):
            try:
                await task
            except asyncio.CancelledError:
                if not task.cancelled():
                    raise
