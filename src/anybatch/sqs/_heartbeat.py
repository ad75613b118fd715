"""The heartbeat: while a batch runs, its messages stay hidden from other workers.

:class:`~anybatch.sqs._plan.Heartbeat` decides when and by how much; :func:`heartbeat` sleeps
until then and makes the ``ChangeMessageVisibilityBatch`` calls.
"""

from __future__ import annotations

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

__all__ = ["heartbeat"]

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
