"""An SQS-triggered Lambda function with an async record handler.

Run it on the sample event with::

    anybatch run examples/events/sqs.json examples.sqs_handler:lambda_handler

A record whose handler raises is reported in ``batchItemFailures``: only it is retried.
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

processor = AsyncBatchProcessor(EventType.SQS, concurrency=50)


async def record_handler(record: SQSRecord) -> int:
    """Handle one order: fail it when its quantity is not positive."""
    order = record.json_body
    await anyio.sleep(0.01)  # stands for a call to a database or an API
    if order["quantity"] <= 0:
        raise ValueError(f"order {order['id']} has no quantity")
    return int(order["quantity"])


@as_lambda_handler
async def lambda_handler(
    event: dict[str, Any],
    context: Any,
) -> PartialItemFailureResponse:
    """The function's entry point: Lambda calls it with the event and the context."""
    return await async_process_partial_response(
        event,
        record_handler,
        processor,
        context=context,
    )
