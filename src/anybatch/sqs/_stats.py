"""What a worker did, counted by message: :class:`WorkerStats`."""

from __future__ import annotations

from dataclasses import dataclass, field

from ._plan import SQSActionFailure

__all__ = ["WorkerStats"]


@dataclass
class WorkerStats:
    """What a worker did, counted by message."""

    received: int = 0
    succeeded: int = 0
    #: Failed permanently and taken by their target (a dead-letter queue, the processor's
    #: ``on_permanent_failure``): deleted, not retried, and not counted as succeeded.
    routed: int = 0
    failed: int = 0
    released: int = 0
    deleted: int = 0
    not_deleted: int = 0
    visibility_changed: int = 0
    visibility_not_changed: int = 0
    extended: int = 0
    receive_errors: int = 0
    batches: int = 0
    failures: list[SQSActionFailure] = field(default_factory=list[SQSActionFailure])

    def add(self, other: WorkerStats) -> None:
        """Add *other*'s figures to these (a supervisor's total of its workers')."""
        for name, value in vars(other).items():
            if name == "failures":
                self.failures.extend(other.failures)
            else:
                setattr(self, name, getattr(self, name) + value)

    def summary(self) -> str:
        """One line: what was received and what became of it."""
        line = (
            f"{self.received} received in {self.batches} batches: {self.succeeded} succeeded "
            f"({self.deleted} deleted, {self.not_deleted} not), {self.failed} failed, "
            f"{self.released} released; {self.visibility_changed} visibility changes, "
            f"{self.extended} extensions, {self.receive_errors} receive errors"
        )
        if self.routed:
            line += f"; {self.routed} failed permanently and routed away"
        if self.failures:
            first = self.failures[0]
            line += (
                f"; {len(self.failures)} SQS calls refused (first: {first.action} of "
                f"{first.message_id}: {first.code}: {first.reason})"
            )
        return line
