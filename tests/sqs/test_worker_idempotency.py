"""An idempotent handler in the SQS worker: its IN_PROGRESS mark follows the visibility.

A worker that dies leaves its messages to come back once their visibility runs out; the
mark its handler wrote must not hold their keys for ``in_progress_timeout`` (900 s) past
that.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import pytest

from anybatch import AsyncBatchProcessor, EventType
from anybatch.idempotency import RECORD_TIMEOUT_MARGIN, InMemoryStore, StoredRecord, idempotent
from anybatch.sqs import SQSWorker
from anybatch.sqs._plan import QueueRef
from anybatch.sqs._records import WorkerContext

from ._running import run_until

if TYPE_CHECKING:
    from ._moto import MakeQueue

pytestmark = pytest.mark.anyio


def marks_seen(store: InMemoryStore) -> tuple[Any, list[tuple[float, StoredRecord, Any]]]:
    """An idempotent handler on *store* that notes when it ran, its mark and its context."""
    seen: list[tuple[float, StoredRecord, Any]] = []

    @idempotent(store)
    async def handler(record: Any, lambda_context: Any) -> str:
        [mark] = [m for m in store.records.values() if m.status == "INPROGRESS"]
        seen.append((time.time(), mark, lambda_context))
        return "ok"

    return handler, seen


def length(mark: StoredRecord, started: float) -> float:
    assert mark.in_progress_expires_at is not None
    return mark.in_progress_expires_at / 1000 - started


async def test_the_mark_expires_with_the_visibility_timeout(make_queue: MakeQueue) -> None:
    queue = make_queue()
    queue.send(["a", "b"])
    store = InMemoryStore()
    handler, seen = marks_seen(store)
    worker = SQSWorker(
        queue.url, handler, endpoint_url=queue.endpoint, wait_time=1, visibility_timeout=20
    )
    stats = await run_until(worker, lambda: len(seen) >= 2)
    assert stats.deleted == 2
    for started, mark, context in seen:
        assert length(mark, started) == pytest.approx(20.0, abs=1.0)  # not 900 s
        # The batch itself has no deadline: the heartbeat keeps its messages hidden.
        assert context.get_remaining_time_in_millis() == 2**31 - 1


async def test_the_mark_expires_with_the_record_timeout_when_shorter(
    make_queue: MakeQueue,
) -> None:
    queue = make_queue()
    queue.send(["a"])
    store = InMemoryStore()
    handler, seen = marks_seen(store)
    processor = AsyncBatchProcessor(EventType.SQS, record_timeout=4.0)
    worker = SQSWorker(
        queue.url,
        handler,
        processor,
        endpoint_url=queue.endpoint,
        wait_time=1,
        visibility_timeout=60,
    )
    await run_until(worker, lambda: len(seen) >= 1)
    [(started, mark, _)] = seen
    assert length(mark, started) == pytest.approx(4.0 + RECORD_TIMEOUT_MARGIN, abs=1.0)


def test_the_hidden_time_is_one_visibility_timeout_within_max_visibility() -> None:
    worker = WorkerContext(QueueRef("us-east-1", "123456789012", "orders"))
    assert worker.get_hidden_time_in_millis() == 2**31 - 1  # no batch
    now = time.monotonic()
    batch = worker.for_batch(now, 30, 600)
    assert batch.function_name == "anybatch-worker-orders"
    assert batch.get_hidden_time_in_millis() == pytest.approx(30_000, abs=200)
    # 10 s before max_visibility: the heartbeat extends no further.
    late = worker.for_batch(now - 590, 30, 600)
    assert late.get_hidden_time_in_millis() == pytest.approx(10_000, abs=200)
    assert worker.for_batch(now - 700, 30, 600).get_hidden_time_in_millis() == 0
    assert worker.received is None  # each batch its own
