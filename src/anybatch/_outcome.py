"""Typed outcomes: how each record ended, the batch's result and the partial batch response."""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping, Sequence
from itertools import compress
from typing import (
    TYPE_CHECKING,
    Any,
    Final,
    Generic,
    Literal,
    NamedTuple,
    TypedDict,
    TypeVar,
    cast,
    overload,
)

from ._engine import CANCELLED, FAILURE, NOT_STARTED, SKIPPED_KEY, SKIPPED_STOP, SUCCESS, TIMEOUT
from ._exceptions import DeadlineExceededError, RecordSkippedError

if TYPE_CHECKING:
    from types import TracebackType

    from typing_extensions import NotRequired

    from ._exceptions import ExceptionInfo

__all__ = [
    "ROUTED",
    "BatchResult",
    "describe",
    "FailureResponse",
    "FirehoseMetadata",
    "FirehoseRecordResponse",
    "FirehoseResponse",
    "KafkaItemIdentifier",
    "PartialItemFailureResponse",
    "PartialItemFailures",
    "RecordOutcome",
    "Status",
    "SuccessResponse",
]

RecordT = TypeVar("RecordT")


class KafkaItemIdentifier(TypedDict):
    """A Kafka record's identifier: its ``"<topic>-<partition>"`` and its offset."""

    partition: str
    offset: int


class PartialItemFailures(TypedDict):
    """One entry of ``batchItemFailures``: a string, or a Kafka record's partition and offset."""

    itemIdentifier: str | KafkaItemIdentifier


class PartialItemFailureResponse(TypedDict):
    """What a Lambda function returns to report the records that failed."""

    batchItemFailures: list[PartialItemFailures]


class FirehoseMetadata(TypedDict):
    """An answer's metadata: the keys of Firehose's dynamic partitioning."""

    partitionKeys: dict[str, str]


class FirehoseRecordResponse(TypedDict):
    """One record's answer in a Firehose transformation response."""

    recordId: str
    result: Literal["Ok", "Dropped", "ProcessingFailed"]
    data: str
    metadata: NotRequired[FirehoseMetadata]


class FirehoseResponse(TypedDict):
    """What a Firehose transformation function returns: every record's answer, in order."""

    records: list[FirehoseRecordResponse]


class Status(str, enum.Enum):
    """How one record ended."""

    SUCCESS = "success"
    """Its handler returned."""
    FAILED = "failed"
    """Its handler (or its model's validation) raised an exception."""
    TIMED_OUT = "timed_out"
    """Its handler ran longer than ``record_timeout``."""
    DEADLINE = "deadline"
    """The invocation's deadline came first: cancelled, abandoned, or never started."""
    SKIPPED = "skipped"
    """Not started: an earlier failure and a stop policy (``stop_on_failure``, ordered keys)."""
    ROUTED = "routed"
    """Failed permanently and handed to its target (a dead-letter queue, the processor's
    ``on_permanent_failure``): not reported, so not retried."""


#: The outcome code of a record the run routed away after the engine failed it: the
#: engine's codes end at 6, and the engine never gives this one.
ROUTED: Final = 7


_STATUS = {
    SUCCESS: Status.SUCCESS,
    FAILURE: Status.FAILED,
    TIMEOUT: Status.TIMED_OUT,
    CANCELLED: Status.DEADLINE,
    NOT_STARTED: Status.DEADLINE,
    SKIPPED_STOP: Status.SKIPPED,
    SKIPPED_KEY: Status.SKIPPED,
    ROUTED: Status.ROUTED,
}


#: Every Status, in order (iterating the Enum itself costs a generator a member).
_STATUSES = tuple(Status)

#: The statuses of records that are not reported.
_NOT_REPORTED = frozenset((Status.SUCCESS, Status.ROUTED))

#: Outcomes of records whose handler never ran.
_NEVER_STARTED = frozenset((NOT_STARTED, SKIPPED_STOP, SKIPPED_KEY))


def status_counts(kinds: Sequence[int]) -> dict[Status, int]:
    """How many records ended in each :class:`Status` (C-speed counts)."""
    counts = dict.fromkeys(_STATUSES, 0)
    succeeded = kinds.count(SUCCESS)  # identity checks: fast on the usual batch
    counts[Status.SUCCESS] = succeeded
    if succeeded != len(kinds):
        for code in set(kinds) - {SUCCESS}:
            counts[_STATUS[code]] += kinds.count(code)
    return counts


class SuccessResponse(NamedTuple):
    """A processed record that succeeded: ``status, result, record = item``."""

    status: Literal["success"]
    result: Any
    record: Any


class FailureResponse(NamedTuple):
    """A processed record that failed: ``status, result, record = item``.

    ``result`` is ``"<exception type>:<message>"``, as the incumbent reports it.
    """

    status: Literal["fail"]
    result: str
    record: Any


class RecordOutcome(Generic[RecordT]):
    """How one record ended, with everything known about it. Immutable.

    ``record`` is what the handler received. With ``model=``, a record that its model refused,
    or that never started, holds the plain record view (``SQSRecord``...) instead: no model
    instance exists for it.
    """

    __slots__ = (
        "duration",
        "exception",
        "identifier",
        "index",
        "permanent",
        "record",
        "result",
        "status",
    )

    index: int
    #: What the response reports the record by: a string (SQS ``messageId``, a stream's
    #: sequence number, Firehose's ``recordId``), or a Kafka record's
    #: :class:`KafkaItemIdentifier`.
    identifier: Any
    status: Status
    record: RecordT
    result: Any
    exception: BaseException | None
    #: Seconds its handler ran, when the processor has ``observers``; ``None`` otherwise, and
    #: for a record that never started.
    duration: float | None
    #: Whether its failure is permanent (:class:`~anybatch.PermanentFailure`, or a type in
    #: the processor's ``permanent=``): routed away (``Status.ROUTED``), or reported when it
    #: has no target or its target refused it (``Status.FAILED``).
    permanent: bool

    def __init__(
        self,
        index: int,
        identifier: Any,
        status: Status,
        record: RecordT,
        result: Any = None,
        exception: BaseException | None = None,
        duration: float | None = None,
        permanent: bool = False,
    ) -> None:
        set_ = object.__setattr__
        set_(self, "duration", duration)
        set_(self, "permanent", permanent)
        set_(self, "index", index)
        set_(self, "identifier", identifier)
        set_(self, "status", status)
        set_(self, "record", record)
        set_(self, "result", result)
        set_(self, "exception", exception)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    @property
    def ok(self) -> bool:
        """Whether the record succeeded."""
        return self.status is Status.SUCCESS

    @property
    def exc_info(self) -> ExceptionInfo:
        """The exception as a ``sys.exc_info()`` triple (all ``None`` on success)."""
        exc = self.exception
        if exc is None:
            return (None, None, None)
        tb: TracebackType | None = exc.__traceback__
        return (type(exc), exc, tb)

    def __repr__(self) -> str:
        detail = f"result={self.result!r}" if self.ok else f"exception={self.exception!r}"
        return (
            f"RecordOutcome(index={self.index}, identifier={self.identifier!r}, "
            f"status={self.status.value}, {detail})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RecordOutcome):
            return NotImplemented
        return (
            self.index == other.index
            and self.identifier == other.identifier
            and self.status is other.status
            and self.result == other.result
            and self.exception is other.exception
        )

    __hash__ = None  # type: ignore[assignment]


def describe(value: object) -> str:
    """``str(value)``, or a placeholder when its ``__str__`` raises.

    Formatting a record's exception must never fail the batch: Lambda would then retry the
    whole batch, and a poison record would block its shard or message group for good.
    """
    try:
        return str(value)
    except Exception:
        try:
            return f"<{type(value).__name__}: str() failed>"
        except Exception:  # pragma: no cover - a type whose name cannot be read
            return "<str() failed>"


def outcome_exception(
    kind: int,
    value: Any,
    skipped_stop: type[RecordSkippedError],
    skipped_key: type[RecordSkippedError],
) -> BaseException:
    """The exception that explains why a record did not succeed (outcome *kind*)."""
    if kind in (FAILURE, TIMEOUT, ROUTED):
        exc: BaseException = value
        return exc
    if kind == CANCELLED:
        return DeadlineExceededError(started=True)
    if kind == NOT_STARTED:
        return DeadlineExceededError(started=False)
    if kind == SKIPPED_STOP:
        return skipped_stop("a previous record failed processing")
    return skipped_key("a previous record with the same ordering key failed processing")


def status_of(kind: int) -> Status:
    """The public :class:`Status` of an outcome code."""
    return _STATUS[kind]


def statuses(result: BatchResult[Any]) -> list[Status]:
    """Each record's :class:`Status`, in input order, without making its outcome."""
    return list(map(_STATUS.__getitem__, result._kinds))  # pyright: ignore[reportPrivateUsage]


class BatchResult(Sequence[RecordOutcome[RecordT]], Generic[RecordT]):
    """Every record's :class:`RecordOutcome`, in input order, and the partial batch response.

    Built from the engine's arrays; the :class:`RecordOutcome` objects are made on first use.
    """

    # The fields below the slots are set only with observers (or by a source's response):
    # class-level defaults until then, so that a plain batch sets seven fields, not twenty.
    __slots__ = (
        "__dict__",
        "_errors",
        "_identifiers",
        "_kinds",
        "_outcomes",
        "_records",
        "_response",
        "_values",
        "raw_records",
        "source",
    )

    #: What the response carries for each record that succeeded, when the source's
    #: response carries what the handlers returned (Firehose); ``None`` otherwise.
    encoded: Sequence[Any] | None = None
    #: The indices of the records whose failure is permanent (routed or reported).
    permanent_indices: frozenset[int] = frozenset()
    #: With observers: each record's handler seconds (``None``: never started), and
    #: when it ended (``time.monotonic``); ``None`` without observers.
    durations: Sequence[float | None] | None = None
    ends: Sequence[float | None] | None = None
    #: The batch: the event type's name, when it started (``time.time()``), how many
    #: seconds it took, and how many were left before the deadline when it ended
    #: (``None`` without a Lambda context).
    event_type: str = ""
    started_at: float = 0.0
    started: float = 0.0  # the same instant, on time.monotonic
    duration: float = 0.0
    time_left: float | None = None

    def __init__(
        self,
        identifiers: Sequence[Any],
        kinds: Sequence[int],
        values: Sequence[Any],
        records: Sequence[RecordT],
        errors: Mapping[int, BaseException],
    ) -> None:
        self._identifiers = identifiers
        self._kinds = kinds
        self._values = values
        self._records = records
        self._errors = errors
        #: The event source's own response (a Firehose batch's), set once by the run; the
        #: partial batch response when ``None``.
        self._response: Any = None
        self._outcomes: tuple[RecordOutcome[RecordT], ...] | None = None
        #: The batch's source (an ``EventType``: typed ``Any`` here, as outcomes know no
        #: source) and its raw records, as the run read them.
        self.source: Any = None
        self.raw_records: Sequence[Mapping[str, Any]] | None = None

    def _all(self) -> tuple[RecordOutcome[RecordT], ...]:
        outcomes = self._outcomes
        if outcomes is None:
            ids, values, records, errors = (
                self._identifiers,
                self._values,
                self._records,
                self._errors,
            )
            durations = self.durations or [None] * len(self._kinds)
            permanent = self.permanent_indices
            outcomes = self._outcomes = tuple(
                RecordOutcome(
                    index,
                    ids[index],
                    _STATUS[kind],
                    records[index],
                    values[index] if kind == SUCCESS else None,
                    errors.get(index),
                    durations[index] if kind not in _NEVER_STARTED else None,
                    index in permanent,
                )
                for index, kind in enumerate(self._kinds)
            )
        return outcomes

    def __len__(self) -> int:
        return len(self._kinds)

    @overload
    def __getitem__(self, index: int) -> RecordOutcome[RecordT]: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[RecordOutcome[RecordT], ...]: ...
    def __getitem__(
        self, index: int | slice
    ) -> RecordOutcome[RecordT] | tuple[RecordOutcome[RecordT], ...]:
        return self._all()[index]

    def __iter__(self) -> Iterator[RecordOutcome[RecordT]]:
        return iter(self._all())

    def __repr__(self) -> str:
        ok = self._kinds.count(SUCCESS)
        return f"BatchResult(succeeded={ok}, failed={len(self._kinds) - ok})"

    @property
    def succeeded(self) -> list[RecordOutcome[RecordT]]:
        """The records that succeeded."""
        return [o for o in self._all() if o.status is Status.SUCCESS]

    @property
    def failed(self) -> list[RecordOutcome[RecordT]]:
        """The records that did not succeed, whatever the reason: they are reported.

        Not the records routed away (:attr:`routed`): they are not reported.
        """
        return [o for o in self._all() if o.status not in _NOT_REPORTED]

    @property
    def routed(self) -> list[RecordOutcome[RecordT]]:
        """The records that failed permanently and were handed to their target."""
        return [o for o in self._all() if o.status is Status.ROUTED]

    @property
    def permanent(self) -> list[RecordOutcome[RecordT]]:
        """The records whose failure is permanent: routed away, or reported."""
        return [o for o in self._all() if o.permanent]

    @property
    def all_failed(self) -> bool:
        """Whether the batch has records and none of them succeeded."""
        return bool(self._kinds) and SUCCESS not in self._kinds

    def counts(self) -> dict[Status, int]:
        """How many records ended in each :class:`Status`."""
        return status_counts(self._kinds)

    @property
    def entire_batch_failed(self) -> bool:
        """Whether the batch has records and every one's handler ran and failed or timed out.

        A batch with records that were skipped or never started (a stop policy, the
        deadline) is not: its partial response lists them, and the invocation succeeds.
        """
        kinds = self._kinds
        if not kinds or SUCCESS in kinds:  # identity checks: fast on the usual batch
            return False
        return kinds.count(FAILURE) + kinds.count(TIMEOUT) == len(kinds)

    @property
    def identifiers(self) -> Sequence[Any]:
        """Every record's identifier, in record order."""
        return self._identifiers

    def reported_ids(self) -> list[Any]:
        """The identifiers of the records that did not succeed, in record order.

        Not those of the records routed away: their target has them.
        """
        kinds = self._kinds
        if kinds.count(SUCCESS) == len(kinds):  # identity checks: fast on the usual batch
            return []
        ids = self._identifiers
        if ROUTED in kinds:  # some record was routed away: not reported
            return [ids[i] for i, kind in enumerate(kinds) if kind != SUCCESS and kind != ROUTED]
        if type(ids) is list:
            listed = cast("list[Any]", ids)  # type: ignore[redundant-cast]
            return list(compress(listed, map(SUCCESS.__ne__, kinds)))
        # Identifiers made when read (Kafka's): only the reported ones are.
        return [ids[i] for i in compress(range(len(kinds)), map(SUCCESS.__ne__, kinds))]

    def response(self) -> PartialItemFailureResponse:
        """What the Lambda function returns for this batch.

        By default the partial batch response that reports every record that did not
        succeed; a Firehose batch's answers every record.
        """
        if self._response is not None:
            # A Firehose batch's FirehoseResponse: typed as the partial batch response, the
            # one type every other source (and every processor override) returns.
            return cast("PartialItemFailureResponse", self._response)
        return self.item_failures()

    def set_response(self, response: Any) -> None:
        """Keep the event source's own response for this batch (the run sets it once)."""
        self._response = response

    def item_failures(self) -> PartialItemFailureResponse:
        """``{"batchItemFailures": [...]}``: every record that did not succeed."""
        return {"batchItemFailures": [{"itemIdentifier": i} for i in self.reported_ids()]}
