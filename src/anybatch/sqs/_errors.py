"""The exception of the legacy SQS mode."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from anybatch._exceptions import AnybatchError, BatchProcessingError

if TYPE_CHECKING:
    from anybatch._exceptions import ExceptionInfo
    from anybatch._outcome import RecordOutcome

    from ._plan import SQSActionFailure

__all__ = ["SQSBatchProcessingError", "SQSWorkerError"]


class SQSBatchProcessingError(BatchProcessingError):
    """Some records of an SQS batch failed (legacy mode); raised when the processor's block exits.

    By then every record that succeeded has been deleted from its queue, so raising makes
    Lambda return only the failed messages to the queue. Subclass of
    :class:`~anybatch.BatchProcessingError`.

    ``child_exceptions`` holds one ``ExceptionInfo`` per failed record, as the incumbent's
    does; ``failures`` holds their typed outcomes (identifier, record, exception); and
    ``not_deleted`` every message that succeeded but that SQS did not delete, with the
    reason: those will be delivered again.
    """

    def __init__(
        self,
        msg: str = "",
        child_exceptions: list[ExceptionInfo] | None = None,
        *,
        failures: Sequence[RecordOutcome[Any]] = (),
        not_deleted: Sequence[SQSActionFailure] = (),
    ) -> None:
        super().__init__(msg, child_exceptions)
        self.failures: tuple[RecordOutcome[Any], ...] = tuple(failures)
        self.not_deleted: tuple[SQSActionFailure, ...] = tuple(not_deleted)

    def __str__(self) -> str:
        text = super().__str__()
        if not self.not_deleted:
            return text
        lines = [f"{len(self.not_deleted)} messages that succeeded could not be deleted:"]
        lines.extend(
            f"  {item.message_id} ({item.queue_arn}): {item.code}: {item.reason} "
            f"[{item.attempts} attempts]"
            for item in self.not_deleted
        )
        return text + "\n" + "\n".join(lines)


class SQSWorkerError(AnybatchError):
    """SQS refused what the worker needs for good: the queue does not exist, access is denied.

    ``code`` is SQS's error code. The worker stops receiving, lets the batches in flight
    finish (``drain_timeout``), then raises it.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
