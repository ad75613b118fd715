"""Kinesis Data Streams: readings of different devices run concurrently, each in order.

The partition key is the device. Run::

    anybatch run examples/events/kinesis.json examples.kinesis_handler:lambda_handler

A reading without a temperature and an impossible one fail: only they are reported.
Every other reading is stored, ``sensor-1``'s later one included: each reading stands
alone, so the default (every record runs, as Powertools documents) fits. For changes
that must not be applied past a failed one, see ``skip_key_on_failure=True`` in
``dynamodb_handler.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio

from anybatch import (
    AsyncBatchProcessor,
    EventType,
    PartialItemFailureResponse,
    as_lambda_handler,
    async_process_partial_response,
)

if TYPE_CHECKING:
    from anybatch.records import KinesisStreamRecord

# Up to 10 partition keys at once; records of one key one at a time, in stream order.
processor = AsyncBatchProcessor(EventType.KinesisDataStreams, concurrency=10)


async def record_handler(record: KinesisStreamRecord) -> float:
    """Store one reading; a missing or impossible temperature raises."""
    reading = record.kinesis.data_as_json()
    celsius = reading["celsius"]
    if celsius is None or not -90.0 <= celsius <= 60.0:
        raise ValueError(f"{record.kinesis.partition_key}: bad reading {celsius!r}")
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
