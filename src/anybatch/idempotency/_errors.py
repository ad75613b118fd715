"""The exceptions of ``anybatch.idempotency``.

::

    AnybatchError
    └── IdempotencyError                    anything idempotency raises
        ├── IdempotencyInProgressError      another run holds the key (retry later)
        ├── IdempotencyValidationError      same key, different payload
        ├── IdempotencyKeyError             no key could be read from the record
        ├── IdempotencyResultError          a result that cannot be stored, or read back
        └── IdempotencyStoreError           the store failed (the handler did not run)

Each fails its record only: the record is reported, so it is retried.
"""

from __future__ import annotations

from anybatch._exceptions import AnybatchError

__all__ = [
    "IdempotencyError",
    "IdempotencyInProgressError",
    "IdempotencyKeyError",
    "IdempotencyResultError",
    "IdempotencyStoreError",
    "IdempotencyValidationError",
]


class IdempotencyError(AnybatchError):
    """Base class of the idempotency layer's exceptions."""


class IdempotencyInProgressError(IdempotencyError):
    """The record's key is marked IN_PROGRESS by a run that has not ended, nor expired.

    The handler did not run. The record fails, so it is delivered again later: by then the
    other run has completed (its result is replayed) or its mark has expired (this one runs).
    ``key`` is the stored key; ``expires_at`` when the mark expires (epoch seconds), if known.
    """

    def __init__(self, key: str, expires_at: float | None = None) -> None:
        when = "" if expires_at is None else f" (its mark expires at {expires_at:.3f})"
        super().__init__(f"a run of idempotency key {key!r} is already in progress{when}")
        self.key = key
        self.expires_at = expires_at


class IdempotencyValidationError(IdempotencyError, ValueError):
    """A record has the key of an earlier one but another payload: not a replay.

    Raised only with ``validate=``. The handler did not run, and the stored result is not
    returned: two different payloads under one key point at a key that is not unique enough.
    """


class IdempotencyKeyError(IdempotencyError, ValueError):
    """No idempotency key could be read from the record (``None``, ``""`` or an error).

    The handler did not run: running it unguarded is what idempotency is there to prevent.
    """


class IdempotencyResultError(IdempotencyError, TypeError):
    """The handler's result cannot be stored as JSON, or a stored result cannot be read.

    An unstorable result fails its record and releases the key (the next delivery runs the
    handler again); nothing is stored under the key.
    """


class IdempotencyStoreError(IdempotencyError):
    """The store could not mark the key IN_PROGRESS, or could not release it.

    When the mark failed the handler did not run, and the record fails to be retried: a
    throttled or failing store never makes a handler run twice, nor loses a record.
    """
