"""SQS through aiobotocore (``anybatch[sqs]``): legacy mode, visibility, and the worker.

:class:`SQSWorker` (and ``anybatch worker``) consumes a queue outside Lambda with a Lambda
function's record handler.

Legacy mode is for event source mappings without ``ReportBatchItemFailures``: after the batch,
the processor deletes the messages that succeeded and raises, so that Lambda returns only the
failed ones to the queue::

    from anybatch.sqs import PartialSQSProcessor, sqs_batch_processor

aiobotocore itself is imported on the first SQS call, not here: a batch where every record
succeeded needs no call, and pays no import.
"""

import importlib.util as _util

from anybatch._exceptions import MissingDependencyError as _MissingDependencyError

if _util.find_spec("aiobotocore") is None:
    raise _MissingDependencyError(
        "anybatch.sqs needs aiobotocore, which is not installed: pip install 'anybatch[sqs]'"
    )

from ._backoff import ExponentialBackoff
from ._errors import SQSBatchProcessingError, SQSWorkerError
from ._plan import (
    RetryPolicy,
    SQSActionFailure,
    SQSCleanup,
    VisibilityTimeout,
)
from ._processor import (
    AsyncPartialSQSProcessor,
    AsyncSqsBatchProcessor,
    PartialSQSProcessor,
    SqsBatchProcessor,
    async_sqs_batch_processor,
    sqs_batch_processor,
)
from ._stats import WorkerStats
from ._worker import SQSWorker

__all__ = [
    "AsyncPartialSQSProcessor",
    "ExponentialBackoff",
    "AsyncSqsBatchProcessor",
    "PartialSQSProcessor",
    "RetryPolicy",
    "SQSActionFailure",
    "SQSBatchProcessingError",
    "SQSCleanup",
    "SQSWorker",
    "SQSWorkerError",
    "SqsBatchProcessor",
    "VisibilityTimeout",
    "WorkerStats",
    "async_sqs_batch_processor",
    "sqs_batch_processor",
]


def _report_public_module() -> None:
    # Public names report the public module, so tracebacks, reprs and docs say anybatch.sqs.X.
    for name in __all__:
        obj = globals()[name]
        if isinstance(obj, type) and obj.__module__.startswith("anybatch.sqs._"):
            obj.__module__ = __name__


_report_public_module()
del _report_public_module
