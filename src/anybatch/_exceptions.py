"""Every exception anybatch raises or reports, in one hierarchy.

::

    AnybatchError
    ├── BatchProcessingError            every record of a batch failed
    │   └── InvalidEventError           the event cannot be read (alias: UnexpectedBatchTypeError)
    ├── PermanentFailure                a record that can never succeed: retrying cannot help
    ├── RecordFailedError               a custom processor's _process_record reported a failure
    ├── RecordNotProcessedError         a record was reported without a handler failure of its own
    │   ├── RecordTimeoutError          its handler ran longer than ``record_timeout``
    │   ├── DeadlineExceededError       the invocation's deadline came first
    │   └── RecordSkippedError          a stop policy kept it from starting
    │       ├── SQSFifoCircuitBreakerError
    │       └── SQSFifoMessageGroupCircuitBreakerError
    ├── HandlerTypeError                a record handler or a processor used the wrong way
    ├── ModelMismatchError              a ``model=`` that does not fit the event type
    ├── ProcessorStateError             a processor used outside its context manager
    └── MissingDependencyError          an optional extra is not installed
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeAlias, cast

if TYPE_CHECKING:
    from types import TracebackType

__all__ = [
    "AnybatchError",
    "BatchProcessingError",
    "DeadlineExceededError",
    "ExceptionInfo",
    "HandlerTypeError",
    "InvalidEventError",
    "MissingDependencyError",
    "ModelMismatchError",
    "PermanentFailure",
    "ProcessorStateError",
    "RecordFailedError",
    "RecordNotProcessedError",
    "RecordSkippedError",
    "RecordTimeoutError",
    "ResponseTooLargeError",
    "SQSFifoCircuitBreakerError",
    "SQSFifoMessageGroupCircuitBreakerError",
    "UnexpectedBatchTypeError",
]

#: ``sys.exc_info()``-shaped triple, as the incumbent's ``processor.exceptions`` holds.
ExceptionInfo: TypeAlias = tuple[
    "type[BaseException] | None", "BaseException | None", "TracebackType | None"
]


class AnybatchError(Exception):
    """Base class of every exception anybatch defines."""


class BatchProcessingError(AnybatchError):
    """Every record of the batch failed.

    Raised when the processor leaves its context manager (or by the ``process_partial_response``
    functions) with ``raise_on_entire_batch_failure=True``, the default. Raising makes Lambda
    retry the whole batch, which is what every record failing asks for anyway.

    ``child_exceptions`` holds one ``ExceptionInfo`` per record, in record order, and the
    message shows each of them with its traceback. The processor's ``response()`` is still
    readable after this was raised.
    """

    def __init__(self, msg: str = "", child_exceptions: list[ExceptionInfo] | None = None) -> None:
        super().__init__(msg)
        self.msg = msg
        self.child_exceptions: list[ExceptionInfo] = list(child_exceptions or [])

    def format_exceptions(self, parent_exception_str: str) -> str:
        """Return *parent_exception_str* followed by every child exception's traceback."""
        import traceback  # costs milliseconds at import; needed only to show a failure

        parts = [f"{parent_exception_str}\n"]
        for extype, exc, tb in self.child_exceptions:
            if exc is None:
                continue
            parts.append("".join(traceback.format_exception(extype, exc, tb)))
        return "\n".join(parts)

    def __str__(self) -> str:
        return self.format_exceptions(super().__str__())


class InvalidEventError(BatchProcessingError, ValueError):
    """The event, or one of its records, cannot be processed at all.

    Raised before any handler runs for: an event that is not an object, a missing or non-list
    ``Records``, a record that is not an object, a record without the identifier of its event
    type (Lambda would fail the whole batch on an empty ``itemIdentifier``), or an unknown
    event type. ``index`` is the record's position in ``Records`` when one record is at fault.
    """

    def __init__(self, msg: str, *, index: int | None = None) -> None:
        super().__init__(msg)
        self.index = index

    def __str__(self) -> str:
        return self.msg


#: The incumbent's name for :class:`InvalidEventError`.
UnexpectedBatchTypeError = InvalidEventError


class PermanentFailure(AnybatchError):
    """Raised by a record handler: this record can never succeed, so a retry cannot help.

    A payload that fails validation, or a reference to something deleted. With a target (the
    SQS processors' ``dead_letter_queue``, or any processor's ``on_permanent_failure``) the
    record is handed to it and, once the target has it, not reported: it is not retried.
    Without a target, or when the target refuses it, the record is reported like any other
    failure: nothing is dropped. Subclass it, or list other exception types that are
    permanent in the processor's ``permanent=`` option; ``raise PermanentFailure(...) from
    exc`` keeps the cause.
    """


class RecordFailedError(AnybatchError):
    """A custom processor's ``_process_record`` returned a ``"fail"`` entry.

    The record's exception when the ``failure_handler`` that made the entry was an override
    that did not pass its exception on to ``super().failure_handler``. ``entry`` is what
    ``_process_record`` returned.
    """

    def __init__(self, entry: object) -> None:
        detail: object = entry
        if isinstance(entry, tuple) and len(cast("tuple[object, ...]", entry)) > 1:
            detail = cast("tuple[object, ...]", entry)[1]
        super().__init__(f"_process_record reported the record failed: {detail}")
        self.entry: object = entry


class RecordNotProcessedError(AnybatchError):
    """A record is reported failed although its handler did not raise.

    The subclasses say why, so that logs say "deadline" or "timeout" rather than "failure".
    """


class RecordTimeoutError(RecordNotProcessedError, TimeoutError):
    """The record's handler ran longer than the processor's ``record_timeout``."""

    def __init__(self, timeout: float) -> None:
        super().__init__(f"record handler did not finish within record_timeout={timeout:g}s")
        self.timeout = timeout


class DeadlineExceededError(RecordNotProcessedError, TimeoutError):
    """The invocation's deadline came before the record finished.

    ``started`` tells whether its handler had begun (and was cancelled or abandoned) or never
    started.
    """

    def __init__(self, *, started: bool) -> None:
        what = "was cancelled at" if started else "was not started before"
        super().__init__(f"record {what} the invocation deadline")
        self.started = started


class RecordSkippedError(RecordNotProcessedError):
    """A stop policy kept the record from starting after an earlier failure."""


class SQSFifoCircuitBreakerError(RecordSkippedError):
    """Not processed: an earlier record of the batch failed (``stop_on_failure``)."""


class SQSFifoMessageGroupCircuitBreakerError(RecordSkippedError):
    """Not processed: an earlier record with the same ordering key failed."""


class HandlerTypeError(AnybatchError, TypeError):
    """A record handler or a processor was used in a way that cannot work.

    For example a "sync" record handler that returns a coroutine, or a blocking call made from
    the event loop thread anybatch runs async handlers on. The message says what to use instead.
    """


class ResponseTooLargeError(AnybatchError, ValueError):
    """The response would be larger than Lambda returns to the service that invoked it.

    A Firehose transformation answers every record with its data, and Lambda refuses a
    synchronous response over 6 MB; the message says the size and what to change.
    """


class ModelMismatchError(AnybatchError, TypeError):
    """A ``model=`` was given that does not describe records of the processor's event type."""


class ProcessorStateError(AnybatchError, RuntimeError):
    """A processor was used out of order, or asked to run two batches at once.

    The order is ``processor(records, handler)``, then ``with``, then ``process()``.
    """


class MissingDependencyError(AnybatchError, ImportError):
    """An optional extra is not installed; the message names the ``pip install`` to run."""
