"""What observers learn of a batch before its records run: a home of its own.

Observers (``anybatch.observe``) import this, not the processor.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

__all__ = ["BatchStarted"]


class BatchStarted(NamedTuple):
    """What an observer's ``batch_started`` learns of a batch before its records run."""

    #: ``"SQS"``, ``"KinesisDataStreams"``, ``"DynamoDBStreams"``.
    event_type: str
    #: How many records the batch holds.
    size: int
    #: Seconds before the deadline, or ``None`` without a Lambda context.
    time_left: float | None
    #: The raw records.
    records: Sequence[Mapping[str, Any]]
