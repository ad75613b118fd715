"""How a worker settles a batch: what becomes of each message, and the calls that do it.

The decisions are plain functions (:func:`settles_of`, :func:`settles_after`,
:func:`settle_calls`); :func:`settle` is their driver, making the calls through a
:class:`Caller` and counting what they did in the worker's :class:`WorkerStats`.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from anybatch._outcome import Status, statuses

from ._deleter import perform
from ._plan import MAX_ENTRIES, Action, Call, Entry, visibility_timeout_for

if TYPE_CHECKING:
    from anybatch._outcome import BatchResult

    from ._deleter import Settlement, SQSBatchApi
    from ._plan import QueueRef, RetryPolicy, VisibilityTimeout
    from ._stats import WorkerStats

__all__ = [
    "Caller",
    "PolicyError",
    "Settle",
    "Settling",
    "calls_of",
    "settle",
    "settle_calls",
    "settles_after",
    "settles_of",
]

logger = logging.getLogger("anybatch.worker")

#: What happens to a message once its batch has run.
Settle = Literal["delete", "routed", "fail", "release"]

#: A success is deleted; a failure (its handler raised or timed out, its model refused it)
#: waits for its visibility; a record that never ran (the rest of a failed FIFO group) is
#: released at once, to come back in its order.
_SETTLES: dict[Status, Settle] = {
    Status.SUCCESS: "delete",
    Status.FAILED: "fail",
    Status.TIMED_OUT: "fail",
    Status.DEADLINE: "release",
    Status.SKIPPED: "release",
    Status.ROUTED: "routed",  # failed permanently, and its target has it: deleted, not retried
}


def settles_of(result: BatchResult[Any]) -> list[Settle]:
    """What to do with each message of a processed batch, from its outcome."""
    return [_SETTLES[status] for status in statuses(result)]


def settles_after(count: int, succeeded: Collection[int], rest: Settle) -> list[Settle]:
    """A batch that did not run to its end: delete what *succeeded* (indices), *rest* the rest.

    ``"release"`` when the drain cut it off (the rest goes to another worker at once),
    ``"fail"`` when the processor itself raised (the rest waits for its visibility).
    """
    done = set(succeeded)
    return ["delete" if index in done else rest for index in range(count)]


class PolicyError(NamedTuple):
    """A failed message whose ``failed_visibility_timeout`` raised: left to its visibility."""

    message_id: str
    error: Exception


class Settling(NamedTuple):
    """What settles a processed batch: the calls to make, and the policy's errors."""

    calls: tuple[Call, ...]
    policy_errors: tuple[PolicyError, ...] = ()


def settle_calls(
    queue: QueueRef,
    records: Sequence[Mapping[str, Any]],
    settles: Sequence[Settle],
    visibility: VisibilityTimeout | None,
) -> Settling:
    """The calls that settle a processed batch: delete, hide by the policy, or release.

    A *visibility* function that raises (a bug of its own, or a value that is no number of
    seconds) costs its message nothing but the hiding: it is left to the visibility timeout
    it has, and the error is reported. The rest of the batch settles as usual.
    """
    arn = queue.arn
    deletes: list[Entry] = []
    hides: list[Entry] = []
    errors: list[PolicyError] = []
    for index, (record, what) in enumerate(zip(records, settles, strict=True)):
        message_id, handle = str(record["messageId"]), str(record["receiptHandle"])
        if what == "delete" or what == "routed":
            deletes.append(Entry(index, "delete", message_id, handle, arn))
        elif what == "release":
            hides.append(Entry(index, "change_visibility", message_id, handle, arn, 0))
        elif visibility is not None:
            try:
                seconds = visibility_timeout_for(visibility, record)
            except Exception as exc:  # the user's function: any error is its own
                errors.append(PolicyError(message_id, exc))
                continue
            hides.append(Entry(index, "change_visibility", message_id, handle, arn, seconds))
    calls = calls_of("delete", queue, deletes) + calls_of("change_visibility", queue, hides)
    return Settling(tuple(calls), tuple(errors))


def calls_of(action: Action, queue: QueueRef, entries: Sequence[Entry]) -> list[Call]:
    """*entries* in calls of at most :data:`MAX_ENTRIES`."""
    return [
        Call(action, queue, tuple(entries[start : start + MAX_ENTRIES]))
        for start in range(0, len(entries), MAX_ENTRIES)
    ]


@dataclass(frozen=True)
class Caller:
    """How a worker makes its batch calls: the client, the retries, how many at once."""

    api: SQSBatchApi
    retry: RetryPolicy
    max_concurrent_calls: int

    async def perform(self, calls: Sequence[Call]) -> Settlement:
        """Make *calls*, retrying; what SQS confirmed and what it refused."""
        return await perform(
            self.api, calls, self.retry, max_concurrent_calls=self.max_concurrent_calls
        )


async def settle(
    caller: Caller,
    queue: QueueRef,
    records: Sequence[Mapping[str, Any]],
    settles: Sequence[Settle],
    visibility: VisibilityTimeout | None,
    stats: WorkerStats,
) -> None:
    """Settle a batch as *settles* says, counting it in *stats* and logging what went wrong."""
    stats.succeeded += settles.count("delete")
    stats.routed += settles.count("routed")
    stats.failed += settles.count("fail")
    stats.released += settles.count("release")
    calls, policy_errors = settle_calls(queue, records, settles, visibility)
    for policy_error in policy_errors:
        stats.visibility_not_changed += 1
        logger.error(
            "failed_visibility_timeout raised for message %s (%s: %s); it is left to its "
            "visibility timeout",
            policy_error.message_id,
            type(policy_error.error).__name__,
            policy_error.error,
            exc_info=policy_error.error,
        )
    if not calls:
        return
    settlement = await caller.perform(calls)
    for entry in settlement.done:
        if entry.action == "delete":
            stats.deleted += 1
        else:
            stats.visibility_changed += 1
    for failure in settlement.failures:
        stats.failures.append(failure)
        if failure.action == "delete":
            stats.not_deleted += 1
            logger.warning(
                "message %s succeeded but was not deleted (%s: %s); it will be delivered again",
                failure.message_id,
                failure.code,
                failure.reason,
            )
        else:
            stats.visibility_not_changed += 1
