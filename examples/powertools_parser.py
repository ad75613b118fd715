"""Powertools' parser models, kept as they are: only the batch imports change.

A function migrating from Powertools keeps its models: ``BaseModel`` and ``Json`` from
``aws_lambda_powertools.utilities.parser`` are pydantic's own, and Powertools' record
models (``SqsRecordModel`` here) fit ``model=`` as anybatch's do. Run it on the sample
event with::

    anybatch run examples/events/sqs.json examples.powertools_parser:lambda_handler

The orders whose quantity is not positive (messages 2 and 4) fail validation by
themselves, before the handler runs, and are reported; the four others are handled.
"""

# No ``from __future__ import annotations``: pydantic reads the annotations at runtime.

from typing import Any

from aws_lambda_powertools.utilities.parser import BaseModel
from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
from aws_lambda_powertools.utilities.parser.types import Json
from pydantic import PositiveInt

from anybatch import (  # was: from aws_lambda_powertools.utilities.batch import ...
    BatchProcessor,
    EventType,
    PartialItemFailureResponse,
    process_partial_response,
)


class Order(BaseModel):
    """The JSON body of each message."""

    id: str
    quantity: PositiveInt


class OrderRecord(SqsRecordModel):
    """Powertools' SQS record model, its body narrowed to an order."""

    # Powertools types body as a union, which a checker refuses to see narrowed;
    # anybatch.models.SqsRecordModel types it Any, and needs no comment.
    body: Json[Order]  # pyright: ignore[reportIncompatibleVariableOverride]


processor = BatchProcessor(event_type=EventType.SQS, model=OrderRecord)


def record_handler(record: OrderRecord) -> int:
    """Reserve the stock of one order; only valid orders get here."""
    order: Order = record.body
    return order.quantity


def lambda_handler(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    """The function's entry point: Lambda calls it with the event and the context."""
    return process_partial_response(
        event=event,
        record_handler=record_handler,
        processor=processor,
        context=context,
    )
