"""Kinesis Data Streams: readings of different devices run concurrently, each device in order.

The partition key is the device. Run::

    anybatch run examples/events/kinesis.json examples.kinesis_handler:lambda_handler

A reading without a temperature and an impossible one fail. ``sensor-1``'s later reading is
then not processed (it is reported too, so it is retried after the failed one, in order);
``sensor-2`` and ``sensor-3``'s other readings are unaffected.
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

# Up to 10 partition keys at once; records with the same key one at a time, in stream order.
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
async def lambda_handler(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    """The function's entry point."""
    return await async_process_partial_response(event, record_handler, processor, context=context)
