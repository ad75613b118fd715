"""Running an SQS worker in a test until a condition holds."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import anyio

if TYPE_CHECKING:
    from anybatch.sqs import SQSWorker, WorkerStats


async def run_until(
    worker: SQSWorker, done: Callable[[], bool], *, within: float = 20.0
) -> WorkerStats:
    """Run *worker* until *done()*, then stop it (draining) and return its stats."""
    async with anyio.create_task_group() as group:

        async def stop_when_done() -> None:
            with anyio.fail_after(within):
                while not done():  # noqa: ASYNC110 - polls a condition of the test's own
                    await anyio.sleep(0.01)
            worker.stop()

        group.start_soon(stop_when_done)
        stats = await worker.run()
    return stats  # noqa: RET504 - after the task group, not inside it
