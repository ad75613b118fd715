"""What an idempotency store keeps, the protocol a store implements, and the in-memory store.

A store keeps one :class:`StoredRecord` per key, in the incumbent's format: ``expires_at`` in
epoch seconds (the TTL), ``in_progress_expires_at`` in epoch milliseconds, ``data`` the
result as a JSON string, ``validation`` the payload's hash. The decisions (when a key may be
claimed, what a stored record means) are plain functions here and in ``_flow``; a store only
reads and writes.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Literal, NamedTuple, Protocol, runtime_checkable

__all__ = [
    "COMPLETED",
    "IN_PROGRESS",
    "BatchingIdempotencyStore",
    "BlockingIdempotencyStore",
    "IdempotencyStore",
    "InMemoryStore",
    "StoredRecord",
    "claimable",
]

IN_PROGRESS: Literal["INPROGRESS"] = "INPROGRESS"
COMPLETED: Literal["COMPLETED"] = "COMPLETED"


class StoredRecord(NamedTuple):
    """One key's record, as a store keeps it (the incumbent's ``DataRecord``)."""

    #: The key, prefixed by the handler's name: ``<function>.<module>.<qualname>#<md5>``.
    key: str
    #: ``"INPROGRESS"`` or ``"COMPLETED"``.
    status: str
    #: When the record expires, in epoch seconds (the table's TTL attribute).
    expires_at: int
    #: When an IN_PROGRESS mark expires, in epoch milliseconds (``None``: with the record).
    in_progress_expires_at: int | None = None
    #: The handler's result as JSON (COMPLETED records).
    data: str | None = None
    #: The hash of the payload, with ``validate=``.
    validation: str | None = None


def claimable(existing: StoredRecord | None, now: float) -> bool:
    """Whether a new IN_PROGRESS mark may replace *existing* at *now* (epoch seconds).

    The incumbent's condition: no record, or an expired one, or an IN_PROGRESS mark whose own
    expiry has passed.
    """
    if existing is None or existing.expires_at < int(now):
        return True
    return (
        existing.status == IN_PROGRESS
        and existing.in_progress_expires_at is not None
        and existing.in_progress_expires_at < int(now * 1000)
    )


class IdempotencyStore(Protocol):
    """Where idempotency records live: three calls, each one atomic on its key.

    Implement these three coroutines (DynamoDB, Redis, a database...); a store that can also
    answer without an event loop implements :class:`BlockingIdempotencyStore`, which
    blocking handlers then call directly. Other stores are called from blocking handlers on
    anybatch's loop thread.
    """

    async def claim(self, record: StoredRecord, now: float) -> StoredRecord | None:
        """Write *record* (IN_PROGRESS) if :func:`claimable` says its key may be taken at *now*.

        Returns ``None`` when written, else the record that holds the key. Must be one
        atomic conditional write: two claims of one key never both return ``None``.
        """
        ...

    async def complete(self, record: StoredRecord) -> None:
        """Store *record* (COMPLETED, with its result) over the key's IN_PROGRESS mark."""
        ...

    async def release(self, key: str) -> None:
        """Delete the record of *key* (the handler raised: the next delivery runs it)."""
        ...


@runtime_checkable
class BlockingIdempotencyStore(Protocol):
    """A store that blocking handlers can call without an event loop (the same three calls)."""

    def claim_blocking(self, record: StoredRecord, now: float) -> StoredRecord | None:
        """:meth:`IdempotencyStore.claim`, blocking."""
        ...

    def complete_blocking(self, record: StoredRecord) -> None:
        """:meth:`IdempotencyStore.complete`, blocking."""
        ...

    def release_blocking(self, key: str) -> None:
        """:meth:`IdempotencyStore.release`, blocking."""
        ...


@runtime_checkable
class BatchingIdempotencyStore(Protocol):
    """A store that claims and stores many keys a call: ``idempotent(store, batched=True)``.

    Both calls are an optimisation over :class:`IdempotencyStore`'s three, never a
    replacement: a key :meth:`claim_many` leaves out is claimed on its own when its record
    runs. A store that can also answer without an event loop adds ``claim_many_blocking``
    and ``settle_many_blocking``, which blocking handlers then call directly.
    """

    async def claim_many(
        self, records: Sequence[StoredRecord], now: float
    ) -> dict[str, StoredRecord | None]:
        """:meth:`IdempotencyStore.claim` for each of *records* (their keys are distinct).

        Returns, by key, ``None`` for a key written (claimed) or the record that holds it.
        A key left out of the answer was neither written nor read: a partial answer (a
        failed call, a conflict) is allowed, a wrong one never is.
        """
        ...

    async def settle_many(self, completed: Sequence[StoredRecord], released: Sequence[str]) -> None:
        """Store each of *completed* and delete the records of *released*.

        As :meth:`IdempotencyStore.complete` and :meth:`IdempotencyStore.release` do; the
        keys are distinct. Raises if any was not written.
        """
        ...


class InMemoryStore:
    """An idempotency store in a dict, for tests and local runs; safe across threads.

    It lives as long as the process (a Lambda execution environment), so it only protects
    against duplicates delivered to the same one: use :class:`DynamoDBStore` in production.
    ``records`` is the dict itself, for tests to read.
    """

    def __init__(self) -> None:
        self.records: dict[str, StoredRecord] = {}
        self._lock = threading.Lock()

    def claim_blocking(self, record: StoredRecord, now: float) -> StoredRecord | None:
        """Mark the key IN_PROGRESS unless a live record holds it (then return that record)."""
        with self._lock:
            existing = self.records.get(record.key)
            if existing is not None and not claimable(existing, now):
                return existing
            self.records[record.key] = record
            return None

    def complete_blocking(self, record: StoredRecord) -> None:
        """Store the COMPLETED record."""
        with self._lock:
            self.records[record.key] = record

    def release_blocking(self, key: str) -> None:
        """Delete the key's record."""
        with self._lock:
            self.records.pop(key, None)

    def claim_many_blocking(
        self, records: Sequence[StoredRecord], now: float
    ) -> dict[str, StoredRecord | None]:
        """:meth:`claim_blocking` for each of *records*: by key, ``None`` or what holds it."""
        return {record.key: self.claim_blocking(record, now) for record in records}

    def settle_many_blocking(
        self, completed: Sequence[StoredRecord], released: Sequence[str]
    ) -> None:
        """Store each of *completed* and delete each key of *released*."""
        with self._lock:
            for record in completed:
                self.records[record.key] = record
            for key in released:
                self.records.pop(key, None)

    async def claim_many(
        self, records: Sequence[StoredRecord], now: float
    ) -> dict[str, StoredRecord | None]:
        """:meth:`claim_many_blocking`, awaitable."""
        return self.claim_many_blocking(records, now)

    async def settle_many(self, completed: Sequence[StoredRecord], released: Sequence[str]) -> None:
        """:meth:`settle_many_blocking`, awaitable."""
        self.settle_many_blocking(completed, released)

    async def claim(self, record: StoredRecord, now: float) -> StoredRecord | None:
        """:meth:`claim_blocking`, awaitable."""
        return self.claim_blocking(record, now)

    async def complete(self, record: StoredRecord) -> None:
        """:meth:`complete_blocking`, awaitable."""
        self.complete_blocking(record)

    async def release(self, key: str) -> None:
        """:meth:`release_blocking`, awaitable."""
        self.release_blocking(key)

    def __repr__(self) -> str:
        return f"InMemoryStore({len(self.records)} records)"
