"""Kafka (Amazon MSK or self-managed): each customer's payments in order, side by side.

The producer keys each payment by its customer, so one customer's payments sit in one
partition, in order. Run::

    anybatch run examples/events/kafka.json examples.kafka_handler:lambda_handler

A payment with a non-positive amount fails; Lambda is told its partition and offset and
retries from there. Every other payment is applied, a later payment of the same customer
included (every record runs, as Powertools documents): each payment stands alone. Give
the processor ``EventType.Kafka.in_partition_order()`` to run each partition strictly
one record at a time.
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
    from anybatch.records import KafkaEventRecord

# Up to 20 records at once; those of one key in a partition one at a time, in order.
processor = AsyncBatchProcessor(EventType.Kafka, concurrency=20)


async def record_handler(record: KafkaEventRecord) -> str:
    """Apply one payment; a non-positive amount raises."""
    payment = record.value_as_json()
    if payment["amount"] <= 0:
        customer = record.key_as_text()
        raise ValueError(f"payment {payment['id']} of {customer}: bad amount")
    source = record.decoded_headers.get("source", b"unknown").decode()
    await anyio.sleep(0.01)  # stands for a call to the ledger service
    return f"{payment['id']} from {source}"


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
