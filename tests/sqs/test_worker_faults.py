"""The worker under faults on the wire: aiobotocore's httpx backend, answered by respx.

An in-memory queue answers ``ReceiveMessage``, ``DeleteMessageBatch`` and
``ChangeMessageVisibilityBatch`` as SQS does, except when a scripted fault answers instead:
throttling, server errors, dropped connections, entries that fail. Whatever happens, no
message is reported deleted that the queue did not delete, no failed message is deleted, and
every message ends deleted or visible again.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import anyio
import httpx
import pytest

from anybatch.sqs import SQSWorkerError, WorkerStats

from ._fake_sqs import HTTPX_BACKEND, dropped, server_error, throttled, worker
from ._running import run_until

if TYPE_CHECKING:
    from anybatch.records import SQSRecord

    from ._fake_sqs import FakeQueue

pytestmark = [pytest.mark.anyio, HTTPX_BACKEND]


def fail_bad(record: SQSRecord) -> None:
    if record.body.startswith("bad"):
        raise ValueError(record.body)


def check_nothing_lost(sqs: FakeQueue, stats: WorkerStats) -> None:
    """Deleted = what the worker says it deleted; no failed message deleted."""
    deleted = [m for m in sqs.messages if m.deleted]
    assert stats.deleted == len(deleted)
    assert not [m for m in deleted if m.body.startswith("bad")]


async def test_throttled_and_failing_receives_are_retried(sqs: FakeQueue) -> None:
    sqs.add([f"ok-{i}" for i in range(20)])
    sqs.faults["ReceiveMessage"] = [throttled, server_error, dropped, throttled]
    stats = await run_until(worker(fail_bad), lambda: all(m.deleted for m in sqs.messages))
    assert stats.receive_errors == 4
    assert stats.deleted == 20
    check_nothing_lost(sqs, stats)


async def test_a_receive_refused_for_good_stops_the_worker_with_the_error(
    sqs: FakeQueue,
) -> None:
    def denied() -> httpx.Response:
        return httpx.Response(
            403, json={"__type": "com.amazonaws.sqs#AccessDenied", "message": "not yours"}
        )

    sqs.faults["ReceiveMessage"] = [denied]
    with pytest.raises(SQSWorkerError, match="AccessDenied: not yours") as raised:
        with anyio.fail_after(10):
            await worker(fail_bad).run()
    assert raised.value.code == "AccessDenied"


async def test_deletes_that_fail_are_retried_and_never_reported_done(sqs: FakeQueue) -> None:
    sqs.add([f"ok-{i}" for i in range(12)] + ["bad-1"])
    sqs.faults["DeleteMessageBatch"] = [server_error, dropped, throttled]
    stats = await run_until(
        worker(fail_bad),
        lambda: sum(m.deleted for m in sqs.messages) == 12,
    )
    assert stats.deleted == 12
    assert stats.not_deleted == 0
    check_nothing_lost(sqs, stats)


async def test_a_delete_entry_that_keeps_failing_is_reported_not_deleted(
    sqs: FakeQueue,
) -> None:
    sqs.add(["ok-0", "ok-1"])
    # The first message's first receipt fails for good: SQS refuses its receipt handle.
    sqs.entry_failures["DeleteMessageBatch"] = {"rh-0": ("ReceiptHandleIsInvalid", True)}
    stats = await run_until(worker(fail_bad), lambda: sqs.messages[1].deleted)
    assert stats.not_deleted == 1
    assert stats.failures[0].code == "ReceiptHandleIsInvalid"
    assert not sqs.messages[0].deleted  # will be delivered again: not lost
    check_nothing_lost(sqs, stats)


async def test_failed_visibility_calls_are_retried(sqs: FakeQueue) -> None:
    sqs.add(["bad-0", "ok-1"])
    sqs.faults["ChangeMessageVisibilityBatch"] = [throttled, dropped]
    stats = await run_until(
        worker(fail_bad, failed_visibility_timeout=300),
        lambda: sqs.messages[1].deleted and sqs.messages[0].visible_at > time.monotonic() + 200,
    )
    assert stats.visibility_changed >= 1
    assert stats.visibility_not_changed == 0
    check_nothing_lost(sqs, stats)


async def test_a_heartbeat_that_fails_is_logged_and_the_record_still_settles(
    sqs: FakeQueue, caplog: pytest.LogCaptureFixture
) -> None:
    sqs.add(["slow"])
    sqs.faults["ChangeMessageVisibilityBatch"] = [server_error] * 8  # every retry of one beat

    async def slow(record: SQSRecord) -> None:
        await anyio.sleep(1.5)

    stats = await run_until(worker(slow, visibility_timeout=1), lambda: sqs.messages[0].deleted)
    assert stats.deleted == 1
    assert "could not be extended" in caplog.text
