"""An SQS-triggered Lambda function whose records arrive as validated pydantic models.

Run it on the sample event with::

    anybatch run examples/events/sqs.json examples.models_order:lambda_handler

``OrderRecord`` narrows the body of the SQS record model to ``Json[Order]``: the handler
gets an ``Order``, typed. A message that is not a valid order (here, a quantity that is
not positive) fails validation by itself, before the handler runs, and is reported for
retry with its ``messageId``; the other records of the batch are processed as usual.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Json, PositiveInt

from anybatch import (
    BatchProcessor,
    EventType,
    PartialItemFailureResponse,
    process_partial_response,
)
from anybatch.models import SqsRecordModel


class Order(BaseModel):
    """The JSON body of each message."""

    id: str
    quantity: PositiveInt


class OrderRecord(SqsRecordModel):
    """An SQS record whose body is an order."""

    body: Json[Order]


processor = BatchProcessor(EventType.SQS, model=OrderRecord)


def record_handler(record: OrderRecord) -> int:
    """Reserve the stock of one order; only valid orders get here."""
    order = record.body
    return order.quantity


def lambda_handler(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    """The function's entry point: Lambda calls it with the event and the context."""
    return process_partial_response(event, record_handler, processor, context=context)
