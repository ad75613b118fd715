"""anybatch: async-first partial batch processing for AWS Lambda.

Process the records Lambda hands a function from SQS, Kinesis Data Streams, DynamoDB Streams,
Kafka and Firehose, each on its own, under a concurrency limit, and report only those that
failed (Firehose: answer every record with its transformed data).
"""

from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

from ._context import (
    add_record_id,
    current_record,
    current_record_deadline,
    current_record_id,
)
from ._exceptions import (
    AnybatchError,
    BatchProcessingError,
    DeadlineExceededError,
    ExceptionInfo,
    HandlerTypeError,
    InvalidEventError,
    MissingDependencyError,
    ModelMismatchError,
    PermanentFailure,
    ProcessorStateError,
    RecordFailedError,
    RecordNotProcessedError,
    RecordSkippedError,
    RecordTimeoutError,
    ResponseTooLargeError,
    SQSFifoCircuitBreakerError,
    SQSFifoMessageGroupCircuitBreakerError,
    UnexpectedBatchTypeError,
)
from ._functions import (
    as_lambda_handler,
    async_batch_processor,
    async_process_partial_response,
    batch_processor,
    process_partial_response,
)
from ._outcome import (
    BatchResult,
    FailureResponse,
    FirehoseMetadata,
    FirehoseRecordResponse,
    FirehoseResponse,
    KafkaItemIdentifier,
    PartialItemFailureResponse,
    PartialItemFailures,
    RecordOutcome,
    Status,
    SuccessResponse,
)
from ._processor import (
    DEFAULT_DEADLINE_MARGIN,
    AsyncBatchProcessor,
    AsyncSqsFifoPartialProcessor,
    BasePartialProcessor,
    BatchProcessor,
    SqsFifoPartialProcessor,
)
from ._sources import EventType


def use_uvloop(enabled: bool = True) -> None:
    """Run the event loops anybatch makes on uvloop (``pip install 'anybatch[uvloop]'``).

    The loop of ``as_lambda_handler`` and of the blocking entry points, and the loop thread.
    Call it at import time; ``ANYBATCH_EVENT_LOOP=uvloop`` in the environment does the same.
    """
    from ._portal import use_uvloop as use

    use(enabled)


__version__ = "0.1.0"

__all__ = [
    "DEFAULT_DEADLINE_MARGIN",
    "AnybatchError",
    "AsyncBatchProcessor",
    "AsyncSqsFifoPartialProcessor",
    "BasePartialProcessor",
    "BatchProcessingError",
    "BatchProcessor",
    "BatchResult",
    "DeadlineExceededError",
    "EventType",
    "ExceptionInfo",
    "FailureResponse",
    "FirehoseMetadata",
    "FirehoseRecordResponse",
    "FirehoseResponse",
    "HandlerTypeError",
    "InvalidEventError",
    "KafkaItemIdentifier",
    "MissingDependencyError",
    "ModelMismatchError",
    "PartialItemFailureResponse",
    "PartialItemFailures",
    "ProcessorStateError",
    "RecordIdFilter",
    "PermanentFailure",
    "RecordFailedError",
    "RecordNotProcessedError",
    "RecordOutcome",
    "RecordSkippedError",
    "RecordTimeoutError",
    "ResponseTooLargeError",
    "SQSFifoCircuitBreakerError",
    "SQSFifoMessageGroupCircuitBreakerError",
    "SqsFifoPartialProcessor",
    "Status",
    "SuccessResponse",
    "UnexpectedBatchTypeError",
    "__version__",
    "add_record_id",
    "as_lambda_handler",
    "async_batch_processor",
    "async_process_partial_response",
    "batch_processor",
    "current_record",
    "current_record_deadline",
    "current_record_id",
    "process_partial_response",
    "use_uvloop",
]


if _TYPE_CHECKING:
    from ._logfilter import RecordIdFilter

#: Public names imported on first use: what they import costs a cold start.
_LAZY = {"RecordIdFilter": "._logfilter"}


def __getattr__(name: str) -> _Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module, __name__), name)
    value.__module__ = __name__
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


def _report_public_module() -> None:
    # Public names report the public module, so tracebacks, reprs and docs say anybatch.X.
    for name in __all__:
        if name in _LAZY:
            continue
        obj = globals()[name]
        if isinstance(obj, type) and obj.__module__.startswith("anybatch._"):
            obj.__module__ = __name__


_report_public_module()
del _report_public_module
