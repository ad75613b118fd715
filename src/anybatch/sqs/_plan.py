"""The SQS decisions, without I/O: what to delete or hide, in which calls, what to try again.

Everything here is a plain function or a small state machine, tested without an event loop;
``_deleter`` drives them against the network. Rules kept here:

* legacy mode deletes the records that succeeded, and only when some record failed (when all
  succeeded, Lambda deletes the batch itself); a record that did not succeed is never deleted;
* one call holds at most 10 entries of one queue, each with an ``Id`` unique in the batch;
* a failure is retried when SQS may accept the entry later (throttling, server errors, lost
  connections), never when the request itself is wrong (an invalid receipt handle);
* retries back off exponentially with full jitter, up to a number of attempts.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, TypeAlias, cast

from anybatch._options import is_int
from anybatch._sources.sqs import has_message_groups
from anybatch._sources.sqs import is_fifo_batch as from_fifo_queue

__all__ = [
    "MAX_ENTRIES",
    "MAX_VISIBILITY_TIMEOUT",
    "Action",
    "Call",
    "CallState",
    "Entry",
    "Heartbeat",
    "Plan",
    "Problem",
    "QueueRef",
    "RetryPolicy",
    "SQSActionFailure",
    "SQSCleanup",
    "VisibilityTimeout",
    "call_problem",
    "check_visibility_timeout",
    "cleanup",
    "entry_problem",
    "failure",
    "first_extension",
    "is_fifo_batch",
    "parse_queue_arn",
    "plan",
    "queue_url",
    "read_response",
    "visibility_timeout_for",
]

#: What is done to a message: ``DeleteMessageBatch``, ``ChangeMessageVisibilityBatch``, or
#: ``SendMessageBatch`` to a dead-letter queue.
Action: TypeAlias = Literal["delete", "change_visibility", "send"]

#: Entries one batch call accepts at most.
MAX_ENTRIES = 10
#: The longest visibility timeout SQS accepts: 12 hours.
MAX_VISIBILITY_TIMEOUT = 43_200

#: Seconds, or a function of the message's ``ApproximateReceiveCount`` that returns them.
VisibilityTimeout: TypeAlias = float | Callable[[int], float]

# Error codes SQS (or the AWS front end) answers when trying again later may succeed. Server
# faults (HTTP 5xx, ``SenderFault: false``) are retried whatever their code.
_RETRYABLE_CODES = frozenset(
    {
        "InternalError",
        "InternalFailure",
        "KmsThrottled",
        "PriorRequestNotComplete",
        "RequestThrottled",
        "RequestThrottledException",
        "RequestTimeout",
        "RequestTimeoutException",
        "ServiceUnavailable",
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "TooManyRequestsException",
    }
)


# --- queues --------------------------------------------------------------------------------


class QueueRef(NamedTuple):
    """A queue, as named by an ARN: where it lives and what it is called."""

    region: str
    account: str
    name: str
    partition: str = "aws"
    """``aws``, ``aws-cn``, ``aws-us-gov``...: the ARN's, kept for the ARN it gives back."""
    url: str = ""
    """The queue's URL when it was given as one (a dead-letter queue); else made from the
    endpoint."""

    @property
    def fifo(self) -> bool:
        """Whether the queue is a FIFO queue (its name ends in ``.fifo``)."""
        return self.name.endswith(".fifo")

    @property
    def arn(self) -> str:
        """``arn:<partition>:sqs:<region>:<account>:<name>``."""
        return f"arn:{self.partition}:sqs:{self.region}:{self.account}:{self.name}"


def parse_queue_arn(arn: object) -> QueueRef:
    """Read ``arn:<partition>:sqs:<region>:<account>:<name>``; raise ``ValueError`` otherwise."""
    parts = arn.split(":") if isinstance(arn, str) else []
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "sqs" or not all(parts[1:]):
        raise ValueError(f"not the ARN of an SQS queue: {arn!r}")
    return QueueRef(parts[3], parts[4], parts[5], parts[1])


def queue_url(endpoint_url: str, queue: QueueRef) -> str:
    """The queue's URL at the endpoint a client resolved (its region's, or a custom one)."""
    if queue.url:
        return queue.url
    return f"{endpoint_url.rstrip('/')}/{queue.account}/{queue.name}"


def _attribute(record: Mapping[str, Any], name: str) -> object:
    attributes: object = record.get("attributes")
    if isinstance(attributes, Mapping):
        return cast("Mapping[str, object]", attributes).get(name)
    return None


def is_fifo_batch(records: Sequence[Mapping[str, Any]]) -> bool:
    """Whether the legacy processors keep *records* in order, as a FIFO batch.

    A batch from a FIFO queue (the source's one rule, ``anybatch._sources.sqs``), and, to be
    safe, one whose messages carry groups (a fair queue's): deleting stops at its first
    failure, so that nothing after a failed message of a group is deleted before it.
    """
    return from_fifo_queue(records) or has_message_groups(records)


# --- visibility ----------------------------------------------------------------------------


def check_visibility_timeout(value: object) -> VisibilityTimeout | None:
    """Check a ``failed_visibility_timeout`` setting: ``None``, seconds, or a callable."""
    if value is None or callable(value):
        return cast("VisibilityTimeout | None", value)
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise TypeError(
            "failed_visibility_timeout must be seconds, a function of the receive count, "
            f"or None; got {value!r}"
        )
    if not 0 <= value <= MAX_VISIBILITY_TIMEOUT:
        raise ValueError(
            f"failed_visibility_timeout must be between 0 and {MAX_VISIBILITY_TIMEOUT} seconds "
            f"(12 hours), got {value!r}"
        )
    return value


def visibility_timeout_for(setting: VisibilityTimeout, record: Mapping[str, Any]) -> int:
    """The visibility timeout, in whole seconds SQS accepts, for a record that failed.

    A callable *setting* gets the record's ``ApproximateReceiveCount`` (1 on the first
    delivery); what it returns is rounded up and kept between 0 and 12 hours.
    """
    if callable(setting):
        count = _attribute(record, "ApproximateReceiveCount")
        try:
            receive_count = max(int(count), 1) if isinstance(count, str | int) else 1
        except ValueError:
            receive_count = 1
        seconds = float(setting(receive_count))
    else:
        seconds = float(setting)
    if seconds != seconds:  # NaN
        raise ValueError(f"failed_visibility_timeout returned {seconds!r}")
    return min(max(math.ceil(seconds), 0), MAX_VISIBILITY_TIMEOUT)


def first_extension(received: float, timeout: int) -> float:
    """When messages received at *received*, hidden for *timeout* seconds, are first extended.

    When a third of their visibility is left: see :class:`Heartbeat`.
    """
    return received + timeout - timeout / 3


class Heartbeat:
    """When to extend the visibility of messages being processed, and by how much.

    Messages received at *received* (seconds, a monotonic clock) are hidden for *timeout*
    seconds. Whenever a third of that is left, they are extended by *timeout* seconds from
    then, but never past ``received + max_visibility``: the extension that reaches that limit
    is the last, and after it the messages are left alone. So each extension is asked for once,
    whatever the clock says when the driver wakes: late, or early.

    A driver sleeps until :attr:`due`, asks :meth:`extend` for the seconds to ask SQS for now,
    and stops when either says ``None``.
    """

    __slots__ = ("_limit", "_timeout", "_visible_until", "due")

    def __init__(self, received: float, timeout: int, max_visibility: int) -> None:
        self._timeout = timeout
        self._limit = received + max_visibility
        self._visible_until = received + timeout
        self.due: float | None = first_extension(received, timeout)
        """When to extend next; ``None`` once no extension is left."""

    def extend(self, now: float) -> int | None:
        """The visibility timeout to ask for at *now*, in whole seconds; ``None``: stop.

        ``None`` when an extension would not reach past the visibility already given (the
        limit is that close).
        """
        if self.due is None:
            return None
        seconds = min(self._timeout, math.floor(self._limit - now))
        if seconds < 1 or now + seconds <= self._visible_until:
            self.due = None
            return None
        self._visible_until = now + seconds
        # Cut short by the limit: the last one. Otherwise the next when a third is left.
        self.due = None if seconds < self._timeout else self._visible_until - self._timeout / 3
        return seconds


# --- what to do ----------------------------------------------------------------------------


class Entry(NamedTuple):
    """One message to delete or to hide for a while."""

    record_index: int
    """The record's index in the batch; as the entry's ``Id``, it is unique in every call."""
    action: Action
    message_id: str
    receipt_handle: str
    queue_arn: str
    visibility_timeout: int | None = None
    message: Mapping[str, Any] | None = None
    """What ``SendMessageBatch`` sends (body, attributes...), for a ``"send"`` entry."""

    def request(self) -> dict[str, Any]:
        """The entry as ``DeleteMessageBatch`` / ``ChangeMessageVisibilityBatch`` take it."""
        if self.message is not None:
            return {"Id": str(self.record_index), **self.message}
        request: dict[str, Any] = {
            "Id": str(self.record_index),
            "ReceiptHandle": self.receipt_handle,
        }
        if self.visibility_timeout is not None:
            request["VisibilityTimeout"] = self.visibility_timeout
        return request


class Call(NamedTuple):
    """One batch call to make: up to :data:`MAX_ENTRIES` entries of one queue."""

    action: Action
    queue: QueueRef
    entries: tuple[Entry, ...]


class Problem(NamedTuple):
    """Why SQS did not do what was asked, and whether asking again may help."""

    code: str
    message: str
    retryable: bool


class SQSActionFailure(NamedTuple):
    """A message SQS did not delete (or whose visibility it did not change), and why."""

    action: Action
    """``"delete"`` or ``"change_visibility"``."""
    record_index: int
    """The record's index in the batch."""
    message_id: str
    queue_arn: str
    receipt_handle: str
    code: str
    """The SQS error code (``ReceiptHandleIsInvalid``, ``ThrottlingException``...), or
    ``EndpointConnectionError``, ``DeadlineExceeded``, ``InvalidRecord``..."""
    reason: str
    attempts: int
    """How many calls asked for it (0: none could be made)."""


class SQSCleanup(NamedTuple):
    """What the processor did in SQS after a batch, by message id, in record order."""

    deleted: tuple[str, ...] = ()
    """Messages deleted (legacy mode, when some record failed)."""
    not_deleted: tuple[SQSActionFailure, ...] = ()
    """Messages that succeeded but could not be deleted: they will be delivered again."""
    visibility_changed: tuple[str, ...] = ()
    """Failed messages whose visibility timeout was changed."""
    visibility_not_changed: tuple[SQSActionFailure, ...] = ()
    """Failed messages whose visibility timeout could not be changed."""
    api_calls: int = 0
    """Batch calls made, retries included."""
    dead_lettered: tuple[str, ...] = ()
    """Messages that failed permanently and were sent to the dead-letter queue."""
    not_dead_lettered: tuple[SQSActionFailure, ...] = ()
    """Messages that failed permanently but could not be sent there: they are reported."""


def cleanup(
    done: Iterable[Entry], failures: Iterable[SQSActionFailure], api_calls: int
) -> SQSCleanup:
    """Sort what the calls did into an :class:`SQSCleanup`."""
    ok = sorted(done, key=lambda entry: entry.record_index)
    bad = sorted(failures, key=lambda failure: failure.record_index)
    return SQSCleanup(
        tuple(e.message_id for e in ok if e.action == "delete"),
        tuple(f for f in bad if f.action == "delete"),
        tuple(e.message_id for e in ok if e.action == "change_visibility"),
        tuple(f for f in bad if f.action == "change_visibility"),
        api_calls,
        tuple(e.message_id for e in ok if e.action == "send"),
        tuple(f for f in bad if f.action == "send"),
    )


class Plan(NamedTuple):
    """The calls to make after a batch, and the entries no call can carry."""

    calls: tuple[Call, ...]
    rejected: tuple[SQSActionFailure, ...]


def plan(
    records: Sequence[Mapping[str, Any]],
    succeeded: Sequence[bool],
    *,
    delete_successes: bool,
    visibility: VisibilityTimeout | None,
) -> Plan:
    """Decide what to do with each record of a processed batch.

    With *delete_successes* (legacy mode) the records that succeeded are deleted, when at
    least one record did not; with a *visibility* setting, the records that did not succeed
    get their visibility timeout changed. Records that cannot be acted on (no receipt
    handle, no queue ARN) are rejected, with a reason.
    """
    delete = delete_successes and not all(succeeded)
    to_delete: list[tuple[Entry, QueueRef | SQSActionFailure]] = []
    to_hide: list[tuple[Entry, QueueRef | SQSActionFailure]] = []
    for index, (record, ok) in enumerate(zip(records, succeeded, strict=True)):
        if ok and delete:
            to_delete.append(_entry(index, record, "delete", None))
        elif not ok and visibility is not None:
            seconds = visibility_timeout_for(visibility, record)
            to_hide.append(_entry(index, record, "change_visibility", seconds))
    calls: list[Call] = []
    rejected: list[SQSActionFailure] = []
    pairs: tuple[tuple[Action, list[tuple[Entry, QueueRef | SQSActionFailure]]], ...] = (
        ("delete", to_delete),
        ("change_visibility", to_hide),
    )
    for action, entries in pairs:
        calls.extend(_chunk(action, entries, rejected))
    return Plan(tuple(calls), tuple(rejected))


def _entry(
    index: int, record: Mapping[str, Any], action: Action, seconds: int | None
) -> tuple[Entry, QueueRef | SQSActionFailure]:
    message_id = str(record.get("messageId", ""))
    handle = record.get("receiptHandle")
    arn = record.get("eventSourceARN")
    entry = Entry(index, action, message_id, str(handle or ""), str(arn or ""), seconds)
    if not isinstance(handle, str) or not handle:
        problem = f"record {index} has no receiptHandle"
    else:
        try:
            return entry, parse_queue_arn(arn)
        except ValueError as exc:
            problem = f"record {index}: {exc}"
    return entry, failure(entry, Problem("InvalidRecord", problem, False), 0)


def _chunk(
    action: Action,
    entries: Iterable[tuple[Entry, QueueRef | SQSActionFailure]],
    rejected: list[SQSActionFailure],
) -> list[Call]:
    by_queue: dict[QueueRef, list[Entry]] = {}
    for entry, target in entries:
        if isinstance(target, SQSActionFailure):
            rejected.append(target)
        else:
            by_queue.setdefault(target, []).append(entry)
    return [
        Call(action, queue, tuple(queued[start : start + MAX_ENTRIES]))
        for queue, queued in by_queue.items()
        for start in range(0, len(queued), MAX_ENTRIES)
    ]


def failure(entry: Entry, problem: Problem, attempts: int) -> SQSActionFailure:
    """The :class:`SQSActionFailure` of *entry*."""
    return SQSActionFailure(
        entry.action,
        entry.record_index,
        entry.message_id,
        entry.queue_arn,
        entry.receipt_handle,
        problem.code,
        problem.message,
        attempts,
    )


# --- what failed, and what to try again ------------------------------------------------------


def entry_problem(failed: Mapping[str, Any]) -> Problem:
    """Read one entry of a response's ``Failed`` list.

    ``SenderFault: false`` is SQS's own failure: asking again may succeed. A sender fault is
    final (``ReceiptHandleIsInvalid``...), unless its code says throttling.
    """
    code = str(failed.get("Code") or "Unknown")
    sender_fault = bool(failed.get("SenderFault", False))
    retryable = not sender_fault or code in _RETRYABLE_CODES
    return Problem(code, str(failed.get("Message") or code), retryable)


def call_problem(code: str, message: str, *, status: int | None, connection: bool) -> Problem:
    """Classify a call that failed as a whole.

    Retryable: a connection that failed or broke (*connection*), an HTTP 5xx or 429, or a
    throttling or transient error code. Anything else (access denied, no such queue) is final.
    """
    retryable = (
        connection
        or (status is not None and (status >= 500 or status == 429))
        or code in _RETRYABLE_CODES
        or code.rsplit(".", 1)[-1] in _RETRYABLE_CODES  # "AWS.SimpleQueueService.X" forms
    )
    return Problem(code, message, retryable)


def read_response(
    sent: Sequence[Entry], response: Mapping[str, Any]
) -> tuple[list[Entry], list[tuple[Entry, Problem]]]:
    """Split the entries of one call into those SQS did and those it did not, with why.

    An entry in neither ``Successful`` nor ``Failed`` was not confirmed: it counts as a
    retryable failure, never as done.
    """
    ok_ids = {str(item.get("Id")) for item in response.get("Successful") or ()}
    failed = {str(item.get("Id")): item for item in response.get("Failed") or ()}
    done: list[Entry] = []
    problems: list[tuple[Entry, Problem]] = []
    for entry in sent:
        key = str(entry.record_index)
        item = failed.get(key)
        if item is not None:
            problems.append((entry, entry_problem(item)))
        elif key in ok_ids:
            done.append(entry)
        else:
            problems.append(
                (entry, Problem("MissingFromResponse", "SQS did not report this entry", True))
            )
    return done, problems


@dataclass(frozen=True)
class RetryPolicy:
    """How calls and entries that failed for a transient reason are tried again.

    Each entry is sent at most *attempts* times. Before attempt ``n + 1`` the caller waits a
    random time between 0 and ``min(max_delay, base_delay * 2 ** (n - 1))`` seconds ("full
    jitter"), and never past the invocation's deadline.
    """

    attempts: int = 5
    base_delay: float = 0.05
    max_delay: float = 2.0

    def __post_init__(self) -> None:
        if not is_int(self.attempts):
            raise TypeError(f"attempts must be an int, got {self.attempts!r}")
        if self.attempts < 1:
            raise ValueError(f"attempts must be >= 1, got {self.attempts}")
        if not 0 <= self.base_delay <= self.max_delay:
            raise ValueError(
                "delays must satisfy 0 <= base_delay <= max_delay, got "
                f"base_delay={self.base_delay!r}, max_delay={self.max_delay!r}"
            )

    def delay(self, attempt: int, rand: float) -> float:
        """Seconds to wait after failed attempt *attempt* (1-based); *rand* is in [0, 1)."""
        return rand * min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1))


class CallState:
    """One call through its attempts: what to send next, what ended, what is left.

    A driver sends :meth:`request`, reports the answer with :meth:`received` (or
    :meth:`failed` when the whole call failed), and asks :meth:`retry_delay` whether and
    when to send again. Entries end in :attr:`done` or :attr:`failures`.
    """

    __slots__ = ("attempts", "call", "done", "failures", "pending", "policy")

    def __init__(self, call: Call, policy: RetryPolicy) -> None:
        self.call = call
        self.policy = policy
        self.attempts = 0
        self.pending: tuple[Entry, ...] = call.entries
        self.done: list[Entry] = []
        self.failures: list[SQSActionFailure] = []

    def request(self) -> list[dict[str, Any]]:
        """The entries to send now; counts an attempt."""
        self.attempts += 1
        return [entry.request() for entry in self.pending]

    def received(self, response: Mapping[str, Any]) -> None:
        """Take the answer to the last request."""
        done, problems = read_response(self.pending, response)
        self.done.extend(done)
        self._settle(problems)

    def failed(self, problem: Problem) -> None:
        """The last request failed as a whole (an error response, a broken connection)."""
        self._settle([(entry, problem) for entry in self.pending])

    def _settle(self, problems: list[tuple[Entry, Problem]]) -> None:
        last_try = self.attempts >= self.policy.attempts
        retry: list[Entry] = []
        for entry, problem in problems:
            if problem.retryable and not last_try:
                retry.append(entry)
            else:
                self.failures.append(failure(entry, problem, self.attempts))
        self.pending = tuple(retry)

    def retry_delay(self, rand: float) -> float | None:
        """Seconds to wait before sending again, or ``None`` when nothing is left to send."""
        if not self.pending:
            return None
        return self.policy.delay(self.attempts, rand)

    def give_up(self, problem: Problem) -> None:
        """End every entry still pending with *problem* (the deadline came first)."""
        for entry in self.pending:
            self.failures.append(failure(entry, problem, self.attempts))
        self.pending = ()
