"""One record handler for Lambda and for a long-lived worker: orders from an SQS queue.

On Lambda, ``lambda_handler`` is the function's handler. Outside Lambda (a container, a VM),
the same ``record_handler`` and ``processor`` consume the queue (``HANDLER`` and
``PROCESSOR`` set to ``examples.worker_handler:record_handler`` and ``...:processor``)::

    anybatch worker "$QUEUE_URL" "$HANDLER" --processor "$PROCESSOR"

An order with no quantity fails and comes back later; the others are stored and deleted.
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
    from anybatch.records import SQSRecord

processor = AsyncBatchProcessor(EventType.SQS, concurrency=50, record_timeout=60)


async def record_handler(record: SQSRecord) -> str:
    """Store one order; an order with no quantity raises."""
    order = record.json_body
    if order["quantity"] <= 0:
        raise ValueError(f"order {order['id']} has no quantity")
    await anyio.sleep(0.01)  # stands for a write to the orders table
    return str(order["id"])


@as_lambda_handler
async def lambda_handler(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    """The Lambda function's entry point: the same handler, the same processor."""
    return await async_process_partial_response(event, record_handler, processor, context=context)
