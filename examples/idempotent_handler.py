"""An idempotent async record handler: a message delivered twice is charged once.

Run it on the sample event with::

    anybatch run examples/events/sqs.json examples.idempotent_handler:lambda_handler

Each order is charged once per message: a second delivery of the message (Lambda
retrying a reported record, or SQS delivering a message twice) returns the stored
receipt without calling ``charge`` again. Orders without a positive quantity fail and
are reported; their key is released, so the retry charges them.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import anyio

from anybatch import (
    AsyncBatchProcessor,
    EventType,
    PartialItemFailureResponse,
    as_lambda_handler,
    async_process_partial_response,
)
from anybatch.idempotency import (
    DynamoDBStore,
    IdempotencyStore,
    InMemoryStore,
    idempotent,
)

if TYPE_CHECKING:
    from anybatch.records import SQSRecord

# A DynamoDB table in production (the incumbent's layout: "id" as its key, TTL on
# "expiration"); in memory when no table is configured (tests, local runs).
TABLE = os.environ.get("IDEMPOTENCY_TABLE")
store: IdempotencyStore = DynamoDBStore(TABLE) if TABLE else InMemoryStore()
processor = AsyncBatchProcessor(EventType.SQS, concurrency=50)


async def charge(order: dict[str, Any]) -> str:
    """Stands for a payment API: the call that must not happen twice."""
    await anyio.sleep(0.01)
    return f"receipt-{order['id']}"


@idempotent(store, expires_after=24 * 3600)
async def record_handler(record: SQSRecord) -> dict[str, Any]:
    """Charge one order, once per message id; later deliveries replay the receipt."""
    order = record.json_body
    if order["quantity"] <= 0:
        raise ValueError(f"order {order['id']} has no quantity")
    return {"receipt": await charge(order), "quantity": order["quantity"]}


@as_lambda_handler
async def lambda_handler(
    event: dict[str, Any],
    context: Any,
) -> PartialItemFailureResponse:
    """The context's remaining time bounds each IN_PROGRESS mark."""
    return await async_process_partial_response(
        event,
        record_handler,
        processor,
        context=context,
    )
