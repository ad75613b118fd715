"""One record's idempotent run, as decisions without I/O, and the runs in flight in a process.

:func:`flow` is a generator (httpx's ``auth_flow`` pattern): it yields what to do next
(:class:`Claim` the key, :data:`RUN` the handler, :class:`Complete` or :class:`Release` the
key) and is sent what came of it, so one flow serves the blocking and the async drivers in
``_decorator``. :class:`Flights` makes two records of one key in one process run once: the
second waits for the first and gets its result, as the incumbent's sequential loop would
give it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator
from typing import Any, NamedTuple

from ._errors import (
    IdempotencyError,
    IdempotencyInProgressError,
    IdempotencyResultError,
    IdempotencyStoreError,
    IdempotencyValidationError,
)
from ._keys import decode_result, encode_result
from ._store import COMPLETED, IN_PROGRESS, StoredRecord, claimable

__all__ = [
    "RUN",
    "Attempt",
    "Claim",
    "Complete",
    "Flight",
    "Flights",
    "Release",
    "Step",
    "flow",
]

#: How many times a claim is tried when the store's answer and the clock disagree (a record
#: that expired between the conditional write and its reading).
MAX_CLAIMS = 3


class Claim(NamedTuple):
    """Write this IN_PROGRESS record unless a live one holds its key; send what holds it."""

    record: StoredRecord
    now: float


class Complete(NamedTuple):
    """Store this COMPLETED record."""

    record: StoredRecord


class Release(NamedTuple):
    """Delete the key's record."""

    key: str


class _Run:
    """Run the handler; send its result, or throw what it raised."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "RUN"


RUN = _Run()
Step = Claim | Complete | Release | _Run


class Attempt:
    """One record's idempotent run: its key, its payload's hash, and what it stored."""

    __slots__ = (
        "data",
        "expires_after",
        "in_progress_ms",
        "in_progress_until",
        "key",
        "result_type",
        "validation",
    )

    def __init__(
        self,
        key: str,
        validation: str | None,
        *,
        expires_after: float,
        in_progress_ms: float,
        result_type: Any,
        in_progress_until: float | None = None,
    ) -> None:
        self.key = key
        self.validation = validation
        self.expires_after = expires_after
        #: How long a mark lasts at most, in milliseconds from when it is written.
        self.in_progress_ms = in_progress_ms
        #: When a mark expires at the latest (epoch seconds): the invocation's end, the
        #: record's; ``None``: no such bound.
        self.in_progress_until = in_progress_until
        self.result_type = result_type
        #: The result as stored (JSON), once the handler returned or a replay found it.
        self.data: str | None = None

    def in_progress_ends(self, now: float) -> float:
        """When a mark written at *now* expires, in epoch milliseconds, not before *now*."""
        ends = now * 1000 + self.in_progress_ms
        until = self.in_progress_until
        return ends if until is None or until * 1000 >= ends else max(now, until) * 1000

    def in_progress(self, now: float) -> StoredRecord:
        """The IN_PROGRESS mark this run writes at *now* (epoch seconds)."""
        return StoredRecord(
            self.key,
            IN_PROGRESS,
            int(now + self.expires_after),
            int(self.in_progress_ends(now)),
            None,
            self.validation,
        )

    def completed(self, data: str, now: float) -> StoredRecord:
        """The COMPLETED record of the result *data*, at *now*."""
        return StoredRecord(
            self.key, COMPLETED, int(now + self.expires_after), None, data, self.validation
        )

    def check_payload(self, validation: str | None) -> None:
        """Raise :class:`IdempotencyValidationError` if a run of another payload had the key."""
        if self.validation is not None and validation != self.validation:
            raise IdempotencyValidationError(
                f"idempotency key {self.key!r} was used for another payload: the stored "
                "payload hash differs from this record's"
            )


def _holder(existing: StoredRecord, attempt: Attempt, now: float) -> tuple[bool, Any]:
    """What the record that holds the key means: replay it, or claim again.

    ``(True, result)`` to replay, ``(False, None)`` to claim again (it expired meanwhile);
    raises for a run in progress or another payload.
    """
    attempt.check_payload(existing.validation)
    if claimable(existing, now):
        return False, None
    if existing.status == COMPLETED:
        attempt.data = existing.data
        return True, decode_result(existing.data, attempt.result_type)
    if existing.status == IN_PROGRESS:
        ends = float(existing.expires_at)
        if existing.in_progress_expires_at is not None:
            ends = min(ends, existing.in_progress_expires_at / 1000)
        raise IdempotencyInProgressError(attempt.key, ends)
    raise IdempotencyStoreError(
        f"idempotency key {attempt.key!r} has a record of unknown status {existing.status!r}"
    )


def flow(attempt: Attempt, clock: Callable[[], float]) -> Generator[Step, Any, Any]:
    """One record's run: claim, then replay or run the handler, then complete or release.

    - The claim is a conditional write. If the store fails, the handler does not run
      (:class:`IdempotencyStoreError`): the record fails and is retried, never run twice.
    - A COMPLETED record is replayed; an IN_PROGRESS one fails the record
      (:class:`IdempotencyInProgressError`).
    - A handler that raises releases the key and its exception fails the record.
    - A result that JSON cannot hold releases the key (:class:`IdempotencyResultError`).
    - A result that could not be stored still succeeds (the handler ran, and failing the
      record would run it again); its mark expires as an IN_PROGRESS one does, and a warning
      is logged.
    """
    for _ in range(MAX_CLAIMS):
        now = clock()
        try:
            existing = yield Claim(attempt.in_progress(now), now)
        except IdempotencyError:
            raise
        except Exception as exc:
            raise IdempotencyStoreError(
                f"could not mark idempotency key {attempt.key!r} in progress ({exc!r}); the "
                "handler did not run"
            ) from exc
        if existing is None:
            break
        replay, value = _holder(existing, attempt, clock())
        if replay:
            return value
    else:
        raise IdempotencyInProgressError(attempt.key)
    try:
        value = yield RUN
    except Exception as handler_error:
        yield from _release(attempt, handler_error)
        raise
    try:
        data = encode_result(value, attempt.result_type)
    except IdempotencyResultError as result_error:
        yield from _release(attempt, result_error)
        raise
    attempt.data = data
    try:
        yield Complete(attempt.completed(data, clock()))
    except Exception as exc:
        import logging  # only when a result was lost

        logging.getLogger("anybatch.idempotency").warning(
            "the result of idempotency key %r could not be stored (%r): the record succeeded, "
            "and its key stays in progress until its mark expires",
            attempt.key,
            exc,
        )
    return value


def _release(attempt: Attempt, cause: Exception) -> Generator[Step, Any, None]:
    try:
        yield Release(attempt.key)
    except Exception as exc:
        raise IdempotencyStoreError(
            f"the handler failed ({cause!r}) and idempotency key {attempt.key!r} could not be "
            f"released ({exc!r}): it stays in progress until its mark expires"
        ) from exc


class Flight:
    """A run of one key in this process, that other records of the key wait for."""

    __slots__ = ("data", "done", "ends", "ok", "validation")

    def __init__(self, validation: str | None, ends: float) -> None:
        self.validation = validation
        #: When the run's mark expires (epoch seconds): waiting longer makes no sense.
        self.ends = ends
        self.ok = False
        self.data: str | None = None
        self.done: threading.Event | None = None  # made when a second record waits


class Flights:
    """The runs in flight in this process, by key; safe across threads and event loops."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flying: dict[str, Flight] = {}

    def board(self, attempt: Attempt, now: float) -> tuple[Flight, bool]:
        """Register *attempt* as its key's run, unless another record of the key runs.

        ``(its flight, True)``, or ``(the flight running, False)``.
        """
        with self._lock:
            flight = self._flying.get(attempt.key)
            if flight is None:
                ends = attempt.in_progress_ends(now) / 1000
                flight = self._flying[attempt.key] = Flight(attempt.validation, ends)
                return flight, True
            if flight.done is None:
                flight.done = threading.Event()
            return flight, False

    def land(self, key: str, flight: Flight, ok: bool, data: str | None) -> None:
        """End *flight*: *ok* with the stored result *data*, or not (waiters run themselves)."""
        with self._lock:
            flight.ok, flight.data = ok, data
            if self._flying.get(key) is flight:
                del self._flying[key]
            done = flight.done
        if done is not None:
            done.set()


def after_wait(flight: Flight, attempt: Attempt) -> tuple[bool, Any]:
    """What a record that waited for *flight* does: take its result, or run itself.

    ``(True, its result)``, or ``(False, None)`` when the flight failed. Raises
    :class:`IdempotencyInProgressError` if the flight is still running.
    """
    assert flight.done is not None
    if not flight.done.is_set():
        raise IdempotencyInProgressError(attempt.key, flight.ends)
    if not flight.ok:
        return False, None
    attempt.check_payload(flight.validation)
    attempt.data = flight.data
    return True, decode_result(flight.data, attempt.result_type)
