"""Per-record idempotency for async and blocking record handlers.

::

    from anybatch.idempotency import DynamoDBStore, idempotent

    @idempotent(DynamoDBStore("IdempotencyTable"))
    async def record_handler(record: SQSRecord) -> dict[str, str]: ...

A key is marked IN_PROGRESS by a conditional write before the handler runs; its result is
stored COMPLETED and replayed to later deliveries of the key for ``expires_after`` seconds; a
key in progress elsewhere fails its record (:class:`IdempotencyInProgressError`) so that it is
retried. The table layout is the incumbent's (Powertools' ``DynamoDBPersistenceLayer``).

Importing this module imports neither aiobotocore (the DynamoDB store imports it on its first
call) nor pydantic.
"""

from ._decorator import (
    DEFAULT_EXPIRES_AFTER,
    DEFAULT_IN_PROGRESS_TIMEOUT,
    RECORD_TIMEOUT_MARGIN,
    idempotent,
)
from ._dynamodb import DynamoDBStore
from ._errors import (
    IdempotencyError,
    IdempotencyInProgressError,
    IdempotencyKeyError,
    IdempotencyResultError,
    IdempotencyStoreError,
    IdempotencyValidationError,
)
from ._keys import hash_value, payload_of, record_identifier
from ._store import (
    COMPLETED,
    IN_PROGRESS,
    BatchingIdempotencyStore,
    BlockingIdempotencyStore,
    IdempotencyStore,
    InMemoryStore,
    StoredRecord,
    claimable,
)

#: The incumbent's name for :class:`IdempotencyInProgressError`.
IdempotencyAlreadyInProgressError = IdempotencyInProgressError
#: The incumbent's name for :class:`IdempotencyStoreError`.
IdempotencyPersistenceLayerError = IdempotencyStoreError

__all__ = [
    "COMPLETED",
    "DEFAULT_EXPIRES_AFTER",
    "DEFAULT_IN_PROGRESS_TIMEOUT",
    "IN_PROGRESS",
    "RECORD_TIMEOUT_MARGIN",
    "BatchingIdempotencyStore",
    "BlockingIdempotencyStore",
    "DynamoDBStore",
    "IdempotencyAlreadyInProgressError",
    "IdempotencyError",
    "IdempotencyInProgressError",
    "IdempotencyKeyError",
    "IdempotencyPersistenceLayerError",
    "IdempotencyResultError",
    "IdempotencyStore",
    "IdempotencyStoreError",
    "IdempotencyValidationError",
    "InMemoryStore",
    "StoredRecord",
    "claimable",
    "hash_value",
    "idempotent",
    "payload_of",
    "record_identifier",
]


def _report_public_module() -> None:
    # Public names report the public module, so tracebacks and reprs say anybatch.idempotency.
    for name in __all__:
        obj = globals()[name]
        if isinstance(obj, type) and obj.__module__.startswith(__name__ + "._"):
            obj.__module__ = __name__


_report_public_module()
del _report_public_module
