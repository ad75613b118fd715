"""The worker with permanent failures: a message its hook took is deleted, not retried."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
import pytest

from anybatch import AsyncBatchProcessor, EventType, PermanentFailure
from anybatch.sqs import SQSWorker

from ._running import run_until

if TYPE_CHECKING:
    from anybatch.records import SQSRecord

    from ._moto import MakeQueue

pytestmark = pytest.mark.anyio


async def test_a_routed_message_is_deleted_and_a_refused_one_comes_back(
    make_queue: MakeQueue,
) -> None:
    queue = make_queue()
    queue.send(["ok", "bad-routed", "bad-refused"])
    parked: list[str] = []
    seen: list[str] = []

    async def park(record: SQSRecord, error: BaseException) -> None:
        await anyio.lowlevel.checkpoint()
        if record.body == "bad-refused":
            raise OSError("the bucket is unreachable")
        parked.append(record.body)

    async def handler(record: SQSRecord) -> None:
        seen.append(record.body)
        if record.body.startswith("bad"):
            raise PermanentFailure(record.body)

    processor = AsyncBatchProcessor(EventType.SQS, on_permanent_failure=park)
    worker = SQSWorker(queue.url, handler, processor, endpoint_url=queue.endpoint, wait_time=1)
    await run_until(worker, lambda: len(seen) >= 3)
    assert parked == ["bad-routed"]
    # ok and the routed message are deleted; the refused one waits for its visibility.
    assert queue.counts() == (0, 1)
