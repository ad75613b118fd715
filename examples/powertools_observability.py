r"""Powertools' Logger, Tracer and Metrics around anybatch, kept as they are.

Two entry points process the same SQS batch: ``lambda_handler`` (sync, records one at a
time) and ``async_lambda_handler`` (async, records side by side)::

    anybatch run examples/events/sqs.json \
        examples.powertools_observability:lambda_handler
    anybatch run examples/events/sqs.json \
        examples.powertools_observability:async_lambda_handler

stdout shows the response (messages 2 and 4, whose quantity is not positive);
stderr shows what Lambda would send to CloudWatch Logs: a Logger line for each
reserved order, with its record's message id, and Metrics' EMF line with
``OrdersReserved`` counted 4 times. Tracer turns itself off outside Lambda.

On the async entry point, Powertools' decorators go outside and ``@as_lambda_handler``
directly on the ``async def``: each Powertools decorator then wraps the plain function
Lambda calls.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from anybatch import (
    AsyncBatchProcessor,
    BatchProcessor,
    EventType,
    PartialItemFailureResponse,
    as_lambda_handler,
    async_process_partial_response,
    process_partial_response,
)

if TYPE_CHECKING:
    from anybatch.records import SQSRecord

logger = Logger(service="orders")
tracer = Tracer(service="orders")
metrics = Metrics(namespace="anybatch-examples", service="orders")

processor = BatchProcessor(EventType.SQS)
async_processor = AsyncBatchProcessor(EventType.SQS, concurrency=10)


def reserve(record: SQSRecord) -> int:
    """Reserve the stock of one order; an order without a positive quantity fails."""
    order = record.json_body
    if order["quantity"] <= 0:
        raise ValueError(f"order {order['id']} has no quantity")
    # Keys given with the call belong to this line alone: right at any concurrency.
    logger.info("order reserved", message_id=record.message_id, order_id=order["id"])
    metrics.add_metric(name="OrdersReserved", unit=MetricUnit.Count, value=1)
    return int(order["quantity"])


@tracer.capture_method  # a subsegment per record: records run one at a time here
def record_handler(record: SQSRecord) -> int:
    """The sync record handler."""
    return reserve(record)


async def async_record_handler(record: SQSRecord) -> int:
    """The async record handler: records run side by side, so no Tracer subsegment."""
    await anyio.sleep(0.01)  # stands for a call to a database or an API
    return reserve(record)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    """The sync entry point, decorated as Powertools documents it."""
    return process_partial_response(event, record_handler, processor, context=context)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
@as_lambda_handler
async def async_lambda_handler(
    event: dict[str, Any],
    context: Any,
) -> PartialItemFailureResponse:
    """The async entry point: ``@as_lambda_handler`` innermost."""
    return await async_process_partial_response(
        event,
        async_record_handler,
        async_processor,
        context=context,
    )
