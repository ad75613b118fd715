"""Permanent failures on a stream: park what can never succeed, retry the rest.

Run it on the sample event with::

    anybatch run examples/events/kinesis.json examples.permanent_handler:lambda_handler

A reading without a temperature can never be stored, however often it is retried: the
handler raises ``PermanentFailure``, and ``on_permanent_failure`` parks the record
(here in a list; in production an S3 object or an SQS queue). Once parked, it is not
reported, so it does not hold its shard back. An impossible temperature is taken for
a sensor glitch that may clear: it is reported, and Lambda retries from it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import anyio

from anybatch import (
    AsyncBatchProcessor,
    EventType,
    PartialItemFailureResponse,
    PermanentFailure,
    as_lambda_handler,
    async_process_partial_response,
)

if TYPE_CHECKING:
    from anybatch.records import KinesisStreamRecord

logger = logging.getLogger("readings")
#: What was parked: (sequence number, why). Stands for an S3 bucket.
parked: list[tuple[str, str]] = []


async def park(record: KinesisStreamRecord, error: BaseException) -> None:
    """Keep a reading that can never be stored, with why; raising would report it."""
    await anyio.sleep(0.01)  # stands for a put_object to a bucket
    parked.append((record.kinesis.sequence_number, str(error)))


processor = AsyncBatchProcessor(
    EventType.KinesisDataStreams,
    concurrency=10,
    on_permanent_failure=park,
    logger=logger,
)


async def record_handler(record: KinesisStreamRecord) -> float:
    """Store one reading."""
    reading = record.kinesis.data_as_json()
    celsius = reading["celsius"]
    if celsius is None:
        raise PermanentFailure(f"{reading['device']}: the reading has no temperature")
    if not -90.0 <= celsius <= 60.0:
        raise ValueError(f"{reading['device']}: {celsius} °C, a glitch that may clear")
    await anyio.sleep(0.01)  # stands for a write to a time-series database
    return float(celsius)


@as_lambda_handler
async def lambda_handler(
    event: dict[str, Any],
    context: Any,
) -> PartialItemFailureResponse:
    """The function's entry point."""
    return await async_process_partial_response(
        event,
        record_handler,
        processor,
        context=context,
    )
